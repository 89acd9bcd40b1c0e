//! The writer actor's sync side: it hosts the sans-IO [`Engine`], meets each
//! input's needs (documents loaded, digests and sync states read) before
//! handing it over, carries the engine's effects out to the network, and
//! stores what peers send as ordinary writes with origin `Remote`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::PeerStatus;
use super::events::Origin;
use super::spaces::{Joined, MEMBERS_ID, SYSTEM_COLLECTION, admit, members_key, own_entries};
use super::writer::{Actor, Cached};
use crate::auth::Role;
use crate::doc::Document;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::net::{Net, NetConfig, NetEvent};
use crate::sync::wire::{self, Item};
use crate::sync::{Engine, Input, Needs, Output, Replica};
use crate::warn_limit::WarnLimit;

/// How often the engine gets a `Tick` (retries, handshake timeouts).
pub(super) const TICK_MS: u64 = 1_000;
/// Network events handled before their writes are committed together.
const EVENTS_PER_GROUP: usize = 256;
/// How often stored sync states are pruned by age while the node runs (they
/// are also pruned at open and whenever states are saved).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// Documents held in memory by one sync round before it stores and parks them.
const DIRTY_LIMIT: usize = 1024;
/// Batches of documents to start held back for congested peers at most: the
/// engine's window allows a couple per peer, so this is never reached by
/// honest sessions; past it, batches start anyway (the queue's hard bound
/// then ends the session rather than growing).
const MAX_DEFERRED: usize = 1024;

/// The input without the documents that failed to load; `None` when
/// nothing is left to do.
fn without(input: Input, failed: &[DocKey]) -> Option<Input> {
    if failed.is_empty() {
        return Some(input);
    }
    match input {
        Input::StartSync {
            peer,
            mut keys,
            absent,
        } => {
            keys.retain(|k| !failed.contains(k));
            (!keys.is_empty()).then_some(Input::StartSync { peer, keys, absent })
        }
        // A message or change about a document we cannot load is dropped;
        // other documents of the session go on.
        _ => None,
    }
}

/// The sync engine and its network, owned by the writer actor.
pub(crate) struct SyncState {
    pub(super) engine: Engine,
    /// `None` while offline or paused.
    pub(super) net: Option<Net>,
    pub(super) events: Option<mpsc::Receiver<NetEvent>>,
    /// What networking is (re)started with; `None` for an offline node.
    pub(super) config: Option<NetConfig>,
    /// Where the node facade reads the current [`Net`] from.
    pub(super) published: watch::Sender<Option<Net>>,
    /// Addresses of the peers connected when networking was paused, to
    /// redial on resume.
    pub(super) redial: Vec<Vec<String>>,
    /// Digests read for the input being handled.
    items: HashMap<String, Vec<Item>>,
    /// Persisted sync states read for the input being handled.
    states: HashMap<(NodeId, DocKey), Vec<u8>>,
    /// Stored bytes of documents read for the input being handled.
    saved: HashMap<DocKey, Vec<u8>>,
    /// Sync states already looked up for the current burst of events
    /// (found or not), so each input does not query them again.
    states_read: HashSet<(NodeId, DocKey)>,
    /// The burst being handled (kept for its capacity).
    inputs: Vec<Input>,
    started: Instant,
    /// When stored sync states were last pruned by age.
    pruned_at: Instant,
    /// Warnings a peer causes, one line per peer and cause a minute.
    warnings: WarnLimit,
    /// `Reconcile` frames and bytes sent so far.
    reconcile_sent: (u64, u64),
    /// Published after each round, for callers waiting on sync.
    progress: watch::Sender<SyncProgress>,
    /// Documents to start for peers whose send queue was above
    /// [`crate::net::SEND_HIGH_WATER`]: started on a later tick, once the
    /// peer has taken what is queued (backpressure from the network).
    deferred: VecDeque<Input>,
    /// Bumped whenever this node's standing in a space may have changed
    /// (a log changed, a peer admitted or refused us), for joins that wait.
    pub(super) standing: watch::Sender<u64>,
}

/// How far sync has come, published whenever it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncProgress {
    /// Peers with an open session.
    pub peers: usize,
    /// Documents still being exchanged, over all peers and spaces.
    pub pending: usize,
    /// Every session has reconciled and has nothing left to exchange.
    pub idle: bool,
    /// `Reconcile` frames sent so far (each exchange's steps; the rest of
    /// sync traffic is Automerge messages).
    pub reconcile_frames: u64,
    /// Bytes of those frames.
    pub reconcile_bytes: u64,
}

impl SyncState {
    pub(crate) fn new(
        engine: Engine,
        net: Option<(Net, mpsc::Receiver<NetEvent>)>,
        config: Option<NetConfig>,
        published: watch::Sender<Option<Net>>,
        progress: watch::Sender<SyncProgress>,
        standing: watch::Sender<u64>,
    ) -> Self {
        let (net, events) = match net {
            Some((n, e)) => (Some(n), Some(e)),
            None => (None, None),
        };
        Self {
            engine,
            net,
            events,
            config,
            published,
            redial: Vec::new(),
            items: HashMap::new(),
            states: HashMap::new(),
            saved: HashMap::new(),
            states_read: HashSet::new(),
            inputs: Vec::with_capacity(EVENTS_PER_GROUP),
            started: Instant::now(),
            pruned_at: Instant::now(),
            warnings: WarnLimit::default(),
            reconcile_sent: (0, 0),
            progress,
            standing,
            deferred: VecDeque::new(),
        }
    }

    /// Whether to log a warning `peer` caused now; if so, how many of the
    /// same were held back since the last line.
    fn warn(&mut self, peer: NodeId, cause: &'static str) -> Option<u64> {
        let now = self.started.elapsed().as_millis() as u64;
        self.warnings.allow(peer, cause, now)
    }

    /// Publishes the current progress if it changed.
    pub(super) fn publish(&self) {
        let now = SyncProgress {
            peers: self.engine.peers().count(),
            pending: self.engine.pending_total(),
            idle: self.engine.is_idle(),
            reconcile_frames: self.reconcile_sent.0,
            reconcile_bytes: self.reconcile_sent.1,
        };
        self.progress
            .send_if_modified(|p| std::mem::replace(p, now) != now);
    }

    /// The next network event; never resolves when offline.
    pub(super) async fn next_event(&mut self) -> Option<NetEvent> {
        match &mut self.events {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    pub(super) async fn shutdown(&mut self) {
        if let Some(net) = &self.net {
            net.shutdown().await;
        }
    }
}

/// The engine's window on the actor's documents for one input.
struct View<'a> {
    dirty: &'a mut HashMap<DocKey, Cached>,
    items: &'a HashMap<String, Vec<Item>>,
    states: &'a mut HashMap<(NodeId, DocKey), Vec<u8>>,
    saved: &'a mut HashMap<DocKey, Vec<u8>>,
    actor: &'a automerge::ActorId,
    spaces: &'a mut BTreeMap<String, Joined>,
    me: NodeId,
    /// Tests: Automerge work on this document panics.
    #[cfg(test)]
    panic_on: Option<&'a DocKey>,
}

impl Replica for View<'_> {
    fn items(&mut self, space: &str) -> Vec<Item> {
        self.items.get(space).cloned().unwrap_or_default()
    }

    fn doc(&mut self, key: &DocKey) -> &mut Document {
        #[cfg(test)]
        if self.panic_on == Some(key) {
            panic!("injected panic for {key}");
        }
        let actor = self.actor;
        &mut self
            .dirty
            .entry(key.clone())
            .or_insert_with(|| Cached::empty(actor))
            .doc
    }

    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        self.saved.remove(key)
    }

    fn sync_state(&mut self, peer: NodeId, key: &DocKey) -> Option<Vec<u8>> {
        self.states.remove(&(peer, key.clone()))
    }

    fn role(&mut self, space: &str, node: NodeId) -> Option<Role> {
        self.spaces.get(space)?.role(node)
    }

    fn proof(&mut self, space: &str) -> Vec<Vec<u8>> {
        let Ok(key) = members_key(space) else {
            return Vec::new();
        };
        match self.dirty.get_mut(&key) {
            Some(c) => own_entries(&c.doc.log_entries(), self.me),
            None => Vec::new(),
        }
    }

    fn admit(
        &mut self,
        space: &str,
        node: NodeId,
        proof: &[Vec<u8>],
    ) -> Result<(Role, bool), String> {
        let unheld = || "this peer does not hold the space".to_string();
        let joined = self.spaces.get_mut(space).ok_or_else(unheld)?;
        let key = members_key(space).map_err(|_| unheld())?;
        let cached = self.dirty.get_mut(&key).ok_or_else(unheld)?;
        admit(joined, space, &mut cached.doc, node, proof)
    }
}

impl Actor {
    /// Handles a burst of network events, then commits what they changed.
    pub(super) async fn net_events(&mut self, first: NetEvent) {
        let now = self.sync.started.elapsed().as_millis() as u64;
        self.sync.engine.advance(now);
        let mut event = Some(first);
        // Reused across bursts (an `Input` is large; growing a fresh vector
        // each burst showed in profiles).
        let mut inputs = std::mem::take(&mut self.sync.inputs);
        while let Some(e) = event.take() {
            let input = match e {
                NetEvent::Connected(peer) => {
                    let mut challenge = [0u8; 32];
                    if let Err(e) = getrandom::fill(&mut challenge) {
                        tracing::error!(error = %e, "no randomness for a session challenge");
                        continue;
                    }
                    Input::Connected(peer, challenge)
                }
                NetEvent::Disconnected(peer) => Input::Disconnected(peer),
                NetEvent::Frame(peer, bytes) => match wire::decode(&bytes) {
                    Ok(message) => Input::Received(peer, message),
                    Err(err) => Input::Malformed(peer, err),
                },
            };
            inputs.push(input);
            if inputs.len() < EVENTS_PER_GROUP {
                event = self.sync.events.as_mut().and_then(|rx| rx.try_recv().ok());
            }
        }
        self.prefetch_for(&inputs);
        for input in inputs.drain(..) {
            self.drive(input).await;
        }
        self.sync.inputs = inputs;
        // Unused prefetched rows would go stale once the next write lands.
        self.sync.states_read.clear();
        self.prefetched.clear();
        self.flush().await;
    }

    /// Reads the documents and sync states a burst of inputs needs in one
    /// query each, instead of a store round trip per input (a large sync
    /// brings hundreds of frames per burst, each about another document).
    fn prefetch_for(&mut self, inputs: &[Input]) {
        let (mut docs, mut states) = (Vec::new(), Vec::new());
        for input in inputs {
            let needs = self.sync.engine.needs(input);
            docs.extend(needs.docs);
            states.extend(needs.states);
        }
        self.prefetch_docs(docs);
        let mut by_peer: HashMap<NodeId, Vec<&DocKey>> = HashMap::new();
        for (peer, key) in &states {
            by_peer.entry(*peer).or_default().push(key);
        }
        for (peer, keys) in by_peer {
            match self.store.sync_states(peer, &keys) {
                Ok(found) => {
                    for (key, state) in found {
                        self.sync.states.insert((peer, key), state);
                    }
                    self.sync
                        .states_read
                        .extend(keys.into_iter().map(|k| (peer, k.clone())));
                }
                // Each input reads its own states again and reports it.
                Err(e) => tracing::warn!(error = %e, "prefetching sync states failed"),
            }
        }
    }

    pub(super) async fn tick(&mut self) {
        let now = self.sync.started.elapsed().as_millis() as u64;
        // Held-back starts go first; those still congested come back.
        for input in std::mem::take(&mut self.sync.deferred) {
            self.drive(input).await;
        }
        self.drive(Input::Tick(now)).await;
        self.flush().await;
        if self.sync.pruned_at.elapsed() >= PRUNE_EVERY {
            self.sync.pruned_at = Instant::now();
            match self.store.prune_sync_states(super::writer::now_ms()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(dropped = n, "pruned stale sync states"),
                Err(e) => tracing::warn!(error = %e, "pruning sync states failed"),
            }
        }
    }

    /// Drops stored sync states of peers that are no longer members of
    /// `space` (a revocation): they would only be read again should the peer
    /// return, and then they would be stale.
    fn forget_non_members(&mut self, space: &str) {
        let Some(joined) = self.spaces.get(space) else {
            return;
        };
        let peers = match self.store.sync_state_peers(space) {
            Ok(peers) => peers,
            Err(e) => return tracing::warn!(error = %e, "listing sync states failed"),
        };
        for peer in peers {
            if joined.role(peer).is_none()
                && let Err(e) = self.store.delete_sync_states(peer, space)
            {
                tracing::warn!(%peer, error = %e, "deleting sync states failed");
            }
        }
    }

    /// Pushes every committed change to the sessions of its space.
    pub(super) async fn announce(&mut self) {
        // Pushing never writes, so one pass suffices; the bound is a guard.
        for _ in 0..4 {
            let mut changed = std::mem::take(&mut self.changed);
            if changed.is_empty() || self.sync.net.is_none() {
                changed.clear();
                self.changed = changed;
                return;
            }
            changed.sort();
            changed.dedup();
            for key in changed.drain(..) {
                if key.collection() == SYSTEM_COLLECTION && key.id() == MEMBERS_ID {
                    self.drive(Input::MembershipChanged(key.space().to_owned()))
                        .await;
                }
                self.drive(Input::Changed(key)).await;
            }
            self.flush().await;
            // Keep the capacity unless new changes arrived meanwhile.
            if self.changed.is_empty() {
                self.changed = changed;
            }
        }
    }

    /// Feeds one input and its follow-ups to the engine.
    pub(super) async fn drive(&mut self, first: Input) {
        let mut queue = VecDeque::from([first]);
        while let Some(input) = queue.pop_front() {
            // One input's follow-ups can take long (thousands of
            // documents started): keep the engine's clock current.
            let now = self.sync.started.elapsed().as_millis() as u64;
            self.sync.engine.advance(now);
            if self.refused_document(&input).await {
                continue;
            }
            if let Input::StartSync { peer, .. } = &input
                && self.congested(*peer)
            {
                tracing::debug!(%peer, "peer congested; starting its documents later");
                self.sync.deferred.push_back(input);
                continue;
            }
            if let Input::MembershipChanged(space) = &input {
                self.forget_non_members(space);
            }
            let needs = self.sync.engine.needs(&input);
            let failed = match self.meet(&needs).await {
                Ok(failed) => failed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read what a sync step needs; skipping it");
                    continue;
                }
            };
            let Some(input) = without(input, &failed) else {
                continue;
            };
            let peer = match &input {
                Input::Received(peer, _) | Input::StartSync { peer, .. } => Some(*peer),
                _ => None,
            };
            // A batch that panics is retried one document at a time, so
            // only the document at fault is quarantined.
            let split = match &input {
                Input::StartSync { peer, keys, absent } if keys.len() > 1 => {
                    Some((*peer, keys.clone(), *absent))
                }
                _ => None,
            };
            let outputs = {
                let me = self.me();
                let mut view = View {
                    dirty: &mut self.dirty,
                    items: &self.sync.items,
                    states: &mut self.sync.states,
                    saved: &mut self.sync.saved,
                    actor: &self.actor,
                    spaces: &mut self.spaces,
                    me,
                    #[cfg(test)]
                    panic_on: self.panic_on.as_ref(),
                };
                let engine = &mut self.sync.engine;
                // A bug reachable from peer input must cost that peer its
                // session, not the node its writer.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine.handle(&mut view, input)
                }))
            };
            let outputs = match outputs {
                Ok(outputs) => outputs,
                Err(_) => {
                    tracing::error!(
                        ?peer,
                        "sync engine panicked; dropping the documents involved"
                    );
                    for key in &needs.docs {
                        self.dirty.remove(key);
                        self.log_dropped(key);
                    }
                    if let Some((peer, keys, absent)) = split {
                        for key in keys {
                            queue.push_back(Input::StartSync {
                                peer,
                                keys: vec![key],
                                absent,
                            });
                        }
                        continue;
                    }
                    let involved: BTreeSet<&DocKey> =
                        needs.docs.iter().chain(&needs.saved).collect();
                    if let [key] = involved.into_iter().collect::<Vec<_>>()[..] {
                        self.quarantine(&key.clone());
                    }
                    match peer {
                        Some(peer) => vec![Output::Close(
                            peer,
                            "internal error handling its message".into(),
                        )],
                        None => Vec::new(),
                    }
                }
            };
            for out in outputs {
                self.effect(out, &mut queue).await;
            }
            if self.dirty.len() > DIRTY_LIMIT {
                // Bound memory during a large sync: store and park.
                self.flush().await;
            }
        }
        self.sync.items.clear();
        self.sync.states.clear();
    }

    /// Whether the peer's send queue is above the high-water mark (and
    /// there is room to hold a start back).
    fn congested(&self, peer: NodeId) -> bool {
        self.sync.deferred.len() < MAX_DEFERRED
            && self
                .sync
                .net
                .as_ref()
                .is_some_and(|net| net.queued(peer) > crate::net::SEND_HIGH_WATER)
    }

    /// Whether `input` is a document from a peer the evaluated membership
    /// log does not name, other than the log from our provisionally trusted
    /// inviter ([`Joined::refuses`]): dropped before any work. Such a peer
    /// has a session only as that inviter, so this keeps its trust to the
    /// log, which verifies itself, and to its time limit.
    async fn refused_document(&mut self, input: &Input) -> bool {
        let Input::Received(
            peer,
            wire::Message::Sync { space, key, .. } | wire::Message::Doc { space, key, .. },
        ) = input
        else {
            return false;
        };
        // An invalid key is the engine's to report.
        let Ok(doc_key) = DocKey::new(space.as_str(), key.collection.as_str(), key.id.as_str())
        else {
            return false;
        };
        // Frames outside a session are the engine's: it ignores them and
        // charges the peer's budget, which it could not if they stopped here.
        if !self.spaces.contains_key(space.as_str()) || !self.sync.engine.in_session(*peer, space) {
            return false;
        }
        let refused = match self.membership(space).await {
            Ok(_) => self.spaces[space.as_str()]
                .refuses(*peer, &doc_key, super::writer::now_ms() / 1000)
                .unwrap_or(true),
            // No membership to go by: nobody is trusted.
            Err(_) => true,
        };
        if refused && let Some(repeated) = self.sync.warn(*peer, "refused unnamed") {
            tracing::warn!(%peer, key = %doc_key, repeated, "refused a document from a peer the membership log does not name (an inviter is trusted with the log only, for a limited time)");
        }
        refused
    }

    async fn effect(&mut self, out: Output, queue: &mut VecDeque<Input>) {
        match out {
            Output::Send(peer, message) => {
                if let Some(net) = &self.sync.net {
                    let frame = wire::encode(&message);
                    if matches!(message, wire::Message::Reconcile { .. }) {
                        self.sync.reconcile_sent.0 += 1;
                        self.sync.reconcile_sent.1 += frame.len() as u64;
                    }
                    net.send(peer, frame);
                }
            }
            Output::Close(peer, reason) => {
                if let Some(repeated) = self.sync.warn(peer, "session ended") {
                    tracing::warn!(%peer, %reason, repeated, "ending sync session");
                }
                if let Some(net) = &self.sync.net {
                    net.disconnect(peer).await;
                }
            }
            Output::Then(next) => queue.push_back(next),
            Output::Applied { peer, key } => {
                tracing::debug!(%peer, %key, "applied a remote change");
                if let Err(e) = self.stage(&key, None, Origin::Remote) {
                    tracing::warn!(%peer, %key, error = %e, "a remote change cannot be stored");
                    return;
                }
                if key.collection() == SYSTEM_COLLECTION && key.id() == MEMBERS_ID {
                    // Act on a membership change (a revocation) before the
                    // next frame, not after the burst.
                    queue.push_back(Input::MembershipChanged(key.space().to_owned()));
                }
            }
            Output::Proven(peer) => {
                if let Some(net) = &self.sync.net {
                    net.proven(peer);
                }
            }
            Output::Access {
                peer,
                space,
                refused,
            } => self.access(peer, &space, refused).await,
            Output::SaveStates(peer, states) => {
                if let Err(e) = self.store.save_sync_states(peer, &states) {
                    tracing::warn!(%peer, error = %e, "saving sync states failed");
                }
            }
        }
    }

    /// Loads documents, digests and sync states an input needs. Returns the
    /// documents that could not be loaded (corrupt in storage): the input
    /// goes on without them.
    async fn meet(&mut self, needs: &Needs) -> crate::Result<Vec<DocKey>> {
        if !needs.digests.is_empty() && !self.rows.is_empty() {
            // Digests are read from the store: commit staged changes first.
            self.flush().await;
        }
        for space in &needs.digests {
            if !self.sync.items.contains_key(space) {
                let items = self.store.items(space)?;
                self.sync.items.insert(space.clone(), items);
            }
        }
        for space in &needs.memberships {
            // Evaluating loads the log document too; spaces not joined here
            // have no membership, which the engine treats as "not a member".
            if self.spaces.contains_key(space) {
                self.membership(space).await?;
                // Evaluation may have been cached: the log document itself
                // must be in memory too (proofs read it, admissions extend it).
                self.load(&members_key(space)?).await?;
            }
        }
        self.read_saved(&needs.saved);
        // One query for all of them (a follow-up starts up to 256).
        self.prefetch_docs(needs.docs.clone());
        // Quarantined documents are refused for sync: dropped like a
        // document that does not load.
        let mut failed: Vec<DocKey> = needs
            .saved
            .iter()
            .filter(|k| self.quarantine.contains(k))
            .cloned()
            .collect();
        for key in &needs.docs {
            if let Err(e) = self.load(key).await {
                tracing::warn!(%key, error = %e, "document cannot be synced");
                failed.push(key.clone());
            }
        }
        let mut by_peer: HashMap<NodeId, Vec<&DocKey>> = HashMap::new();
        for (peer, key) in &needs.states {
            if !self.sync.states_read.contains(&(*peer, key.clone())) {
                by_peer.entry(*peer).or_default().push(key);
            }
        }
        for (peer, keys) in by_peer {
            for (key, state) in self.store.sync_states(peer, &keys)? {
                self.sync.states.insert((peer, key), state);
            }
        }
        Ok(failed)
    }

    /// Stored bytes of `keys` for sending whole: from memory where a
    /// document is loaded (it may be ahead of the store), else straight from
    /// the store, without loading it into Automerge.
    fn read_saved(&mut self, keys: &[DocKey]) {
        self.sync.saved.clear();
        let mut from_store = Vec::new();
        for key in keys {
            if !self.dirty.contains_key(key) && !self.docs.contains(key) {
                from_store.push(key);
                continue;
            }
            let saved = self.guarded(key, |a| {
                let doc = match a.dirty.get_mut(key) {
                    Some(c) => &mut c.doc,
                    None => &mut a.docs.peek_mut(key)?.doc,
                };
                Some(doc.save())
            });
            // A document that panicked is quarantined and left out.
            if let Ok(Some(bytes)) = saved {
                self.sync.saved.insert(key.clone(), bytes);
            }
        }
        if from_store.is_empty() {
            return;
        }
        match self.store.load_many(&from_store) {
            Ok(found) => {
                for (key, loaded) in found {
                    self.sync.saved.insert(key, loaded.bytes);
                }
            }
            // The engine falls back to an Automerge round, which loads (and
            // reports) each document itself.
            Err(e) => tracing::warn!(error = %e, "reading documents to send failed"),
        }
    }

    /// Known peers with their sync progress.
    pub(super) async fn peer_statuses(&mut self) -> Vec<PeerStatus> {
        let Some(net) = &self.sync.net else {
            return Vec::new();
        };
        net.peers()
            .await
            .into_iter()
            .map(|p| PeerStatus {
                pending: self.sync.engine.pending(p.id),
                id: p.id,
                addrs: p.addrs,
                connected: p.connected,
                last_seen_ms: p.last_seen_ms,
            })
            .collect()
    }
}
