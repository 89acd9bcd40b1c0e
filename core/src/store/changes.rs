//! The change feed's history: documents whose latest change is newer than a
//! sequence number, a page at a time in sequence order.

use super::StoreError;
use super::read::Reader;
use super::sqlite_err;
use crate::key::DocKey;

/// The latest stored change of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    /// The document.
    pub key: DocKey,
    /// Its sequence number (see `Writer::write`).
    pub seq: u64,
    /// Its heads ([`super::encode_heads`]).
    pub heads: Vec<u8>,
    /// Whether it is deleted.
    pub deleted: bool,
    /// Whether the change came from a peer.
    pub remote: bool,
}

/// A page of changes: a range seek on the `seq` index (a test checks the plan).
const CHANGES: &str = "SELECT space, collection, id, seq, heads, deleted, remote FROM docs \
     WHERE seq > ?1 AND (?2 IS NULL OR space = ?2) AND (?3 IS NULL OR collection = ?3) \
     ORDER BY seq LIMIT ?4";

impl Reader {
    /// The sequence number of the latest stored change (0 for none): one
    /// seek on the `seq` index.
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        self.blocking(|conn| {
            let max: i64 = conn
                .prepare_cached(super::LAST_SEQ)
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(sqlite_err("reading the change sequence"))?;
            Ok(u64::try_from(max).unwrap_or(0))
        })
        .await
    }

    /// Documents whose latest change has a sequence number above `since`,
    /// in one space or all and one collection or all, in sequence order; at
    /// most `limit`, with the last sequence number looked at when there may
    /// be more (keyset paging on the `seq` index: pass it as the next
    /// `since`), `None` when this was the end.
    pub async fn changes_since(
        &self,
        space: Option<&str>,
        collection: Option<&str>,
        since: u64,
        limit: u32,
    ) -> Result<(Vec<StoredChange>, Option<u64>), StoreError> {
        let (space, collection) = (space.map(str::to_owned), collection.map(str::to_owned));
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        self.blocking(move |conn| {
            let err = sqlite_err("reading changes");
            let mut stmt = conn.prepare_cached(CHANGES).map_err(err)?;
            let mut rows = stmt
                .query((since, &space, &collection, limit))
                .map_err(err)?;
            let mut out = Vec::new();
            let (mut scanned, mut last) = (0u32, 0u64);
            while let Some(r) = rows.next().map_err(err)? {
                let (s, c, i): (String, String, String) = (
                    r.get(0).map_err(err)?,
                    r.get(1).map_err(err)?,
                    r.get(2).map_err(err)?,
                );
                let seq = u64::try_from(r.get::<_, i64>(3).map_err(err)?).unwrap_or(0);
                (scanned, last) = (scanned + 1, seq);
                // Stored keys were checked when written; one that no longer
                // parses is skipped rather than failing the whole feed.
                let Ok(key) = DocKey::new(&s, &c, &i) else {
                    continue;
                };
                out.push(StoredChange {
                    key,
                    seq,
                    heads: r.get(4).map_err(err)?,
                    deleted: r.get(5).map_err(err)?,
                    remote: r.get(6).map_err(err)?,
                });
            }
            Ok((out, (scanned == limit).then_some(last)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The schema before sequence numbers.
    fn before_seq() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in [
            include_str!("../../migrations/0001_replica.sql"),
            include_str!("../../migrations/0002_sync_states.sql"),
            include_str!("../../migrations/0003_spaces.sql"),
            include_str!("../../migrations/0004_documents_view.sql"),
            include_str!("../../migrations/0005_sync_state_bounds.sql"),
            include_str!("../../migrations/0006_space_refusals.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn
    }

    #[test]
    fn the_migration_numbers_existing_documents_in_write_order() {
        let conn = before_seq();
        for (id, updated_at) in [("a", 30), ("b", 10), ("c", 20), ("d", 10)] {
            conn.execute(
                "INSERT INTO docs (space, collection, id, heads, json, updated_at) \
                 VALUES ('s', 'c', ?1, x'00', '{}', ?2)",
                (id, updated_at),
            )
            .unwrap();
        }
        conn.execute_batch(include_str!("../../migrations/0007_change_seq.sql"))
            .unwrap();
        let rows: Vec<(String, i64, bool)> = conn
            .prepare("SELECT id, seq, remote FROM docs ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("b".into(), 1, false),
                ("d".into(), 2, false),
                ("c".into(), 3, false),
                ("a".into(), 4, false),
            ]
        );
    }

    #[test]
    fn a_page_is_a_range_seek_on_the_seq_index() {
        let conn = before_seq();
        conn.execute_batch(include_str!("../../migrations/0007_change_seq.sql"))
            .unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::CHANGES))
            .unwrap()
            .query_map((1, "s", "c", 10), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            ["SEARCH docs USING INDEX docs_seq (seq>?)"],
            "{plan:?}"
        );
    }
}
