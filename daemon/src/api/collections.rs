//! `GET /v1/spaces/{space}/collections`: the collections a space has
//! documents in, so a client can offer them without knowing them first
//! (the desktop app's Documents view, attached to a daemon).

use axum::Json;
use axum::extract::{Path, State};

use super::input::space_ref;
use super::{AppState, Failure};
use crate::model::{ApiError, SpacePath};

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections", tag = "documents", operation_id = "list_collections",
    description = "The names of the collections with at least one live document in the space, \
                   in name order.",
    params(SpacePath),
    responses(
        (status = 200, description = "Collection names, in name order", body = Vec<String>),
        (status = 400, description = "An invalid space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn collections(
    State(s): State<AppState>,
    Path(SpacePath { space }): Path<SpacePath>,
) -> Result<Json<Vec<String>>, Failure> {
    space_ref(&space)?;
    Ok(Json(s.node.collections(space.as_str()).await?))
}
