//! The sync host: it hosts the sans-IO [`Engine`] and its network, meets
//! each input's needs (documents loaded, digests and sync states read)
//! before handing it over, carries the engine's effects out to the network,
//! and stages what peers send as ordinary writes with origin `Remote`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::docs::{Docs, is_log, now_ms};
use super::events::Origin;
use super::spaces::Spaces;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::net::{Net, NetConfig, NetEvent};
use crate::sync::wire::{self, Item};
use crate::sync::{Engine, Input, Output};
use crate::warn_limit::WarnLimit;

mod needs;
mod network;
mod view;

use view::View;

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
pub(crate) struct SyncHost {
    engine: Engine,
    /// `None` while offline or paused.
    net: Option<Net>,
    events: Option<mpsc::Receiver<NetEvent>>,
    /// What networking is (re)started with; `None` for an offline node.
    config: Option<NetConfig>,
    /// Where the node facade reads the current [`Net`] from.
    published: watch::Sender<Option<Net>>,
    /// Addresses of the peers connected when networking was paused, to
    /// redial on resume.
    redial: Vec<Vec<String>>,
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
    /// Documents committed and not yet announced (kept for its capacity).
    changed: Vec<DocKey>,
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

impl SyncHost {
    pub(crate) fn new(
        engine: Engine,
        net: Option<(Net, mpsc::Receiver<NetEvent>)>,
        config: Option<NetConfig>,
        published: watch::Sender<Option<Net>>,
        progress: watch::Sender<SyncProgress>,
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
            changed: Vec::new(),
            started: Instant::now(),
            pruned_at: Instant::now(),
            warnings: WarnLimit::default(),
            reconcile_sent: (0, 0),
            progress,
            deferred: VecDeque::new(),
        }
    }

    /// The running network, if any.
    pub(super) fn net(&self) -> Option<&Net> {
        self.net.as_ref()
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

    /// Tells the engine about peers' changes a failed commit lost: their
    /// sessions exchange them again.
    fn absorb(&mut self, docs: &mut Docs) {
        let lost = docs.take_lost();
        if !lost.is_empty() {
            self.engine.lost(&lost);
        }
    }

    /// Commits what the group staged; the engine learns of lost changes.
    pub(super) fn flush(&mut self, docs: &mut Docs) -> bool {
        let stored = docs.flush();
        self.absorb(docs);
        stored
    }

    pub(super) async fn tick(&mut self, docs: &mut Docs, spaces: &mut Spaces) {
        let now = self.started.elapsed().as_millis() as u64;
        // Held-back starts go first; those still congested come back.
        for input in std::mem::take(&mut self.deferred) {
            self.drive(docs, spaces, input).await;
        }
        self.drive(docs, spaces, Input::Tick(now)).await;
        self.flush(docs);
        if self.pruned_at.elapsed() >= PRUNE_EVERY {
            self.pruned_at = Instant::now();
            match docs.store().prune_sync_states(now_ms()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(dropped = n, "pruned stale sync states"),
                Err(e) => tracing::warn!(error = %e, "pruning sync states failed"),
            }
        }
    }

    /// Pushes every committed change to the sessions of its space.
    pub(super) async fn announce(&mut self, docs: &mut Docs, spaces: &mut Spaces) {
        // Pushing never writes, so one pass suffices; the bound is a guard.
        for _ in 0..4 {
            let mut changed = std::mem::take(&mut self.changed);
            docs.take_changed(&mut changed);
            if changed.is_empty() || self.net.is_none() {
                changed.clear();
                self.changed = changed;
                return;
            }
            changed.sort();
            changed.dedup();
            for key in changed.drain(..) {
                if is_log(&key) {
                    let space = key.space().to_owned();
                    self.drive(docs, spaces, Input::MembershipChanged(space))
                        .await;
                }
                self.drive(docs, spaces, Input::Changed(key)).await;
            }
            self.flush(docs);
            self.changed = changed;
        }
    }

    /// Feeds one input and its follow-ups to the engine.
    pub(super) async fn drive(&mut self, docs: &mut Docs, spaces: &mut Spaces, first: Input) {
        let mut queue = VecDeque::from([first]);
        while let Some(input) = queue.pop_front() {
            // One input's follow-ups can take long (thousands of
            // documents started): keep the engine's clock current.
            let now = self.started.elapsed().as_millis() as u64;
            self.engine.advance(now);
            self.absorb(docs);
            spaces.absorb(docs);
            if self.refused_document(docs, spaces, &input) {
                continue;
            }
            if let Input::StartSync { peer, .. } = &input
                && self.congested(*peer)
            {
                tracing::debug!(%peer, "peer congested; starting its documents later");
                self.deferred.push_back(input);
                continue;
            }
            if let Input::MembershipChanged(space) = &input {
                spaces.forget_non_members(docs, space);
            }
            let needs = self.engine.needs(&input);
            let failed = match self.meet(docs, spaces, &needs) {
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
                let mut view = View {
                    docs: &mut *docs,
                    spaces: &mut *spaces,
                    items: &self.items,
                    states: &mut self.states,
                    saved: &mut self.saved,
                };
                let engine = &mut self.engine;
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
                        docs.forget(key);
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
                        docs.quarantine(&key.clone());
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
                self.effect(docs, spaces, out, &mut queue).await;
            }
            if docs.dirty_len() > DIRTY_LIMIT {
                // Bound memory during a large sync: store and park.
                self.flush(docs);
            }
        }
        self.items.clear();
        self.states.clear();
    }

    /// Whether the peer's send queue is above the high-water mark (and
    /// there is room to hold a start back).
    fn congested(&self, peer: NodeId) -> bool {
        self.deferred.len() < MAX_DEFERRED
            && self
                .net
                .as_ref()
                .is_some_and(|net| net.queued(peer) > crate::net::SEND_HIGH_WATER)
    }

    /// Whether `input` is a document from a peer the evaluated membership
    /// log does not name, other than the log from our provisionally trusted
    /// inviter ([`crate::auth::Standing::refuses`]): dropped before any
    /// work. Such a peer has a session only as that inviter, so this keeps
    /// its trust to the log, which verifies itself, and to its time limit.
    fn refused_document(&mut self, docs: &mut Docs, spaces: &mut Spaces, input: &Input) -> bool {
        let Some((peer, space, key)) = crate::sync::received_document(input) else {
            return false;
        };
        // An invalid key is the engine's to report.
        let Ok(doc_key) = DocKey::new(space, key.collection.as_str(), key.id.as_str()) else {
            return false;
        };
        // Frames outside a session are the engine's: it ignores them and
        // charges the peer's budget, which it could not if they stopped here.
        if !spaces.contains(space) || !self.engine.in_session(peer, space) {
            return false;
        }
        let refused = match spaces.membership(docs, space) {
            Ok(_) => spaces
                .get(space)
                .and_then(|j| j.refuses(peer, &doc_key, now_ms() / 1000))
                .unwrap_or(true),
            // No membership to go by: nobody is trusted.
            Err(_) => true,
        };
        if refused && let Some(repeated) = self.warn(peer, "refused unnamed") {
            tracing::warn!(%peer, key = %doc_key, repeated, "refused a document from a peer the membership log does not name (an inviter is trusted with the log only, for a limited time)");
        }
        refused
    }

    async fn effect(
        &mut self,
        docs: &mut Docs,
        spaces: &mut Spaces,
        out: Output,
        queue: &mut VecDeque<Input>,
    ) {
        match out {
            Output::Send(peer, message) => {
                if let Some(net) = &self.net {
                    let frame = wire::encode(&message);
                    if matches!(message, wire::Message::Reconcile { .. }) {
                        self.reconcile_sent.0 += 1;
                        self.reconcile_sent.1 += frame.len() as u64;
                    }
                    net.send(peer, frame);
                }
            }
            Output::Close(peer, reason) => {
                if let Some(repeated) = self.warn(peer, "session ended") {
                    tracing::warn!(%peer, %reason, repeated, "ending sync session");
                }
                if let Some(net) = &self.net {
                    net.disconnect(peer).await;
                }
            }
            Output::Then(next) => queue.push_back(next),
            Output::Applied { peer, key } => {
                tracing::debug!(%peer, %key, "applied a remote change");
                if let Err(e) = docs.stage(&key, None, Origin::Remote) {
                    tracing::warn!(%peer, %key, error = %e, "a remote change cannot be stored");
                    return;
                }
                if is_log(&key) {
                    // Act on a membership change (a revocation) before the
                    // next frame, not after the burst.
                    queue.push_back(Input::MembershipChanged(key.space().to_owned()));
                }
            }
            Output::Proven(peer) => {
                if let Some(net) = &self.net {
                    net.proven(peer);
                }
            }
            Output::Access {
                peer,
                space,
                refused,
            } => spaces.access(docs, peer, &space, refused),
            Output::SaveStates(peer, states) => {
                if let Err(e) = docs.store().save_sync_states(peer, &states) {
                    tracing::warn!(%peer, error = %e, "saving sync states failed");
                }
            }
        }
    }
}
