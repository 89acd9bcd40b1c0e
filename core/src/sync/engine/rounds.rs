//! Automerge sync rounds, one per (peer, document): receiving a peer's sync
//! message, generating ours, and the sync states kept between them.
//!
//! A state is kept only for a document this node holds: one a peer names
//! that does not exist here gets its answer from a fresh state, and nothing
//! stays behind (nor is stored when the peer leaves). In memory a session
//! keeps at most [`MAX_STATES`]; past that, the states of settled documents
//! go to the store first (they are read back when needed again).

use std::collections::BTreeSet;

use automerge::sync::State;

use super::{Engine, Output, Peer, Replica, Role, item_key, p_role};
use crate::doc::ChangePolicy;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::reconcile::heads_hash;
use crate::sync::wire::{ItemKey, Message};

/// Sync states held in memory per (peer, space): about as many documents as
/// a few start windows, so an initial sync keeps its rounds in memory while
/// a session naming every document of a large space cannot hold a state
/// (with its sent-change set) for each.
pub const MAX_STATES: usize = 4_096;

impl Engine {
    /// A peer's sync message for one document: apply what it may write,
    /// then answer.
    pub(super) fn receive_sync(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        space: String,
        key: ItemKey,
        data: Vec<u8>,
        out: &mut Vec<Output>,
    ) {
        if self.session(peer, &space).is_none() {
            tracing::debug!(%peer, space, "ignoring sync for a space without a session");
            return;
        }
        let doc_key = match DocKey::new(space.as_str(), key.collection.as_str(), key.id.as_str()) {
            Ok(k) => k,
            Err(e) => {
                return self.close(peer, format!("sync for an invalid key: {e}"), out);
            }
        };
        let now = self.now;
        let mut state = self.take_state(replica, peer, &doc_key);
        // A reader's changes are never applied: only writers write, and
        // system documents take only what their rules allow.
        let writer = p_role(&self.peers, peer, &space).is_some_and(|r| r >= Role::Writer);
        let policy = ChangePolicy::for_key(&doc_key, writer);
        let received = replica
            .doc(&doc_key)
            .receive_sync_message(&mut state, &data, policy);
        if received.refused_changes > 0
            && let Some(repeated) = self.warn.allow(peer, "refused changes", now)
        {
            tracing::warn!(%peer, key = %doc_key, changes = received.refused_changes, repeated, "refused changes from a reader");
        }
        if received.changed {
            // Whatever Automerge accepted is valid and gets stored,
            // even if it refused the rest of the message.
            out.push(Output::Applied {
                peer,
                key: doc_key.clone(),
            });
        }
        if let Some(e) = received.error {
            return self.close(peer, format!("sync message for {doc_key}: {e}"), out);
        }
        let session = self.session(peer, &space).expect("checked above");
        session.last_progress = now;
        session.retries = 0;
        session.outstanding = session.outstanding.saturating_sub(1);
        session.release(peer, out);
        session.states.insert(key, state);
        self.generate(replica, peer, &doc_key, false, out);
    }

    /// The in-memory sync state with `peer`, else the persisted one, else
    /// new; read-only where the peer may not write the document, so it is
    /// told not to send changes (Automerge's `READ_ONLY` flag) and neither
    /// side waits for changes that would be refused.
    pub(super) fn take_state(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        key: &DocKey,
    ) -> State {
        let item = item_key(key);
        let writer = p_role(&self.peers, peer, key.space()).is_some_and(|r| r >= Role::Writer);
        let read_only = ChangePolicy::for_key(key, writer) == ChangePolicy::ReadOnly;
        let mut state = self
            .session(peer, key.space())
            .and_then(|s| s.states.remove(&item))
            .or_else(|| {
                replica
                    .sync_state(peer, key)
                    .and_then(|b| State::decode(&b).ok())
            })
            .unwrap_or_default();
        if state.read_only != read_only {
            // Promoted to writer: the peer is told to resend what we ignored.
            state.set_read_only(read_only);
        }
        state
    }

    /// Sends the next sync message for `key` to `peer`, if any. `restart`
    /// forgets an unanswered message (it may have been lost).
    pub(super) fn generate(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        key: &DocKey,
        restart: bool,
        out: &mut Vec<Output>,
    ) {
        if self.session(peer, key.space()).is_none() {
            return;
        }
        let mut state = self.take_state(replica, peer, key);
        if restart {
            // Changes the peer lacks are resent when it names them in
            // `need`, so only the wait for an answer is forgotten here. A
            // restarted round always says our heads, even if the state
            // believes the peer has them: it may be stale, and the peer only
            // answers (with its own news) what it hears.
            state.in_flight = false;
            state.have_responded = false;
        }
        let doc = replica.doc(key);
        // Nothing to give and nothing we take: answered once (our empty
        // heads, read-only) and settled, since no state is kept for a
        // document we do not hold.
        let nothing_either_way = doc.is_empty() && state.read_only && state.their_heads.is_some();
        let message = doc.generate_sync_message(&mut state);
        // Changes flow one way with a reader, so heads may differ for good
        // (it may hold changes we refuse, or we hold changes it cannot pass
        // on): done once the side that takes has it all. The peer has all
        // of ours when, answered, we would send nothing even counting what
        // we sent before (a change sent but lost is not "had").
        let gave_all = state.read_only && message.is_none() && !state.in_flight && {
            let mut probe = state.clone();
            probe.sent_hashes.clear();
            // Without the peer's v2 capability the probe lists changes but
            // never saves the whole document, whatever summary a peer sent.
            probe.their_capabilities = None;
            doc.generate_sync_message(&mut probe).is_none()
        };
        let mine = doc.heads();
        // Both sides refuse each other's changes (two readers): nothing can
        // flow (Automerge stops answering once both have said so).
        let both_read_only = state.read_only && state.peer_read_only;
        let (in_sync, one_way) = if nothing_either_way || both_read_only {
            (true, true)
        } else {
            state.their_heads.as_ref().map_or((false, false), |theirs| {
                let equal = theirs.len() == mine.len() && theirs.iter().all(|h| mine.contains(h));
                let one_way =
                    gave_all || (state.peer_read_only && theirs.iter().all(|h| doc.has_change(h)));
                (equal || one_way, !equal && one_way)
            })
        };

        // A document this node does not hold keeps no state: the next
        // message about it starts from a fresh one, which costs at most a
        // repeated heads exchange.
        // (Or one we answered read-only: its state says so, and the next
        // message from the peer is not answered again.)
        let held = !doc.is_empty() || nothing_either_way;
        let item = item_key(key);
        let Some(session) = self.session(peer, key.space()) else {
            return;
        };
        if held {
            session.states.insert(item.clone(), state);
        }
        // Settled one way, the document still differs and reconciliation
        // keeps saying so: remember at which of our heads, so that it is
        // not started again until we change (the peer pushes its changes).
        if one_way {
            if session.one_way.len() < super::MAX_PENDING {
                session.one_way.insert(item.clone(), heads_hash(&mine));
            }
        } else {
            session.one_way.remove(&item);
        }
        // Pending until the peer has told us it holds exactly our heads.
        if in_sync {
            session.pending.remove(&item);
        } else if session.pending.len() < super::MAX_PENDING {
            session.pending.insert(item.clone());
        } else {
            // Not remembered: a later exchange finds it again.
            session.reconciled = false;
        }
        if let Some(data) = message {
            out.push(Output::Send(
                peer,
                Message::Sync {
                    space: key.space().to_owned(),
                    key: item,
                    data,
                },
            ));
        }
        self.trim_states(peer, key.space(), out);
    }

    /// Keeps a session's in-memory states within [`MAX_STATES`]: past it,
    /// down to three quarters, settled documents' states first, all of
    /// them handed to the store.
    pub(super) fn trim_states(&mut self, peer: NodeId, space: &str, out: &mut Vec<Output>) {
        let Some(session) = self.session(peer, space) else {
            return;
        };
        if session.states.len() <= MAX_STATES {
            return;
        }
        let excess = session.states.len() - MAX_STATES * 3 / 4;
        let busy = |k: &ItemKey| session.pending.contains(k) || session.started.contains(k);
        let mut evict: BTreeSet<ItemKey> = session
            .states
            .keys()
            .filter(|k| !busy(k))
            .take(excess)
            .cloned()
            .collect();
        if evict.len() < excess {
            let more: Vec<ItemKey> = session
                .states
                .keys()
                .filter(|k| !evict.contains(*k))
                .take(excess - evict.len())
                .cloned()
                .collect();
            evict.extend(more);
        }
        let saved: Vec<(DocKey, Vec<u8>)> = evict
            .into_iter()
            .filter_map(|k| {
                let state = session.states.remove(&k)?;
                let key = DocKey::new(space, k.collection.as_str(), k.id.as_str()).ok()?;
                Some((key, state.encode()))
            })
            .collect();
        tracing::debug!(%peer, space, states = saved.len(), "storing sync states past the in-memory cap");
        out.push(Output::SaveStates(peer, saved));
    }
}

/// Every in-memory sync state of the peer's sessions, encoded for storage.
pub(super) fn saved_states(p: &Peer) -> Vec<(DocKey, Vec<u8>)> {
    p.sessions
        .iter()
        .flat_map(|(space, s)| {
            s.states.iter().filter_map(move |(k, state)| {
                DocKey::new(space.as_str(), k.collection.as_str(), k.id.as_str())
                    .ok()
                    .map(|key| (key, state.encode()))
            })
        })
        .collect()
}
