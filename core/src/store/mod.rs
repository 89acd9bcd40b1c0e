//! The `store` layer: the SQLite replica, and the only module with SQL.
//!
//! Connections, all to the same WAL database:
//! - a short-lived sqlx connection at [`open`], only to run the migrations in
//!   `migrations/` (so replicas keep their `_sqlx_migrations` history);
//! - one rusqlite [`Writer`] connection, owned by the node's writer actor;
//! - a small pool of read-only rusqlite connections ([`Reader`]);
//! - a few more for caller-written `sql()` statements, guarded by an
//!   authorizer and a deadline (module `sql`).
//!
//! Statements run on rusqlite inline, not through sqlx: sqlx runs each
//! connection on a worker thread and pays a cross-thread round trip
//! (~40-80 µs) per statement, while a prepared rusqlite statement on the
//! same SQLite costs a few µs (measured when the store was designed).

mod backup;
mod catalog;
mod changes;
mod lock;
mod query;
mod read;
mod sql;
mod sync_state;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

pub use backup::{BACKUP_FORMAT, BACKUP_TABLE, BackupSummary, backup, inspect, restore};
pub use changes::StoredChange;
pub use lock::{LOCK_FILE, ProcessLock};
pub(crate) use query::path_literal;
pub use query::{Filter, FilterOp, Order, Query, QueryRow};
pub use read::Reader;
pub use sql::{
    MAX_SQL_CONCURRENT, MAX_SQL_RESULT_BYTES, MAX_SQL_ROWS, MAX_SQL_STATEMENT_BYTES,
    MAX_SQL_VALUE_BYTES, SQL_TIMEOUT,
};
pub use sync_state::{JoinedSpace, MAX_SYNC_STATES_PER_SPACE, SYNC_STATE_MAX_AGE};
#[cfg(any(test, feature = "fault-injection"))]
pub use write::CommitFaults;
pub use write::{Loaded, MAX_JSON_INDEXES, WriteRow, Writer};

/// The last change sequence number handed out: the highest stored, or the
/// floor kept when the rows that held it were removed (two index seeks).
pub(crate) const LAST_SEQ: &str = "SELECT max(coalesce((SELECT max(seq) FROM docs), 0), \
     coalesce((SELECT seq FROM change_seq_floor), 0))";

/// Database file name inside the data dir.
pub const DB_FILE: &str = "weft.db";

/// Failures of the local database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process owns the replica.
    #[error("the replica at {path} is locked by another process")]
    Locked {
        /// The data dir.
        path: PathBuf,
        /// The holder's pid, if readable.
        pid: Option<u32>,
    },
    /// A file in the data dir could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// SQLite failed (on the sqlx connection that runs migrations).
    #[error("database error while {op}: {source}")]
    Sql {
        /// What the store was doing.
        op: &'static str,
        /// The error.
        source: sqlx::Error,
    },
    /// SQLite failed (on the rusqlite connections that do everything else).
    #[error("database error while {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error(
        "database migration failed: {0}; the replica was written by a newer Weft or is damaged"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A group of writes could not be committed; none of them is stored.
    #[error("write not stored: {0}")]
    WriteFailed(String),
    /// The database disagrees with itself.
    #[error("damaged data: {0}")]
    Damaged(String),
    /// A structured query that cannot be compiled.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A caller-written SQL statement that was refused or failed.
    #[error("sql: {0}")]
    Statement(String),
    /// A statement ran past its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The store is closed.
    #[error("the store is closed")]
    Closed,
    /// A backup that cannot be written or restored as asked (not a Weft
    /// backup, damaged, a missing directory).
    #[error("{0}")]
    Backup(String),
    /// A file a backup or restore would replace, without leave to.
    #[error("{} already exists; pass --force (overwrite) to replace it", .0.display())]
    Exists(PathBuf),
}

/// Attaches what the store was doing to a sqlx error.
fn sql_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// Attaches what the store was doing to a rusqlite error.
pub(crate) fn sqlite_err(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + Copy {
    move |source| StoreError::Sqlite { op, source }
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the database file each read connection maps (address space,
/// not memory; SQLite maps only what the file has).
pub const READ_MMAP_SIZE: i64 = 256 << 20;

/// Opens (creating and migrating if needed) the database in `dir`.
pub async fn open(dir: &Path) -> Result<(Writer, Reader), StoreError> {
    let path = dir.join(DB_FILE);
    migrate(&path).await?;
    let mut writer =
        Writer::new(connect(&path, false).map_err(sqlite_err("opening the database"))?);
    writer.load_seq()?;
    let reader = Reader::new(path)?;
    Ok((writer, reader))
}

/// The schema's migrations (`core/migrations/`), embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the schema with sqlx's migrator on a connection
/// closed right after, so replicas created by earlier versions (which
/// recorded their schema in `_sqlx_migrations`) open unchanged.
async fn migrate(path: &Path) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(sql_err("opening the database"))?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await.map_err(sql_err("opening the database"))
}

/// A rusqlite connection with the store's settings; `read_only` ones are
/// opened with SQLITE_OPEN_READONLY and `query_only`.
pub(crate) fn connect(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    // NO_MUTEX: each connection is used by one thread at a time (rusqlite's
    // `Connection` is not `Sync`), so SQLite's own locking is not needed.
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if read_only {
        conn.pragma_update(None, "query_only", "ON")?;
        // Readers map the file instead of copying each page into their own
        // 2 MB page cache: a query scanning more than that (20k documents
        // do) otherwise spends about half its time in pread copies.
        conn.pragma_update(None, "mmap_size", READ_MMAP_SIZE)?;
    } else {
        // `migrate` already made the file WAL (which persists); saying it
        // again is free. In WAL mode NORMAL never corrupts and loses nothing
        // on a process crash; only an OS crash or power loss may drop the
        // last commits.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
    }
    Ok(conn)
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Encodes heads as sorted, concatenated 32-byte hashes.
pub fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}
