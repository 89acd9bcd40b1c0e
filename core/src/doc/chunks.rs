//! Checks Automerge bytes from a peer before Automerge parses them.
//!
//! Automerge inflates DEFLATE-compressed chunks and columns without a limit,
//! so a few kilobytes can become gigabytes. This walks the chunk headers of
//! the binary format (magic, checksum, type, LEB128 length) and the column
//! tables of document and bundle chunks, and counts what every compressed
//! part inflates to through a reader that stops at the budget: nothing the
//! size of the inflated data is allocated, and input over the budget is
//! refused before Automerge sees it.

use std::io::{self, Read};

use flate2::bufread::DeflateDecoder;

use super::{DocError, MAX_DOC_BYTES};

/// Most bytes one peer input (a sync message or a `Doc` frame) may expand
/// to once its compressed parts are inflated. A document is at most
/// [`MAX_DOC_BYTES`] of JSON; its Automerge history (per-character ops,
/// overwritten values) is larger, and 16 times leaves room for a long one
/// while keeping Automerge's in-memory expansion of it in the hundreds of MB.
pub const MAX_INFLATED_BYTES: usize = 16 * MAX_DOC_BYTES;

/// The magic bytes that open every Automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// The type byte of an Automerge chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    /// A whole document (columns possibly deflated).
    Document,
    /// One change, uncompressed.
    Change,
    /// One change, its body DEFLATE-compressed.
    CompressedChange,
    /// Several changes in columns (possibly deflated).
    Bundle,
}

/// One chunk of a concatenation: its kind and all its bytes, header included.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk<'a> {
    pub kind: ChunkKind,
    pub bytes: &'a [u8],
}

/// Splits concatenated chunks and checks that all of them together inflate
/// to at most `budget` bytes. Any framing Automerge would not accept either
/// is refused here, so what passes is exactly what Automerge will parse.
pub(crate) fn check(bytes: &[u8], budget: usize) -> Result<Vec<Chunk<'_>>, DocError> {
    let mut chunks = Vec::new();
    let mut budget = Budget {
        limit: budget,
        left: budget,
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let start = rest;
        let mut r = Reader(rest);
        if r.take(4)? != MAGIC {
            return Err(bad("invalid magic bytes"));
        }
        r.take(4)?; // checksum, verified by Automerge
        let kind = match r.take(1)?[0] {
            0 => ChunkKind::Document,
            1 => ChunkKind::Change,
            2 => ChunkKind::CompressedChange,
            3 => ChunkKind::Bundle,
            other => return Err(bad(&format!("unknown chunk type {other}"))),
        };
        let len = r.len()?;
        let body = r.take(len)?;
        match kind {
            ChunkKind::Change => budget.spend(body.len())?,
            ChunkKind::CompressedChange => inflate(body, &mut budget)?,
            ChunkKind::Document => columns_len(body, false, &mut budget)?,
            ChunkKind::Bundle => columns_len(body, true, &mut budget)?,
        }
        chunks.push(Chunk {
            kind,
            bytes: &start[..start.len() - r.0.len()],
        });
        rest = r.0;
    }
    Ok(chunks)
}

/// What is left of the inflated-size budget of one input.
struct Budget {
    limit: usize,
    left: usize,
}

impl Budget {
    fn spend(&mut self, n: usize) -> Result<(), DocError> {
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(DocError::InflatedTooLarge { limit: self.limit })?;
        Ok(())
    }
}

/// Spends a document or bundle chunk body: its bytes, plus each deflated
/// column at its inflated size.
fn columns_len(body: &[u8], bundle: bool, budget: &mut Budget) -> Result<(), DocError> {
    let mut r = Reader(body);
    let hashes = |r: &mut Reader<'_>| -> Result<(), DocError> {
        let n = r.len()?;
        r.take(n.checked_mul(32).ok_or_else(|| bad("too many hashes"))?)?;
        Ok(())
    };
    let actors = |r: &mut Reader<'_>| -> Result<(), DocError> {
        for _ in 0..r.len()? {
            let n = r.len()?;
            r.take(n)?;
        }
        Ok(())
    };
    // Documents: actors, heads, change columns, op columns, then both data
    // sections. Bundles: deps, actors, then each column table before its data.
    let (change_cols, op_cols) = if bundle {
        hashes(&mut r)?;
        actors(&mut r)?;
        let changes = columns(&mut r)?;
        let change_data = column_data(&mut r, &changes)?;
        let ops = columns(&mut r)?;
        let op_data = column_data(&mut r, &ops)?;
        ((changes, change_data), (ops, op_data))
    } else {
        actors(&mut r)?;
        hashes(&mut r)?;
        let changes = columns(&mut r)?;
        let ops = columns(&mut r)?;
        let change_data = column_data(&mut r, &changes)?;
        let op_data = column_data(&mut r, &ops)?;
        ((changes, change_data), (ops, op_data))
    };
    budget.spend(body.len())?;
    for (specs, data) in [change_cols, op_cols] {
        let mut rest = Reader(data);
        for (spec, len) in specs {
            let col = rest.take(len)?;
            if spec & DEFLATE_BIT != 0 {
                inflate(col, budget)?;
            }
        }
    }
    Ok(())
}

/// The column specification bit that marks a DEFLATE-compressed column.
const DEFLATE_BIT: u64 = 0b1000;

/// A column table: (specification, length of its data) per column.
fn columns(r: &mut Reader<'_>) -> Result<Vec<(u64, usize)>, DocError> {
    let n = r.len()?;
    // Each column takes at least two bytes of table; refuse counts the
    // input cannot hold before reserving space for them.
    if n > r.0.len() / 2 {
        return Err(bad("column count exceeds the chunk"));
    }
    (0..n).map(|_| Ok((r.uleb()?, r.len()?))).collect()
}

/// The data of the columns of a table, which must lie within the chunk.
fn column_data<'a>(r: &mut Reader<'a>, cols: &[(u64, usize)]) -> Result<&'a [u8], DocError> {
    let total = cols
        .iter()
        .try_fold(0usize, |sum, (_, len)| sum.checked_add(*len))
        .ok_or_else(|| bad("column lengths overflow"))?;
    r.take(total)
}

/// Spends what `data` inflates to, reading at most one byte more than the
/// budget has left through a fixed buffer: past the budget it stops.
fn inflate(data: &[u8], budget: &mut Budget) -> Result<(), DocError> {
    let cap = u64::try_from(budget.left)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut reader = DeflateDecoder::new(data).take(cap);
    let n = io::copy(&mut reader, &mut io::sink()).map_err(|_| bad("invalid DEFLATE data"))?;
    budget.spend(usize::try_from(n).unwrap_or(usize::MAX))
}

fn bad(why: &str) -> DocError {
    DocError::BadChunk(why.to_owned())
}

/// A cursor over peer bytes; every read is checked against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DocError> {
        if n > self.0.len() {
            return Err(bad("chunk is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// An unsigned LEB128 number of at most 64 bits.
    fn uleb(&mut self) -> Result<u64, DocError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(bad("LEB128 number overflows 64 bits"));
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("LEB128 number overflows 64 bits"))
    }

    /// A LEB128 length or count; it must fit in memory to be meaningful.
    fn len(&mut self) -> Result<usize, DocError> {
        usize::try_from(self.uleb()?).map_err(|_| bad("length does not fit in memory"))
    }
}
