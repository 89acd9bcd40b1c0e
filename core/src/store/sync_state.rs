//! What the sync engine reads from and writes to the store: per-space
//! digests (document keys with a hash of their heads) and persisted
//! Automerge sync states.
//!
//! Sync states are keyed by what a peer names, so they are bounded here:
//! only documents stored here get one, at most [`MAX_SYNC_STATES_PER_SPACE`]
//! per (peer, space) are kept, and those of peers not seen for
//! `Config::sync_state_max_age` are dropped.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{StoreError, Writer, now_ms, sqlite_err};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::key::{Item, ItemKey, sorted_heads_hash};

/// Sync states kept per (peer, space), newest first: a state is ~100 bytes,
/// so at most ~10-20 MB per pair, while spaces up to this many documents
/// resume every document's sync where it left off.
pub const MAX_SYNC_STATES_PER_SPACE: usize = 100_000;

/// Default for `Config::sync_state_max_age`: a month covers devices that
/// sync weekly or go on holiday; a peer back after longer syncs from scratch.
pub const SYNC_STATE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

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
                    // Heads are stored sorted and concatenated.
                    hash: sorted_heads_hash([r.get_ref(2)?.as_blob()?]),
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Saves sync states with one peer, in one transaction: only for
    /// documents stored here (a peer may name any key), keeping the newest
    /// [`MAX_SYNC_STATES_PER_SPACE`] per space, and dropping the states of
    /// peers not seen for the configured age ([`Writer::set_sync_state_max_age`]).
    pub fn save_sync_states(
        &mut self,
        peer: NodeId,
        states: &[(DocKey, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let err = sqlite_err("saving sync states");
        let now = now_ms();
        let cap = i64::try_from(self.sync_state_cap).unwrap_or(i64::MAX);
        let cutoff = self.sync_state_cutoff(now);
        let peer = peer.to_string();
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut save = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_states (peer, space, collection, id, state, saved_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS \
                         (SELECT 1 FROM docs WHERE space = ?2 AND collection = ?3 AND id = ?4)",
                )
                .map_err(err)?;
            let mut spaces = BTreeSet::new();
            for (key, state) in states {
                let saved = save
                    .execute(params![
                        peer,
                        key.space(),
                        key.collection(),
                        key.id(),
                        state,
                        now
                    ])
                    .map_err(err)?;
                if saved > 0 {
                    spaces.insert(key.space());
                }
            }
            let mut count = tx
                .prepare_cached("SELECT count(*) FROM sync_states WHERE peer = ?1 AND space = ?2")
                .map_err(err)?;
            let mut trim = tx
                .prepare_cached(
                    "DELETE FROM sync_states WHERE peer = ?1 AND space = ?2 \
                     AND (collection, id) NOT IN (SELECT collection, id FROM sync_states \
                         WHERE peer = ?1 AND space = ?2 ORDER BY saved_at DESC LIMIT ?3)",
                )
                .map_err(err)?;
            for space in spaces {
                let n: i64 = count
                    .query_row(params![peer, space], |r| r.get(0))
                    .map_err(err)?;
                if n > cap {
                    trim.execute(params![peer, space, cap]).map_err(err)?;
                }
            }
            tx.prepare_cached(
                "INSERT INTO sync_peers (peer, saved_at) VALUES (?1, ?2) \
                 ON CONFLICT (peer) DO UPDATE SET saved_at = excluded.saved_at",
            )
            .and_then(|mut s| s.execute(params![peer, now]))
            .map_err(err)?;
            prune_aged(&tx, cutoff).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Drops the sync states with `peer` in `space` (when it loses access:
    /// the states are of no use, and its own could be stale).
    pub fn delete_sync_states(&mut self, peer: NodeId, space: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM sync_states WHERE peer = ?1 AND space = ?2")
            .and_then(|mut s| s.execute(params![peer.to_string(), space]))
            .map_err(sqlite_err("deleting sync states"))?;
        Ok(())
    }

    /// Peers with stored sync states in `space`.
    pub fn sync_state_peers(&mut self, space: &str) -> Result<Vec<NodeId>, StoreError> {
        let err = sqlite_err("listing sync state peers");
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT DISTINCT peer FROM sync_states WHERE space = ?1")
            .map_err(err)?;
        let peers = stmt
            .query_map(params![space], |r| r.get::<_, String>(0))
            .map_err(err)?
            .filter_map(|p| p.ok().and_then(|p| p.parse().ok()))
            .collect();
        Ok(peers)
    }

    /// Drops the states of peers not seen for the configured age, and states
    /// of documents no longer stored here; returns how many were dropped.
    /// Runs at open (and the age part on every save).
    pub fn prune_sync_states(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let err = sqlite_err("pruning sync states");
        let cutoff = self.sync_state_cutoff(now_ms);
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut dropped = prune_aged(&tx, cutoff).map_err(err)?;
        dropped += tx
            .execute(
                "DELETE FROM sync_states WHERE NOT EXISTS (SELECT 1 FROM docs d \
                 WHERE d.space = sync_states.space AND d.collection = sync_states.collection \
                   AND d.id = sync_states.id)",
                [],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(dropped)
    }

    /// Sets how long states with a peer not seen are kept.
    pub fn set_sync_state_max_age(&mut self, age: Duration) {
        self.sync_state_max_age = age;
    }

    /// Lowers the per-(peer, space) cap, so tests can exceed it cheaply.
    #[cfg(test)]
    pub(crate) fn set_sync_state_cap(&mut self, cap: usize) {
        self.sync_state_cap = cap;
    }

    /// States of peers last saved before this (unix ms) are dropped.
    fn sync_state_cutoff(&self, now_ms: i64) -> i64 {
        let age = i64::try_from(self.sync_state_max_age.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(age)
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

/// Deletes the states of peers last saved before `cutoff`, and those peers.
fn prune_aged(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    let dropped = conn
        .prepare_cached(
            "DELETE FROM sync_states WHERE peer IN \
             (SELECT peer FROM sync_peers WHERE saved_at < ?1)",
        )?
        .execute([cutoff])?;
    conn.prepare_cached("DELETE FROM sync_peers WHERE saved_at < ?1")?
        .execute([cutoff])?;
    Ok(dropped)
}

/// A space this device created or joined, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedSpace {
    /// The space id.
    pub id: String,
    /// Its name when joined (the log's name wins once it arrives).
    pub name: String,
    /// Whether it is the device's personal space.
    pub is_default: bool,
    /// Why an admin or the inviter refused this device, if one did.
    pub refused: Option<String>,
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

    /// Removes everything of a space from the replica in one transaction:
    /// its documents (membership log included) and their chunks, its sync
    /// states and its row. Returns how many documents went.
    pub fn delete_space(&mut self, id: &str) -> Result<u64, StoreError> {
        let err = sqlite_err("removing a space");
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // The rows going may hold the highest sequence numbers: keep them
        // as the floor, so no number is handed out twice.
        tx.execute(
            "INSERT INTO change_seq_floor (id, seq) \
             SELECT 1, coalesce(max(seq), 0) FROM docs WHERE true \
             ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
            [],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM chunks WHERE doc IN (SELECT doc FROM docs WHERE space = ?1)",
            [id],
        )
        .map_err(err)?;
        let docs = tx
            .execute("DELETE FROM docs WHERE space = ?1", [id])
            .map_err(err)?;
        tx.execute("DELETE FROM sync_states WHERE space = ?1", [id])
            .map_err(err)?;
        tx.execute("DELETE FROM spaces WHERE id = ?1", [id])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(docs as u64)
    }

    /// Spaces this device created or joined, oldest first.
    pub fn joined_spaces(&mut self) -> Result<Vec<JoinedSpace>, StoreError> {
        let err = sqlite_err("listing spaces");
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id, name, is_default, refused FROM spaces ORDER BY joined_at, id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(JoinedSpace {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    is_default: r.get(2)?,
                    refused: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Records why this device was refused in a space (`None`: it is not).
    pub fn set_space_refused(&mut self, id: &str, refused: Option<&str>) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE spaces SET refused = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, refused]))
            .map_err(sqlite_err("recording a refusal"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteRow;

    async fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _reader) = super::super::open(dir.path()).await.unwrap();
        (dir, writer)
    }

    fn key(space: &str, id: usize) -> DocKey {
        DocKey::new(space, "notes", format!("d{id:05}")).unwrap()
    }

    /// Stores documents `0..n` of `space`.
    fn hold(w: &mut Writer, space: &str, n: usize) {
        let rows: Vec<WriteRow> = (0..n)
            .map(|i| WriteRow {
                key: key(space, i),
                heads: vec![0; 32],
                json: Some("{}".into()),
                updated_at: 1,
                chunk: vec![1],
                snapshot: true,
                remote: false,
            })
            .collect();
        w.write(&rows).unwrap();
    }

    fn states(space: &str, ids: std::ops::Range<usize>) -> Vec<(DocKey, Vec<u8>)> {
        ids.map(|i| (key(space, i), vec![i as u8; 8])).collect()
    }

    fn count(w: &mut Writer, peer: NodeId, space: &str) -> i64 {
        w.conn()
            .query_row(
                "SELECT count(*) FROM sync_states WHERE peer = ?1 AND space = ?2",
                params![peer.to_string(), space],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn peer() -> NodeId {
        NodeId::from_bytes([7; 32])
    }

    fn other() -> NodeId {
        NodeId::from_bytes([8; 32])
    }

    #[tokio::test]
    async fn states_for_documents_not_held_are_not_stored() {
        let (_dir, mut w) = writer().await;
        hold(&mut w, "s", 3);
        // A peer naming thousands of documents that do not exist here.
        w.save_sync_states(peer(), &states("s", 0..5_000)).unwrap();
        w.save_sync_states(peer(), &states("elsewhere", 0..100))
            .unwrap();
        assert_eq!(count(&mut w, peer(), "s"), 3);
        assert_eq!(count(&mut w, peer(), "elsewhere"), 0);
        let keys: Vec<DocKey> = (0..5).map(|i| key("s", i)).collect();
        let loaded = w
            .sync_states(peer(), &keys.iter().collect::<Vec<_>>())
            .unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded[&key("s", 2)], vec![2; 8]);
    }

    #[tokio::test]
    async fn the_cap_per_peer_and_space_keeps_the_newest() {
        let (_dir, mut w) = writer().await;
        let cap = 10;
        w.set_sync_state_cap(cap);
        hold(&mut w, "s", 10 * cap + 5);
        hold(&mut w, "t", 3);
        w.save_sync_states(peer(), &states("s", 0..10 * cap))
            .unwrap();
        assert_eq!(count(&mut w, peer(), "s"), cap as i64);
        // Saved later, so these are the newest and stay.
        w.conn()
            .execute("UPDATE sync_states SET saved_at = saved_at - 1000", [])
            .unwrap();
        w.save_sync_states(peer(), &states("s", 10 * cap..10 * cap + 5))
            .unwrap();
        w.save_sync_states(peer(), &states("t", 0..3)).unwrap();
        w.save_sync_states(other(), &states("s", 0..3)).unwrap();
        assert_eq!(count(&mut w, peer(), "s"), cap as i64);
        assert_eq!(
            count(&mut w, peer(), "t"),
            3,
            "other spaces have their own cap"
        );
        assert_eq!(
            count(&mut w, other(), "s"),
            3,
            "other peers have their own cap"
        );
        let newest: Vec<DocKey> = (10 * cap..10 * cap + 5).map(|i| key("s", i)).collect();
        let loaded = w
            .sync_states(peer(), &newest.iter().collect::<Vec<_>>())
            .unwrap();
        assert_eq!(loaded.len(), 5);
    }

    #[tokio::test]
    async fn states_are_pruned_by_age_and_by_peer_and_space() {
        let (_dir, mut w) = writer().await;
        hold(&mut w, "s", 4);
        hold(&mut w, "t", 4);
        w.save_sync_states(peer(), &states("s", 0..4)).unwrap();
        w.save_sync_states(peer(), &states("t", 0..4)).unwrap();
        w.save_sync_states(other(), &states("s", 0..4)).unwrap();

        // Revoked in one space: only that pair goes.
        w.delete_sync_states(peer(), "t").unwrap();
        assert_eq!(count(&mut w, peer(), "t"), 0);
        assert_eq!(count(&mut w, peer(), "s"), 4);

        // Within the age nothing goes; past it, every peer not seen since.
        let age = Duration::from_secs(3600);
        w.set_sync_state_max_age(age);
        let now = now_ms();
        assert_eq!(w.prune_sync_states(now).unwrap(), 0);
        w.conn()
            .execute(
                "UPDATE sync_peers SET saved_at = ?1 WHERE peer = ?2",
                params![now - 2 * 3_600_000, other().to_string()],
            )
            .unwrap();
        assert_eq!(w.prune_sync_states(now).unwrap(), 4);
        assert_eq!(count(&mut w, other(), "s"), 0);
        assert_eq!(count(&mut w, peer(), "s"), 4);

        // Saving with one peer also drops the states of peers gone too long.
        w.conn()
            .execute(
                "UPDATE sync_peers SET saved_at = ?1",
                params![now - 2 * 3_600_000],
            )
            .unwrap();
        w.save_sync_states(other(), &states("s", 0..2)).unwrap();
        assert_eq!(count(&mut w, peer(), "s"), 0);
        assert_eq!(count(&mut w, other(), "s"), 2);

        // States of documents no longer stored are dropped at open.
        w.conn()
            .execute("DELETE FROM docs WHERE id = 'd00000'", [])
            .unwrap();
        assert_eq!(w.prune_sync_states(now).unwrap(), 1);
        assert_eq!(count(&mut w, other(), "s"), 1);
    }
}
