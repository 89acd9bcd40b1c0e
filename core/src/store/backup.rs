//! Backups of a running replica and restores into a data dir no process
//! holds.
//!
//! A backup is one SQLite file: `VACUUM INTO` from a read connection of
//! its own (a consistent snapshot of what was committed when it started,
//! taken while the writer goes on, since WAL readers never block it), plus
//! a table [`BACKUP_TABLE`] with the format and the device key. The key
//! travels with the data because a restored replica's spaces name this
//! node id: without its key the device could neither sign nor prove who it
//! is, so it could not sync. The file is as secret as the key (mode 0600).
//!
//! Files appear whole or not at all: each is written to a fresh temp file
//! beside its destination, synced, then renamed (or hard-linked, so an
//! existing file is never replaced unless asked).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::lock::{PRIVATE_MODE, ProcessLock};
use super::read::Reader;
use super::{BUSY_TIMEOUT, DB_FILE, StoreError, sqlite_err};
use crate::identity::{KEY_FILE, NodeId};

/// The table a backup carries its format and device key in.
pub const BACKUP_TABLE: &str = "weft_backup";
/// The backup format this build writes and reads.
pub const BACKUP_FORMAT: i64 = 1;

/// The tables a replica (and so a backup) must have.
const REPLICA_TABLES: [&str; 5] = [
    "docs",
    "chunks",
    "spaces",
    "sync_states",
    "_sqlx_migrations",
];

/// What a backup holds, as checked before it is written or restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The device whose key the backup carries.
    pub node_id: NodeId,
    /// Live user documents.
    pub documents: u64,
    /// Spaces created or joined.
    pub spaces: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh temp file beside `dest`, created exclusively and private (a
/// file or link placed beforehand is never followed).
fn temp_beside(dest: &Path) -> Result<(PathBuf, File), StoreError> {
    let dir = parent_of(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| StoreError::Backup(format!("no randomness: {e}")))?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.{nonce}.tmp"));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
    let file = options.open(&tmp).map_err(io(&tmp))?;
    Ok((tmp, file))
}

/// Removes a temp file when dropped, unless it was kept.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Syncs a directory, so the renames in it survive a power loss.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Moves `tmp` to `dest`; unless `overwrite`, fails if `dest` exists
/// (hard link then unlink, so no check-then-rename race replaces a file).
fn publish(tmp: &Path, dest: &Path, overwrite: bool) -> Result<(), StoreError> {
    if overwrite {
        fs::rename(tmp, dest).map_err(io(dest))?;
    } else {
        match fs::hard_link(tmp, dest) {
            Ok(()) => fs::remove_file(tmp).map_err(io(tmp))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(dest.to_path_buf()));
            }
            Err(e) => return Err(io(dest)(e)),
        }
    }
    sync_dir(parent_of(dest));
    Ok(())
}

/// Writes a backup of the database at `db` to `dest`, carrying `secret`
/// (the device key). Blocking: run it off the async runtime.
pub fn backup(
    db: &Path,
    dest: &Path,
    secret: &[u8; 32],
    node_id: NodeId,
    overwrite: bool,
) -> Result<BackupSummary, StoreError> {
    let dir = parent_of(dest);
    if !dir.is_dir() {
        return Err(StoreError::Backup(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    if dest.is_dir() {
        return Err(StoreError::Backup(format!(
            "{} is a directory; name a file",
            dest.display()
        )));
    }
    if !overwrite && fs::symlink_metadata(dest).is_ok() {
        return Err(StoreError::Exists(dest.to_path_buf()));
    }
    let (tmp, file) = temp_beside(dest)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    drop(file);
    {
        // Its own connection: the pool's are `query_only`, and this one
        // must not be handed to anyone else while it runs.
        let source = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err("opening the replica for a backup"))?;
        source
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite_err("opening the replica for a backup"))?;
        // The target is the empty private file made above, which SQLite
        // accepts and fills (keeping its mode).
        source
            .execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(sqlite_err("writing the backup"))?;
    }
    {
        let out = Connection::open(&tmp).map_err(sqlite_err("opening the backup"))?;
        let err = sqlite_err("recording the backup's key");
        // One self-contained file: no WAL beside it.
        out.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(err)?;
        out.execute_batch(&format!(
            "CREATE TABLE {BACKUP_TABLE} (format INTEGER NOT NULL, node_id TEXT NOT NULL, \
             secret BLOB NOT NULL, created_at INTEGER NOT NULL)"
        ))
        .map_err(err)?;
        out.execute(
            &format!(
                "INSERT INTO {BACKUP_TABLE} (format, node_id, secret, created_at) VALUES (?1, ?2, ?3, ?4)"
            ),
            params![
                BACKUP_FORMAT,
                node_id.to_string(),
                &secret[..],
                super::now_ms()
            ],
        )
        .map_err(err)?;
        out.close()
            .map_err(|(_, e)| sqlite_err("closing the backup")(e))?;
    }
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    let summary = inspect(&tmp)?;
    publish(&tmp, dest, overwrite)?;
    guard.keep();
    Ok(summary)
}

/// Checks that `file` is a whole, undamaged Weft backup and says what it
/// holds; reads it only.
pub fn inspect(file: &Path) -> Result<BackupSummary, StoreError> {
    let not_backup = |why: String| {
        StoreError::Backup(format!(
            "{} is not a usable Weft backup: {why}",
            file.display()
        ))
    };
    let meta = fs::metadata(file).map_err(io(file))?;
    if !meta.is_file() {
        return Err(not_backup("not a file".into()));
    }
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_backup(e.to_string()))?;
    let problems = integrity_problems(&conn).map_err(|e| not_backup(e.to_string()))?;
    if !problems.is_empty() {
        return Err(not_backup(format!(
            "it is damaged ({})",
            problems.join("; ")
        )));
    }
    for table in REPLICA_TABLES.iter().chain(&[BACKUP_TABLE]) {
        let found: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| not_backup(e.to_string()))?;
        if found.is_none() {
            return Err(not_backup(format!("it has no table {table}")));
        }
    }
    let (format, node_id, secret) = conn
        .query_row(
            &format!("SELECT format, node_id, secret FROM {BACKUP_TABLE}"),
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )
        .map_err(|e| not_backup(format!("its key record is unreadable ({e})")))?;
    if format != BACKUP_FORMAT {
        return Err(not_backup(format!(
            "format {format}, while this Weft reads format {BACKUP_FORMAT}"
        )));
    }
    let secret: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| not_backup("its device key is not 32 bytes".into()))?;
    let derived = key_node_id(&secret);
    if derived.to_string() != node_id {
        return Err(not_backup(
            "its device key does not match its node id".into(),
        ));
    }
    // A replica from a newer Weft would not open here: refused now, before
    // it replaces one that does.
    let schema: Option<i64> = conn
        .query_row("SELECT max(version) FROM _sqlx_migrations", [], |r| {
            r.get(0)
        })
        .map_err(|e| not_backup(e.to_string()))?;
    let known = super::MIGRATOR.migrations.iter().map(|m| m.version).max();
    if schema > known {
        return Err(not_backup(format!(
            "it was written by a newer Weft (schema {}, this one knows {})",
            schema.unwrap_or(0),
            known.unwrap_or(0)
        )));
    }
    let count = |sql: &str| -> Result<u64, StoreError> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| not_backup(e.to_string()))
    };
    Ok(BackupSummary {
        node_id: derived,
        documents: count("SELECT count(*) FROM docs WHERE deleted = 0 AND collection <> '_weft'")?,
        spaces: count("SELECT count(*) FROM spaces")?,
        bytes: meta.len(),
    })
}

fn key_node_id(secret: &[u8; 32]) -> NodeId {
    NodeId::from_bytes(
        ed25519_dalek::SigningKey::from_bytes(secret)
            .verifying_key()
            .to_bytes(),
    )
}

/// SQLite's integrity check on `conn`: the problems it reports (none when
/// the database is sound). A database too damaged to be checked at all is
/// one problem, not an error.
pub(super) fn integrity_problems(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(report) if report == ["ok"] => Ok(Vec::new()),
        Ok(report) => Ok(report),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ) =>
        {
            Ok(vec![e.to_string()])
        }
        Err(e) => Err(sqlite_err("checking integrity")(e)),
    }
}

impl Reader {
    /// [`integrity_problems`] on a read connection (off the async runtime).
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(integrity_problems).await
    }
}

/// Whether `dir` holds a replica with data (the lock makes an empty
/// database file, which holds nothing).
fn has_replica(dir: &Path) -> bool {
    fs::metadata(dir.join(DB_FILE)).is_ok_and(|m| m.len() > 0)
}

/// Restores `file` into `dir`: checks the backup first, then takes the
/// replica lock (failing with [`StoreError::Locked`] while any process
/// holds it), and replaces the database and the device key. An existing
/// replica, or another device's key, is replaced only if `overwrite`.
pub fn restore(dir: &Path, file: &Path, overwrite: bool) -> Result<BackupSummary, StoreError> {
    let summary = inspect(file)?;
    let mut dirs = fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(dir).map_err(io(dir))?;
    let _lock = ProcessLock::acquire(dir)?;
    let key_path = dir.join(KEY_FILE);
    let same_key = fs::read(&key_path)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(|k| key_node_id(&k) == summary.node_id);
    let other_key = same_key == Some(false) || (same_key.is_none() && key_path.exists());
    if !overwrite && (has_replica(dir) || other_key) {
        return Err(StoreError::Exists(dir.join(DB_FILE)));
    }
    let db = dir.join(DB_FILE);
    // The copy is made ready (key record dropped, synced) beside the
    // database before anything is replaced.
    let (tmp, mut out) = temp_beside(&db)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut src = File::open(file).map_err(io(file))?;
    std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
    drop(out);
    // What gets installed is the copy: it is checked again, in case the
    // file changed since the first look.
    if inspect(&tmp).ok().as_ref() != Some(&summary) {
        return Err(StoreError::Backup(format!(
            "{} changed while it was being restored; nothing was replaced",
            file.display()
        )));
    }
    let secret: Vec<u8> = {
        let conn = Connection::open(&tmp).map_err(sqlite_err("preparing the restore"))?;
        let err = sqlite_err("preparing the restore");
        let secret: Vec<u8> = conn
            .query_row(&format!("SELECT secret FROM {BACKUP_TABLE}"), [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        conn.execute_batch(&format!("DROP TABLE {BACKUP_TABLE}"))
            .map_err(err)?;
        conn.close()
            .map_err(|(_, e)| sqlite_err("preparing the restore")(e))?;
        secret
    };
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    let (key_tmp, mut key_file) = temp_beside(&key_path)?;
    let mut key_guard = TempGuard(Some(key_tmp.clone()));
    std::io::Write::write_all(&mut key_file, &secret).map_err(io(&key_tmp))?;
    key_file.sync_all().map_err(io(&key_tmp))?;
    drop(key_file);
    // The old database's WAL must not be applied to the new one: fold it
    // into the old file first (so the old replica stays whole until the
    // rename), then remove it.
    if has_replica(dir)
        && let Ok(old) = Connection::open(&db)
    {
        let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = old.close();
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        match fs::remove_file(PathBuf::from(&side)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(Path::new(&side))(e)),
        }
    }
    fs::rename(&tmp, &db).map_err(io(&db))?;
    guard.keep();
    // The key last: a restore cut short here leaves the restored data with
    // the old key, and running it again finishes it.
    fs::rename(&key_tmp, &key_path).map_err(io(&key_path))?;
    key_guard.keep();
    sync_dir(dir);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("junk");
        fs::write(&file, vec![7u8; 8192]).unwrap();
        let e = inspect(&file).unwrap_err().to_string();
        assert!(e.contains("not a usable Weft backup"), "{e}");
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        let e = inspect(&empty).unwrap_err().to_string();
        assert!(e.contains("no table"), "{e}");
    }
}
