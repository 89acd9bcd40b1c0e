//! Refusals settle: a refused claim is answered once, the refused side ends
//! its session instead of retrying, and a refusal nobody asked for is only
//! charged to the sender.

use super::*;

fn refusals(outs: &[Output]) -> Vec<(String, String)> {
    sent(outs)
        .into_iter()
        .filter_map(|m| match m {
            Message::Refuse { space, reason } => Some((space.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_refused_claim_is_answered_once_per_reason() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    proven(&mut me, &peer);
    let offer = |proof: &[&[u8]]| {
        Input::Received(
            peer.id,
            Message::Offer {
                spaces: vec![claim(TEAM, proof)],
            },
        )
    };
    let outs = me.input(offer(&[b"junk"]));
    assert_eq!(refusals(&outs), [(TEAM.into(), "no join".into())]);
    // The same claim again is not answered again: the peer already knows.
    assert!(refusals(&me.input(offer(&[b"junk"]))).is_empty());
    // A new claim (a fresh invite) gets its own answer, even the same one.
    assert_eq!(
        refusals(&me.input(offer(&[b"other junk"]))),
        [(TEAM.into(), "no join".into())]
    );
    // A log change re-evaluates the stored claim; the same answer is not
    // sent twice either.
    assert!(refusals(&me.input(Input::MembershipChanged(TEAM.into()))).is_empty());
    // Once admitted, a later refusal is news again.
    me.input(offer(&[JOIN]));
    assert!(me.engine.in_session(peer.id, TEAM));
}

#[test]
fn a_refusal_ends_our_session_and_reports_it() {
    let mut me = side(1, &[TEAM]);
    let inviter = side(2, &[TEAM]);
    // We trust the inviter (as a joiner does) and claim the space to it.
    in_session(&mut me, &inviter);
    assert!(me.engine.in_session(inviter.id, TEAM));
    let outs = me.input(Input::Received(
        inviter.id,
        Message::Refuse {
            space: TEAM.into(),
            reason: "invite already used".into(),
        },
    ));
    assert!(!me.engine.in_session(inviter.id, TEAM));
    assert!(
        outs.contains(&Output::Access {
            peer: inviter.id,
            space: TEAM.into(),
            refused: Some("invite already used".into()),
        }),
        "{outs:?}"
    );
    // No session, so nothing is retried against the peer: ticks stay quiet
    // and the engine is idle.
    for t in 1..=10 {
        let outs = me.input(Input::Tick(t * RETRY_AFTER_MS * 20));
        assert!(sent(&outs).is_empty(), "{outs:?}");
    }
    assert!(me.engine.is_idle());
    // Naming the space to us again (its log admits us now) reopens it.
    let outs = me.input(Input::Received(
        inviter.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[])],
        },
    ));
    assert!(outs.contains(&Output::Access {
        peer: inviter.id,
        space: TEAM.into(),
        refused: None,
    }));
    assert!(me.engine.in_session(inviter.id, TEAM));
}

#[test]
fn a_refusal_of_a_claim_never_made_is_ignored_and_charged() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    proven(&mut me, &peer);
    me.input(Input::Received(peer.id, Message::Offer { spaces: vec![] }));
    // We never named TEAM to this peer: its refusals change nothing, and
    // a flood of them spends its budget for ignored frames.
    let mut closed_at = None;
    for i in 0..=IGNORED_BURST {
        let outs = me.input(Input::Received(
            peer.id,
            Message::Refuse {
                space: TEAM.into(),
                reason: "no".into(),
            },
        ));
        assert!(
            !outs.iter().any(|o| matches!(o, Output::Access { .. })),
            "{outs:?}"
        );
        if closed(&outs).is_some() {
            closed_at = Some(i);
            break;
        }
    }
    assert!(closed_at.is_some(), "a refusal flood never closed");
}

#[test]
fn a_revoked_member_is_sent_the_log_and_a_refusal() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[TEAM]);
    me.replica.roles.insert((TEAM.into(), me.id), Role::Admin);
    in_session(&mut me, &peer);
    // Revoked: the log no longer names the peer, and its stored claim (no
    // join in it) does not hold either.
    me.replica.roles.remove(&(TEAM.into(), peer.id));
    me.replica.write(TEAM, "note");
    let outs = me.input(Input::MembershipChanged(TEAM.into()));
    assert!(!me.engine.in_session(peer.id, TEAM));
    assert_eq!(
        refusals(&outs),
        [(TEAM.into(), "no join".into())],
        "{outs:?}"
    );
    // Its frames for the space are ignored from now on, and no retry
    // reaches it.
    for t in 1..=10 {
        let outs = me.input(Input::Tick(t * RETRY_AFTER_MS * 20));
        assert!(sent(&outs).is_empty(), "{outs:?}");
    }
}

/// Hands `outs` (outputs of `from`) over to `to`: returns what `to` answers
/// (for `from`) and what `from` says next (for `to`), counting `Sync` frames.
fn deliver(
    from: &mut Side,
    to: &mut Side,
    outs: Vec<Output>,
    syncs: &mut usize,
) -> (Vec<Output>, Vec<Output>) {
    let (mut answers, mut more) = (Vec::new(), Vec::new());
    for out in outs {
        match out {
            Output::Send(_, m) => {
                *syncs += usize::from(matches!(m, Message::Sync { .. }));
                answers.extend(to.input(Input::Received(from.id, m)));
            }
            // The runtime stores the document, then pushes the change.
            Output::Applied { key, .. } => more.extend(from.input(Input::Changed(key))),
            _ => {}
        }
    }
    (answers, more)
}

/// Runs two engines against each other until no frame is left; returns the
/// `Sync` frames exchanged.
fn pump(a: &mut Side, b: &mut Side, mut to_b: Vec<Output>, mut to_a: Vec<Output>) -> usize {
    let mut syncs = 0;
    for _ in 0..10_000 {
        if to_a.is_empty() && to_b.is_empty() {
            return syncs;
        }
        let (from_b, more_a) = deliver(a, b, std::mem::take(&mut to_b), &mut syncs);
        let (from_a, more_b) = deliver(b, a, std::mem::take(&mut to_a), &mut syncs);
        to_a = from_b.into_iter().chain(more_b).collect();
        to_b = from_a.into_iter().chain(more_a).collect();
    }
    panic!("the engines never went quiet");
}

/// An admin `a` and a reader `b` that both wrote the same note: the
/// reader's change (made while it could write) is one the admin refuses,
/// so their heads differ for good.
fn admin_and_reader_with_a_refused_change() -> (Side, Side, DocKey) {
    let mut a = side(1, &[TEAM]);
    let mut b = side(2, &[TEAM]);
    let (ida, idb) = (a.id, b.id);
    for s in [&mut a, &mut b] {
        s.replica.roles.insert((TEAM.into(), ida), Role::Admin);
        s.replica.roles.insert((TEAM.into(), idb), Role::Reader);
    }
    let key = a.replica.write(TEAM, "note");
    b.replica.write(TEAM, "note");
    (a, b, key)
}

#[test]
fn a_reader_holding_refused_changes_settles() {
    let (mut a, mut b, key) = admin_and_reader_with_a_refused_change();
    let (ida, idb) = (a.id, b.id);
    for round in 0..2 {
        if round == 1 {
            // Meeting again, the same difference settles again, quickly.
            a.input(Input::Disconnected(idb));
            b.input(Input::Disconnected(ida));
        }
        let to_b = a.input(Input::Connected(idb, CHALLENGE));
        let to_a = b.input(Input::Connected(ida, CHALLENGE));
        let syncs = pump(&mut a, &mut b, to_b, to_a);
        assert!(syncs <= 6, "round {round}: {syncs} sync frames");
        assert!(a.engine.is_idle(), "{}", a.engine.debug_peers());
        assert!(b.engine.is_idle(), "{}", b.engine.debug_peers());
        // Time passes: idle sessions retry nothing.
        let later = (round + 1) * RETRY_AFTER_MS * 100;
        assert!(sent(&a.input(Input::Tick(later))).is_empty());
        assert!(sent(&b.input(Input::Tick(later))).is_empty());
    }
    let ha = a.replica.doc(&key).heads();
    let hb = b.replica.doc(&key).heads();
    assert_ne!(ha, hb, "the admin took the reader's change");
    let reader = b.replica.doc(&key);
    assert!(
        ha.iter().all(|h| reader.has_change(h)),
        "the reader lacks the admin's change"
    );
}

#[test]
fn a_promoted_reader_is_synced_both_ways() {
    let (mut a, mut b, key) = admin_and_reader_with_a_refused_change();
    let (ida, idb) = (a.id, b.id);
    let to_b = a.input(Input::Connected(idb, CHALLENGE));
    let to_a = b.input(Input::Connected(ida, CHALLENGE));
    pump(&mut a, &mut b, to_b, to_a);
    let before = a.replica.doc(&key).heads();
    // Promoted: what it holds now flows to the admin, without a reconnect.
    for s in [&mut a, &mut b] {
        s.replica.roles.insert((TEAM.into(), idb), Role::Writer);
    }
    let to_b = a.input(Input::MembershipChanged(TEAM.into()));
    let to_a = b.input(Input::MembershipChanged(TEAM.into()));
    pump(&mut a, &mut b, to_b, to_a);
    let later = RETRY_AFTER_MS * 1000;
    let to_b = a.input(Input::Tick(later));
    let to_a = b.input(Input::Tick(later));
    pump(&mut a, &mut b, to_b, to_a);
    let after = a.replica.doc(&key).heads();
    assert_ne!(
        before, after,
        "the admin never took the promoted writer's change"
    );
    assert_eq!(after, b.replica.doc(&key).heads());
    assert!(a.engine.is_idle() && b.engine.is_idle());
}

#[test]
fn a_refusal_reason_reaches_the_runtime_without_control_characters() {
    let mut me = side(1, &[TEAM]);
    let inviter = side(2, &[TEAM]);
    in_session(&mut me, &inviter);
    let outs = me.input(Input::Received(
        inviter.id,
        Message::Refuse {
            space: TEAM.into(),
            reason: "used\u{1b}[2J \u{202e}desrever".into(),
        },
    ));
    let reason = outs.iter().find_map(|o| match o {
        Output::Access {
            refused: Some(r), ..
        } => Some(r.clone()),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("used[2J desrever"));
}

/// A reader naming more documents than `MAX_PENDING` (none of which we
/// hold) leaves at most that many one-way records behind, and in-memory
/// states within `MAX_STATES`.
#[test]
fn one_way_records_are_bounded_whatever_a_reader_names() {
    use automerge::sync::SyncDoc;
    let mut me = side(1, &[TEAM]);
    let reader = side(2, &[TEAM]);
    me.replica.roles.insert((TEAM.into(), me.id), Role::Admin);
    in_session(&mut me, &reader);
    me.replica
        .roles
        .insert((TEAM.into(), reader.id), Role::Reader);
    me.input(Input::MembershipChanged(TEAM.into()));
    let mut empty = automerge::AutoCommit::new();
    let data = empty
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap()
        .encode();
    for i in 0..MAX_PENDING + 100 {
        me.input(Input::Received(
            reader.id,
            Message::Sync {
                space: TEAM.into(),
                key: ItemKey {
                    collection: "c".into(),
                    id: format!("junk{i}"),
                },
                data: data.clone(),
            },
        ));
    }
    let session = &me.engine.peers[&reader.id].sessions[TEAM];
    // Filled up to the bound, not past it.
    assert_eq!(session.one_way.len(), MAX_PENDING);
    assert!(
        session.states.len() <= MAX_STATES,
        "{}",
        session.states.len()
    );
}
