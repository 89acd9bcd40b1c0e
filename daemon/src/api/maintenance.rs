//! Backups, the integrity check, indexes, space members and leaving.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::input::{JsonObject, space_ref};
use super::{AppState, Failure};
use crate::maintenance::{self, Check, IndexRequest, Indexed, Left, Member};
use crate::model::{ApiError, SpacePath};

#[utoipa::path(
    get, path = "/v1/backup", tag = "node", operation_id = "backup",
    description = "Streams a consistent snapshot of the replica, with this device's key, taken \
                   while writes go on: a SQLite file that `weft restore` puts back (no daemon \
                   running). The daemon writes no file anywhere but a private temp file in its \
                   own data dir, gone once the snapshot is read; the client saves the stream \
                   (`weft backup FILE` does). Treat it as secret as the data dir.",
    responses(
        (status = 200, description = "The backup file", content_type = "application/octet-stream", body = Vec<u8>,
         headers(
            ("Content-Length" = u64, description = "Its size in bytes"),
            ("X-Weft-Node-Id" = String, description = "The device whose key it carries"),
            ("X-Weft-Documents" = u64, description = "Live documents in it"),
            ("X-Weft-Spaces" = u64, description = "Spaces in it"),
         )),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn backup(State(s): State<AppState>) -> Result<Response, Failure> {
    let (info, file, tmp) = maintenance::snapshot(&s.node).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        loop {
            let mut chunk = vec![0u8; 64 << 10];
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        break; // the reader went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        drop(file);
        // Already gone on unix; elsewhere the file could not go while open.
        let _ = std::fs::remove_file(&tmp);
    });
    let body = Body::from_stream(super::batch::tokio_stream_from(rx));
    let name = format!("attachment; filename=\"weft-{}.backup\"", info.node_id);
    let header = |v: String| HeaderValue::from_str(&v).expect("ASCII header value");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, header(info.bytes.to_string()));
    headers.insert(header::CONTENT_DISPOSITION, header(name));
    headers.insert(
        maintenance::NODE_ID_HEADER,
        header(info.node_id.to_string()),
    );
    headers.insert(
        maintenance::DOCUMENTS_HEADER,
        header(info.documents.to_string()),
    );
    headers.insert(maintenance::SPACES_HEADER, header(info.spaces.to_string()));
    Ok(response)
}

#[utoipa::path(
    get, path = "/v1/check", tag = "node", operation_id = "check",
    description = "Runs SQLite's integrity check on the replica.",
    responses(
        (status = 200, description = "`ok`, or the problems found (damage is a finding, not an error)", body = Check),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn check(State(s): State<AppState>) -> Result<Json<Check>, Failure> {
    Ok(Json(maintenance::check(&s.node).await?))
}

#[utoipa::path(
    post, path = "/v1/indexes", tag = "documents", operation_id = "create_index",
    description = "Indexes a JSON field (in every space and collection), so listings filtering or \
                   sorting on it use an index. Idempotent.",
    request_body = IndexRequest,
    responses(
        (status = 200, description = "Indexed (or already was)", body = Indexed),
        (status = 400, description = "Not a usable field path", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn create_index(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<IndexRequest>,
) -> Result<Json<Indexed>, Failure> {
    Ok(Json(maintenance::create_index(&s.node, &req.field).await?))
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/members", tag = "spaces", operation_id = "members",
    params(SpacePath),
    responses(
        (status = 200, description = "Members by the membership log, in node id order", body = Vec<Member>),
        (status = 400, description = "An invalid space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn members(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
) -> Result<Json<Vec<Member>>, Failure> {
    space_ref(&space)?;
    Ok(Json(maintenance::members(&s.node, Some(&space)).await?))
}

#[utoipa::path(
    delete, path = "/v1/spaces/{space}", tag = "spaces", operation_id = "leave_space",
    description = "Leaves the space: this device stops syncing it and deletes its local copy \
                   (documents, membership log, sync states) in one transaction. Peers keep \
                   theirs; an admin may still revoke this device; joining again needs a new \
                   invite. Peers in session for the space are disconnected once. No confirmation \
                   is asked.",
    params(SpacePath),
    responses(
        (status = 200, description = "Left", body = Left),
        (status = 400, description = "An invalid space", body = ApiError),
        (status = 403, description = "The default (personal) space, which cannot be left", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn leave(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
) -> Result<Json<Left>, Failure> {
    space_ref(&space)?;
    Ok(Json(maintenance::leave(&s.node, Some(&space)).await?))
}
