//! Bulk endpoints: a batch of writes in one transaction, and a space's
//! documents as one NDJSON stream.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use weft_core::{DocKey, Node};

use super::input::{JsonObject, space_ref};
use super::{AppState, Failure};
use crate::batch::{BatchRequest, Batched, Record};
use crate::model::{ApiError, SpacePath};
use crate::ops::space_id;

/// Batches being read, parsed or applied.
static BATCHES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(crate::batch::MAX_BATCHES_PARSING);

/// Lets a batch request in once fewer than `MAX_BATCHES_PARSING` are in
/// hand: each may hold a parsed body many times its size.
pub async fn in_turn(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // The semaphore is never closed, so acquiring cannot fail.
    let _turn = BATCHES.acquire().await;
    next.run(req).await
}

/// Documents read per page while exporting.
const EXPORT_PAGE: u32 = 1000;

#[utoipa::path(
    post, path = "/v1/spaces/{space}/batch", tag = "documents",
    operation_id = "batch",
    description = "Applies many put, patch and delete operations in one transaction: all are stored, or none is. A failure answers the failing operation's status with its position in `index`. At most 10,000 operations and 8 MB per request; at most two batches are read at once, others wait their turn.",
    params(SpacePath),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Every operation stored", body = Batched),
        (status = 400, description = "An invalid operation (named by `index`), or too many", body = ApiError),
        (status = 401, description = "No or wrong token", body = ApiError),
        (status = 403, description = "This device may not write in the space", body = ApiError),
        (status = 404, description = "Unknown space, or a patched document that does not exist (named by `index`)", body = ApiError),
        (status = 413, description = "The body is over 8 MB", body = ApiError),
    )
)]
pub async fn batch(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
    JsonObject(req): JsonObject<BatchRequest>,
) -> Result<Json<Batched>, Failure> {
    space_ref(&space)?;
    Ok(Json(
        crate::batch::run(&s.node, Some(&space), req.ops).await?,
    ))
}

/// Which documents an export holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Only this collection [default: every collection of the space].
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    pub collection: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/export", tag = "documents",
    operation_id = "export",
    description = "Streams the space's live documents as NDJSON, one `{\"collection\", \"id\", \"doc\"}` object per line, by collection then id: the format `POST …/batch` (and `weft import`) takes back. Documents are read page by page, so a document written during the export may or may not appear.",
    params(SpacePath, ExportParams),
    responses(
        (status = 200, description = "One document per line", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "Invalid collection name", body = ApiError),
        (status = 401, description = "No or wrong token", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
    )
)]
pub async fn export(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
    Query(p): Query<ExportParams>,
) -> Result<Response, Failure> {
    space_ref(&space)?;
    let space = space_id(&s.node, Some(&space)).await?;
    let collections = match p.collection {
        Some(c) => {
            DocKey::new(&space, &c, "x")?;
            vec![c]
        }
        None => s.node.collections(space.as_str()).await?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let node = s.node.clone();
    tokio::spawn(async move {
        // A failure mid-stream cannot change the status any more: the body
        // ends with an error instead, so the client sees a cut-off answer
        // rather than an export that looks complete.
        if let Err(e) = stream_export(&node, &space, collections, &tx).await {
            if tx.is_closed() {
                return; // the reader left first; nobody to tell
            }
            tracing::warn!("export of space {space} stopped: {e}");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn stream_export(
    node: &Node,
    space: &str,
    collections: Vec<String>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), weft_core::Error> {
    for collection in collections {
        let mut after: Option<String> = None;
        loop {
            let page = node
                .list_ids(space, &collection, after.as_deref(), EXPORT_PAGE)
                .await?;
            let mut chunk = Vec::new();
            for id in &page.items {
                let key = DocKey::new(space, &collection, id)?;
                // Deleted since it was listed: it is simply not exported.
                let Some(serde_json::Value::Object(doc)) = node.get(&key).await? else {
                    continue;
                };
                let record = Record {
                    collection: collection.clone(),
                    id: id.clone(),
                    doc,
                };
                serde_json::to_writer(&mut chunk, &record).expect("JSON values serialize");
                chunk.push(b'\n');
            }
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return Ok(()); // the reader went away
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}

/// A stream over a channel's messages.
pub(super) fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
