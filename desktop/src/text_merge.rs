//! Merging text edited in the UI with text that changed underneath it (a
//! peer's edit, or the store's answer to a save), and moving the cursor with
//! the merge. Positions are char indices, as egui's `CCursor` uses.
//!
//! Every diff here is one splice found by common prefix and suffix: editors
//! change one place at a time between saves, and Automerge does the real
//! character-wise merge between devices; this only reconciles one device's
//! editor buffer with its own store.

/// Replace `removed` chars at `start` with `inserted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    /// Char index where the change starts.
    pub start: usize,
    /// Chars removed from `start`.
    pub removed: usize,
    /// Text inserted at `start`.
    pub inserted: String,
}

impl Splice {
    fn inserted_len(&self) -> usize {
        self.inserted.chars().count()
    }

    fn end(&self) -> usize {
        self.start + self.removed
    }

    /// Whether the splice changes nothing.
    pub fn is_noop(&self) -> bool {
        self.removed == 0 && self.inserted.is_empty()
    }
}

/// The single splice turning `old` into `new` (common prefix and suffix).
pub fn diff(old: &str, new: &str) -> Splice {
    let old: Vec<char> = old.chars().collect();
    let new: Vec<char> = new.chars().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    Splice {
        start: prefix,
        removed: old.len() - prefix - suffix,
        inserted: new[prefix..new.len() - suffix].iter().collect(),
    }
}

/// `text` with `splice` applied; out-of-range positions are clamped.
pub fn apply(text: &str, splice: &Splice) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = splice.start.min(chars.len());
    let end = splice.end().clamp(start, chars.len());
    let mut out: String = chars[..start].iter().collect();
    out.push_str(&splice.inserted);
    out.extend(&chars[end..]);
    out
}

/// Where char index `index` moves when `splice` is applied. Text before the
/// splice keeps its place (so an insertion exactly at the cursor lands after
/// it, as when a peer types where you are); text after shifts by the length
/// change; a position inside removed text moves to the end of the insertion.
pub fn map_index(index: usize, splice: &Splice) -> usize {
    if index <= splice.start {
        index
    } else if index >= splice.end() {
        index - splice.removed + splice.inserted_len()
    } else {
        splice.start + splice.inserted_len()
    }
}

/// Three-way merge: `base` is the text both sides started from, `local` has
/// the user's unsaved edit and `remote` the store's newer text. Both edits
/// are kept; where they overlap, the local edit wins over the range it
/// replaced (remote text inside that range is replaced too).
pub fn merge3(base: &str, local: &str, remote: &str) -> String {
    if local == base {
        return remote.to_owned();
    }
    if remote == base || remote == local {
        return local.to_owned();
    }
    let ours = diff(base, local);
    let theirs = diff(base, remote);
    let start = map_index(ours.start, &theirs);
    let end = if ours.removed == 0 {
        start
    } else {
        map_index(ours.end(), &theirs).max(start)
    };
    apply(
        remote,
        &Splice {
            start,
            removed: end - start,
            inserted: ours.inserted,
        },
    )
}

/// A cursor selection `(primary, secondary)` in `old`, moved to where the same
/// text is in `new`.
pub fn map_selection(old: &str, new: &str, selection: (usize, usize)) -> (usize, usize) {
    let splice = diff(old, new);
    (
        map_index(selection.0, &splice),
        map_index(selection.1, &splice),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn diff_finds_one_splice() {
        assert_eq!(
            diff("hello world", "hello brave world"),
            Splice {
                start: 6,
                removed: 0,
                inserted: "brave ".into()
            }
        );
        assert_eq!(
            diff("abcdef", "abXf"),
            Splice {
                start: 2,
                removed: 3,
                inserted: "X".into()
            }
        );
        assert!(diff("same", "same").is_noop());
        // Repeated chars: the prefix is taken first, never overlapping the suffix.
        assert_eq!(
            diff("aaa", "aa"),
            Splice {
                start: 2,
                removed: 1,
                inserted: String::new()
            }
        );
    }

    #[test]
    fn positions_are_chars_not_bytes() {
        let s = diff("héllo", "héllo wörld");
        assert_eq!(s.start, 5);
        assert_eq!(apply("héllo", &s), "héllo wörld");
        assert_eq!(map_selection("é", "xé", (1, 1)), (2, 2));
    }

    #[test]
    fn cursor_shifts_only_for_edits_before_it() {
        // Cursor after "Hello" (index 5); a peer prepends "Oh! ".
        assert_eq!(
            map_selection("Hello world", "Oh! Hello world", (5, 5)),
            (9, 9)
        );
        // A peer appends after the cursor: it stays.
        assert_eq!(
            map_selection("Hello world", "Hello world!!", (5, 5)),
            (5, 5)
        );
        // A peer deletes the word the selection is in: both ends collapse.
        assert_eq!(map_selection("Hello world", "Hello ", (7, 9)), (6, 6));
        // Insertion exactly at the cursor lands after it.
        assert_eq!(map_selection("ab", "aXb", (1, 1)), (1, 1));
    }

    #[test]
    fn merge_keeps_both_edits() {
        assert_eq!(
            merge3("Hello world", "Hello brave world", "Hello world, friend"),
            "Hello brave world, friend"
        );
        assert_eq!(merge3("abc", "abc", "abcd"), "abcd");
        assert_eq!(merge3("abc", "abcd", "abc"), "abcd");
        assert_eq!(merge3("abc", "Xabc", "abcY"), "XabcY");
        // Both insert at the same place: the local text comes first, so the
        // cursor stays right after what the user typed.
        assert_eq!(merge3("ab", "aLb", "aRb"), "aLRb");
        // Overlap: the local replacement wins over its whole range.
        assert_eq!(
            merge3("one two three", "one 2 three", "one twenty three"),
            "one 2 three"
        );
    }

    proptest! {
        #[test]
        fn diff_apply_roundtrip(old in "[a-cé ]{0,12}", new in "[a-cé ]{0,12}") {
            prop_assert_eq!(apply(&old, &diff(&old, &new)), new);
        }

        #[test]
        fn merge_with_unchanged_side_is_the_other(base in "[a-c]{0,10}", other in "[a-c]{0,10}") {
            prop_assert_eq!(merge3(&base, &base, &other), other.clone());
            prop_assert_eq!(merge3(&base, &other, &base), other);
        }

        #[test]
        fn disjoint_edits_both_survive(
            text in "[a-z]{2,20}",
            split in 0usize..100,
            left in "[A-Z]{1,4}",
            right in "[0-9]{1,4}",
            remote_first in any::<bool>(),
        ) {
            let split = 1 + split % (text.len() - 1);
            let (a, b) = text.split_at(split);
            let local = format!("{a}{left}{b}");
            let (remote, want) = if remote_first {
                (format!("{right}{text}"), format!("{right}{a}{left}{b}"))
            } else {
                (format!("{text}{right}"), format!("{a}{left}{b}{right}"))
            };
            prop_assert_eq!(merge3(&text, &local, &remote), want);
        }

        #[test]
        fn cursor_moves_by_edits_before_it(
            before in "[a-z]{0,8}",
            after in "[a-z]{0,8}",
            edit_pos in 0usize..100,
            inserted in "[A-Z]{0,5}",
        ) {
            let old = format!("{before}{after}");
            let cursor = before.chars().count();
            let n = old.chars().count();
            let pos = edit_pos % (n + 1);
            let new = apply(&old, &Splice { start: pos, removed: 0, inserted: inserted.clone() });
            let (moved, _) = map_selection(&old, &new, (cursor, cursor));
            // Disjoint alphabets make the diff exact; an insertion at the
            // cursor itself lands after it.
            let shift = if pos < cursor { inserted.chars().count() } else { 0 };
            prop_assert_eq!(moved, cursor + shift);
        }
    }
}
