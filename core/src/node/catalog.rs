//! The facade's listings and descriptions: collections, ids and keys a page
//! at a time, counts, whether a replica exists, and what an invite holds.
//! Front ends use these instead of SQL over the `documents` view.

use std::path::Path;

use serde::Serialize;

use super::Node;
use crate::auth::{Invite, Role, SpaceId};
use crate::error::Result;
use crate::identity::NodeId;
use crate::key::{DocKey, check_name};
use crate::store::DB_FILE;

use super::space_ref::SpaceRef;

/// Most ids or keys one listing call returns.
pub const MAX_PAGE: u32 = 10_000;

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// An invite token and what it says, as its issuer made it or as a joiner
/// reads it before joining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invitation {
    /// The token (`weft-invite-...`) to hand to the joiner.
    pub token: String,
    /// The space it joins.
    pub space: SpaceId,
    /// The space's name as the inviter knew it.
    pub space_name: String,
    /// The role it grants.
    pub role: Role,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
    /// The only node that may use it, if bound to one.
    pub node: Option<NodeId>,
    /// The admin who issued it.
    pub inviter: NodeId,
    /// Where the inviter listened when it issued the invite (empty when it
    /// was offline): a joiner dials these.
    pub addrs: Vec<String>,
}

impl Invitation {
    /// Reads a token (its signature is checked; expiry and binding are the
    /// join's to check).
    pub fn from_token(token: &str) -> Result<Invitation> {
        let invite = Invite::from_token(token.trim())?;
        invite.verify_signature()?;
        Ok(Invitation::of(&invite))
    }

    /// What an invite says, with its token.
    pub(crate) fn of(invite: &Invite) -> Invitation {
        Invitation {
            token: invite.to_token(),
            space: invite.space(),
            space_name: invite.name().to_owned(),
            role: invite.role(),
            expires_at: invite.expires(),
            node: invite.node(),
            inviter: invite.inviter(),
            addrs: invite.addrs().to_vec(),
        }
    }
}

impl std::fmt::Display for Invitation {
    /// The token, as it is handed on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.token)
    }
}

impl AsRef<str> for Invitation {
    fn as_ref(&self) -> &str {
        &self.token
    }
}

impl Node {
    /// Whether `data_dir` holds a replica (so a read-only command does not
    /// create one in a mistyped directory).
    pub fn replica_exists(data_dir: &Path) -> bool {
        data_dir.join(DB_FILE).exists()
    }

    /// Collections of a space that hold at least one live document, in order.
    pub async fn collections(&self, space: impl Into<SpaceRef>) -> Result<Vec<String>> {
        let space = self.resolve_space(space).await?;
        Ok(self.inner.reader.collections(&space).await?)
    }

    /// Ids of live documents in a collection, in order, after `after`; at
    /// most `limit` (cut to [`MAX_PAGE`]).
    pub async fn list_ids(
        &self,
        space: impl Into<SpaceRef>,
        collection: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<String>> {
        let space = self.resolve_space(space).await?;
        check_name("collection", collection)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut items = self
            .inner
            .reader
            .ids(&space, collection, after, limit + 1)
            .await?;
        let next = cut(&mut items, limit)
            .then(|| items.last().cloned())
            .flatten();
        Ok(Page { items, next })
    }

    /// Keys of live documents in every space, in key order, after `after`;
    /// at most `limit` (cut to [`MAX_PAGE`]). An empty page is the end.
    pub async fn list_keys(&self, after: Option<&DocKey>, limit: u32) -> Result<Vec<DocKey>> {
        let limit = limit.clamp(1, MAX_PAGE);
        Ok(self.inner.reader.keys(after, limit).await?)
    }

    /// Live documents in a space, in one collection or all of them.
    pub async fn count(&self, space: impl Into<SpaceRef>, collection: Option<&str>) -> Result<u64> {
        let space = self.resolve_space(space).await?;
        if let Some(c) = collection {
            check_name("collection", c)?;
        }
        Ok(self.inner.reader.count(Some(&space), collection).await?)
    }
}

/// Keeps the first `limit` items; true when there were more.
fn cut<T>(items: &mut Vec<T>, limit: u32) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    more
}
