//! What each input will read. The runtime does this work (SQL, hashing,
//! log evaluation) before the engine sees the input, so a frame the engine
//! will ignore or refuse must need nothing: no session, an incomplete
//! handshake, a proof that does not verify or a spent budget all need
//! nothing here.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, VerifyingKey};

use super::admission::{MAX_CLAIMS, MAX_PROOF_ENTRIES, log_key};
use super::budget::Kind;
use super::{Engine, Input, Needs, Peer, item_key};
use crate::auth::Role;
use crate::doc::ChangePolicy;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::wire::{Claim, Message, proof_bytes};

impl Engine {
    /// What `input` will read; make it available, then call [`Self::handle`].
    pub fn needs(&self, input: &Input) -> Needs {
        let mut needs = Needs::default();
        match input {
            Input::Received(peer, message) => {
                if let Some(p) = self.peers.get(peer) {
                    self.frame_needs(*peer, p, message, &mut needs);
                }
            }
            Input::Offer(space) => {
                needs.memberships.push(space.clone());
                needs.digests.push(space.clone());
            }
            Input::MembershipChanged(space) => {
                needs.memberships.push(space.clone());
                needs.digests.push(space.clone());
                // A peer that loses its session is sent the log first.
                if let Ok(log) = log_key(space) {
                    needs.docs.push(log);
                }
            }
            Input::StartSync {
                keys, absent: true, ..
            } => needs.saved = keys.clone(),
            Input::StartSync { peer, keys, .. } => {
                needs.docs = keys.clone();
                needs.states = keys
                    .iter()
                    .filter(|k| !self.has_state(*peer, k))
                    .map(|k| (*peer, k.clone()))
                    .collect();
            }
            Input::Changed(key) => {
                needs.docs.push(key.clone());
                for (peer, p) in &self.peers {
                    if p.sessions.contains_key(key.space()) && !self.has_state(*peer, key) {
                        needs.states.push((*peer, key.clone()));
                    }
                }
            }
            Input::Tick(now) => {
                needs.digests = self
                    .stalled(*now)
                    .map(|(_, space, _)| space)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
            }
            Input::Connected(..)
            | Input::Disconnected(_)
            | Input::Malformed(..)
            | Input::Withdraw(_) => {}
        }
        needs
    }

    fn frame_needs(&self, peer: NodeId, p: &Peer, message: &Message, needs: &mut Needs) {
        let session = |space: &str| p.ready.then(|| p.sessions.get(space)).flatten();
        match message {
            Message::Hello { .. } | Message::DocAck { .. } | Message::Refuse { .. } => {}
            // Our offer reads every space's membership (who may hear of
            // which space): only for a proof that verifies.
            Message::Proof { signature } => {
                if p.hello && !p.proven && self.proof_verifies(peer, p, signature) {
                    needs.memberships = self.spaces.iter().cloned().collect();
                }
            }
            Message::Offer { spaces } => {
                if !p.proven {
                    return;
                }
                let evaluated = self.evaluated(p, spaces);
                if p.budgets
                    .allows(Kind::Claim, evaluated.len() as u64, self.now)
                {
                    needs.digests = evaluated.iter().cloned().collect();
                    needs.memberships = evaluated.into_iter().collect();
                }
            }
            Message::Reconcile { space, .. } => {
                if session(space).is_some() && p.budgets.allows(Kind::Reconcile, 1, self.now) {
                    needs.digests.push(space.clone());
                }
            }
            Message::Sync { space, key, .. } => {
                if session(space).is_some()
                    && let Ok(k) =
                        DocKey::new(space.as_str(), key.collection.as_str(), key.id.as_str())
                {
                    if !self.has_state(peer, &k) {
                        needs.states.push((peer, k.clone()));
                    }
                    needs.docs.push(k);
                }
            }
            // A reader's documents are refused unread (but for the
            // membership log, which takes every member's entries).
            Message::Doc { space, key, .. } => {
                let writer =
                    session(space).is_some_and(|s| s.role.is_some_and(|r| r >= Role::Writer));
                if session(space).is_some()
                    && ChangePolicy::for_doc(&key.collection, &key.id, writer)
                        != ChangePolicy::ReadOnly
                    && let Ok(k) =
                        DocKey::new(space.as_str(), key.collection.as_str(), key.id.as_str())
                {
                    needs.docs.push(k);
                }
            }
        }
    }

    /// Whether a `Proof` from `peer` signs the challenge we sent it.
    pub(super) fn proof_verifies(&self, peer: NodeId, p: &Peer, signature: &[u8; 64]) -> bool {
        let signed = proof_bytes(&p.challenge, peer, self.me);
        VerifyingKey::from_bytes(peer.as_bytes()).is_ok_and(|k| {
            k.verify_strict(&signed, &Signature::from_bytes(signature))
                .is_ok()
        })
    }

    /// The spaces of an offer whose claim will be evaluated against the log:
    /// ours, without a session, and new or not refused before. A claim
    /// repeated unchanged costs nothing.
    pub(super) fn evaluated(&self, p: &Peer, claims: &[Claim]) -> BTreeSet<String> {
        claims
            .iter()
            .take(MAX_CLAIMS)
            .filter(|c| c.proof.len() <= MAX_PROOF_ENTRIES)
            .filter(|c| self.spaces.contains(&c.space) && !p.sessions.contains_key(&c.space))
            .filter(|c| {
                !p.refused.contains(&c.space)
                    || p.claims.get(&c.space).is_none_or(|old| {
                        old.len() != c.proof.len()
                            || old.iter().zip(&c.proof).any(|(a, b)| a[..] != b[..])
                    })
            })
            .map(|c| c.space.clone())
            .collect()
    }

    /// Whether a session already holds the sync state for `key` in memory
    /// (then no persisted state needs loading).
    pub(super) fn has_state(&self, peer: NodeId, key: &DocKey) -> bool {
        self.peers
            .get(&peer)
            .and_then(|p| p.sessions.get(key.space()))
            .is_some_and(|s| s.states.contains_key(&item_key(key)))
    }
}
