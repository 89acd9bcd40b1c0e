//! The single write connection: loading documents for the writer actor and
//! storing each group of writes in one transaction.
//!
//! Its methods are synchronous and run inline on the writer actor's task: a
//! prepared statement costs a few µs, less than handing it to another thread,
//! and the actor serializes all writes anyway.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{StoreError, sqlite_err};
use crate::key::DocKey;

/// JSON fields that may be indexed ([`Writer::create_index`]): each index
/// is updated by every write.
pub const MAX_JSON_INDEXES: usize = 32;

/// Prepared statements kept per connection; the writer uses about a dozen.
const STATEMENT_CACHE: usize = 32;

/// One document write: the new row and the chunk to append.
#[derive(Debug, Clone)]
pub struct WriteRow {
    /// The document.
    pub key: DocKey,
    /// Its heads after this write ([`super::encode_heads`]).
    pub heads: Vec<u8>,
    /// Materialized JSON text, `None` when deleted.
    pub json: Option<String>,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// Automerge bytes: changes since the previous chunk, or a snapshot.
    pub chunk: Vec<u8>,
    /// Whether `chunk` is a full snapshot replacing all earlier chunks.
    pub snapshot: bool,
    /// Whether the change came from a peer (recorded for the change feed).
    pub remote: bool,
}

/// Makes commits of document writes fail on purpose, to test recovery from
/// a full disk: each [`CommitFaults::fail_next`] makes that many upcoming
/// [`Writer::write`] calls roll back and return a "disk is full" error.
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Clone, Debug, Default)]
pub struct CommitFaults(std::sync::Arc<std::sync::atomic::AtomicU32>);

#[cfg(any(test, feature = "fault-injection"))]
impl CommitFaults {
    /// Fails the next `n` commits of document writes (in addition to any
    /// already pending).
    pub fn fail_next(&self, n: u32) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Commits still to fail.
    pub fn pending(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether this commit fails (consuming one).
    fn take(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.0
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A document as stored: its chunks concatenated in order.
#[derive(Debug)]
pub struct Loaded {
    /// Concatenated Automerge chunks, loadable in one call.
    pub bytes: Vec<u8>,
    /// Heads recorded with the last write.
    pub heads: Vec<u8>,
    /// How many chunks the document has.
    pub chunk_count: u32,
}

/// The write connection. Owned by exactly one task.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
    /// Commits of [`Writer::write`] still to fail (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    faults: CommitFaults,
    /// Sync states kept per (peer, space).
    pub(super) sync_state_cap: usize,
    /// How long states with a peer not seen are kept.
    pub(super) sync_state_max_age: Duration,
    /// Tests: the next write containing this document fails (a full disk).
    #[cfg(test)]
    pub(crate) fail_commit_of: Option<DocKey>,
    /// The change-feed sequence number of the last committed row: only this
    /// connection writes `docs`, so a counter here numbers rows in commit
    /// order without a query per write.
    last_seq: u64,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Self {
            conn,
            #[cfg(any(test, feature = "fault-injection"))]
            faults: CommitFaults::default(),
            sync_state_cap: super::MAX_SYNC_STATES_PER_SPACE,
            sync_state_max_age: super::SYNC_STATE_MAX_AGE,
            #[cfg(test)]
            fail_commit_of: None,
            last_seq: 0,
        }
    }

    /// Loads the feed's counter from the stored rows (at open).
    pub(super) fn load_seq(&mut self) -> Result<(), StoreError> {
        let max: i64 = self
            .conn
            .query_row(super::LAST_SEQ, [], |r| r.get(0))
            .map_err(sqlite_err("reading the change sequence"))?;
        self.last_seq = u64::try_from(max).unwrap_or(0);
        Ok(())
    }

    /// The sequence number of the last stored change (0 for none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub(super) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Reads many documents, one prepared statement per key (a few µs each
    /// on rusqlite, so there is nothing to gain from multi-key statements).
    /// Keys never stored are absent from the result.
    pub fn load_many(&mut self, keys: &[&DocKey]) -> Result<HashMap<DocKey, Loaded>, StoreError> {
        let err = sqlite_err("loading documents");
        let mut out: HashMap<DocKey, Loaded> = HashMap::with_capacity(keys.len());
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.heads, d.chunk_count, c.data \
                 FROM docs d JOIN chunks c ON c.doc = d.doc \
                 WHERE d.space = ?1 AND d.collection = ?2 AND d.id = ?3 ORDER BY c.seq",
            )
            .map_err(err)?;
        for key in keys {
            let mut rows = stmt
                .query(params![key.space(), key.collection(), key.id()])
                .map_err(err)?;
            let mut loaded: Option<Loaded> = None;
            while let Some(row) = rows.next().map_err(err)? {
                let entry = match &mut loaded {
                    Some(l) => l,
                    None => loaded.insert(Loaded {
                        bytes: Vec::new(),
                        heads: row.get(0).map_err(err)?,
                        chunk_count: u32::try_from(row.get::<_, i64>(1).map_err(err)?)
                            .unwrap_or(u32::MAX),
                    }),
                };
                let data = row
                    .get_ref(2)
                    .and_then(|v| v.as_blob().map_err(Into::into))
                    .map_err(err)?;
                entry.bytes.extend_from_slice(data);
            }
            if let Some(l) = loaded {
                out.insert((*key).clone(), l);
            }
        }
        Ok(out)
    }

    /// Stores all rows atomically, in order: per row, an upsert of the
    /// document row and an append of its chunk (after deleting the older
    /// chunks when it is a snapshot). Returns the change-feed sequence number
    /// of the first row; row `i` has `first + i`. A failed commit uses no
    /// numbers: nobody saw them, and the next commit takes them.
    pub fn write(&mut self, rows: &[WriteRow]) -> Result<u64, StoreError> {
        let first = self.last_seq + 1;
        if rows.is_empty() {
            return Ok(first);
        }
        #[cfg(test)]
        if let Some(key) = self
            .fail_commit_of
            .take_if(|k| rows.iter().any(|r| &r.key == k))
        {
            return Err(StoreError::WriteFailed(format!("injected for {key}")));
        }
        let err = sqlite_err("writing documents");
        // IMMEDIATE takes the write lock up front instead of upgrading later.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO docs (space, collection, id, heads, json, deleted, updated_at, chunk_count, seq, remote) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?9, ?10) \
                     ON CONFLICT (space, collection, id) DO UPDATE SET \
                         heads = excluded.heads, json = excluded.json, deleted = excluded.deleted, \
                         updated_at = excluded.updated_at, seq = excluded.seq, remote = excluded.remote, \
                         chunk_count = CASE WHEN ?8 THEN 1 ELSE chunk_count + 1 END \
                     RETURNING doc",
                )
                .map_err(err)?;
            let mut clear = tx
                .prepare_cached("DELETE FROM chunks WHERE doc = ?1")
                .map_err(err)?;
            // max(seq)+1 rather than chunk_count: one index seek, and it
            // cannot collide even if the two ever disagreed.
            let mut append = tx
                .prepare_cached(
                    "INSERT INTO chunks (doc, seq, data) \
                     SELECT ?1, coalesce(max(seq), 0) + 1, ?2 FROM chunks WHERE doc = ?1",
                )
                .map_err(err)?;
            for (row, seq) in rows.iter().zip(first..) {
                let doc: i64 = upsert
                    .query_row(
                        params![
                            row.key.space(),
                            row.key.collection(),
                            row.key.id(),
                            row.heads,
                            row.json,
                            row.json.is_none(),
                            row.updated_at,
                            row.snapshot,
                            i64::try_from(seq).unwrap_or(i64::MAX),
                            row.remote,
                        ],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                if row.snapshot {
                    clear.execute([doc]).map_err(err)?;
                }
                append.execute(params![doc, row.chunk]).map_err(err)?;
            }
        }
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.take() {
            // Dropping the transaction rolls it back, as a failed commit does.
            drop(tx);
            return Err(StoreError::Sqlite {
                op: "committing writes",
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    Some("database or disk is full (injected)".into()),
                ),
            });
        }
        tx.commit().map_err(sqlite_err("committing writes"))?;
        self.last_seq = first + rows.len() as u64 - 1;
        Ok(first)
    }

    /// A handle that makes the next commits of [`Writer::write`] fail.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn commit_faults(&self) -> CommitFaults {
        self.faults.clone()
    }

    /// Creates an expression index on a JSON field path (already validated
    /// and rendered as a SQL string literal by the query module).
    pub fn create_index(
        &mut self,
        field: &str,
        path_literal: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let err = sqlite_err("creating an index");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Asking again is free: no rebuild, no `ANALYZE` scan holding the
        // writer.
        let existing: i64 = tx
            .query_row(
                "SELECT count(*) FROM json_indexes WHERE field = ?1",
                [field],
                |r| r.get(0),
            )
            .map_err(err)?;
        if existing > 0 {
            return Ok(());
        }
        // Every index slows every write: their number is bounded.
        let count: i64 = tx
            .query_row("SELECT count(*) FROM json_indexes", [], |r| r.get(0))
            .map_err(err)?;
        if count >= MAX_JSON_INDEXES as i64 {
            return Err(StoreError::InvalidQuery(format!(
                "the replica already indexes {count} fields, the most it keeps ({MAX_JSON_INDEXES}): each index slows every write"
            )));
        }
        // Fresh statistics let the planner prefer the new index over the
        // (space, collection, id) key when the filter is selective.
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS \"{name}\" ON docs (space, collection, json_extract(json, {path_literal}), id); \
             ANALYZE docs;"
        ))
        .map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO json_indexes (field, name) VALUES (?1, ?2)",
            params![field, name],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Checkpoints the WAL into the main file (used on shutdown).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        // The pragma returns a row (busy, log, checkpointed), so not `execute`.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sqlite_err("checkpointing"))
    }

    /// Closes the connection cleanly.
    pub fn close(self) -> Result<(), StoreError> {
        self.conn.close().map_err(|(_, e)| StoreError::Sqlite {
            op: "closing the database",
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> WriteRow {
        WriteRow {
            key: DocKey::new("s", "notes", id).unwrap(),
            heads: vec![0; 32],
            json: Some("{}".into()),
            updated_at: 1,
            chunk: vec![1],
            snapshot: true,
            remote: false,
        }
    }

    #[tokio::test]
    async fn an_injected_commit_failure_stores_nothing_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _reader) = super::super::open(dir.path()).await.unwrap();
        let faults = w.commit_faults();
        faults.fail_next(1);
        match w.write(&[row("a"), row("b")]) {
            Err(StoreError::Sqlite { op, source }) => {
                assert_eq!(op, "committing writes");
                assert_eq!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DiskFull)
                );
            }
            other => panic!("expected a failed commit, got {other:?}"),
        }
        assert_eq!(faults.pending(), 0);
        let keys = [row("a").key, row("b").key];
        assert!(
            w.load_many(&keys.iter().collect::<Vec<_>>())
                .unwrap()
                .is_empty()
        );
        // The next commit goes through.
        w.write(&[row("a")]).unwrap();
        assert_eq!(w.load_many(&[&keys[0]]).unwrap().len(), 1);
    }
}
