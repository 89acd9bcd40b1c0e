//! Creating, joining, inviting and revoking: the space operations that
//! append to a membership log. Each is one local write of the log document;
//! the dispatcher commits it before answering.

use super::{Joined, Spaces, members_key, space_id};
use crate::auth::{Action, Entry, Invite, Role, SpaceId, SpaceKey};
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::node::catalog::Invitation;
use crate::node::docs::{Docs, now_ms};
use crate::node::events::Origin;
use crate::node::writer::Reply;

/// What an invite grants, to whom, and where the inviter listens.
pub(crate) struct InviteRequest {
    pub space: String,
    pub role: Role,
    /// Unix seconds.
    pub expires: i64,
    pub node: Option<NodeId>,
    pub addrs: Vec<String>,
}

/// Space operations, answered by the writer actor.
pub(crate) enum SpaceCommand {
    Create {
        name: String,
        default: bool,
        reply: Reply<SpaceId>,
    },
    Invite {
        request: InviteRequest,
        reply: Reply<Invitation>,
    },
    Join {
        token: String,
        reply: Reply<(SpaceId, Vec<String>)>,
    },
    Revoke {
        space: String,
        node: NodeId,
        reply: Reply<()>,
    },
    Leave {
        space: String,
        reply: Reply<u64>,
    },
}

impl Spaces {
    /// Whether this device may leave `space`: a joined space other than
    /// its default (personal) one, which every device keeps.
    pub(crate) fn check_leave(&self, space: &str) -> Result<()> {
        match self.joined.get(space) {
            None => Err(Error::UnknownSpace(space.to_owned())),
            Some(j) if j.default => Err(Error::Forbidden(format!(
                "space {space} is this device's default (personal) space, which cannot be left"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Forgets a space this device left (its rows are gone).
    pub(crate) fn forget(&mut self, space: &str) {
        self.joined.remove(space);
        self.stale = true;
    }

    pub(crate) fn revoke(&mut self, docs: &mut Docs, space: &str, node: NodeId) -> Result<()> {
        self.require(docs, space, Role::Admin)?;
        let heads = self.membership(docs, space)?.heads();
        let entry = Entry::sign(
            &self.signing,
            space_id(space)?,
            Action::Revoke { node },
            &heads,
            now_ms() / 1000,
        );
        self.add_entries(docs, space, &[entry])
    }

    /// A new space with this node as its admin; the caller offers it to peers.
    pub(crate) fn create(&mut self, docs: &mut Docs, name: &str, default: bool) -> Result<SpaceId> {
        // No randomness is the machine's failure, not an invite problem.
        let key = SpaceKey::generate()
            .map_err(|e| Error::Identity(crate::identity::IdentityError::Random(e.to_string())))?;
        let id = key.id();
        let genesis = Entry::create(&key, self.me(), name, now_ms() / 1000);
        // The space key has signed the only genesis there will be; dropping
        // it here means no second genesis can ever exist.
        drop(key);
        // The log first, so the space is offered with its proof.
        self.add_entries(docs, &id.to_string(), &[genesis])?;
        self.record(docs, &id.to_string(), name, default)?;
        Ok(id)
    }

    fn record(&mut self, docs: &mut Docs, id: &str, name: &str, default: bool) -> Result<()> {
        docs.store().add_joined_space(id, name, default, now_ms())?;
        // Joining again starts over: an old refusal no longer stands.
        docs.store().set_space_refused(id, None)?;
        self.joined
            .insert(id.to_owned(), Joined::new(name.to_owned(), default));
        self.stale = true;
        Ok(())
    }

    pub(crate) fn invite(&mut self, docs: &mut Docs, request: InviteRequest) -> Result<Invitation> {
        let InviteRequest {
            space,
            role,
            expires,
            node,
            addrs,
        } = request;
        self.require(docs, &space, Role::Admin)?;
        let membership = self.membership(docs, &space)?;
        let heads = membership.heads();
        let name = membership.name().unwrap_or_default().to_owned();
        let invite = Invite::issue(
            &self.signing,
            space_id(&space)?,
            &name,
            role,
            expires,
            addrs,
            node,
            &heads,
        )
        .map_err(Error::Auth)?;
        Ok(Invitation::of(&invite))
    }

    /// Joins with an invite token; returns the space and the inviter's
    /// addresses to dial. The caller offers the space to peers.
    pub(crate) fn join(&mut self, docs: &mut Docs, token: &str) -> Result<(SpaceId, Vec<String>)> {
        let invite = Invite::from_token(token).map_err(Error::Auth)?;
        invite
            .check(self.me(), now_ms() / 1000)
            .map_err(Error::Auth)?;
        let id = invite.space();
        let entry = Entry::join(&self.signing, &invite, now_ms() / 1000).map_err(Error::Auth)?;
        self.add_entries(docs, &id.to_string(), &[entry])?;
        self.record(docs, &id.to_string(), invite.name(), false)?;
        let addrs = super::inviter_addrs(invite.addrs(), invite.inviter())
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok((id, addrs))
    }

    /// Appends entries to a space's membership log (one local write).
    fn add_entries(&mut self, docs: &mut Docs, space: &str, entries: &[Entry]) -> Result<()> {
        let key = members_key(space)?;
        docs.load(&key)?;
        let encoded: Vec<([u8; 32], Vec<u8>)> =
            entries.iter().map(|e| (e.hash(), e.encode())).collect();
        let added = docs.guarded(&key, |d| {
            d.loaded(&key).add_log_entries(&encoded, now_ms() / 1000)
        })??;
        if added.is_some() {
            docs.stage(&key, None, Origin::Local)?;
        }
        Ok(())
    }
}
