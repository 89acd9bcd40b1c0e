//! The end-of-run checks: quiescence within the frame bound and then
//! silence, convergence of members, nothing written by a never-writer held
//! elsewhere, no acknowledged write lost.

use std::collections::{BTreeMap, BTreeSet};

use crate::{DocKey, NodeId, Role};

use super::members::Fate;
use super::{MAX_IN_FLIGHT, QUIET_MS, Sim, SimNode, frame_bound, log_key};

/// Per document: its JSON, its change hashes and their authors.
type Summary = BTreeMap<
    DocKey,
    (
        Option<serde_json::Value>,
        BTreeSet<String>,
        BTreeSet<Option<NodeId>>,
    ),
>;

impl Sim {
    /// Idle everywhere: within the frame bound, and quiet from now on.
    pub(crate) fn quiet(&mut self, at_heal: u64) -> Result<(), String> {
        let docs = self.nodes[0]
            .replica
            .docs
            .values_mut()
            .filter(|d| !d.is_empty())
            .count();
        let used = self.frames - at_heal;
        let bound = frame_bound(self.nodes.len(), docs, self.actions);
        if used > bound {
            return Err(format!(
                "{used} frames from the last heal to idle, over the bound of {bound}"
            ));
        }
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(format!(
                "{} frames in flight on one link (at most {MAX_IN_FLIGHT})",
                self.max_in_flight
            ));
        }
        let idle_at = self.frames;
        let end = self.now + QUIET_MS;
        while self.now < end {
            let next = self.now + 1000;
            self.step_until(next);
            self.tick(next);
        }
        if self.frames != idle_at {
            return Err(format!(
                "{} frames moved in {QUIET_MS} ms after every session was idle; peers {:?}",
                self.frames - idle_at,
                self.nodes
                    .iter()
                    .map(|n| n.engine.debug_peers())
                    .collect::<Vec<_>>()
            ));
        }
        self.check()
    }

    /// Indexes of the members by node 0's (the creator's) log.
    fn final_members(&mut self) -> Vec<usize> {
        let m = self.nodes[0].replica.membership();
        (0..self.nodes.len())
            .filter(|&i| m.role(self.nodes[i].id).is_some())
            .collect()
    }

    /// Nodes that were writers at some point of the run (by any log).
    fn ever_writers(&self) -> BTreeSet<NodeId> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                matches!(n.fate, Fate::Member(r) | Fate::Late(r) if r >= Role::Writer)
                    || self.members.changed.contains(i)
            })
            .map(|(_, n)| n.id)
            .collect()
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.nodes.iter().find_map(|n| n.replica.violations.first()) {
            return Err(v.clone());
        }
        self.check_members()?;
        let summary = |node: &mut SimNode| -> Summary {
            node.replica
                .docs
                .iter_mut()
                .filter(|(_, d)| !d.is_empty())
                .map(|(k, d)| {
                    let json = d.to_json().map(serde_json::Value::Object);
                    let history = d.history();
                    let authors = history.iter().map(|c| c.author).collect();
                    let hashes = history.into_iter().map(|c| c.hash).collect();
                    (k.clone(), (json, hashes, authors))
                })
                .collect()
        };
        let members = self.final_members();
        let writers = self.ever_writers();
        let raced_authors: BTreeSet<NodeId> = self
            .members
            .changed
            .iter()
            .map(|&i| self.nodes[i].id)
            .collect();
        let log = log_key();
        let first = summary(&mut self.nodes[0]);
        for i in 0..self.nodes.len() {
            let other = summary(&mut self.nodes[i]);
            // Nothing written by a node that never could write is held
            // anywhere but by its author (the log takes every member's
            // own signed entries, so it is not a write).
            for (key, (_, _, authors)) in &other {
                if *key == log {
                    continue;
                }
                if let Some(a) = authors
                    .iter()
                    .flatten()
                    .find(|a| !writers.contains(a) && **a != self.nodes[i].id)
                {
                    return Err(format!(
                        "node {i} holds a change to {key} by {a}, who never could write"
                    ));
                }
            }
            if !members.contains(&i) {
                continue;
            }
            // A document holding a change by a node whose role changed in
            // the run may rightly differ: a write racing a demotion or a
            // revocation is refused by whoever learnt of it first.
            let raced = |held: &Summary, key: &DocKey| {
                held.get(key).is_some_and(|(_, _, authors)| {
                    authors.iter().flatten().any(|a| raced_authors.contains(a))
                })
            };
            let keys = |held: &BTreeMap<DocKey, _>| -> Vec<DocKey> {
                held.keys()
                    .filter(|k| !raced(&first, k) && !raced(&other, k))
                    .cloned()
                    .collect()
            };
            if keys(&other) != keys(&first) {
                return Err(format!(
                    "member {i} holds {:?}, node 0 holds {:?}; closes {:?}; peers {:?}",
                    other.keys(),
                    first.keys(),
                    self.closes,
                    self.nodes
                        .iter()
                        .map(|n| n.engine.debug_peers())
                        .collect::<Vec<_>>()
                ));
            }
            for (key, (json, _, _)) in &other {
                if raced(&first, key) || raced(&other, key) {
                    continue;
                }
                if first[key].0 != *json {
                    return Err(format!(
                        "{key} differs: node 0 {:?} by {:?}, member {i} {json:?} by {:?}; fates {:?}",
                        first[key].0,
                        first[key].2,
                        other[key].2,
                        self.nodes
                            .iter()
                            .map(|n| (n.id, n.fate))
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        for (key, writes) in &self.written {
            for (author, hash) in writes {
                // Writes racing a change of their author's role may be
                // refused; a member's whose role never changed may not.
                if self.members.changed.contains(author) || !members.contains(author) {
                    continue;
                }
                let held = &first
                    .get(key)
                    .ok_or(format!("{key} was written but is gone"))?
                    .1;
                if !held.contains(hash) {
                    return Err(format!("write {hash} to {key} by node {author} was lost"));
                }
            }
        }
        Ok(())
    }
}
