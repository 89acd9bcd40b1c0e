//! The files a daemon leaves in its data dir for clients: `daemon.json`
//! (where its API is) and `api-token` (the bearer token, mode 0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
                "invalid_input",
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
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::new("internal", format!("no randomness for the API token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(&data_dir.join(TOKEN_FILE), token.as_bytes(), 0o600)?;
    Ok(token)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    // `mode` applies only to a file the open creates; a leftover temp file
    // keeps its own, so set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(&tmp, e))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
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
    CliError::new("internal", format!("{}: {e}", path.display()))
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
