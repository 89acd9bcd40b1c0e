//! Framing of `/weft/sync/1` streams: a 4-byte big-endian body length, then
//! the body. Kept apart from IO policy so the decoder can be fuzzed on bytes.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::MAX_FRAME;

/// Bytes of the length header in front of every frame body.
pub const HEADER_LEN: usize = 4;

/// Why a stream stopped yielding frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header announced more than the reader allowed (at most [`MAX_FRAME`]).
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced body length.
        len: u64,
        /// The limit in force when it arrived.
        max: usize,
    },
    /// The stream ended inside a header or body.
    #[error("stream ended mid-frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the header or body received.
        got: usize,
        /// Bytes the header or body needed.
        expected: usize,
    },
    /// The transport failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the peer broke the protocol (as opposed to the link failing).
    pub fn is_violation(&self) -> bool {
        !matches!(self, FrameError::Io(_))
    }
}

/// The header for a body of `len` bytes; `None` if `len` exceeds [`MAX_FRAME`].
pub fn header(len: usize) -> Option<[u8; HEADER_LEN]> {
    if len > MAX_FRAME {
        return None;
    }
    u32::try_from(len).ok().map(u32::to_be_bytes)
}

/// Reads one frame body of at most `max` bytes (capped at [`MAX_FRAME`]).
/// `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let max = max.min(MAX_FRAME);
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated {
                    got,
                    expected: HEADER_LEN,
                })
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(head);
    if len as usize > max {
        return Err(FrameError::TooLarge {
            len: len.into(),
            max,
        });
    }
    // Grow as bytes arrive rather than trusting the header with an allocation.
    let mut body = Vec::with_capacity((len as usize).min(64 * 1024));
    r.take(u64::from(len)).read_to_end(&mut body).await?;
    if body.len() != len as usize {
        return Err(FrameError::Truncated {
            got: body.len(),
            expected: len as usize,
        });
    }
    Ok(Some(body))
}

/// Writes one frame (header and body); the caller flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let head = header(body.len()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {MAX_FRAME}", body.len()),
        )
    })?;
    w.write_all(&head).await?;
    w.write_all(body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use proptest::prelude::*;

    fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(async {
            for f in frames {
                write_frame(&mut out, f).await.unwrap();
            }
        });
        out.into_inner()
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
        let mut r = Cursor::new(bytes);
        let mut frames = Vec::new();
        block_on(async {
            loop {
                match read_frame(&mut r, MAX_FRAME).await {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => return (frames, None),
                    Err(e) => return (frames, Some(e)),
                }
            }
        })
    }

    #[test]
    fn round_trip() {
        let frames = vec![vec![], b"hello".to_vec(), vec![7u8; MAX_FRAME]];
        let bytes = encode(&frames);
        assert_eq!(bytes.len(), 3 * HEADER_LEN + 5 + MAX_FRAME);
        let (got, err) = decode_all(&bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, frames);
    }

    #[test]
    fn oversized_is_rejected_both_ways() {
        assert!(header(MAX_FRAME + 1).is_none());
        let too_big = vec![0u8; MAX_FRAME + 1];
        let mut sink = Cursor::new(Vec::new());
        assert!(block_on(write_frame(&mut sink, &too_big)).is_err());

        let mut bytes = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"whatever");
        let (got, err) = decode_all(&bytes);
        assert!(got.is_empty());
        assert!(
            matches!(err, Some(FrameError::TooLarge { len, .. }) if len == MAX_FRAME as u64 + 1)
        );
        let (_, err) = decode_all(&[0xff; 4]);
        assert!(matches!(err, Some(FrameError::TooLarge { .. })));
    }

    #[test]
    fn a_smaller_limit_applies() {
        let bytes = encode(&[vec![1u8; 100], vec![2u8; 101]]);
        let mut r = Cursor::new(&bytes[..]);
        block_on(async {
            assert_eq!(read_frame(&mut r, 100).await.unwrap(), Some(vec![1u8; 100]));
            let err = read_frame(&mut r, 100).await.unwrap_err();
            assert!(
                matches!(err, FrameError::TooLarge { len: 101, max: 100 }),
                "{err}"
            );
            assert!(err.is_violation());
        });
        // A limit above MAX_FRAME is clamped to it.
        let mut r = Cursor::new(((MAX_FRAME + 1) as u32).to_be_bytes().to_vec());
        let err = block_on(read_frame(&mut r, usize::MAX)).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { max: MAX_FRAME, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_header_and_body() {
        let (_, err) = decode_all(&[0, 0]);
        assert!(matches!(
            err,
            Some(FrameError::Truncated {
                got: 2,
                expected: 4
            })
        ));
        let mut bytes = encode(&[b"complete".to_vec(), b"cut short".to_vec()]);
        bytes.truncate(bytes.len() - 3);
        let (got, err) = decode_all(&bytes);
        assert_eq!(got, vec![b"complete".to_vec()]);
        assert!(matches!(
            err,
            Some(FrameError::Truncated {
                got: 6,
                expected: 9
            })
        ));
        assert!(err.is_some_and(|e| e.is_violation()));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let (frames, _) = decode_all(&bytes);
            let used: usize = frames.iter().map(|f| f.len() + HEADER_LEN).sum();
            prop_assert!(used <= bytes.len());
        }

        #[test]
        fn encoded_frames_round_trip(frames in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..512), 0..8)) {
            let (got, err) = decode_all(&encode(&frames));
            prop_assert!(err.is_none());
            prop_assert_eq!(got, frames);
        }
    }
}
