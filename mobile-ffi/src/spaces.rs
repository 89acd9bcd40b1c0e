//! Spaces: creating, listing, inviting, joining and revoking, as the CLI's
//! `weft space ...` commands do.

use std::time::Duration;

use weft_core::{NodeId, SpaceState};

use crate::error::WeftError;
use crate::node::WeftNode;

/// What a member may do in a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// Receives the space's documents.
    Reader,
    /// Also changes them.
    Writer,
    /// Also invites and revokes.
    Admin,
}

/// A space this device is in.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Space {
    /// The space id (its public key, base58).
    pub id: String,
    /// Its name (not unique: several spaces may share one).
    pub name: String,
    /// This device's role, once the membership log says so.
    pub role: Option<Role>,
    /// Where this device stands: `pending` (its inviter has not admitted
    /// it yet), `refused` (see `reason`), or its role (`reader`, `writer`,
    /// `admin`).
    pub state: String,
    /// Why the inviter or an admin refused this device, in their words;
    /// `None` unless `state` is `refused`.
    pub reason: Option<String>,
    /// Members and their roles.
    pub members: Vec<Member>,
    /// Whether it is the device's default (personal) space.
    pub is_default: bool,
}

/// One member of a [`Space`].
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    /// The member's node id.
    pub node_id: String,
    /// Its role.
    pub role: Role,
}

#[uniffi::export]
impl WeftNode {
    /// Creates a space with this device as its admin; returns its id.
    pub async fn space_create(&self, name: String) -> Result<String, WeftError> {
        let node = self.node.clone();
        let id = self
            .run(async move { node.space_create(&name).await })
            .await?;
        Ok(id.to_string())
    }

    /// Spaces this device is in, with roles and members.
    pub async fn space_list(&self) -> Result<Vec<Space>, WeftError> {
        let node = self.node.clone();
        let spaces = self.run(async move { node.space_list().await }).await?;
        Ok(spaces
            .into_iter()
            .map(|s| {
                let (state, reason) = (
                    s.state.name().to_owned(),
                    s.state.reason().map(str::to_owned),
                );
                Space {
                    id: s.id,
                    name: s.name,
                    role: s.role.map(Role::from),
                    state,
                    reason,
                    members: s
                        .members
                        .into_iter()
                        .map(|(node, role)| Member {
                            node_id: node.to_string(),
                            role: role.into(),
                        })
                        .collect(),
                    is_default: s.default,
                }
            })
            .collect())
    }

    /// An invite token for `space` (name or id; the default space when
    /// absent) granting `role` for `expires_in_secs`, usable only by `node`
    /// when given. Needs the admin role. The token carries this node's
    /// addresses, so joining dials it.
    #[uniffi::method(default(space = None, node = None))]
    pub async fn space_invite(
        &self,
        role: Role,
        expires_in_secs: u64,
        space: Option<String>,
        node: Option<String>,
    ) -> Result<String, WeftError> {
        let invitee = node.as_deref().map(node_id).transpose()?;
        let node = self.node.clone();
        self.run(async move {
            node.space_invite(
                space.as_deref(),
                role.into(),
                Duration::from_secs(expires_in_secs),
                invitee,
            )
            .await
            .map(|invite| invite.token)
        })
        .await
    }

    /// Joins a space with an invite token and, when online, dials the
    /// inviter so it syncs. Returns the space id at once; the inviter's
    /// answer comes later: see [`WeftNode::space_wait_admission`].
    pub async fn space_join(&self, token: String) -> Result<String, WeftError> {
        let node = self.node.clone();
        let id = self
            .run(async move { node.space_join(&token).await })
            .await?;
        Ok(id.to_string())
    }

    /// Waits up to `timeout_ms` (at most a day) for the inviter of a joined
    /// `space` (name or id) to admit this device, and returns its state:
    /// the role (`reader`, `writer`, `admin`), or `pending` if the inviter
    /// has not answered in time (the space stays joined and is admitted
    /// once the inviter is reachable). A refusal fails with `Refused`.
    pub async fn space_wait_admission(
        &self,
        space: String,
        timeout_ms: u64,
    ) -> Result<String, WeftError> {
        if timeout_ms > MAX_ADMISSION_WAIT_MS {
            return Err(WeftError::invalid(format!(
                "timeout_ms {timeout_ms} is too long: wait at most {MAX_ADMISSION_WAIT_MS} ms (a day) and call again"
            )));
        }
        let node = self.node.clone();
        let waited = space.clone();
        let state = self
            .run(async move {
                node.wait_admission(&waited, Duration::from_millis(timeout_ms))
                    .await
            })
            .await?;
        match state {
            SpaceState::Refused(reason) => Err(weft_core::Error::Refused { space, reason }.into()),
            state => Ok(state.name().to_owned()),
        }
    }

    /// Revokes every role of `node` in `space` (name or id; the default
    /// space when absent). Needs the admin role.
    #[uniffi::method(default(space = None))]
    pub async fn space_revoke(&self, node: String, space: Option<String>) -> Result<(), WeftError> {
        let revoked = node_id(&node)?;
        let handle = self.node.clone();
        self.run(async move { handle.space_revoke(space.as_deref(), revoked).await })
            .await
    }
}

/// The longest [`WeftNode::space_wait_admission`] waits: far beyond any
/// sensible wait, and it bounds the deadline arithmetic.
const MAX_ADMISSION_WAIT_MS: u64 = 86_400_000;

fn node_id(text: &str) -> Result<NodeId, WeftError> {
    text.parse()
        .map_err(|e| WeftError::invalid(format!("invalid node id {text:?}: {e}")))
}

impl From<Role> for weft_core::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Reader => Self::Reader,
            Role::Writer => Self::Writer,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<weft_core::Role> for Role {
    fn from(role: weft_core::Role) -> Self {
        match role {
            weft_core::Role::Reader => Self::Reader,
            weft_core::Role::Writer => Self::Writer,
            weft_core::Role::Admin => Self::Admin,
        }
    }
}
