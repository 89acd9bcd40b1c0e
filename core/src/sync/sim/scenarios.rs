//! Scenario tests on the simulator: shared documents, hostile frames,
//! determinism, budgets and an initial sync larger than the backlog.

use super::*;

/// The first seed from `from` whose node 1 is a member that writes (the
/// fates are random per seed), so frames between nodes 0 and 1 are in a
/// session.
fn writer_seed(from: u64) -> u64 {
    (from..)
        .find(|&s| {
            matches!(
                Sim::new(s).nodes[1].fate,
                Fate::Member(Role::Writer | Role::Admin)
            )
        })
        .expect("some seed")
}

/// Many documents in common and a few written during the run: the runs
/// converge, and reconciliation costs a small fraction of listing every
/// document in every exchange (as before range-based reconciliation).
#[test]
fn many_shared_documents_few_differences() {
    let shared = 2_000;
    for seed in 0..8 {
        let mut sim = Sim::with_documents(seed, shared);
        sim.run()
            .unwrap_or_else(|e| panic!("seed {seed} with {shared} documents: {e}"));
        let listing = shared * 40;
        assert!(
            sim.reconcile_bytes < listing,
            "seed {seed}: {} bytes of reconciliation",
            sim.reconcile_bytes
        );
        eprintln!(
            "seed {seed}: {} bytes of reconciliation",
            sim.reconcile_bytes
        );
    }
}

/// A peer's nonsense ranges end its session; they are never obeyed.
#[test]
fn invalid_reconcile_ends_the_session() {
    use crate::sync::wire::{Message, Range, RangePayload};
    let mut sim = Sim::new(writer_seed(1));
    sim.faulty = false;
    sim.step_until(5_000);
    let peer = sim.nodes[1].id;
    let bound = |id: &str| {
        Some(ItemKey {
            collection: "c".into(),
            id: id.into(),
        })
    };
    let unsorted = vec![
        Range {
            upper: bound("b"),
            payload: RangePayload::Skip,
        },
        Range {
            upper: bound("a"),
            payload: RangePayload::Skip,
        },
    ];
    sim.input(
        0,
        Input::Received(
            peer,
            Message::Reconcile {
                space: SPACE.clone(),
                lower: None,
                ranges: unsorted,
            },
        ),
    );
    assert!(
        sim.closes
            .last()
            .is_some_and(|r| r.contains("invalid reconcile message")),
        "{:?}",
        sim.closes
    );
}

/// A `Doc` frame that is not an Automerge document ends the session and
/// stores nothing.
#[test]
fn garbage_document_ends_the_session() {
    use crate::sync::wire::Message;
    let mut sim = Sim::new(writer_seed(2));
    sim.faulty = false;
    sim.step_until(5_000);
    let peer = sim.nodes[1].id;
    let forged = DocKey::new(SPACE.as_str(), "c", "forged").unwrap();
    sim.input(
        0,
        Input::Received(
            peer,
            Message::Doc {
                space: SPACE.clone(),
                key: ItemKey {
                    collection: "c".into(),
                    id: "forged".into(),
                },
                data: b"not an automerge document".to_vec(),
            },
        ),
    );
    assert!(
        sim.closes.last().is_some_and(|r| r.contains("forged")),
        "{:?}",
        sim.closes
    );
    assert!(
        sim.nodes[0]
            .replica
            .docs
            .get(&forged)
            .is_none_or(|d| d.is_empty()),
        "nothing of the forged document was kept"
    );
}

#[test]
fn deterministic_same_seed_same_outcome() {
    let mut a = Sim::new(42);
    let mut b = Sim::new(42);
    a.run().unwrap();
    b.run().unwrap();
    assert_eq!(a.now, b.now);
    assert_eq!(a.closes, b.closes);
    assert_eq!(a.written, b.written);
}

/// An honest initial sync of 10,000 documents to fresh replicas (thousands
/// of `Reconcile`, `Doc`, `DocAck` and `Sync` frames) spends none of the
/// per-peer budgets dry, while a flood of exchanges does.
#[test]
fn budgets_hold_for_an_honest_initial_sync_and_trip_for_a_flood() {
    use crate::sync::engine::{RECONCILE_BURST, RECONCILE_PER_SEC};
    use crate::sync::wire::Message;
    let docs = 10_000;
    // Seeds with two, three and four nodes (one holds the documents).
    for seed in [3, 4, 5] {
        let mut sim = Sim::with_documents_on(seed, docs, 1);
        sim.faulty = false;
        sim.finish()
            .unwrap_or_else(|e| panic!("seed {seed}: initial sync of {docs} documents: {e}"));
        assert!(
            sim.closes.iter().all(|r| !r.contains("budget")),
            "seed {seed}: honest traffic spent a budget: {:?}",
            sim.closes
        );
        let most = sim.reconcile_frames.values().copied().max().unwrap_or(0);
        eprintln!(
            "seed {seed}: {} nodes, {docs} documents: at most {most} Reconcile frames from one peer in {} ms (budget {RECONCILE_BURST} + {RECONCILE_PER_SEC}/s)",
            sim.nodes.len(),
            sim.now
        );
        assert!(
            most < RECONCILE_BURST / 4,
            "seed {seed}: {most} Reconcile frames"
        );
    }

    // A peer beginning exchange after exchange is cut off.
    let mut sim = Sim::new(3);
    sim.faulty = false;
    sim.step_until(5_000);
    let flooder = sim.nodes[1].id;
    let flood = Message::Reconcile {
        space: SPACE.clone(),
        lower: None,
        ranges: crate::sync::reconcile::initiate(&crate::sync::reconcile::Index::new(vec![])),
    };
    let before = sim.closes.len();
    for _ in 0..2 * RECONCILE_BURST {
        sim.input(0, Input::Received(flooder, flood.clone()));
        if sim.closes.len() > before {
            break;
        }
    }
    assert!(
        sim.closes[before..]
            .iter()
            .any(|r| r.contains("reconciliation budget")),
        "{:?}",
        &sim.closes[before..]
    );
}

/// More differing documents than one session's backlog holds: the rest
/// wait for the next exchange, which begins as soon as the backlog drains,
/// and the fresh replica ends up with all of them.
#[test]
fn an_initial_sync_larger_than_the_backlog_converges() {
    use crate::sync::engine::MAX_BACKLOG;
    let docs = MAX_BACKLOG + MAX_BACKLOG / 4;
    let mut sim = Sim::with_documents_on(writer_seed(3), docs, 1);
    sim.faulty = false;
    sim.finish()
        .unwrap_or_else(|e| panic!("initial sync of {docs} documents: {e}"));
    let held = sim.nodes[1]
        .replica
        .docs
        .values()
        .filter(|d| !d.is_empty())
        .count();
    // The documents and the membership log.
    assert_eq!(held, docs + 1);
    eprintln!(
        "{docs} documents synced in {} ms of simulated time",
        sim.now
    );
}
