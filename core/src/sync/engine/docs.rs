//! Whole documents for a peer that has none of them (what a fresh replica
//! needs): the stored bytes go as one `Doc` frame each, without loading the
//! document on the sender or an Automerge round trip per document. The
//! receiver acknowledges every [`DOC_ACK_EVERY`] of them with one `DocAck`,
//! which only moves the sender's start window: a lost `Doc` shows up as a
//! difference at the next reconciliation, like any lost message.
//!
//! The send side's flow control lives here too: what reconciliation finds
//! differing waits in a per-session backlog (each document once, at most
//! [`MAX_BACKLOG`]) and is started while fewer than [`START_WINDOW`] started
//! documents await an answer. Acknowledgements are checked against the
//! `Doc` frames actually sent, and a document goes whole at most once per
//! session, so a peer cannot make this node queue a space over and over.

use automerge::sync::State;

use super::{Engine, Output, Replica, Role, START_BATCH, START_WINDOW, Session, item_key};
use crate::doc::{ChangePolicy, MAX_DOC_BYTES};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::Input;
use crate::sync::wire::{ItemKey, Message};

/// `Doc` messages a receiver handles per `DocAck`.
pub const DOC_ACK_EVERY: u32 = 64;
/// Documents queued or started and unanswered per session: what one
/// reconciliation may queue. More differing documents wait for the next
/// exchange, begun as soon as the backlog drains; 16,384 keys are a few MiB
/// and a few seconds of sync, so a large initial sync loses little to it.
pub const MAX_BACKLOG: usize = 16_384;

impl Session {
    /// Queues documents reconciliation found differing (`true`: the peer
    /// holds none of it), skipping those already in flight; past
    /// [`MAX_BACKLOG`] the rest wait for the next exchange.
    pub(super) fn enqueue(&mut self, space: &str, keys: Vec<(ItemKey, bool)>) {
        let (mut absent, mut present) = (Vec::new(), Vec::new());
        for (key, whole) in keys {
            if self.queued.contains(&key) || self.started.contains(&key) {
                continue;
            }
            if self.queued.len() + self.started.len() >= MAX_BACKLOG {
                self.overflow = true;
                break;
            }
            let Ok(doc_key) = DocKey::new(space, key.collection.as_str(), key.id.as_str()) else {
                continue;
            };
            self.queued.insert(key.clone());
            // Sent whole once already: the peer must ask for it this time.
            if whole && !self.sent_whole.contains(&key) {
                absent.push(doc_key);
            } else {
                present.push(doc_key);
            }
        }
        for (keys, whole) in [(absent, true), (present, false)] {
            for batch in keys.chunks(START_BATCH) {
                self.backlog.push_back((batch.to_vec(), whole));
            }
        }
    }

    /// Starts queued batches while fewer than [`START_WINDOW`] documents
    /// await an answer. A round started but unanswered keeps its document
    /// loaded on both sides; the window keeps that within the runtime's
    /// document cache, so answers do not reload what was just sent.
    pub(super) fn release(&mut self, peer: NodeId, out: &mut Vec<Output>) {
        while self.outstanding < START_WINDOW {
            let Some((keys, absent)) = self.backlog.pop_front() else {
                break;
            };
            for key in &keys {
                let key = item_key(key);
                self.queued.remove(&key);
                self.started.insert(key);
            }
            self.outstanding += keys.len();
            out.push(Output::Then(Input::StartSync { peer, keys, absent }));
        }
    }

    /// A retry: what was started and not answered counts as lost. Its
    /// documents may be queued again (the retry's exchange finds those still
    /// differing), and the window opens once more: one retry releases at
    /// most [`START_WINDOW`] documents, and retries back off.
    pub(super) fn lost(&mut self) {
        self.started.clear();
        self.outstanding = 0;
    }
}

impl Engine {
    /// Sends each of `keys` whole; those without stored bytes (or too large
    /// for one frame, or sent whole before in this session) fall back to an
    /// Automerge round.
    pub(super) fn send_docs(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        keys: Vec<DocKey>,
        out: &mut Vec<Output>,
    ) {
        let mut fallback = Vec::new();
        for key in keys {
            let Some(session) = self.session(peer, key.space()) else {
                continue;
            };
            let item = item_key(&key);
            if session.sent_whole.contains(&item) {
                fallback.push(key);
                continue;
            }
            match replica.saved(&key) {
                Some(data) if !data.is_empty() && data.len() <= MAX_DOC_BYTES => {
                    // Done here: the peer holds it once the frame arrives;
                    // if it never does, the next reconciliation finds it.
                    session.pending.remove(&item);
                    session.started.remove(&item);
                    session.sent_whole.insert(item.clone());
                    session.unacked += 1;
                    out.push(Output::Send(
                        peer,
                        Message::Doc {
                            space: key.space().to_owned(),
                            key: item,
                            data,
                        },
                    ));
                }
                _ => fallback.push(key),
            }
        }
        if !fallback.is_empty() {
            out.push(Output::Then(Input::StartSync {
                peer,
                keys: fallback,
                absent: false,
            }));
        }
    }

    pub(super) fn receive_doc(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        space: String,
        key: ItemKey,
        data: Vec<u8>,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        let Some(session) = self.session(peer, &space) else {
            tracing::debug!(%peer, space, "ignoring a document for a space without a session");
            return;
        };
        let doc_key = match DocKey::new(space.as_str(), key.collection.as_str(), key.id.as_str()) {
            Ok(k) => k,
            Err(e) => return self.close(peer, format!("document with an invalid key: {e}"), out),
        };
        session.last_progress = now;
        session.retries = 0;
        session.pending.remove(&key);
        session.docs_received += 1;
        if session.docs_received >= DOC_ACK_EVERY {
            let count = std::mem::take(&mut session.docs_received);
            out.push(Output::Send(
                peer,
                Message::DocAck {
                    space: space.clone(),
                    count,
                },
            ));
        }
        let writer = session.role.is_some_and(|r| r >= Role::Writer);
        let policy = ChangePolicy::for_doc(doc_key.collection(), doc_key.id(), writer);
        // A reader's changes are never applied: only writers write.
        if policy == ChangePolicy::ReadOnly {
            if let Some(repeated) = self.warn.allow(peer, "refused document", self.now) {
                tracing::warn!(%peer, key = %doc_key, repeated, "refused a document from a reader");
            }
            return;
        }
        if data.len() > MAX_DOC_BYTES {
            return self.close(
                peer,
                format!("document {doc_key} of {} bytes is too large", data.len()),
                out,
            );
        }
        // Checked (framing, inflated size, the document's rules, size and
        // depth of the result) before and after Automerge applies it.
        let doc = replica.doc(&doc_key);
        let received = doc.receive_chunks(&data, policy);
        let heads = doc.heads();
        if received.changed {
            // Whatever Automerge accepted is valid and gets stored.
            out.push(Output::Applied {
                peer,
                key: doc_key.clone(),
            });
        }
        if let Some(e) = received.error {
            return self.close(peer, format!("document {doc_key}: {e}"), out);
        }
        // The sender holds exactly these heads (it sent all it has): record
        // that, so storing the document does not push it straight back.
        let mut state = State::new();
        state.shared_heads.clone_from(&heads);
        state.last_sent_heads.clone_from(&heads);
        state.their_heads = Some(heads);
        state.have_responded = true;
        if let Some(session) = self.session(peer, &space) {
            session.states.insert(key, state);
        }
    }

    /// A `DocAck`: `count` of our `Doc` frames were handled, which opens
    /// the window by as many. Acknowledging more than was sent and not yet
    /// acknowledged ends the session: it would open the window without
    /// bound.
    pub(super) fn receive_doc_ack(
        &mut self,
        peer: NodeId,
        space: &str,
        count: u32,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        let Some(session) = self.session(peer, space) else {
            return;
        };
        let count64 = u64::from(count);
        if count64 > session.unacked {
            let sent = session.unacked;
            return self.close(
                peer,
                format!("acknowledged {count} documents of {space}, {sent} were unacknowledged"),
                out,
            );
        }
        session.unacked -= count64;
        session.outstanding = session.outstanding.saturating_sub(count as usize);
        if count > 0 {
            // The peer is taking what we send: that is progress.
            session.last_progress = now;
            session.retries = 0;
        }
        session.release(peer, out);
    }
}
