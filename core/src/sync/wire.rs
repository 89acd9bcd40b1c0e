//! The `/weft/sync/1` frame format. A frame body is one version byte
//! followed by one CBOR-encoded [`Message`]; the transport adds a length
//! prefix and bounds the size. Decoding never panics: anything unexpected is
//! a [`WireError`], which ends the peer's session.
//!
//! Version 2 replaced whole item lists in `Reconcile` with range-based set
//! reconciliation (fingerprints, `Done`, compact ranges); version 3 added
//! `Doc` and `DocAck` (whole documents for a peer that has none); version 4
//! took the membership claims out of `Hello`: a node names its spaces only
//! in an `Offer`, sent once the peer's `Proof` verified, and only spaces the
//! peer is a member of (the first `Offer`, possibly empty, completes the
//! handshake). Peers of other versions are refused with
//! [`WireError::Version`].
//!
//! Decoding allocates in proportion to its input: a length header claiming
//! more than the bytes after it is refused before decoding (so neither
//! ciborium's chunked string reads nor serde's list preallocation can size
//! anything from it), nesting stops at [`MAX_CBOR_DEPTH`], and [`ranges`]
//! bounds the one prefix-coded field. The fuzz tests assert
//! the decoded heap is at most [`ranges::MAX_AMPLIFICATION`] times the frame.

use serde::{Deserialize, Serialize};

use crate::identity::NodeId;

#[cfg(test)]
mod fuzz;
pub mod ranges;

/// The only frame version this build speaks.
pub const VERSION: u8 = 5;
/// Largest frame body accepted (the transport enforces the same bound).
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// Deepest CBOR nesting decoded: a [`Message`] nests at most 5 deep
/// (variant, fields, claims, a claim, its proofs), so 16 leaves room and
/// keeps skipping unknown nested values far from the stack's limit.
pub const MAX_CBOR_DEPTH: usize = 16;
/// Longest reason a [`Message::Refuse`] may give: a sentence for a person.
pub const MAX_REASON_LEN: usize = 256;

pub use crate::key::{Item, ItemKey};

/// One range of a reconciliation message: what the sender says about the
/// keys in `[previous upper bound, upper)` (see `sync::reconcile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// Exclusive upper bound; `None` is the end of the key space.
    pub upper: Option<ItemKey>,
    /// What the sender says about the range.
    pub payload: RangePayload,
}

/// What a [`Range`] carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangePayload {
    /// Nothing (more) to say about the range.
    Skip,
    /// The fingerprint and number of the sender's items in the range; the
    /// receiver compares and answers.
    Fingerprint {
        /// See `reconcile::Sum::fingerprint`.
        fp: [u8; crate::sync::reconcile::FP_LEN],
        /// How many items the sender has in the range.
        count: u64,
    },
    /// Every item the sender has in the range; the receiver works out
    /// which documents differ and answers with `Done`.
    Items(Vec<Item>),
    /// The range is settled: the receiver's side of it (as last sent) summed
    /// to `echo` (low 64 bits), and the documents `differ` are being synced.
    Done {
        /// Low 64 bits of the sum the sender matched.
        echo: u64,
        /// Keys in the range whose documents differ, sorted.
        differ: Vec<ItemKey>,
    },
}

/// A claim of membership in a space: the sender's own membership entries
/// (for a new member, its `Join` entry citing an invite), which the peer
/// adds to its log only if they make the sender a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The space id.
    pub space: String,
    /// Encoded membership entries.
    pub proof: Vec<serde_bytes::ByteBuf>,
}

/// What a [`Message::Proof`] signs: a domain tag, the challenge, and both
/// node ids, so a proof can be replayed neither elsewhere nor to another node.
pub fn proof_bytes(challenge: &[u8; 32], signer: NodeId, verifier: NodeId) -> Vec<u8> {
    let mut out = b"weft/session-proof/1\0".to_vec();
    out.extend_from_slice(challenge);
    out.extend_from_slice(signer.as_bytes());
    out.extend_from_slice(verifier.as_bytes());
    out
}

/// Everything peers say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message each way: who I am and a challenge for the peer to
    /// sign. Nothing about spaces: the peer has proven nothing yet.
    Hello {
        /// The sender's node id (must match the transport's peer id).
        node: NodeId,
        /// Random bytes the peer signs in its [`Message::Proof`].
        #[serde(with = "serde_bytes")]
        challenge: [u8; 32],
    },
    /// The answer to the peer's hello: the peer's challenge signed with the
    /// sender's node key. Sessions open only after it verifies.
    Proof {
        /// Ed25519 signature (see [`proof_bytes`]).
        #[serde(with = "serde_bytes")]
        signature: [u8; 64],
    },
    /// Spaces the sender claims membership of, sent only after the peer's
    /// proof verified: first the spaces the peer is a member of by the
    /// sender's log (possibly none; this first offer completes the
    /// handshake), later spaces joined, admitted or re-proven since.
    Offer {
        /// The spaces, with membership proofs.
        spaces: Vec<Claim>,
    },
    /// One step of range-based reconciliation of a space: consecutive
    /// ranges covering `[lower, last range's upper)`. A message with a
    /// `Fingerprint` or `Items` range is answered; one without ends the
    /// exchange.
    Reconcile {
        /// The space.
        space: String,
        /// Inclusive lower bound of the first range; `None` is the start.
        lower: Option<ItemKey>,
        /// Consecutive ranges, in the compact encoding of [`ranges`].
        #[serde(with = "ranges")]
        ranges: Vec<Range>,
    },
    /// One Automerge sync message for one document.
    Sync {
        /// The space.
        space: String,
        /// The document.
        key: ItemKey,
        /// `automerge::sync::Message::encode()` bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A whole document, as stored (Automerge chunks), for a peer that
    /// reconciliation found holds no version of it. Never answered one by
    /// one: see [`Message::DocAck`].
    Doc {
        /// The space.
        space: String,
        /// The document.
        key: ItemKey,
        /// Concatenated Automerge chunks (`Automerge::load_incremental` input).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// `count` more `Doc` messages of the space were handled: the sender
    /// may start more (flow control, not delivery tracking).
    DocAck {
        /// The space.
        space: String,
        /// Documents handled since the last acknowledgement.
        count: u32,
    },
    /// The sender's log does not make the receiver a member of `space` (its
    /// claim was refused, or it was revoked): the sender holds no session
    /// for it, so the receiver ends its own instead of retrying. Sent only
    /// to a peer that claimed the space, once per reason.
    Refuse {
        /// The space claimed.
        space: String,
        /// Why, for a person (at most [`MAX_REASON_LEN`] bytes).
        reason: String,
    },
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// An empty frame.
    #[error("empty frame")]
    Empty,
    /// A frame larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// A version this build does not speak.
    #[error("unsupported frame version {0} (this node speaks {VERSION})")]
    Version(u8),
    /// Bytes that are not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encodes a message as a frame body.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Writing CBOR into a Vec cannot fail for these plain types.
    if let Err(e) = ciborium::into_writer(message, &mut out) {
        tracing::error!(error = %e, "encoding a sync frame failed");
    }
    out
}

/// Decodes a frame body.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let (&version, body) = frame.split_first().ok_or(WireError::Empty)?;
    if frame.len() > MAX_FRAME {
        return Err(WireError::TooLarge(frame.len()));
    }
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    check_declared_lengths(body)?;
    let mut reader = body;
    let message: Message =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_CBOR_DEPTH)
            .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !reader.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            reader.len()
        )));
    }
    check_keys(&message)?;
    Ok(message)
}

/// Refuses space names and document keys that no replica could hold, so
/// junk never reaches the engine (bounds may have empty ids: they only
/// separate neighbours; claims' spaces are parsed by the engine).
fn check_keys(message: &Message) -> Result<(), WireError> {
    use crate::key::{check_id, check_name};
    let bad = |e: crate::error::Error| WireError::Malformed(e.to_string());
    let key = |k: &ItemKey, bound: bool| {
        check_name("collection", &k.collection).map_err(bad)?;
        if bound && k.id.is_empty() {
            return Ok(());
        }
        check_id(&k.id).map_err(bad)
    };
    match message {
        Message::Reconcile { space, lower, .. } => {
            check_name("space", space).map_err(bad)?;
            lower.as_ref().map_or(Ok(()), |l| key(l, true))
        }
        Message::Sync { space, key: k, .. } | Message::Doc { space, key: k, .. } => {
            check_name("space", space).map_err(bad)?;
            key(k, false)
        }
        Message::DocAck { space, .. } => check_name("space", space).map_err(bad),
        Message::Refuse { space, reason } => {
            check_name("space", space).map_err(bad)?;
            if reason.len() > MAX_REASON_LEN {
                return Err(WireError::Malformed(format!(
                    "a refusal reason of {} bytes (at most {MAX_REASON_LEN})",
                    reason.len()
                )));
            }
            Ok(())
        }
        Message::Offer { spaces } => spaces
            .iter()
            .try_for_each(|c| check_name("space", &c.space).map_err(bad)),
        _ => Ok(()),
    }
}

/// Refuses any CBOR length header that claims more than the bytes after
/// it (every element takes at least one byte), so no decoder sizes a buffer
/// or list from a length the frame cannot back.
fn check_declared_lengths(mut body: &[u8]) -> Result<(), WireError> {
    let short = || WireError::Malformed("a length exceeds the frame".into());
    while let Some((&initial, rest)) = body.split_first() {
        let (major, info) = (initial >> 5, initial & 0x1F);
        let width = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            // Indefinite lengths (or a break): their items follow one by one.
            31 => 0,
            _ => {
                return Err(WireError::Malformed(format!(
                    "bad CBOR head {initial:#04x}"
                )));
            }
        };
        let (arg, rest) = rest.split_at_checked(width).ok_or_else(short)?;
        let value = if width == 0 {
            u64::from(info)
        } else {
            arg.iter().fold(0u64, |v, &b| v << 8 | u64::from(b))
        };
        let left = rest.len() as u64;
        body = match major {
            // A definite byte or text string: skip its contents.
            2 | 3 if info != 31 => {
                let n = usize::try_from(value).ok().filter(|&n| n <= rest.len());
                &rest[n.ok_or_else(short)?..]
            }
            4 if info != 31 && value > left => return Err(short()),
            5 if info != 31 && value.saturating_mul(2) > left => return Err(short()),
            _ => rest,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn samples() -> Vec<Message> {
        let key = ItemKey {
            collection: "notes".into(),
            id: "a/b ✓".into(),
        };
        vec![
            Message::Hello {
                node: NodeId::from_bytes([7; 32]),
                challenge: [9; 32],
            },
            Message::Proof { signature: [4; 64] },
            Message::Reconcile {
                space: "personal".into(),
                lower: None,
                ranges: vec![Range {
                    upper: None,
                    payload: RangePayload::Items(vec![Item {
                        key: key.clone(),
                        hash: [3; 32],
                    }]),
                }],
            },
            Message::Sync {
                space: "personal".into(),
                key,
                data: vec![0x42, 0, 255],
            },
            Message::Offer {
                spaces: vec![Claim {
                    space: "team".into(),
                    proof: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
                }],
            },
            Message::Refuse {
                space: "team".into(),
                reason: "invite already used".into(),
            },
        ]
    }

    #[test]
    fn messages_round_trip() {
        for m in samples() {
            let frame = encode(&m);
            assert_eq!(frame[0], VERSION);
            assert_eq!(decode(&frame).unwrap(), m);
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
        let mut frame = encode(&samples()[0]);
        frame[0] = 9;
        assert_eq!(decode(&frame), Err(WireError::Version(9)));
        let good = encode(&samples()[2]);
        assert!(matches!(
            decode(&good[..good.len() - 2]),
            Err(WireError::Malformed(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(WireError::Malformed(_))));
        let mut big = vec![VERSION];
        big.resize(MAX_FRAME + 1, 0);
        assert_eq!(decode(&big), Err(WireError::TooLarge(MAX_FRAME + 1)));
    }

    #[test]
    fn invalid_keys_and_spaces_are_refused() {
        let sync = |space: &str, collection: &str, id: &str| {
            decode(&encode(&Message::Sync {
                space: space.into(),
                key: ItemKey {
                    collection: collection.into(),
                    id: id.into(),
                },
                data: Vec::new(),
            }))
        };
        assert!(sync("s", "c", "i").is_ok());
        for (space, collection, id) in [
            ("", "c", "i"),
            ("s p", "c", "i"),
            ("s", "no/tes", "i"),
            ("s", "c", ""),
            ("s", "c", "a\0b"),
            ("s", "c", &"x".repeat(crate::key::MAX_ID_LEN + 1)),
        ] {
            assert!(
                matches!(sync(space, collection, id), Err(WireError::Malformed(_))),
                "{space:?} {collection:?} {id:?}"
            );
        }
        let reconcile = |lower: ItemKey| {
            decode(&encode(&Message::Reconcile {
                space: "s".into(),
                lower: Some(lower),
                ranges: vec![Range {
                    upper: None,
                    payload: RangePayload::Skip,
                }],
            }))
        };
        let bound = |c: &str, id: &str| ItemKey {
            collection: c.into(),
            id: id.into(),
        };
        assert!(reconcile(bound("c", "")).is_ok());
        assert!(matches!(
            reconcile(bound("", "i")),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn refusal_reasons_are_bounded() {
        let refuse = |reason: String| {
            decode(&encode(&Message::Refuse {
                space: "team".into(),
                reason,
            }))
        };
        assert!(refuse("x".repeat(MAX_REASON_LEN)).is_ok());
        assert!(matches!(
            refuse("x".repeat(MAX_REASON_LEN + 1)),
            Err(WireError::Malformed(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The decoder's fuzz test: arbitrary bytes never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut versioned = vec![VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = decode(&versioned);
        }

        /// Mutating a valid frame never panics either.
        #[test]
        fn mutated_frames_never_panic(which in 0usize..4, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut frame = encode(&samples()[which]);
            let i = pos.index(frame.len());
            frame[i] = byte;
            let _ = decode(&frame);
        }
    }
}
