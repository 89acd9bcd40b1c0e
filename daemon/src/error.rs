//! The CLI's error: the API's stable code and message, whichever path
//! (daemon or embedded) produced it, so both report failures alike.

use crate::api::classify;

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The API's error code (`not_found`, `invalid_input`, ...).
    pub code: String,
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

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 3 when something asked for does not exist, 4 when the replica is in
    /// use (a daemon already runs), 5 when the inviter refused a join, 1 for
    /// every other failure (clap uses 2 for bad usage). Service managers use
    /// 4 to not restart in a loop; scripts use 5 to ask for a new invite.
    pub fn exit_code(&self) -> u8 {
        match self.code.as_str() {
            "not_found" => EXIT_NOT_FOUND,
            "conflict" => EXIT_CONFLICT,
            crate::ops::REFUSED => EXIT_REFUSED,
            _ => 1,
        }
    }
}

impl From<weft_core::Error> for CliError {
    fn from(e: weft_core::Error) -> Self {
        CliError::new(classify(&e).0, e.to_string())
    }
}

impl From<crate::ops::JoinError> for CliError {
    fn from(e: crate::ops::JoinError) -> Self {
        match e {
            crate::ops::JoinError::Failed(e) => e.into(),
            refused @ crate::ops::JoinError::Refused { .. } => {
                CliError::new(crate::ops::REFUSED, refused.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::JoinError;

    #[test]
    fn a_refused_join_exits_5_with_the_reason_escaped() {
        let e = CliError::from(JoinError::Refused {
            space: "sp1".into(),
            reason: "invite already used\x1b[2J".into(),
        });
        assert_eq!((e.code.as_str(), e.exit_code()), ("refused", EXIT_REFUSED));
        assert!(e.message.contains("invite already used"), "{}", e.message);
        assert!(!e.message.contains('\x1b'), "{:?}", e.message);
        assert!(e.message.contains("new invite"), "{}", e.message);
        let e = CliError::from(JoinError::Failed(weft_core::Error::Timeout(
            std::time::Duration::from_secs(1),
        )));
        assert_eq!((e.code.as_str(), e.exit_code()), ("timeout", 1));
    }
}
