//! The public error type. Each layer has its own error enum; the facade
//! converts them here so callers match on one type with clear messages.

use std::path::PathBuf;

use crate::doc::DocError;
use crate::identity::IdentityError;
use crate::store::StoreError;

/// Everything a [`crate::Node`] operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the replica's lock.
    #[error(
        "the replica at {path} is in use by another process{}; stop that process or pass a different data dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// The holder's process id, when it could be read from the lock file.
        pid: Option<u32>,
    },
    /// A space, collection or document id that Weft does not accept.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A document body that Weft does not accept.
    #[error(transparent)]
    Document(#[from] DocError),
    /// The document does not exist (or is deleted).
    #[error("document {0} not found")]
    NotFound(String),
    /// A query that cannot be run (bad field path, unsupported value).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A statement given to the read-only SQL entry point failed or tried to write.
    #[error("SQL statement rejected: {0}")]
    Sql(String),
    /// Heads given to `get_at` that the document does not contain.
    #[error("unknown heads for document {0}: pass heads returned by `history` or a change event")]
    UnknownHeads(String),
    /// Device identity could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A document's stored data cannot be loaded. Other documents are
    /// unaffected; its materialized JSON stays readable.
    #[error(
        "document {key} is damaged in storage ({reason}); other documents are unaffected — restore it from a peer or a backup"
    )]
    Corrupt {
        /// The document.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The local database failed.
    #[error(transparent)]
    Store(StoreError),
    /// An invite or membership problem (bad token, expired, forged).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// This node lacks the role an operation needs.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// A space this device has not created or joined.
    #[error("unknown space {0:?}: create it or join it with an invite")]
    UnknownSpace(String),
    /// An argument that is malformed (an address, a node id, a duration).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Networking failed or is off.
    #[error("network: {0}")]
    Network(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Waiting took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The node has been closed.
    #[error("the node is closed")]
    Closed,
}

/// Shorthand for results of [`crate::Node`] operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked { path, pid } => Error::Locked { path, pid },
            e => Error::Store(e),
        }
    }
}
