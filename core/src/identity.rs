//! Device identity: one ed25519 keypair per replica, created on first open.
//! Its public key is the node id, formatted as the libp2p PeerId of that key
//! so addresses like `/ip4/../p2p/<node id>` work unchanged once networking
//! derives its PeerId from the same key.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// File in the data dir holding the 32-byte secret key.
pub const KEY_FILE: &str = "identity.key";

/// Failures loading or creating the device key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key file could not be read or written.
    #[error("device key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file exists but is not a key.
    #[error(
        "device key {path} is damaged ({len} bytes, expected 32); restore it from a backup, or move it away to give this replica a new identity"
    )]
    Damaged {
        /// The key file.
        path: PathBuf,
        /// Its size.
        len: usize,
    },
    /// The OS random source failed.
    #[error("no secure randomness available: {0}")]
    Random(String),
    /// Text that is not a node id.
    #[error("invalid node id {0:?}")]
    InvalidNodeId(String),
}

/// A node's public identity: an ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 32]);

// PeerId bytes of an ed25519 key: identity multihash (0x00, len 36) over the
// protobuf `PublicKey { Type = Ed25519, Data = <32 bytes> }`.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

impl NodeId {
    /// Wraps raw public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw ed25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bytes of this key's libp2p PeerId.
    pub(crate) fn peer_id_bytes(&self) -> [u8; 38] {
        let mut buf = [0u8; 38];
        buf[..6].copy_from_slice(&PEER_ID_PREFIX);
        buf[6..].copy_from_slice(&self.0);
        buf
    }

    /// The node of a libp2p PeerId's bytes; `None` unless an ed25519 key's.
    pub(crate) fn from_peer_id_bytes(bytes: &[u8]) -> Option<Self> {
        let key = bytes.strip_prefix(&PEER_ID_PREFIX[..])?;
        Some(Self(key.try_into().ok()?))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.peer_id_bytes()).into_string())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdentityError::InvalidNodeId(s.to_owned());
        let bytes = bs58::decode(s).into_vec().map_err(|_| bad())?;
        Self::from_peer_id_bytes(&bytes).ok_or_else(bad)
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The device keypair.
pub struct Identity {
    key: SigningKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.node_id())
    }
}

impl Identity {
    /// Loads the key from `dir`, creating it (mode 0600) on first use. The
    /// caller holds the replica lock, so two processes never race here.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        Self::load_or(dir, true)
    }

    /// Loads the key from `dir`; a missing key is an error, never a new one
    /// (a backup must carry the key the running node has).
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        Self::load_or(dir, false)
    }

    fn load_or(dir: &Path, create: bool) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        match fs::read(&path) {
            Ok(bytes) => {
                let secret: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| IdentityError::Damaged {
                            path: path.clone(),
                            len: bytes.len(),
                        })?;
                Ok(Self {
                    key: SigningKey::from_bytes(&secret),
                })
            }
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| IdentityError::Random(e.to_string()))?;
                // Write beside, then rename: a crash never leaves a half-written key.
                // A fresh random name opened exclusively, so a link placed
                // beforehand cannot redirect the secret elsewhere.
                let mut nonce = [0u8; 8];
                getrandom::fill(&mut nonce).map_err(|e| IdentityError::Random(e.to_string()))?;
                let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
                let tmp = dir.join(format!("{KEY_FILE}.{nonce}.tmp"));
                let mut file = private_file(&tmp).map_err(io)?;
                file.write_all(&secret).map_err(io)?;
                file.sync_all().map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
                tracing::info!(path = %path.display(), "created device identity");
                Ok(Self {
                    key: SigningKey::from_bytes(&secret),
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// This device's node id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    /// The signing key, for layers that sign (transport, membership).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// A new file only its owner can read; fails if anything, a symlink
/// included, is already at `path` (`O_CREAT | O_EXCL` never follows links).
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn node_id_is_a_peer_id_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap().node_id();
        let text = id.to_string();
        // Every libp2p PeerId of an ed25519 key starts like this.
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert!("12D3KooWnot-base58!".parse::<NodeId>().is_err());
        assert!(
            "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
                .parse::<NodeId>()
                .is_err()
        );
    }

    #[cfg(unix)]
    #[test]
    fn temp_files_never_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let planted = dir.path().join("planted.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = private_file(&planted).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        // The name the old code used, planted too: the key goes elsewhere.
        std::os::unix::fs::symlink(&victim, dir.path().join(format!("{KEY_FILE}.tmp"))).unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap().len(), 32);
    }

    #[test]
    fn damaged_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, IdentityError::Damaged { len: 5, .. }),
            "{err}"
        );
    }
}
