//! The replica lock: one process at a time owns a data directory. An OS file
//! lock (released by the kernel even on `kill -9`) guards it, and the file
//! holds the owner's pid so the refusal can name it. Taking the lock also
//! makes the replica's files private to their owner (Unix), since a data
//! dir made by an older version or by hand may hold them world-readable.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{DB_FILE, StoreError};

/// Lock file name inside the data dir.
pub const LOCK_FILE: &str = "weft.lock";

/// Mode of the lock and database files: the replica holds private
/// documents, so only its owner may read them.
pub const PRIVATE_MODE: u32 = 0o600;

/// The files SQLite keeps beside the database (WAL mode), which inherit
/// the database file's mode when SQLite creates them.
const DB_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Held for as long as the replica is open.
#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    /// Takes the lock or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    path: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        make_private(dir)?;
        Ok(Self { _file: file })
    }
}

/// Narrows the lock and database files to their owner, and creates a
/// missing database file private, so the WAL and shared-memory files
/// SQLite makes beside it (with its mode) are private too.
#[cfg(unix)]
fn make_private(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let db = dir.join(DB_FILE);
    let io = |path: &Path, source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    // An empty file is an empty SQLite database; `create_new` never
    // touches one that exists (or a link placed there).
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(&db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(&db, e)),
    }
    let mut paths = vec![dir.join(LOCK_FILE), db.clone()];
    paths.extend(DB_SIDE_FILES.iter().map(|suffix| {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        std::path::PathBuf::from(name)
    }));
    for path in paths {
        // `symlink_metadata`: a link is left alone rather than its target changed.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path, e)),
        };
        let mode = meta.permissions().mode();
        if meta.file_type().is_file() && mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "replica file was readable by others; made it 0600");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(PRIVATE_MODE))
                .map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = ProcessLock::acquire(dir.path()).unwrap();
        match ProcessLock::acquire(dir.path()) {
            Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        ProcessLock::acquire(dir.path()).unwrap();
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn replica_files_are_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let fresh = tempfile::tempdir().unwrap();
        drop(ProcessLock::acquire(fresh.path()).unwrap());
        assert_eq!(mode(&fresh.path().join(LOCK_FILE)), PRIVATE_MODE);
        assert_eq!(mode(&fresh.path().join(DB_FILE)), PRIVATE_MODE);
        let old = tempfile::tempdir().unwrap();
        let names = [LOCK_FILE, DB_FILE, "weft.db-wal", "weft.db-shm"];
        for name in names {
            let path = old.path().join(name);
            std::fs::write(&path, b"").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        drop(ProcessLock::acquire(old.path()).unwrap());
        for name in names {
            assert_eq!(mode(&old.path().join(name)), PRIVATE_MODE, "{name}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sqlite_makes_its_side_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let _held = ProcessLock::acquire(dir.path()).unwrap();
        let (_writer, _reader) = crate::store::open(dir.path()).await.unwrap();
        for name in [DB_FILE, "weft.db-wal", "weft.db-shm"] {
            let path = dir.path().join(name);
            if path.exists() {
                assert_eq!(mode(&path), PRIVATE_MODE, "{name}");
            }
        }
        assert!(
            dir.path().join("weft.db-wal").exists(),
            "WAL mode made a -wal file"
        );
    }
}
