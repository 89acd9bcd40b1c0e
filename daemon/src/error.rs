//! The CLI's error: a [`weft_core::ErrorKind`] and a message, read back
//! from the API's `{error, message}` answer, so every command reports
//! failures alike whether a daemon or the process itself served it.

use weft_core::ErrorKind;

use crate::model::ApiError;

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// What kind of failure (its code is the API's `error`).
    pub kind: ErrorKind,
    /// What went wrong and what to do.
    pub message: String,
}

/// Exit status for "the document (or space) does not exist".
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit status for "the replica is in use by another daemon or process".
pub const EXIT_CONFLICT: u8 = 4;
/// Exit status for "the join was refused" (invite already used, expired,
/// inviter revoked): retrying the same token cannot help.
pub const EXIT_REFUSED: u8 = 5;

/// The exit status of each kind: the one table of it. 3 when something
/// asked for does not exist, 4 when the replica is in use (a daemon already
/// runs), 5 when the inviter refused a join, 1 for every other failure
/// (clap uses 2 for bad usage). Service managers use 4 to not restart in a
/// loop; scripts use 5 to ask for a new invite.
pub fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound => EXIT_NOT_FOUND,
        ErrorKind::Locked => EXIT_CONFLICT,
        ErrorKind::Refused => EXIT_REFUSED,
        _ => 1,
    }
}

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        exit_status(self.kind)
    }
}

impl From<weft_core::Error> for CliError {
    fn from(e: weft_core::Error) -> Self {
        CliError::new(e.kind(), e.to_string())
    }
}

impl From<ApiError> for CliError {
    /// A code this build does not know (a newer daemon's) is a failure
    /// all the same, with the daemon's message.
    fn from(e: ApiError) -> Self {
        let kind = ErrorKind::from_code(&e.error).unwrap_or(ErrorKind::Internal);
        CliError::new(kind, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::Error;

    #[test]
    fn a_refused_join_exits_5_with_the_reason_escaped() {
        let e = CliError::from(Error::Refused {
            space: "sp1".into(),
            reason: "invite already used\x1b[2J".into(),
        });
        assert_eq!((e.kind, e.exit_code()), (ErrorKind::Refused, EXIT_REFUSED));
        assert!(e.message.contains("invite already used"), "{}", e.message);
        assert!(!e.message.contains('\x1b'), "{:?}", e.message);
        assert!(e.message.contains("new invite"), "{}", e.message);
        let e = CliError::from(Error::Timeout(std::time::Duration::from_secs(1)));
        assert_eq!((e.kind, e.exit_code()), (ErrorKind::Timeout, 1));
    }

    #[test]
    fn api_codes_read_back_to_their_exit_status() {
        let read = |code: &str| {
            CliError::from(ApiError {
                error: code.into(),
                message: "m".into(),
                index: None,
            })
            .exit_code()
        };
        assert_eq!(read("not_found"), EXIT_NOT_FOUND);
        assert_eq!(read("conflict"), EXIT_CONFLICT);
        assert_eq!(read("refused"), EXIT_REFUSED);
        assert_eq!(read("invalid_invite"), 1);
        assert_eq!(read("from_the_future"), 1);
    }
}
