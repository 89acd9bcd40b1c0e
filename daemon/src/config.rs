//! `weft.toml`: every flag of the CLI and daemon as a config key. Flags and
//! environment variables win over the file; the file wins over defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use weft_core::ErrorKind;

use crate::error::CliError;

/// The config file's name in the platform config dir.
pub const CONFIG_FILE: &str = "weft.toml";

/// The contents of `weft.toml`. Unknown keys are an error, so a typo does
/// not silently fall back to a default.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--space`.
    pub space: Option<String>,
    /// `--json`.
    pub json: Option<bool>,
    /// Log filter when `RUST_LOG` is unset (`info`, `weft_core=debug`, ...).
    pub log: Option<String>,
    /// `weft daemon --log-format`: `text` (default) or `json`.
    pub log_format: Option<crate::logging::LogFormat>,
    /// `weft daemon --listen` (multiaddrs).
    pub listen: Option<Vec<String>>,
    /// `weft daemon --peer` (multiaddrs ending in `/p2p/<id>`).
    pub peers: Option<Vec<String>>,
    /// `mdns = false` is `weft daemon --no-mdns`.
    pub mdns: Option<bool>,
    /// `weft daemon --api HOST:PORT`.
    pub api: Option<String>,
    /// Allows a non-loopback `api` address (the API then answers the network).
    pub api_allow_remote: Option<bool>,
    /// `weft daemon --api-allowed-origin`: web origins besides loopback
    /// ones whose pages may call the API (`https://app.example.com`).
    pub api_allowed_origins: Option<Vec<String>>,
    /// Kademlia bootstrap peers.
    pub bootstrap: Option<Vec<String>>,
    /// Relays to listen through.
    pub relays: Option<Vec<String>>,
    /// Serve as a relay for others.
    pub relay_server: Option<bool>,
    /// `weft space invite --role`.
    pub invite_role: Option<String>,
    /// `weft space invite --expires`.
    pub invite_expires: Option<String>,
    /// `weft status --timeout` (seconds).
    pub status_timeout: Option<f64>,
    /// The space (name or id) documents created by automerge-repo clients
    /// land in; default: the device's default space.
    pub automerge_space: Option<String>,
    /// Their collection; default `automerge`.
    pub automerge_collection: Option<String>,
}

/// Where `weft.toml` is looked for: `--config`/`WEFT_CONFIG`, else the
/// platform config dir (`~/.config/weft/weft.toml` on Linux).
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => directories::ProjectDirs::from("org", "weft", "weft")
            .map(|d| d.config_dir().join(CONFIG_FILE)),
    }
}

/// Loads the config. A missing default file is no config; a missing file
/// named explicitly is an error.
pub fn load(explicit: Option<&Path>) -> Result<FileConfig, CliError> {
    let Some(path) = config_path(explicit) else {
        return Ok(FileConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(FileConfig::default());
        }
        Err(e) => {
            return Err(CliError::new(
                ErrorKind::InvalidInput,
                format!("cannot read config {}: {e}", path.display()),
            ));
        }
    };
    toml::from_str(&text).map_err(|e| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("config {} is invalid: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses() {
        let c: FileConfig = toml::from_str(
            r#"
            data_dir = "/tmp/w"
            space = "team"
            json = true
            log = "debug"
            log_format = "json"
            listen = ["/ip4/127.0.0.1/tcp/0"]
            peers = []
            mdns = false
            api = "127.0.0.1:7070"
            api_allow_remote = false
            api_allowed_origins = ["https://app.example.com"]
            bootstrap = []
            relays = []
            relay_server = false
            invite_role = "reader"
            invite_expires = "1d"
            status_timeout = 30
            automerge_space = "team"
            automerge_collection = "am"
            "#,
        )
        .unwrap();
        assert_eq!(c.mdns, Some(false));
        assert_eq!(c.log_format, Some(crate::logging::LogFormat::Json));
        assert_eq!(c.api.as_deref(), Some("127.0.0.1:7070"));
    }

    #[test]
    fn typos_and_missing_explicit_files_are_errors() {
        let err = toml::from_str::<FileConfig>("mdsn = false").unwrap_err();
        assert!(err.to_string().contains("mdsn"), "{err}");
        let err = toml::from_str::<FileConfig>("log_format = \"xml\"").unwrap_err();
        assert!(
            err.to_string().contains("text"),
            "names what is allowed: {err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(
            load(Some(&missing))
                .unwrap_err()
                .message
                .contains("nope.toml")
        );
        std::fs::write(&missing, "json = 3").unwrap();
        assert!(
            load(Some(&missing))
                .unwrap_err()
                .message
                .contains("invalid")
        );
    }
}
