//! Deterministic simulation of the sync protocol: N nodes' engines over a
//! simulated network with a seeded RNG that delays, reorders, duplicates and
//! drops messages and partitions and heals links, while the nodes write
//! concurrently. After healing, every replica must hold identical JSON for
//! every document, and no acknowledged write may be missing anywhere.
//!
//! `WEFT_SIM_SEED=<n>` replays one seed; `WEFT_SIM_SEEDS=<count>` changes how
//! many seeds each test runs.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use serde_json::json;
use weft_core::doc::{Document, actor_for};
use weft_core::sync::reconcile::heads_hash;
use weft_core::sync::wire::{self, Item, ItemKey};
use weft_core::sync::{Engine, Input, Needs, Output, Replica};
use weft_core::{DocKey, NodeId, Role};

/// Any valid space name works here: membership is not simulated.
const SPACE: &str = "shared";

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

#[derive(Default)]
struct SimReplica {
    actor: Option<automerge::ActorId>,
    docs: BTreeMap<DocKey, Document>,
    states: BTreeMap<(NodeId, DocKey), Vec<u8>>,
    /// What the engine declared in `needs` for the current input: the real
    /// node loads only that, so touching anything else is a bug.
    declared: Option<Needs>,
    violations: Vec<String>,
}

impl SimReplica {
    fn check_declared(&mut self, what: &str, ok: impl Fn(&Needs) -> bool) {
        if let Some(needs) = &self.declared
            && !ok(needs)
        {
            self.violations
                .push(format!("engine used {what} without declaring it in needs"));
        }
    }
}

impl Replica for SimReplica {
    fn items(&mut self, space: &str) -> Vec<Item> {
        self.check_declared(&format!("the digest of {space}"), |n| {
            n.digests.iter().any(|s| s == space)
        });
        self.docs
            .iter_mut()
            .filter(|(k, d)| k.space() == space && !d.is_empty())
            .map(|(k, d)| Item {
                key: ItemKey {
                    collection: k.collection().into(),
                    id: k.id().into(),
                },
                hash: heads_hash(&d.heads()),
            })
            .collect()
    }
    fn doc(&mut self, key: &DocKey) -> &mut Document {
        self.check_declared(&format!("document {key}"), |n| n.docs.contains(key));
        let actor = self.actor.clone().expect("actor set");
        self.docs
            .entry(key.clone())
            .or_insert_with(|| Document::new(actor))
    }
    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        self.check_declared(&format!("the stored bytes of {key}"), |n| {
            n.saved.contains(key)
        });
        self.docs
            .get_mut(key)
            .filter(|d| !d.is_empty())
            .map(|d| d.save())
    }
    fn sync_state(&mut self, peer: NodeId, key: &DocKey) -> Option<Vec<u8>> {
        self.states.get(&(peer, key.clone())).cloned()
    }
    // Membership is not what the simulator tests: every node is a writer of
    // the one shared space (the network tests cover access control).
    fn role(&mut self, space: &str, _node: NodeId) -> Option<Role> {
        self.check_declared(&format!("the membership of {space}"), |n| {
            n.memberships.iter().any(|s| s == space)
        });
        Some(Role::Writer)
    }
    fn proof(&mut self, space: &str) -> Vec<Vec<u8>> {
        self.check_declared(&format!("the membership of {space}"), |n| {
            n.memberships.iter().any(|s| s == space)
        });
        Vec::new()
    }
    fn admit(&mut self, space: &str, node: NodeId, _proof: &[Vec<u8>]) -> Option<(Role, bool)> {
        self.role(space, node).map(|r| (r, false))
    }
}

struct SimNode {
    id: NodeId,
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
    /// Every change hash a node acknowledged, by document.
    written: BTreeMap<DocKey, BTreeSet<String>>,
    closes: Vec<String>,
    /// Bytes of `Reconcile` frames sent, over all nodes.
    reconcile_bytes: usize,
    /// `Reconcile` frames received, by (receiver, sender).
    reconcile_frames: BTreeMap<(usize, usize), u64>,
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
        let mut nodes: Vec<SimNode> = (0..n)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i as u8 + 1; 32]);
                let id = NodeId::from_bytes(key.verifying_key().to_bytes());
                let replica = SimReplica {
                    actor: Some(actor_for(id, [0; 8])),
                    ..SimReplica::default()
                };
                SimNode {
                    id,
                    engine: Engine::new(key, [SPACE.to_owned()]),
                    replica,
                }
            })
            .collect();
        for i in 0..shared {
            let key = DocKey::new(SPACE, "c", format!("s{i:05}")).unwrap();
            let fields = json!({"n": i}).as_object().unwrap().clone();
            let mut doc = Document::new(actor_for(nodes[0].id, [0; 8]));
            doc.put(&fields, 0).unwrap();
            let bytes = doc.save();
            for node in nodes.iter_mut().take(holders) {
                let actor = node.replica.actor.clone().unwrap();
                let copy = Document::load(&bytes, actor).unwrap();
                node.replica.docs.insert(key.clone(), copy);
            }
        }
        let mut sim = Sim {
            rng,
            now: 0,
            seq: 0,
            nodes,
            queue: BTreeMap::new(),
            links: BTreeMap::new(),
            epochs: 0,
            faulty: true,
            partition: None,
            written: BTreeMap::new(),
            closes: Vec::new(),
            reconcile_bytes: 0,
            reconcile_frames: BTreeMap::new(),
        };
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
                        self.send(at, to, frame);
                    }
                    Output::Close(peer, reason) => {
                        self.closes.push(reason);
                        let to = self.index_of(peer);
                        self.link_down(at, to);
                    }
                    Output::Then(next) => work.push(next),
                    // The runtime stores the document, then pushes the change.
                    Output::Applied { key, .. } => work.push(Input::Changed(key)),
                    // The simulated network has no pre-handshake limits to lift.
                    Output::Proven(_) => {}
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

    fn send(&mut self, from: usize, to: usize, frame: Vec<u8>) {
        let Some(&epoch) = self.links.get(&pair(from, to)) else {
            return;
        };
        let faulty = self.faulty;
        if faulty && self.rng.chance(3) {
            return; // dropped
        }
        let copies = if faulty && self.rng.chance(3) { 2 } else { 1 };
        for _ in 0..copies {
            // Without faults the link is FIFO (delay grows with seq order);
            // with them, independent delays reorder messages.
            let delay = if faulty { 1 + self.rng.below(60) } else { 5 };
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
                let input = match wire::decode(&frame) {
                    Ok(m) => Input::Received(from_id, m),
                    Err(e) => Input::Malformed(from_id, e),
                };
                self.input(to, input);
            }
            Event::LinkUp(a, b) => self.link_up(a, b),
        }
    }

    fn random_write(&mut self) {
        let at = self.rng.below(self.nodes.len() as u64) as usize;
        let id = format!("d{}", self.rng.below(6));
        let key = DocKey::new(SPACE, "c", id).unwrap();
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
            self.written
                .entry(key.clone())
                .or_default()
                .insert(c.hash.to_string());
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
            match self.rng.below(10) {
                0..=6 => self.random_write(),
                _ => self.random_fault(),
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
                return self.check();
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
            "no quiescence after healing; queue {:?}, {} links up; per node (idle, pending per peer): {pending:?}",
            self.queue
                .iter()
                .map(|(t, e)| match e {
                    Event::Deliver {
                        from, to, frame, ..
                    } => format!("{t:?} {from}->{to} {:?}", wire::decode(frame)),
                    Event::LinkUp(a, b) => format!("{t:?} up {a}-{b}"),
                })
                .collect::<Vec<_>>(),
            self.links.len()
        ))
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.nodes.iter().find_map(|n| n.replica.violations.first()) {
            return Err(v.clone());
        }
        let summary = |node: &mut SimNode| -> BTreeMap<DocKey, (Option<serde_json::Value>, BTreeSet<String>)> {
            node.replica
                .docs
                .iter_mut()
                .filter(|(_, d)| !d.is_empty())
                .map(|(k, d)| {
                    let json = d.to_json().map(serde_json::Value::Object);
                    let hashes = d.history().into_iter().map(|c| c.hash).collect();
                    (k.clone(), (json, hashes))
                })
                .collect()
        };
        let first = summary(&mut self.nodes[0]);
        for i in 1..self.nodes.len() {
            let other = summary(&mut self.nodes[i]);
            if other.keys().ne(first.keys()) {
                return Err(format!(
                    "node {i} holds {:?}, node 0 holds {:?}; closes {:?}; peers {:?}",
                    other.keys(),
                    first.keys(),
                    self.closes,
                    self.nodes
                        .iter()
                        .map(|n| n.engine.debug_peers())
                        .collect::<Vec<_>>()
                ));
            }
            for (key, (json, _)) in &other {
                if first[key].0 != *json {
                    return Err(format!(
                        "{key} differs: node 0 {:?}, node {i} {json:?}",
                        first[key].0
                    ));
                }
            }
        }
        for (key, hashes) in &self.written {
            let held = &first
                .get(key)
                .ok_or(format!("{key} was written but is gone"))?
                .1;
            if let Some(lost) = hashes.iter().find(|h| !held.contains(*h)) {
                return Err(format!("write {lost} to {key} was lost"));
            }
        }
        Ok(())
    }
}

fn run_seeds(range: std::ops::Range<u64>) {
    if let Ok(seed) = std::env::var("WEFT_SIM_SEED") {
        let seed: u64 = seed.parse().expect("WEFT_SIM_SEED is a number");
        if range.contains(&seed) {
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
    for seed in range.start..end {
        let mut sim = Sim::new(seed);
        if let Err(e) = sim.run() {
            panic!(
                "simulation failed for seed {seed}: {e}\nreplay: WEFT_SIM_SEED={seed} cargo test -p weft-tests --test sim"
            );
        }
        closes += sim.closes.len();
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

#[path = "sim/scenarios.rs"]
mod scenarios;
