//! Node configuration and the platform default data directory.

use std::path::PathBuf;

use crate::error::Error;

/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "WEFT_DATA_DIR";

/// How [`crate::Node::open`] sets up a replica. `Config::default()` works.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where the replica lives. `None`: `$WEFT_DATA_DIR`, else the platform
    /// data dir (e.g. `~/.local/share/weft` on Linux).
    pub data_dir: Option<PathBuf>,
    /// Automerge documents kept in memory (least recently used are dropped).
    pub doc_cache_size: usize,
    /// Materialized JSON documents kept in memory for point reads.
    pub json_cache_size: usize,
    /// A document's incremental chunks are folded into one snapshot once
    /// there are this many.
    pub compact_after_chunks: u32,
    /// Sync states with a peer not seen for this long are dropped (at open
    /// and whenever states are saved); it then syncs from scratch.
    pub sync_state_max_age: std::time::Duration,
    /// Networking; `None` keeps the replica offline. The library default is
    /// offline so that embedding it (and its tests) opens no sockets; front
    /// ends such as the daemon turn it on.
    pub network: Option<crate::net::NetConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: None,
            doc_cache_size: 512,
            json_cache_size: 16_384,
            compact_after_chunks: 32,
            sync_state_max_age: crate::store::SYNC_STATE_MAX_AGE,
            network: None,
        }
    }
}

impl Config {
    /// A default config with an explicit data directory.
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: Some(dir.into()),
            ..Self::default()
        }
    }

    /// The data directory this config resolves to: the field, then
    /// `$WEFT_DATA_DIR`, then the platform default.
    pub fn resolve_data_dir(&self) -> Result<PathBuf, Error> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        default_data_dir()
    }
}

/// The platform's data directory for Weft.
pub fn default_data_dir() -> Result<PathBuf, Error> {
    directories::ProjectDirs::from("org", "weft", "weft")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            Error::Config(format!(
                "no home directory found; set {DATA_DIR_ENV} or pass a data dir"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_wins() {
        let c = Config::with_data_dir("/tmp/x");
        assert_eq!(c.resolve_data_dir().unwrap(), PathBuf::from("/tmp/x"));
    }

    #[test]
    fn platform_default_names_weft() {
        let dir = default_data_dir().unwrap();
        assert!(dir.to_string_lossy().contains("weft"), "{dir:?}");
    }
}
