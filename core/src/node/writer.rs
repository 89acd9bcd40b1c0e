//! The writer actor: sole owner of the write connection and of the Automerge
//! documents in memory. It takes every queued command at once (group commit),
//! applies them to the documents, and stores the whole group in one
//! transaction, so the commit is paid per group, not per write.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;

use automerge::{ActorId, ChangeHash};
use ed25519_dalek::SigningKey;
use lru::LruCache;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::cache::{Entry, JsonCache};
use super::events::{ChangeEvent, Origin};
use crate::auth::Role;
use crate::doc::{ChangeInfo, DocError, Document, as_object};
use crate::error::{Error, Result};
use crate::key::DocKey;
use crate::store::{self, Loaded, ProcessLock, WriteRow, Writer};

pub(crate) mod guard;
pub(crate) use guard::{Quarantine, quarantined};

/// Most commands folded into one group commit.
const MAX_GROUP: usize = 256;

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

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Command {
    Write(Vec<Write>, Reply<Vec<Vec<String>>>),
    History(DocKey, Reply<Vec<ChangeInfo>>),
    GetAt(DocKey, Vec<ChangeHash>, Reply<Option<Value>>),
    CreateIndex(String, String, String, Reply<()>),
    IntegrityCheck(Reply<()>),
    Peers(Reply<Vec<super::PeerStatus>>),
    PauseNetwork(Reply<()>),
    ResumeNetwork(Reply<()>),
    Space(super::spaces::SpaceCommand),
    External(super::external::ExternalCommand),
    Close(oneshot::Sender<()>),
    /// Tests: run this on the actor (inspect it, inject faults).
    #[cfg(test)]
    Test(Box<dyn FnOnce(&mut Actor) + Send>),
}

/// A document in memory and what of it is already stored.
pub(super) struct Cached {
    pub(super) doc: Document,
    /// Heads as of the last stored chunk (empty: never stored).
    stored: Vec<ChangeHash>,
    chunks: u32,
}

impl Cached {
    pub(super) fn empty(actor: &ActorId) -> Self {
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

/// A write command whose rows are queued but not yet committed.
struct Pending {
    reply: Reply<Vec<Vec<String>>>,
    heads: Vec<Vec<String>>,
}

pub(crate) struct Actor {
    pub(super) store: Writer,
    rx: mpsc::Receiver<Command>,
    /// Clean documents (everything stored), least recently used dropped.
    pub(super) docs: LruCache<DocKey, Cached>,
    /// Documents changed by the current group, not yet committed.
    pub(super) dirty: HashMap<DocKey, Cached>,
    /// Stored state of documents the current group will write (`None`: never stored).
    pub(super) prefetched: HashMap<DocKey, Option<Loaded>>,
    pub(super) rows: Vec<WriteRow>,
    /// The JSON of each row, for the read cache.
    entries: Vec<Entry>,
    /// Where each row's change came from.
    origins: Vec<Origin>,
    pending: Vec<Pending>,
    /// Documents committed since peers were last told.
    pub(super) changed: Vec<DocKey>,
    pub(super) sync: super::replication::SyncState,
    json: Arc<JsonCache>,
    events: broadcast::Sender<ChangeEvent>,
    pub(super) actor: ActorId,
    compact_after: u32,
    /// Spaces this device is in, with their evaluated membership.
    pub(super) spaces: BTreeMap<String, super::spaces::Joined>,
    /// The node key, for membership entries and invites.
    pub(super) signing: SigningKey,
    /// Documents whose Automerge handling panicked.
    pub(super) quarantine: Quarantine,
    /// Tests: Automerge work on this document panics.
    #[cfg(test)]
    pub(super) panic_on: Option<DocKey>,
    _lock: ProcessLock,
}

/// What the writer actor is built from.
pub(crate) struct Parts {
    pub store: Writer,
    pub rx: mpsc::Receiver<Command>,
    pub doc_cache_size: usize,
    pub json: Arc<JsonCache>,
    pub events: broadcast::Sender<ChangeEvent>,
    pub actor: ActorId,
    pub compact_after: u32,
    pub lock: ProcessLock,
    pub sync: super::replication::SyncState,
    pub signing: SigningKey,
    /// Rows of the spaces table: `(id, name, is_default)`.
    pub joined: Vec<crate::store::JoinedSpace>,
}

impl Actor {
    pub(crate) fn new(p: Parts) -> Self {
        let cap = NonZeroUsize::new(p.doc_cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            store: p.store,
            rx: p.rx,
            docs: LruCache::new(cap),
            dirty: HashMap::new(),
            prefetched: HashMap::new(),
            rows: Vec::new(),
            entries: Vec::new(),
            origins: Vec::new(),
            pending: Vec::new(),
            changed: Vec::new(),
            sync: p.sync,
            json: p.json,
            events: p.events,
            actor: p.actor,
            compact_after: p.compact_after.max(1),
            spaces: Actor::joined(p.joined),
            signing: p.signing,
            quarantine: Quarantine::default(),
            #[cfg(test)]
            panic_on: None,
            _lock: p.lock,
        }
    }

    /// Runs until `Close` or until every handle is gone: commands from
    /// handles, events from the network and a sync timer, one at a time.
    pub(crate) async fn run(mut self) {
        let mut close = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(
            super::replication::TICK_MS,
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.keep_inviters().await;
        while close.is_none() {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(first) => close = self.commands(first).await,
                    None => break,
                },
                Some(event) = self.sync.next_event() => self.net_events(event).await,
                _ = tick.tick() => self.tick().await,
            }
            // Tell peers about everything committed in this round.
            self.announce().await;
            self.sync.publish();
        }
        self.sync.shutdown().await;
        if let Err(e) = self.store.checkpoint() {
            tracing::warn!(error = %e, "checkpoint on close failed");
        }
        if let Err(e) = self.store.close() {
            tracing::warn!(error = %e, "closing the database failed");
        }
        // Release the replica before answering, so the caller may reopen it
        // as soon as `close` returns.
        drop(self._lock);
        tracing::debug!("writer stopped");
        if let Some(reply) = close {
            let _ = reply.send(());
        }
    }

    /// Handles a group of queued commands; returns the reply channel of a
    /// `Close` among them.
    async fn commands(&mut self, first: Command) -> Option<oneshot::Sender<()>> {
        let mut close = None;
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match self.rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(_) => break,
            }
        }
        self.prefetch(&group);
        for cmd in group {
            match cmd {
                Command::Write(ops, reply) => self.write(ops, reply).await,
                Command::Close(reply) => close = Some(reply),
                other => {
                    // Reads see committed state only.
                    self.flush().await;
                    self.serve(other).await;
                }
            }
        }
        self.flush().await;
        self.prefetched.clear();
        close
    }

    async fn serve(&mut self, cmd: Command) {
        match cmd {
            Command::History(key, reply) => {
                let r = match self.clean_doc(&key).await {
                    Ok(()) => self.guarded(&key, |a| a.clean(&key).doc.history()),
                    Err(e) => Err(e),
                };
                let _ = reply.send(r);
            }
            Command::GetAt(key, heads, reply) => {
                let r = match self.clean_doc(&key).await {
                    Ok(()) => self
                        .guarded(&key, |a| a.clean(&key).doc.json_at(&heads))
                        .and_then(|r| {
                            r.map(|j| j.map(Value::Object)).map_err(|e| match e {
                                DocError::UnknownHeads => Error::UnknownHeads(key.to_string()),
                                e => e.into(),
                            })
                        }),
                    Err(e) => Err(e),
                };
                let _ = reply.send(r);
            }
            Command::CreateIndex(field, literal, name, reply) => {
                let r = self.store.create_index(&field, &literal, &name);
                let _ = reply.send(r.map_err(Error::from));
            }
            Command::IntegrityCheck(reply) => {
                let _ = reply.send(self.store.integrity_check().map_err(Error::from));
            }
            Command::Peers(reply) => {
                let _ = reply.send(Ok(self.peer_statuses().await));
            }
            Command::PauseNetwork(reply) => {
                self.pause_network().await;
                let _ = reply.send(Ok(()));
            }
            Command::ResumeNetwork(reply) => {
                let _ = reply.send(self.resume_network());
            }
            Command::Space(cmd) => self.space_command(cmd).await,
            Command::External(cmd) => self.external_sync(cmd).await,
            #[cfg(test)]
            Command::Test(f) => f(self),
            Command::Write(..) | Command::Close(_) => unreachable!("handled by run"),
        }
    }

    /// Makes a stored document present among the clean ones (read it with
    /// [`Self::clean`]); `NotFound` if it was never written.
    async fn clean_doc(&mut self, key: &DocKey) -> Result<()> {
        self.load(key).await?;
        match self.dirty.remove(key) {
            Some(c) if !c.doc.is_empty() => {
                self.docs.put(key.clone(), c);
                Ok(())
            }
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    /// A document [`Self::clean_doc`] made present.
    fn clean(&mut self, key: &DocKey) -> &mut Cached {
        self.docs.get_mut(key).expect("made present by clean_doc")
    }

    /// Loads every document the group writes that is not in memory, with
    /// one query per few hundred documents instead of one per document.
    fn prefetch(&mut self, group: &[Command]) {
        let keys: Vec<DocKey> = group
            .iter()
            .filter_map(|c| match c {
                Command::Write(ops, _) => Some(ops.iter().map(Write::key)),
                _ => None,
            })
            .flatten()
            .cloned()
            .collect();
        self.prefetch_docs(keys);
    }

    /// Reads the stored documents among `keys` not already in memory, in
    /// as few queries as possible; each is then taken by [`Self::load`].
    pub(super) fn prefetch_docs(&mut self, keys: Vec<DocKey>) {
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

    /// Makes `key` present in `dirty`, loading it from the store if needed.
    pub(super) async fn load(&mut self, key: &DocKey) -> Result<()> {
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

    /// Applies one command's writes. All or nothing: on error its documents
    /// are dropped from memory (reloaded from the store later) and its rows
    /// discarded.
    async fn write(&mut self, ops: Vec<Write>, reply: Reply<Vec<Vec<String>>>) {
        let mark = self.rows.len();
        let mut heads = Vec::with_capacity(ops.len());
        let mut result = Ok(());
        for op in &ops {
            match self.apply(op).await {
                Ok(h) => heads.push(h),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match result {
            Ok(()) => self.pending.push(Pending { reply, heads }),
            Err(e) => {
                self.rows.truncate(mark);
                self.entries.truncate(mark);
                self.origins.truncate(mark);
                for op in &ops {
                    self.dirty.remove(op.key());
                }
                // Earlier commands' rows may touch the documents just dropped:
                // store them now so a reload sees them.
                self.flush().await;
                let _ = reply.send(Err(e));
            }
        }
    }

    async fn apply(&mut self, op: &Write) -> Result<Vec<String>> {
        let key = op.key();
        self.require(key.space(), Role::Writer).await?;
        self.load(key).await?;
        let time = now_ms() / 1000;
        // The document may hold peers' changes: guarded.
        let (change, heads) = self.guarded(key, |a| -> Result<_> {
            let cached = a.dirty.get_mut(key).expect("loaded above");
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
        self.log_changed(key);
        let compact_after = self.compact_after;
        let staged = self.guarded(key, |a| {
            let cached = a.dirty.get_mut(key)?;
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

    /// Commits queued rows, then answers their commands, updates the read
    /// cache and publishes events, in that order. Returns whether the rows
    /// were stored.
    pub(super) async fn flush(&mut self) -> bool {
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
                for p in pending {
                    let _ = p.reply.send(Ok(p.heads));
                }
                for (r, origin) in rows.drain(..).zip(origins.drain(..)) {
                    self.changed.push(r.key.clone());
                    let event = ChangeEvent {
                        heads: hex_heads(&r.heads),
                        deleted: r.json.is_none(),
                        key: r.key,
                        origin,
                    };
                    // No subscribers is fine.
                    let _ = self.events.send(event);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = rows.len(), "storing writes failed");
                // Memory is ahead of the store for these documents: forget them.
                self.dirty.clear();
                for r in &rows {
                    self.log_dropped(&r.key);
                }
                // Peers believe they delivered these changes: their sessions
                // must exchange them again, or they stay lost until a reconnect.
                let lost: Vec<DocKey> = rows
                    .iter()
                    .zip(&origins)
                    .filter(|(_, o)| **o == Origin::Remote)
                    .map(|(r, _)| r.key.clone())
                    .collect();
                if !lost.is_empty() {
                    tracing::warn!(
                        documents = lost.len(),
                        "peers' changes were not stored; their sessions will fetch them again"
                    );
                    self.sync.engine.lost(&lost);
                }
                let message = e.to_string();
                for p in pending {
                    let _ = p
                        .reply
                        .send(Err(Error::Store(store::StoreError::WriteFailed(
                            message.clone(),
                        ))));
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
