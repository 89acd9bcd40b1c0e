//! Membership in the simulation: who each node is (admin, writer, reader,
//! outsider, a late joiner, a joiner with an invite already used), the
//! membership actions of a run (joins, revocations, role changes, readers
//! trying to write), and the invariants checked at the end.

use std::collections::{BTreeMap, BTreeSet};

use crate::Role;
use crate::auth::{Action, Entry, Invite};

use super::{SPACE, Sim, log_key, space_id};
use crate::sync::Input;

/// What a node is in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Joined before the run, with this role (node 0 is the creator).
    Member(Role),
    /// Never joins: connected to everyone, holds nothing of the space.
    Outsider,
    /// Joins during the run with an invite from whoever is admin then.
    Late(Role),
    /// Joins during the run with an invite another node already used.
    Reused,
}

/// Membership bookkeeping of a run.
#[derive(Default)]
pub(crate) struct Members {
    /// Invites used at setup, to be used again by `Reused` nodes.
    pub(crate) used: Vec<Invite>,
    /// Nodes whose role changed or that were revoked during the run.
    pub(crate) changed: BTreeSet<usize>,
    /// Refusals each node received: (from, reason).
    pub(crate) refusals: BTreeMap<usize, Vec<(usize, String)>>,
    /// Writes a node's own log refused (readers, revoked, non-members).
    pub(crate) refused_writes: u64,
    /// Invites issued so far (their nonces and secrets come from here).
    pub(crate) issued: u8,
}

impl Sim {
    /// An invite to `space` from node `by` for `role`, deterministic.
    pub(crate) fn issue(&mut self, by: usize, role: Role) -> Invite {
        self.members.issued += 1;
        let n = self.members.issued;
        let heads = self.nodes[by].replica.membership().heads();
        Invite::issue_with(
            &self.nodes[by].key,
            space_id(),
            "shared",
            role,
            i64::MAX,
            Vec::new(),
            None,
            &heads,
            [n; 16],
            [n.wrapping_add(100); 32],
        )
    }

    /// Node `at` joins with `invite` (during the run: it starts offering
    /// the space and trusts the inviter with the log).
    pub(crate) fn join(&mut self, at: usize, invite: &Invite) {
        // Later than every setup join (time 0): a reused invite's first
        // use wins by time, as it does between real devices.
        let time = 1 + (self.now / 1000) as i64;
        let entry = Entry::join(&self.nodes[at].key, invite, time).expect("own invite");
        let replica = &mut self.nodes[at].replica;
        replica.inviter = Some(invite.inviter());
        replica.add_entries(&[entry], time);
        self.input(at, Input::Offer(SPACE.clone()));
        self.log_written(at);
    }

    /// A local log write at `at`: act on it and push it, as the node does.
    pub(crate) fn log_written(&mut self, at: usize) {
        self.input(at, Input::MembershipChanged(SPACE.clone()));
        self.input(at, Input::Changed(log_key()));
    }

    /// An admin (by its own log) signs `action`, if `at` is one.
    fn admin_signs(&mut self, at: usize, action: Action) -> bool {
        let me = self.nodes[at].id;
        if self.nodes[at].replica.role_of(me) != Some(Role::Admin) {
            return false;
        }
        let time = (self.now / 1000) as i64;
        let heads = self.nodes[at].replica.membership().heads();
        let entry = Entry::sign(&self.nodes[at].key, space_id(), action, &heads, time);
        self.nodes[at].replica.add_entries(&[entry], time);
        self.log_written(at);
        true
    }

    /// One membership action at random: a late or reused join, a
    /// revocation, or a role change (never of node 0, the creator, whose
    /// log is the reference at the end).
    pub(crate) fn random_membership(&mut self) {
        let n = self.nodes.len();
        let at = self.rng.below(n as u64) as usize;
        match self.nodes[at].fate {
            Fate::Late(role) if !self.joined(at) => {
                let admins: Vec<usize> = (0..n)
                    .filter(|&i| {
                        let id = self.nodes[i].id;
                        self.nodes[i].replica.role_of(id) == Some(Role::Admin)
                    })
                    .collect();
                let by = admins[self.rng.below(admins.len() as u64) as usize];
                let invite = self.issue(by, role);
                self.join(at, &invite);
            }
            Fate::Reused if !self.joined(at) => {
                if let Some(invite) = self.members.used.first().cloned() {
                    self.join(at, &invite);
                }
            }
            _ => {
                let admin = self.rng.below(n as u64) as usize;
                let target = 1 + self.rng.below(n as u64 - 1) as usize;
                let node = self.nodes[target].id;
                let action = match self.rng.below(3) {
                    0 => Action::Revoke { node },
                    1 => Action::Grant {
                        node,
                        role: Role::Reader,
                    },
                    _ => Action::Grant {
                        node,
                        role: Role::Writer,
                    },
                };
                // Only a member is granted a new role here: a grant to a
                // node that holds nothing of the space is an invite's job.
                let member = self.nodes[admin].replica.role_of(node).is_some();
                if (member || matches!(action, Action::Revoke { .. }))
                    && self.admin_signs(admin, action.clone())
                {
                    if std::env::var("WEFT_SIM_TRACE").is_ok() {
                        let m = self.nodes[admin].replica.membership();
                        eprintln!(
                            "t={} node {admin} signs {action:?} for node {target}; members {:?} rejected {:?}",
                            self.now,
                            m.members(),
                            m.rejected()
                        );
                    }
                    self.members.changed.insert(target);
                }
            }
        }
    }

    /// Whether node `at` holds the space (joined it at some point).
    pub(crate) fn joined(&self, at: usize) -> bool {
        self.nodes[at].replica.inviter.is_some() || matches!(self.nodes[at].fate, Fate::Member(_))
    }

    /// The membership invariants, after quiescence:
    /// - every member by node 0's log holds node 0's log exactly;
    /// - a `Reused` joiner is a member nowhere and was told so by a refusal;
    /// - an outsider holds nothing of the space.
    pub(crate) fn check_members(&mut self) -> Result<(), String> {
        let reference = self.nodes[0].replica.membership();
        let log = log_key();
        let heads0 = self.nodes[0].replica.docs.get_mut(&log).map(|d| d.heads());
        for i in 1..self.nodes.len() {
            let id = self.nodes[i].id;
            if reference.role(id).is_some() {
                let heads = self.nodes[i].replica.docs.get_mut(&log).map(|d| d.heads());
                if heads != heads0 {
                    return Err(format!(
                        "member {i} holds another membership log than node 0"
                    ));
                }
            }
            match self.nodes[i].fate {
                Fate::Reused if self.joined(i) => {
                    if reference.role(id).is_some() {
                        return Err(format!(
                            "node {i} was admitted with a used invite; fates {:?}, changed {:?}, rejected {:?}",
                            self.nodes.iter().map(|n| n.fate).collect::<Vec<_>>(),
                            self.members.changed,
                            reference.rejected()
                        ));
                    }
                    if !self.members.refusals.contains_key(&i) {
                        return Err(format!(
                            "node {i} joined with a used invite and was never told it was refused"
                        ));
                    }
                }
                Fate::Outsider => {
                    let holds = self.nodes[i]
                        .replica
                        .docs
                        .iter_mut()
                        .any(|(k, d)| k.space() == SPACE.as_str() && !d.is_empty());
                    if holds {
                        return Err(format!("outsider {i} holds documents of the space"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
