//! Request input checked the way the OpenAPI document states it: bodies
//! that must be JSON objects, and the patterns and bounds of path and
//! query values. Each rule here is the one its schema attribute (in
//! `crate::model`) states, so a generated client and the server agree on
//! what is valid.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weft_core::ErrorKind;

use super::Failure;

/// A JSON request body that must be an object, decoded into `T`. serde
/// would also read a struct from an array (`[null, null]`), which the
/// schema (`type: object`) does not allow.
pub struct JsonObject<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonObject<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        let Json(value) = Json::<Value>::from_request(req, state)
            .await
            .map_err(rejected)?;
        if !value.is_object() {
            return Err(bad(format!(
                "the body must be a JSON object, not {}",
                kind_of(&value)
            )));
        }
        serde_json::from_value(value)
            .map(JsonObject)
            .map_err(|e| bad(format!("the body does not fit: {e}")))
    }
}

/// axum's JSON rejection as the API's error: a body over the limit keeps
/// its 413; every other is a 400 (as documented).
pub fn rejected(e: JsonRejection) -> Failure {
    let status = match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    Failure::with_status(status, ErrorKind::InvalidInput, e.body_text())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn bad(message: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::InvalidInput, message)
}

/// Longest space reference (name or id) in characters: names are at most
/// 128 bytes, so never more characters.
pub const MAX_SPACE_CHARS: usize = 128;

/// A control character as JSON Schema patterns spell them
/// (`\u0000-\u001f\u007f-\u009f`): Rust's `char::is_control`.
fn control(c: char) -> bool {
    c.is_control()
}

/// Whitespace as a JSON Schema (ECMAScript) pattern's `\s` means it.
fn ecma_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// A space as a path or query names it: 1 to 128 characters, no control
/// characters (`SPACE_REF_PATTERN`). Which space it is, if any, is the
/// node's to say (404).
pub fn space_ref(s: &str) -> Result<(), Failure> {
    let n = s.chars().count();
    if n == 0 || n > MAX_SPACE_CHARS || s.chars().any(control) {
        return Err(bad(format!(
            "space {s:?} must be an id, a name or `default`: 1 to {MAX_SPACE_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// A new space's name (`SPACE_NAME_PATTERN`): a space reference that is
/// not blank. The core checks the rest (128 bytes, `default` reserved).
pub fn space_name(s: &str) -> Result<(), Failure> {
    space_ref(s)?;
    if s.chars().all(ecma_space) {
        return Err(bad("a space name must not be blank"));
    }
    Ok(())
}

/// A value the schema states without surrounding whitespace (durations,
/// node ids): refused rather than trimmed, so the server takes exactly
/// what the document allows.
pub fn untrimmed(what: &str, s: &str) -> Result<(), Failure> {
    if s.trim() != s || s.is_empty() {
        return Err(bad(format!(
            "{what} {s:?} must not be empty or have spaces around it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names_and_references() {
        assert!(space_ref("team").is_ok());
        assert!(space_ref(&"é".repeat(128)).is_ok());
        assert!(space_ref(&"x".repeat(129)).is_err());
        assert!(space_ref("").is_err());
        assert!(space_ref("a\u{85}b").is_err());
        assert!(space_name(" \u{feff}\u{3000}").is_err());
        assert!(space_name(" a ").is_ok());
        assert!(untrimmed("d", "7d").is_ok());
        assert!(untrimmed("d", " 7d").is_err());
    }
}
