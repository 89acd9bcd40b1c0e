//! Conditional writes: a condition on a document's current state that the
//! writer actor checks right before applying the write, so nothing can
//! change the document between the check and the write (HTTP `If-Match`,
//! `If-None-Match: *`, or any caller doing optimistic concurrency).

use automerge::ChangeHash;

use crate::error::{Error, Result};
use crate::key::DocKey;

/// What a write requires of its document's current state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing: the write applies to whatever is there.
    #[default]
    Any,
    /// The document exists (and is not deleted).
    Exists,
    /// The document does not exist (never written, or deleted): a
    /// create-only put.
    Absent,
    /// The document exists and its heads are exactly these (hex change
    /// hashes, in any order): nobody changed it since they were read.
    Heads(Vec<String>),
}

/// What one write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The document's heads after the write (hex, sorted).
    pub heads: Vec<String>,
    /// True when a put made a document that did not exist (never written,
    /// or deleted); false for every replacement, patch and delete.
    pub created: bool,
}

impl Precondition {
    /// Checks the condition against a document that `exists` with `heads`.
    pub(crate) fn check(&self, key: &DocKey, exists: bool, heads: &[ChangeHash]) -> Result<()> {
        let failed = |reason: String| {
            Err(Error::PreconditionFailed {
                key: key.to_string(),
                reason,
            })
        };
        match self {
            Precondition::Any => Ok(()),
            Precondition::Exists if exists => Ok(()),
            Precondition::Exists => failed("it does not exist".into()),
            Precondition::Absent if !exists => Ok(()),
            Precondition::Absent => failed("it already exists".into()),
            Precondition::Heads(_) if !exists => failed("it does not exist".into()),
            Precondition::Heads(expected) => {
                let current = sorted_hex(heads);
                let mut expected: Vec<String> =
                    expected.iter().map(|h| h.to_ascii_lowercase()).collect();
                expected.sort();
                expected.dedup();
                if current == expected {
                    Ok(())
                } else {
                    failed(format!(
                        "it changed: its heads are now {}; read it again and retry",
                        current.join(",")
                    ))
                }
            }
        }
    }
}

/// Heads as hex strings, sorted (the order the store keeps them in).
pub(crate) fn sorted_hex(heads: &[ChangeHash]) -> Vec<String> {
    let mut hex: Vec<String> = heads.iter().map(ToString::to_string).collect();
    hex.sort();
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DocKey {
        DocKey::new("s", "c", "d").unwrap()
    }

    #[test]
    fn conditions_hold_or_fail_with_their_kind() {
        let h1 = ChangeHash([1; 32]);
        let h2 = ChangeHash([2; 32]);
        let heads = [h2, h1];
        let both = vec![h1.to_string(), h2.to_string().to_uppercase()];
        let ok = |p: Precondition, exists| p.check(&key(), exists, &heads).is_ok();
        assert!(ok(Precondition::Any, false));
        assert!(ok(Precondition::Exists, true));
        assert!(!ok(Precondition::Exists, false));
        assert!(ok(Precondition::Absent, false));
        assert!(!ok(Precondition::Absent, true));
        assert!(ok(Precondition::Heads(both.clone()), true));
        assert!(!ok(Precondition::Heads(both), false));
        assert!(!ok(Precondition::Heads(vec![h1.to_string()]), true));
        assert!(!ok(Precondition::Heads(vec!["zz".into()]), true));
        let e = Precondition::Absent
            .check(&key(), true, &heads)
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::PreconditionFailed);
        assert!(e.to_string().contains("already exists"), "{e}");
    }
}
