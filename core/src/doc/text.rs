//! Text field updates with a bounded cost. Automerge's own text diff takes
//! time quadratic in the length of what changed (minutes for a replaced
//! 600k-character string), so Weft plans the splices itself: trim the common
//! prefix and suffix, split what is left around a piece of unchanged text
//! (so edits far apart stay separate), diff small parts character by
//! character, and replace a part in one splice once the work budget is
//! spent (or the whole text object, when most of it changes). Concurrent
//! edits merge character-wise wherever a small diff found them; the result
//! text is exact either way.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, Prop, ReadDoc, TextEncoding};

/// Work allowed for one text field's diff, in character pairs compared (the
/// cells of the character-level diffs, a few ns and 2 bytes each): 2^22
/// keeps a put within tens of milliseconds and 8 MiB whatever the text;
/// past it, the remaining parts are replaced by splices.
pub const MAX_TEXT_DIFF_COST: usize = 1 << 22;

/// Length, in bytes, of the unchanged text a large part is split around.
const ANCHOR: usize = 32;

/// How often a large part may be split around an anchor: each level scans
/// the text once, so this bounds that work to 12 scans.
const MAX_SPLITS: u32 = 12;

/// Texts shorter than this are always edited in place (deleting a few
/// thousand characters is cheap), so they keep merging character-wise.
const REPLACE_MIN_BYTES: usize = 4096;

/// One splice, in byte offsets of the old text.
struct Edit {
    at: usize,
    delete: usize,
    insert: std::ops::Range<usize>,
}

/// Turns the text object `obj` (at `prop` of `parent`), which holds `old`,
/// into `new`.
pub(super) fn update(
    doc: &mut AutoCommit,
    (parent, prop): (&ObjId, Prop),
    obj: &ObjId,
    old: &str,
    new: &str,
) -> Result<(), AutomergeError> {
    let encoding = doc.text_encoding();
    let width = |s: &str| match encoding {
        TextEncoding::UnicodeCodePoint => Some(s.chars().count()),
        TextEncoding::Utf8CodeUnit => Some(s.len()),
        TextEncoding::Utf16CodeUnit => Some(s.encode_utf16().count()),
        TextEncoding::GraphemeCluster => None,
    };
    if width("").is_none() {
        // Grapheme indices cannot be computed here: replace the whole text
        // (Weft's own documents index by code point and never get here).
        let len = isize::try_from(doc.length(obj)).unwrap_or(isize::MAX);
        return doc.splice_text(obj, 0, len, new);
    }
    let mut edits = Vec::new();
    let mut budget = MAX_TEXT_DIFF_COST;
    plan(old, new, 0, 0, MAX_SPLITS, &mut budget, &mut edits);
    // Deleting costs Automerge more than inserting (an op per character):
    // when nearly all the text goes, a new text object costs what a fresh
    // write does, and there is little left for concurrent edits to merge.
    let deleted: usize = edits.iter().map(|e| e.delete).sum();
    if old.len() >= REPLACE_MIN_BYTES && deleted.saturating_mul(8) > old.len().saturating_mul(7) {
        let fresh = doc.put_object(parent, prop, ObjType::Text)?;
        return doc.splice_text(&fresh, 0, 0, new);
    }
    // Positions in the doc's encoding, computed in one pass over `old`;
    // applied last to first so earlier positions stay valid.
    let mut positions = Vec::with_capacity(edits.len());
    let (mut byte, mut pos) = (0, 0);
    for e in &edits {
        pos += width(&old[byte..e.at]).unwrap_or(0);
        byte = e.at;
        let delete = width(&old[e.at..e.at + e.delete]).unwrap_or(0);
        positions.push((pos, delete));
    }
    for (e, (pos, delete)) in edits.iter().zip(positions).rev() {
        let delete = isize::try_from(delete).unwrap_or(isize::MAX);
        doc.splice_text(obj, pos, delete, &new[e.insert.clone()])?;
    }
    Ok(())
}

/// Plans the edits turning `old` into `new` (at byte offsets `o`, `n` of the
/// whole texts), in order of position.
fn plan(
    old: &str,
    new: &str,
    o: usize,
    n: usize,
    splits: u32,
    budget: &mut usize,
    edits: &mut Vec<Edit>,
) {
    let prefix = common_prefix(old, new);
    let (old, new) = (&old[prefix..], &new[prefix..]);
    let suffix = common_suffix(old, new);
    let (old, new) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
    let (o, n) = (o + prefix, n + prefix);
    if old.is_empty() && new.is_empty() {
        return;
    }
    let splice = |edits: &mut Vec<Edit>| {
        edits.push(Edit {
            at: o,
            delete: old.len(),
            insert: n..n + new.len(),
        });
    };
    if old.is_empty() || new.is_empty() {
        return splice(edits);
    }
    let cells = old.chars().count().saturating_mul(new.chars().count());
    if cells <= *budget {
        *budget -= cells;
        return char_diff(old, new, o, n, edits);
    }
    // Split around a piece of `old`'s middle found unchanged in `new`.
    if splits > 0 && old.len() >= 4 * ANCHOR {
        let mut mid = old.len() / 2;
        while !old.is_char_boundary(mid) {
            mid += 1;
        }
        let mut end = (mid + ANCHOR).min(old.len());
        while !old.is_char_boundary(end) {
            end += 1;
        }
        let anchor = &old[mid..end];
        // In repetitive text the anchor occurs often: take the occurrence
        // nearest where it would be if the changes were spread evenly.
        let mut target = usize::try_from(mid as u128 * new.len() as u128 / old.len() as u128)
            .unwrap_or(new.len())
            .min(new.len());
        while !new.is_char_boundary(target) {
            target -= 1;
        }
        let mut reach = (target + anchor.len()).min(new.len());
        while !new.is_char_boundary(reach) {
            reach += 1;
        }
        let before = new[..reach].rfind(anchor);
        let after = new[target..].find(anchor).map(|at| target + at);
        let found = before
            .into_iter()
            .chain(after)
            .min_by_key(|at| at.abs_diff(target));
        if let Some(at) = found {
            let (o_end, n_end) = (mid + anchor.len(), at + anchor.len());
            plan(&old[..mid], &new[..at], o, n, splits - 1, budget, edits);
            plan(
                &old[o_end..],
                &new[n_end..],
                o + o_end,
                n + n_end,
                splits - 1,
                budget,
                edits,
            );
            return;
        }
    }
    splice(edits);
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.chars()
        .rev()
        .zip(b.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

/// A minimal character-level diff (longest common subsequence), for parts
/// whose product of lengths the budget allowed.
fn char_diff(old: &str, new: &str, o: usize, n: usize, edits: &mut Vec<Edit>) {
    let a: Vec<(usize, char)> = old.char_indices().collect();
    let b: Vec<(usize, char)> = new.char_indices().collect();
    let (rows, cols) = (a.len() + 1, b.len() + 1);
    // lcs[i][j]: longest common subsequence of a[i..] and b[j..]. The
    // budget keeps the shorter side under 2^11 characters, so u16 holds it.
    let mut lcs = vec![0u16; rows * cols];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * cols + j] = if a[i].1 == b[j].1 {
                lcs[(i + 1) * cols + j + 1] + 1
            } else {
                lcs[(i + 1) * cols + j].max(lcs[i * cols + j + 1])
            };
        }
    }
    let byte_a = |i: usize| a.get(i).map_or(old.len(), |c| c.0);
    let byte_b = |j: usize| b.get(j).map_or(new.len(), |c| c.0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i].1 == b[j].1 {
            i += 1;
            j += 1;
            continue;
        }
        // A run of deletions and insertions up to the next common char.
        let (start_i, start_j) = (i, j);
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i].1 == b[j].1 {
                break;
            }
            if j == b.len() || (i < a.len() && lcs[(i + 1) * cols + j] >= lcs[i * cols + j + 1]) {
                i += 1;
            } else {
                j += 1;
            }
        }
        edits.push(Edit {
            at: o + byte_a(start_i),
            delete: byte_a(i) - byte_a(start_i),
            insert: n + byte_b(start_j)..n + byte_b(j),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies planned edits to `old` as plain strings.
    fn apply(old: &str, new: &str) -> (String, usize) {
        let mut edits = Vec::new();
        let mut budget = MAX_TEXT_DIFF_COST;
        plan(old, new, 0, 0, MAX_SPLITS, &mut budget, &mut edits);
        let mut out = old.to_owned();
        for e in edits.iter().rev() {
            out.replace_range(e.at..e.at + e.delete, &new[e.insert.clone()]);
        }
        let touched = edits.iter().map(|e| e.delete + e.insert.len()).sum();
        (out, touched)
    }

    #[test]
    fn plans_are_exact_and_small_where_edits_are() {
        let cases = [
            ("", "abc"),
            ("abc", ""),
            ("hello world", "hello brave world!"),
            ("héllo wörld", "hallo wörld ünd mehr"),
            ("kitten", "sitting"),
        ];
        for (old, new) in cases {
            assert_eq!(apply(old, new).0, new, "{old:?} -> {new:?}");
        }
        // Edits at both ends of a long text stay two small edits.
        let base = "0123456789".repeat(100_000);
        let edited = format!("<{base}>");
        let (out, touched) = apply(&base, &edited);
        assert_eq!(out, edited);
        assert_eq!(touched, 2);
        // Two edits far apart, too.
        let mut edited = base.clone();
        edited.insert_str(900_000, "NEW");
        edited.replace_range(1000..1005, "");
        let (out, touched) = apply(&base, &edited);
        assert_eq!(out, edited);
        assert!(touched <= 8, "{touched}");
        // Multi-byte text splits on character boundaries.
        let base = "héllo wörld ✓ ".repeat(50_000);
        let mut edited = format!("«{base}»");
        let mut third = edited.len() / 3;
        while !edited.is_char_boundary(third) {
            third += 1;
        }
        edited.insert(third, 'ü');
        let (out, touched) = apply(&base, &edited);
        assert_eq!(out, edited);
        assert!(touched <= 12, "{touched}");
    }

    #[test]
    fn unrelated_long_texts_are_spliced_not_diffed() {
        let old: String = (0..600_000u32)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let new: String = (0..600_000u32)
            .map(|i| char::from(b'a' + (i * 11 % 26) as u8))
            .collect();
        let (out, _) = apply(&old, &new);
        assert_eq!(out, new);
    }
}
