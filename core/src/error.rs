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
    /// A conditional write whose condition on the document's current state
    /// does not hold (see [`crate::node::Precondition`]).
    #[error("precondition failed for document {key}: {reason}")]
    PreconditionFailed {
        /// The document.
        key: String,
        /// How its state differs from the condition.
        reason: String,
    },
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
    /// One operation of a [`crate::Node::batch`] failed, so none was stored.
    #[error(
        "operation {index} of the batch ({}): {source}; nothing in the batch was stored",
        printable(key)
    )]
    Batch {
        /// The failing operation's position in the batch, from 0.
        index: usize,
        /// Its document, `collection/id`.
        key: String,
        /// Why it failed.
        source: Box<Error>,
    },
    /// A file the operation would replace exists, and replacing it was not
    /// asked for.
    #[error("{} already exists; pass force (`--force`) to replace it", .0.display())]
    Exists(PathBuf),
    /// An admin or the inviter refused this device in a space it joined
    /// (the invite was already used or expired, or the inviter was revoked).
    #[error(
        "the inviter refused this device in space {space}: {}; ask an admin of the space for a new invite and join with it",
        printable(reason)
    )]
    Refused {
        /// The space id.
        space: String,
        /// Their reason, as a peer sent it.
        reason: String,
    },
}

/// What kind of failure an [`Error`] is: the one classification every front
/// end renders (API code and status, CLI exit status, FFI error variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument Weft does not accept: malformed JSON, a bad name, id,
    /// query, address, duration or option.
    InvalidInput,
    /// An invite token that is malformed, expired, forged or for another node.
    InvalidInvite,
    /// A caller without the credentials a front end asks for (the API token).
    Unauthorized,
    /// This node lacks the role the operation needs.
    Forbidden,
    /// The document or space does not exist here.
    NotFound,
    /// A precondition on the current state failed (the document moved on).
    PreconditionFailed,
    /// Another process holds the replica.
    Locked,
    /// An admin or the inviter refused this device in a space.
    Refused,
    /// Networking failed, is paused or is off.
    Network,
    /// Waiting took longer than allowed.
    Timeout,
    /// The node is closed or shutting down.
    Closed,
    /// The local database or the device identity failed, or a document is
    /// damaged in storage.
    Storage,
    /// A bug in Weft.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::InvalidInput,
        ErrorKind::InvalidInvite,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::PreconditionFailed,
        ErrorKind::Locked,
        ErrorKind::Refused,
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::Closed,
        ErrorKind::Storage,
        ErrorKind::Internal,
    ];

    /// The stable machine-readable code (the API's `error` field, the CLI's
    /// `--json` errors). Storage and internal failures share `internal`:
    /// either way the replica failed and the log says how.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::InvalidInvite => "invalid_invite",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::Locked => "conflict",
            ErrorKind::Refused => "refused",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "unavailable",
            ErrorKind::Storage | ErrorKind::Internal => "internal",
        }
    }

    /// The kind a code stands for (the CLI reading an API answer); `None`
    /// for a code this build does not know.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        // `internal` reads back as Internal, the first kind with that code.
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// True when the caller's request was at fault, not the replica.
    pub fn is_caller_error(self) -> bool {
        !matches!(
            self,
            ErrorKind::Network
                | ErrorKind::Timeout
                | ErrorKind::Closed
                | ErrorKind::Storage
                | ErrorKind::Internal
        )
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Error {
    /// The kind of failure, for front ends to render.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidKey(_)
            | Error::Document(_)
            | Error::InvalidQuery(_)
            | Error::Sql(_)
            | Error::UnknownHeads(_)
            | Error::Config(_)
            | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Auth(_) => ErrorKind::InvalidInvite,
            Error::NotFound(_) | Error::UnknownSpace(_) => ErrorKind::NotFound,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::Network(_) => ErrorKind::Network,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Closed => ErrorKind::Closed,
            Error::Store(_) | Error::Corrupt { .. } | Error::Identity(_) => ErrorKind::Storage,
            Error::Batch { source, .. } => source.kind(),
            Error::Exists(_) => ErrorKind::PreconditionFailed,
        }
    }

    /// For a failed batch, the position of the operation that failed.
    pub fn batch_index(&self) -> Option<usize> {
        match self {
            Error::Batch { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// Names the batch operation this error belongs to.
    pub(crate) fn in_batch(self, index: usize, key: &crate::DocKey) -> Error {
        Error::Batch {
            index,
            key: format!("{}/{}", key.collection(), key.id()),
            source: Box::new(self),
        }
    }

    /// The error of a one-write batch, without the batch around it.
    pub(crate) fn single(self) -> Error {
        match self {
            Error::Batch { source, .. } => *source,
            e => e,
        }
    }
}

/// Text from a peer (a name, a refusal reason), fit to show people:
/// control and bidi-override characters escaped, so it cannot rewrite a
/// terminal or reorder what is printed around it.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Shorthand for results of [`crate::Node`] operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked { path, pid } => Error::Locked { path, pid },
            StoreError::InvalidQuery(m) => Error::InvalidQuery(m),
            StoreError::Statement(m) => Error::Sql(m),
            StoreError::Timeout(t) => Error::Timeout(t),
            StoreError::Closed => Error::Closed,
            StoreError::Backup(_) => Error::InvalidInput(e.to_string()),
            StoreError::Exists(path) => Error::Exists(path),
            e => Error::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_to_their_kind() {
        for kind in ErrorKind::ALL {
            let back = ErrorKind::from_code(kind.code()).expect("known code");
            assert_eq!(back.code(), kind.code());
        }
        assert_eq!(ErrorKind::from_code("nope"), None);
    }

    #[test]
    fn caller_mistakes_are_not_replica_failures() {
        for e in [
            Error::InvalidKey("x".into()),
            Error::InvalidQuery("x".into()),
            Error::NotFound("x".into()),
            Error::UnknownSpace("x".into()),
            Error::Forbidden("x".into()),
        ] {
            assert!(e.kind().is_caller_error(), "{e}");
        }
        assert!(!Error::Closed.kind().is_caller_error());
    }

    #[test]
    fn a_refusal_escapes_the_peers_reason() {
        let e = Error::Refused {
            space: "sp".into(),
            reason: "used\x1b[2J\u{202e}".into(),
        };
        let text = e.to_string();
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert!(text.contains("new invite"), "{text}");
        assert_eq!(e.kind(), ErrorKind::Refused);
    }
}
