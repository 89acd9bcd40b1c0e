//! The single write connection: loading documents for the writer actor and
//! storing groups of writes in as few statements as possible.

use std::collections::HashMap;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::{StoreError, sql_err};
use crate::key::DocKey;

/// Keys per multi-key load (3 parameters each).
const KEYS_PER_STATEMENT: usize = 300;

/// Rows per multi-row statement: 9 parameters each stays far below SQLite's
/// 32,766-parameter limit.
const ROWS_PER_STATEMENT: usize = 500;

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
    conn: SqliteConnection,
}

impl Writer {
    pub(super) async fn connect(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(sql_err("opening the database"))?;
        sqlx::migrate!("./migrations").run(&mut conn).await?;
        Ok(Self { conn })
    }

    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Reads many documents with one statement per few hundred keys (a
    /// group of writes would otherwise pay one round trip per document).
    /// Keys never stored are absent from the result.
    pub async fn load_many(
        &mut self,
        keys: &[&DocKey],
    ) -> Result<HashMap<DocKey, Loaded>, StoreError> {
        let mut out: HashMap<DocKey, Loaded> = HashMap::with_capacity(keys.len());
        for part in keys.chunks(KEYS_PER_STATEMENT) {
            let mut sql = String::from(
                "SELECT d.space, d.collection, d.id, d.heads, d.chunk_count, c.data \
                 FROM docs d JOIN chunks c ON c.doc = d.doc \
                 WHERE (d.space, d.collection, d.id) IN (VALUES ",
            );
            sql.push_str(&super::placeholders(part.len(), 3));
            sql.push_str(") ORDER BY d.doc, c.seq");
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for key in part {
                query = query
                    .bind(key.space())
                    .bind(key.collection())
                    .bind(key.id());
            }
            let rows = query
                .fetch_all(&mut self.conn)
                .await
                .map_err(sql_err("loading documents"))?;
            for row in &rows {
                let key = DocKey::new(
                    row.get::<String, _>(0),
                    row.get::<String, _>(1),
                    row.get::<String, _>(2),
                )
                .map_err(|e| StoreError::Damaged(format!("stored key is invalid: {e}")))?;
                let entry = out.entry(key).or_insert_with(|| Loaded {
                    bytes: Vec::new(),
                    heads: row.get(3),
                    chunk_count: u32::try_from(row.get::<i64, _>(4)).unwrap_or(u32::MAX),
                });
                entry.bytes.extend_from_slice(row.get::<&[u8], _>(5));
            }
        }
        Ok(out)
    }

    /// Stores all rows atomically, in order.
    pub async fn write(&mut self, rows: &[WriteRow]) -> Result<(), StoreError> {
        if rows.len() <= ROWS_PER_STATEMENT {
            // A single statement is its own transaction.
            return insert_rows(&mut self.conn, rows).await;
        }
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(sql_err("starting a write"))?;
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            insert_rows(&mut tx, part).await?;
        }
        tx.commit().await.map_err(sql_err("committing writes"))
    }

    /// Creates an expression index on a JSON field path (already validated
    /// and rendered as a SQL string literal by the query module).
    pub async fn create_index(
        &mut self,
        field: &str,
        path_literal: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(sql_err("creating an index"))?;
        let ddl = format!(
            "CREATE INDEX IF NOT EXISTS \"{name}\" ON docs (space, collection, json_extract(json, {path_literal}), id)"
        );
        sqlx::query(AssertSqlSafe(ddl))
            .execute(&mut *tx)
            .await
            .map_err(sql_err("creating an index"))?;
        // Fresh statistics let the planner prefer the new index over the
        // (space, collection, id) key when the filter is selective.
        sqlx::query("ANALYZE docs")
            .execute(&mut *tx)
            .await
            .map_err(sql_err("creating an index"))?;
        sqlx::query("INSERT OR IGNORE INTO json_indexes (field, name) VALUES (?, ?)")
            .bind(field)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(sql_err("creating an index"))?;
        tx.commit().await.map_err(sql_err("creating an index"))
    }

    /// Runs SQLite's own consistency check; `Ok` when it reports "ok".
    pub async fn integrity_check(&mut self) -> Result<(), StoreError> {
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&mut self.conn)
            .await
            .map_err(sql_err("checking integrity"))?;
        let report: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        if report == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Damaged(report.join("; ")))
        }
    }

    /// Checkpoints the WAL into the main file (used on shutdown).
    pub async fn checkpoint(&mut self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut self.conn)
            .await
            .map_err(sql_err("checkpointing"))?;
        Ok(())
    }

    /// Closes the connection cleanly.
    pub async fn close(self) -> Result<(), StoreError> {
        self.conn
            .close()
            .await
            .map_err(sql_err("closing the database"))
    }
}

async fn insert_rows(conn: &mut SqliteConnection, rows: &[WriteRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO doc_writes (space, collection, id, heads, json, deleted, updated_at, chunk, snapshot) VALUES ",
    );
    sql.push_str(&super::placeholders(rows.len(), 9));
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.key.space())
            .bind(row.key.collection())
            .bind(row.key.id())
            .bind(&row.heads)
            .bind(row.json.as_deref())
            .bind(row.json.is_none())
            .bind(row.updated_at)
            .bind(&row.chunk)
            .bind(row.snapshot);
    }
    query
        .execute(conn)
        .await
        .map_err(sql_err("writing documents"))?;
    Ok(())
}
