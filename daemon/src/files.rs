//! The files a daemon leaves in its data dir for clients: `daemon.json`
//! (where its API is) and `api-token` (the bearer token, mode 0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weft_core::ErrorKind;

use crate::error::CliError;

pub const DAEMON_FILE: &str = "daemon.json";
pub const TOKEN_FILE: &str = "api-token";

/// The contents of `daemon.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon's process id.
    pub pid: u32,
    /// Its API base URL, `http://127.0.0.1:PORT`.
    pub api: String,
}

/// `daemon.json`, if present.
pub fn read_daemon_info(data_dir: &Path) -> Result<Option<DaemonInfo>, CliError> {
    let path = data_dir.join(DAEMON_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is damaged ({e}); delete it if no daemon runs",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path, e)),
    }
}

/// Writes `daemon.json` atomically, so a reader never sees half of it.
pub fn write_daemon_info(data_dir: &Path, info: &DaemonInfo) -> Result<(), CliError> {
    let json = serde_json::to_vec_pretty(info).expect("daemon info serializes");
    write_atomic(&data_dir.join(DAEMON_FILE), &json, 0o600)
}

/// Removes `daemon.json` if it still names this process.
pub fn remove_daemon_info(data_dir: &Path, pid: u32) {
    if let Ok(Some(info)) = read_daemon_info(data_dir)
        && info.pid == pid
    {
        let _ = std::fs::remove_file(data_dir.join(DAEMON_FILE));
    }
}

/// The API token, if one was made.
pub fn read_token(data_dir: &Path) -> Result<Option<String>, CliError> {
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t.trim().to_owned())).map(|t| t.filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path, e)),
    }
}

/// The API token, made on first start and kept, so apps configured with it
/// keep working across restarts. Delete the file to rotate it.
pub fn load_or_create_token(data_dir: &Path) -> Result<String, CliError> {
    if let Some(token) = read_token(data_dir)? {
        make_private(&data_dir.join(TOKEN_FILE))?;
        return Ok(token);
    }
    let token = new_token()?;
    write_atomic(&data_dir.join(TOKEN_FILE), token.as_bytes(), 0o600)?;
    Ok(token)
}

/// A fresh random API token: 32 bytes, hex.
pub fn new_token() -> Result<String, CliError> {
    random_hex::<32>("the API token")
}

/// `N` random bytes as hex, for `what`.
fn random_hex<const N: usize>(what: &str) -> Result<String, CliError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        CliError::new(
            ErrorKind::Internal,
            format!("no randomness for {what}: {e}"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    // A fresh random name opened exclusively (`O_CREAT | O_EXCL` never
    // follows a link), so a file or link planted beside cannot redirect
    // the write; the rename then replaces `path` itself, never a target.
    let nonce = random_hex::<8>("a temp name")?;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{nonce}.tmp"));
    let tmp = PathBuf::from(name);
    let mut file = create_private(&tmp, mode).map_err(|e| io_error(&tmp, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io_error(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new file with `mode`; fails if anything, a link included, is at `path`.
fn create_private(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Narrows an existing token file to its owner, saying so if it was wider.
fn make_private(path: &Path) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| io_error(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "API token was readable by others; made it 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error(path, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::new(ErrorKind::Internal, format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_token(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_token_is_narrowed_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE);
        std::fs::write(&path, "abc").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_token(dir.path()).unwrap(), "abc");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_never_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = create_private(&planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        // The temp names the old code used, planted too.
        for name in ["api-token.tmp", "daemon.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        let token = load_or_create_token(dir.path()).unwrap();
        let info = DaemonInfo {
            pid: 7,
            api: "http://127.0.0.1:9".into(),
        };
        write_daemon_info(dir.path(), &info).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(read_token(dir.path()).unwrap(), Some(token));
        assert_eq!(read_daemon_info(dir.path()).unwrap(), Some(info));
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.ends_with(".tmp") && name.matches('.').count() > 1
            })
            .count();
        assert_eq!(leftovers, 0, "no temp file is left behind");
    }

    #[test]
    fn daemon_info_round_trips_and_is_removed_only_by_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_daemon_info(dir.path()).unwrap(), None);
        let info = DaemonInfo {
            pid: 7,
            api: "http://127.0.0.1:9".into(),
        };
        write_daemon_info(dir.path(), &info).unwrap();
        assert_eq!(read_daemon_info(dir.path()).unwrap(), Some(info));
        remove_daemon_info(dir.path(), 8);
        assert!(dir.path().join(DAEMON_FILE).exists());
        remove_daemon_info(dir.path(), 7);
        assert!(!dir.path().join(DAEMON_FILE).exists());
        std::fs::write(dir.path().join(DAEMON_FILE), "{").unwrap();
        assert!(
            read_daemon_info(dir.path())
                .unwrap_err()
                .message
                .contains("damaged")
        );
    }
}
