//! Frames a hostile peer sends: some well-formed (membership claims,
//! reconciliation probes, acknowledgements), some built byte by byte to hit
//! a decoder where it is weakest.

use std::io::Write as _;

use anyhow::{Context, Result, ensure};
use ed25519_dalek::SigningKey;
use weft_core::internals::auth::{Entry, Invite};
use weft_core::internals::sync::reconcile::FP_LEN;
use weft_core::internals::sync::wire::{self, Claim, Message, Range, RangePayload};

/// A claim of membership in the invite's space: our own `Join` entry citing
/// the invite token, signed with our node key.
pub fn join_claim(key: &SigningKey, token: &str) -> Result<Claim> {
    let invite = Invite::from_token(token)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let entry = Entry::join(key, &invite, now)?;
    Ok(Claim {
        space: invite.space().to_string(),
        proof: vec![serde_bytes::ByteBuf::from(entry.encode())],
    })
}

/// A reconciliation step over the whole space that the node must answer:
/// a fingerprint that matches nothing it holds.
pub fn probe(space: &str) -> Message {
    Message::Reconcile {
        space: space.to_owned(),
        lower: None,
        ranges: vec![Range {
            upper: None,
            payload: RangePayload::Fingerprint {
                fp: [0xA5; FP_LEN],
                count: 1,
            },
        }],
    }
}

/// "I hold no document of this space": the node answers by sending every
/// document it has.
pub fn nothing_here(space: &str) -> Message {
    Message::Reconcile {
        space: space.to_owned(),
        lower: None,
        ranges: vec![Range {
            upper: None,
            payload: RangePayload::Items(Vec::new()),
        }],
    }
}

/// An acknowledgement of `count` whole documents.
pub fn doc_ack(space: &str, count: u32) -> Message {
    Message::DocAck {
        space: space.to_owned(),
        count,
    }
}

/// The smallest valid Automerge sync message: no heads, no needs, no
/// summaries, no changes.
pub fn empty_sync_message() -> Vec<u8> {
    vec![0x42, 0, 0, 0, 0]
}

/// A `Reconcile` frame of about `wire_bytes` whose range keys are
/// prefix-coded so that each one repeats the whole previous key plus one
/// byte: a few bytes on the wire, a key as long as the message so far once
/// decoded (quadratic in the frame size). Built as bytes, so the test never
/// holds the decoded form.
pub fn nested_keys_reconcile(space: &str, wire_bytes: usize) -> Result<Vec<u8>> {
    let mut ranges = Vec::with_capacity(wire_bytes + 16);
    ranges.push(0); // bound: end of the key space
    ranges.push(3); // mode Done
    ranges.extend_from_slice(&0u64.to_le_bytes()); // echo
    let mut keys = Vec::new();
    // The first key: shares nothing, "a" 0xFF "a" (collection "a", id "a").
    keys.extend_from_slice(&[1, 3, b'a', 0xFF, b'a']);
    let (mut n, mut len) = (1u64, 3u64);
    while keys.len() < wire_bytes {
        put_varint(&mut keys, len + 1); // shares all of the previous key
        keys.extend_from_slice(&[1, b'a']); // and adds one byte
        n += 1;
        len += 1;
    }
    put_varint(&mut ranges, n);
    ranges.extend_from_slice(&keys);
    // Encode the message with no ranges, then splice ours in: `ranges` is
    // the last field, an empty CBOR byte string (0x40) at the very end.
    let mut frame = wire::encode(&Message::Reconcile {
        space: space.to_owned(),
        lower: None,
        ranges: Vec::new(),
    });
    ensure!(frame.pop() == Some(0x40), "unexpected Reconcile encoding");
    cbor_bytes_header(&mut frame, ranges.len());
    frame.extend_from_slice(&ranges);
    Ok(frame)
}

/// An Automerge sync message carrying one compressed change chunk whose
/// DEFLATE data inflates to `inflated` zero bytes. The inner change is not
/// valid (zeros), so a node that checks before inflating refuses it
/// cheaply; one that inflates first pays `inflated` bytes (and more).
pub fn decompression_bomb(inflated: usize) -> Result<Vec<u8>> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(zeros.len());
        deflate.write_all(&zeros[..n])?;
        left -= n;
    }
    let data = deflate.finish().context("deflate")?;
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83]; // Automerge magic bytes
    chunk.extend_from_slice(&[0, 0, 0, 0]); // checksum: checked after inflating
    chunk.push(2); // chunk type: compressed change
    put_varint(&mut chunk, data.len() as u64);
    chunk.extend_from_slice(&data);
    // Sync message v1: no heads, needs or summaries; one change.
    let mut message = vec![0x42, 0, 0, 0, 1];
    put_varint(&mut message, chunk.len() as u64);
    message.extend_from_slice(&chunk);
    Ok(message)
}

/// Unsigned LEB128, as both the range encoding and Automerge use.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A CBOR byte-string header (major type 2) for `len` bytes.
fn cbor_bytes_header(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=0xFF => out.extend_from_slice(&[0x58, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x5a);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_frame_is_a_reconcile_up_to_its_ranges() {
        // Small enough to decode here: under 200 keys, ids of up to as many
        // bytes (a valid id has at most 256).
        let frame = nested_keys_reconcile("s", 600).unwrap();
        match wire::decode(&frame).unwrap() {
            Message::Reconcile { ranges, .. } => match &ranges[0].payload {
                RangePayload::Done { differ, .. } => {
                    assert!(differ.len() > 150);
                    let last = differ.last().unwrap();
                    assert_eq!(last.id.len(), differ.len());
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bomb_is_small_on_the_wire() {
        let bomb = decompression_bomb(64 << 20).unwrap();
        assert!(bomb.len() < 128 << 10, "{}", bomb.len());
        assert!(automerge::sync::Message::decode(&bomb).is_ok());
    }
}
