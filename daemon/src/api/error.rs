//! Errors as the API reports them: a status code and `{error, message}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use weft_core::Error;

use crate::model::ApiError;

/// A failed request.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error: code.to_owned(),
                message: message.into(),
            },
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

/// The stable error code and HTTP status of a core error. Bad input from
/// the caller is always a 4xx; only a failing replica is a 5xx.
pub fn classify(e: &Error) -> (&'static str, StatusCode) {
    match e {
        Error::InvalidKey(_)
        | Error::Document(_)
        | Error::InvalidQuery(_)
        | Error::Sql(_)
        | Error::UnknownHeads(_)
        | Error::Config(_)
        | Error::InvalidInput(_)
        | Error::Auth(_) => ("invalid_input", StatusCode::BAD_REQUEST),
        Error::NotFound(_) | Error::UnknownSpace(_) => ("not_found", StatusCode::NOT_FOUND),
        Error::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
        Error::Locked { .. } => ("conflict", StatusCode::CONFLICT),
        Error::Timeout(_) => ("timeout", StatusCode::GATEWAY_TIMEOUT),
        Error::Network(_) => ("network", StatusCode::BAD_GATEWAY),
        Error::Closed => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        _ => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The code for a status axum produced on its own (a rejected path, query
/// or body).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_client_error() => "invalid_input",
        _ => "internal",
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (code, status) = classify(&e);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        Failure::new(status, code, e.to_string())
    }
}

impl From<crate::ops::JoinError> for Failure {
    fn from(e: crate::ops::JoinError) -> Self {
        match e {
            crate::ops::JoinError::Failed(e) => e.into(),
            refused @ crate::ops::JoinError::Refused { .. } => Failure::new(
                StatusCode::CONFLICT,
                crate::ops::REFUSED,
                refused.to_string(),
            ),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_mistakes_are_4xx() {
        for e in [
            Error::InvalidKey("x".into()),
            Error::InvalidQuery("x".into()),
            Error::Sql("x".into()),
            Error::NotFound("x".into()),
            Error::UnknownSpace("x".into()),
            Error::Forbidden("x".into()),
            Error::Config("x".into()),
        ] {
            assert!(classify(&e).1.is_client_error(), "{e}");
        }
        assert_eq!(classify(&Error::Closed).1, StatusCode::SERVICE_UNAVAILABLE);
    }
}
