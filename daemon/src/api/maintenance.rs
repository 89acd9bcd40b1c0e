//! Backups, the integrity check, indexes, space members and leaving.

use axum::Json;
use axum::extract::{Path, State};

use super::input::{JsonObject, space_ref};
use super::{AppState, Failure};
use crate::maintenance::{
    self, BackupDone, BackupRequest, Check, IndexRequest, Indexed, Left, Member,
};
use crate::model::{ApiError, SpacePath};

#[utoipa::path(
    post, path = "/v1/backup", tag = "node", operation_id = "backup",
    description = "Writes a consistent snapshot of the replica, with this device's key, to `path` \
                   while writes go on. The daemon writes the file, so `path` is absolute and on the \
                   daemon's machine; it is created mode 0600, whole or not at all. An existing file \
                   is replaced only with `force`. Restore it with `weft restore` (no daemon running).",
    request_body = BackupRequest,
    responses(
        (status = 200, description = "Written", body = BackupDone),
        (status = 400, description = "A relative or too long path, or a missing directory", body = ApiError),
        (status = 412, description = "The file exists and `force` is not set", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn backup(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<BackupRequest>,
) -> Result<Json<BackupDone>, Failure> {
    Ok(Json(maintenance::backup(&s.node, &req).await?))
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
