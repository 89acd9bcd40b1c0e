//! Conditional writes and versioned reads: the facade's side of
//! [`Precondition`] (checked by the writer actor, atomically with the
//! write) and of reading a document together with its heads, which is what
//! a caller compares on its next write.

use serde_json::Value;

use super::Node;
use super::docs::{Precondition, Write, WriteOutcome};
use super::writer::Command;
use crate::doc::as_object;
use crate::error::{Error, Result};
use crate::key::DocKey;

/// A document and the heads of the version read.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// Its JSON.
    pub json: Value,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
}

impl Node {
    /// One write, applied only if the document's current state meets
    /// `precondition` ([`Error::PreconditionFailed`] otherwise); says
    /// whether a put created the document.
    pub async fn write_if(&self, write: Write, precondition: Precondition) -> Result<WriteOutcome> {
        let mut outcomes = self.batch_if(vec![(write, precondition)]).await?;
        Ok(outcomes.remove(0))
    }

    /// Many writes, each with its precondition, in one transaction: all
    /// are stored or none (a failed precondition fails the batch). Each
    /// condition sees the document as the writes before it in the batch
    /// left it.
    pub async fn batch_if(&self, writes: Vec<(Write, Precondition)>) -> Result<Vec<WriteOutcome>> {
        for (w, _) in &writes {
            if w.key()
                .collection()
                .starts_with(crate::auth::SYSTEM_COLLECTION)
            {
                return Err(Error::InvalidKey(format!(
                    "collection {:?} is reserved for Weft's own documents",
                    w.key().collection()
                )));
            }
            if let Write::Put(_, v) | Write::Patch(_, v) = w {
                as_object(v)?;
            }
        }
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|reply| Command::Write { writes, reply }).await
    }

    /// The document's JSON and heads, read together from the store (one
    /// row, so they always belong to the same version); `None` if absent
    /// or deleted.
    pub async fn get_versioned(&self, key: &DocKey) -> Result<Option<Versioned>> {
        let Some((text, heads)) = self.inner.reader.get_with_heads(key)? else {
            return Ok(None);
        };
        let json = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            key: key.to_string(),
            reason: format!("stored JSON does not parse: {e}"),
        })?;
        let heads = heads
            .chunks_exact(32)
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        Ok(Some(Versioned { json, heads }))
    }
}
