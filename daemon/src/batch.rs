//! Many writes in one transaction, and the one-document-per-line format
//! (`{"collection", "id", "doc"}`) that `weft import` reads and `weft
//! export` writes. The API's batch endpoint and the CLI share these types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_core::{DocKey, Error, Node, Write};

use crate::model::Written;
use crate::ops::space_id;

/// Bytes a batch request body may hold (the API's other bodies stop at 2 MB).
/// Parsed JSON can take many times its text (an array of 8M zeros is
/// hundreds of MB), so batches are also parsed at most
/// [`MAX_BATCHES_PARSING`] at a time.
pub const MAX_BATCH_BODY: usize = 8 << 20;

/// Batch requests read and parsed at once; more wait their turn (the
/// writer applies one transaction at a time anyway).
pub const MAX_BATCHES_PARSING: usize = 2;

/// Operations `weft import` sends per batch: large enough that a request
/// costs little per document, small enough that a bad line loses one batch.
pub const IMPORT_BATCH_OPS: usize = 1000;

/// Bytes of documents `weft import` sends per batch at most (a line may
/// take it past this by one document, which still fits the body limit).
pub const IMPORT_BATCH_BYTES: usize = 4 << 20;

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum BatchOp {
    /// Create or replace the document with `doc`.
    Put {
        /// Collection name: 1 to 128 of `A-Z a-z 0-9 _ - .`.
        #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
        collection: String,
        /// Document id: 1 to 256 characters (at most 256 bytes), no control characters.
        #[schema(
            min_length = 1,
            max_length = 256,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )]
        id: String,
        /// The new document (a JSON object).
        #[schema(value_type = Object)]
        doc: Map<String, Value>,
    },
    /// Apply an RFC 7396 merge patch to an existing document.
    Patch {
        /// Collection name.
        #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
        collection: String,
        /// Document id.
        #[schema(
            min_length = 1,
            max_length = 256,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )]
        id: String,
        /// The merge patch (a JSON object).
        #[schema(value_type = Object)]
        doc: Map<String, Value>,
    },
    /// Delete the document.
    Delete {
        /// Collection name.
        #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
        collection: String,
        /// Document id.
        #[schema(
            min_length = 1,
            max_length = 256,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )]
        id: String,
    },
}

impl BatchOp {
    fn key(&self) -> (&str, &str) {
        match self {
            BatchOp::Put { collection, id, .. }
            | BatchOp::Patch { collection, id, .. }
            | BatchOp::Delete { collection, id } => (collection, id),
        }
    }
}

/// A batch: every operation is stored, or none is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The operations, applied in order (at most 10,000).
    #[schema(max_items = 10000)]
    pub ops: Vec<BatchOp>,
}

/// What a stored batch did: each operation's heads, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Batched {
    /// One result per operation.
    pub results: Vec<Written>,
}

/// One line of `weft export` and `weft import`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub collection: String,
    pub id: String,
    pub doc: Map<String, Value>,
}

/// Runs a batch in `space`. A failure names the operation
/// (`Error::batch_index`) and stores nothing.
pub async fn run(node: &Node, space: Option<&str>, ops: Vec<BatchOp>) -> Result<Batched, Error> {
    if ops.len() > weft_core::MAX_BATCH {
        return Err(Error::InvalidInput(format!(
            "a batch holds at most {} operations, not {}; split it",
            weft_core::MAX_BATCH,
            ops.len()
        )));
    }
    let space = space_id(node, space).await?;
    let mut writes = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let (collection, id) = op.key();
        let key = DocKey::new(&space, collection, id).map_err(|e| Error::Batch {
            index: i,
            key: format!("{collection}/{id}"),
            source: Box::new(e),
        })?;
        writes.push(match op {
            BatchOp::Put { doc, .. } => Write::Put(key, Value::Object(doc)),
            BatchOp::Patch { doc, .. } => Write::Patch(key, Value::Object(doc)),
            BatchOp::Delete { .. } => Write::Delete(key),
        });
    }
    let heads = node.batch(writes).await?;
    Ok(Batched {
        results: heads.into_iter().map(|heads| Written { heads }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_read_their_documented_shape_and_refuse_others() {
        let ops: BatchRequest = serde_json::from_str(
            r#"{"ops": [
                {"op": "put", "collection": "n", "id": "a", "doc": {"x": 1}},
                {"op": "patch", "collection": "n", "id": "a", "doc": {"x": null}},
                {"op": "delete", "collection": "n", "id": "a"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(ops.ops.len(), 3);
        assert!(matches!(ops.ops[2], BatchOp::Delete { .. }));
        for bad in [
            r#"{"ops": [{"op": "put", "collection": "n", "id": "a", "doc": [1]}]}"#,
            r#"{"ops": [{"op": "upsert", "collection": "n", "id": "a"}]}"#,
            r#"{"ops": [{"op": "delete", "collection": "n", "id": "a", "typo": 1}]}"#,
            r#"{"ops": [{"op": "put", "collection": "n", "id": "a"}]}"#,
            r#"{"ops": {}}"#,
            r#"[null, null]"#,
        ] {
            assert!(serde_json::from_str::<BatchRequest>(bad).is_err(), "{bad}");
        }
    }
}
