//! Where a device stands in a space it joined, and the rules for peers'
//! claims there: who counts as a member (including the inviter trusted
//! provisionally until the log arrives), which documents a peer may send,
//! and admitting a peer on the proof it offers. Pure: callers pass `now` and
//! the log's entries.

use super::entry::{Action, Entry, Signer};
use super::membership::{Membership, Verified};
use super::proof::refusal;
use super::space::{Role, SpaceId};
use crate::identity::NodeId;

/// How long after joining a space its inviter is trusted, unverified, to
/// send the membership log. Joining dials the inviter at once and the log is
/// the first document synced, so minutes are plenty; afterwards an inviter
/// the log never vouched for gets no session, and joining again with a
/// fresh invite starts a new window.
pub const PROVISIONAL_TRUST_SECS: i64 = 600;

/// The evaluated log of a joined space and the inviter of this device's
/// latest join, from which roles are decided.
#[derive(Debug, Default)]
pub struct Standing {
    /// `None` until evaluated, and again after the log changes.
    pub membership: Option<Membership>,
    /// The last evaluation, kept across log changes so the next one only
    /// evaluates the new entries ([`Membership::extended`]).
    pub previous: Option<Membership>,
    /// The log's entries whose signatures verified.
    pub verified: Verified,
    /// The node whose invite this device used last, and when (unix seconds
    /// of our `Join`): before the log's genesis arrives, it is trusted to
    /// send the log (see [`Standing::provisional`]).
    pub inviter: Option<(NodeId, i64)>,
    /// Where that inviter listened when it issued the invite.
    pub inviter_addrs: Vec<String>,
}

/// A peer's claim that counted: its role, and the proof's entries to add to
/// the log (empty when the log already named it).
#[derive(Debug)]
pub struct Admitted {
    /// The peer's role once the entries are in the log.
    pub role: Role,
    /// `(hash, encoded)` entries to add to the log document.
    pub entries: Vec<([u8; 32], Vec<u8>)>,
    /// The evaluation counting them, to keep once they are stored.
    pub membership: Option<Membership>,
}

impl Standing {
    /// Evaluates the log `entries` of space `id` for device `me`, reusing
    /// the previous evaluation where the log only grew.
    pub fn evaluate(&mut self, id: SpaceId, entries: &[Entry], me: NodeId) {
        // Entries verified before are not verified again, and a log that
        // only grew is evaluated from where it was.
        let membership = match self
            .previous
            .as_ref()
            .and_then(|m| m.extended(id, entries, &mut self.verified))
        {
            Some(m) => m,
            None => Membership::evaluate_with(id, entries, &mut self.verified),
        };
        // Until the genesis arrives, the inviter named in our latest join is
        // the one peer we sync the space's log with.
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
        self.inviter = latest.map(|(time, invite)| (invite.inviter(), time));
        self.inviter_addrs = latest
            .map(|(_, invite)| invite.addrs().to_vec())
            .unwrap_or_default();
        self.membership = Some(membership);
    }

    /// The log changed: the evaluation is out of date, but the next one
    /// may extend it.
    pub fn log_changed(&mut self) {
        if let Some(m) = self.membership.take() {
            self.previous = Some(m);
        }
    }

    /// The log was dropped unstored: every evaluation may count entries
    /// the store does not hold, and an extension would keep counting them.
    pub fn log_dropped(&mut self) {
        self.membership = None;
        self.previous = None;
    }

    /// A node's role by the evaluated log, or admin for the provisionally
    /// trusted inviter (whose session may then carry only the log: see
    /// [`Standing::refuses`]).
    pub fn role_at(&self, node: NodeId, now: i64) -> Option<Role> {
        let m = self.membership.as_ref()?;
        m.role(node)
            .or_else(|| self.provisional(node, now).then_some(Role::Admin))
    }

    /// Whether `node` is our inviter, trusted only provisionally: the log's
    /// genesis has not arrived and the join is less than
    /// [`PROVISIONAL_TRUST_SECS`] old.
    pub fn provisional(&self, node: NodeId, now: i64) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.members().is_empty())
            && self.inviter.is_some_and(|(inviter, since)| {
                inviter == node && now.saturating_sub(since) < PROVISIONAL_TRUST_SECS
            })
    }

    /// When the provisional trust of our inviter ends, while the log has
    /// no members yet (the join waits on it).
    pub fn trust_ends(&self) -> Option<i64> {
        let waiting = self
            .membership
            .as_ref()
            .is_some_and(|m| m.members().is_empty());
        let (_, since) = self.inviter?;
        waiting.then(|| since.saturating_add(PROVISIONAL_TRUST_SECS))
    }

    /// Whether a document from `node` must be refused although its session
    /// let it through: a node the evaluated log does not name may send only
    /// the log (`is_log`), and only while it is our provisionally trusted
    /// inviter. `None` while the membership is not evaluated.
    pub fn refuses(&self, node: NodeId, is_log: bool, now: i64) -> Option<bool> {
        let m = self.membership.as_ref()?;
        if m.role(node).is_some() {
            return Some(false);
        }
        Some(!(is_log && self.provisional(node, now)))
    }

    /// Whether `node` is a member once its `proof` is added to the log
    /// (whose entries `log` reads, only if needed); if not, why not, in
    /// words for the peer's user.
    pub fn admit(
        &mut self,
        id: SpaceId,
        log: impl FnOnce() -> Vec<Vec<u8>>,
        node: NodeId,
        proof: &[Vec<u8>],
        now: i64,
    ) -> Result<Admitted, String> {
        if let Some(role) = self.role_at(node, now) {
            return Ok(Admitted {
                role,
                entries: Vec::new(),
                membership: None,
            });
        }
        let mut offered: Vec<Entry> = proof.iter().filter_map(|b| Entry::decode(b).ok()).collect();
        // Joins reusing an invite the log credits to another node count for
        // nothing (the claimer's own old one, or one it carries for another).
        let before = offered.len();
        if let Some(m) = self.membership.as_ref() {
            offered.retain(|e| !m.reuses_invite(e));
        }
        let reused = offered.len() < before;
        // Usually the proof only adds to the evaluated log: that costs the
        // proof's entries, not a walk of the whole log.
        let extended = self
            .membership
            .as_ref()
            .and_then(|m| m.extended(id, &offered, &mut self.verified));
        let membership = match extended {
            Some(m) => m,
            None => {
                let mut entries: Vec<Entry> =
                    log().iter().filter_map(|b| Entry::decode(b).ok()).collect();
                entries.extend(offered.iter().cloned());
                Membership::evaluate_with(id, &entries, &mut self.verified)
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
        let entries = offered
            .iter()
            .map(|e| (e.hash(), e))
            .filter(|(h, _)| !rejected.contains(h))
            .map(|(h, e)| (h, e.encode()))
            .collect();
        Ok(Admitted {
            role,
            entries,
            membership: Some(membership),
        })
    }
}
