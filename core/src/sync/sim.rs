//! Deterministic simulation of the sync protocol: N nodes' engines over a
//! simulated network with a seeded RNG that delays, reorders, duplicates and
//! drops messages and partitions and heals links, while the nodes write
//! concurrently and the space's real membership log changes: admins,
//! writers, readers and outsiders, joins during the run (some while
//! partitioned, some with an invite already used), revocations and role
//! changes racing each other, readers trying to write. After healing:
//! - every member (by the creator's log) holds identical JSON for every
//!   document and the same log, and no acknowledged write of a writer whose
//!   role never changed is missing;
//! - no change by a node that was never a writer is held by anyone else;
//! - every session reaches idle within [`frame_bound`] frames of the last
//!   heal, and then no frame moves for [`QUIET_MS`] of simulated time;
//! - no link ever holds more than [`MAX_IN_FLIGHT`] frames.
//!
//! `WEFT_SIM_SEED=<n>` replays one seed; `WEFT_SIM_SEEDS=<count>` changes how
//! many seeds each test runs; `WEFT_SIM_TRACE=1` prints the membership
//! actions and the handshake, membership and sync frames as delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use crate::auth::{Entry, SpaceId, SpaceKey};
use crate::doc::{Document, actor_for};
use crate::sync::wire::{self, ItemKey};
use crate::sync::{Engine, Input, Output};
use crate::{DocKey, NodeId, Role};
use ed25519_dalek::SigningKey;
use serde_json::json;

mod checks;
mod members;
mod replica;
use members::{Fate, Members};
use replica::SimReplica;

/// The space's key: the same space on every run, so a seed replays exactly.
const SPACE_SECRET: [u8; 32] = [7; 32];
/// The one space of the simulation.
static SPACE: LazyLock<String> = LazyLock::new(|| space_id().to_string());

fn space_id() -> SpaceId {
    SpaceKey::from_secret(SPACE_SECRET).id()
}

fn log_key() -> DocKey {
    DocKey::new(
        SPACE.as_str(),
        crate::auth::SYSTEM_COLLECTION,
        crate::auth::MEMBERS_ID,
    )
    .expect("valid key")
}

/// Simulated time after quiescence during which not one frame may move:
/// longer than the longest retry backoff (16 × `RETRY_AFTER_MS`).
const QUIET_MS: u64 = 60_000;
/// Frames in flight on one link at most (sync windows bound them).
const MAX_IN_FLIGHT: usize = 4 * crate::sync::START_WINDOW;

/// Frames the network may carry from the last heal until every session is
/// idle. Per connected pair: the handshake (hello, proof and first offer
/// each way: 6), re-offers and refusals as logs change (at most 2 per
/// membership action, counted in `actions`), and one reconciliation
/// exchange per session (at most 2 frames per level of a range tree over
/// at most `docs` items, and `docs` ≤ 8 here: 8 frames), plus per
/// differing document one Automerge round each way or a whole `Doc` and
/// its acknowledgement (at most 8 frames with the retry after a loss).
/// Doubled for the exchanges both sides may begin and for retries of
/// frames lost just before the heal.
fn frame_bound(nodes: usize, docs: usize, actions: usize) -> u64 {
    let pairs = (nodes * (nodes - 1) / 2) as u64;
    2 * pairs * (6 + 2 * actions as u64 + 8 + 8 * docs as u64)
}

/// splitmix64: tiny, seedable, good enough for choosing faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct SimNode {
    id: NodeId,
    key: SigningKey,
    fate: Fate,
    engine: Engine,
    replica: SimReplica,
}

/// A message or link event in flight.
#[derive(Debug)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        epoch: u64,
        frame: Vec<u8>,
    },
    LinkUp(usize, usize),
    /// The connection fails (a control frame was lost with it).
    Cut(usize, usize),
}

struct Sim {
    rng: Rng,
    now: u64,
    seq: u64,
    nodes: Vec<SimNode>,
    queue: BTreeMap<(u64, u64), Event>,
    /// Link epoch per pair while up; messages of older epochs are dropped.
    links: BTreeMap<(usize, usize), u64>,
    epochs: u64,
    /// Faults on (drop, duplicate, reorder) while true.
    faulty: bool,
    partition: Option<BTreeSet<usize>>,
    /// Every change a node acknowledged (author, hash), by document.
    written: BTreeMap<DocKey, BTreeSet<(usize, String)>>,
    closes: Vec<String>,
    /// Bytes of `Reconcile` frames sent, over all nodes.
    reconcile_bytes: usize,
    /// `Reconcile` frames received, by (receiver, sender).
    reconcile_frames: BTreeMap<(usize, usize), u64>,
    members: Members,
    /// Frames delivered so far.
    frames: u64,
    /// Membership actions taken (each may cost re-offers on every link).
    actions: usize,
    /// Most frames in flight on one link at any time.
    max_in_flight: usize,
    /// When the last control frame on each directed link is delivered.
    last_control: BTreeMap<(usize, usize), u64>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    fn new(seed: u64) -> Self {
        Self::with_documents(seed, 0)
    }

    /// A simulation whose nodes start out holding the same `shared`
    /// documents (as after an earlier sync), besides what they write.
    fn with_documents(seed: u64, shared: usize) -> Self {
        Self::with_documents_on(seed, shared, usize::MAX)
    }

    /// Like `with_documents`, but only the first `holders` nodes hold them
    /// (the others start as fresh replicas).
    fn with_documents_on(seed: u64, shared: usize, holders: usize) -> Self {
        let mut rng = Rng(seed);
        let n = 2 + rng.below(3) as usize;
        // Node 0 creates the space; the others get a fate each.
        let fates: Vec<Fate> = (0..n)
            .map(|i| match (i, rng.below(8)) {
                (0, _) => Fate::Member(Role::Admin),
                (_, 0..=2) => Fate::Member(Role::Writer),
                (_, 3) => Fate::Member(Role::Reader),
                (_, 4) => Fate::Member(Role::Admin),
                (_, 5) => Fate::Outsider,
                (_, 6) => Fate::Late(if rng.chance(50) {
                    Role::Writer
                } else {
                    Role::Reader
                }),
                _ => Fate::Reused,
            })
            .collect();
        let mut nodes: Vec<SimNode> = fates
            .iter()
            .enumerate()
            .map(|(i, &fate)| {
                let key = SigningKey::from_bytes(&[i as u8 + 1; 32]);
                let id = NodeId::from_bytes(key.verifying_key().to_bytes());
                let spaces = matches!(fate, Fate::Member(_)).then(|| SPACE.clone());
                SimNode {
                    id,
                    engine: Engine::new(key.clone(), spaces),
                    key,
                    fate,
                    replica: SimReplica::new(id, actor_for(id, [0; 8])),
                }
            })
            .collect();
        // The log as after an earlier sync: the genesis and the joins of
        // the members, held by every member.
        let genesis = Entry::create(
            &SpaceKey::from_secret(SPACE_SECRET),
            nodes[0].id,
            "shared",
            0,
        );
        let mut sim = Sim {
            rng,
            now: 0,
            seq: 0,
            nodes: Vec::new(),
            queue: BTreeMap::new(),
            links: BTreeMap::new(),
            epochs: 0,
            faulty: true,
            partition: None,
            written: BTreeMap::new(),
            closes: Vec::new(),
            reconcile_bytes: 0,
            reconcile_frames: BTreeMap::new(),
            members: Members::default(),
            frames: 0,
            actions: 0,
            max_in_flight: 0,
            last_control: BTreeMap::new(),
        };
        nodes[0].replica.add_entries(&[genesis], 0);
        sim.nodes = nodes;
        for i in 1..n {
            if let Fate::Member(role) = sim.nodes[i].fate {
                let invite = sim.issue(0, role);
                let join = Entry::join(&sim.nodes[i].key, &invite, 0).expect("own invite");
                sim.nodes[0].replica.add_entries(&[join], 0);
                sim.members.used.push(invite);
            }
        }
        let log = sim.nodes[0]
            .replica
            .docs
            .get_mut(&log_key())
            .unwrap()
            .save();
        for node in sim.nodes.iter_mut().skip(1) {
            if matches!(node.fate, Fate::Member(_)) {
                let actor = node.replica.actor.clone().unwrap();
                node.replica
                    .docs
                    .insert(log_key(), Document::load(&log, actor).unwrap());
            }
        }
        for i in 0..shared {
            let key = DocKey::new(SPACE.as_str(), "c", format!("s{i:05}")).unwrap();
            let fields = json!({"n": i}).as_object().unwrap().clone();
            let mut doc = Document::new(actor_for(sim.nodes[0].id, [0; 8]));
            doc.put(&fields, 0).unwrap();
            let bytes = doc.save();
            for node in sim.nodes.iter_mut().take(holders) {
                if matches!(node.fate, Fate::Member(_)) {
                    let actor = node.replica.actor.clone().unwrap();
                    let copy = Document::load(&bytes, actor).unwrap();
                    node.replica.docs.insert(key.clone(), copy);
                }
            }
        }
        for a in 0..n {
            for b in a + 1..n {
                sim.link_up(a, b);
            }
        }
        sim
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), event);
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_none_or(|side| side.contains(&a) == side.contains(&b))
    }

    fn link_up(&mut self, a: usize, b: usize) {
        if self.links.contains_key(&pair(a, b)) || !self.reachable(a, b) {
            return;
        }
        self.epochs += 1;
        self.links.insert(pair(a, b), self.epochs);
        let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
        let challenge = |rng: &mut Rng| {
            let mut c = [0u8; 32];
            for chunk in c.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            c
        };
        let (ca, cb) = (challenge(&mut self.rng), challenge(&mut self.rng));
        self.input(a, Input::Connected(ib, ca));
        self.input(b, Input::Connected(ia, cb));
    }

    fn link_down(&mut self, a: usize, b: usize) {
        if self.links.remove(&pair(a, b)).is_some() {
            let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
            self.input(a, Input::Disconnected(ib));
            self.input(b, Input::Disconnected(ia));
            // Like a static peer, redial after a while (if reachable then).
            let delay = 200 + self.rng.below(2000);
            self.schedule(delay, Event::LinkUp(a, b));
        }
    }

    fn index_of(&self, id: NodeId) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("known node")
    }

    /// Runs one input and everything it causes on that node.
    fn input(&mut self, at: usize, input: Input) {
        let mut work = vec![input];
        while let Some(input) = work.pop() {
            let node = &mut self.nodes[at];
            // Everything is in memory here, so needs are always met; what the
            // engine declares is still checked against what it touches.
            node.replica.declared = Some(node.engine.needs(&input));
            let outputs = node.engine.handle(&mut node.replica, input);
            node.replica.declared = None;
            for out in outputs {
                match out {
                    Output::Send(peer, message) => {
                        let to = self.index_of(peer);
                        let frame = wire::encode(&message);
                        if matches!(message, wire::Message::Reconcile { .. }) {
                            self.reconcile_bytes += frame.len();
                        }
                        // Handshake and membership frames are sent once:
                        // like the stream they travel on, they arrive or
                        // the connection fails (session frames may also
                        // be lost alone; the engine retries those).
                        let control = matches!(
                            message,
                            wire::Message::Hello { .. }
                                | wire::Message::Proof { .. }
                                | wire::Message::Offer { .. }
                                | wire::Message::Refuse { .. }
                        );
                        self.send(at, to, frame, control);
                    }
                    Output::Close(peer, reason) => {
                        self.closes.push(reason);
                        let to = self.index_of(peer);
                        self.link_down(at, to);
                    }
                    Output::Then(next) => work.push(next),
                    // The runtime stores the document, acts on a changed
                    // log, then pushes the change (`work` is a stack).
                    Output::Applied { key, .. } => {
                        let log = key == log_key();
                        work.push(Input::Changed(key));
                        if log {
                            work.push(Input::MembershipChanged(SPACE.clone()));
                        }
                    }
                    // The simulated network has no pre-handshake limits to lift.
                    Output::Proven(_) => {}
                    Output::Access {
                        peer,
                        refused: Some(reason),
                        ..
                    } => {
                        let from = self.index_of(peer);
                        self.members
                            .refusals
                            .entry(at)
                            .or_default()
                            .push((from, reason));
                    }
                    Output::Access { refused: None, .. } => {}
                    Output::SaveStates(peer, states) => {
                        let node = &mut self.nodes[at];
                        for (key, bytes) in states {
                            node.replica.states.insert((peer, key), bytes);
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, frame: Vec<u8>, control: bool) {
        let Some(&epoch) = self.links.get(&pair(from, to)) else {
            return;
        };
        let faulty = self.faulty;
        if faulty && self.rng.chance(3) {
            if control {
                self.schedule(1, Event::Cut(from, to));
            }
            return; // dropped
        }
        let in_flight = self
            .queue
            .values()
            .filter(
                |e| matches!(e, Event::Deliver { from: f, to: t, .. } if *f == from && *t == to),
            )
            .count();
        self.max_in_flight = self.max_in_flight.max(in_flight + 1);
        // Control frames are neither duplicated nor reordered among
        // themselves: the engine relies on the stream's order for them.
        let copies = if faulty && !control && self.rng.chance(3) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            // Without faults the link is FIFO (delay grows with seq order);
            // with them, independent delays reorder messages.
            let mut delay = if faulty { 1 + self.rng.below(60) } else { 5 };
            if control {
                let last = self.last_control.entry((from, to)).or_default();
                delay = delay.max((*last + 1).saturating_sub(self.now));
                *last = self.now + delay;
            }
            self.schedule(
                delay,
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    frame: frame.clone(),
                },
            );
        }
    }

    fn deliver(&mut self, event: Event) {
        match event {
            Event::Deliver {
                from,
                to,
                epoch,
                frame,
            } => {
                if self.links.get(&pair(from, to)) != Some(&epoch) {
                    return; // sent on a connection that is gone
                }
                let from_id = self.nodes[from].id;
                if frame.len() > 1
                    && matches!(wire::decode(&frame), Ok(wire::Message::Reconcile { .. }))
                {
                    *self.reconcile_frames.entry((to, from)).or_default() += 1;
                }
                self.frames += 1;
                if std::env::var("WEFT_SIM_TRACE").is_ok()
                    && let Ok(
                        wire::Message::Sync { key, data, .. }
                        | wire::Message::Doc { key, data, .. },
                    ) = wire::decode(&frame)
                {
                    let m = automerge::sync::Message::decode(&data).ok();
                    eprintln!(
                        "t={} {from}->{to} {} heads={:?} need={:?} changes={:?} ro={:?}",
                        self.now,
                        key.id,
                        m.as_ref().map(|m| m
                            .heads
                            .iter()
                            .map(|h| h.to_string()[..6].to_owned())
                            .collect::<Vec<_>>()),
                        m.as_ref().map(|m| m
                            .need
                            .iter()
                            .map(|h| h.to_string()[..6].to_owned())
                            .collect::<Vec<_>>()),
                        m.as_ref().map(|m| m.changes.len()),
                        m.as_ref().map(|m| m.flags)
                    );
                }
                if std::env::var("WEFT_SIM_TRACE").is_ok()
                    && let Ok(
                        m @ (wire::Message::Offer { .. }
                        | wire::Message::Refuse { .. }
                        | wire::Message::Hello { .. }
                        | wire::Message::Reconcile { .. }),
                    ) = wire::decode(&frame)
                {
                    let short = match &m {
                        wire::Message::Offer { spaces } => format!("Offer {}", spaces.len()),
                        wire::Message::Refuse { reason, .. } => format!("Refuse {reason}"),
                        wire::Message::Reconcile { ranges, .. } => format!("Reconcile {ranges:?}"),
                        _ => "Hello".into(),
                    };
                    eprintln!("t={} {from}->{to} {short}", self.now);
                }
                let input = match wire::decode(&frame) {
                    Ok(m) => Input::Received(from_id, m),
                    Err(e) => Input::Malformed(from_id, e),
                };
                if self.unnamed_document(to, &input) {
                    return;
                }
                self.input(to, input);
            }
            Event::LinkUp(a, b) => self.link_up(a, b),
            Event::Cut(a, b) => self.link_down(a, b),
        }
    }

    /// The node's check before the engine (`refused_document` in the
    /// runtime): in a session, a document other than the log from a peer
    /// the log does not name (the provisionally trusted inviter) is dropped.
    fn unnamed_document(&mut self, at: usize, input: &Input) -> bool {
        let Input::Received(
            peer,
            wire::Message::Sync { space, key, .. } | wire::Message::Doc { space, key, .. },
        ) = input
        else {
            return false;
        };
        if !self.nodes[at].engine.in_session(*peer, space) {
            return false;
        }
        let log =
            key.collection == crate::auth::SYSTEM_COLLECTION && key.id == crate::auth::MEMBERS_ID;
        let named = self.nodes[at].replica.membership().role(*peer).is_some();
        !named && !log
    }

    fn random_write(&mut self) {
        let at = self.rng.below(self.nodes.len() as u64) as usize;
        // The node's own check: only a writer by its log writes (readers,
        // revoked members and outsiders try, and are refused).
        let me = self.nodes[at].id;
        if self.nodes[at].replica.role_of(me) < Some(Role::Writer) {
            self.members.refused_writes += 1;
            return;
        }
        let id = format!("d{}", self.rng.below(6));
        let key = DocKey::new(SPACE.as_str(), "c", id).unwrap();
        let time = self.now as i64;
        let field = format!("f{}", self.rng.below(4));
        let value = self.rng.below(1000);
        let actor = actor_for(self.nodes[at].id, [0; 8]);
        let doc = self.nodes[at]
            .replica
            .docs
            .entry(key.clone())
            .or_insert_with(|| Document::new(actor));
        let exists = !doc.is_empty() && !doc.is_deleted();
        let committed = match self.rng.below(10) {
            0..=4 => doc.put(
                &json!({field: value, "text": format!("v{value}")})
                    .as_object()
                    .unwrap()
                    .clone(),
                time,
            ),
            5..=8 if exists => doc.patch(&json!({field: value}).as_object().unwrap().clone(), time),
            9 if exists => doc.delete(time),
            _ => return,
        }
        .unwrap();
        if let Some(c) = committed {
            // Checked at the end only for writers whose role never changed:
            // a write racing its author's revocation may rightly be refused.
            self.written
                .entry(key.clone())
                .or_default()
                .insert((at, c.hash.to_string()));
            self.input(at, Input::Changed(key));
        }
    }

    fn random_fault(&mut self) {
        let n = self.nodes.len();
        match self.rng.below(3) {
            0 if self.partition.is_none() => {
                let side: BTreeSet<usize> = (0..n).filter(|_| self.rng.chance(50)).collect();
                self.partition = Some(side);
                let cut: Vec<_> = self
                    .links
                    .keys()
                    .copied()
                    .filter(|&(a, b)| !self.reachable(a, b))
                    .collect();
                for (a, b) in cut {
                    self.links.remove(&(a, b));
                    let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
                    self.input(a, Input::Disconnected(ib));
                    self.input(b, Input::Disconnected(ia));
                }
            }
            1 => self.heal(),
            _ => {}
        }
    }

    fn heal(&mut self) {
        self.partition = None;
        let n = self.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                self.link_up(a, b);
            }
        }
    }

    fn step_until(&mut self, end: u64) {
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > end {
                break;
            }
            let event = self.queue.remove(&(at, seq)).expect("present");
            if at / 1000 > self.now / 1000 {
                self.tick(at);
            }
            self.now = at;
            self.deliver(event);
        }
        self.now = end;
    }

    fn tick(&mut self, now: u64) {
        self.now = now;
        for i in 0..self.nodes.len() {
            self.input(i, Input::Tick(now));
        }
    }

    fn run(&mut self) -> Result<(), String> {
        // Phase 1: writes and faults.
        for _ in 0..40 {
            match self.rng.below(12) {
                0..=6 => self.random_write(),
                7..=9 => self.random_fault(),
                _ => {
                    self.actions += 1;
                    self.random_membership();
                }
            }
            let next = self.now + self.rng.below(300);
            self.step_until(next);
        }
        self.finish()
    }

    /// Phase 2: heal, stop faults, and let the protocol finish.
    fn finish(&mut self) -> Result<(), String> {
        self.faulty = false;
        self.heal();
        let at_heal = self.frames;
        for _ in 0..200 {
            let end = self.now + 1000;
            self.step_until(end);
            self.tick(end);
            if self
                .queue
                .iter()
                .all(|(_, e)| matches!(e, Event::LinkUp(..)))
                && self.nodes.iter().all(|n| n.engine.is_idle())
                && self.links.len() == self.nodes.len() * (self.nodes.len() - 1) / 2
            {
                return self.quiet(at_heal);
            }
        }
        let pending: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                let per_peer: Vec<_> = n.engine.peers().map(|p| n.engine.pending(p)).collect();
                (n.engine.is_idle(), per_peer, n.engine.debug_peers())
            })
            .collect();
        Err(format!(
            "no quiescence after healing; fates {:?}; queue {:?}, {} links up; per node (idle, pending per peer): {pending:?}",
            self.nodes.iter().map(|n| n.fate).collect::<Vec<_>>(),
            self.queue
                .iter()
                .map(|(t, e)| match e {
                    Event::Deliver {
                        from, to, frame, ..
                    } => format!("{t:?} {from}->{to} {:?}", wire::decode(frame)),
                    Event::LinkUp(a, b) => format!("{t:?} up {a}-{b}"),
                    Event::Cut(a, b) => format!("{t:?} cut {a}-{b}"),
                })
                .collect::<Vec<_>>(),
            self.links.len()
        ))
    }
}

fn run_seeds(range: std::ops::Range<u64>) {
    if let Ok(seed) = std::env::var("WEFT_SIM_SEED") {
        let seed: u64 = seed.parse().expect("WEFT_SIM_SEED is a number");
        // Any seed replays in the first test, so seeds past the CI ranges
        // (found with `WEFT_SIM_SEEDS`) replay too.
        if range.start == 0 {
            Sim::new(seed)
                .run()
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        return;
    }
    let count = std::env::var("WEFT_SIM_SEEDS")
        .ok()
        .and_then(|c| c.parse().ok());
    let end = count.map_or(range.end, |c: u64| range.start + c);
    let mut closes = 0;
    let mut failed = Vec::new();
    for seed in range.start..end {
        let mut sim = Sim::new(seed);
        if let Err(e) = sim.run() {
            failed.push(format!(
                "simulation failed for seed {seed}: {e}\nreplay: WEFT_SIM_SEED={seed} cargo test -p weft-core --lib sync::sim::sim_seeds_0_to_250"
            ));
        }
        closes += sim.closes.len();
    }
    if !failed.is_empty() {
        panic!("{} seeds failed:\n{}", failed.len(), failed.join("\n\n"));
    }
    // Reordering may legitimately end sessions (then they redial); report it.
    eprintln!(
        "seeds {}..{end}: ok, {closes} sessions ended by out-of-order frames",
        range.start
    );
}

// 1,000 seeds in CI, split so the two cores share them.
#[test]
fn sim_seeds_0_to_250() {
    run_seeds(0..250);
}
#[test]
fn sim_seeds_250_to_500() {
    run_seeds(250..500);
}
#[test]
fn sim_seeds_500_to_750() {
    run_seeds(500..750);
}
#[test]
fn sim_seeds_750_to_1000() {
    run_seeds(750..1000);
}

mod scenarios;
