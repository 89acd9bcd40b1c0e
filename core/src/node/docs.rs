//! The document store and unit of work of the writer actor: the only owner of
//! the write connection and of the Automerge documents in memory. Changes
//! are staged as rows and stored a whole group at a time ([`Docs::flush`]),
//! so the commit is paid per group, not per write.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use automerge::{ActorId, ChangeHash};
use lru::LruCache;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::cache::{Entry, JsonCache};
use super::events::{ChangeEvent, Origin};
use crate::auth::{MEMBERS_ID, SYSTEM_COLLECTION};
use crate::doc::{Document, as_object};
use crate::error::{Error, Result};
use crate::key::DocKey;
use crate::store::{self, Loaded, WriteRow, Writer};

pub(crate) mod guard;
pub(crate) use guard::{Quarantine, quarantined};

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

/// One write in a [`crate::Node::batch`].
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Replace the document with this JSON object.
    Put(DocKey, Value),
    /// Apply an RFC 7396 merge patch to an existing document.
    Patch(DocKey, Value),
    /// Delete the document (a tombstone that syncs).
    Delete(DocKey),
}

impl Write {
    pub(crate) fn key(&self) -> &DocKey {
        match self {
            Write::Put(k, _) | Write::Patch(k, _) | Write::Delete(k) => k,
        }
    }
}

/// What to do once the group's rows are stored (`Ok`) or not (`Err` with
/// the store's words): answer the command that staged them.
pub(super) type OnCommit = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// A marker into the staged rows, for undoing one command's writes.
pub(super) struct Mark(usize);

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

    /// Whether a document is in memory.
    pub(super) fn in_memory(&self, key: &DocKey) -> bool {
        self.dirty.contains_key(key) || self.docs.contains(key)
    }

    /// Where the staged rows end now.
    pub(super) fn mark(&self) -> Mark {
        Mark(self.rows.len())
    }

    /// Undoes one failed command: its rows after `mark` are discarded and
    /// its documents dropped from memory (reloaded from the store later).
    pub(super) fn discard(&mut self, mark: Mark, keys: impl Iterator<Item = DocKey>) {
        self.rows.truncate(mark.0);
        self.entries.truncate(mark.0);
        self.origins.truncate(mark.0);
        for key in keys {
            self.dirty.remove(&key);
        }
    }

    /// Runs `then` once the current group is stored (or fails to be).
    pub(super) fn on_commit(&mut self, then: OnCommit) {
        self.pending.push(then);
    }

    /// Applies one local write to its (loaded) document and stages it.
    pub(super) fn apply(&mut self, op: &Write) -> Result<Vec<String>> {
        let key = op.key();
        self.load(key)?;
        let time = now_ms() / 1000;
        // The document may hold peers' changes: guarded.
        let (change, heads) = self.guarded(key, |d| -> Result<_> {
            let cached = d.dirty.get_mut(key).expect("loaded above");
            let exists = !cached.doc.is_empty() && !cached.doc.is_deleted();
            let change = match op {
                Write::Put(_, json) => cached.doc.put(as_object(json)?, time)?,
                Write::Patch(_, patch) if exists => cached.doc.patch(as_object(patch)?, time)?,
                Write::Delete(_) if exists => cached.doc.delete(time)?,
                Write::Patch(..) | Write::Delete(_) => {
                    return Err(Error::NotFound(key.to_string()));
                }
            };
            Ok((change, cached.doc.heads()))
        })??;
        if let Some(committed) = change {
            self.stage(key, Some(committed.json), Origin::Local)?;
        }
        Ok(heads.iter().map(ToString::to_string).collect())
    }

    /// Queues a row storing what changed in a document since it was last
    /// stored. `json` is its materialized JSON when the caller already has it.
    /// Fails only if Automerge panicked on the document (now quarantined).
    pub(super) fn stage(
        &mut self,
        key: &DocKey,
        json: Option<Option<Map<String, Value>>>,
        origin: Origin,
    ) -> Result<()> {
        if is_log(key) {
            self.changed_logs.push(key.clone());
        }
        let compact_after = self.compact_after;
        let staged = self.guarded(key, |d| {
            let cached = d.dirty.get_mut(key)?;
            let heads = cached.doc.heads();
            if heads == cached.stored {
                return None;
            }
            let snapshot = cached.stored.is_empty() || cached.chunks >= compact_after;
            let chunk = if snapshot {
                cached.doc.save()
            } else {
                cached.doc.save_after(&cached.stored)
            };
            let value = json
                .unwrap_or_else(|| cached.doc.to_json())
                .map(Value::Object);
            cached.chunks = if snapshot { 1 } else { cached.chunks + 1 };
            cached.stored = heads.clone();
            Some((heads, chunk, snapshot, value))
        })?;
        let Some((heads, chunk, snapshot, value)) = staged else {
            return Ok(());
        };
        self.rows.push(WriteRow {
            key: key.clone(),
            heads: store::encode_heads(&heads),
            json: value.as_ref().map(Value::to_string),
            updated_at: now_ms(),
            chunk,
            snapshot,
        });
        self.entries.push(value.map(Arc::new));
        self.origins.push(origin);
        Ok(())
    }

    /// Whether rows are staged and not yet committed.
    pub(super) fn has_rows(&self) -> bool {
        !self.rows.is_empty()
    }

    /// Commits queued rows, then answers their commands, updates the read
    /// cache and queues events, in that order. Returns whether the rows
    /// were stored.
    pub(super) fn flush(&mut self) -> bool {
        if self.rows.is_empty() && self.pending.is_empty() {
            self.park_dirty();
            return true;
        }
        // The buffers go back afterwards, emptied: growing them afresh for
        // every group made reallocation a large part of a big sync.
        let mut rows = std::mem::take(&mut self.rows);
        let mut entries = std::mem::take(&mut self.entries);
        let mut origins = std::mem::take(&mut self.origins);
        let pending = std::mem::take(&mut self.pending);
        let stored = self.store.write(&rows);
        let ok = stored.is_ok();
        match stored {
            Ok(()) => {
                self.park_dirty();
                self.json
                    .commit(rows.iter().map(|r| r.key.clone()).zip(entries.drain(..)));
                for then in pending {
                    then(Ok(()));
                }
                for (r, origin) in rows.drain(..).zip(origins.drain(..)) {
                    self.changed.push(r.key.clone());
                    self.outgoing.push(ChangeEvent {
                        heads: hex_heads(&r.heads),
                        deleted: r.json.is_none(),
                        key: r.key,
                        origin,
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = rows.len(), "storing writes failed");
                // Memory is ahead of the store for these documents: forget them.
                self.dirty.clear();
                for r in &rows {
                    self.dropped(&r.key);
                }
                // Peers believe they delivered these changes: their sessions
                // must exchange them again, or they stay lost until a reconnect.
                let before = self.lost.len();
                self.lost.extend(
                    rows.iter()
                        .zip(&origins)
                        .filter(|(_, o)| **o == Origin::Remote)
                        .map(|(r, _)| r.key.clone()),
                );
                if self.lost.len() > before {
                    tracing::warn!(
                        documents = self.lost.len() - before,
                        "peers' changes were not stored; their sessions will fetch them again"
                    );
                }
                let message = e.to_string();
                for then in pending {
                    then(Err(message.clone()));
                }
            }
        }
        rows.clear();
        entries.clear();
        origins.clear();
        (self.rows, self.entries, self.origins) = (rows, entries, origins);
        ok
    }

    /// Moves committed documents back into the bounded cache.
    fn park_dirty(&mut self) {
        for (key, cached) in self.dirty.drain() {
            if !cached.doc.is_empty() {
                self.docs.put(key, cached);
            }
        }
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

fn hex_heads(encoded: &[u8]) -> Vec<String> {
    encoded
        .chunks_exact(32)
        .filter_map(|h| ChangeHash::try_from(h).ok())
        .map(|h| h.to_string())
        .collect()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
