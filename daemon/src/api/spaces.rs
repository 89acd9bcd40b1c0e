//! Spaces: create, list, invite, join, revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::input::{JsonObject, bad, space_name, space_ref, untrimmed};
use super::{AppState, Failure};
use crate::model::{
    ApiError, CreateSpace, Invite, InviteRequest, JoinRequest, Joined, MemberPath, Space,
    SpacePath, SpaceRef,
};
use crate::ops;

#[utoipa::path(
    get, path = "/v1/spaces", tag = "spaces", operation_id = "list_spaces",
    responses(
        (status = 200, description = "Spaces this device is in", body = Vec<Space>),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<Space>>, Failure> {
    Ok(Json(ops::space_list(&s.node).await?))
}

#[utoipa::path(
    post, path = "/v1/spaces", tag = "spaces", operation_id = "create_space",
    request_body = CreateSpace,
    responses(
        (status = 201, description = "Created, with this device as admin", body = SpaceRef),
        (status = 400, description = "Not a JSON object, or an invalid or reserved name", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn create(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<CreateSpace>,
) -> Result<(StatusCode, Json<SpaceRef>), Failure> {
    space_name(&req.name)?;
    Ok((
        StatusCode::CREATED,
        Json(ops::space_create(&s.node, &req.name).await?),
    ))
}

#[utoipa::path(
    post, path = "/v1/spaces/{space}/invites", tag = "spaces", operation_id = "invite",
    params(SpacePath),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "An invite token", body = Invite),
        (status = 400, description = "Not a JSON object, or an invalid role, duration, node id or space", body = ApiError),
        (status = 403, description = "This device is not an admin of the space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn invite(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
    JsonObject(req): JsonObject<InviteRequest>,
) -> Result<(StatusCode, Json<Invite>), Failure> {
    space_ref(&space)?;
    // The schema states these without surrounding spaces; the parsers
    // would trim them, so they are refused here to match.
    if let Some(e) = &req.expires {
        untrimmed("expires", e)?;
    }
    if let Some(n) = &req.node {
        untrimmed("node", n)?;
    }
    Ok((
        StatusCode::CREATED,
        Json(ops::space_invite(&s.node, Some(&space), &req).await?),
    ))
}

/// Longest invite token read (the schema's `maxLength`); real ones are a
/// few hundred characters.
const MAX_TOKEN_CHARS: usize = 65_536;

#[utoipa::path(
    post, path = "/v1/join", tag = "spaces", operation_id = "join_space",
    description = "Joins with an invite token and dials the inviter. Unless `wait` is false, \
                   answers once the inviter admits this device (`state`: its role) or refuses it \
                   (409), or after `timeout_secs` with `state: \"pending\"`: the space stays \
                   joined and is admitted when the inviter is reachable.",
    request_body = JoinRequest,
    responses(
        (status = 200, description = "Joined: admitted with a role, or still pending", body = Joined),
        (status = 400, description = "Not a JSON object; a damaged, expired or foreign token; or an unusable timeout", body = ApiError),
        (status = 409, description = "Refused by the inviter (code `refused`; the invite was already used or expired, or the inviter was revoked); the message has the reason", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn join(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<JoinRequest>,
) -> Result<Json<Joined>, Failure> {
    if req.token.is_empty() || req.token.chars().count() > MAX_TOKEN_CHARS {
        return Err(bad(format!(
            "token must be 1 to {MAX_TOKEN_CHARS} characters; paste the whole `weft-invite-...` token"
        )));
    }
    // The timeout is checked before joining, so a bad one changes nothing.
    let wait = match req.wait.unwrap_or(true) {
        true => Some(ops::join_wait(
            req.timeout_secs.unwrap_or(s.join_timeout.as_secs_f64()),
        )?),
        false => None,
    };
    let id = ops::space_join(&s.node, &req.token).await?;
    let state = match wait {
        Some(limit) => {
            let mut stop = s.shutdown.clone();
            tokio::select! {
                state = s.node.wait_admission(&id, limit) => state?,
                // A stopping daemon answers with the state so far rather
                // than holding its shutdown for the rest of the wait.
                () = async move {
                    if stop.wait_for(|stopping| *stopping).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => s.node.space_state(&id).await?,
            }
        }
        None => s.node.space_state(&id).await?,
    };
    Ok(Json(ops::joined(id, state)?))
}

#[utoipa::path(
    delete, path = "/v1/spaces/{space}/members/{node_id}", tag = "spaces", operation_id = "revoke",
    params(MemberPath),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Invalid node id or space", body = ApiError),
        (status = 403, description = "This device is not an admin of the space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn revoke(
    State(s): State<AppState>,
    Path(MemberPath { space, node_id }): Path<MemberPath>,
) -> Result<StatusCode, Failure> {
    space_ref(&space)?;
    untrimmed("node id", &node_id)?;
    ops::space_revoke(&s.node, Some(&space), &node_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
