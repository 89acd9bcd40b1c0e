//! The document store and unit of work of the writer actor: the only owner of
//! the write connection and of the Automerge documents in memory. Changes
//! are staged as rows and stored a whole group at a time ([`Docs::flush`]),
//! so the commit is paid per group, not per write.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use automerge::{ActorId, ChangeHash};
use lru::LruCache;
use tokio::sync::broadcast;

use super::cache::{Entry, JsonCache};
use super::events::{ChangeEvent, Origin};
use crate::auth::{MEMBERS_ID, SYSTEM_COLLECTION};
use crate::doc::Document;
use crate::error::{Error, Result};
use crate::key::DocKey;
use crate::store::{self, Loaded, WriteRow, Writer};

mod commit;
pub(crate) mod guard;
mod precondition;
pub(crate) use commit::OnCommit;
pub use commit::Write;
pub(in crate::node) use commit::hex_heads;
pub(crate) use guard::{Quarantine, quarantined};
pub use precondition::{Precondition, WriteOutcome};

/// A document in memory and what of it is already stored.
pub(super) struct Cached {
    pub(super) doc: Document,
    /// Heads as of the last stored chunk (empty: never stored).
    stored: Vec<ChangeHash>,
    chunks: u32,
}

impl Cached {
    fn empty(actor: &ActorId) -> Self {
        Self {
            doc: Document::new(actor.clone()),
            stored: Vec::new(),
            chunks: 0,
        }
    }

    /// A stored document, checked against its recorded heads.
    fn load(key: &DocKey, loaded: &Loaded, actor: ActorId) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            key: key.to_string(),
            reason,
        };
        let mut doc = Document::load(&loaded.bytes, actor).map_err(|e| corrupt(e.to_string()))?;
        let stored = doc.heads();
        if store::encode_heads(&stored) != loaded.heads {
            return Err(corrupt(
                "its changes do not match its recorded heads".into(),
            ));
        }
        Ok(Self {
            doc,
            stored,
            chunks: loaded.chunk_count,
        })
    }
}

/// The documents in memory and the group being committed.
pub(crate) struct Docs {
    store: Writer,
    /// Clean documents (everything stored), least recently used dropped.
    docs: LruCache<DocKey, Cached>,
    /// Documents changed by the current group, not yet committed.
    dirty: HashMap<DocKey, Cached>,
    /// Stored state of documents the current group will write (`None`: never stored).
    prefetched: HashMap<DocKey, Option<Loaded>>,
    rows: Vec<WriteRow>,
    /// The JSON of each row, for the read cache.
    entries: Vec<Entry>,
    /// Where each row's change came from.
    origins: Vec<Origin>,
    pending: Vec<OnCommit>,
    /// Documents committed since peers were last told.
    changed: Vec<DocKey>,
    /// Peers' documents whose changes were not stored (a failed commit).
    lost: Vec<DocKey>,
    /// Membership logs staged since spaces last looked: their evaluations
    /// are out of date.
    changed_logs: Vec<DocKey>,
    /// Membership logs dropped from memory unstored (a failed commit, a
    /// quarantine): their evaluations must be forgotten.
    dropped_logs: Vec<DocKey>,
    /// Change events of committed rows, sent by [`Docs::send_events`] once
    /// the round's other views (spaces) are current.
    outgoing: Vec<ChangeEvent>,
    json: Arc<JsonCache>,
    events: broadcast::Sender<ChangeEvent>,
    actor: ActorId,
    compact_after: u32,
    /// Documents whose Automerge handling panicked.
    quarantine: Quarantine,
    /// Tests: Automerge work on this document panics.
    #[cfg(test)]
    pub(super) panic_on: Option<DocKey>,
}

impl Docs {
    pub(super) fn new(
        store: Writer,
        cache_size: usize,
        json: Arc<JsonCache>,
        events: broadcast::Sender<ChangeEvent>,
        actor: ActorId,
        compact_after: u32,
    ) -> Self {
        let cap = NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            store,
            docs: LruCache::new(cap),
            dirty: HashMap::new(),
            prefetched: HashMap::new(),
            rows: Vec::new(),
            entries: Vec::new(),
            origins: Vec::new(),
            pending: Vec::new(),
            changed: Vec::new(),
            lost: Vec::new(),
            changed_logs: Vec::new(),
            dropped_logs: Vec::new(),
            outgoing: Vec::new(),
            json,
            events,
            actor,
            compact_after: compact_after.max(1),
            quarantine: Quarantine::default(),
            #[cfg(test)]
            panic_on: None,
        }
    }

    /// The write connection, for statements outside the document rows
    /// (indexes, spaces, sync states).
    pub(super) fn store(&mut self) -> &mut Writer {
        &mut self.store
    }

    /// The store, for closing the replica.
    pub(super) fn into_store(self) -> Writer {
        self.store
    }

    /// A document made present by [`Self::load`].
    pub(super) fn loaded(&mut self, key: &DocKey) -> &mut Document {
        &mut self.dirty.get_mut(key).expect("made present by load").doc
    }

    /// A document in the current group, empty if it was not loaded (the
    /// engine's window: it asked for what it needs beforehand).
    pub(super) fn entry(&mut self, key: &DocKey) -> &mut Document {
        #[cfg(test)]
        self.test_panic(key);
        let actor = &self.actor;
        &mut self
            .dirty
            .entry(key.clone())
            .or_insert_with(|| Cached::empty(actor))
            .doc
    }

    /// A document in the current group, if present.
    pub(super) fn dirty_doc(&mut self, key: &DocKey) -> Option<&mut Document> {
        self.dirty.get_mut(key).map(|c| &mut c.doc)
    }

    /// Documents held in memory by the current group.
    pub(super) fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Forgets the group's version of a document (reloaded from the store
    /// when next needed).
    pub(super) fn forget(&mut self, key: &DocKey) {
        self.dirty.remove(key);
        self.dropped(key);
    }

    pub(super) fn is_quarantined(&self, key: &DocKey) -> bool {
        self.quarantine.contains(key)
    }

    /// Documents committed since the last call (for announcing to peers).
    pub(super) fn take_changed(&mut self, into: &mut Vec<DocKey>) {
        into.append(&mut self.changed);
    }

    /// Peers' documents whose changes a failed commit lost since the last call.
    pub(super) fn take_lost(&mut self) -> Vec<DocKey> {
        std::mem::take(&mut self.lost)
    }

    /// Membership logs staged and membership logs dropped unstored since
    /// the last call.
    pub(super) fn take_log_news(&mut self) -> (Vec<DocKey>, Vec<DocKey>) {
        (
            std::mem::take(&mut self.changed_logs),
            std::mem::take(&mut self.dropped_logs),
        )
    }

    /// Sends the change events of everything committed so far.
    pub(super) fn send_events(&mut self) {
        for event in self.outgoing.drain(..) {
            // No subscribers is fine.
            let _ = self.events.send(event);
        }
    }

    fn dropped(&mut self, key: &DocKey) {
        if is_log(key) {
            self.dropped_logs.push(key.clone());
        }
    }

    /// Makes a stored document present among the clean ones (read it with
    /// [`Self::clean`]); `NotFound` if it was never written.
    pub(super) fn clean_doc(&mut self, key: &DocKey) -> Result<()> {
        self.load(key)?;
        match self.dirty.remove(key) {
            Some(c) if !c.doc.is_empty() => {
                self.docs.put(key.clone(), c);
                Ok(())
            }
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    /// A document [`Self::clean_doc`] made present.
    pub(super) fn clean(&mut self, key: &DocKey) -> &mut Document {
        &mut self
            .docs
            .get_mut(key)
            .expect("made present by clean_doc")
            .doc
    }

    /// Reads the stored documents among `keys` not already in memory, in
    /// as few queries as possible; each is then taken by [`Self::load`].
    pub(super) fn prefetch(&mut self, keys: Vec<DocKey>) {
        let keys: Vec<&DocKey> = keys
            .iter()
            .filter(|k| {
                !self.dirty.contains_key(*k)
                    && !self.docs.contains(*k)
                    && !self.prefetched.contains_key(*k)
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        match self.store.load_many(&keys) {
            Ok(mut found) => {
                for key in keys {
                    let loaded = found.remove(key);
                    self.prefetched.insert(key.clone(), loaded);
                }
            }
            // Each write will load its own document and report the error.
            Err(e) => tracing::warn!(error = %e, "prefetching documents failed"),
        }
    }

    /// Drops prefetched rows the group did not use: they would go stale
    /// once the next write lands.
    pub(super) fn end_prefetch(&mut self) {
        self.prefetched.clear();
    }

    /// Makes `key` present in the group, loading it from the store if needed.
    pub(super) fn load(&mut self, key: &DocKey) -> Result<()> {
        if self.quarantine.contains(key) {
            return Err(quarantined(key));
        }
        if self.dirty.contains_key(key) {
            return Ok(());
        }
        let stored = match self.prefetched.remove(key) {
            Some(loaded) => loaded,
            None if self.docs.contains(key) => None,
            None => self.store.load_many(&[key])?.remove(key),
        };
        let cached = match self.docs.pop(key) {
            Some(c) => c,
            None => match stored {
                // Stored bytes may have come from peers: a panic loading
                // them costs this document only.
                Some(loaded) => {
                    let actor = self.actor.clone();
                    self.guarded(key, |_| Cached::load(key, &loaded, actor))??
                }
                None => Cached::empty(&self.actor),
            },
        };
        self.dirty.insert(key.clone(), cached);
        Ok(())
    }

    /// Whole saved bytes of a document in memory (it may be ahead of the
    /// store); `None` if not in memory or quarantined.
    pub(super) fn save_in_memory(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        if !self.dirty.contains_key(key) && !self.docs.contains(key) {
            return None;
        }
        let saved = self.guarded(key, |d| {
            let doc = match d.dirty.get_mut(key) {
                Some(c) => &mut c.doc,
                None => &mut d.docs.peek_mut(key)?.doc,
            };
            Some(doc.save())
        });
        saved.ok().flatten()
    }

    /// Drops every document of a space from memory, the JSON cache
    /// included, once the space's rows are deleted (it was left). The
    /// group must have been flushed.
    pub(super) fn forget_space(&mut self, space: &str) {
        let keys: Vec<DocKey> = self
            .docs
            .iter()
            .map(|(k, _)| k)
            .chain(self.dirty.keys())
            .filter(|k| k.space() == space)
            .cloned()
            .collect();
        for key in keys {
            self.docs.pop(&key);
            self.forget(&key);
        }
        self.prefetched.retain(|k, _| k.space() != space);
        self.json.forget_space(space);
    }

    /// Whether a document is in memory.
    pub(super) fn in_memory(&self, key: &DocKey) -> bool {
        self.dirty.contains_key(key) || self.docs.contains(key)
    }

    /// Tests: drops a clean document from memory.
    #[cfg(test)]
    pub(super) fn evict(&mut self, key: &DocKey) {
        self.docs.pop(key);
    }

    /// Tests: how many documents are quarantined.
    #[cfg(test)]
    pub(super) fn quarantined_len(&self) -> usize {
        self.quarantine.len()
    }
}

/// Whether `key` is a space's membership log.
pub(super) fn is_log(key: &DocKey) -> bool {
    key.collection() == SYSTEM_COLLECTION && key.id() == MEMBERS_ID
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
