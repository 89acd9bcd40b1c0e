//! What the sync engine reads from and writes to the store: per-space
//! digests (document keys with a hash of their heads) and persisted
//! Automerge sync states.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use super::{StoreError, Writer, sql_err};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::wire::{Item, ItemKey};

/// Keys per multi-key statement (4 parameters each).
const KEYS_PER_STATEMENT: usize = 200;

impl Writer {
    /// Every stored document of a space (deleted ones too: their tombstones
    /// sync), with the hash of its heads, ordered by key.
    pub async fn items(&mut self, space: &str) -> Result<Vec<Item>, StoreError> {
        let rows = sqlx::query(
            "SELECT collection, id, heads FROM docs WHERE space = ? ORDER BY collection, id",
        )
        .bind(space)
        .fetch_all(self.conn())
        .await
        .map_err(sql_err("listing a space"))?;
        Ok(rows
            .iter()
            .map(|r| Item {
                key: ItemKey {
                    collection: r.get(0),
                    id: r.get(1),
                },
                // Heads are stored sorted and concatenated, which is exactly
                // what `reconcile::heads_hash` hashes.
                hash: Sha256::digest(r.get::<&[u8], _>(2)).into(),
            })
            .collect())
    }

    /// Saves sync states with one peer.
    pub async fn save_sync_states(
        &mut self,
        peer: NodeId,
        states: &[(DocKey, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let peer = peer.to_string();
        for part in states.chunks(KEYS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT OR REPLACE INTO sync_states (peer, space, collection, id, state) VALUES ",
            );
            sql.push_str(&super::placeholders(part.len(), 5));
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (key, state) in part {
                query = query
                    .bind(&peer)
                    .bind(key.space())
                    .bind(key.collection())
                    .bind(key.id())
                    .bind(state);
            }
            query
                .execute(self.conn())
                .await
                .map_err(sql_err("saving sync states"))?;
        }
        Ok(())
    }

    /// Loads saved sync states with `peer` for these documents.
    pub async fn sync_states(
        &mut self,
        peer: NodeId,
        keys: &[&DocKey],
    ) -> Result<HashMap<DocKey, Vec<u8>>, StoreError> {
        let mut out = HashMap::new();
        let peer_text = peer.to_string();
        for part in keys.chunks(KEYS_PER_STATEMENT) {
            let mut sql = String::from(
                "SELECT space, collection, id, state FROM sync_states WHERE peer = ? AND (space, collection, id) IN (VALUES ",
            );
            sql.push_str(&super::placeholders(part.len(), 3));
            sql.push(')');
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(&peer_text);
            for key in part {
                query = query
                    .bind(key.space())
                    .bind(key.collection())
                    .bind(key.id());
            }
            let rows = query
                .fetch_all(self.conn())
                .await
                .map_err(sql_err("loading sync states"))?;
            for r in rows {
                if let Ok(key) = DocKey::new(
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    r.get::<String, _>(2),
                ) {
                    out.insert(key, r.get(3));
                }
            }
        }
        Ok(out)
    }
}

impl Writer {
    /// Records a space this device created or joined.
    pub async fn add_joined_space(
        &mut self,
        id: &str,
        name: &str,
        is_default: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO spaces (id, name, is_default, joined_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(is_default)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(sql_err("recording a space"))?;
        Ok(())
    }

    /// Spaces this device created or joined: `(id, name, is_default)`.
    pub async fn joined_spaces(&mut self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let rows = sqlx::query("SELECT id, name, is_default FROM spaces ORDER BY joined_at, id")
            .fetch_all(self.conn())
            .await
            .map_err(sql_err("listing spaces"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}
