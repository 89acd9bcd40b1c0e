//! The public view of the spaces this device is in, published by the writer
//! actor after every change so that listing and resolving spaces read a
//! snapshot instead of queueing behind writes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::auth::Role;
use crate::identity::NodeId;

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

/// A space as published: its info, and when a pending join stops waiting
/// (the inviter's provisional trust ends), which readers apply at read time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PublishedSpace {
    pub(crate) info: SpaceInfo,
    pub(crate) trust_ends: Option<i64>,
}

/// Every joined space, in id order.
pub(crate) type SpacesView = Vec<PublishedSpace>;

impl PublishedSpace {
    /// The info as of `now` (unix seconds).
    pub(crate) fn at(&self, now: i64) -> SpaceInfo {
        let mut info = self.info.clone();
        if info.state == SpaceState::Pending && self.trust_ends.is_some_and(|end| now >= end) {
            // The inviter's provisional trust is over and no member
            // vouched for us: nothing will admit this join any more.
            info.state = SpaceState::Refused(
                "the inviter did not admit this device within 10 minutes of joining; join again with a fresh invite"
                    .into(),
            );
        }
        info
    }
}
