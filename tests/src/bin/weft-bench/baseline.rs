//! The physical limits Weft is measured against: raw SQLite through
//! rusqlite (same bundled library, same pragmas, the same rows Weft
//! writes) and Automerge in memory doing the same change.

use automerge::ActorId;
use rusqlite::{Connection, params};
use serde_json::{Map, Value};
use weft_core::doc::Document;

/// A raw SQLite database shaped like Weft's tables, without Weft.
pub struct RawDb {
    pub conn: Connection,
}

impl RawDb {
    pub fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        // Weft's settings: WAL, synchronous=NORMAL.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs (
                 doc INTEGER PRIMARY KEY,
                 space TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                 heads BLOB NOT NULL, json TEXT, updated_at INTEGER NOT NULL,
                 UNIQUE (space, collection, id));
             CREATE TABLE IF NOT EXISTS chunks (
                 doc INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
                 PRIMARY KEY (doc, seq)) WITHOUT ROWID;",
        )?;
        Ok(Self { conn })
    }

    /// Upserts one document row and its chunk, as Weft stores a write.
    pub fn upsert(&self, id: &str, heads: &[u8], json: &str, chunk: &[u8]) -> anyhow::Result<()> {
        let doc: i64 = self.conn.query_row(
            "INSERT INTO docs (space, collection, id, heads, json, updated_at)
             VALUES ('s', 'c', ?1, ?2, ?3, 0)
             ON CONFLICT (space, collection, id) DO UPDATE SET heads = ?2, json = ?3
             RETURNING doc",
            params![id, heads, json],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT OR REPLACE INTO chunks (doc, seq, data) VALUES (?1, 0, ?2)",
            params![doc, chunk],
        )?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> anyhow::Result<Option<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT json FROM docs WHERE space = 's' AND collection = 'c' AND id = ?1",
        )?;
        let mut rows = stmt.query(params![id])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    }

    pub fn query_eq(&self, field: &str, value: &str, limit: u32) -> anyhow::Result<usize> {
        let sql = format!(
            "SELECT id, json FROM docs WHERE space = 's' AND collection = 'c' \
             AND json_extract(json, '$.{field}') = ?1 LIMIT {limit}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![value])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let _: String = r.get(1)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The Automerge work of one Weft `put` on a new document, in memory:
/// the change, the saved bytes, heads and the JSON.
pub struct Change {
    pub heads: Vec<u8>,
    pub json: String,
    pub chunk: Vec<u8>,
}

pub fn automerge_put(json: &Map<String, Value>) -> anyhow::Result<Change> {
    let mut doc = Document::new(ActorId::random());
    doc.put(json, 0)?;
    let heads: Vec<u8> = doc.heads().iter().flat_map(|h| h.0).collect();
    let chunk = doc.save();
    Ok(Change {
        heads,
        json: serde_json::to_string(json)?,
        chunk,
    })
}
