//! What a node presents of its own membership, and what it is told when a
//! claim fails: shared by the node and the simulator, so both judge claims
//! alike.

use super::entry::{Action, Entry, Signer};
use super::membership::Membership;
use crate::identity::NodeId;

/// Most entries a proof carries (peers ignore larger claims).
pub const MAX_PROOF: usize = 16;

/// This node's own membership in a log, as a short proof for peers: its
/// joins and the grants, revocations and genesis naming it (not the entries
/// it signed for others), the most recent last, at most [`MAX_PROOF`].
pub fn own_entries(log: &[Vec<u8>], me: NodeId) -> Vec<Vec<u8>> {
    let mut mine: Vec<(i64, Vec<u8>)> = log
        .iter()
        .filter_map(|bytes| {
            let e = Entry::decode(bytes).ok()?;
            let about_me = match (e.signer(), e.action()) {
                (Signer::Node(n), Action::Join { .. }) => n == me,
                (_, Action::Grant { node, .. } | Action::Revoke { node }) => *node == me,
                (_, Action::Create { admin, .. }) => *admin == me,
                _ => false,
            };
            about_me.then(|| (e.time(), bytes.clone()))
        })
        .collect();
    mine.sort();
    let skip = mine.len().saturating_sub(MAX_PROOF);
    mine.into_iter().skip(skip).map(|(_, b)| b).collect()
}

/// Why `node` is not a member by `membership`, its claim `offered` included.
pub fn refusal(membership: &Membership, node: NodeId, offered: &[Entry]) -> String {
    if membership.members().is_empty() {
        return "this peer does not hold the space's membership log yet".into();
    }
    if membership.revoked(node) {
        return "revoked by an admin".into();
    }
    // The claim's own join, if the log rejected it (used, expired, ...).
    let joins: Vec<[u8; 32]> = offered
        .iter()
        .filter(|e| matches!((e.signer(), e.action()), (Signer::Node(n), Action::Join { .. }) if n == node))
        .map(Entry::hash)
        .collect();
    membership
        .rejected()
        .iter()
        .rev()
        .find(|r| joins.contains(&r.hash))
        .map_or_else(
            || "not a member: no join or grant for this node in the space's log".into(),
            |r| r.reason.clone(),
        )
}
