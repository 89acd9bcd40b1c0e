//! Errors as the API reports them: a status code and `{error, message}`,
//! the code being the [`ErrorKind`]'s, which the CLI reads back.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use weft_core::{Error, ErrorKind};

use crate::model::ApiError;

/// A failed request.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: ApiError,
    /// A replica failure for the daemon's log (see [`ReplicaFailed`]).
    failed: Option<String>,
}

/// A response's replica failure, for the daemon's router to log. The
/// handler does not log it itself: in process (the CLI without a daemon)
/// the message is the command's error, printed once.
#[derive(Clone, Debug)]
pub struct ReplicaFailed(pub String);

impl Failure {
    /// A failure of this kind, with the kind's status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::with_status(status(kind), kind, message)
    }

    /// A failure answered with a status other than the kind's (axum's own
    /// rejections keep theirs, such as 405 and 413).
    pub fn with_status(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error: kind.code().to_owned(),
                message: message.into(),
                index: None,
            },
            failed: None,
        }
    }
}

/// The HTTP status of each kind: the one table of it. Bad input from the
/// caller is always a 4xx; only a failing replica is a 5xx.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::InvalidInvite => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Locked | ErrorKind::Refused => StatusCode::CONFLICT,
        ErrorKind::Network => StatusCode::BAD_GATEWAY,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Closed => StatusCode::SERVICE_UNAVAILABLE,
        // Storage, Internal, and kinds added later (the enum is
        // non-exhaustive) until they get a row.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The kind of a status axum produced on its own (a rejected path, query
/// or body).
pub fn kind_for_status(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        s if s.is_client_error() => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let mut failure = Failure::new(e.kind(), e.to_string());
        failure.body.index = e.batch_index();
        if failure.status.is_server_error() {
            failure.failed = Some(failure.body.message.clone());
        }
        failure
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body)).into_response();
        if unauthorized {
            // RFC 6750: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        if let Some(failed) = self.failed {
            response.extensions_mut().insert(ReplicaFailed(failed));
        }
        response
    }
}

/// The daemon's log of replica failures its answers carry.
pub async fn log_failures(response: Response) -> Response {
    if let Some(ReplicaFailed(error)) = response.extensions().get() {
        tracing::error!(%error, "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_mistakes_are_4xx_and_replica_failures_5xx() {
        for kind in ErrorKind::ALL {
            assert_eq!(
                status(kind).is_client_error(),
                kind.is_caller_error(),
                "{kind}"
            );
        }
        let documented = [
            ("invalid_input", 400),
            ("invalid_invite", 400),
            ("unauthorized", 401),
            ("forbidden", 403),
            ("not_found", 404),
            ("conflict", 409),
            ("refused", 409),
            ("precondition_failed", 412),
            ("network", 502),
            ("unavailable", 503),
            ("timeout", 504),
            ("internal", 500),
        ];
        for (code, expected) in documented {
            let kind = ErrorKind::from_code(code).expect("a known code");
            assert_eq!(status(kind).as_u16(), expected, "{code}");
        }
    }

    #[test]
    fn a_bad_invite_is_its_own_400() {
        let damaged = weft_core::Invitation::from_token("weft-invite-garbage");
        let e = Failure::from(damaged.expect_err("a damaged token"));
        assert_eq!(
            (e.status.as_u16(), e.body.error.as_str()),
            (400, "invalid_invite")
        );
    }
}
