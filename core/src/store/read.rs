//! Read-only connections: point reads and structured queries, plus the
//! handle to the `sql()` connections (module `sql`). These never block the
//! writer (WAL readers run concurrently with it).
//!
//! Point reads run inline on the calling task: a prepared primary-key lookup
//! takes a few µs, less than any hand-off to another thread. Queries may
//! scan many rows (milliseconds or more), so they run on tokio's
//! blocking pool, where they cannot stall other tasks on a runtime thread;
//! the hand-off is paid once per statement (weft-bench's 2 ms query measured
//! the same inline and on the blocking pool, within noise).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::query::{Param, Query, QueryRow, compile};
use super::sql::SqlPool;
use super::{StoreError, connect, sqlite_err};
use crate::key::DocKey;

/// Idle read connections kept open. More are opened when more reads run at
/// once, and closed when they are returned beyond this many.
const MAX_IDLE: usize = 4;

/// A cheap, cloneable handle to the read connections.
#[derive(Clone, Debug)]
pub struct Reader {
    pool: Arc<Pool>,
    sql: Arc<SqlPool>,
}

#[derive(Debug)]
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Pool {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The lock guards a plain list; a panic elsewhere cannot leave it torn.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reader {
    /// Opens the first read connection, so a database that cannot be read
    /// fails at open rather than at the first read.
    pub(super) fn new(path: PathBuf) -> Result<Self, StoreError> {
        let first = connect(&path, true).map_err(sqlite_err("opening read connections"))?;
        Ok(Self {
            sql: Arc::new(SqlPool::new(path.clone())),
            pool: Arc::new(Pool {
                path,
                idle: Mutex::new(vec![first]),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Closes every idle read connection and interrupts running `sql()`
    /// statements (without waiting for them); later reads fail with
    /// [`StoreError::Closed`].
    pub async fn close(&self) {
        self.sql.close();
        self.pool.closed.store(true, Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.pool.idle());
        drop(idle);
    }

    /// Runs `f` on a read connection: an idle one, or a new one when all
    /// are busy. The pool lock is held only to take and return it.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.pool.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let conn = match self.pool.idle().pop() {
            Some(c) => c,
            None => {
                connect(&self.pool.path, true).map_err(sqlite_err("opening a read connection"))?
            }
        };
        let out = f(&conn);
        let mut idle = self.pool.idle();
        if idle.len() < MAX_IDLE && !self.pool.closed.load(Ordering::SeqCst) {
            idle.push(conn);
        }
        out
    }

    /// `with` on tokio's blocking pool (see the module doc).
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.clone();
        match tokio::task::spawn_blocking(move || reader.with(f)).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down.
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// The materialized JSON text of a live document (inline: see the
    /// module doc).
    pub fn get(&self, key: &DocKey) -> Result<Option<String>, StoreError> {
        self.with(|conn| {
            let err = sqlite_err("reading a document");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT json FROM docs \
                     WHERE space = ?1 AND collection = ?2 AND id = ?3 AND deleted = 0",
                )
                .map_err(err)?;
            let mut rows = stmt
                .query([key.space(), key.collection(), key.id()])
                .map_err(err)?;
            match rows.next().map_err(err)? {
                Some(row) => Ok(row.get(0).map_err(err)?),
                None => Ok(None),
            }
        })
    }

    /// The JSON text and the encoded heads (sorted 32-byte hashes) of a
    /// live document, from one row (inline, like [`Self::get`]).
    pub fn get_with_heads(&self, key: &DocKey) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.with(|conn| {
            let err = sqlite_err("reading a document");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT json, heads FROM docs \
                     WHERE space = ?1 AND collection = ?2 AND id = ?3 AND deleted = 0",
                )
                .map_err(err)?;
            let mut rows = stmt
                .query([key.space(), key.collection(), key.id()])
                .map_err(err)?;
            match rows.next().map_err(err)? {
                Some(row) => {
                    let json: Option<String> = row.get(0).map_err(err)?;
                    let heads: Vec<u8> = row.get(1).map_err(err)?;
                    Ok(json.map(|j| (j, heads)))
                }
                None => Ok(None),
            }
        })
    }

    /// Runs a structured query in `space`; rows are parsed on the blocking
    /// thread too.
    pub async fn query(&self, q: &Query, space: &str) -> Result<Vec<QueryRow>, StoreError> {
        let (sql, params) = compile(q, space)?;
        self.blocking(move |conn| {
            let err = sqlite_err("running a query");
            let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
            for (i, p) in params.iter().enumerate() {
                match p {
                    Param::Text(s) => stmt.raw_bind_parameter(i + 1, s),
                    Param::Int(n) => stmt.raw_bind_parameter(i + 1, n),
                    Param::Real(f) => stmt.raw_bind_parameter(i + 1, f),
                }
                .map_err(err)?;
            }
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(err)? {
                let id: String = row.get(0).map_err(err)?;
                let text = row
                    .get_ref(1)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(err)?;
                let json = serde_json::from_str(text).map_err(|e| {
                    StoreError::Damaged(format!("stored JSON of {id:?} does not parse: {e}"))
                })?;
                out.push(QueryRow { id, json });
            }
            Ok(out)
        })
        .await
    }

    /// Runs one read-only statement on a `sql()` connection (see the `sql`
    /// module), stopped after `timeout` (at most [`super::SQL_TIMEOUT`]).
    pub async fn sql(
        &self,
        statement: &str,
        timeout: Duration,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        self.sql.run(statement, timeout).await
    }

    /// How many `sql()` statements are executing now, updated as they start
    /// and end.
    pub fn sql_executing(&self) -> watch::Receiver<usize> {
        self.sql.executing()
    }
}
