use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::sync::wire::{self, MAX_FRAME, Message};

fn key(id: &str) -> ItemKey {
    ItemKey {
        collection: "notes".into(),
        id: id.into(),
    }
}

fn item(id: &str, h: u8) -> Item {
    Item {
        key: key(id),
        hash: [h; 32],
    }
}

fn bench_items(n: usize) -> Vec<Item> {
    (0..n).map(|i| item(&format!("n{i:07}"), 1)).collect()
}

/// The frame size of a message, after checking it passes the bounded
/// decoder unchanged (honest messages must never hit a decode bound).
fn frame(ranges: &[Range]) -> usize {
    let message = Message::Reconcile {
        space: "space".into(),
        lower: None,
        ranges: ranges.to_vec(),
    };
    let bytes = wire::encode(&message);
    assert_eq!(wire::decode(&bytes).as_ref(), Ok(&message));
    bytes.len()
}

/// Keys present on one side only or with different hashes.
fn symmetric_difference(a: &[Item], b: &[Item]) -> BTreeSet<ItemKey> {
    let a: BTreeSet<&Item> = a.iter().collect();
    let b: BTreeSet<&Item> = b.iter().collect();
    a.symmetric_difference(&b).map(|i| i.key.clone()).collect()
}

#[derive(Debug, Default)]
struct Report {
    messages: usize,
    bytes: usize,
    largest: usize,
    /// Keys each side starts syncing.
    started: [BTreeSet<ItemKey>; 2],
    /// Of those, the ones each side was told the peer lacks.
    absent: [BTreeSet<ItemKey>; 2],
    /// Keys each side is left tracking as differing (pending).
    tracked: [BTreeSet<ItemKey>; 2],
    closed: [bool; 2],
}

/// Runs one exchange to its end, `first` initiating.
fn exchange(first: &[Item], second: &[Item]) -> Report {
    let sides = [Index::new(first.to_vec()), Index::new(second.to_vec())];
    let mut report = Report::default();
    let mut message = initiate(&sides[0]);
    let mut turn = 1;
    loop {
        let size = frame(&message);
        report.messages += 1;
        report.bytes += size;
        report.largest = report.largest.max(size);
        assert!(size < MAX_FRAME, "{size}");
        assert!(report.messages < 64, "no end in sight");
        let outcome = respond(&sides[turn], None, &message).expect("valid");
        report.started[turn].extend(outcome.start.iter().cloned());
        report.absent[turn].extend(
            outcome
                .start
                .iter()
                .filter(|k| outcome.absent.contains(*k))
                .cloned(),
        );
        for s in &outcome.settled {
            let tracked = &mut report.tracked[turn];
            tracked.retain(|k| !in_bounds(k, s.lower.as_ref(), s.upper.as_ref()));
            tracked.extend(s.differ.iter().cloned());
        }
        if outcome.closed {
            report.closed[turn] = true;
        }
        match outcome.reply {
            Some(reply) => {
                message = reply;
                turn = 1 - turn;
            }
            None => return report,
        }
    }
}

fn check(a: &[Item], b: &[Item]) -> Report {
    let expected = symmetric_difference(a, b);
    let report = exchange(a, b);
    let union: BTreeSet<ItemKey> = report.started[0]
        .union(&report.started[1])
        .cloned()
        .collect();
    assert_eq!(union, expected);
    // Each differing document is started by one side only: the side that
    // found it (its restarted round always sends its heads).
    assert!(
        report.started[0].is_disjoint(&report.started[1]),
        "a document was started by both sides"
    );
    // "The peer lacks it" is claimed only of keys the peer really lacks
    // (the sender then skips straight to the whole document).
    for (side, (mine, theirs)) in [(a, b), (b, a)].into_iter().enumerate() {
        for k in &report.absent[side] {
            assert!(mine.iter().any(|i| i.key == *k), "{k:?} not held");
            assert!(
                !theirs.iter().any(|i| i.key == *k),
                "{k:?} is held by the peer"
            );
        }
    }
    assert_eq!(report.closed, [true, true]);
    // Both sides know what still differs (the side that listed its items
    // learns it from `Done`).
    assert_eq!(report.tracked[0], expected);
    assert_eq!(report.tracked[1], expected);
    report
}

#[test]
fn equal_sets_settle_in_one_round_trip() {
    let items = bench_items(5000);
    let report = check(&items, &items);
    assert_eq!(report.messages, 2);
    assert!(report.bytes < 1000, "{}", report.bytes);
}

#[test]
fn one_difference_in_100k_costs_few_rounds_and_bytes() {
    let a = bench_items(100_000);
    let mut b = a.clone();
    b[61_234].hash = [2; 32];
    let report = check(&a, &b);
    // log_16(100k) ≈ 4.2 splits, then the list, then `Done`.
    assert!(report.messages <= 7, "{report:?}");
    assert!(report.bytes < 4_000, "{}", report.bytes);
}

#[test]
fn ten_differences_grow_with_d_not_n() {
    let run = |n: usize| {
        let a = bench_items(n);
        let mut b = a.clone();
        for i in 0..10 {
            b[i * (n / 10)].hash = [2; 32];
        }
        check(&a, &b)
    };
    let (small, large) = (run(10_000), run(100_000));
    eprintln!(
        "d = 10: n = 10k {} messages {} bytes; n = 100k {} messages {} bytes",
        small.messages, small.bytes, large.messages, large.bytes
    );
    assert!(large.bytes < 16_000, "{}", large.bytes);
    assert!(large.messages <= 8, "{}", large.messages);
    assert!(
        large.bytes < small.bytes * 2,
        "{} vs {}",
        large.bytes,
        small.bytes
    );
}

#[test]
fn a_fresh_replica_is_known_to_lack_every_document() {
    let report = check(&bench_items(500), &[]);
    assert_eq!(report.absent[0].len(), 500);
}

#[test]
fn a_fresh_replica_costs_one_round_trip_and_keys_only() {
    let items = bench_items(20_000);
    // The full side starts: the empty one answers with an empty list.
    let report = check(&items, &[]);
    assert_eq!(report.messages, 3);
    // The empty side starts: its empty list is its first message.
    let report = check(&[], &items);
    assert_eq!(report.messages, 2);
    // Keys, prefix-coded, without hashes: a few bytes per document.
    assert!(report.bytes < 20_000 * 6, "{}", report.bytes);
}

#[test]
fn replies_too_large_for_one_message_continue_in_the_next() {
    // Long ids make the fresh replica's answer several budgets long.
    let long = "x".repeat(200);
    let items: Vec<Item> = (0..20_000)
        .map(|i| item(&format!("{long}{i:06}"), 1))
        .collect();
    let report = check(&items, &[]);
    assert!(report.messages > 3, "{}", report.messages);
    assert!(
        report.largest < MESSAGE_BUDGET + 500_000,
        "{}",
        report.largest
    );
}

#[test]
fn mixed_differences_on_both_sides() {
    let a = bench_items(30_000);
    let mut b = a.clone();
    b.truncate(29_000); // a has 1,000 more at the end
    b.retain(|i| !i.key.id.ends_with("77")); // a has 290 more spread out
    b.push(item("zz-only-b", 3));
    for i in (0..b.len() - 1).step_by(997) {
        b[i].hash = [9; 32];
    }
    check(&a, &b);
    check(&b, &a);
}

#[test]
fn done_settles_only_if_our_side_is_unchanged() {
    let items = bench_items(100);
    let index = Index::new(items.clone());
    let done = |echo| {
        vec![Range {
            upper: None,
            payload: RangePayload::Done {
                echo,
                differ: vec![key("n0000005")],
            },
        }]
    };
    let echo = index.sum(0..100).echo();
    let outcome = respond(&index, None, &done(echo)).unwrap();
    assert!(outcome.closed && outcome.reply.is_none());
    assert_eq!(outcome.settled.len(), 1);
    assert_eq!(outcome.settled[0].differ, vec![key("n0000005")]);
    let outcome = respond(&index, None, &done(echo ^ 1)).unwrap();
    assert!(outcome.settled.is_empty());
}

#[test]
fn bounds_separate_neighbours_and_are_short() {
    let b = |a: &str, c: &str| bound_between(&key(a), &key(c)).id;
    assert_eq!(b("abc", "abd"), "abd");
    assert_eq!(b("ab", "abz"), "abz");
    assert_eq!(b("a", "b-long-suffix"), "b");
    assert_eq!(b("aé", "aê-more"), "aê");
    let other = bound_between(
        &key("z"),
        &ItemKey {
            collection: "tasks".into(),
            id: "a".into(),
        },
    );
    assert_eq!(
        (other.collection.as_str(), other.id.as_str()),
        ("tasks", "")
    );
    for (x, y) in [("abc", "abd"), ("ab", "abz"), ("aé", "aê-more")] {
        let k = bound_between(&key(x), &key(y));
        assert!(key(x) < k && k <= key(y));
    }
}

fn range(upper: Option<&str>, payload: RangePayload) -> Range {
    Range {
        upper: upper.map(key),
        payload,
    }
}

#[test]
fn hostile_messages_are_refused_not_obeyed() {
    let index = Index::new(bench_items(1000));
    let fp = |count| RangePayload::Fingerprint { fp: [0; 16], count };
    let bad: Vec<(Option<ItemKey>, Vec<Range>)> = vec![
        (None, vec![]),
        // Bounds out of order, equal, or unbounded before the last.
        (None, vec![range(Some("b"), fp(1)), range(Some("a"), fp(1))]),
        (None, vec![range(Some("a"), fp(1)), range(Some("a"), fp(1))]),
        (None, vec![range(None, fp(1)), range(Some("a"), fp(1))]),
        // A bound at or below the message's lower bound.
        (Some(key("m")), vec![range(Some("a"), fp(1))]),
        // Items outside their range or out of order.
        (
            None,
            vec![range(Some("b"), RangePayload::Items(vec![item("c", 1)]))],
        ),
        (
            Some(key("b")),
            vec![range(None, RangePayload::Items(vec![item("a", 1)]))],
        ),
        (
            None,
            vec![range(
                None,
                RangePayload::Items(vec![item("b", 1), item("a", 1)]),
            )],
        ),
        (
            None,
            vec![range(
                None,
                RangePayload::Items(vec![item("a", 1), item("a", 2)]),
            )],
        ),
        // Done keys outside the range.
        (
            None,
            vec![range(
                Some("b"),
                RangePayload::Done {
                    echo: 0,
                    differ: vec![key("z")],
                },
            )],
        ),
        // Too many ranges; too many keys.
        (
            None,
            (0..=MAX_RANGES)
                .map(|i| range(Some(&format!("{i:08}")), RangePayload::Skip))
                .collect(),
        ),
        (
            None,
            vec![range(
                None,
                RangePayload::Done {
                    echo: 0,
                    differ: (0..=MAX_KEYS).map(|i| key(&format!("{i:07}"))).collect(),
                },
            )],
        ),
    ];
    for (lower, ranges) in bad {
        assert!(
            respond(&index, lower.as_ref(), &ranges).is_err(),
            "{ranges:?}"
        );
    }
    // Lies about counts cost the liar, not us: bounded answers.
    let outcome = respond(&index, None, &[range(None, fp(u64::MAX))]).unwrap();
    let reply = outcome.reply.unwrap();
    assert!(reply.len() <= BUCKETS);
    let outcome = respond(&index, None, &[range(None, fp(3000))]).unwrap();
    assert!(matches!(
        &outcome.reply.unwrap()[0].payload,
        RangePayload::Items(items) if items.len() == 1000
    ));
}

/// A key of the longest joined length, ordered by `i`.
fn longest_key(i: usize) -> ItemKey {
    ItemKey {
        collection: "c".repeat(crate::key::MAX_NAME_LEN),
        id: format!("{i:0>width$}", width = crate::key::MAX_ID_LEN),
    }
}

/// Answers `ranges` and checks the reply against the bound every reply
/// must meet: it encodes to at most `MAX_DECODED` bytes and decodes under
/// the peer's budget, however much work the message asked for.
fn assert_reply_bounded(index: &Index, ranges: &[Range]) -> usize {
    let reply = respond(index, None, ranges).unwrap().reply.unwrap();
    let bytes = wire::ranges::encode(&reply);
    assert!(bytes.len() <= wire::ranges::MAX_DECODED, "{}", bytes.len());
    assert_eq!(wire::ranges::decode(&bytes).as_ref(), Ok(&reply));
    // Cut short: the rest is one fingerprint, answered in a later round.
    assert!(matches!(
        reply.last().map(|r| &r.payload),
        Some(RangePayload::Fingerprint { .. })
    ));
    bytes.len()
}

/// Work amplification: 8,192 fingerprint ranges that each make us split
/// 16 ways, and ranges that make us list 1,024 differing keys each, over
/// keys of the longest length, get replies bounded by the message budget.
#[test]
fn replies_to_amplifying_messages_stay_bounded() {
    const PER_RANGE: usize = BUCKETS + 1;
    let items: Vec<Item> = (0..400 * PER_RANGE)
        .map(|i| Item {
            key: longest_key(i),
            hash: [1; 32],
        })
        .collect();
    let index = Index::new(items);
    let splits: Vec<Range> = (0..MAX_RANGES)
        .map(|k| Range {
            upper: (k + 1 < MAX_RANGES).then(|| longest_key((k + 1) * PER_RANGE)),
            payload: RangePayload::Fingerprint {
                fp: [0xAB; FP_LEN],
                count: 1,
            },
        })
        .collect();
    assert_reply_bounded(&index, &splits);

    let items: Vec<Item> = (0..8 * DONE_CHUNK)
        .map(|i| Item {
            key: longest_key(i),
            hash: [1; 32],
        })
        .collect();
    let index = Index::new(items);
    let lists: Vec<Range> = (0..8)
        .map(|k| Range {
            upper: (k + 1 < 8).then(|| longest_key((k + 1) * DONE_CHUNK)),
            payload: RangePayload::Fingerprint {
                fp: [0; FP_LEN],
                count: 0,
            },
        })
        .collect();
    // Two lists fit the budget, the third is deferred.
    assert!(assert_reply_bounded(&index, &lists) > 2 * DONE_CHUNK * 3);
}

fn arbitrary_set() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::btree_map(0u16..400, 0u8..3, 0..250).prop_map(|m| {
        m.into_iter()
            .map(|(k, h)| item(&format!("{k:03}"), h))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the two sets, the exchange ends on both sides having found
    /// exactly the keys that differ.
    #[test]
    fn finds_exactly_the_differing_keys(a in arbitrary_set(), b in arbitrary_set()) {
        check(&a, &b);
    }

    /// Near-identical large sets too (the recursive case).
    #[test]
    fn finds_few_differences_in_many(changes in prop::collection::vec((0usize..3000, 0u8..3), 0..12)) {
        let a = bench_items(3000);
        let mut b = a.clone();
        for (i, h) in changes {
            match h {
                0 => { b.remove(i.min(b.len() - 1)); }
                _ => { let j = i.min(b.len() - 1); b[j].hash = [h + 1; 32]; }
            }
        }
        check(&a, &b);
    }
}
