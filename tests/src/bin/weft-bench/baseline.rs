//! The physical limits Weft is measured against: raw SQLite through
//! rusqlite (same bundled library, same pragmas, the same rows Weft
//! writes) and Automerge in memory doing the same change.

use automerge::ActorId;
use rusqlite::{Connection, params};
use serde_json::{Map, Value};
use weft_core::internals::doc::Document;
use weft_tests::bench::document;

/// A raw SQLite database shaped like Weft's tables, without Weft.
pub struct RawDb {
    pub conn: Connection,
}

impl RawDb {
    pub fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        // Weft's settings: WAL, synchronous=NORMAL, and the memory-mapped
        // reads its read connections use.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(
            None,
            "mmap_size",
            weft_core::internals::store::READ_MMAP_SIZE,
        )?;
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

/// In-memory Automerge sync of each of `docs` to an empty peer, to
/// completion, as two Weft nodes would run it but without IO or storage.
/// Returns the time and the bytes of the sync messages.
pub fn automerge_sync(docs: &mut [Document]) -> anyhow::Result<(std::time::Duration, u64)> {
    use automerge::sync::State;
    let started = std::time::Instant::now();
    let mut bytes = 0u64;
    for doc in docs {
        let mut peer = Document::new(ActorId::random());
        let (mut ours, mut theirs) = (State::new(), State::new());
        loop {
            let mut quiet = true;
            if let Some(m) = doc.generate_sync_message(&mut ours) {
                bytes += m.len() as u64;
                quiet = false;
                let r = peer.receive_sync_message(&mut theirs, &m, true);
                anyhow::ensure!(r.error.is_none(), "sync failed: {:?}", r.error);
            }
            if let Some(m) = peer.generate_sync_message(&mut theirs) {
                bytes += m.len() as u64;
                quiet = false;
                let r = doc.receive_sync_message(&mut ours, &m, true);
                anyhow::ensure!(r.error.is_none(), "sync failed: {:?}", r.error);
            }
            if quiet {
                break;
            }
        }
        anyhow::ensure!(
            peer.heads() == doc.heads(),
            "in-memory sync did not converge"
        );
    }
    Ok((started.elapsed(), bytes))
}

/// The documents of a sync case as in-memory Automerge documents.
pub fn automerge_docs(n: usize) -> anyhow::Result<Vec<Document>> {
    (0..n)
        .map(|i| {
            let mut doc = Document::new(ActorId::random());
            doc.put(&document(i), 0)?;
            Ok(doc)
        })
        .collect()
}
