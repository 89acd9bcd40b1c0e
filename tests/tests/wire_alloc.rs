//! Memory the frame decoder allocates for hostile frames, measured with a
//! counting allocator (a test binary of its own, so no other test's
//! allocations are counted): finding 1's frames and length headers that
//! claim gigabytes cost a small multiple of the frame, not what they claim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_core::internals::sync::reconcile::DONE_CHUNK;
use weft_core::internals::sync::wire::ranges::{MAX_DECODED, RangeError};
use weft_core::internals::sync::wire::{self, ItemKey, Message, VERSION, WireError};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Count both blocks: a moving realloc holds them at once.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Decodes `frame`, returning the result and the most bytes held at once
/// beyond what was held before.
fn decode_measured(frame: &[u8]) -> (Result<Message, WireError>, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let result = wire::decode(frame);
    (result, PEAK.load(Ordering::SeqCst) - base)
}

fn varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

fn reconcile_frame(ranges: Vec<u8>) -> Vec<u8> {
    let mut frame = vec![VERSION];
    let value = ciborium::Value::Map(vec![(
        "Reconcile".into(),
        ciborium::Value::Map(vec![
            ("space".into(), "s".into()),
            ("lower".into(), ciborium::Value::Null),
            ("ranges".into(), ciborium::Value::Bytes(ranges)),
        ]),
    )]);
    ciborium::into_writer(&value, &mut frame).expect("writing to a Vec");
    frame
}

const TARGET: usize = 1_400_000;
const COLLECTION: usize = weft_core::key::MAX_NAME_LEN;

/// Finding 1's frame: `Done` lists of `chunk` keys, each key the previous
/// one plus one letter.
fn growing(chunk: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut len = 0u64;
    let mut key = |bytes: &mut Vec<u8>| {
        if len == 0 {
            let mut first = vec![b'c'; COLLECTION];
            first.extend_from_slice(&[0xFF, b'a']);
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
    while bytes.len() < TARGET {
        key(&mut bytes);
        bytes.push(3);
        bytes.extend_from_slice(&[0; 8]);
        varint(&mut bytes, chunk as u64);
        for _ in 0..chunk {
            key(&mut bytes);
            if bytes.len() >= TARGET {
                break;
            }
        }
    }
    reconcile_frame(bytes)
}

/// Keys of the longest length, each differing from the last in its final
/// letter (4 wire bytes for 385 decoded).
fn longest_keys() -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut first = true;
    let mut letter = 0u8;
    let mut key = |bytes: &mut Vec<u8>| {
        let last = b'a' + letter % 26;
        letter = letter.wrapping_add(1);
        if first {
            first = false;
            let mut k = vec![b'c'; COLLECTION];
            k.push(0xFF);
            k.extend(std::iter::repeat_n(b'i', weft_core::key::MAX_ID_LEN - 1));
            k.push(last);
            varint(bytes, 1);
            varint(bytes, k.len() as u64);
            bytes.extend_from_slice(&k);
        } else {
            varint(bytes, wire::ranges::MAX_KEY_LEN as u64);
            bytes.extend_from_slice(&[1, last]);
        }
    };
    while bytes.len() < TARGET {
        key(&mut bytes);
        bytes.push(3);
        bytes.extend_from_slice(&[0; 8]);
        varint(&mut bytes, DONE_CHUNK as u64);
        for _ in 0..DONE_CHUNK {
            key(&mut bytes);
        }
    }
    reconcile_frame(bytes)
}

fn refused_with(result: &Result<Message, WireError>, want: &RangeError) -> bool {
    matches!(result, Err(WireError::Malformed(m)) if m.contains(&want.to_string()))
}

#[test]
fn hostile_frames_allocate_a_small_multiple_of_their_size() {
    // Reading the ranges byte string may double its buffer while copying:
    // about three frames at once, whatever the frame claims.
    let (frame, want) = (
        growing(350_000),
        RangeError::Count {
            count: 350_000,
            limit: DONE_CHUNK,
        },
    );
    let (result, peak) = decode_measured(&frame);
    assert!(refused_with(&result, &want), "{result:?}");
    assert!(peak <= 3 * frame.len(), "{peak} for {}", frame.len());

    let frame = growing(DONE_CHUNK);
    let (result, peak) = decode_measured(&frame);
    let want = RangeError::KeyTooLong(wire::ranges::MAX_KEY_LEN as u64 + 1);
    assert!(refused_with(&result, &want), "{result:?}");
    assert!(peak <= 3 * frame.len(), "{peak} for {}", frame.len());

    // Up to the decode budget in keys (plus their list entries) on top.
    let frame = longest_keys();
    let (result, peak) = decode_measured(&frame);
    assert!(refused_with(&result, &RangeError::Budget), "{result:?}");
    assert!(
        peak <= 3 * frame.len() + 2 * MAX_DECODED,
        "{peak} for {}",
        frame.len()
    );

    // Length headers claiming 4 GiB of data, or 2^32 claims.
    let sync = wire::encode(&Message::Sync {
        space: "s".into(),
        key: ItemKey {
            collection: "c".into(),
            id: "i".into(),
        },
        data: Vec::new(),
    });
    let mut frame = sync[..sync.len() - 1].to_vec();
    frame.extend_from_slice(&[0x5B, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3]);
    let offer = wire::encode(&Message::Offer { spaces: Vec::new() });
    let mut claims = offer[..offer.len() - 1].to_vec();
    claims.extend_from_slice(&[0x9B, 0, 0, 0, 1, 0, 0, 0, 0, 0xA0]);
    for frame in [frame, claims] {
        let (result, peak) = decode_measured(&frame);
        assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
        assert!(peak <= 16 * 1024, "{peak}");
    }

    // The counter sees real decoding: an honest 1 MiB document is held.
    let doc = wire::encode(&Message::Doc {
        space: "s".into(),
        key: ItemKey {
            collection: "c".into(),
            id: "i".into(),
        },
        data: vec![7; 1 << 20],
    });
    let (result, peak) = decode_measured(&doc);
    assert!(result.is_ok());
    assert!((1 << 20..=3 * doc.len()).contains(&peak), "{peak}");
}
