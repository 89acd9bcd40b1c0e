//! Fingerprints of ranges of items.
//!
//! Each item contributes `sha256(key, heads hash)`; a range's fingerprint
//! is a hash of the sum (mod 2^256) of its items' contributions and their
//! count. Addition is order-independent like XOR, but an item added twice
//! does not cancel out, and sums subtract: with prefix sums over the sorted
//! items, any range's fingerprint costs two binary searches.

use sha2::{Digest, Sha256};

use crate::sync::wire::{Item, ItemKey};

/// Bytes of a fingerprint on the wire: 128 bits, so equal fingerprints of
/// different sets are never met by chance.
pub const FP_LEN: usize = 16;

/// A range's fingerprint.
pub type Fingerprint = [u8; FP_LEN];

/// A sum of item hashes modulo 2^256, as little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum([u64; 4]);

impl Sum {
    /// The sum of one item hash.
    pub fn of(hash: &[u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(hash.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        Self(limbs)
    }

    /// `self + other` modulo 2^256.
    pub fn plus(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, o) in out.iter_mut().enumerate() {
            let (s, c1) = self.0[i].overflowing_add(other.0[i]);
            let (s, c2) = s.overflowing_add(u64::from(carry));
            *o = s;
            carry = c1 || c2;
        }
        Self(out)
    }

    /// `self - other` modulo 2^256.
    pub fn minus(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, o) in out.iter_mut().enumerate() {
            let (s, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (s, b2) = s.overflowing_sub(u64::from(borrow));
            *o = s;
            borrow = b1 || b2;
        }
        Self(out)
    }

    /// The low 64 bits: what a `Done` range echoes back, so its receiver
    /// can tell whether its side of the range changed since it was sent.
    pub fn echo(&self) -> u64 {
        self.0[0]
    }

    /// The fingerprint of a range with this sum and `count` items. Hashing
    /// (rather than truncating the sum) keeps the count in and makes
    /// fingerprints of related ranges unrelated.
    pub fn fingerprint(&self, count: u64) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(b"weft/rbsr/range/1\0");
        for limb in self.0 {
            hasher.update(limb.to_le_bytes());
        }
        hasher.update(count.to_le_bytes());
        let digest = hasher.finalize();
        let mut fp = [0u8; FP_LEN];
        fp.copy_from_slice(&digest[..FP_LEN]);
        fp
    }
}

/// An item's contribution: depends on its key and on its document's state,
/// so a changed document changes the fingerprints of its ranges.
pub fn item_sum(item: &Item) -> Sum {
    let mut hasher = Sha256::new();
    hasher.update(b"weft/rbsr/item/1\0");
    for part in [&item.key.collection, &item.key.id] {
        hasher.update((part.len() as u32).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(item.hash);
    Sum::of(&hasher.finalize().into())
}

/// One replica's items of a space, sorted by key, with prefix sums.
#[derive(Debug, Default)]
pub struct Index {
    items: Vec<Item>,
    /// `prefix[i]` is the sum of the first `i` items.
    prefix: Vec<Sum>,
}

impl Index {
    /// Sorts the items (the store lists them sorted already) and hashes
    /// each once.
    pub fn new(mut items: Vec<Item>) -> Self {
        if !items.is_sorted() {
            items.sort();
        }
        // A key listed twice would make ranges ambiguous; keep the first.
        items.dedup_by(|b, a| a.key == b.key);
        let mut prefix = Vec::with_capacity(items.len() + 1);
        let mut sum = Sum::default();
        prefix.push(sum);
        for item in &items {
            sum = sum.plus(item_sum(item));
            prefix.push(sum);
        }
        Self { items, prefix }
    }

    /// All items, sorted.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Index of the first item with key `>= bound` (`None`: past the end).
    pub fn position(&self, bound: Option<&ItemKey>) -> usize {
        match bound {
            None => self.items.len(),
            Some(b) => self.items.partition_point(|i| i.key < *b),
        }
    }

    /// Indices of the items in `[lower, upper)`.
    pub fn span(&self, lower: Option<&ItemKey>, upper: Option<&ItemKey>) -> std::ops::Range<usize> {
        let start = lower.map_or(0, |l| self.position(Some(l)));
        let end = self.position(upper).max(start);
        start..end
    }

    /// Sum of the items at `range`.
    pub fn sum(&self, range: std::ops::Range<usize>) -> Sum {
        self.prefix[range.end].minus(self.prefix[range.start])
    }

    /// Fingerprint of the items at `range`.
    pub fn fingerprint(&self, range: std::ops::Range<usize>) -> Fingerprint {
        let count = range.len() as u64;
        self.sum(range).fingerprint(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, h: u8) -> Item {
        Item {
            key: ItemKey {
                collection: "c".into(),
                id: id.into(),
            },
            hash: [h; 32],
        }
    }

    #[test]
    fn sums_add_and_subtract_with_carries() {
        let max = Sum([u64::MAX; 4]);
        let one = Sum([1, 0, 0, 0]);
        assert_eq!(max.plus(one), Sum::default());
        assert_eq!(Sum::default().minus(one), max);
        let a = Sum([u64::MAX, 5, u64::MAX, 7]);
        let b = Sum([3, u64::MAX, 1, 2]);
        assert_eq!(a.plus(b).minus(b), a);
        assert_eq!(a.plus(b), b.plus(a));
    }

    #[test]
    fn range_fingerprints_match_direct_computation() {
        let items: Vec<Item> = (0..50).map(|i| item(&format!("{i:03}"), i as u8)).collect();
        let mut shuffled = items.clone();
        shuffled.reverse();
        let index = Index::new(shuffled);
        assert_eq!(index.items(), &items[..]);
        for (start, end) in [(0, 50), (3, 17), (10, 10), (49, 50)] {
            let direct = items[start..end]
                .iter()
                .fold(Sum::default(), |s, i| s.plus(item_sum(i)));
            assert_eq!(index.sum(start..end), direct);
            assert_eq!(
                index.fingerprint(start..end),
                direct.fingerprint((end - start) as u64)
            );
        }
        let lo = items[5].key.clone();
        let hi = items[9].key.clone();
        assert_eq!(index.span(Some(&lo), Some(&hi)), 5..9);
        assert_eq!(index.span(None, None), 0..50);
        assert_eq!(index.span(Some(&hi), Some(&lo)), 9..9);
    }

    #[test]
    fn fingerprints_depend_on_key_state_and_count() {
        let a = Index::new(vec![item("a", 1), item("b", 2)]);
        let changed = Index::new(vec![item("a", 1), item("b", 3)]);
        let renamed = Index::new(vec![item("a", 1), item("c", 2)]);
        let doubled = Index::new(vec![item("a", 1), item("b", 2), item("b", 2)]);
        let fp = a.fingerprint(0..2);
        assert_ne!(fp, changed.fingerprint(0..2));
        assert_ne!(fp, renamed.fingerprint(0..2));
        // Duplicate keys are dropped, not summed twice.
        assert_eq!(fp, doubled.fingerprint(0..doubled.items().len()));
        // The empty range has a fingerprint too, distinct from a zero sum
        // with a count.
        assert_ne!(Sum::default().fingerprint(0), Sum::default().fingerprint(1));
    }
}
