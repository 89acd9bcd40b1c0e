//! Spaces on the writer actor: the membership cache of every joined space,
//! the node's signing key, the membership checks on local writes and peers'
//! claims, and the published view of the spaces. A space's membership log is
//! the system document `(space, "_weft", "members")`; it syncs like any
//! document and is evaluated with the rules in [`crate::auth`] when it changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use tokio::sync::watch;

use super::docs::{Docs, is_log, now_ms};
use crate::auth::{Entry, Membership, Role, SpaceId, Standing};
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::key::DocKey;

mod commands;
mod view;

pub(crate) use commands::{InviteRequest, SpaceCommand};
pub(crate) use view::{PublishedSpace, SpacesView};
pub use view::{SpaceInfo, SpaceState};

pub use crate::auth::{MEMBERS_ID, SYSTEM_COLLECTION};

/// What the actor knows of a joined space.
pub(crate) struct Joined {
    name: String,
    default: bool,
    standing: Standing,
    /// The last refusal an admin (or our inviter) sent us, until a peer
    /// names the space to us again or we join afresh.
    refused: Option<String>,
}

impl Joined {
    fn new(name: String, default: bool) -> Self {
        Self {
            name,
            default,
            standing: Standing::default(),
            refused: None,
        }
    }

    /// A node's role now (see [`Standing::role_at`]).
    pub(super) fn role(&self, node: NodeId) -> Option<Role> {
        self.role_at(node, now_ms() / 1000)
    }

    pub(super) fn role_at(&self, node: NodeId, now: i64) -> Option<Role> {
        self.standing.role_at(node, now)
    }

    /// See [`Standing::refuses`].
    pub(super) fn refuses(&self, node: NodeId, key: &DocKey, now: i64) -> Option<bool> {
        self.standing.refuses(node, is_log(key), now)
    }
}

/// The spaces this device is in.
pub(crate) struct Spaces {
    joined: BTreeMap<String, Joined>,
    /// The node key, for membership entries and invites.
    signing: SigningKey,
    /// Where the public view is published.
    view: watch::Sender<Arc<SpacesView>>,
    /// Whether the published view may be out of date.
    stale: bool,
}

pub(super) fn members_key(space: &str) -> Result<DocKey> {
    DocKey::new(space, SYSTEM_COLLECTION, MEMBERS_ID)
}

fn space_id(space: &str) -> Result<SpaceId> {
    space.parse().map_err(Error::Auth)
}

impl Spaces {
    /// What the actor starts with: the spaces table.
    pub(super) fn new(
        rows: Vec<crate::store::JoinedSpace>,
        signing: SigningKey,
        view: watch::Sender<Arc<SpacesView>>,
    ) -> Self {
        let joined = rows
            .into_iter()
            .map(|s| {
                let mut joined = Joined::new(s.name, s.is_default);
                joined.refused = s.refused;
                (s.id, joined)
            })
            .collect();
        Self {
            joined,
            signing,
            view,
            stale: true,
        }
    }

    pub(super) fn me(&self) -> NodeId {
        NodeId::from_bytes(self.signing.verifying_key().to_bytes())
    }

    pub(super) fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub(super) fn contains(&self, space: &str) -> bool {
        self.joined.contains_key(space)
    }

    pub(super) fn get(&self, space: &str) -> Option<&Joined> {
        self.joined.get(space)
    }

    /// Tests: the first joined space.
    #[cfg(test)]
    pub(super) fn first_id(&self) -> Option<String> {
        self.joined.keys().next().cloned()
    }

    /// A node's role in a space by its evaluated membership, if any.
    pub(super) fn role(&self, space: &str, node: NodeId) -> Option<Role> {
        self.joined.get(space)?.role(node)
    }

    /// Takes note of the membership logs the documents staged or dropped
    /// since the last look: their evaluations are out of date.
    pub(super) fn absorb(&mut self, docs: &mut Docs) {
        let (changed, dropped) = docs.take_log_news();
        for key in changed {
            if let Some(j) = self.joined.get_mut(key.space()) {
                j.standing.log_changed();
                self.stale = true;
            }
        }
        for key in dropped {
            if let Some(j) = self.joined.get_mut(key.space()) {
                j.standing.log_dropped();
                self.stale = true;
            }
        }
    }

    /// The evaluated membership of a joined space.
    pub(super) fn membership(&mut self, docs: &mut Docs, space: &str) -> Result<&Membership> {
        self.absorb(docs);
        let me = self.me();
        let joined = self
            .joined
            .get_mut(space)
            .ok_or_else(|| Error::UnknownSpace(space.to_owned()))?;
        if joined.standing.membership.is_none() {
            let key = members_key(space)?;
            docs.load(&key)?;
            let id = space_id(space)?;
            // The log comes from peers: reading it is guarded.
            let entries: Vec<Entry> = docs
                .guarded(&key, |d| d.loaded(&key).log_entries())?
                .iter()
                .filter_map(|bytes| Entry::decode(bytes).ok())
                .collect();
            joined.standing.evaluate(id, &entries, me);
        }
        Ok(joined
            .standing
            .membership
            .as_ref()
            .expect("evaluated above"))
    }

    /// Fails unless this node holds at least `role` in `space`.
    pub(super) fn require(&mut self, docs: &mut Docs, space: &str, role: Role) -> Result<()> {
        let me = self.me();
        let membership = self.membership(docs, space)?;
        match membership.role(me) {
            Some(r) if r >= role => Ok(()),
            Some(r) => Err(Error::Forbidden(format!(
                "this node is a {r:?} in space {space}; that needs {role:?} (ask an admin)"
            ))),
            None if membership.members().is_empty() => Err(Error::Forbidden(format!(
                "the membership log of space {space} has not arrived yet; connect to a member and wait for sync"
            ))),
            None => Err(Error::Forbidden(format!(
                "this node is not a member of space {space}"
            ))),
        }
    }

    /// This node's own entries of a space's log (loaded in the group), as
    /// proof for peers.
    pub(super) fn proof(&self, docs: &mut Docs, space: &str) -> Vec<Vec<u8>> {
        let Ok(key) = members_key(space) else {
            return Vec::new();
        };
        match docs.dirty_doc(&key) {
            Some(doc) => crate::auth::own_entries(&doc.log_entries(), self.me()),
            None => Vec::new(),
        }
    }

    /// Whether `node` is a member once its `proof` is added to the log; if
    /// the proof was needed, it is added to the log document (`true` in the
    /// result). If not, why not, in words for the peer's user.
    pub(super) fn admit(
        &mut self,
        docs: &mut Docs,
        space: &str,
        node: NodeId,
        proof: &[Vec<u8>],
    ) -> std::result::Result<(Role, bool), String> {
        let unheld = || "this peer does not hold the space".to_string();
        let joined = self.joined.get_mut(space).ok_or_else(unheld)?;
        let key = members_key(space).map_err(|_| unheld())?;
        let id: SpaceId = space.parse().map_err(|_| "not a space id".to_string())?;
        let doc = docs.dirty_doc(&key).ok_or_else(unheld)?;
        let now = now_ms() / 1000;
        let admitted = joined
            .standing
            .admit(id, || doc.log_entries(), node, proof, now)?;
        let Some(membership) = admitted.membership else {
            return Ok((admitted.role, false));
        };
        let changed = match doc.add_log_entries(&admitted.entries, now) {
            Ok(committed) => committed.is_some(),
            // Not stored, not admitted (the peer may try again later).
            Err(e) => return Err(format!("the membership log could not take the claim: {e}")),
        };
        // Admitted only on what the log now really holds.
        let stored = doc.log_entries();
        if !admitted
            .entries
            .iter()
            .all(|(_, bytes)| stored.contains(bytes))
        {
            return Err("the membership log could not take the claim".into());
        }
        // The next claim in the same round is judged with this one counted.
        if changed {
            joined.standing.membership = Some(membership);
        }
        Ok((admitted.role, changed))
    }

    /// A peer admitted us to a space (named it to us) or refused us. Only
    /// an admin's refusal (or our inviter's, before the log arrives) counts
    /// for this device's state: another member's log may simply be behind.
    pub(super) fn access(
        &mut self,
        docs: &mut Docs,
        peer: NodeId,
        space: &str,
        refused: Option<String>,
    ) {
        if self.membership(docs, space).is_err() {
            return;
        }
        let Some(j) = self.joined.get_mut(space) else {
            return;
        };
        let before = j.refused.clone();
        match refused {
            // Only an admin (or our inviter) naming the space clears a
            // refusal: anyone who knows the space id can name it.
            None if j.role(peer) == Some(Role::Admin) => j.refused = None,
            None => {}
            Some(reason) if j.role(peer) == Some(Role::Admin) => {
                // The peer's words, shown to people: no control characters.
                let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
                if before.as_ref() != Some(&reason) {
                    tracing::warn!(%peer, space, reason, "an admin refused this node's membership");
                }
                j.refused = Some(reason);
            }
            Some(reason) => {
                tracing::debug!(%peer, space, reason, "a member that is not an admin refused us");
            }
        }
        if j.refused != before {
            if let Err(e) = docs.store().set_space_refused(space, j.refused.as_deref()) {
                tracing::warn!(space, error = %e, "recording the refusal failed; it holds until a restart");
            }
            self.stale = true;
        }
    }

    /// Drops stored sync states of peers that are no longer members of
    /// `space` (a revocation): they would only be read again should the peer
    /// return, and then they would be stale.
    pub(super) fn forget_non_members(&mut self, docs: &mut Docs, space: &str) {
        // A log that changed is evaluated again first: unevaluated, it names
        // no one, and every member's states would go.
        if let Err(e) = self.membership(docs, space) {
            return tracing::debug!(%space, error = %e, "membership unknown; sync states kept");
        }
        let Some(joined) = self.joined.get(space) else {
            return;
        };
        let peers = match docs.store().sync_state_peers(space) {
            Ok(peers) => peers,
            Err(e) => return tracing::warn!(error = %e, "listing sync states failed"),
        };
        for peer in peers {
            if joined.role(peer).is_none()
                && let Err(e) = docs.store().delete_sync_states(peer, space)
            {
                tracing::warn!(%peer, error = %e, "deleting sync states failed");
            }
        }
    }

    /// The addresses of the inviters of joins still waiting (the log does
    /// not name this node yet), to keep dialing: a join made while the
    /// inviter was away, or before a restart, completes once it is reachable.
    pub(super) fn waiting_inviters(&mut self, docs: &mut Docs) -> Vec<crate::net::Multiaddr> {
        let ids: Vec<String> = self.joined.keys().cloned().collect();
        let mut addrs = Vec::new();
        for id in ids {
            if self.membership(docs, &id).is_err() {
                continue;
            }
            let j = &self.joined[&id];
            // Only while the inviter may still admit us (its provisional
            // trust lasts that long), and only the inviter's own addresses.
            if let (None, Some((inviter, _)), Some(end)) =
                (&j.refused, j.standing.inviter, j.standing.trust_ends())
                && now_ms() / 1000 < end
            {
                addrs.extend(inviter_addrs(&j.standing.inviter_addrs, inviter));
            }
        }
        addrs
    }

    /// Publishes the public view if it may have changed: after the group
    /// that changed it is committed, before anyone is told.
    pub(super) fn publish(&mut self, docs: &mut Docs) {
        self.absorb(docs);
        if !self.stale {
            return;
        }
        self.stale = false;
        let old = self.view.borrow().clone();
        let ids: Vec<String> = self.joined.keys().cloned().collect();
        let mut out = Vec::with_capacity(ids.len());
        let me = self.me();
        for id in ids {
            let membership = match self.membership(docs, &id) {
                Ok(m) => m.clone(),
                Err(e) => {
                    tracing::warn!(space = id, error = %e, "evaluating a membership log failed");
                    // Keep what was published, and look again next time.
                    self.stale = true;
                    out.extend(old.iter().find(|s| s.info.id == id).cloned());
                    continue;
                }
            };
            let joined = &self.joined[&id];
            let role = membership.role(me);
            let state = match (&joined.refused, role) {
                (Some(reason), _) => SpaceState::Refused(reason.clone()),
                (None, Some(role)) => SpaceState::Member(role),
                (None, None) if membership.revoked(me) => {
                    SpaceState::Refused("revoked by an admin".into())
                }
                // Not named yet (the log may still be arriving): waiting,
                // until the inviter's trust ends (applied when read).
                (None, None) => SpaceState::Pending,
            };
            out.push(PublishedSpace {
                trust_ends: joined.standing.trust_ends(),
                info: SpaceInfo {
                    name: membership
                        .name()
                        .map_or_else(|| joined.name.clone(), str::to_owned),
                    role,
                    state,
                    members: membership.members().clone(),
                    default: joined.default,
                    id,
                },
            });
        }
        self.view.send_if_modified(|v| {
            if **v == out {
                return false;
            }
            *v = Arc::new(out);
            true
        });
    }
}

/// The addresses among `addrs` that name `inviter` (a token's addresses
/// come from whoever made it: only the inviter's own are dialed).
pub(super) fn inviter_addrs(addrs: &[String], inviter: NodeId) -> Vec<crate::net::Multiaddr> {
    let suffix = format!("/p2p/{inviter}");
    addrs
        .iter()
        .filter(|a| a.ends_with(&suffix))
        .filter_map(|a| a.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_inviters_own_addresses_are_dialed() {
        let inviter = NodeId::from_bytes(
            ed25519_dalek::SigningKey::from_bytes(&[1; 32])
                .verifying_key()
                .to_bytes(),
        );
        let other = NodeId::from_bytes(
            ed25519_dalek::SigningKey::from_bytes(&[2; 32])
                .verifying_key()
                .to_bytes(),
        );
        let addrs = vec![
            format!("/ip4/127.0.0.1/tcp/1/p2p/{inviter}"),
            format!("/ip4/10.0.0.9/tcp/2/p2p/{other}"),
            "/ip4/10.0.0.9/tcp/3".to_string(),
            format!("not an address/p2p/{inviter}"),
        ];
        let kept: Vec<String> = inviter_addrs(&addrs, inviter)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(kept, [addrs[0].clone()]);
    }
}
