//! Conditional writes and versioned reads: the facade's side of
//! [`Precondition`] (checked by the writer actor, atomically with the
//! write) and of reading a document together with its heads, which is what
//! a caller compares on its next write.

use serde_json::Value;

use super::Node;
use super::docs::{Precondition, Write, WriteOutcome};
use super::writer::Command;
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
        match self.batch_if(vec![(write, precondition)]).await {
            Ok(mut outcomes) => Ok(outcomes.remove(0)),
            Err(e) => Err(e.single()),
        }
    }

    /// Many writes, each with its precondition, in one transaction: all
    /// are stored or none (a failed precondition fails the batch). Each
    /// condition sees the document as the writes before it in the batch
    /// left it.
    /// A failure is an [`Error::Batch`] naming the write; at most
    /// [`super::MAX_BATCH`] writes.
    pub async fn batch_if(&self, writes: Vec<(Write, Precondition)>) -> Result<Vec<WriteOutcome>> {
        if writes.len() > super::MAX_BATCH {
            return Err(Error::InvalidInput(format!(
                "a batch holds at most {} writes, not {}; split it",
                super::MAX_BATCH,
                writes.len()
            )));
        }
        for (i, (w, _)) in writes.iter().enumerate() {
            super::check_write(w).map_err(|e| e.in_batch(i, w.key()))?;
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
