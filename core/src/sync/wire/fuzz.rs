//! Fuzz tests of the frame decoders: arbitrary, mutated and adversarial
//! input never panics, and what decodes holds at most
//! [`MAX_AMPLIFICATION`] heap bytes per input byte. Case counts follow
//! `PROPTEST_CASES` (256 by default, a few seconds in a debug build).

use std::mem::size_of;

use proptest::prelude::*;

use super::ranges::{self, MAX_AMPLIFICATION, MAX_DECODED, MAX_KEY_LEN, MAX_RANGES, RangeError};
use super::*;
use crate::sync::reconcile::{DONE_CHUNK, FP_LEN, MAX_KEYS};

const SEPARATOR: u8 = 0xFF;

fn string_heap(s: &String) -> usize {
    s.capacity()
}

fn key_heap(k: &ItemKey) -> usize {
    string_heap(&k.collection) + string_heap(&k.id)
}

/// Heap bytes a decoded ranges list holds (capacities, not lengths).
fn ranges_heap(ranges: &Vec<Range>) -> usize {
    let mut total = ranges.capacity() * size_of::<Range>();
    for r in ranges {
        total += r.upper.as_ref().map_or(0, key_heap);
        total += match &r.payload {
            RangePayload::Skip | RangePayload::Fingerprint { .. } => 0,
            RangePayload::Items(items) => {
                items.capacity() * size_of::<Item>()
                    + items.iter().map(|i| key_heap(&i.key)).sum::<usize>()
            }
            RangePayload::Done { differ, .. } => {
                differ.capacity() * size_of::<ItemKey>()
                    + differ.iter().map(key_heap).sum::<usize>()
            }
        };
    }
    total
}

fn claims_heap(claims: &Vec<Claim>) -> usize {
    claims.capacity() * size_of::<Claim>()
        + claims
            .iter()
            .map(|c| {
                string_heap(&c.space)
                    + c.proof.capacity() * size_of::<serde_bytes::ByteBuf>()
                    + c.proof.iter().map(|p| p.capacity()).sum::<usize>()
            })
            .sum::<usize>()
}

/// Heap bytes a decoded message holds: every string, list and byte buffer.
fn heap(message: &Message) -> usize {
    match message {
        Message::Offer { spaces } => claims_heap(spaces),
        Message::Hello { .. } | Message::Proof { .. } => 0,
        Message::Reconcile {
            space,
            lower,
            ranges,
        } => string_heap(space) + lower.as_ref().map_or(0, key_heap) + ranges_heap(ranges),
        Message::Sync { space, key, data } | Message::Doc { space, key, data } => {
            string_heap(space) + key_heap(key) + data.capacity()
        }
        Message::DocAck { space, .. } => string_heap(space),
        Message::Refuse { space, reason } => string_heap(space) + string_heap(reason),
    }
}

/// Most heap any ranges payload decodes into, whatever its size: the
/// charged bytes plus the list entries the counts allow.
const RANGES_HEAP_CAP: usize =
    MAX_DECODED + MAX_KEYS * size_of::<Item>() + 2 * MAX_RANGES * size_of::<Range>();

fn varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

/// Appends joined key `k` prefix-coded against `prev`, with the longest
/// shared prefix (the encoder's choice).
fn raw_key(out: &mut Vec<u8>, prev: &mut Vec<u8>, k: &[u8]) {
    let shared = prev.iter().zip(k).take_while(|(a, b)| a == b).count();
    varint(out, shared as u64 + 1);
    varint(out, (k.len() - shared) as u64);
    out.extend_from_slice(&k[shared..]);
    *prev = k.to_vec();
}

/// The key after `prev`: the same key grown by `grow` letters, capped at
/// [`MAX_KEY_LEN`], its last letter changed, so chains of long keys sharing
/// all but their end arise quickly.
fn next_key(prev: &[u8], grow: usize, step: usize) -> Vec<u8> {
    let mut k = if prev.len() < 3 {
        // The longest collection: ids stay valid while keys reach the cap.
        let mut k = vec![b'c'; crate::key::MAX_NAME_LEN];
        k.extend_from_slice(&[SEPARATOR, b'a']);
        k
    } else {
        prev.to_vec()
    };
    k.extend((0..grow).map(|i| b'a' + ((i + step) % 26) as u8));
    k.truncate(MAX_KEY_LEN);
    if let Some(last) = k.last_mut() {
        *last = b'a' + (step % 26) as u8;
    }
    k
}

/// One adversarial range: mode, list length, key growth, how the count
/// lies (0: truthfully, 1: `u64::MAX`, 2: one more than listed).
type Plan = (u8, u16, u8, u8);

fn build(plan: &[Plan]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = Vec::new();
    let mut step = 0;
    for &(mode, n, grow, lie) in plan {
        step += 1;
        let bound = next_key(&prev, usize::from(grow), step);
        raw_key(&mut out, &mut prev, &bound);
        let mode = mode % 4;
        out.push(mode);
        let count = |out: &mut Vec<u8>| match lie % 3 {
            0 => varint(out, u64::from(n)),
            1 => varint(out, u64::MAX),
            _ => varint(out, u64::from(n) + 1),
        };
        match mode {
            1 => {
                out.extend_from_slice(&[7; FP_LEN]);
                count(&mut out);
            }
            2 | 3 => {
                if mode == 3 {
                    out.extend_from_slice(&[0; 8]);
                }
                count(&mut out);
                for _ in 0..n {
                    step += 1;
                    let k = next_key(&prev, usize::from(grow) / 8, step);
                    raw_key(&mut out, &mut prev, &k);
                    if mode == 2 {
                        out.extend_from_slice(&[1; 32]);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks the bounds on whatever `bytes` decode to as ranges.
fn check_ranges(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(decoded) = ranges::decode(bytes) {
        let h = ranges_heap(&decoded);
        prop_assert!(
            h <= MAX_AMPLIFICATION * bytes.len(),
            "{h} from {}",
            bytes.len()
        );
        prop_assert!(h <= RANGES_HEAP_CAP, "{h}");
        prop_assert_eq!(ranges::decode(&ranges::encode(&decoded)), Ok(decoded));
    }
    Ok(())
}

/// Checks the bounds on whatever `frame` decodes to.
fn check_frame(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = decode(frame) {
        let h = heap(&message);
        prop_assert!(
            h <= MAX_AMPLIFICATION * frame.len(),
            "{h} from {}",
            frame.len()
        );
    }
    Ok(())
}

fn reconcile_frame(ranges_bytes: &[u8]) -> Vec<u8> {
    // A Reconcile whose ranges are these bytes, built through the encoder
    // with a placeholder and patched, so any bytes can be sent.
    let mut frame = vec![VERSION];
    let value = ciborium::Value::Map(vec![(
        "Reconcile".into(),
        ciborium::Value::Map(vec![
            ("space".into(), "s".into()),
            ("lower".into(), ciborium::Value::Null),
            (
                "ranges".into(),
                ciborium::Value::Bytes(ranges_bytes.to_vec()),
            ),
        ]),
    )]);
    ciborium::into_writer(&value, &mut frame).expect("writing to a Vec");
    frame
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            0u8..4,
            0u16..200,
            0u8..80,
            prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        ),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Arbitrary bytes, as a frame and as ranges.
    #[test]
    fn arbitrary_bytes_stay_within_the_ratio(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_ranges(&bytes)?;
        let mut frame = vec![VERSION];
        frame.extend_from_slice(&bytes);
        check_frame(&frame)?;
        check_frame(&reconcile_frame(&bytes))?;
    }

    /// Adversarial ranges (long shared-prefix chains, lying counts, every
    /// mode), as built and with a few bytes changed.
    #[test]
    fn adversarial_ranges_stay_within_the_ratio(
        plan in plans(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = build(&plan);
        if plan.iter().all(|p| p.3 % 3 == 0) {
            // Truthful plans decode, so the ratio is checked on real keys.
            prop_assert!(ranges::decode(&bytes).is_ok());
        }
        check_ranges(&bytes)?;
        for (at, byte) in mutations {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        check_ranges(&bytes)?;
        check_frame(&reconcile_frame(&bytes))?;
    }

    /// Valid frames with bytes changed.
    #[test]
    fn mutated_frames_stay_within_the_ratio(
        plan in plans(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut frame = reconcile_frame(&build(&plan));
        for (at, byte) in mutations {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        check_frame(&frame)?;
    }
}

/// Finding 1: a ~1.4 MB `Reconcile` whose keys each repeat the previous
/// key and add one byte (4 wire bytes a key) used to decode into ~98 GiB.
/// Every shape of it is now refused by a bound, before the memory exists.
#[test]
fn finding_1_frame_is_refused() {
    let malformed = |frame: &[u8], want: RangeError| {
        let frame_len = frame.len();
        assert!((1_300_000..1_500_000).contains(&frame_len), "{frame_len}");
        match decode(frame) {
            Err(WireError::Malformed(m)) => assert!(m.contains(&want.to_string()), "{m}"),
            other => panic!("{other:?}"),
        }
    };
    // Every key (bounds too) is the previous one plus one letter: written
    // directly, as building each key would take quadratic time here.
    let growing = |chunk: usize| {
        let mut bytes = Vec::new();
        let mut len = 0u64;
        let mut key = |bytes: &mut Vec<u8>| {
            if len == 0 {
                // The longest collection, so the key outgrows MAX_KEY_LEN
                // before its id outgrows the id limit.
                let mut first = vec![b'c'; crate::key::MAX_NAME_LEN];
                first.extend_from_slice(&[SEPARATOR, b'a']);
                varint(bytes, 1);
                varint(bytes, first.len() as u64);
                bytes.extend_from_slice(&first);
                len = first.len() as u64;
            } else {
                varint(bytes, len + 1);
                bytes.extend_from_slice(&[1, b'a' + (len % 26) as u8]);
                len += 1;
            }
        };
        while bytes.len() < 1_400_000 {
            key(&mut bytes);
            bytes.push(3);
            bytes.extend_from_slice(&[0; 8]);
            varint(&mut bytes, chunk as u64);
            for _ in 0..chunk {
                key(&mut bytes);
                if bytes.len() >= 1_400_000 {
                    break;
                }
            }
        }
        reconcile_frame(&bytes)
    };
    // As found: one list of every key, refused at its count.
    malformed(
        &growing(350_000),
        RangeError::Count {
            count: 350_000,
            limit: DONE_CHUNK,
        },
    );
    // In lists of the allowed length: refused at the first key too long.
    malformed(
        &growing(DONE_CHUNK),
        RangeError::KeyTooLong(MAX_KEY_LEN as u64 + 1),
    );
    // Keys of the longest length varying in their last byte: refused at the
    // decode budget.
    let mut bytes = Vec::new();
    let mut prev = Vec::new();
    let mut k = vec![b'c'; crate::key::MAX_NAME_LEN];
    k.push(SEPARATOR);
    k.extend(std::iter::repeat_n(b'i', crate::key::MAX_ID_LEN));
    assert_eq!(k.len(), MAX_KEY_LEN);
    let mut step = 0;
    while bytes.len() < 1_400_000 {
        raw_key(&mut bytes, &mut prev, &next_key(&k, 0, step));
        bytes.push(3);
        bytes.extend_from_slice(&[0; 8]);
        varint(&mut bytes, DONE_CHUNK as u64);
        for _ in 0..DONE_CHUNK {
            step += 1;
            k = next_key(&k, 0, step);
            raw_key(&mut bytes, &mut prev, &k);
        }
    }
    malformed(&reconcile_frame(&bytes), RangeError::Budget);
}

/// Length headers claiming more than the frame holds are refused before
/// any decoder sizes a buffer from them (allocation is measured in
/// `core/tests/wire_alloc.rs`).
#[test]
fn huge_declared_lengths_are_errors() {
    let sync = encode(&Message::Sync {
        space: "s".into(),
        key: ItemKey {
            collection: "c".into(),
            id: "i".into(),
        },
        data: Vec::new(),
    });
    // `data` is the last field: swap its empty header for a 4 GiB one.
    assert_eq!(sync.last(), Some(&0x40));
    let mut frame = sync[..sync.len() - 1].to_vec();
    frame.extend_from_slice(&[0x5B, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3]);
    let refused = Err(WireError::Malformed("a length exceeds the frame".into()));
    assert_eq!(decode(&frame), refused);
    // A claim list declaring 2^32 claims.
    let hello = encode(&Message::Offer { spaces: Vec::new() });
    assert_eq!(hello.last(), Some(&0x80));
    let mut frame = hello[..hello.len() - 1].to_vec();
    frame.extend_from_slice(&[0x9B, 0, 0, 0, 1, 0, 0, 0, 0, 0xA0]);
    assert_eq!(decode(&frame), refused);
    // A map of 2 entries with 3 bytes left; the same with 4 decodes on.
    frame.truncate(hello.len() - 1);
    frame.extend_from_slice(&[0x81, 0xA2, 0x61, b'a', 0]);
    assert_eq!(decode(&frame), refused);
    frame.push(0);
    assert_ne!(decode(&frame), refused);
    assert!(matches!(decode(&frame), Err(WireError::Malformed(_))));
}

/// Nesting deeper than [`MAX_CBOR_DEPTH`] in an ignored field is refused;
/// every real message nests less.
#[test]
fn nesting_is_capped() {
    let proof = encode(&Message::Proof { signature: [4; 64] });
    // {"Proof": {"signature": ..}}: the inner map header follows "Proof".
    let inner = 1 + 1 + 1 + "Proof".len();
    assert_eq!(proof[inner], 0xA1);
    let nested = |depth: usize| {
        let mut frame = proof.clone();
        frame[inner] = 0xA2;
        frame.extend_from_slice(&[0x61, b'x']);
        frame.extend(std::iter::repeat_n(0x81, depth));
        frame.push(0);
        decode(&frame)
    };
    assert!(nested(MAX_CBOR_DEPTH - 4).is_ok());
    for depth in [MAX_CBOR_DEPTH, 10_000] {
        assert!(
            matches!(nested(depth), Err(WireError::Malformed(_))),
            "{depth}"
        );
    }
}
