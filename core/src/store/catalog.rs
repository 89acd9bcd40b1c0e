//! What the replica holds, listed and counted: collections, ids and keys a
//! page at a time, so front ends never write SQL over the `documents` view.

use super::StoreError;
use super::read::Reader;
use super::sqlite_err;
use crate::key::DocKey;

/// Weft's own collection (membership logs), never listed or counted.
const SYSTEM: &str = crate::auth::SYSTEM_COLLECTION;

impl Reader {
    /// Collections of `space` with at least one live document, in order.
    /// Each step seeks the next collection on the `(space, collection, id)`
    /// index, so the cost grows with collections, not documents.
    pub async fn collections(&self, space: &str) -> Result<Vec<String>, StoreError> {
        let space = space.to_owned();
        self.blocking(move |conn| {
            let err = sqlite_err("listing collections");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT collection FROM docs \
                     WHERE space = ?1 AND collection > ?2 AND collection <> ?3 AND deleted = 0 \
                     ORDER BY collection LIMIT 1",
                )
                .map_err(err)?;
            let mut out: Vec<String> = Vec::new();
            loop {
                let after = out.last().map(String::as_str).unwrap_or("");
                let mut rows = stmt.query((&space, after, SYSTEM)).map_err(err)?;
                match rows.next().map_err(err)? {
                    Some(row) => {
                        let c: String = row.get(0).map_err(err)?;
                        out.push(c);
                    }
                    None => return Ok(out),
                }
            }
        })
        .await
    }

    /// Ids of live documents in a collection, in order, after `after`; at
    /// most `limit`.
    pub async fn ids(
        &self,
        space: &str,
        collection: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let (space, collection) = (space.to_owned(), collection.to_owned());
        let after = after.map(str::to_owned);
        self.blocking(move |conn| {
            let err = sqlite_err("listing documents");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM docs \
                     WHERE space = ?1 AND collection = ?2 AND (?3 IS NULL OR id > ?3) AND deleted = 0 \
                     AND collection <> ?5 ORDER BY id LIMIT ?4",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map((&space, &collection, &after, limit, SYSTEM), |r| r.get(0))
                .map_err(err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(err)
        })
        .await
    }

    /// Keys of live user documents in every space, in key order, after
    /// `after`; at most `limit`.
    pub async fn keys(
        &self,
        after: Option<&DocKey>,
        limit: u32,
    ) -> Result<Vec<DocKey>, StoreError> {
        let after = after.map(|k| {
            (
                k.space().to_owned(),
                k.collection().to_owned(),
                k.id().to_owned(),
            )
        });
        self.blocking(move |conn| {
            let err = sqlite_err("listing documents");
            let (s, c, i) = after.unwrap_or_default();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT space, collection, id FROM docs \
                     WHERE (space, collection, id) > (?1, ?2, ?3) AND collection <> ?4 AND deleted = 0 \
                     ORDER BY space, collection, id LIMIT ?5",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map((&s, &c, &i, SYSTEM, limit), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(err)?;
            let mut out = Vec::new();
            for row in rows {
                let (s, c, i) = row.map_err(err)?;
                // Stored keys were checked when written; one that no longer
                // parses is skipped rather than failing the whole listing.
                if let Ok(key) = DocKey::new(&s, &c, &i) {
                    out.push(key);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Live user documents, in one space or all, in one collection or all.
    pub async fn count(
        &self,
        space: Option<&str>,
        collection: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (space, collection) = (space.map(str::to_owned), collection.map(str::to_owned));
        self.blocking(move |conn| {
            let err = sqlite_err("counting documents");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT count(*) FROM docs \
                     WHERE (?1 IS NULL OR space = ?1) AND (?2 IS NULL OR collection = ?2) \
                     AND collection <> ?3 AND deleted = 0",
                )
                .map_err(err)?;
            let n: i64 = stmt
                .query_row((&space, &collection, SYSTEM), |r| r.get(0))
                .map_err(err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
