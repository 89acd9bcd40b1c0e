//! Meeting an input's needs before the engine sees it: documents loaded,
//! digests, memberships and sync states read, whole documents to send.

use std::collections::HashMap;

use super::SyncHost;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::node::docs::Docs;
use crate::node::spaces::{Spaces, members_key};
use crate::sync::Needs;

impl SyncHost {
    /// Loads documents, digests and sync states an input needs. Returns the
    /// documents that could not be loaded (corrupt in storage): the input
    /// goes on without them.
    pub(super) fn meet(
        &mut self,
        docs: &mut Docs,
        spaces: &mut Spaces,
        needs: &Needs,
    ) -> crate::Result<Vec<DocKey>> {
        if !needs.digests.is_empty() && docs.has_rows() {
            // Digests are read from the store: commit staged changes first.
            self.flush(docs);
        }
        for space in &needs.digests {
            if !self.items.contains_key(space) {
                let items = docs.store().items(space)?;
                self.items.insert(space.clone(), items);
            }
        }
        for space in &needs.memberships {
            // Evaluating loads the log document too; spaces not joined here
            // have no membership, which the engine treats as "not a member".
            if spaces.contains(space) {
                spaces.membership(docs, space)?;
                // Evaluation may have been cached: the log document itself
                // must be in memory too (proofs read it, admissions extend it).
                docs.load(&members_key(space)?)?;
            }
        }
        self.read_saved(docs, &needs.saved);
        // One query for all of them (a follow-up starts up to 256).
        docs.prefetch(needs.docs.clone());
        // Quarantined documents are refused for sync: dropped like a
        // document that does not load.
        let mut failed: Vec<DocKey> = needs
            .saved
            .iter()
            .filter(|k| docs.is_quarantined(k))
            .cloned()
            .collect();
        for key in &needs.docs {
            if let Err(e) = docs.load(key) {
                tracing::warn!(%key, error = %e, "document cannot be synced");
                failed.push(key.clone());
            }
        }
        let mut by_peer: HashMap<NodeId, Vec<&DocKey>> = HashMap::new();
        for (peer, key) in &needs.states {
            if !self.states_read.contains(&(*peer, key.clone())) {
                by_peer.entry(*peer).or_default().push(key);
            }
        }
        for (peer, keys) in by_peer {
            for (key, state) in docs.store().sync_states(peer, &keys)? {
                self.states.insert((peer, key), state);
            }
        }
        Ok(failed)
    }

    /// Stored bytes of `keys` for sending whole: from memory where a
    /// document is loaded (it may be ahead of the store), else straight from
    /// the store, without loading it into Automerge.
    fn read_saved(&mut self, docs: &mut Docs, keys: &[DocKey]) {
        self.saved.clear();
        let mut from_store = Vec::new();
        for key in keys {
            if !docs.in_memory(key) {
                from_store.push(key);
                continue;
            }
            // A document that panicked is quarantined and left out.
            if let Some(bytes) = docs.save_in_memory(key) {
                self.saved.insert(key.clone(), bytes);
            }
        }
        if from_store.is_empty() {
            return;
        }
        match docs.store().load_many(&from_store) {
            Ok(found) => {
                for (key, loaded) in found {
                    self.saved.insert(key, loaded.bytes);
                }
            }
            // The engine falls back to an Automerge round, which loads (and
            // reports) each document itself.
            Err(e) => tracing::warn!(error = %e, "reading documents to send failed"),
        }
    }
}
