//! Read-only connections: point reads, structured queries and the read-only
//! SQL entry point. These never block the writer (WAL readers run
//! concurrently with it).
//!
//! Point reads run inline on the calling task: a prepared primary-key lookup
//! takes a few µs, less than any hand-off to another thread. Queries and
//! `sql()` may scan many rows (milliseconds or more), so they run on tokio's
//! blocking pool, where they cannot stall other tasks on a runtime thread;
//! the hand-off is paid once per statement (weft-bench's 2 ms query measured
//! the same inline and on the blocking pool, within noise).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::query::{Param, Query, QueryRow, compile};
use super::{StoreError, connect, sqlite_err};
use crate::error::Error;
use crate::key::DocKey;

/// Idle read connections kept open. More are opened when more reads run at
/// once, and closed when they are returned beyond this many.
const MAX_IDLE: usize = 4;

/// A cheap, cloneable handle to the read connections.
#[derive(Clone, Debug)]
pub struct Reader {
    pool: Arc<Pool>,
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
            pool: Arc::new(Pool {
                path,
                idle: Mutex::new(vec![first]),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Closes every idle read connection; later reads fail with
    /// [`Error::Closed`].
    pub async fn close(&self) {
        self.pool.closed.store(true, Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.pool.idle());
        drop(idle);
    }

    /// Runs `f` on a read connection: an idle one, or a new one when all
    /// are busy. The pool lock is held only to take and return it.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        if self.pool.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
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
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let reader = self.clone();
        match tokio::task::spawn_blocking(move || reader.with(f)).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down.
            Err(_) => Err(Error::Closed),
        }
    }

    /// The materialized JSON text of a live document (inline: see the
    /// module doc).
    pub fn get(&self, key: &DocKey) -> Result<Option<String>, Error> {
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

    /// Runs a structured query in `space`; rows are parsed on the blocking
    /// thread too.
    pub async fn query(&self, q: &Query, space: &str) -> Result<Vec<QueryRow>, Error> {
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

    /// Runs a read-only statement; each row becomes a JSON object keyed by
    /// column name.
    pub async fn sql(&self, statement: &str) -> Result<Vec<Map<String, Value>>, Error> {
        check_read_only(statement)?;
        let statement = statement.to_owned();
        self.blocking(move |conn| {
            // Not cached: ad-hoc statements would evict the hot ones.
            let mut stmt = conn
                .prepare(&statement)
                .map_err(|e| Error::Sql(sql_message(&e)))?;
            let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut rows = stmt.query([]).map_err(|e| Error::Sql(sql_message(&e)))?;
            let mut out = Vec::new();
            // Rows are stepped one at a time and capped, so a runaway
            // statement (a recursive CTE without end) stops at the cap
            // instead of exhausting memory.
            while let Some(row) = rows.next().map_err(|e| Error::Sql(sql_message(&e)))? {
                if out.len() == MAX_SQL_ROWS {
                    return Err(Error::Sql(format!(
                        "the statement returns more than {MAX_SQL_ROWS} rows; add a LIMIT or aggregate"
                    )));
                }
                out.push(row_to_json(row, &names)?);
            }
            Ok(out)
        })
        .await
    }
}

/// Most rows one `sql()` call returns.
pub const MAX_SQL_ROWS: usize = 100_000;

/// First keyword must start a query. The connection itself is read-only
/// (opened with SQLITE_OPEN_READONLY and `query_only`), so this check only
/// gives a clearer message than SQLite's "attempt to write a readonly database".
fn check_read_only(statement: &str) -> Result<(), Error> {
    let word = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match word.as_str() {
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" => Ok(()),
        "" => Err(Error::Sql("empty statement".into())),
        other => Err(Error::Sql(format!(
            "{other} is not allowed: sql() is read-only and runs SELECT, WITH, VALUES or EXPLAIN; \
             change documents with put, patch or delete"
        ))),
    }
}

fn sql_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

/// Maps each column by the type of its value (SQLite columns are dynamically
/// typed): integers and reals to numbers, text to strings, blobs to arrays
/// of bytes.
fn row_to_json(row: &rusqlite::Row<'_>, names: &[String]) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for (i, name) in names.iter().enumerate() {
        let value = match row.get_ref(i).map_err(|e| Error::Sql(e.to_string()))? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Text(t) => Value::from(
                std::str::from_utf8(t).map_err(|e| Error::Sql(format!("column {name}: {e}")))?,
            ),
            ValueRef::Blob(b) => Value::from(b.to_vec()),
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_pass_the_keyword_check() {
        for ok in [
            "SELECT 1",
            "  with x as (select 1) select * from x",
            "VALUES (1)",
            "explain select 1",
        ] {
            assert!(check_read_only(ok).is_ok(), "{ok}");
        }
        for bad in [
            "DELETE FROM docs",
            "PRAGMA query_only=0",
            "ATTACH 'x' AS y",
            "",
            "  ;",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad}");
        }
    }
}
