//! The sync engine: every peer session of a node, as a state machine.
//!
//! Inputs go in ([`Input`]), effects come out ([`Output`]); the engine never
//! touches a socket, a clock or a task, so the simulator drives it exactly as
//! the node does. Documents are reached through the [`Replica`] trait, and
//! before each input the runtime makes available what [`Engine::needs`] lists
//! (documents loaded, digests read), so the engine itself never waits.
//!
//! Per peer: both sides send `Hello` (a challenge, nothing about spaces) and
//! sign the peer's in a `Proof`; once a proof verifies, each side `Offer`s
//! the spaces the peer is a member of, and each claim the log accepts opens
//! a session ([`admission`]); one side (the lower node id, or whichever
//! side's first message the peer ignored for want of a session) starts a
//! range-based reconciliation exchange (`reconcile`), and the side that
//! learns that a document differs starts it: one whole `Doc` frame if the
//! peer holds none of it ([`docs`]), else an Automerge sync round. Afterwards
//! every committed change (local or from another peer) is pushed to each
//! session of its space. A session that stops making progress starts a new
//! exchange on `Tick`, which heals lost messages.
//!
//! What a peer can make this node do is bounded: frames that will be
//! ignored need nothing read ([`needs`]), expensive ones spend per-peer
//! budgets ([`budget`]), the send side queues each document once and at
//! most [`MAX_BACKLOG`] ([`docs`]), and sync states are kept only for
//! documents held here, [`MAX_STATES`] per session in memory ([`rounds`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::sync::State;

use super::reconcile::{Index, initiate, respond};

mod admission;
mod budget;
mod docs;
mod lost;
mod needs;
mod rounds;
#[cfg(test)]
mod tests;
use super::wire::{Item, ItemKey, Message, RangePayload, WireError, proof_bytes};
pub use admission::{MAX_CLAIMS, MAX_PROOF_ENTRIES, MAX_PROOF_ENTRY_BYTES, MAX_REFUSALS};
use budget::{Budgets, Kind};
pub use budget::{
    CLAIM_BURST, CLAIM_PER_SEC, IGNORED_BURST, IGNORED_PER_SEC, RECONCILE_BURST, RECONCILE_PER_SEC,
};
pub use docs::{DOC_ACK_EVERY, MAX_BACKLOG};
use ed25519_dalek::{Signer as _, SigningKey};
pub use rounds::MAX_STATES;
use rounds::saved_states;

use crate::auth::Role;
use crate::doc::Document;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::warn_limit::WarnLimit;

/// A session idle this long with work outstanding re-reconciles; each
/// further retry waits twice as long, up to 16 times this.
pub const RETRY_AFTER_MS: u64 = 3_000;
/// A handshake (hello and proof both ways, and the peer's first offer) not
/// done in this long ends the connection; generous, since a busy node may
/// take a while to get to it.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Documents started per follow-up input, so memory and queued messages stay
/// bounded however many documents differ.
pub const START_BATCH: usize = 256;
/// Documents a session tracks as pending at most: a peer names them in
/// `Done` and `Sync` frames, so this bounds what it can make us remember;
/// beyond it the session stays unreconciled and a later exchange finds the
/// rest (the same bound as the backlog of documents to start).
pub const MAX_PENDING: usize = docs::MAX_BACKLOG;
/// Peers whose budgets are remembered after they leave: a member that
/// reconnects in a loop finds its buckets as it left them. A stranger with
/// a fresh key gets fresh ones anyway, so this only needs to cover members.
pub const MAX_REMEMBERED_BUDGETS: usize = 1024;
/// Documents started and not yet answered, per session.
pub const START_WINDOW: usize = 2 * START_BATCH;

/// What the engine reads and changes: the node's documents.
pub trait Replica {
    /// Items of every stored document of `space` (listed in [`Needs::digests`]).
    fn items(&mut self, space: &str) -> Vec<Item>;
    /// The document, empty if it does not exist yet (listed in [`Needs::docs`]).
    fn doc(&mut self, key: &DocKey) -> &mut Document;
    /// The document's stored bytes (concatenated Automerge chunks), without
    /// loading it; `None` if it is not stored (listed in [`Needs::saved`]).
    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>>;
    /// A persisted sync state with `peer` (listed in [`Needs::states`]).
    fn sync_state(&mut self, peer: NodeId, key: &DocKey) -> Option<Vec<u8>>;
    /// A node's role in a space by its membership log (listed in
    /// [`Needs::memberships`]).
    fn role(&mut self, space: &str, node: NodeId) -> Option<Role>;
    /// This node's own membership entries in a space, to prove membership.
    fn proof(&mut self, space: &str) -> Vec<Vec<u8>>;
    /// Whether `node` is a member of `space` once its `proof` entries are
    /// taken into account; if so, the replica keeps the entries and returns
    /// the role and whether the log changed, else why not (for the peer).
    fn admit(&mut self, space: &str, node: NodeId, proof: &[Vec<u8>]) -> Admission;
}

/// A [`Replica::admit`] answer: the role and whether the log changed, or
/// why the claim was refused (for the peer).
pub type Admission = Result<(Role, bool), String>;

/// What the runtime must make available before [`Engine::handle`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Spaces whose items are read.
    pub digests: Vec<String>,
    /// Documents read or changed.
    pub docs: Vec<DocKey>,
    /// Documents whose stored bytes are read (not loaded).
    pub saved: Vec<DocKey>,
    /// Persisted sync states read.
    pub states: Vec<(NodeId, DocKey)>,
    /// Spaces whose membership is read or extended.
    pub memberships: Vec<String>,
}

/// Everything that happens to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection to a peer is up (its stream can take frames), with
    /// fresh random bytes for the peer to sign.
    Connected(NodeId, [u8; 32]),
    /// The last connection to a peer is gone.
    Disconnected(NodeId),
    /// A decoded frame from a peer.
    Received(NodeId, Message),
    /// A frame from a peer that did not decode.
    Malformed(NodeId, WireError),
    /// Start Automerge sync rounds for these documents (a follow-up the
    /// engine asks for via [`Output::Then`], once they are loaded).
    StartSync {
        /// The peer.
        peer: NodeId,
        /// The documents.
        keys: Vec<DocKey>,
        /// The peer holds no version of any of them (reconciliation found
        /// none in its list), so the first message carries each whole.
        absent: bool,
    },
    /// A document changed and the change is stored: push it to peers.
    Changed(DocKey),
    /// Time passes (milliseconds on any monotonic clock).
    Tick(u64),
    /// Start offering a space: tell connected peers, and open sessions with
    /// those that offer it too.
    Offer(String),
    /// A space's membership log changed: end sessions with peers that are
    /// no longer members, open them with peers that now are.
    MembershipChanged(String),
    /// Stop offering a space this node left: its sessions end and peers'
    /// claims of it open nothing from now on.
    Withdraw(String),
}

/// Everything the engine asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message to a peer.
    Send(NodeId, Message),
    /// End the peer's session (drop the connection) and log the reason.
    Close(NodeId, String),
    /// Feed this input back once its needs are met.
    Then(Input),
    /// A peer's message changed a document: store it and announce it.
    Applied {
        /// Who sent it.
        peer: NodeId,
        /// The document.
        key: DocKey,
    },
    /// Persist these sync states with `peer` (sent when a peer leaves).
    SaveStates(NodeId, Vec<(DocKey, Vec<u8>)>),
    /// The peer proved its identity: the network may read its frames in full.
    Proven(NodeId),
    /// What a peer says of our membership of a space: it named the space to
    /// us (`None`: its log makes us a member) or refused our claim (why).
    Access {
        /// The peer.
        peer: NodeId,
        /// The space.
        space: String,
        /// The peer's reason, if it refused.
        refused: Option<String>,
    },
}

#[derive(Debug, Default)]
struct Session {
    /// Sync states of documents this node holds (at most [`MAX_STATES`]).
    states: BTreeMap<ItemKey, State>,
    /// Documents this side still has something to exchange about.
    pending: BTreeSet<ItemKey>,
    /// Documents settled one way (a reader's side: heads differ for good),
    /// with our heads hash then; not started again while it still holds
    /// (at most [`MAX_PENDING`]).
    one_way: BTreeMap<ItemKey, [u8; 32]>,
    /// Whether a reconciliation exchange has ended at this side (it sent or
    /// received the message that closed it).
    reconciled: bool,
    last_progress: u64,
    /// Retries since the last sync message from the peer.
    retries: u32,
    /// The peer's role in the space.
    role: Option<Role>,
    /// Documents to start, in batches, waiting for room in the window.
    backlog: VecDeque<(Vec<DocKey>, bool)>,
    /// The documents in `backlog`.
    queued: BTreeSet<ItemKey>,
    /// Documents started by an Automerge round whose answer has not come:
    /// with `queued`, what is in flight (once each, [`MAX_BACKLOG`] at most).
    started: BTreeSet<ItemKey>,
    /// Documents sent whole this session: never sent whole again in it (a
    /// peer still lacking one gets an Automerge round, which it must answer).
    sent_whole: BTreeSet<ItemKey>,
    /// Differing documents did not fit in the backlog: reconcile again as
    /// soon as it drains.
    overflow: bool,
    /// Documents started whose answer has not come yet (approximately: any
    /// sync message from the peer counts as one answer, a `DocAck` as many).
    outstanding: usize,
    /// `Doc` frames sent and not yet acknowledged: a `DocAck` counting more
    /// is a protocol violation.
    unacked: u64,
    /// `Doc` messages handled since our last `DocAck`.
    docs_received: u32,
}

#[derive(Debug, Default)]
struct Peer {
    hello: bool,
    /// The peer signed our challenge: it holds its node key.
    proven: bool,
    /// The peer's first offer arrived: the handshake is complete and
    /// session frames may follow.
    ready: bool,
    /// What we asked the peer to sign.
    challenge: [u8; 32],
    connected_at: u64,
    /// Spaces the peer offers, with its proofs.
    claims: BTreeMap<String, Vec<Vec<u8>>>,
    /// Spaces whose current claim failed against the current log: not
    /// evaluated again until the claim or the log changes.
    refused: BTreeSet<String>,
    /// Distinct claims refused so far; too many end the connection.
    refusals: u32,
    /// Refusals we sent the peer, by space: each reason is sent once.
    told: BTreeMap<String, String>,
    /// Spaces we named to the peer, with the proof we sent: a space is
    /// named only to its members, and again only when our proof changed.
    offered: BTreeMap<String, Vec<Vec<u8>>>,
    /// Spaces (of ours) whose `Reconcile` arrived before their session
    /// opened: the exchange it began is lost, so we begin one on opening.
    early: BTreeSet<String>,
    sessions: BTreeMap<String, Session>,
    budgets: Budgets,
}

/// All sessions of one node.
#[derive(Debug)]
pub struct Engine {
    me: NodeId,
    key: SigningKey,
    spaces: BTreeSet<String>,
    peers: BTreeMap<NodeId, Peer>,
    now: u64,
    /// Warnings a peer causes, one line per peer and cause a minute.
    warn: WarnLimit,
    /// Budgets of peers that left, so reconnecting does not refill them
    /// (at most [`MAX_REMEMBERED_BUDGETS`]).
    left: BTreeMap<NodeId, Budgets>,
}

fn item_key(key: &DocKey) -> ItemKey {
    ItemKey {
        collection: key.collection().to_owned(),
        id: key.id().to_owned(),
    }
}

impl Engine {
    /// An engine for the node with key `key`, offering `spaces`.
    pub fn new(key: SigningKey, spaces: impl IntoIterator<Item = String>) -> Self {
        Self {
            me: NodeId::from_bytes(key.verifying_key().to_bytes()),
            key,
            spaces: spaces.into_iter().collect(),
            peers: BTreeMap::new(),
            now: 0,
            warn: WarnLimit::default(),
            left: BTreeMap::new(),
        }
    }

    /// Moves the engine's clock forward (never back) without other effects,
    /// so that times it records (a connection's start) are current.
    pub fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Connected peers.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    /// Documents still being exchanged with `peer`, per space.
    pub fn pending(&self, peer: NodeId) -> BTreeMap<String, usize> {
        self.peers
            .get(&peer)
            .map(|p| {
                p.sessions
                    .iter()
                    .map(|(s, sess)| (s.clone(), sess.pending.len()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `peer` has an open session for `space` (frames for any other
    /// space are the engine's to ignore and charge to the peer's budget).
    pub fn in_session(&self, peer: NodeId, space: &str) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.sessions.contains_key(space))
    }

    /// Documents still being exchanged, over all peers and spaces.
    pub fn pending_total(&self) -> usize {
        self.peers
            .values()
            .flat_map(|p| p.sessions.values())
            .map(|s| s.pending.len())
            .sum()
    }

    /// Whether no session has outstanding work.
    pub fn is_idle(&self) -> bool {
        self.peers.values().all(|p| {
            p.ready
                && p.sessions
                    .values()
                    .all(|s| s.reconciled && s.pending.is_empty())
        })
    }

    /// Sessions to reconcile again on a tick, and whether that is a refill
    /// (`true`: the backlog drained after overflowing, nothing was lost)
    /// rather than a retry of a session idle too long with work outstanding.
    fn stalled(&self, now: u64) -> impl Iterator<Item = (NodeId, String, bool)> + '_ {
        self.peers.iter().flat_map(move |(peer, p)| {
            p.sessions.iter().filter_map(move |(space, s)| {
                let refill = s.overflow && s.backlog.is_empty();
                let retry = (!s.reconciled || !s.pending.is_empty())
                    && now.saturating_sub(s.last_progress) >= RETRY_AFTER_MS << s.retries.min(4);
                (refill || retry).then(|| (*peer, space.clone(), refill))
            })
        })
    }

    /// Handles one input. The replica must hold what [`Self::needs`] listed.
    pub fn handle(&mut self, replica: &mut impl Replica, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected(peer, challenge) => self.connected(peer, challenge, &mut out),
            Input::Disconnected(peer) => {
                if let Some(p) = self.peers.remove(&peer) {
                    self.remember_budgets(peer, p.budgets);
                    let states = saved_states(&p);
                    if !states.is_empty() {
                        out.push(Output::SaveStates(peer, states));
                    }
                }
            }
            Input::Malformed(peer, e) => {
                self.close(peer, format!("malformed frame: {e}"), &mut out)
            }
            Input::Received(peer, message) => self.receive(replica, peer, message, &mut out),
            Input::StartSync { peer, keys, absent } => {
                // Starting rounds is progress: a large batch of them must
                // not look like a stall and trigger a retry that restarts
                // them all again.
                let now = self.now;
                for key in &keys {
                    if let Some(s) = self.session(peer, key.space()) {
                        s.last_progress = now;
                    }
                }
                if absent {
                    self.send_docs(replica, peer, keys, &mut out);
                } else {
                    for key in keys {
                        self.generate(replica, peer, &key, true, &mut out);
                    }
                }
            }
            Input::Changed(key) => {
                let peers: Vec<NodeId> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.sessions.contains_key(key.space()))
                    .map(|(id, _)| *id)
                    .collect();
                for peer in peers {
                    self.generate(replica, peer, &key, false, &mut out);
                }
            }
            Input::Offer(space) => self.offer(replica, space, &mut out),
            Input::MembershipChanged(space) => self.membership_changed(replica, &space, &mut out),
            Input::Withdraw(space) => self.withdraw(&space, &mut out),
            Input::Tick(now) => self.tick(replica, now, &mut out),
        }
        out
    }

    fn tick(&mut self, replica: &mut impl Replica, now: u64, out: &mut Vec<Output>) {
        self.advance(now);
        // A handshake that never completed (a lost hello, proof or first
        // offer) is retried by reconnecting.
        let silent: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.ready && now.saturating_sub(p.connected_at) >= HANDSHAKE_TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        for peer in silent {
            self.close(
                peer,
                "the handshake did not complete; reconnecting".into(),
                out,
            );
        }
        let stalled: Vec<_> = self.stalled(now).collect();
        for (peer, space, refill) in stalled {
            if let Some(s) = self.session(peer, &space) {
                s.last_progress = now;
                if refill {
                    s.overflow = false;
                } else {
                    s.retries += 1;
                    s.lost();
                }
                s.release(peer, out);
            }
            reconcile(out, peer, &space, replica.items(&space));
        }
    }

    fn session(&mut self, peer: NodeId, space: &str) -> Option<&mut Session> {
        self.peers.get_mut(&peer)?.sessions.get_mut(space)
    }

    fn remember_budgets(&mut self, peer: NodeId, budgets: Budgets) {
        if self.left.len() >= MAX_REMEMBERED_BUDGETS && !self.left.contains_key(&peer) {
            self.left.pop_first();
        }
        self.left.insert(peer, budgets);
    }

    fn close(&mut self, peer: NodeId, reason: String, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.remove(&peer) {
            self.remember_budgets(peer, p.budgets);
            let states = saved_states(&p);
            if !states.is_empty() {
                out.push(Output::SaveStates(peer, states));
            }
        }
        out.push(Output::Close(peer, reason));
    }

    /// Spends `cost` of a peer's budget; a peer that has spent it is
    /// disconnected (see [`budget`]). Returns whether it may go on.
    fn spend(&mut self, peer: NodeId, kind: Kind, cost: u64, out: &mut Vec<Output>) -> bool {
        let now = self.now;
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if p.budgets.take(kind, cost, now) {
            return true;
        }
        self.close(peer, format!("{} budget spent", kind.name()), out);
        false
    }

    /// A session frame for a space without a session: ignored, within the
    /// peer's budget for such frames.
    fn ignore(&mut self, peer: NodeId, space: &str, what: &str, out: &mut Vec<Output>) {
        tracing::debug!(%peer, space, what, "ignoring a frame for a space without a session");
        // A peer we refused that still talks about the space missed our
        // refusal (a lost frame): say it again, within the same budget.
        if what != "refusal"
            && let Some(p) = self.peers.get(&peer)
            && p.refused.contains(space)
            && let Some(reason) = p.told.get(space)
        {
            out.push(Output::Send(
                peer,
                Message::Refuse {
                    space: space.to_owned(),
                    reason: reason.clone(),
                },
            ));
        }
        self.spend(peer, Kind::Ignored, 1, out);
    }

    fn receive(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        message: Message,
        out: &mut Vec<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return out.push(Output::Close(
                peer,
                "frame from a peer without a connection".into(),
            ));
        };
        // Session frames only after the handshake: before it, a peer has no
        // session and knows none of our spaces.
        let session_frame = !matches!(
            message,
            Message::Hello { .. }
                | Message::Proof { .. }
                | Message::Offer { .. }
                | Message::Refuse { .. }
        );
        if session_frame && !p.ready {
            return self.close(
                peer,
                "session frame before the handshake completed".into(),
                out,
            );
        }
        match message {
            Message::Hello { node, challenge } => {
                if node != peer {
                    return self.close(peer, format!("hello claims to be {node}"), out);
                }
                if p.hello {
                    return self.close(peer, "second hello".into(), out);
                }
                p.hello = true;
                let signature = self
                    .key
                    .sign(&proof_bytes(&challenge, self.me, peer))
                    .to_bytes();
                out.push(Output::Send(peer, Message::Proof { signature }));
            }
            Message::Proof { signature } => {
                if !p.hello || p.proven {
                    return self.close(peer, "proof out of order".into(), out);
                }
                let valid = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| self.proof_verifies(peer, p, &signature));
                if !valid {
                    return self.close(peer, "its proof of identity does not verify".into(), out);
                }
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.proven = true;
                out.push(Output::Proven(peer));
                // Our first offer, even empty, completes the handshake.
                let spaces: Vec<String> = self.spaces.iter().cloned().collect();
                self.reveal(replica, peer, spaces, true, out);
            }
            Message::Offer { spaces } => {
                if !p.proven {
                    return self.close(peer, "offer before the handshake completed".into(), out);
                }
                p.ready = true;
                self.claimed(replica, peer, spaces, out);
            }
            Message::Reconcile {
                space,
                lower,
                ranges,
            } => {
                if !p.sessions.contains_key(&space) {
                    // Not admitted (yet): nothing of the space goes either way.
                    if self.spaces.contains(&space) {
                        p.early.insert(space.clone());
                    }
                    return self.ignore(peer, &space, "reconcile", out);
                }
                if !self.spend(peer, Kind::Reconcile, 1, out) {
                    return;
                }
                self.receive_reconcile(replica, peer, space, lower, ranges, out);
            }
            Message::Doc { space, key, data } => {
                if !p.sessions.contains_key(&space) {
                    return self.ignore(peer, &space, "document", out);
                }
                self.receive_doc(replica, peer, space.clone(), key, data, out);
                self.trim_states(peer, &space, out);
            }
            Message::DocAck { space, count } => {
                if !p.sessions.contains_key(&space) {
                    return self.ignore(peer, &space, "document acknowledgement", out);
                }
                self.receive_doc_ack(peer, &space, count, out);
            }
            Message::Sync { space, key, data } => {
                let Some(session) = p.sessions.get_mut(&space) else {
                    return self.ignore(peer, &space, "sync", out);
                };
                // The peer's answer to a round we started.
                session.started.remove(&key);
                self.receive_sync(replica, peer, space, key, data, out);
            }
            Message::Refuse { space, reason } => self.refused_by(peer, space, reason, out),
        }
    }

    /// One step of a reconciliation exchange in an open session.
    fn receive_reconcile(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        space: String,
        lower: Option<ItemKey>,
        ranges: Vec<super::wire::Range>,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        let index = Index::new(replica.items(&space));
        let outcome = match respond(&index, lower.as_ref(), &ranges) {
            Ok(outcome) => outcome,
            Err(e) => return self.close(peer, e.to_string(), out),
        };
        // A `Done` whose echo no longer matches (we changed since we sent
        // that side) settles nothing: the documents it names were not
        // recorded here, so this side must reconcile again, even if the
        // exchange ends with this message.
        let mut lo = lower.as_ref();
        let mut stale = false;
        for range in &ranges {
            let hi = range.upper.as_ref();
            if let RangePayload::Done { echo, .. } = &range.payload {
                stale |= index.sum(index.span(lo, hi)).echo() != *echo;
            }
            lo = hi;
        }
        let Some(session) = self.session(peer, &space) else {
            return;
        };
        session.last_progress = now;
        // A document settled one way differs for good: not work again
        // unless we changed since.
        let unchanged = |k: &ItemKey| {
            session.one_way.get(k).is_some_and(|h| {
                let at = index.position(Some(k));
                // A document we do not hold was recorded with no heads.
                let ours = index
                    .items()
                    .get(at)
                    .filter(|item| item.key == *k)
                    .map_or_else(|| super::reconcile::heads_hash(&[]), |item| item.hash);
                ours == *h
            })
        };
        // Nor for the peer: nothing flows either way, so our answer does not
        // name it either (else the peer would wait for a round nobody starts).
        let mut outcome = outcome;
        outcome.start.retain(|k| !unchanged(k));
        for settled in &mut outcome.settled {
            settled.differ.retain(|k| !unchanged(k));
        }
        for range in outcome.reply.iter_mut().flatten() {
            if let RangePayload::Done { differ, .. } = &mut range.payload {
                differ.retain(|k| !unchanged(k));
            }
        }
        for settled in &outcome.settled {
            // Past the bound the rest is found again by a later exchange.
            stale |= !settle(
                &mut session.pending,
                settled.lower.as_ref(),
                settled.upper.as_ref(),
                &settled.differ,
            );
        }
        if outcome.closed {
            session.reconciled = true;
        }
        if stale {
            session.reconciled = false;
        }
        if let Some(ranges) = outcome.reply {
            out.push(Output::Send(
                peer,
                Message::Reconcile {
                    space: space.clone(),
                    lower,
                    ranges,
                },
            ));
        }
        let start = outcome
            .start
            .into_iter()
            .map(|k| {
                let absent = outcome.absent.contains(&k);
                (k, absent)
            })
            .collect();
        session.enqueue(&space, start);
        session.release(peer, out);
    }
}

/// The role a session records for `peer` in `space`.
fn p_role(peers: &BTreeMap<NodeId, Peer>, peer: NodeId, space: &str) -> Option<Role> {
    peers.get(&peer)?.sessions.get(space)?.role
}

/// Begins a reconciliation exchange over the whole space.
fn reconcile(out: &mut Vec<Output>, peer: NodeId, space: &str, items: Vec<Item>) {
    out.push(Output::Send(
        peer,
        Message::Reconcile {
            space: space.to_owned(),
            lower: None,
            ranges: initiate(&Index::new(items)),
        },
    ));
}

/// A settled range has nothing pending but its differing documents.
/// Returns `false` if [`MAX_PENDING`] left some of them unrecorded.
fn settle(
    pending: &mut BTreeSet<ItemKey>,
    lower: Option<&ItemKey>,
    upper: Option<&ItemKey>,
    differ: &[ItemKey],
) -> bool {
    use std::ops::Bound;
    if let (Some(l), Some(u)) = (lower, upper)
        && l >= u
    {
        return true;
    }
    let range = (
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    );
    let done: Vec<ItemKey> = pending
        .range::<ItemKey, _>(range)
        .filter(|k| differ.binary_search(k).is_err())
        .cloned()
        .collect();
    for key in done {
        pending.remove(&key);
    }
    for key in differ {
        if pending.len() >= MAX_PENDING {
            return false;
        }
        pending.insert(key.clone());
    }
    true
}

impl Engine {
    /// Handshake state per peer, for debugging.
    pub fn debug_peers(&self) -> String {
        self.peers
            .iter()
            .map(|(id, p)| {
                format!(
                    "{}: hello={} proven={} claims={:?} sessions={:?}",
                    &id.to_string()[..14],
                    p.hello,
                    p.proven,
                    p.claims.keys().collect::<Vec<_>>(),
                    p.sessions
                        .iter()
                        .map(|(space, s)| format!(
                            "{space} (reconciled={} retries={} pending={:?})",
                            s.reconciled, s.retries, s.pending
                        ))
                        .collect::<Vec<_>>()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
