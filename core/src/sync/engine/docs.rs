//! Whole documents for a peer that has none of them (what a fresh replica
//! needs): the stored bytes go as one `Doc` frame each, without loading the
//! document on the sender or an Automerge round trip per document. The
//! receiver acknowledges every [`DOC_ACK_EVERY`] of them with one `DocAck`,
//! which only moves the sender's start window: a lost `Doc` shows up as a
//! difference at the next reconciliation, like any lost message.

use automerge::sync::State;

use super::{Engine, Output, Replica, Role, item_key};
use crate::doc::{ChangePolicy, MAX_DOC_BYTES};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::Input;
use crate::sync::wire::{ItemKey, Message};

/// `Doc` messages a receiver handles per `DocAck`.
pub const DOC_ACK_EVERY: u32 = 64;

impl Engine {
    /// Sends each of `keys` whole; those without stored bytes (or too large
    /// for one frame) fall back to an Automerge round.
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
            match replica.saved(&key) {
                Some(data) if !data.is_empty() && data.len() <= MAX_DOC_BYTES => {
                    // Done here: the peer holds it once the frame arrives;
                    // if it never does, the next reconciliation finds it.
                    session.pending.remove(&item_key(&key));
                    out.push(Output::Send(
                        peer,
                        Message::Doc {
                            space: key.space().to_owned(),
                            key: item_key(&key),
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
            tracing::warn!(%peer, key = %doc_key, "refused a document from a reader");
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

    pub(super) fn receive_doc_ack(
        &mut self,
        peer: NodeId,
        space: &str,
        count: u32,
        out: &mut Vec<Output>,
    ) {
        if let Some(session) = self.session(peer, space) {
            session.outstanding = session.outstanding.saturating_sub(count as usize);
            session.release(peer, out);
        }
    }
}
