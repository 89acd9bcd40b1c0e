//! Who gets a session: the handshake and membership checks.
//!
//! Both sides send `Hello` with a random challenge and nothing else, and
//! answer the peer's hello with a `Proof` (the challenge signed with their
//! node key). Once the peer's proof verifies, each side sends an `Offer`
//! (possibly empty; the first one completes the handshake) claiming the
//! spaces in which the peer is a member by its own log, so a space's id goes
//! only to its members. A claim opens a session if the peer is a member by
//! our log extended with the claim's entries (how a new member presents its
//! `Join`: the joiner claims first, trusting its inviter, and the inviter
//! names the space back once the join admitted it). A non-member gets no
//! session, so nothing of the space: not its documents, not even their ids.
//! When a log changes, sessions of peers no longer members end.

use super::budget::Kind;
use super::{Budgets, Engine, Output, Peer, Replica, Session, reconcile};

/// Most spaces one offer may claim (and a peer may claim in all).
pub const MAX_CLAIMS: usize = 256;
/// Most membership entries one claim may carry: as many as a node presents
/// of its own ([`crate::auth::own_entries`]).
pub const MAX_PROOF_ENTRIES: usize = crate::auth::MAX_PROOF;
/// Largest membership entry a claim may carry: a `Join` with its invite
/// (addresses included) takes a few hundred bytes to a few KiB, so claims
/// held per peer stay within `spaces × MAX_PROOF_ENTRIES × 16 KiB`.
pub const MAX_PROOF_ENTRY_BYTES: usize = 16 * 1024;
/// Distinct refused claims a peer may present before it is cut off: each
/// costs a log evaluation.
pub const MAX_REFUSALS: u32 = 64;
use crate::auth::Role;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::wire::{Claim, MAX_REASON_LEN, Message};

impl Engine {
    pub(super) fn connected(&mut self, peer: NodeId, challenge: [u8; 32], out: &mut Vec<Output>) {
        let now = self.now;
        let budgets = self.left.remove(&peer).unwrap_or_else(|| Budgets::new(now));
        let fresh = Peer {
            connected_at: now,
            challenge,
            budgets,
            ..Peer::default()
        };
        if let Some(old) = self.peers.insert(peer, fresh) {
            let states = super::saved_states(&old);
            if !states.is_empty() {
                out.push(Output::SaveStates(peer, states));
            }
        }
        out.push(Output::Send(
            peer,
            Message::Hello {
                node: self.me,
                challenge,
            },
        ));
    }

    /// Records a proven peer's claims and admits it where they hold. Claims
    /// are bounded per peer, so a peer cannot make us store or verify
    /// without limit; claims for spaces we do not offer are kept (we may
    /// join them while connected) but cost no verification, and a claim
    /// repeated unchanged is not evaluated again.
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
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let cost = self.evaluated(p, &claims).len() as u64;
        if !self.spend(peer, Kind::Claim, cost, out) {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut spaces = Vec::with_capacity(claims.len());
        for claim in claims {
            if !p.claims.contains_key(&claim.space) && p.claims.len() >= MAX_CLAIMS {
                return self.close(peer, "too many membership claims".into(), out);
            }
            // Claims for spaces we do not hold are not kept: should we
            // join one, the peer names it to us again once it admits us.
            if !self.spaces.contains(&claim.space) {
                continue;
            }
            if claim.proof.len() > MAX_PROOF_ENTRIES
                || claim.proof.iter().any(|e| e.len() > MAX_PROOF_ENTRY_BYTES)
            {
                // An oversized proof costs that claim, not the connection.
                tracing::debug!(%peer, space = claim.space, "ignoring an oversized membership claim");
                continue;
            }
            let proof: Vec<Vec<u8>> = claim.proof.into_iter().map(|b| b.into_vec()).collect();
            if p.claims.get(&claim.space) != Some(&proof) {
                // A new claim deserves a fresh look, and its own answer.
                p.refused.remove(&claim.space);
                p.told.remove(&claim.space);
                p.claims.insert(claim.space.clone(), proof);
            }
            if !spaces.contains(&claim.space) {
                // The peer names the space to us only if its log makes us a
                // member: whatever it refused before, it admits us now.
                out.push(Output::Access {
                    peer,
                    space: claim.space.clone(),
                    refused: None,
                });
                spaces.push(claim.space);
            }
        }
        if p.proven {
            self.admit_all(replica, peer, spaces, out);
        }
    }

    /// Names to a proven peer those of `spaces` it is a member of (by our
    /// log, or admitted to a session), with our proof, unless it already
    /// has that very claim from us. `always` sends the offer even empty
    /// (the first one, which completes the handshake).
    pub(super) fn reveal(
        &mut self,
        replica: &mut impl Replica,
        peer: NodeId,
        spaces: Vec<String>,
        always: bool,
        out: &mut Vec<Output>,
    ) {
        let mut claims = Vec::new();
        for space in spaces {
            let Some(p) = self.peers.get(&peer) else {
                return;
            };
            if !p.proven || !self.spaces.contains(&space) {
                continue;
            }
            let member = p.sessions.contains_key(&space) || replica.role(&space, peer).is_some();
            if !member {
                continue;
            }
            let proof = replica.proof(&space);
            if p.offered.get(&space) == Some(&proof) {
                continue;
            }
            claims.push(Claim {
                proof: proof
                    .iter()
                    .cloned()
                    .map(serde_bytes::ByteBuf::from)
                    .collect(),
                space: space.clone(),
            });
            if let Some(p) = self.peers.get_mut(&peer) {
                p.offered.insert(space, proof);
            }
        }
        if always || !claims.is_empty() {
            out.push(Output::Send(peer, Message::Offer { spaces: claims }));
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
        let (role, log_changed) = match replica.admit(space, peer, proof) {
            Ok(admitted) => admitted,
            Err(reason) => {
                tracing::info!(%peer, space, reason, "peer is not a member; no session");
                p.refused.insert(space.to_owned());
                // Our refusal ends the peer's side: name the space to it
                // again should it be admitted later, so it reopens.
                p.offered.remove(space);
                return self.tell_refusal(peer, space, reason, out);
            }
        };
        p.told.remove(space);
        if log_changed && let Ok(key) = log_key(space) {
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
        let begin = self.me < peer || p.early.remove(space);
        // A member we had not named the space to (a joiner whose join just
        // admitted it) hears of it now, before the exchange begins.
        self.reveal(replica, peer, vec![space.to_owned()], false, out);
        // One side begins, so an exchange does not run twice; the other
        // begins too if the peer's first message came before its session.
        if begin {
            reconcile(out, peer, space, replica.items(space));
        }
    }

    /// Starts offering a space: to proven peers that are members of it (or
    /// claimed it before we held it), a session where their claim holds.
    pub(super) fn offer(
        &mut self,
        replica: &mut impl Replica,
        space: String,
        out: &mut Vec<Output>,
    ) {
        if !self.spaces.insert(space.clone()) {
            return;
        }
        // Peers whose proof has not verified yet hear of it in our first
        // offer, which reads the log then.
        let peers: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.proven)
            .map(|(id, _)| *id)
            .collect();
        for peer in peers {
            self.admit(replica, peer, &space, out);
            self.reveal(replica, peer, vec![space.clone()], false, out);
        }
    }

    /// Stops offering a space this node left. Every trace of it in the
    /// peers' state goes (sessions, claims, refusals, what we named), so
    /// its frames are ignored like any unknown space's and a peer's offer
    /// of it opens nothing. There is no frame saying "left", so each peer
    /// that had a session for it, or heard of it from us, is disconnected:
    /// that ends its side of the session (instead of retrying against
    /// ours), and on reconnecting neither side names the space.
    pub(super) fn withdraw(&mut self, space: &str, out: &mut Vec<Output>) {
        if !self.spaces.remove(space) {
            return;
        }
        let mut close = Vec::new();
        for (id, p) in &mut self.peers {
            let in_session = p.sessions.remove(space).is_some();
            let named = p.offered.remove(space).is_some();
            p.claims.remove(space);
            p.refused.remove(space);
            p.told.remove(space);
            p.early.remove(space);
            if in_session || named {
                close.push(*id);
            }
        }
        for peer in close {
            self.close(peer, format!("this node left space {space}"), out);
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
        // Not a member by this log (revoked) is no reason to end our side:
        // peers that know refuse us (and we end those sessions then), and a
        // peer whose log re-admits us (a grant racing the revocation) must
        // still reach us with it.
        for peer in peers {
            let Some(in_session) = self
                .peers
                .get(&peer)
                .map(|p| p.sessions.contains_key(space))
            else {
                continue;
            };
            match replica.role(space, peer) {
                None if in_session => {
                    tracing::info!(%peer, space, "peer is no longer a member; ending its session");
                    // Tell it why: the log with its revocation, and a
                    // refusal in case the log's sync round does not finish
                    // before the session is gone, so its side ends too
                    // instead of retrying against one that is gone.
                    if let Ok(log) = log_key(space) {
                        self.generate(replica, peer, &log, false, out);
                    }
                    let claim = self
                        .peers
                        .get(&peer)
                        .and_then(|p| p.claims.get(space).cloned())
                        .unwrap_or_default();
                    let reason = match replica.admit(space, peer, &claim) {
                        Err(reason) => reason,
                        // Its stored claim still holds (the role lookup
                        // and the claim disagree only while a log syncs).
                        Ok((role, _)) => {
                            if let Some(s) = self.session(peer, space) {
                                s.role = Some(role);
                            }
                            continue;
                        }
                    };
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.sessions.remove(space);
                        p.refused.insert(space.to_owned());
                        // Named again should it become a member again.
                        p.offered.remove(space);
                    }
                    self.tell_refusal(peer, space, reason, out);
                }
                Some(role) if in_session => {
                    if let Some(s) = self.session(peer, space) {
                        let could_write = s.role.is_some_and(|r| r >= Role::Writer);
                        s.role = Some(role);
                        if could_write != (role >= Role::Writer) {
                            // What flows changed direction: documents settled
                            // one way start again (the peer learns from our
                            // next message whether we take its changes).
                            let again: Vec<_> = std::mem::take(&mut s.one_way)
                                .into_keys()
                                .map(|k| (k, false))
                                .collect();
                            s.enqueue(space, again);
                            s.release(peer, out);
                        }
                    }
                }
                // A claim that failed before may hold now (its cited
                // entries arrived): try the stored claim again.
                Some(_) | None => self.admit(replica, peer, space, out),
            }
            // A new member hears of the space, and our own proof may have
            // changed (our join just arrived in the log, or we re-joined):
            // let members look again.
            self.reveal(replica, peer, vec![space.to_owned()], false, out);
        }
    }
}

impl Engine {
    /// Tells a peer its claim to `space` was refused, once per reason.
    fn tell_refusal(&mut self, peer: NodeId, space: &str, reason: String, out: &mut Vec<Output>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.told.get(space) == Some(&reason) {
            return;
        }
        let mut reason = reason;
        if reason.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        p.told.insert(space.to_owned(), reason.clone());
        out.push(Output::Send(
            peer,
            Message::Refuse {
                space: space.to_owned(),
                reason,
            },
        ));
    }

    /// A peer refused our claim to `space`: it holds no session for it, so
    /// ours ends too (no retries against it) until it names the space to us
    /// again. A refusal of a claim we never made is ignored, within the
    /// peer's budget for such frames.
    pub(super) fn refused_by(
        &mut self,
        peer: NodeId,
        space: String,
        reason: String,
        out: &mut Vec<Output>,
    ) {
        let claimed = self
            .peers
            .get(&peer)
            .is_some_and(|p| p.offered.contains_key(&space));
        if !claimed {
            return self.ignore(peer, &space, "refusal", out);
        }
        if !self.spend(peer, Kind::Ignored, 1, out) {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // The peer's words go to logs and screens: no control or
        // direction-changing characters.
        let reason: String = reason
            .chars()
            .filter(|c| {
                !c.is_control()
                    && !matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        if p.sessions.remove(&space).is_some() {
            tracing::info!(%peer, space, reason, "the peer refused our membership; ending the session");
        }
        out.push(Output::Access {
            peer,
            space,
            refused: Some(reason),
        });
    }
}

/// The space's membership log document.
pub(super) fn log_key(space: &str) -> crate::Result<DocKey> {
    DocKey::new(
        space,
        crate::auth::SYSTEM_COLLECTION,
        crate::auth::MEMBERS_ID,
    )
}
