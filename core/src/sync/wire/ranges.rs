//! The compact encoding of a `Reconcile` message's ranges: one CBOR byte
//! string holding, per range, its bound and payload. Keys (bounds and item
//! keys alike) are `collection 0xFF id` (0xFF never occurs in UTF-8),
//! prefix-coded against the previous key, so the sorted keys of one message
//! cost a few bytes each.
//!
//! ```text
//! range   = bound mode payload
//! bound   = varint 0                       end of the key space
//!         | key                            (a key never starts with varint 0)
//! key     = varint (shared + 1), varint suffix_len, suffix
//! mode 0  = Skip
//! mode 1  = Fingerprint: 16 bytes, varint count
//! mode 2  = Items: varint n, n * (key, 32-byte hash)
//! mode 3  = Done: 8-byte little-endian echo, varint n, n * key
//! ```
//!
//! Decoding is bounded by its input: keys are at most [`MAX_KEY_LEN`] bytes
//! and valid document-key parts, counts are checked against the bytes left
//! and [`MAX_RANGES`] / [`MAX_KEYS`] / the per-range caps, and every key and
//! hash materialized is charged to [`MAX_DECODED`]. The decoded value's heap
//! is therefore at most [`MAX_AMPLIFICATION`] times the input.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use super::{Item, ItemKey, Range, RangePayload};
use crate::key::{MAX_JOINED_KEY_LEN, check_id, check_name};
use crate::sync::reconcile::{DONE_CHUNK, FP_LEN, ITEMS_CAP, MAX_KEYS, MESSAGE_BUDGET};

/// Most ranges one message may carry; more is a protocol violation.
pub const MAX_RANGES: usize = 8192;
/// Longest key (`collection 0xFF id`) on the wire: the longest collection
/// name and document id `crate::key` accepts, so no real key is refused.
pub const MAX_KEY_LEN: usize = MAX_JOINED_KEY_LEN;
/// Most bytes one ranges payload may decode into, charged as the reply
/// builder estimates them (every key in full plus 3, every hash, every range
/// header): an honest reply stops adding groups once its estimate passes
/// `MESSAGE_BUDGET`, and its one oversized first group (at most 1,024 keys,
/// ~0.43 MiB) plus a closing fingerprint stay under the second mebibyte.
pub const MAX_DECODED: usize = 2 * MESSAGE_BUDGET;
/// Most heap bytes a decoded payload holds per input byte: the worst case is
/// a key repeating the longest previous one, 3 wire bytes for a
/// `MAX_KEY_LEN - 1`-byte key plus its `ItemKey` (the fuzz tests assert it).
pub const MAX_AMPLIFICATION: usize = (MAX_KEY_LEN - 1 + std::mem::size_of::<ItemKey>()).div_ceil(3);
const SEPARATOR: u8 = 0xFF;
/// Estimated bytes of one key beyond its text (the reply builder's figure).
const KEY_CHARGE: usize = 3;
const HASH_LEN: usize = 32;

/// Why a ranges payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// The bytes end inside a range.
    #[error("ranges end early")]
    Truncated,
    /// A varint that overflows 64 bits or is not minimally encoded.
    #[error("bad varint: {0}")]
    Varint(&'static str),
    /// A list longer than its cap or than the bytes left can hold.
    #[error("count {count} exceeds the limit of {limit}")]
    Count {
        /// The count sent.
        count: u64,
        /// The most allowed here.
        limit: usize,
    },
    /// More than [`MAX_RANGES`] ranges.
    #[error("more than {MAX_RANGES} ranges")]
    TooManyRanges,
    /// More than [`MAX_KEYS`] listed keys.
    #[error("more than {MAX_KEYS} keys")]
    TooManyKeys,
    /// A key longer than [`MAX_KEY_LEN`].
    #[error("key of {0} bytes exceeds {MAX_KEY_LEN}")]
    KeyTooLong(u64),
    /// A key sharing more bytes than the previous key has.
    #[error("key shares {shared} bytes with a previous key of {prev}")]
    Shared {
        /// Bytes the key claims to share.
        shared: u64,
        /// Length of the previous key.
        prev: usize,
    },
    /// A key that is not a valid collection and document id.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Decoding would materialize more than [`MAX_DECODED`] bytes.
    #[error("ranges decode to more than {MAX_DECODED} bytes")]
    Budget,
    /// A range mode this build does not know.
    #[error("unknown range mode {0}")]
    Mode(u8),
    /// An unbounded range that is not the last one.
    #[error("an unbounded range before the last")]
    Unbounded,
    /// A list entry without a key.
    #[error("missing key")]
    MissingKey,
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

fn joined(key: &ItemKey) -> Vec<u8> {
    let mut j = Vec::with_capacity(key.collection.len() + 1 + key.id.len());
    j.extend_from_slice(key.collection.as_bytes());
    j.push(SEPARATOR);
    j.extend_from_slice(key.id.as_bytes());
    j
}

struct Writer {
    out: Vec<u8>,
    prev: Vec<u8>,
}

impl Writer {
    fn key(&mut self, key: &ItemKey) {
        let j = joined(key);
        let shared = j.iter().zip(&self.prev).take_while(|(a, b)| a == b).count();
        put_varint(&mut self.out, shared as u64 + 1);
        put_varint(&mut self.out, (j.len() - shared) as u64);
        self.out.extend_from_slice(&j[shared..]);
        self.prev = j;
    }
}

/// Encodes ranges to bytes.
pub fn encode(ranges: &[Range]) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        prev: Vec::new(),
    };
    for range in ranges {
        match &range.upper {
            None => w.out.push(0),
            Some(k) => w.key(k),
        }
        match &range.payload {
            RangePayload::Skip => w.out.push(0),
            RangePayload::Fingerprint { fp, count } => {
                w.out.push(1);
                w.out.extend_from_slice(fp);
                put_varint(&mut w.out, *count);
            }
            RangePayload::Items(items) => {
                w.out.push(2);
                put_varint(&mut w.out, items.len() as u64);
                for item in items {
                    w.key(&item.key);
                    w.out.extend_from_slice(&item.hash);
                }
            }
            RangePayload::Done { echo, differ } => {
                w.out.push(3);
                w.out.extend_from_slice(&echo.to_le_bytes());
                put_varint(&mut w.out, differ.len() as u64);
                for key in differ {
                    w.key(key);
                }
            }
        }
    }
    w.out
}

/// Whether a key bounds a range (its id may be empty: bounds only separate
/// neighbours) or names a document (a full, valid key).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyRole {
    Bound,
    Document,
}

struct Reader<'a> {
    bytes: &'a [u8],
    /// The previous key, joined; never longer than [`MAX_KEY_LEN`].
    prev: Vec<u8>,
    /// Bytes charged so far against [`MAX_DECODED`].
    charged: usize,
    /// Listed keys so far, against [`MAX_KEYS`].
    keys: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RangeError> {
        if n > self.bytes.len() {
            return Err(RangeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RangeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, RangeError> {
        use unsigned_varint::decode::{self, Error};
        let (v, rest) = decode::u64(self.bytes).map_err(|e| match e {
            Error::Insufficient => RangeError::Truncated,
            Error::NotMinimal => RangeError::Varint("not minimal"),
            _ => RangeError::Varint("overflows 64 bits"),
        })?;
        // The crate accepts a tenth byte above 1 and drops its high bits.
        let used = self.bytes.len() - rest.len();
        if used == 10 && self.bytes[9] > 1 {
            return Err(RangeError::Varint("overflows 64 bits"));
        }
        self.bytes = rest;
        Ok(v)
    }

    fn charge(&mut self, bytes: usize) -> Result<(), RangeError> {
        self.charged += bytes;
        if self.charged > MAX_DECODED {
            return Err(RangeError::Budget);
        }
        Ok(())
    }

    /// A count of list entries that take at least `min` bytes each: no more
    /// than `limit` nor than the bytes left can hold, so a huge count cannot
    /// make us allocate.
    fn count(&mut self, min: usize, limit: usize) -> Result<usize, RangeError> {
        let count = self.varint()?;
        let limit = limit.min(self.bytes.len() / min);
        if count > limit as u64 {
            return Err(RangeError::Count { count, limit });
        }
        self.keys += count as usize;
        if self.keys > MAX_KEYS {
            return Err(RangeError::TooManyKeys);
        }
        Ok(count as usize)
    }

    /// A key whose first varint (`shared + 1`, nonzero) was already read.
    /// The new key is built in place of the previous one, so nothing longer
    /// than [`MAX_KEY_LEN`] is ever allocated.
    fn key_after(&mut self, tag: u64, role: KeyRole) -> Result<ItemKey, RangeError> {
        let shared = tag - 1;
        if shared > self.prev.len() as u64 {
            return Err(RangeError::Shared {
                shared,
                prev: self.prev.len(),
            });
        }
        let suffix_len = self.varint()?;
        let len = shared.saturating_add(suffix_len);
        if len > MAX_KEY_LEN as u64 {
            return Err(RangeError::KeyTooLong(len));
        }
        let suffix = self.take(suffix_len as usize)?;
        self.charge(len as usize + KEY_CHARGE)?;
        self.prev.truncate(shared as usize);
        self.prev.extend_from_slice(suffix);
        let key = split(&self.prev)?;
        let invalid = |e: crate::error::Error| match e {
            crate::error::Error::InvalidKey(m) => RangeError::InvalidKey(m),
            other => RangeError::InvalidKey(other.to_string()),
        };
        check_name("collection", &key.collection).map_err(invalid)?;
        if !(role == KeyRole::Bound && key.id.is_empty()) {
            check_id(&key.id).map_err(invalid)?;
        }
        Ok(key)
    }

    fn key(&mut self) -> Result<ItemKey, RangeError> {
        match self.varint()? {
            0 => Err(RangeError::MissingKey),
            tag => self.key_after(tag, KeyRole::Document),
        }
    }
}

/// Splits a joined key at its separator.
fn split(joined: &[u8]) -> Result<ItemKey, RangeError> {
    let at = joined
        .iter()
        .position(|&b| b == SEPARATOR)
        .ok_or_else(|| RangeError::InvalidKey("no separator".into()))?;
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| RangeError::InvalidKey("not UTF-8".into()))
    };
    Ok(ItemKey {
        collection: text(&joined[..at])?,
        id: text(&joined[at + 1..])?,
    })
}

/// Decodes ranges; any inconsistency is an error, never a panic, and the
/// result stays within the bounds in the module doc.
pub fn decode(bytes: &[u8]) -> Result<Vec<Range>, RangeError> {
    let mut r = Reader {
        bytes,
        prev: Vec::with_capacity(MAX_KEY_LEN),
        charged: 0,
        keys: 0,
    };
    let mut ranges = Vec::new();
    while !r.bytes.is_empty() {
        if ranges.len() >= MAX_RANGES {
            return Err(RangeError::TooManyRanges);
        }
        let upper = match r.varint()? {
            0 => None,
            tag => Some(r.key_after(tag, KeyRole::Bound)?),
        };
        let payload = match r.take(1)?[0] {
            0 => {
                r.charge(1)?;
                RangePayload::Skip
            }
            1 => {
                r.charge(1 + FP_LEN + 10)?;
                RangePayload::Fingerprint {
                    fp: r.array()?,
                    count: r.varint()?,
                }
            }
            2 => {
                r.charge(6)?;
                // An item takes at least a 2-byte key and its hash.
                let n = r.count(2 + HASH_LEN, ITEMS_CAP)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = r.key()?;
                    r.charge(HASH_LEN)?;
                    items.push(Item {
                        key,
                        hash: r.array()?,
                    });
                }
                RangePayload::Items(items)
            }
            3 => {
                r.charge(14)?;
                let echo = u64::from_le_bytes(r.array()?);
                let n = r.count(2, DONE_CHUNK)?;
                let mut differ = Vec::with_capacity(n);
                for _ in 0..n {
                    differ.push(r.key()?);
                }
                RangePayload::Done { echo, differ }
            }
            mode => return Err(RangeError::Mode(mode)),
        };
        if upper.is_none() && !r.bytes.is_empty() {
            return Err(RangeError::Unbounded);
        }
        ranges.push(Range { upper, payload });
    }
    // Growth may have doubled the list: hold only what was decoded.
    ranges.shrink_to_fit();
    Ok(ranges)
}

/// `#[serde(with = ...)]` glue: ranges travel as one CBOR byte string.
pub fn serialize<S: Serializer>(ranges: &[Range], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&encode(ranges))
}

/// See [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Range>, D::Error> {
    let bytes = serde_bytes::ByteBuf::deserialize(d)?;
    decode(&bytes).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(c: &str, id: &str) -> ItemKey {
        ItemKey {
            collection: c.into(),
            id: id.into(),
        }
    }

    #[test]
    fn round_trips_every_mode_compactly() {
        let ranges = vec![
            Range {
                upper: Some(key("notes", "n0001000")),
                payload: RangePayload::Fingerprint {
                    fp: [7; FP_LEN],
                    count: 1000,
                },
            },
            Range {
                upper: Some(key("notes", "n0002000")),
                payload: RangePayload::Skip,
            },
            Range {
                upper: Some(key("notes", "n0003000")),
                payload: RangePayload::Items(vec![
                    Item {
                        key: key("notes", "n0002001"),
                        hash: [1; 32],
                    },
                    Item {
                        key: key("notes", "n0002002"),
                        hash: [2; 32],
                    },
                ]),
            },
            Range {
                upper: None,
                payload: RangePayload::Done {
                    echo: u64::MAX,
                    differ: vec![key("tasks", "é"), key("tasks", "éa")],
                },
            },
        ];
        let bytes = encode(&ranges);
        assert_eq!(decode(&bytes).unwrap(), ranges);
        // Prefix coding: the second item key costs 3 bytes, not 15.
        assert!(bytes.len() < 150, "{}", bytes.len());
    }

    /// Appends joined key `k` prefix-coded against `prev` (any bytes, so
    /// tests can build what the encoder never would).
    fn raw_key(out: &mut Vec<u8>, prev: &mut Vec<u8>, k: &[u8]) {
        let shared = prev.iter().zip(k).take_while(|(a, b)| a == b).count();
        put_varint(out, shared as u64 + 1);
        put_varint(out, (k.len() - shared) as u64);
        out.extend_from_slice(&k[shared..]);
        *prev = k.to_vec();
    }

    #[test]
    fn rejects_inconsistent_bytes() {
        // A key sharing more than the (empty) previous key.
        assert_eq!(
            decode(&[5, 0, 0]),
            Err(RangeError::Shared { shared: 4, prev: 0 })
        );
        // A key without separator.
        assert!(matches!(
            decode(&[1, 1, b'a', 0]),
            Err(RangeError::InvalidKey(_))
        ));
        // Unknown mode; truncated fingerprint; huge item count.
        assert_eq!(decode(&[0, 9]), Err(RangeError::Mode(9)));
        assert_eq!(decode(&[0, 1, 1, 2]), Err(RangeError::Truncated));
        assert!(matches!(
            decode(&[0, 2, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(RangeError::Count { .. })
        ));
        // An unbounded range before the last.
        assert_eq!(decode(&[0, 0, 0, 0]), Err(RangeError::Unbounded));
    }

    #[test]
    fn range_count_is_capped_at_max_ranges() {
        let mut wire = Vec::new();
        let mut prev: Vec<u8> = Vec::new();
        for i in 0..=MAX_RANGES {
            let mut k = b"c\xFF".to_vec();
            k.extend_from_slice(format!("{i:05}").as_bytes());
            raw_key(&mut wire, &mut prev, &k);
            wire.push(0);
            if i + 1 == MAX_RANGES {
                assert_eq!(decode(&wire).unwrap().len(), MAX_RANGES);
            }
        }
        assert_eq!(decode(&wire), Err(RangeError::TooManyRanges));
    }

    #[test]
    fn varints_are_minimal_leb128_and_64_bit() {
        for (v, bytes) in [
            (0u64, vec![0u8]),
            (127, vec![0x7F]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xAC, 0x02]),
            (u64::MAX, [vec![0xFF; 9], vec![0x01]].concat()),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            // As a fingerprint count, which takes any u64.
            let mut range = vec![0, 1];
            range.extend_from_slice(&[0; FP_LEN]);
            range.extend_from_slice(&bytes);
            assert!(matches!(
                decode(&range).unwrap()[0].payload,
                RangePayload::Fingerprint { count, .. } if count == v
            ));
        }
        let fp_count = |varint: &[u8]| {
            let mut range = vec![0, 1];
            range.extend_from_slice(&[0; FP_LEN]);
            range.extend_from_slice(varint);
            decode(&range)
        };
        // Non-minimal: 0 as two bytes.
        assert_eq!(
            fp_count(&[0x80, 0x00]),
            Err(RangeError::Varint("not minimal"))
        );
        // Bits above 63 in the tenth byte, and an eleventh byte.
        let mut over = vec![0xFF; 9];
        over.push(0x02);
        assert_eq!(
            fp_count(&over),
            Err(RangeError::Varint("overflows 64 bits"))
        );
        let mut long = vec![0xFF; 10];
        long.push(0x01);
        assert_eq!(
            fp_count(&long),
            Err(RangeError::Varint("overflows 64 bits"))
        );
    }

    #[test]
    fn keys_must_be_valid_and_at_most_max_key_len() {
        let done = |keys: &[&[u8]]| {
            let mut wire = vec![0, 3];
            wire.extend_from_slice(&[0; 8]);
            put_varint(&mut wire, keys.len() as u64);
            let mut prev = Vec::new();
            for k in keys {
                raw_key(&mut wire, &mut prev, k);
            }
            decode(&wire)
        };
        let longest = [
            "c".repeat(crate::key::MAX_NAME_LEN).into_bytes(),
            vec![SEPARATOR],
            "i".repeat(crate::key::MAX_ID_LEN).into_bytes(),
        ]
        .concat();
        assert_eq!(longest.len(), MAX_KEY_LEN);
        assert!(done(&[&longest]).is_ok());
        let mut longer = longest.clone();
        longer.push(b'i');
        assert_eq!(
            done(&[&longer]),
            Err(RangeError::KeyTooLong(MAX_KEY_LEN as u64 + 1))
        );
        for bad in [
            &b"c\xFF"[..],       // empty id on a document key
            b"\xFFid",           // empty collection
            b"no/tes\xFFid",     // a collection name with '/'
            b"c\xFFline\nbreak", // a control character in the id
            b"c\xFF\xC3",        // not UTF-8
            b"c\xFFa\xFFb",      // a second separator (not UTF-8)
        ] {
            assert!(
                matches!(done(&[bad]), Err(RangeError::InvalidKey(_))),
                "{bad:?}"
            );
        }
        // A bound may have an empty id: it sits between two collections.
        let mut wire = Vec::new();
        raw_key(&mut wire, &mut Vec::new(), b"tasks\xFF");
        wire.push(0);
        assert_eq!(decode(&wire).unwrap()[0].upper, Some(key("tasks", "")));
    }

    #[test]
    fn list_lengths_are_capped_per_range_and_per_message() {
        let keys =
            |n: usize| -> Vec<ItemKey> { (0..n).map(|i| key("c", &format!("{i:07}"))).collect() };
        let done = |n: usize| Range {
            upper: None,
            payload: RangePayload::Done {
                echo: 0,
                differ: keys(n),
            },
        };
        assert!(decode(&encode(&[done(DONE_CHUNK)])).is_ok());
        assert!(matches!(
            decode(&encode(&[done(DONE_CHUNK + 1)])),
            Err(RangeError::Count { limit, .. }) if limit == DONE_CHUNK
        ));
        let items = |n: usize| Range {
            upper: None,
            payload: RangePayload::Items(
                keys(n)
                    .into_iter()
                    .map(|key| Item { key, hash: [1; 32] })
                    .collect(),
            ),
        };
        assert!(decode(&encode(&[items(ITEMS_CAP)])).is_ok());
        assert!(matches!(
            decode(&encode(&[items(ITEMS_CAP + 1)])),
            Err(RangeError::Count { limit, .. }) if limit == ITEMS_CAP
        ));
        // MAX_KEYS over the whole message: full Done ranges of the shortest
        // key (the decoder leaves order to `reconcile`), under the budget.
        let mut wire = Vec::new();
        let mut prev = Vec::new();
        for _ in 0..=MAX_KEYS / DONE_CHUNK {
            raw_key(&mut wire, &mut prev, b"c\xFFb");
            wire.push(3);
            wire.extend_from_slice(&[0; 8]);
            put_varint(&mut wire, DONE_CHUNK as u64);
            for _ in 0..DONE_CHUNK {
                raw_key(&mut wire, &mut prev, b"c\xFFa");
            }
        }
        assert_eq!(decode(&wire), Err(RangeError::TooManyKeys));
    }

    /// Finding 1 at the ranges layer: keys of the longest length, each
    /// sharing all but the last byte with the previous one (3 bytes on the
    /// wire for 385 decoded), stop at the decode budget.
    #[test]
    fn long_shared_keys_stop_at_the_decode_budget() {
        let mut base = [
            "c".repeat(crate::key::MAX_NAME_LEN).into_bytes(),
            vec![SEPARATOR],
            "i".repeat(crate::key::MAX_ID_LEN).into_bytes(),
        ]
        .concat();
        let mut wire = Vec::new();
        let mut prev = Vec::new();
        for _ in 0..MAX_KEYS / DONE_CHUNK {
            *base.last_mut().unwrap() = b'z';
            raw_key(&mut wire, &mut prev, &base);
            wire.push(3);
            wire.extend_from_slice(&[0; 8]);
            put_varint(&mut wire, DONE_CHUNK as u64);
            for k in 0..DONE_CHUNK {
                *base.last_mut().unwrap() = b'a' + (k % 26) as u8;
                raw_key(&mut wire, &mut prev, &base);
            }
        }
        assert!(wire.len() < 2 * 1024 * 1024, "{}", wire.len());
        assert_eq!(decode(&wire), Err(RangeError::Budget));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
