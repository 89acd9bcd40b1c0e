//! A simulated node's replica: documents, sync states and the space's real
//! membership log, judged by the same `auth` code as the node (evaluation,
//! own entries as proof, refusal reasons), with the node's provisional
//! trust in its inviter until the log's genesis arrives.

use std::collections::BTreeMap;

use crate::auth::{Entry, Membership, Verified, own_entries, refusal};
use crate::doc::Document;
use crate::sync::reconcile::heads_hash;
use crate::sync::wire::{Item, ItemKey};
use crate::sync::{Needs, Replica};
use crate::{DocKey, NodeId, Role};

use super::{SPACE, log_key, space_id};

#[derive(Default)]
pub(crate) struct SimReplica {
    pub(crate) me: Option<NodeId>,
    pub(crate) actor: Option<automerge::ActorId>,
    pub(crate) docs: BTreeMap<DocKey, Document>,
    pub(crate) states: BTreeMap<(NodeId, DocKey), Vec<u8>>,
    /// What the engine declared in `needs` for the current input: the real
    /// node loads only that, so touching anything else is a bug.
    pub(crate) declared: Option<Needs>,
    pub(crate) violations: Vec<String>,
    /// The admin whose invite this node used last: trusted with the log
    /// until its genesis arrives, as the node does.
    pub(crate) inviter: Option<NodeId>,
    verified: Verified,
    /// The last evaluation, by the log's heads.
    evaluated: Option<(Vec<automerge::ChangeHash>, Membership)>,
}

impl SimReplica {
    pub(crate) fn new(me: NodeId, actor: automerge::ActorId) -> Self {
        Self {
            me: Some(me),
            actor: Some(actor),
            ..Self::default()
        }
    }

    fn check_declared(&mut self, what: &str, ok: impl Fn(&Needs) -> bool) {
        if let Some(needs) = &self.declared
            && !ok(needs)
        {
            self.violations
                .push(format!("engine used {what} without declaring it in needs"));
        }
    }

    fn log(&mut self) -> &mut Document {
        let actor = self.actor.clone().expect("actor set");
        self.docs
            .entry(log_key())
            .or_insert_with(|| Document::new(actor))
    }

    /// The space's membership by this replica's log.
    pub(crate) fn membership(&mut self) -> Membership {
        let heads = self.log().heads();
        if let Some((at, m)) = &self.evaluated
            && *at == heads
        {
            return m.clone();
        }
        let entries: Vec<Entry> = self
            .log()
            .log_entries()
            .iter()
            .filter_map(|b| Entry::decode(b).ok())
            .collect();
        let m = Membership::evaluate_with(space_id(), &entries, &mut self.verified);
        self.evaluated = Some((heads, m.clone()));
        m
    }

    /// A node's role by this replica's log, or admin for the inviter before
    /// the genesis arrives (the node's provisional trust).
    pub(crate) fn role_of(&mut self, node: NodeId) -> Option<Role> {
        let m = self.membership();
        m.role(node).or_else(|| {
            (m.members().is_empty() && self.inviter == Some(node)).then_some(Role::Admin)
        })
    }

    /// Adds entries to this replica's log; whether it changed.
    pub(crate) fn add_entries(&mut self, entries: &[Entry], time: i64) -> bool {
        let encoded: Vec<([u8; 32], Vec<u8>)> =
            entries.iter().map(|e| (e.hash(), e.encode())).collect();
        self.log()
            .add_log_entries(&encoded, time)
            .expect("log entries fit")
            .is_some()
    }
}

impl Replica for SimReplica {
    fn items(&mut self, space: &str) -> Vec<Item> {
        self.check_declared(&format!("the digest of {space}"), |n| {
            n.digests.iter().any(|s| s == space)
        });
        self.docs
            .iter_mut()
            .filter(|(k, d)| k.space() == space && !d.is_empty())
            .map(|(k, d)| Item {
                key: ItemKey {
                    collection: k.collection().into(),
                    id: k.id().into(),
                },
                hash: heads_hash(&d.heads()),
            })
            .collect()
    }
    fn doc(&mut self, key: &DocKey) -> &mut Document {
        self.check_declared(&format!("document {key}"), |n| n.docs.contains(key));
        let actor = self.actor.clone().expect("actor set");
        self.docs
            .entry(key.clone())
            .or_insert_with(|| Document::new(actor))
    }
    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        self.check_declared(&format!("the stored bytes of {key}"), |n| {
            n.saved.contains(key)
        });
        self.docs
            .get_mut(key)
            .filter(|d| !d.is_empty())
            .map(|d| d.save())
    }
    fn sync_state(&mut self, peer: NodeId, key: &DocKey) -> Option<Vec<u8>> {
        self.states.get(&(peer, key.clone())).cloned()
    }
    fn role(&mut self, space: &str, node: NodeId) -> Option<Role> {
        self.check_declared(&format!("the membership of {space}"), |n| {
            n.memberships.iter().any(|s| s == space)
        });
        if space != SPACE.as_str() {
            return None;
        }
        self.role_of(node)
    }
    fn proof(&mut self, space: &str) -> Vec<Vec<u8>> {
        self.check_declared(&format!("the membership of {space}"), |n| {
            n.memberships.iter().any(|s| s == space)
        });
        let me = self.me.expect("me set");
        own_entries(&self.log().log_entries(), me)
    }
    fn admit(
        &mut self,
        space: &str,
        node: NodeId,
        proof: &[Vec<u8>],
    ) -> Result<(Role, bool), String> {
        self.check_declared(&format!("the membership of {space}"), |n| {
            n.memberships.iter().any(|s| s == space)
        });
        if let Some(role) = self.role_of(node) {
            return Ok((role, false));
        }
        let current = self.membership();
        let mut offered: Vec<Entry> = proof.iter().filter_map(|b| Entry::decode(b).ok()).collect();
        let before = offered.len();
        offered.retain(|e| !current.reuses_invite(e));
        let reused = offered.len() < before;
        let mut entries: Vec<Entry> = self
            .log()
            .log_entries()
            .iter()
            .filter_map(|b| Entry::decode(b).ok())
            .collect();
        entries.extend(offered.iter().cloned());
        let m = Membership::evaluate_with(space_id(), &entries, &mut self.verified);
        let Some(role) = m.role(node) else {
            if reused && !m.revoked(node) {
                return Err("invite already used".into());
            }
            return Err(refusal(&m, node, &offered));
        };
        let rejected: Vec<[u8; 32]> = m.rejected().iter().map(|r| r.hash).collect();
        let kept: Vec<Entry> = offered
            .into_iter()
            .filter(|e| !rejected.contains(&e.hash()))
            .collect();
        let changed = self.add_entries(&kept, 0);
        Ok((role, changed))
    }
}
