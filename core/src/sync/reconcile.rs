//! Which documents differ between two replicas of a space: range-based set
//! reconciliation (after Meyer, "Range-Based Set Reconciliation", 2023).
//!
//! Both replicas see a space as sorted [`Item`]s (key + hash of heads). A
//! `Reconcile` message is a list of consecutive key ranges, each with a
//! [`RangePayload`]. The receiver answers each range from its own items:
//!
//! - `Fingerprint` equal to its own: the range is settled; answer `Done`;
//! - `Fingerprint` that differs: if the receiver has few items there
//!   ([`ITEMS_THRESHOLD`], or at most [`ITEMS_CAP`] while the sender has at
//!   least twice as many), answer `Items` (an empty list when it has none,
//!   so a fresh replica costs one round trip); otherwise split its items
//!   there into [`BUCKETS`] sub-ranges and answer their fingerprints;
//! - `Items`: the receiver now knows exactly which documents differ in the
//!   range; it starts syncing them and answers `Done` listing them;
//! - `Done`: if the receiver's side of the range still sums to the echoed
//!   value, the range is settled and it starts syncing the listed documents
//!   it holds too (a stale sync state on the side with the news must not
//!   stall them);
//! - `Skip` and `Done` need no answer. A message with neither
//!   `Fingerprint` nor `Items` ranges is not answered: it ends the exchange.
//!
//! Each step splits a differing range, so an exchange over n items with d
//! differences takes about log_B(n) messages and O(d·B·log_B(n)) bytes.
//! Processing is stateless (a reply depends only on the message and the
//! current items), so duplicated or stale messages cost only bytes. Replies
//! stay under [`MESSAGE_BUDGET`]: what does not fit is answered with one
//! fingerprint over the rest, which the peer splits again.

use std::collections::BTreeSet;

use super::wire::ranges::MAX_RANGES;
use super::wire::{Item, ItemKey, Range, RangePayload};

mod fingerprint;
#[cfg(test)]
mod tests;

pub use fingerprint::{FP_LEN, Fingerprint, Index, Sum, item_sum};

/// Sub-ranges a differing range splits into.
pub const BUCKETS: usize = 16;
/// A side with at most this many items in a differing range lists them.
pub const ITEMS_THRESHOLD: usize = 16;
/// A side with fewer than half the peer's items in a range lists them if
/// they are at most this many (their differences are that many anyway).
pub const ITEMS_CAP: usize = 1024;
/// Keys per `Done` range, so one answer can be cut between ranges.
pub const DONE_CHUNK: usize = 1024;
/// Estimated bytes of a reply before the rest is deferred: a quarter of a
/// frame, with room for the one range that may overshoot it.
pub const MESSAGE_BUDGET: usize = 1 << 20;
/// Most keys (listed items and `Done` keys) one message may carry: above
/// what [`MESSAGE_BUDGET`] lets an honest peer send (at least 6 estimated
/// bytes a key), so a peer cannot make us start more rounds per message
/// than an honest initial sync does.
pub const MAX_KEYS: usize = 1 << 18;

pub use crate::key::heads_hash;

/// Whether `key` lies in `[lower, upper)`.
pub fn in_bounds(key: &ItemKey, lower: Option<&ItemKey>, upper: Option<&ItemKey>) -> bool {
    lower.is_none_or(|l| key >= l) && upper.is_none_or(|u| key < u)
}

/// A range known to be in sync except for `differ`, which are being synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Inclusive lower bound.
    pub lower: Option<ItemKey>,
    /// Exclusive upper bound.
    pub upper: Option<ItemKey>,
    /// The keys in the range whose documents differ.
    pub differ: Vec<ItemKey>,
}

/// What answering one message found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Ranges to answer with (same `lower`), if the message needs an answer.
    pub reply: Option<Vec<Range>>,
    /// Documents that differ and that this side starts syncing.
    pub start: Vec<ItemKey>,
    /// Of those, the ones the peer listed nothing for: it holds no version,
    /// so the first sync message can carry the whole document.
    pub absent: BTreeSet<ItemKey>,
    /// Ranges now settled: pending work there is done, except `differ`.
    pub settled: Vec<Settled>,
    /// The exchange ended here: this message or our reply closes it.
    pub closed: bool,
}

/// A message that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reconcile message: {0}")]
pub struct Invalid(pub String);

/// The first message of an exchange: our whole key space.
pub fn initiate(index: &Index) -> Vec<Range> {
    describe(index, None, 0..index.items().len(), None)
        .into_iter()
        .map(|(upper, payload)| Range { upper, payload })
        .collect()
}

/// Answers a message from the peer, given our items.
pub fn respond(
    index: &Index,
    lower: Option<&ItemKey>,
    ranges: &[Range],
) -> Result<Outcome, Invalid> {
    validate(lower, ranges)?;
    let span_end = ranges.last().and_then(|r| r.upper.as_ref());
    let mut out = Builder::default();
    let mut outcome = Outcome::default();
    let mut open = false;
    let mut lo = lower;
    for range in ranges {
        let hi = range.upper.as_ref();
        let mine = index.span(lo, hi);
        let step = match &range.payload {
            RangePayload::Skip => {
                out.push(hi, RangePayload::Skip);
                Ok(())
            }
            RangePayload::Done { echo, differ } => {
                // Only if our side is still what the peer matched: a
                // change since then keeps its pending work.
                if index.sum(mine.clone()).echo() == *echo {
                    // The peer that found these differences starts them (a
                    // restarted round always sends its heads, so the side
                    // holding news learns what to send): starting here too
                    // would run every exchange twice.
                    outcome.settled.push(Settled {
                        lower: lo.cloned(),
                        upper: hi.cloned(),
                        differ: differ.clone(),
                    });
                }
                out.push(hi, RangePayload::Skip);
                Ok(())
            }
            RangePayload::Items(theirs) => {
                open = true;
                consume(index, lo, hi, mine, theirs, &mut out, &mut outcome)
            }
            // "I have nothing here" as a fingerprint: all of ours differ.
            RangePayload::Fingerprint { count: 0, .. } => {
                open = true;
                consume(index, lo, hi, mine, &[], &mut out, &mut outcome)
            }
            RangePayload::Fingerprint { fp, count } => {
                open = true;
                let pushed = if index.fingerprint(mine.clone()) == *fp {
                    let done = RangePayload::Done {
                        echo: index.sum(mine).echo(),
                        differ: Vec::new(),
                    };
                    let pushed = out.push_group(vec![(hi.cloned(), done)]);
                    if pushed.is_ok() {
                        outcome.settled.push(Settled {
                            lower: lo.cloned(),
                            upper: hi.cloned(),
                            differ: Vec::new(),
                        });
                    }
                    pushed
                } else {
                    out.push_group(describe(index, hi, mine, Some(*count)))
                };
                pushed.map_err(|()| lo.cloned())
            }
        };
        if let Err(rest) = step {
            // Out of room: one fingerprint over the rest, answered later.
            let mine = index.span(rest.as_ref(), span_end);
            let payload = RangePayload::Fingerprint {
                fp: index.fingerprint(mine.clone()),
                count: mine.len() as u64,
            };
            out.force(span_end, payload);
            break;
        }
        lo = hi;
    }
    if open {
        let reply_open = out.ranges.iter().any(|r| {
            matches!(
                r.payload,
                RangePayload::Fingerprint { .. } | RangePayload::Items(_)
            )
        });
        outcome.closed = !reply_open;
        outcome.reply = Some(out.ranges);
    } else {
        outcome.closed = true;
    }
    Ok(outcome)
}

/// Rejects messages whose ranges are not consecutive and ordered, or whose
/// keys lie outside their range.
fn validate(lower: Option<&ItemKey>, ranges: &[Range]) -> Result<(), Invalid> {
    let bad = |m: &str| Err(Invalid(m.to_owned()));
    if ranges.is_empty() {
        return bad("no ranges");
    }
    if ranges.len() > MAX_RANGES {
        return bad("too many ranges");
    }
    let mut lo = lower;
    let mut keys_seen = 0usize;
    for (i, range) in ranges.iter().enumerate() {
        match &range.upper {
            None if i + 1 != ranges.len() => return bad("an unbounded range before the last"),
            Some(u) if lo.is_some_and(|l| u <= l) => return bad("bounds out of order"),
            _ => {}
        }
        let hi = range.upper.as_ref();
        let keys: Box<dyn Iterator<Item = &ItemKey>> = match &range.payload {
            RangePayload::Items(items) => Box::new(items.iter().map(|i| &i.key)),
            RangePayload::Done { differ, .. } => Box::new(differ.iter()),
            _ => Box::new(std::iter::empty()),
        };
        let mut prev: Option<&ItemKey> = None;
        for key in keys {
            keys_seen += 1;
            if keys_seen > MAX_KEYS {
                return bad("too many keys");
            }
            if !in_bounds(key, lo, hi) {
                return bad("a key outside its range");
            }
            if prev.is_some_and(|p| key <= p) {
                return bad("keys out of order");
            }
            prev = Some(key);
        }
        lo = hi;
    }
    Ok(())
}

/// Describes our items at `mine` (ending at `upper`): listed if few, else
/// as fingerprints of [`BUCKETS`] sub-ranges.
fn describe(
    index: &Index,
    upper: Option<&ItemKey>,
    mine: std::ops::Range<usize>,
    their_count: Option<u64>,
) -> Vec<(Option<ItemKey>, RangePayload)> {
    let c = mine.len();
    let items = &index.items()[mine.clone()];
    let outnumbered = their_count.is_some_and(|t| t >= 2 * c as u64) && c <= ITEMS_CAP;
    if c <= ITEMS_THRESHOLD.max(BUCKETS) || outnumbered {
        return vec![(upper.cloned(), RangePayload::Items(items.to_vec()))];
    }
    (0..BUCKETS)
        .map(|k| {
            let (s, e) = (k * c / BUCKETS, (k + 1) * c / BUCKETS);
            let bound = if k + 1 == BUCKETS {
                upper.cloned()
            } else {
                Some(bound_between(&items[e - 1].key, &items[e].key))
            };
            let payload = RangePayload::Fingerprint {
                fp: index.fingerprint(mine.start + s..mine.start + e),
                count: (e - s) as u64,
            };
            (bound, payload)
        })
        .collect()
}

/// The shortest key `k` with `a < k <= b` (for `a < b`): bounds need only
/// separate neighbours, and short bounds are cheap on the wire.
fn bound_between(a: &ItemKey, b: &ItemKey) -> ItemKey {
    if a.collection != b.collection {
        return ItemKey {
            collection: b.collection.clone(),
            id: String::new(),
        };
    }
    let (x, y) = (a.id.as_bytes(), b.id.as_bytes());
    let shared = x.iter().zip(y).take_while(|(p, q)| p == q).count();
    let mut end = (shared + 1).min(y.len());
    while !b.id.is_char_boundary(end) {
        end += 1;
    }
    ItemKey {
        collection: b.collection.clone(),
        id: b.id[..end].to_owned(),
    }
}

/// Compares the peer's full list for `[lo, hi)` with ours: every differing
/// document is started and named in `Done` ranges of at most
/// [`DONE_CHUNK`] keys. On running out of room, returns where it stopped.
fn consume(
    index: &Index,
    lo: Option<&ItemKey>,
    hi: Option<&ItemKey>,
    mine: std::ops::Range<usize>,
    theirs: &[Item],
    out: &mut Builder,
    outcome: &mut Outcome,
) -> Result<(), Option<ItemKey>> {
    let ours = &index.items()[mine];
    let mut differ = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < ours.len() || j < theirs.len() {
        match (ours.get(i), theirs.get(j)) {
            (Some(a), Some(b)) if a.key == b.key => {
                if a.hash != b.hash {
                    differ.push(a.key.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a.key < b.key) => {
                differ.push(a.key.clone());
                outcome.absent.insert(a.key.clone());
                i += 1;
            }
            (_, Some(b)) => {
                differ.push(b.key.clone());
                j += 1;
            }
            (_, None) => break,
        }
    }
    let mut chunk_lo = lo.cloned();
    let mut rest = differ.as_slice();
    let mut their_rest = theirs;
    loop {
        let take = rest.len().min(DONE_CHUNK);
        let (keys, next) = rest.split_at(take);
        let chunk_hi = next.first().cloned().or_else(|| hi.cloned());
        // The echo is the sum of *their* items here, which they recompute.
        let n = chunk_hi.as_ref().map_or(their_rest.len(), |h| {
            their_rest.partition_point(|it| it.key < *h)
        });
        let (here, later) = their_rest.split_at(n);
        let echo = here
            .iter()
            .fold(Sum::default(), |s, it| s.plus(item_sum(it)))
            .echo();
        let payload = RangePayload::Done {
            echo,
            differ: keys.to_vec(),
        };
        out.push_group(vec![(chunk_hi.clone(), payload)])
            .map_err(|()| chunk_lo.clone())?;
        outcome.settled.push(Settled {
            lower: chunk_lo,
            upper: chunk_hi.clone(),
            differ: keys.to_vec(),
        });
        outcome.start.extend_from_slice(keys);
        if next.is_empty() {
            return Ok(());
        }
        chunk_lo = chunk_hi;
        rest = next;
        their_rest = later;
    }
}

/// A reply under construction: merges neighbours that say the same kind of
/// thing, and keeps an estimate of its encoded size.
#[derive(Default)]
struct Builder {
    ranges: Vec<Range>,
    bytes: usize,
}

fn key_size(key: &ItemKey) -> usize {
    key.collection.len() + key.id.len() + 4
}

fn size(upper: Option<&ItemKey>, payload: &RangePayload) -> usize {
    let bound = upper.map_or(1, key_size);
    bound
        + match payload {
            RangePayload::Skip => 1,
            RangePayload::Fingerprint { .. } => 1 + FP_LEN + 10,
            RangePayload::Items(items) => {
                6 + items.iter().map(|i| key_size(&i.key) + 32).sum::<usize>()
            }
            RangePayload::Done { differ, .. } => 14 + differ.iter().map(key_size).sum::<usize>(),
        }
}

impl Builder {
    /// Adds ranges if they fit (an empty reply takes anything, so every
    /// reply makes progress).
    fn push_group(&mut self, group: Vec<(Option<ItemKey>, RangePayload)>) -> Result<(), ()> {
        let extra: usize = group.iter().map(|(u, p)| size(u.as_ref(), p)).sum();
        let fits = self.bytes + extra <= MESSAGE_BUDGET
            // Room for the group and a closing fingerprint.
            && self.ranges.len() + group.len() < MAX_RANGES;
        if !self.ranges.is_empty() && !fits {
            return Err(());
        }
        for (upper, payload) in group {
            self.force(upper.as_ref(), payload);
        }
        Ok(())
    }

    fn push(&mut self, upper: Option<&ItemKey>, payload: RangePayload) {
        self.force(upper, payload);
    }

    fn force(&mut self, upper: Option<&ItemKey>, payload: RangePayload) {
        self.bytes += size(upper, &payload);
        if let Some(last) = self.ranges.last_mut() {
            let merged = match (&mut last.payload, &payload) {
                (RangePayload::Skip, RangePayload::Skip) => true,
                (
                    RangePayload::Done { echo, differ },
                    RangePayload::Done {
                        echo: e2,
                        differ: d2,
                    },
                ) if differ.len() + d2.len() <= DONE_CHUNK => {
                    *echo = echo.wrapping_add(*e2);
                    differ.extend_from_slice(d2);
                    true
                }
                (RangePayload::Items(a), RangePayload::Items(b))
                    if a.len() + b.len() <= ITEMS_CAP =>
                {
                    a.extend_from_slice(b);
                    true
                }
                _ => false,
            };
            if merged {
                last.upper = upper.cloned();
                return;
            }
        }
        self.ranges.push(Range {
            upper: upper.cloned(),
            payload,
        });
    }
}
