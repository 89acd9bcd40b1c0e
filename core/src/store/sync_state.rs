//! What the sync engine reads from and writes to the store: per-space
//! digests (document keys with a hash of their heads) and persisted
//! Automerge sync states.

use std::collections::HashMap;

use rusqlite::{TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{StoreError, Writer, sqlite_err};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::sync::wire::{Item, ItemKey};

impl Writer {
    /// Every stored document of a space (deleted ones too: their tombstones
    /// sync), with the hash of its heads, ordered by key.
    pub fn items(&mut self, space: &str) -> Result<Vec<Item>, StoreError> {
        let err = sqlite_err("listing a space");
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT collection, id, heads FROM docs WHERE space = ?1 ORDER BY collection, id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([space], |r| {
                Ok(Item {
                    key: ItemKey {
                        collection: r.get(0)?,
                        id: r.get(1)?,
                    },
                    // Heads are stored sorted and concatenated, which is
                    // exactly what `reconcile::heads_hash` hashes.
                    hash: Sha256::digest(r.get_ref(2)?.as_blob()?).into(),
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Saves sync states with one peer, in one transaction.
    pub fn save_sync_states(
        &mut self,
        peer: NodeId,
        states: &[(DocKey, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let err = sqlite_err("saving sync states");
        let peer = peer.to_string();
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_states (peer, space, collection, id, state) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (key, state) in states {
                stmt.execute(params![
                    peer,
                    key.space(),
                    key.collection(),
                    key.id(),
                    state
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Loads saved sync states with `peer` for these documents.
    pub fn sync_states(
        &mut self,
        peer: NodeId,
        keys: &[&DocKey],
    ) -> Result<HashMap<DocKey, Vec<u8>>, StoreError> {
        let err = sqlite_err("loading sync states");
        let peer = peer.to_string();
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT state FROM sync_states \
                 WHERE peer = ?1 AND space = ?2 AND collection = ?3 AND id = ?4",
            )
            .map_err(err)?;
        let mut out = HashMap::new();
        for key in keys {
            let mut rows = stmt
                .query(params![peer, key.space(), key.collection(), key.id()])
                .map_err(err)?;
            if let Some(row) = rows.next().map_err(err)? {
                out.insert((*key).clone(), row.get(0).map_err(err)?);
            }
        }
        Ok(out)
    }
}

impl Writer {
    /// Records a space this device created or joined.
    pub fn add_joined_space(
        &mut self,
        id: &str,
        name: &str,
        is_default: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO spaces (id, name, is_default, joined_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![id, name, is_default, now]))
            .map_err(sqlite_err("recording a space"))?;
        Ok(())
    }

    /// Spaces this device created or joined: `(id, name, is_default)`.
    pub fn joined_spaces(&mut self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let err = sqlite_err("listing spaces");
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT id, name, is_default FROM spaces ORDER BY joined_at, id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }
}
