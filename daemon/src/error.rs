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

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 3 when something asked for does not exist, 4 when the replica is in
    /// use (a daemon already runs), 1 for every other failure (clap uses 2
    /// for bad usage). Service managers use 4 to not restart in a loop.
    pub fn exit_code(&self) -> u8 {
        match self.code.as_str() {
            "not_found" => EXIT_NOT_FOUND,
            "conflict" => EXIT_CONFLICT,
            _ => 1,
        }
    }
}

impl From<weft_core::Error> for CliError {
    fn from(e: weft_core::Error) -> Self {
        CliError::new(classify(&e).0, e.to_string())
    }
}
