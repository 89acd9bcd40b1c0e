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

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use super::{Item, ItemKey, Range, RangePayload};
use crate::sync::reconcile::FP_LEN;

/// Most ranges one message may carry; more is a protocol violation.
pub const MAX_RANGES: usize = 8192;
const SEPARATOR: u8 = 0xFF;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
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

struct Reader<'a> {
    bytes: &'a [u8],
    prev: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err("ranges end early".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7F)
                .checked_shl(shift)
                .ok_or("varint overflows")?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    /// A count of elements that take at least `min` bytes each: no more
    /// than the bytes left can hold, so a huge count cannot make us
    /// allocate.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.varint()?;
        if n > (self.bytes.len() / min) as u64 {
            return Err(format!("count {n} exceeds the bytes left"));
        }
        Ok(n as usize)
    }

    /// A key whose first varint (`shared + 1`) was already read.
    fn key_after(&mut self, tag: u64) -> Result<ItemKey, String> {
        let shared = (tag - 1) as usize;
        if shared > self.prev.len() {
            return Err("key shares more than the previous key".into());
        }
        let len = self.varint()?;
        let suffix = self.take(usize::try_from(len).map_err(|_| "suffix too long")?)?;
        let mut j = self.prev[..shared].to_vec();
        j.extend_from_slice(suffix);
        let at = j
            .iter()
            .position(|&b| b == SEPARATOR)
            .ok_or("key without separator")?;
        let collection = std::str::from_utf8(&j[..at]).map_err(|_| "key not UTF-8")?;
        let id = std::str::from_utf8(&j[at + 1..]).map_err(|_| "key not UTF-8")?;
        let key = ItemKey {
            collection: collection.to_owned(),
            id: id.to_owned(),
        };
        self.prev = j;
        Ok(key)
    }

    fn key(&mut self) -> Result<ItemKey, String> {
        match self.varint()? {
            0 => Err("missing key".into()),
            tag => self.key_after(tag),
        }
    }
}

/// Decodes ranges; any inconsistency is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Vec<Range>, String> {
    let mut r = Reader {
        bytes,
        prev: Vec::new(),
    };
    let mut ranges = Vec::new();
    while !r.bytes.is_empty() {
        if ranges.len() >= MAX_RANGES {
            return Err(format!("more than {MAX_RANGES} ranges"));
        }
        let upper = match r.varint()? {
            0 => None,
            tag => Some(r.key_after(tag)?),
        };
        let payload = match r.take(1)?[0] {
            0 => RangePayload::Skip,
            1 => {
                let mut fp = [0u8; FP_LEN];
                fp.copy_from_slice(r.take(FP_LEN)?);
                RangePayload::Fingerprint {
                    fp,
                    count: r.varint()?,
                }
            }
            2 => {
                let n = r.count(2 + 32)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = r.key()?;
                    let hash = r.take(32)?.try_into().expect("32 bytes");
                    items.push(Item { key, hash });
                }
                RangePayload::Items(items)
            }
            3 => {
                let echo = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
                let n = r.count(2)?;
                let mut differ = Vec::with_capacity(n);
                for _ in 0..n {
                    differ.push(r.key()?);
                }
                RangePayload::Done { echo, differ }
            }
            mode => return Err(format!("unknown range mode {mode}")),
        };
        ranges.push(Range { upper, payload });
    }
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

    #[test]
    fn rejects_inconsistent_bytes() {
        // A key sharing more than the (empty) previous key.
        assert!(decode(&[5, 0, 0]).is_err());
        // A key without separator.
        assert!(decode(&[1, 1, b'a', 0]).is_err());
        // Unknown mode; truncated fingerprint; huge item count.
        assert!(decode(&[0, 9]).is_err());
        assert!(decode(&[0, 1, 1, 2]).is_err());
        assert!(decode(&[0, 2, 0xFF, 0xFF, 0xFF, 0x7F]).is_err());
        // Too many ranges.
        assert!(decode(&[0, 0].repeat(MAX_RANGES + 1)).is_err());
        assert_eq!(
            decode(&[0, 0].repeat(MAX_RANGES)).unwrap().len(),
            MAX_RANGES
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
