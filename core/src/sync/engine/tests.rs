//! Short scenarios against the engine: the v4 handshake, frames that need
//! nothing, acknowledgements, the backlog, sync states and budgets.

use std::collections::{BTreeMap, VecDeque};

use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;

use super::*;
use crate::doc::actor_for;
use crate::sync::reconcile::{FP_LEN, heads_hash};
use crate::sync::wire::{Claim, Range, RangePayload};

const TEAM: &str = "team";
const OTHER: &str = "other";
/// A proof entry the test replica accepts as a valid join.
const JOIN: &[u8] = b"join";

struct TestReplica {
    actor: automerge::ActorId,
    docs: BTreeMap<DocKey, Document>,
    roles: BTreeMap<(String, NodeId), Role>,
    /// Log evaluations of claims (calls of `admit`).
    evaluations: usize,
}

impl TestReplica {
    fn new(me: NodeId) -> Self {
        Self {
            actor: actor_for(me, [0; 8]),
            docs: BTreeMap::new(),
            roles: BTreeMap::new(),
            evaluations: 0,
        }
    }

    fn write(&mut self, space: &str, id: &str) -> DocKey {
        let key = DocKey::new(space, "c", id).unwrap();
        let doc = self
            .docs
            .entry(key.clone())
            .or_insert_with(|| Document::new(self.actor.clone()));
        doc.put(json!({"id": id}).as_object().unwrap(), 0).unwrap();
        key
    }
}

impl Replica for TestReplica {
    fn items(&mut self, space: &str) -> Vec<Item> {
        self.docs
            .iter_mut()
            .filter(|(k, d)| k.space() == space && !d.is_empty())
            .map(|(k, d)| Item {
                key: item_key(k),
                hash: heads_hash(&d.heads()),
            })
            .collect()
    }
    fn doc(&mut self, key: &DocKey) -> &mut Document {
        let actor = self.actor.clone();
        self.docs
            .entry(key.clone())
            .or_insert_with(|| Document::new(actor))
    }
    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        self.docs
            .get_mut(key)
            .filter(|d| !d.is_empty())
            .map(|d| d.save())
    }
    fn sync_state(&mut self, _: NodeId, _: &DocKey) -> Option<Vec<u8>> {
        None
    }
    fn role(&mut self, space: &str, node: NodeId) -> Option<Role> {
        self.roles.get(&(space.to_owned(), node)).copied()
    }
    fn proof(&mut self, space: &str) -> Vec<Vec<u8>> {
        vec![format!("proof of {space}").into_bytes()]
    }
    fn admit(&mut self, space: &str, node: NodeId, proof: &[Vec<u8>]) -> Admission {
        self.evaluations += 1;
        if let Some(role) = self.role(space, node) {
            return Ok((role, false));
        }
        if proof.iter().any(|e| e == JOIN) {
            self.roles.insert((space.to_owned(), node), Role::Writer);
            return Ok((Role::Writer, true));
        }
        Err("no join".into())
    }
}

struct Side {
    id: NodeId,
    key: SigningKey,
    engine: Engine,
    replica: TestReplica,
}

fn side(seed: u8, spaces: &[&str]) -> Side {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let id = NodeId::from_bytes(key.verifying_key().to_bytes());
    Side {
        id,
        engine: Engine::new(key.clone(), spaces.iter().map(|s| s.to_string())),
        key,
        replica: TestReplica::new(id),
    }
}

impl Side {
    /// Handles `input` and its follow-ups; returns every other output.
    fn input(&mut self, input: Input) -> Vec<Output> {
        let mut work = VecDeque::from([input]);
        let mut outs = Vec::new();
        while let Some(input) = work.pop_front() {
            for out in self.engine.handle(&mut self.replica, input) {
                match out {
                    Output::Then(next) => work.push_back(next),
                    other => outs.push(other),
                }
            }
        }
        outs
    }

    fn signed(&self, challenge: &[u8; 32], verifier: NodeId) -> Message {
        Message::Proof {
            signature: self
                .key
                .sign(&proof_bytes(challenge, self.id, verifier))
                .to_bytes(),
        }
    }
}

fn sent(outs: &[Output]) -> Vec<&Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(_, m) => Some(m),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[Output]) -> Option<&str> {
    outs.iter().find_map(|o| match o {
        Output::Close(_, reason) => Some(reason.as_str()),
        _ => None,
    })
}

fn offered(outs: &[Output]) -> Option<Vec<String>> {
    sent(outs).into_iter().find_map(|m| match m {
        Message::Offer { spaces } => Some(spaces.iter().map(|c| c.space.clone()).collect()),
        _ => None,
    })
}

const CHALLENGE: [u8; 32] = [5; 32];

/// `me` connected to `peer` (a hand-driven peer): both hellos and the
/// peer's proof handled. Returns the outputs of the proof.
fn proven(me: &mut Side, peer: &Side) -> Vec<Output> {
    let hello = me.input(Input::Connected(peer.id, CHALLENGE));
    assert_eq!(
        sent(&hello),
        [&Message::Hello {
            node: me.id,
            challenge: CHALLENGE
        }]
    );
    let answer = me.input(Input::Received(
        peer.id,
        Message::Hello {
            node: peer.id,
            challenge: [6; 32],
        },
    ));
    // A hello is answered with a proof and nothing about spaces.
    assert!(
        matches!(sent(&answer)[..], [Message::Proof { .. }]),
        "{answer:?}"
    );
    let proof = peer.signed(&CHALLENGE, me.id);
    let needs = me.engine.needs(&Input::Received(peer.id, proof.clone()));
    assert_eq!(needs.memberships.len(), me.engine.spaces.len());
    me.input(Input::Received(peer.id, proof))
}

fn claim(space: &str, proof: &[&[u8]]) -> Claim {
    Claim {
        space: space.into(),
        proof: proof
            .iter()
            .map(|e| serde_bytes::ByteBuf::from(e.to_vec()))
            .collect(),
    }
}

/// A peer's first `Reconcile` saying it holds nothing of the space, so every
/// document we hold goes to it whole.
fn i_have_nothing() -> Message {
    Message::Reconcile {
        space: TEAM.into(),
        lower: None,
        ranges: vec![Range {
            upper: None,
            payload: RangePayload::Fingerprint {
                fp: [0; FP_LEN],
                count: 0,
            },
        }],
    }
}

/// `me` with an open session with `peer` in TEAM (`peer` a writer there).
fn in_session(me: &mut Side, peer: &Side) {
    me.replica
        .roles
        .insert((TEAM.into(), peer.id), Role::Writer);
    proven(me, peer);
    me.input(Input::Received(
        peer.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[])],
        },
    ));
    assert!(me.engine.pending(peer.id).contains_key(TEAM));
}

#[test]
fn spaces_are_offered_only_after_the_proof_and_only_to_members() {
    let mut me = side(1, &[TEAM, OTHER]);
    let peer = side(2, &[]);
    me.replica
        .roles
        .insert((TEAM.into(), peer.id), Role::Reader);
    let outs = proven(&mut me, &peer);
    assert_eq!(offered(&outs), Some(vec![TEAM.to_owned()]), "{outs:?}");

    // A stranger gets an empty offer: it completes the handshake, and names
    // nothing.
    let mut me = side(1, &[TEAM, OTHER]);
    let stranger = side(3, &[]);
    let outs = proven(&mut me, &stranger);
    assert_eq!(offered(&outs), Some(vec![]));
    // Claiming a space it is not a member of reveals nothing either: it
    // hears only that the claim it made was refused.
    let outs = me.input(Input::Received(
        stranger.id,
        Message::Offer {
            spaces: vec![claim(OTHER, &[b"forged"])],
        },
    ));
    assert_eq!(
        sent(&outs),
        [&Message::Refuse {
            space: OTHER.into(),
            reason: "no join".into()
        }],
        "{outs:?}"
    );
    assert!(me.engine.pending(stranger.id).is_empty());
}

#[test]
fn a_proof_that_does_not_verify_needs_nothing_and_closes() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    me.input(Input::Connected(peer.id, CHALLENGE));
    me.input(Input::Received(
        peer.id,
        Message::Hello {
            node: peer.id,
            challenge: [6; 32],
        },
    ));
    let forged = peer.signed(&[0; 32], me.id);
    let input = Input::Received(peer.id, forged);
    assert_eq!(me.engine.needs(&input), Needs::default());
    assert!(closed(&me.input(input)).is_some_and(|r| r.contains("does not verify")));
}

#[test]
fn handshake_frames_out_of_order_close() {
    let peer = side(2, &[]);
    let hello = Message::Hello {
        node: peer.id,
        challenge: [6; 32],
    };
    let early: Vec<(Vec<Message>, &str)> = vec![
        (
            vec![peer.signed(&CHALLENGE, side(1, &[]).id)],
            "proof out of order",
        ),
        (vec![Message::Offer { spaces: vec![] }], "offer before"),
        (
            vec![hello.clone(), Message::Offer { spaces: vec![] }],
            "offer before",
        ),
        (
            vec![
                hello.clone(),
                Message::DocAck {
                    space: TEAM.into(),
                    count: 0,
                },
            ],
            "before the handshake",
        ),
        (vec![hello.clone(), hello.clone()], "second hello"),
    ];
    for (frames, reason) in early {
        let mut me = side(1, &[TEAM]);
        me.input(Input::Connected(peer.id, CHALLENGE));
        let mut outs = Vec::new();
        for frame in frames {
            outs = me.input(Input::Received(peer.id, frame));
        }
        assert!(
            closed(&outs).is_some_and(|r| r.contains(reason)),
            "{reason}: {outs:?}"
        );
    }
    // Proven but its first offer not in yet: session frames still close.
    let mut me = side(1, &[TEAM]);
    me.replica.write(TEAM, "a");
    proven(&mut me, &peer);
    let reconcile = Input::Received(
        peer.id,
        Message::Reconcile {
            space: TEAM.into(),
            lower: None,
            ranges: vec![],
        },
    );
    assert_eq!(me.engine.needs(&reconcile), Needs::default());
    assert!(closed(&me.input(reconcile)).is_some_and(|r| r.contains("before the handshake")));
}

#[test]
fn frames_for_a_space_without_a_session_need_nothing() {
    let mut me = side(1, &[TEAM]);
    let outsider = side(2, &[]);
    me.replica.write(TEAM, "secret");
    proven(&mut me, &outsider);
    me.input(Input::Received(
        outsider.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[])],
        },
    ));
    let item = ItemKey {
        collection: "c".into(),
        id: "secret".into(),
    };
    for frame in [
        i_have_nothing(),
        Message::Sync {
            space: TEAM.into(),
            key: item.clone(),
            data: vec![0x42],
        },
        Message::Doc {
            space: TEAM.into(),
            key: item,
            data: vec![1],
        },
    ] {
        let input = Input::Received(outsider.id, frame);
        assert_eq!(me.engine.needs(&input), Needs::default(), "{input:?}");
        let outs = me.input(input);
        // Nothing but the refusal again (the outsider acts as if it missed it).
        assert!(
            sent(&outs)
                .iter()
                .all(|m| matches!(m, Message::Refuse { space, .. } if space == TEAM)),
            "{outs:?}"
        );
        assert!(closed(&outs).is_none(), "{outs:?}");
    }
}

#[test]
fn a_joiner_claims_first_and_is_named_the_space_once_admitted() {
    let mut inviter = side(1, &[TEAM]);
    let mut joiner = side(2, &[TEAM]);
    // The joiner trusts its inviter; the inviter's log lacks the join.
    joiner
        .replica
        .roles
        .insert((TEAM.into(), inviter.id), Role::Admin);
    let outs = proven(&mut inviter, &joiner);
    assert_eq!(offered(&outs), Some(vec![]));
    let outs = proven(&mut joiner, &inviter);
    assert_eq!(offered(&outs), Some(vec![TEAM.to_owned()]));
    // The join admits it, and the inviter names the space back before
    // anything else about it.
    let outs = inviter.input(Input::Received(
        joiner.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[JOIN])],
        },
    ));
    assert!(
        matches!(sent(&outs).first(), Some(Message::Offer { spaces }) if spaces[0].space == TEAM),
        "{outs:?}"
    );
    assert!(inviter.engine.pending(joiner.id).contains_key(TEAM));
    // The same claim again is not evaluated again.
    let before = inviter.replica.evaluations;
    inviter.input(Input::Received(
        joiner.id,
        Message::Offer {
            spaces: vec![claim(TEAM, &[JOIN])],
        },
    ));
    assert_eq!(inviter.replica.evaluations, before);
}

#[test]
fn refused_claims_are_not_evaluated_twice() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    proven(&mut me, &peer);
    let offer = Message::Offer {
        spaces: vec![claim(TEAM, &[b"junk"])],
    };
    me.input(Input::Received(peer.id, offer.clone()));
    assert_eq!(me.replica.evaluations, 1);
    let input = Input::Received(peer.id, offer);
    assert!(me.engine.needs(&input).memberships.is_empty());
    me.input(input);
    assert_eq!(me.replica.evaluations, 1);
}

#[test]
fn an_acknowledgement_of_more_than_was_sent_closes() {
    let mut me = side(1, &[TEAM]);
    let reader = side(2, &[]);
    for i in 0..100 {
        me.replica.write(TEAM, &format!("d{i:03}"));
    }
    in_session(&mut me, &reader);
    // "I have nothing": every document goes whole, one window's worth.
    let nothing = i_have_nothing();
    let outs = me.input(Input::Received(reader.id, nothing.clone()));
    let docs = sent(&outs)
        .iter()
        .filter(|m| matches!(m, Message::Doc { .. }))
        .count();
    assert_eq!(docs, 100);
    // Asking for them all again sends none whole a second time.
    let outs = me.input(Input::Received(reader.id, nothing));
    assert!(
        !sent(&outs).iter().any(|m| matches!(m, Message::Doc { .. })),
        "{outs:?}"
    );
    // Acknowledging what was sent is fine; one more is not.
    let ack = |count| {
        Input::Received(
            reader.id,
            Message::DocAck {
                space: TEAM.into(),
                count,
            },
        )
    };
    assert!(closed(&me.input(ack(99))).is_none());
    let outs = me.input(ack(u32::MAX));
    assert!(
        closed(&outs).is_some_and(|r| r.contains("acknowledged")),
        "{outs:?}"
    );
}

#[test]
fn the_backlog_is_bounded_and_holds_each_document_once() {
    let mut s = Session::default();
    let keys = |n: usize| -> Vec<(ItemKey, bool)> {
        (0..n)
            .map(|i| {
                (
                    ItemKey {
                        collection: "c".into(),
                        id: format!("{i:06}"),
                    },
                    true,
                )
            })
            .collect()
    };
    s.enqueue(TEAM, keys(MAX_BACKLOG / 2));
    s.enqueue(TEAM, keys(MAX_BACKLOG / 2));
    assert_eq!(s.queued.len(), MAX_BACKLOG / 2, "duplicates were queued");
    assert!(!s.overflow);
    s.enqueue(TEAM, keys(MAX_BACKLOG * 4));
    assert_eq!(s.queued.len(), MAX_BACKLOG);
    assert_eq!(
        s.backlog.iter().map(|(b, _)| b.len()).sum::<usize>(),
        MAX_BACKLOG
    );
    assert!(s.overflow);
    // Releasing moves one window into flight; a retry frees only that.
    let mut out = Vec::new();
    s.release(NodeId::from_bytes([1; 32]), &mut out);
    assert_eq!(s.started.len(), START_WINDOW);
    assert_eq!(s.queued.len() + s.started.len(), MAX_BACKLOG);
    s.lost();
    s.release(NodeId::from_bytes([1; 32]), &mut out);
    assert_eq!(s.started.len(), START_WINDOW);
    assert_eq!(s.queued.len(), MAX_BACKLOG - 2 * START_WINDOW);
}

#[test]
fn no_sync_state_is_kept_for_a_document_that_does_not_exist() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    in_session(&mut me, &peer);
    // An empty Automerge sync message about a document nobody has.
    let mut state = automerge::sync::State::new();
    let mut empty = Document::new(actor_for(peer.id, [0; 8]));
    let data = empty.generate_sync_message(&mut state).unwrap();
    for i in 0..50 {
        let outs = me.input(Input::Received(
            peer.id,
            Message::Sync {
                space: TEAM.into(),
                key: ItemKey {
                    collection: "c".into(),
                    id: format!("ghost{i}"),
                },
                data: data.clone(),
            },
        ));
        assert!(closed(&outs).is_none(), "{outs:?}");
    }
    let session = &me.engine.peers[&peer.id].sessions[TEAM];
    assert!(session.states.is_empty(), "{:?}", session.states.keys());
    let outs = me.input(Input::Disconnected(peer.id));
    assert!(outs.is_empty(), "states were saved: {outs:?}");
}

#[test]
fn in_memory_sync_states_are_capped() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    let n = MAX_STATES + 100;
    let keys: Vec<DocKey> = (0..n)
        .map(|i| me.replica.write(TEAM, &format!("{i:05}")))
        .collect();
    in_session(&mut me, &peer);
    let mut saved = 0;
    for key in keys {
        for out in me.input(Input::Changed(key)) {
            if let Output::SaveStates(_, states) = out {
                saved += states.len();
            }
        }
        assert!(me.engine.peers[&peer.id].sessions[TEAM].states.len() <= MAX_STATES);
    }
    assert!(saved > 0, "states past the cap are handed to the store");
}

#[test]
fn a_reconcile_flood_spends_the_budget_and_closes() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    me.replica.write(TEAM, "a");
    in_session(&mut me, &peer);
    let frame = Input::Received(
        peer.id,
        Message::Reconcile {
            space: TEAM.into(),
            lower: None,
            ranges: initiate(&Index::new(vec![])),
        },
    );
    let mut closed_at = None;
    for i in 0..RECONCILE_BURST + 10 {
        if i == RECONCILE_BURST {
            // Spent: the next one needs nothing read.
            assert_eq!(me.engine.needs(&frame), Needs::default());
        }
        if let Some(r) = closed(&me.input(frame.clone())) {
            assert!(r.contains("budget"), "{r}");
            closed_at = Some(i);
            break;
        }
    }
    assert_eq!(closed_at, Some(RECONCILE_BURST));
    // Reconnecting does not refill the budget: the next one closes again.
    me.input(Input::Disconnected(peer.id));
    in_session(&mut me, &peer);
    let r = closed(&me.input(frame.clone())).map(str::to_owned);
    assert!(r.is_some_and(|r| r.contains("budget")));
}

#[test]
fn ignored_and_claim_floods_close() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    proven(&mut me, &peer);
    me.input(Input::Received(peer.id, Message::Offer { spaces: vec![] }));
    let ack = Input::Received(
        peer.id,
        Message::DocAck {
            space: OTHER.into(),
            count: 0,
        },
    );
    let mut n = 0;
    while closed(&me.input(ack.clone())).is_none() {
        n += 1;
        assert!(n <= IGNORED_BURST, "never cut off");
    }
    assert_eq!(n, IGNORED_BURST);

    // Claims: each costs a log evaluation, admitted or not.
    let spaces: Vec<String> = (0..CLAIM_BURST + 100).map(|i| format!("s{i}")).collect();
    let mut me = side(1, &spaces.iter().map(String::as_str).collect::<Vec<_>>());
    proven(&mut me, &peer);
    let offer = |range: std::ops::Range<usize>| {
        let spaces = spaces[range].iter().map(|s| claim(s, &[JOIN])).collect();
        Input::Received(peer.id, Message::Offer { spaces })
    };
    let first = CLAIM_BURST as usize - 10;
    assert!(closed(&me.input(offer(0..first))).is_none());
    assert_eq!(me.replica.evaluations, first);
    let more = offer(first..first + 20);
    assert!(
        me.engine.needs(&more).memberships.is_empty(),
        "needs past the budget"
    );
    let outs = me.input(more);
    assert!(
        closed(&outs).is_some_and(|r| r.contains("claim budget")),
        "{outs:?}"
    );
    assert_eq!(me.replica.evaluations, first, "evaluated past the budget");
}

#[test]
fn a_retry_releases_one_window_and_never_a_document_twice() {
    let mut me = side(1, &[TEAM]);
    let reader = side(2, &[]);
    let n = 3 * START_WINDOW;
    for i in 0..n {
        me.replica.write(TEAM, &format!("d{i:04}"));
    }
    in_session(&mut me, &reader);
    let nothing = i_have_nothing();
    let mut whole = std::collections::BTreeSet::new();
    let mut count = |outs: &[Output]| {
        for m in sent(outs) {
            if let Message::Doc { key, .. } = m {
                assert!(whole.insert(key.id.clone()), "{} sent twice", key.id);
            }
        }
        whole.len()
    };
    // The reader never acknowledges: one window goes.
    let outs = me.input(Input::Received(reader.id, nothing.clone()));
    assert_eq!(count(&outs), START_WINDOW);
    // A retry lets one more window go, not the whole space again.
    let outs = me.input(Input::Tick(RETRY_AFTER_MS));
    assert_eq!(count(&outs), 2 * START_WINDOW);
    // The reader asking again: what went whole is queued for Automerge
    // rounds (which it must answer), the rest stays queued once.
    let outs = me.input(Input::Received(reader.id, nothing));
    assert_eq!(count(&outs), 2 * START_WINDOW);
    let session = &me.engine.peers[&reader.id].sessions[TEAM];
    assert_eq!(session.queued.len(), n);
    assert_eq!(session.sent_whole.len(), 2 * START_WINDOW);
    // The next retry waits twice as long, then again releases one window.
    let outs = me.input(Input::Tick(2 * RETRY_AFTER_MS));
    assert_eq!(count(&outs), 2 * START_WINDOW);
    let outs = me.input(Input::Tick(3 * RETRY_AFTER_MS));
    assert_eq!(count(&outs), n);
    let session = &me.engine.peers[&reader.id].sessions[TEAM];
    assert_eq!(session.queued.len(), 2 * START_WINDOW);
}

#[test]
fn pending_is_bounded_whatever_keys_a_peer_names() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    in_session(&mut me, &peer);
    let key = |i: usize| ItemKey {
        collection: "c".into(),
        id: format!("{i:08}"),
    };
    // Made-up differing keys in ranges where we hold nothing (so the
    // echo, the sum of our empty side, matches): more than the bound.
    let per = 1_000;
    for m in 0..(MAX_PENDING * 2 / per) {
        let (lo, hi) = (m * per, (m + 1) * per);
        let outs = me.input(Input::Received(
            peer.id,
            Message::Reconcile {
                space: TEAM.into(),
                lower: Some(key(lo)),
                ranges: vec![Range {
                    upper: Some(key(hi)),
                    payload: RangePayload::Done {
                        echo: 0,
                        differ: (lo..hi).map(key).collect(),
                    },
                }],
            },
        ));
        assert!(closed(&outs).is_none(), "{outs:?}");
    }
    assert_eq!(me.engine.pending(peer.id)[TEAM], MAX_PENDING);
}

#[test]
fn claims_for_other_spaces_or_with_oversized_entries_are_not_kept() {
    let mut me = side(1, &[TEAM]);
    let peer = side(2, &[]);
    proven(&mut me, &peer);
    let big = vec![0u8; MAX_PROOF_ENTRY_BYTES + 1];
    let outs = me.input(Input::Received(
        peer.id,
        Message::Offer {
            spaces: vec![claim("elsewhere", &[JOIN]), claim(TEAM, &[&big])],
        },
    ));
    assert!(closed(&outs).is_none(), "{outs:?}");
    let held = me.engine.debug_peers();
    assert!(held.contains("claims=[]"), "{held}");
}

mod refusal;
mod withdraw;
