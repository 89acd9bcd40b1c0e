//! Which documents differ between two replicas of a space.
//!
//! Both peers describe their documents as [`Item`]s (key + hash of heads).
//! This version exchanges the whole item list of a space as one range; the
//! messages already carry ranges with upper bounds, so range-based set
//! reconciliation (fingerprints of sub-ranges, recursing only where they
//! differ) can replace [`initial_ranges`] and [`differences`] without a wire
//! change.

use std::collections::BTreeMap;

use automerge::ChangeHash;
use sha2::{Digest, Sha256};

use super::wire::{Item, ItemKey, Range, RangePayload};

/// The hash that stands for a document's state in reconciliation.
pub fn heads_hash(heads: &[ChangeHash]) -> [u8; 32] {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut hasher = Sha256::new();
    for h in &sorted {
        hasher.update(h.0);
    }
    hasher.finalize().into()
}

/// What the initiator of a reconciliation sends first.
pub fn initial_ranges(local: &[Item]) -> Vec<Range> {
    vec![Range {
        upper: None,
        payload: RangePayload::Items(local.to_vec()),
    }]
}

/// Keys whose documents differ: present on one side only, or with different
/// heads. `remote` must cover the whole key space (ranges in order).
pub fn differences(local: &[Item], remote: &[Range]) -> Vec<ItemKey> {
    let mut theirs: BTreeMap<&ItemKey, &[u8; 32]> = BTreeMap::new();
    for range in remote {
        let RangePayload::Items(items) = &range.payload;
        for item in items {
            theirs.insert(&item.key, &item.hash);
        }
    }
    let mut out = Vec::new();
    for item in local {
        match theirs.remove(&item.key) {
            Some(hash) if *hash == item.hash => {}
            _ => out.push(item.key.clone()),
        }
    }
    out.extend(theirs.into_keys().cloned());
    out.sort();
    out
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
    fn finds_missing_and_changed_documents() {
        let local = vec![item("a", 1), item("b", 2), item("c", 3)];
        let remote = initial_ranges(&[item("b", 2), item("c", 9), item("d", 4)]);
        let ids: Vec<_> = differences(&local, &remote)
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, ["a", "c", "d"]);
        assert!(differences(&local, &initial_ranges(&local)).is_empty());
    }

    #[test]
    fn heads_hash_ignores_order() {
        let (a, b) = (ChangeHash([1; 32]), ChangeHash([2; 32]));
        assert_eq!(heads_hash(&[a, b]), heads_hash(&[b, a]));
        assert_ne!(heads_hash(&[a]), heads_hash(&[a, b]));
    }
}
