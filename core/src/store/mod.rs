//! The `store` layer: the SQLite replica, and the only module with SQL.
//!
//! One [`Writer`] connection (owned by the node's writer actor) and a small
//! pool of read-only connections ([`Reader`]). sqlx pays a cross-thread round
//! trip per statement, so the writer turns a whole group of writes into one
//! multi-row `INSERT INTO doc_writes`, whose trigger stores each document row
//! and chunk (see `migrations/0001_replica.sql`).

mod lock;
mod query;
mod read;
mod sync_state;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use lock::{LOCK_FILE, ProcessLock};
pub(crate) use query::path_literal;
pub use query::{Filter, FilterOp, Order, Query, QueryRow};
pub use read::{MAX_SQL_ROWS, Reader};
pub use write::{Loaded, WriteRow, Writer};

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
    /// SQLite failed.
    #[error("database error while {op}: {source}")]
    Sql {
        /// What the store was doing.
        op: &'static str,
        /// The error.
        source: sqlx::Error,
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
}

/// Attaches what the store was doing to a sqlx error.
pub(crate) fn sql_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

fn options(dir: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(dir.join(DB_FILE))
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL never corrupts and loses nothing on a process
        // crash; only an OS crash or power loss may drop the last commits.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(false)
}

/// Opens (creating and migrating if needed) the database in `dir`.
pub async fn open(dir: &Path) -> Result<(Writer, Reader), StoreError> {
    let writer = Writer::connect(options(dir).create_if_missing(true)).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(2)
        .min_connections(1)
        .connect_with(options(dir).read_only(true).pragma("query_only", "ON"))
        .await
        .map_err(sql_err("opening read connections"))?;
    Ok((writer, Reader::new(readers)))
}

/// `(?,?,..),(?,?,..)..`: `rows` groups of `columns` parameters, for
/// multi-row statements.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(","));
    vec![group; rows].join(",")
}

/// Encodes heads as sorted, concatenated 32-byte hashes.
pub fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}
