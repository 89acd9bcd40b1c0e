//! The one error type foreign code sees.

/// Why a Weft call failed. Each variant carries a message fit to show a
/// developer; the variant says what kind of failure it is.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum WeftError {
    /// An argument Weft does not accept: malformed JSON, a bad name or id,
    /// an unusable query, address or option.
    #[error("{0}")]
    InvalidInput(String),
    /// The document or space does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// This device lacks the role the operation needs.
    #[error("{0}")]
    Forbidden(String),
    /// An invite token is malformed, expired, forged or meant for another node.
    #[error("{0}")]
    Invite(String),
    /// The inviter or an admin refused this device in a space it joined
    /// (the invite was already used or expired, or the inviter was
    /// revoked); the message has their reason. Ask for a new invite.
    #[error("{0}")]
    Refused(String),
    /// Another process has the replica open.
    #[error("{0}")]
    Locked(String),
    /// Networking failed, is paused or is off.
    #[error("{0}")]
    Network(String),
    /// Waiting took longer than allowed.
    #[error("{0}")]
    Timeout(String),
    /// The node has been closed.
    #[error("{0}")]
    Closed(String),
    /// The local database or the device identity failed, or a document is
    /// damaged in storage.
    #[error("{0}")]
    Storage(String),
    /// A bug in Weft; please report it with the message.
    #[error("{0}")]
    Internal(String),
}

impl WeftError {
    pub(crate) fn closed() -> Self {
        WeftError::Closed(weft_core::Error::Closed.to_string())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        WeftError::InvalidInput(message.into())
    }
}

impl From<weft_core::Error> for WeftError {
    /// One match over the core's classification, the one every front end
    /// renders, so a new error variant needs no change here.
    fn from(e: weft_core::Error) -> Self {
        use weft_core::ErrorKind as K;
        let message = e.to_string();
        match e.kind() {
            K::InvalidInput | K::PreconditionFailed => WeftError::InvalidInput(message),
            K::InvalidInvite => WeftError::Invite(message),
            K::NotFound => WeftError::NotFound(message),
            K::Forbidden | K::Unauthorized => WeftError::Forbidden(message),
            K::Refused => WeftError::Refused(message),
            K::Locked => WeftError::Locked(message),
            K::Network => WeftError::Network(message),
            K::Timeout => WeftError::Timeout(message),
            K::Closed => WeftError::Closed(message),
            K::Storage => WeftError::Storage(message),
            // The kind is non-exhaustive; a new one still arrives with its
            // message rather than being lost.
            _ => WeftError::Internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_message_and_kind() {
        let e = WeftError::from(weft_core::Error::UnknownSpace("team".into()));
        assert!(matches!(e, WeftError::NotFound(_)), "{e:?}");
        assert!(e.to_string().contains("unknown space \"team\""), "{e}");
        let e = WeftError::from(weft_core::Error::Forbidden("needs admin".into()));
        assert!(matches!(e, WeftError::Forbidden(ref m) if m == "not allowed: needs admin"));
        let e = WeftError::from(weft_core::Error::Closed);
        assert!(matches!(e, WeftError::Closed(_)));
        let e = WeftError::from(weft_core::Error::Refused {
            space: "team".into(),
            reason: "used\x1b[2J".into(),
        });
        assert!(
            matches!(e, WeftError::Refused(ref m) if !m.contains('\x1b')),
            "{e:?}"
        );
    }
}
