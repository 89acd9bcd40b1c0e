//! The unit of work: local writes applied to their documents, changes
//! staged as rows, and the group committed in one transaction, after which
//! its commands are answered and its events queued.

use std::sync::Arc;

use automerge::ChangeHash;
use serde_json::{Map, Value};

use super::precondition::{Precondition, WriteOutcome, sorted_hex};
use super::{Docs, is_log, now_ms};
use crate::doc::as_object;
use crate::error::{Error, Result};
use crate::key::DocKey;
use crate::node::events::{ChangeEvent, Origin};
use crate::store::{self, WriteRow};

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
pub(crate) type OnCommit = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// A marker into the staged rows, for undoing one command's writes.
pub(crate) struct Mark(usize);

impl Docs {
    /// Where the staged rows end now.
    pub(in crate::node) fn mark(&self) -> Mark {
        Mark(self.rows.len())
    }

    /// Undoes one failed command: its rows after `mark` are discarded and
    /// its documents dropped from memory (reloaded from the store later).
    pub(in crate::node) fn discard(&mut self, mark: Mark, keys: impl Iterator<Item = DocKey>) {
        self.rows.truncate(mark.0);
        self.entries.truncate(mark.0);
        self.origins.truncate(mark.0);
        for key in keys {
            self.dirty.remove(&key);
        }
    }

    /// Runs `then` once the current group is stored (or fails to be).
    pub(in crate::node) fn on_commit(&mut self, then: OnCommit) {
        self.pending.push(then);
    }

    /// Applies one local write to its (loaded) document and stages it, if
    /// the document's state meets `precondition` (checked here, on the
    /// actor, so nothing can change it in between).
    pub(in crate::node) fn apply(
        &mut self,
        op: &Write,
        precondition: &Precondition,
    ) -> Result<WriteOutcome> {
        let key = op.key();
        self.load(key)?;
        let time = now_ms() / 1000;
        // The document may hold peers' changes: guarded.
        let (change, heads, existed) = self.guarded(key, |d| -> Result<_> {
            let cached = d.dirty.get_mut(key).expect("loaded above");
            let exists = !cached.doc.is_empty() && !cached.doc.is_deleted();
            precondition.check(key, exists, &cached.doc.heads())?;
            let change = match op {
                Write::Put(_, json) => cached.doc.put(as_object(json)?, time)?,
                Write::Patch(_, patch) if exists => cached.doc.patch(as_object(patch)?, time)?,
                Write::Delete(_) if exists => cached.doc.delete(time)?,
                Write::Patch(..) | Write::Delete(_) => {
                    return Err(Error::NotFound(key.to_string()));
                }
            };
            Ok((change, cached.doc.heads(), exists))
        })??;
        if let Some(committed) = change {
            self.stage(key, Some(committed.json), Origin::Local)?;
        }
        Ok(WriteOutcome {
            heads: sorted_hex(&heads),
            created: matches!(op, Write::Put(..)) && !existed,
        })
    }

    /// Queues a row storing what changed in a document since it was last
    /// stored. `json` is its materialized JSON when the caller already has it.
    /// Fails only if Automerge panicked on the document (now quarantined).
    pub(in crate::node) fn stage(
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
            remote: origin == Origin::Remote,
        });
        self.entries.push(value.map(Arc::new));
        self.origins.push(origin);
        Ok(())
    }

    /// Whether rows are staged and not yet committed.
    pub(in crate::node) fn has_rows(&self) -> bool {
        !self.rows.is_empty()
    }

    /// Commits queued rows, then answers their commands, updates the read
    /// cache and queues events, in that order. Returns whether the rows
    /// were stored.
    pub(in crate::node) fn flush(&mut self) -> bool {
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
            Ok(first) => {
                self.park_dirty();
                self.json
                    .commit(rows.iter().map(|r| r.key.clone()).zip(entries.drain(..)));
                for then in pending {
                    then(Ok(()));
                }
                for ((r, origin), seq) in rows.drain(..).zip(origins.drain(..)).zip(first..) {
                    self.changed.push(r.key.clone());
                    self.outgoing.push(ChangeEvent {
                        heads: hex_heads(&r.heads),
                        deleted: r.json.is_none(),
                        key: r.key,
                        origin,
                        seq,
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
}

pub(in crate::node) fn hex_heads(encoded: &[u8]) -> Vec<String> {
    encoded
        .chunks_exact(32)
        .filter_map(|h| ChangeHash::try_from(h).ok())
        .map(|h| h.to_string())
        .collect()
}
