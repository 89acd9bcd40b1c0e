//! Spaces on the writer actor: creating, joining, inviting and revoking,
//! and the membership checks on local writes. A space's membership log is
//! the system document `(space, "_weft", "members")`; it syncs like any
//! document and is evaluated with [`Membership::evaluate`] when it changes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::events::Origin;
use super::writer::{Actor, Reply, now_ms};
pub(super) use crate::auth::own_entries;
use crate::auth::{
    Action, Entry, Invite, Membership, Role, Signer, SpaceId, SpaceKey, Verified, refusal,
};
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::Input;

pub use crate::auth::{MEMBERS_ID, SYSTEM_COLLECTION};

/// A space this device is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpaceInfo {
    /// The space id (its public key, base58).
    pub id: String,
    /// Its name.
    pub name: String,
    /// This device's role, once the membership log says so.
    pub role: Option<Role>,
    /// Where this device stands: admitted with a role, refused, or waiting.
    pub state: SpaceState,
    /// Members and their roles.
    pub members: BTreeMap<NodeId, Role>,
    /// Whether it is the device's default (personal) space.
    pub default: bool,
}

/// Where this device stands in a space it joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpaceState {
    /// The membership log does not name this device yet: the join waits
    /// for its inviter (or any member) to admit it and send the log.
    Pending,
    /// An admin (or the inviter) refused this device, or the log revokes
    /// it; the reason is theirs. Joining again with a fresh invite retries.
    Refused(String),
    /// A member with this role.
    Member(Role),
}

impl std::fmt::Display for SpaceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpaceState::Pending => f.write_str("pending"),
            SpaceState::Refused(reason) => write!(f, "refused: {reason}"),
            SpaceState::Member(role) => write!(f, "{}", format!("{role:?}").to_lowercase()),
        }
    }
}

/// What the actor knows of a joined space.
pub(crate) struct Joined {
    name: String,
    default: bool,
    /// `None` until evaluated, and again after the log changes.
    membership: Option<Membership>,
    /// The last evaluation, kept across log changes so the next one only
    /// evaluates the new entries ([`Membership::extended`]).
    previous: Option<Membership>,
    /// The log's entries whose signatures verified.
    verified: Verified,
    /// The node whose invite this device used last, and when (unix seconds
    /// of our `Join`): before the log's genesis arrives, it is trusted to
    /// send the log (see [`Joined::provisional`]).
    inviter: Option<(NodeId, i64)>,
    /// Where that inviter listened when it issued the invite: kept dialed
    /// while the join waits (until the log names us).
    inviter_addrs: Vec<String>,
    /// The last refusal an admin (or our inviter) sent us, until a peer
    /// names the space to us again or we join afresh.
    refused: Option<String>,
}

/// How long after joining a space its inviter is trusted, unverified, to
/// send the membership log. Joining dials the inviter at once and the log is
/// the first document synced, so minutes are plenty; afterwards an inviter
/// the log never vouched for gets no session, and joining again with a
/// fresh invite starts a new window.
pub const PROVISIONAL_TRUST_SECS: i64 = 600;

impl Joined {
    fn new(name: String, default: bool) -> Self {
        Self {
            name,
            default,
            membership: None,
            previous: None,
            verified: Verified::new(),
            inviter: None,
            inviter_addrs: Vec::new(),
            refused: None,
        }
    }

    /// A node's role by the evaluated log, or admin for the provisionally
    /// trusted inviter (whose session may then carry only the log: see
    /// [`Joined::refuses`]).
    pub(super) fn role(&self, node: NodeId) -> Option<Role> {
        self.role_at(node, now_ms() / 1000)
    }

    pub(super) fn role_at(&self, node: NodeId, now: i64) -> Option<Role> {
        let m = self.membership.as_ref()?;
        m.role(node)
            .or_else(|| self.provisional(node, now).then_some(Role::Admin))
    }

    /// Whether `node` is our inviter, trusted only provisionally: the log's
    /// genesis has not arrived and the join is less than
    /// [`PROVISIONAL_TRUST_SECS`] old.
    fn provisional(&self, node: NodeId, now: i64) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.members().is_empty())
            && self.inviter.is_some_and(|(inviter, since)| {
                inviter == node && now.saturating_sub(since) < PROVISIONAL_TRUST_SECS
            })
    }

    /// Whether a document from `node` must be refused although its session
    /// let it through: a node the evaluated log does not name may send only
    /// the log, and only while it is our provisionally trusted inviter.
    /// `None` while the membership is not evaluated.
    pub(super) fn refuses(&self, node: NodeId, key: &DocKey, now: i64) -> Option<bool> {
        let m = self.membership.as_ref()?;
        if m.role(node).is_some() {
            return Some(false);
        }
        let log = key.collection() == SYSTEM_COLLECTION && key.id() == MEMBERS_ID;
        Some(!(log && self.provisional(node, now)))
    }
}

/// Whether `node` is a member once its `proof` is added to the log; if the
/// proof was needed, it is added to the log document (`true` in the result).
/// If not, why not, in words for the peer's user.
pub(super) fn admit(
    joined: &mut Joined,
    space: &str,
    doc: &mut crate::doc::Document,
    node: NodeId,
    proof: &[Vec<u8>],
) -> std::result::Result<(Role, bool), String> {
    if let Some(role) = joined.role(node) {
        return Ok((role, false));
    }
    let id: SpaceId = space.parse().map_err(|_| "not a space id".to_string())?;
    let mut offered: Vec<Entry> = proof.iter().filter_map(|b| Entry::decode(b).ok()).collect();
    // Joins reusing an invite the log credits to another node count for
    // nothing (the claimer's own old one, or one it carries for another).
    let before = offered.len();
    if let Some(m) = joined.membership.as_ref() {
        offered.retain(|e| !m.reuses_invite(e));
    }
    let reused = offered.len() < before;
    // Usually the proof only adds to the evaluated log: that costs the
    // proof's entries, not a walk of the whole log.
    let extended = joined
        .membership
        .as_ref()
        .and_then(|m| m.extended(id, &offered, &mut joined.verified));
    let membership = match extended {
        Some(m) => m,
        None => {
            let mut entries: Vec<Entry> = doc
                .log_entries()
                .iter()
                .filter_map(|b| Entry::decode(b).ok())
                .collect();
            entries.extend(offered.iter().cloned());
            Membership::evaluate_with(id, &entries, &mut joined.verified)
        }
    };
    let Some(role) = membership.role(node) else {
        if reused && !membership.revoked(node) {
            return Err("invite already used".into());
        }
        return Err(refusal(&membership, node, &offered));
    };
    // Keep only what counted: junk riding along with a valid join is dropped.
    let rejected: Vec<[u8; 32]> = membership.rejected().iter().map(|r| r.hash).collect();
    let encoded: Vec<([u8; 32], Vec<u8>)> = offered
        .iter()
        .map(|e| (e.hash(), e))
        .filter(|(h, _)| !rejected.contains(h))
        .map(|(h, e)| (h, e.encode()))
        .collect();
    let changed = match doc.add_log_entries(&encoded, now_ms() / 1000) {
        Ok(committed) => committed.is_some(),
        // Not stored, not admitted (the peer may try again later).
        Err(e) => return Err(format!("the membership log could not take the claim: {e}")),
    };
    // Admitted only on what the log now really holds.
    let stored = doc.log_entries();
    if !encoded.iter().all(|(_, bytes)| stored.contains(bytes)) {
        return Err("the membership log could not take the claim".into());
    }
    // The next claim in the same round is judged with this one counted.
    if changed {
        joined.membership = Some(membership);
    }
    Ok((role, changed))
}

/// Space operations, answered by the writer actor.
pub(crate) enum SpaceCommand {
    Create(String, bool, Reply<SpaceId>),
    List(Reply<Vec<SpaceInfo>>),
    Invite {
        space: String,
        role: Role,
        expires: i64,
        node: Option<NodeId>,
        addrs: Vec<String>,
        reply: Reply<String>,
    },
    Join(String, Reply<(SpaceId, Vec<String>)>),
    Revoke(String, NodeId, Reply<()>),
}

pub(super) fn members_key(space: &str) -> Result<DocKey> {
    DocKey::new(space, SYSTEM_COLLECTION, MEMBERS_ID)
}

impl Actor {
    /// What the actor starts with: the spaces table.
    pub(super) fn joined(rows: Vec<crate::store::JoinedSpace>) -> BTreeMap<String, Joined> {
        rows.into_iter()
            .map(|s| {
                let mut joined = Joined::new(s.name, s.is_default);
                joined.refused = s.refused;
                (s.id, joined)
            })
            .collect()
    }

    /// Runs a space command; its writes are committed before it answers.
    pub(super) async fn space_command(&mut self, cmd: SpaceCommand) {
        match cmd {
            SpaceCommand::Create(name, default, reply) => {
                let r = self.create_space(&name, default).await;
                self.answer(reply, r).await;
            }
            SpaceCommand::List(reply) => {
                let r = self.list_spaces().await;
                self.answer(reply, r).await;
            }
            SpaceCommand::Invite {
                space,
                role,
                expires,
                node,
                addrs,
                reply,
            } => {
                let r = self.invite(&space, role, expires, node, addrs).await;
                self.answer(reply, r).await;
            }
            SpaceCommand::Join(token, reply) => {
                let r = self.join(&token).await;
                self.answer(reply, r).await;
            }
            SpaceCommand::Revoke(space, node, reply) => {
                let r = self.revoke(&space, node).await;
                self.answer(reply, r).await;
            }
        }
    }

    async fn answer<T>(&mut self, reply: Reply<T>, result: Result<T>) {
        // The command's entries were in that commit: report its failure.
        let result = match result {
            Ok(_) if !self.flush().await => Err(Error::Store(
                crate::store::StoreError::WriteFailed("storing the membership log failed".into()),
            )),
            r => r,
        };
        let _ = reply.send(result);
    }

    async fn revoke(&mut self, space: &str, node: NodeId) -> Result<()> {
        self.require(space, Role::Admin).await?;
        let heads = self.membership(space).await?.heads();
        let entry = Entry::sign(
            &self.signing,
            space_id(space)?,
            Action::Revoke { node },
            &heads,
            now_ms() / 1000,
        );
        self.add_entries(space, &[entry]).await
    }

    async fn create_space(&mut self, name: &str, default: bool) -> Result<SpaceId> {
        let key = SpaceKey::generate().map_err(Error::Auth)?;
        let id = key.id();
        let genesis = Entry::create(&key, self.me(), name, now_ms() / 1000);
        // The space key has signed the only genesis there will be; dropping
        // it here means no second genesis can ever exist.
        drop(key);
        // The log first, so the space is offered with its proof.
        self.add_entries(&id.to_string(), &[genesis]).await?;
        self.record_space(&id.to_string(), name, default).await?;
        Ok(id)
    }

    async fn record_space(&mut self, id: &str, name: &str, default: bool) -> Result<()> {
        self.store.add_joined_space(id, name, default, now_ms())?;
        // Joining again starts over: an old refusal no longer stands.
        self.store.set_space_refused(id, None)?;
        self.spaces
            .insert(id.to_owned(), Joined::new(name.to_owned(), default));
        self.sync.standing.send_modify(|n| *n += 1);
        self.drive(Input::Offer(id.to_owned())).await;
        Ok(())
    }

    async fn invite(
        &mut self,
        space: &str,
        role: Role,
        expires: i64,
        node: Option<NodeId>,
        addrs: Vec<String>,
    ) -> Result<String> {
        self.require(space, Role::Admin).await?;
        let membership = self.membership(space).await?;
        let heads = membership.heads();
        let name = membership.name().unwrap_or_default().to_owned();
        let invite = Invite::issue(
            &self.signing,
            space_id(space)?,
            &name,
            role,
            expires,
            addrs,
            node,
            &heads,
        )
        .map_err(Error::Auth)?;
        Ok(invite.to_token())
    }

    async fn join(&mut self, token: &str) -> Result<(SpaceId, Vec<String>)> {
        let invite = Invite::from_token(token).map_err(Error::Auth)?;
        invite
            .check(self.me(), now_ms() / 1000)
            .map_err(Error::Auth)?;
        let id = invite.space();
        let entry = Entry::join(&self.signing, &invite, now_ms() / 1000).map_err(Error::Auth)?;
        self.add_entries(&id.to_string(), &[entry]).await?;
        self.record_space(&id.to_string(), invite.name(), false)
            .await?;
        let addrs = inviter_addrs(invite.addrs(), invite.inviter())
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok((id, addrs))
    }

    async fn list_spaces(&mut self) -> Result<Vec<SpaceInfo>> {
        let ids: Vec<String> = self.spaces.keys().cloned().collect();
        let mut out = Vec::with_capacity(ids.len());
        let me = self.me();
        for id in ids {
            let membership = self.membership(&id).await?.clone();
            let joined = &self.spaces[&id];
            let role = membership.role(me);
            let state = match (&joined.refused, role) {
                (Some(reason), _) => SpaceState::Refused(reason.clone()),
                (None, Some(role)) => SpaceState::Member(role),
                (None, None) if membership.revoked(me) => {
                    SpaceState::Refused("revoked by an admin".into())
                }
                // The inviter's provisional trust is over and no member
                // vouched for us: nothing will admit this join any more.
                (None, None)
                    if membership.members().is_empty()
                        && joined.inviter.is_some_and(|(_, since)| {
                            (now_ms() / 1000).saturating_sub(since) >= PROVISIONAL_TRUST_SECS
                        }) =>
                {
                    SpaceState::Refused(
                        "the inviter did not admit this device within 10 minutes of joining; join again with a fresh invite"
                            .into(),
                    )
                }
                // Not named yet (the log may still be arriving): waiting.
                (None, None) => SpaceState::Pending,
            };
            out.push(SpaceInfo {
                name: membership
                    .name()
                    .map_or_else(|| joined.name.clone(), str::to_owned),
                role,
                state,
                members: membership.members().clone(),
                default: joined.default,
                id,
            });
        }
        Ok(out)
    }

    /// Appends entries to a space's membership log (one local write).
    async fn add_entries(&mut self, space: &str, entries: &[Entry]) -> Result<()> {
        let key = members_key(space)?;
        self.load(&key).await?;
        let encoded: Vec<([u8; 32], Vec<u8>)> =
            entries.iter().map(|e| (e.hash(), e.encode())).collect();
        let added = self.guarded(&key, |a| {
            let cached = a.dirty.get_mut(&key).expect("loaded above");
            cached.doc.add_log_entries(&encoded, now_ms() / 1000)
        })??;
        if added.is_some() {
            self.stage(&key, None, Origin::Local)?;
        }
        Ok(())
    }

    /// The evaluated membership of a joined space.
    pub(super) async fn membership(&mut self, space: &str) -> Result<&Membership> {
        let joined = self
            .spaces
            .get(space)
            .ok_or_else(|| Error::UnknownSpace(space.to_owned()))?;
        if joined.membership.is_none() {
            let key = members_key(space)?;
            self.load(&key).await?;
            let id = space_id(space)?;
            // The log comes from peers: reading it is guarded.
            let entries: Vec<Entry> = self
                .guarded(&key, |a| {
                    a.dirty
                        .get_mut(&key)
                        .expect("loaded above")
                        .doc
                        .log_entries()
                })?
                .iter()
                .filter_map(|bytes| Entry::decode(bytes).ok())
                .collect();
            let me = self.me();
            let j = self.spaces.get_mut(space).expect("looked up above");
            // Entries verified before are not verified again, and a log that
            // only grew is evaluated from where it was.
            let membership = match j
                .previous
                .as_ref()
                .and_then(|m| m.extended(id, &entries, &mut j.verified))
            {
                Some(m) => m,
                None => Membership::evaluate_with(id, &entries, &mut j.verified),
            };
            // Until the genesis arrives, the inviter named in our latest
            // join is the one peer we sync the space's log with.
            let latest = entries
                .iter()
                .filter_map(|e| match (e.signer(), e.action()) {
                    (Signer::Node(n), Action::Join { invite, .. })
                        if n == me && invite.space() == id =>
                    {
                        Some((e.time(), invite))
                    }
                    _ => None,
                })
                .max_by_key(|(time, _)| *time);
            let inviter = latest.map(|(time, invite)| (invite.inviter(), time));
            let addrs = latest
                .map(|(_, invite)| invite.addrs().to_vec())
                .unwrap_or_default();
            if let Some(j) = self.spaces.get_mut(space) {
                j.membership = Some(membership);
                j.inviter = inviter;
                j.inviter_addrs = addrs;
            }
        }
        Ok(self.spaces[space]
            .membership
            .as_ref()
            .expect("evaluated above"))
    }

    /// Keeps dialing the inviters of joins still waiting (the log does not
    /// name this node yet): a join made while the inviter was away, or
    /// before a restart, completes once it is reachable.
    pub(super) async fn keep_inviters(&mut self) {
        let Some(net) = self.sync.net.clone() else {
            return;
        };
        let ids: Vec<String> = self.spaces.keys().cloned().collect();
        let mut addrs = Vec::new();
        for id in ids {
            let Ok(m) = self.membership(&id).await else {
                continue;
            };
            let waiting = m.members().is_empty();
            let j = &self.spaces[&id];
            // Only while the inviter may still admit us (its provisional
            // trust lasts that long), and only the inviter's own addresses.
            if let (true, None, Some((inviter, since))) = (waiting, &j.refused, j.inviter)
                && (now_ms() / 1000).saturating_sub(since) < PROVISIONAL_TRUST_SECS
            {
                addrs.extend(inviter_addrs(&j.inviter_addrs, inviter));
            }
        }
        if !addrs.is_empty() {
            tracing::info!(
                addresses = addrs.len(),
                "dialing the inviters of joins still waiting"
            );
            net.keep(addrs);
        }
    }

    /// Forgets an evaluated membership after its log changed.
    pub(super) fn log_changed(&mut self, key: &DocKey) {
        if key.collection() == SYSTEM_COLLECTION
            && key.id() == MEMBERS_ID
            && let Some(j) = self.spaces.get_mut(key.space())
        {
            if let Some(m) = j.membership.take() {
                j.previous = Some(m);
            }
            self.sync.standing.send_modify(|n| *n += 1);
        }
    }

    /// A peer admitted us to a space (named it to us) or refused us. Only
    /// an admin's refusal (or our inviter's, before the log arrives) counts
    /// for this device's state: another member's log may simply be behind.
    pub(super) async fn access(&mut self, peer: NodeId, space: &str, refused: Option<String>) {
        if self.membership(space).await.is_err() {
            return;
        }
        let Some(j) = self.spaces.get_mut(space) else {
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
        let now = self.spaces[space].refused.clone();
        if now != before {
            if let Err(e) = self.store.set_space_refused(space, now.as_deref()) {
                tracing::warn!(space, error = %e, "recording the refusal failed; it holds until a restart");
            }
            self.sync.standing.send_modify(|n| *n += 1);
        }
    }

    /// Forgets every evaluation of a log document dropped from memory
    /// unstored (a failed commit, a quarantine): they may count entries the
    /// store does not hold, and an extension of them would keep counting them.
    pub(super) fn log_dropped(&mut self, key: &DocKey) {
        if key.collection() == SYSTEM_COLLECTION
            && key.id() == MEMBERS_ID
            && let Some(j) = self.spaces.get_mut(key.space())
        {
            j.membership = None;
            j.previous = None;
        }
    }

    /// Fails unless this node holds at least `role` in `space`.
    pub(super) async fn require(&mut self, space: &str, role: Role) -> Result<()> {
        let me = self.me();
        let membership = self.membership(space).await?;
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

    pub(super) fn me(&self) -> NodeId {
        NodeId::from_bytes(self.signing.verifying_key().to_bytes())
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

fn space_id(space: &str) -> Result<SpaceId> {
    space.parse().map_err(Error::Auth)
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
