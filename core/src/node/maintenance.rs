//! Looking after a replica: backups, restores, the integrity check, and
//! leaving a space (which removes its local copy).

use std::path::Path;

use serde::Serialize;

use super::Node;
use super::spaces::SpaceCommand;
use super::writer::Command;
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::node::SpaceRef;
use crate::store::{self, BackupSummary, DB_FILE};

/// What a backup file holds (written by [`Node::backup`], restored by
/// [`Node::restore`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// The device whose key the backup carries.
    pub node_id: NodeId,
    /// Live user documents in it.
    pub documents: u64,
    /// Spaces in it.
    pub spaces: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl From<BackupSummary> for BackupInfo {
    fn from(s: BackupSummary) -> Self {
        Self {
            node_id: s.node_id,
            documents: s.documents,
            spaces: s.spaces,
            bytes: s.bytes,
        }
    }
}

impl Node {
    /// Writes a consistent snapshot of the replica to `path` (what was
    /// committed when it starts; writes go on meanwhile), with this
    /// device's key, since a restored replica is only usable as this
    /// device. The file is created mode 0600, complete or not at all; an
    /// existing file is replaced only if `overwrite`.
    pub async fn backup(&self, path: &Path, overwrite: bool) -> Result<BackupInfo> {
        let db = self.data_dir().join(DB_FILE);
        let dest = path.to_path_buf();
        // The key file, not a copy kept in memory: the node holds the
        // replica lock, so it is the one this node runs with.
        let identity = Identity::load(self.data_dir())?;
        let secret = identity.signing_key().to_bytes();
        let node_id = identity.node_id();
        let dir = path.parent().map(Path::to_path_buf);
        let summary = tokio::task::spawn_blocking(move || {
            store::backup(&db, &dest, &secret, node_id, overwrite)
        })
        .await
        .map_err(|_| Error::Closed)?
        .map_err(|e| match e {
            // A file the caller's path names that cannot be written (a
            // read-only or virtual file system, a full disk there): the
            // caller's to fix, not a failure of the replica.
            store::StoreError::Io {
                path: failed,
                source,
            } if dir.as_deref().is_some_and(|d| failed.starts_with(d)) => Error::InvalidInput(
                format!("cannot write the backup at {}: {source}", path.display()),
            ),
            e => e.into(),
        })?;
        tracing::info!(path = %path.display(), bytes = summary.bytes, "backup written");
        Ok(summary.into())
    }

    /// Restores a backup into `data_dir`, which no process may hold
    /// ([`Error::Locked`] otherwise). The file is checked first (a Weft
    /// backup, undamaged); then the database and the device key are
    /// replaced, each by a rename, and the old database's `-wal`/`-shm`
    /// are removed. An existing replica (or another device's key) is
    /// replaced only if `overwrite`. Nothing in `data_dir` changes when
    /// the backup is refused.
    pub async fn restore(data_dir: &Path, file: &Path, overwrite: bool) -> Result<BackupInfo> {
        let (dir, file) = (data_dir.to_path_buf(), file.to_path_buf());
        let summary = tokio::task::spawn_blocking(move || store::restore(&dir, &file, overwrite))
            .await
            .map_err(|_| Error::Closed)??;
        tracing::info!(data_dir = %data_dir.display(), documents = summary.documents, "backup restored");
        Ok(summary.into())
    }

    /// What SQLite's integrity check finds wrong with the replica; empty
    /// when it is sound. It runs on a read connection, so it never holds
    /// up writes or sync (on a large replica it takes seconds).
    pub async fn integrity_problems(&self) -> Result<Vec<String>> {
        Ok(self.inner.reader.integrity_problems().await?)
    }

    /// Leaves a space: this device stops syncing it and removes its local
    /// copy (documents, membership log, sync states) in one transaction.
    /// Peers keep theirs; an admin may still revoke this device, and
    /// joining again needs a new invite. Peers in session for the space
    /// are disconnected once, so their side ends too. The default
    /// (personal) space cannot be left. Live queries of the space get
    /// their (now empty) result; the change feed sends nothing for the
    /// documents removed. Returns how many documents went.
    pub async fn space_leave(&self, space: impl Into<SpaceRef>) -> Result<u64> {
        let space = self.resolve_space(space).await?;
        let id = space.clone();
        let removed = self
            .call(|reply| Command::Space(SpaceCommand::Leave { space, reply }))
            .await?;
        if let Some(hub) = self.inner.observers.get() {
            hub.wake_space(&id);
        }
        Ok(removed)
    }
}
