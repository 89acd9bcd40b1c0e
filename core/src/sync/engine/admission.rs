//! Who gets a session: the handshake and membership checks.
//!
//! Both sides send `Hello` with a random challenge and their membership
//! claims, and answer the peer's hello with a `Proof` (the challenge signed
//! with their node key). Once the peer's proof verifies, a session opens for
//! each space both claim *and* in which the peer is a member by our
//! membership log, extended with the peer's proof entries (how a new member
//! presents its `Join`). A non-member gets no session, so nothing of the
//! space: not its documents, not even their ids. When a log changes,
//! sessions of peers no longer members end.

use super::{Engine, Output, Peer, Replica, Session, reconcile};

/// Most spaces one hello or offer may claim.
const MAX_CLAIMS: usize = 256;
/// Most membership entries one claim may carry.
const MAX_PROOF_ENTRIES: usize = 16;
/// Distinct refused claims a peer may present before it is cut off: each
/// costs a log evaluation.
const MAX_REFUSALS: u32 = 64;
use crate::identity::NodeId;
use crate::sync::wire::{Claim, Message};

impl Engine {
    pub(super) fn connected(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        challenge: [u8; 32],
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        self.peers.insert(
            peer,
            Peer {
                connected_at: now,
                challenge,
                ..Peer::default()
            },
        );
        let spaces: Vec<String> = self.spaces.iter().cloned().collect();
        let claims = claims(replica, spaces);
        out.push(Output::Send(
            peer,
            Message::Hello {
                node: self.me,
                spaces: claims,
                challenge,
            },
        ));
    }

    /// Records a peer's claims and, once it has proven its identity, admits
    /// it. Claims are bounded per peer, so a peer cannot make us store or
    /// verify without limit; claims for spaces we do not offer are kept (we
    /// may join them while connected) but cost no verification.
    pub(super) fn claimed(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        claims: Vec<Claim>,
        out: &mut Vec<Output>,
    ) {
        if claims.len() > MAX_CLAIMS {
            return self.close(peer, "too many membership claims".into(), out);
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut spaces = Vec::with_capacity(claims.len());
        for claim in claims {
            if !p.claims.contains_key(&claim.space) && p.claims.len() >= MAX_CLAIMS {
                return self.close(peer, "too many membership claims".into(), out);
            }
            if claim.proof.len() > MAX_PROOF_ENTRIES {
                // An oversized proof costs that claim, not the connection.
                tracing::debug!(%peer, space = claim.space, "ignoring an oversized membership claim");
                continue;
            }
            let proof: Vec<Vec<u8>> = claim.proof.into_iter().map(|b| b.into_vec()).collect();
            if p.claims.get(&claim.space) != Some(&proof) {
                // A new claim deserves a fresh look.
                p.refused.remove(&claim.space);
                p.claims.insert(claim.space.clone(), proof);
            }
            if !spaces.contains(&claim.space) {
                spaces.push(claim.space);
            }
        }
        if p.proven {
            self.admit_all(replica, peer, spaces, out);
        }
    }

    /// Opens sessions for `spaces` where the peer is a member.
    pub(super) fn admit_all(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        spaces: Vec<String>,
        out: &mut Vec<Output>,
    ) {
        for space in spaces {
            let was_refused = self
                .peers
                .get(&peer)
                .is_some_and(|p| p.refused.contains(&space));
            self.admit(replica, peer, &space, out);
            // Count claims newly refused here (not re-checks after a log
            // change, which honest peers cause while a log syncs).
            let Some(p) = self.peers.get_mut(&peer) else {
                return;
            };
            if !was_refused && p.refused.contains(&space) {
                p.refusals += 1;
                if p.refusals > MAX_REFUSALS {
                    return self.close(peer, "too many refused membership claims".into(), out);
                }
            }
        }
    }

    fn admit(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        space: &str,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        if !self.spaces.contains(space) {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.proven || p.sessions.contains_key(space) || p.refused.contains(space) {
            return;
        }
        let Some(proof) = p.claims.get(space) else {
            return;
        };
        let Some((role, log_changed)) = replica.admit(space, peer, proof) else {
            tracing::info!(%peer, space, "peer is not a member; no session");
            p.refused.insert(space.to_owned());
            return;
        };
        let log_key = crate::key::DocKey::new(
            space,
            crate::auth::SYSTEM_COLLECTION,
            crate::auth::MEMBERS_ID,
        );
        if log_changed && let Ok(key) = log_key {
            out.push(Output::Applied { peer, key });
        }
        p.sessions.insert(
            space.to_owned(),
            Session {
                last_progress: now,
                role: Some(role),
                ..Session::default()
            },
        );
        // One side begins, so an exchange does not run twice; the other
        // begins too if the peer's first message came before its session.
        if self.me < peer || p.early.remove(space) {
            reconcile(out, peer, space, replica.items(space));
        }
    }

    /// Starts offering a space.
    pub(super) fn offer(
        &mut self,
        replica: &mut impl Replica,
        space: String,
        out: &mut Vec<Output>,
    ) {
        if !self.spaces.insert(space.clone()) {
            return;
        }
        let claim = claims(replica, vec![space.clone()]);
        // A peer whose hello has not arrived cannot take an offer before our
        // proof; it gets one right after.
        for p in self.peers.values_mut().filter(|p| !p.hello) {
            p.resend_claims = true;
        }
        let peers: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.hello)
            .map(|(id, _)| *id)
            .collect();
        for peer in peers {
            out.push(Output::Send(
                peer,
                Message::Offer {
                    spaces: claim.clone(),
                },
            ));
            self.admit(replica, peer, &space, out);
        }
    }

    /// Re-checks every peer against a space's changed membership log.
    pub(super) fn membership_changed(
        &mut self,
        replica: &mut impl Replica,
        space: &str,
        out: &mut Vec<Output>,
    ) {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        // A changed log may accept claims it refused.
        for p in self.peers.values_mut() {
            p.refused.remove(space);
        }
        for peer in peers {
            let in_session = self.peers[&peer].sessions.contains_key(space);
            match replica.role(space, peer) {
                None if in_session => {
                    tracing::info!(%peer, space, "peer is no longer a member; ending its session");
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.sessions.remove(space);
                    }
                }
                Some(role) if in_session => {
                    if let Some(s) = self.session(peer, space) {
                        s.role = Some(role);
                    }
                }
                // A claim that failed before may hold now (its cited
                // entries arrived): try the stored claim again.
                Some(_) | None => self.admit(replica, peer, space, out),
            }
            // Our own proof may have changed (say, our join just arrived in
            // the log, or we re-joined): let the peer look again.
            if self.peers[&peer].hello {
                let claim = claims(replica, vec![space.to_owned()]);
                out.push(Output::Send(peer, Message::Offer { spaces: claim }));
            } else if let Some(p) = self.peers.get_mut(&peer) {
                p.resend_claims = true;
            }
        }
    }
}

pub(super) fn claims(replica: &mut impl Replica, spaces: Vec<String>) -> Vec<Claim> {
    spaces
        .into_iter()
        .map(|space| Claim {
            proof: replica
                .proof(&space)
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
            space,
        })
        .collect()
}
