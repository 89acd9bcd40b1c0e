//! The read-only SQL entry point (`Node::sql`): caller-written statements on
//! connections of their own, apart from the read pool that `get` and `query`
//! use, so nothing a statement does can change how those behave.
//!
//! Each connection is opened read-only with `query_only`, and an authorizer
//! lets a statement only select, read and call ordinary functions: pragmas,
//! `ATTACH`, writes, transactions and schema changes fail at prepare time,
//! `EXPLAIN` included (some pragmas act while being compiled, and the
//! process-wide ones such as `hard_heap_limit` would reach the writer).
//! A statement runs for at most [`SQL_TIMEOUT`], is interrupted when its
//! caller goes away or the node closes, and may return at most
//! [`MAX_SQL_ROWS`] rows and [`MAX_SQL_RESULT_BYTES`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, InterruptHandle};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, watch};

use super::{StoreError, connect, sqlite_err};

/// Longest a statement runs: honest queries over a replica take
/// milliseconds to a second or two; past this it is a runaway.
pub const SQL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most rows one `sql()` call returns (a listing of 100k documents fits).
pub const MAX_SQL_ROWS: usize = 100_000;
/// Most bytes one `sql()` result holds in memory (estimated per value), so
/// 100k rows of ~1 KB documents fit but a cross join cannot fill memory.
pub const MAX_SQL_RESULT_BYTES: usize = 128 << 20;
/// Longest string or blob a statement may build or read (SQLite's
/// `SQLITE_LIMIT_LENGTH`, default 1 GB): documents are at most 1 MiB, so
/// 16 MiB leaves room while `randomblob(1e9)` cannot allocate a gigabyte.
pub const MAX_SQL_VALUE_BYTES: usize = 16 << 20;
/// Longest statement text accepted (`SQLITE_LIMIT_SQL_LENGTH`): hand- or
/// tool-written queries are far shorter; this bounds parsing work.
pub const MAX_SQL_STATEMENT_BYTES: usize = 100_000;
/// Statements running at once; more wait. Bounds the cores and connections
/// that `sql()` callers (such as API clients) can occupy together.
pub const MAX_SQL_CONCURRENT: usize = 4;

/// Virtual-machine steps between deadline checks: about tens of µs of work,
/// so a statement stops within a millisecond of its deadline.
const PROGRESS_OPS: i32 = 10_000;

/// Functions refused even in a query: extension loading and tokenizer
/// pointers reach native code; the file functions are the shell's.
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
];

/// Approximate in-memory size of one JSON value, charged per column value
/// and per blob byte (each becomes a JSON number).
const VALUE_COST: usize = std::mem::size_of::<Value>();

/// The `sql()` connections and the statements running on them.
pub(super) struct SqlPool {
    path: PathBuf,
    idle: Mutex<Vec<SqlConn>>,
    permits: Semaphore,
    running: Mutex<HashMap<u64, Arc<Running>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Statements executing on a connection now (for tests and shutdown).
    executing: watch::Sender<usize>,
}

impl std::fmt::Debug for SqlPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlPool")
            .field("path", &self.path)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// One connection with its authorizer's last refusal.
struct SqlConn {
    conn: Connection,
    /// What the authorizer refused while preparing the last statement.
    denied: Arc<Mutex<Option<String>>>,
}

/// A statement in flight: how to stop it.
#[derive(Default)]
struct Running {
    cancelled: AtomicBool,
    /// Present only while the statement's task owns its connection, so a
    /// late cancel cannot interrupt the next statement on that connection.
    handle: Mutex<Option<InterruptHandle>>,
}

impl Running {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(h) = lock(&self.handle).as_ref() {
            h.interrupt();
        }
    }
}

/// Stops the statement when the caller's future is dropped (and forgets it
/// once finished).
struct CancelOnDrop {
    pool: Arc<SqlPool>,
    id: u64,
    running: Arc<Running>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.running.cancel();
        lock(&self.pool.running).remove(&self.id);
    }
}

/// The guarded data are plain lists and handles; a panic elsewhere cannot
/// leave them torn.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqlPool {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_SQL_CONCURRENT),
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            executing: watch::Sender::new(0),
        }
    }

    /// Refuses new statements, interrupts running ones and closes idle
    /// connections; returns without waiting for the interrupted ones.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.permits.close();
        for running in lock(&self.running).values() {
            running.cancel();
        }
        drop(std::mem::take(&mut *lock(&self.idle)));
    }

    /// How many statements are executing now, updated as they start and end.
    pub(super) fn executing(&self) -> watch::Receiver<usize> {
        self.executing.subscribe()
    }

    /// Runs one statement with a deadline of `timeout` (at most
    /// [`SQL_TIMEOUT`]); each row becomes a JSON object keyed by column name.
    pub(super) async fn run(
        self: &Arc<Self>,
        statement: &str,
        timeout: Duration,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        check_read_only(statement)?;
        if statement.len() > MAX_SQL_STATEMENT_BYTES {
            return Err(StoreError::Statement(format!(
                "the statement is longer than {MAX_SQL_STATEMENT_BYTES} bytes"
            )));
        }
        let timeout = timeout.min(SQL_TIMEOUT);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let running = Arc::new(Running::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.running).insert(id, running.clone());
        let guard = CancelOnDrop {
            pool: self.clone(),
            id,
            running: running.clone(),
        };
        // Checked after registering, so a `close` racing with this call
        // either sees the statement or is seen here.
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let pool = self.clone();
        let statement = statement.to_owned();
        let deadline = Instant::now() + timeout;
        let task =
            tokio::task::spawn_blocking(move || pool.run_blocking(&statement, &running, deadline));
        let out = match task.await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down.
            Err(_) => Err(Failure::Error(StoreError::Closed)),
        };
        drop(guard);
        match out {
            Ok(rows) => Ok(rows),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::Interrupted) if self.closed.load(Ordering::SeqCst) => {
                Err(StoreError::Closed)
            }
            Err(Failure::Interrupted) if Instant::now() >= deadline => {
                Err(StoreError::Timeout(timeout))
            }
            // Only a dropped caller cancels, and it reads no answer.
            Err(Failure::Interrupted) => {
                Err(StoreError::Statement("the statement was cancelled".into()))
            }
        }
    }

    /// Takes an idle connection or opens one, runs the statement on it and
    /// gives it back.
    fn run_blocking(
        &self,
        statement: &str,
        running: &Arc<Running>,
        deadline: Instant,
    ) -> Result<Vec<Map<String, Value>>, Failure> {
        let popped = lock(&self.idle).pop();
        let conn = match popped {
            Some(c) => c,
            None => open(&self.path)?,
        };
        *lock(&running.handle) = Some(conn.conn.get_interrupt_handle());
        let stop = running.clone();
        conn.conn
            .progress_handler(
                PROGRESS_OPS,
                Some(move || stop.cancelled.load(Ordering::SeqCst) || Instant::now() >= deadline),
            )
            .map_err(sqlite_err("setting a deadline"))?;
        self.executing.send_modify(|n| *n += 1);
        // A cancel that came before the handle was set is seen here; later
        // ones interrupt the statement.
        let out = if running.cancelled.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            query(&conn, statement)
        };
        lock(&running.handle).take();
        let _ = conn.conn.progress_handler(0, None::<fn() -> bool>);
        {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_SQL_CONCURRENT && !self.closed.load(Ordering::SeqCst) {
                idle.push(conn);
            }
        }
        self.executing.send_modify(|n| *n -= 1);
        out
    }
}

/// How a statement failed on its connection.
enum Failure {
    /// SQLite's interrupt (deadline, cancel or close): told apart by cause.
    Interrupted,
    Error(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Error(e)
    }
}

/// Opens a `sql()` connection: read-only, with the authorizer and limits.
fn open(path: &std::path::Path) -> Result<SqlConn, StoreError> {
    let err = sqlite_err("opening a SQL connection");
    let conn = connect(path, true).map_err(err)?;
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LENGTH, MAX_SQL_VALUE_BYTES),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_STATEMENT_BYTES),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
    ] {
        let value = i32::try_from(value).unwrap_or(i32::MAX);
        conn.set_limit(limit, value).map_err(err)?;
    }
    let denied = Arc::new(Mutex::new(None));
    let record = denied.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match authorize(&ctx) {
        Ok(()) => Authorization::Allow,
        Err(what) => {
            *lock(&record) = Some(what);
            Authorization::Deny
        }
    }))
    .map_err(err)?;
    Ok(SqlConn { conn, denied })
}

/// Allows what a query does; names anything else for the error message.
fn authorize(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive | AuthAction::Read { .. } => Ok(()),
        AuthAction::Function { function_name }
            if !DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name)) =>
        {
            Ok(())
        }
        AuthAction::Function { function_name } => Err(format!("the function {function_name}()")),
        AuthAction::Pragma { pragma_name, .. } => Err(format!("PRAGMA {pragma_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        AuthAction::Detach { .. } => Err("DETACH".into()),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => Err(format!("writing to {table_name}")),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("a transaction".into())
        }
        AuthAction::Analyze { .. } | AuthAction::Reindex { .. } => Err("ANALYZE or REINDEX".into()),
        // Schema changes write sqlite_master and are refused above; what is
        // left is named as SQLite reports it.
        other => Err(format!("{other:?}")),
    }
}

/// Prepares and steps the statement, stopping at the row and byte caps.
fn query(conn: &SqlConn, statement: &str) -> Result<Vec<Map<String, Value>>, Failure> {
    lock(&conn.denied).take();
    let fail = |e: rusqlite::Error| sql_error(e, conn);
    // Not cached: the statements are ad hoc.
    let mut stmt = conn.conn.prepare(statement).map_err(fail)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.query([]).map_err(fail)?;
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    // Rows are stepped one at a time and capped, so a statement returning
    // without end stops at the cap instead of exhausting memory.
    while let Some(row) = rows.next().map_err(fail)? {
        if out.len() == MAX_SQL_ROWS {
            return Err(Failure::Error(StoreError::Statement(format!(
                "the statement returns more than {MAX_SQL_ROWS} rows; add a LIMIT or aggregate"
            ))));
        }
        let (json, cost) = row_to_json(row, &names)?;
        bytes = bytes.saturating_add(cost);
        if bytes > MAX_SQL_RESULT_BYTES {
            return Err(Failure::Error(StoreError::Statement(format!(
                "the result is larger than {} MiB; select fewer columns or rows, add a LIMIT or aggregate",
                MAX_SQL_RESULT_BYTES >> 20
            ))));
        }
        out.push(json);
    }
    Ok(out)
}

fn sql_error(e: rusqlite::Error, conn: &SqlConn) -> Failure {
    if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
        return Failure::Interrupted;
    }
    if let Some(what) = lock(&conn.denied).take() {
        return Failure::Error(StoreError::Statement(format!(
            "{what} is not allowed: sql() is read-only and runs queries only \
             (SELECT, WITH, VALUES or EXPLAIN of one)"
        )));
    }
    Failure::Error(StoreError::Statement(match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message,
        rusqlite::Error::MultipleStatement => "sql() runs one statement at a time".into(),
        other => other.to_string(),
    }))
}

/// First keyword must start a query. The authorizer is what enforces it;
/// this only gives the common mistakes a clearer message.
fn check_read_only(statement: &str) -> Result<(), StoreError> {
    let word = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match word.as_str() {
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" => Ok(()),
        "" => Err(StoreError::Statement("empty statement".into())),
        other => Err(StoreError::Statement(format!(
            "{other} is not allowed: sql() is read-only and runs SELECT, WITH, VALUES or EXPLAIN; \
             change documents with put, patch or delete"
        ))),
    }
}

/// Maps each column by the type of its value (SQLite columns are dynamically
/// typed): integers and reals to numbers, text to strings, blobs to arrays
/// of bytes. Also returns the row's estimated size in memory.
fn row_to_json(
    row: &rusqlite::Row<'_>,
    names: &[String],
) -> Result<(Map<String, Value>, usize), StoreError> {
    let mut out = Map::new();
    let mut cost = 0usize;
    for (i, name) in names.iter().enumerate() {
        cost = cost.saturating_add(name.len() + VALUE_COST);
        let value = match row
            .get_ref(i)
            .map_err(|e| StoreError::Statement(e.to_string()))?
        {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Text(t) => {
                cost = cost.saturating_add(t.len());
                Value::from(
                    std::str::from_utf8(t)
                        .map_err(|e| StoreError::Statement(format!("column {name}: {e}")))?,
                )
            }
            ValueRef::Blob(b) => {
                cost = cost.saturating_add(b.len().saturating_mul(VALUE_COST));
                Value::from(b.to_vec())
            }
        };
        out.insert(name.clone(), value);
    }
    Ok((out, cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica's database with one `spaces` row, its writer, and a `sql()`
    /// pool on it.
    async fn setup() -> (tempfile::TempDir, super::super::Writer, Arc<SqlPool>) {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _reader) = super::super::open(dir.path()).await.unwrap();
        writer.add_joined_space("s1", "one", true, 1).unwrap();
        let pool = Arc::new(SqlPool::new(dir.path().join(super::super::DB_FILE)));
        (dir, writer, pool)
    }

    /// Counts forever without returning a row: only a deadline stops it.
    const ENDLESS: &str =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    async fn count_spaces(pool: &Arc<SqlPool>) -> Value {
        pool.run("SELECT count(*) AS n FROM spaces", SQL_TIMEOUT)
            .await
            .unwrap()[0]["n"]
            .clone()
    }

    #[tokio::test]
    async fn pragmas_attach_and_writes_are_refused_even_under_explain() {
        let (_dir, mut writer, pool) = setup().await;
        for statement in [
            "PRAGMA query_only = 0",
            "EXPLAIN PRAGMA query_only=0",
            "explain pragma hard_heap_limit=300000",
            "EXPLAIN PRAGMA soft_heap_limit=1",
            "EXPLAIN QUERY PLAN PRAGMA query_only=0",
            "ATTACH ':memory:' AS x",
            "EXPLAIN ATTACH ':memory:' AS x",
            "EXPLAIN DETACH main",
            "EXPLAIN INSERT INTO spaces VALUES ('x', 'y', 0, 0)",
            "EXPLAIN DELETE FROM spaces",
            "WITH x AS (SELECT 1) DELETE FROM spaces",
            "WITH x AS (SELECT 1) UPDATE spaces SET name = 'z'",
            "EXPLAIN BEGIN",
            "EXPLAIN SAVEPOINT a",
            "EXPLAIN CREATE TEMP TABLE t (x)",
            "EXPLAIN CREATE INDEX i ON spaces (name)",
            "EXPLAIN ANALYZE",
            "SELECT load_extension('/tmp/x')",
            "SELECT * FROM pragma_table_info('docs')",
            "SELECT 1; DELETE FROM spaces",
        ] {
            match pool.run(statement, SQL_TIMEOUT).await {
                Err(StoreError::Statement(m)) => assert!(
                    m.contains("not allowed") || m.contains("one statement"),
                    "{statement}: {m}"
                ),
                other => panic!("{statement}: expected a refusal, got {other:?}"),
            }
        }
        // Nothing took effect: the process-wide heap limit is unset, the
        // connections are still read-only and the writer still writes.
        let raw = Connection::open_in_memory().unwrap();
        let limit: i64 = raw
            .query_row("PRAGMA hard_heap_limit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(limit, 0, "hard_heap_limit was changed");
        writer.add_joined_space("s2", "two", false, 2).unwrap();
        assert_eq!(count_spaces(&pool).await, 2);
        let conn = lock(&pool.idle).pop().unwrap();
        let query_only: i64 = {
            // The authorizer refuses pragmas, so read the flag without it.
            conn.conn
                .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
                .unwrap();
            conn.conn
                .query_row("PRAGMA query_only", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(query_only, 1);
    }

    #[tokio::test]
    async fn honest_queries_run() {
        let (_dir, _writer, pool) = setup().await;
        let rows = pool
            .run(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) \
                 SELECT x, json_extract('{\"a\": 1}', '$.a') AS a, \
                 (SELECT count(*) FROM json_each('[1, 2]')) AS n FROM c",
                SQL_TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["x"], 3);
        assert_eq!(rows[0]["a"], 1);
        assert_eq!(rows[0]["n"], 2);
        let plan = pool
            .run("EXPLAIN QUERY PLAN SELECT * FROM documents", SQL_TIMEOUT)
            .await
            .unwrap();
        assert!(!plan.is_empty());
    }

    #[tokio::test]
    async fn a_runaway_statement_stops_at_its_deadline() {
        let (_dir, _writer, pool) = setup().await;
        let deadline = Duration::from_millis(200);
        let started = Instant::now();
        match pool.run(ENDLESS, deadline).await {
            Err(StoreError::Timeout(t)) => assert_eq!(t, deadline),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The connection is reusable after the interrupt.
        assert_eq!(count_spaces(&pool).await, 1);
    }

    /// Waits until `n` statements execute (bounded, so a bug fails the test
    /// instead of hanging it).
    async fn executing(pool: &SqlPool, n: usize) {
        let mut rx = pool.executing();
        tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|x| *x == n))
            .await
            .expect("statements did not reach the expected count")
            .unwrap();
    }

    #[tokio::test]
    async fn dropping_the_call_interrupts_the_statement() {
        let (_dir, _writer, pool) = setup().await;
        let task = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(ENDLESS, SQL_TIMEOUT).await }
        });
        executing(&pool, 1).await;
        task.abort();
        // Far sooner than the 10 s deadline: the drop interrupted it.
        let started = Instant::now();
        executing(&pool, 0).await;
        assert!(started.elapsed() < SQL_TIMEOUT / 2);
        assert!(lock(&pool.running).is_empty());
        assert_eq!(lock(&pool.idle).len(), 1, "the connection went back");
        assert_eq!(count_spaces(&pool).await, 1);
    }

    #[tokio::test]
    async fn close_interrupts_running_statements() {
        let (_dir, _writer, pool) = setup().await;
        let task = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(ENDLESS, SQL_TIMEOUT).await }
        });
        executing(&pool, 1).await;
        pool.close();
        let out = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("close waited for the statement")
            .unwrap();
        assert!(matches!(out, Err(StoreError::Closed)), "{out:?}");
        assert!(matches!(
            pool.run("SELECT 1", SQL_TIMEOUT).await,
            Err(StoreError::Closed)
        ));
    }

    #[tokio::test]
    async fn at_most_max_concurrent_statements_run() {
        let (_dir, _writer, pool) = setup().await;
        let runaways: Vec<_> = (0..MAX_SQL_CONCURRENT)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(ENDLESS, SQL_TIMEOUT).await })
            })
            .collect();
        executing(&pool, MAX_SQL_CONCURRENT).await;
        let mut extra = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run("SELECT 1 AS one", SQL_TIMEOUT).await }
        });
        // It waits for a free slot rather than starting a fifth statement.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut extra)
                .await
                .is_err()
        );
        assert_eq!(*pool.executing().borrow(), MAX_SQL_CONCURRENT);
        runaways[0].abort();
        let rows = tokio::time::timeout(Duration::from_secs(5), extra)
            .await
            .expect("a freed slot was not reused")
            .unwrap()
            .unwrap();
        assert_eq!(rows[0]["one"], 1);
        pool.close();
    }

    #[tokio::test]
    async fn results_values_and_statements_are_capped() {
        let (_dir, _writer, pool) = setup().await;
        // Each row is a 1 MiB string: the byte cap is reached long before
        // the row cap.
        let rows = (MAX_SQL_RESULT_BYTES >> 20) + 1;
        let big = format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {rows}) \
             SELECT printf('%.*c', {}, 'x') AS s FROM c",
            1 << 20
        );
        match pool.run(&big, SQL_TIMEOUT).await {
            Err(StoreError::Statement(m)) => assert!(m.contains("MiB"), "{m}"),
            other => panic!("expected the byte cap, got {other:?}"),
        }
        let huge_value = format!("SELECT length(zeroblob({})) AS n", MAX_SQL_VALUE_BYTES + 1);
        match pool.run(&huge_value, SQL_TIMEOUT).await {
            Err(StoreError::Statement(m)) => assert!(m.contains("too big"), "{m}"),
            other => panic!("expected the value cap, got {other:?}"),
        }
        let long = format!("SELECT 1 {}", " ".repeat(MAX_SQL_STATEMENT_BYTES));
        assert!(matches!(
            pool.run(&long, SQL_TIMEOUT).await,
            Err(StoreError::Statement(_))
        ));
        assert_eq!(count_spaces(&pool).await, 1);
    }

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
