//! Which documents differ between two replicas of a space.
//!
//! Both peers describe their documents as [`Item`]s (key + hash of heads),
//! in key order, split into messages small enough for one frame. This
//! version sends whole ranges as item lists; the messages already carry
//! range bounds, so range-based set reconciliation (fingerprints of
//! sub-ranges, recursing only where they differ) can replace [`describe`]
//! and [`differences`] without a wire change.

use std::collections::BTreeMap;

use automerge::ChangeHash;
use sha2::{Digest, Sha256};

use super::wire::{Item, ItemKey, Range, RangePayload};

/// Items per `Reconcile` message: at ~100 bytes each, well under a frame.
pub const ITEMS_PER_MESSAGE: usize = 4096;

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

/// One `Reconcile` message's worth: its lower bound and ranges.
pub type Part = (Option<ItemKey>, Vec<Range>);

/// Describes a replica's items as consecutive parts covering the whole key
/// space (at least one part, even when empty).
pub fn describe(local: &[Item]) -> Vec<Part> {
    let mut items = local.to_vec();
    items.sort();
    let chunks: Vec<&[Item]> = if items.is_empty() {
        vec![&[]]
    } else {
        items.chunks(ITEMS_PER_MESSAGE).collect()
    };
    let mut parts = Vec::with_capacity(chunks.len());
    let mut lower: Option<ItemKey> = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let upper = chunks.get(i + 1).map(|next| next[0].key.clone());
        parts.push((
            lower.clone(),
            vec![Range {
                upper: upper.clone(),
                payload: RangePayload::Items(chunk.to_vec()),
            }],
        ));
        lower = upper;
    }
    parts
}

/// Whether `key` lies in `[lower, upper)`.
pub fn in_bounds(key: &ItemKey, lower: Option<&ItemKey>, upper: Option<&ItemKey>) -> bool {
    lower.is_none_or(|l| key >= l) && upper.is_none_or(|u| key < u)
}

/// Keys within the part's bounds whose documents differ: present on one
/// side only, or with different heads.
pub fn differences(local: &[Item], lower: Option<&ItemKey>, ranges: &[Range]) -> Vec<ItemKey> {
    let upper = ranges.last().and_then(|r| r.upper.as_ref());
    let mut theirs: BTreeMap<&ItemKey, &[u8; 32]> = BTreeMap::new();
    for range in ranges {
        let RangePayload::Items(items) = &range.payload;
        for item in items {
            if in_bounds(&item.key, lower, upper) {
                theirs.insert(&item.key, &item.hash);
            }
        }
    }
    let mut out = Vec::new();
    for item in local.iter().filter(|i| in_bounds(&i.key, lower, upper)) {
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

    fn all_differences(local: &[Item], remote: &[Item]) -> Vec<String> {
        describe(remote)
            .iter()
            .flat_map(|(lower, ranges)| differences(local, lower.as_ref(), ranges))
            .map(|k| k.id)
            .collect()
    }

    #[test]
    fn finds_missing_and_changed_documents() {
        let local = vec![item("a", 1), item("b", 2), item("c", 3)];
        let remote = [item("b", 2), item("c", 9), item("d", 4)];
        assert_eq!(all_differences(&local, &remote), ["a", "c", "d"]);
        assert!(all_differences(&local, &local).is_empty());
        assert_eq!(all_differences(&local, &[]), ["a", "b", "c"]);
    }

    #[test]
    fn large_spaces_split_into_bounded_parts() {
        let n = ITEMS_PER_MESSAGE * 2 + 10;
        let remote: Vec<Item> = (0..n).map(|i| item(&format!("{i:06}"), 1)).collect();
        let parts = describe(&remote);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].0, None);
        assert_eq!(parts[2].1.last().unwrap().upper, None);
        // Every part fits in a frame.
        for part in &parts {
            let frame = super::super::wire::encode(&super::super::wire::Message::Reconcile {
                space: "s".into(),
                lower: part.0.clone(),
                ranges: part.1.clone(),
                reply: false,
            });
            assert!(
                frame.len() < super::super::wire::MAX_FRAME / 4,
                "{}",
                frame.len()
            );
        }
        let mut local = remote.clone();
        local[5].hash = [2; 32];
        local[ITEMS_PER_MESSAGE + 3].hash = [2; 32];
        local.remove(n - 1);
        assert_eq!(
            all_differences(&local, &remote),
            [
                format!("{:06}", 5),
                format!("{:06}", ITEMS_PER_MESSAGE + 3),
                format!("{:06}", n - 1)
            ]
        );
    }

    #[test]
    fn heads_hash_ignores_order() {
        let (a, b) = (ChangeHash([1; 32]), ChangeHash([2; 32]));
        assert_eq!(heads_hash(&[a, b]), heads_hash(&[b, a]));
        assert_ne!(heads_hash(&[a]), heads_hash(&[a, b]));
    }
}
