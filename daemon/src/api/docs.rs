//! Documents: read, write, list, history and read-only SQL.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value};

use super::{AppState, Failure};
use crate::maintenance::{self, AtParams};
use crate::model::{ApiError, AutomergeUrl, Change, ListParams, Listed, SqlRequest, Written};
use crate::ops;

type DocPath = Path<(String, String, String)>;

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "get_doc",
    params(
        ("space" = String, Path, description = "Space id, name, or `default`"),
        ("collection" = String, Path, description = "Collection name"),
        ("id" = String, Path, description = "Document id (percent-encoded)"),
        AtParams,
    ),
    responses(
        (status = 200, description = "The document's JSON (with `at`: as it was at those heads)", body = Object),
        (status = 404, description = "No such document (or deleted, or deleted at `at`), or unknown space", body = ApiError),
        (status = 400, description = "Invalid name or id, or `at` heads that are malformed or not in the document", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn get_doc(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
    Query(p): Query<AtParams>,
) -> Result<Json<Value>, Failure> {
    if let Some(at) = &p.at {
        return Ok(Json(
            maintenance::get_at(&s.node, Some(&space), &collection, &id, at).await?,
        ));
    }
    Ok(Json(
        ops::get(&s.node, Some(&space), &collection, &id).await?,
    ))
}

#[utoipa::path(
    put, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "put_doc",
    description = "Creates or replaces the document with the body (a JSON object); the change is a field-level diff, so concurrent edits to other fields merge.",
    params(("space" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "The new document", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = Written),
        (status = 400, description = "Not a JSON object, too large, too deep, or a reserved field", body = ApiError),
        (status = 403, description = "This device may not write in the space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn put_doc(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
    Json(body): Json<Value>,
) -> Result<Json<Written>, Failure> {
    Ok(Json(
        ops::put(&s.node, Some(&space), &collection, &id, body).await?,
    ))
}

#[utoipa::path(
    patch, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "patch_doc",
    description = "Applies an RFC 7396 JSON merge patch to an existing document.",
    params(("space" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "A JSON merge patch", content_type = "application/json"),
    responses(
        (status = 200, description = "Patched", body = Written),
        (status = 400, description = "Invalid patch", body = ApiError),
        (status = 403, body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn patch_doc(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
    Json(body): Json<Value>,
) -> Result<Json<Written>, Failure> {
    Ok(Json(
        ops::patch(&s.node, Some(&space), &collection, &id, body).await?,
    ))
}

#[utoipa::path(
    delete, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "delete_doc",
    description = "Deletes the document (a tombstone that syncs; delete wins over concurrent updates).",
    params(("space" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Deleted", body = Written),
        (status = 403, body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn delete_doc(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
) -> Result<Json<Written>, Failure> {
    Ok(Json(
        ops::delete(&s.node, Some(&space), &collection, &id).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs", tag = "documents",
    operation_id = "list_docs",
    params(("space" = String, Path), ("collection" = String, Path), ListParams),
    responses(
        (status = 200, description = "Matching documents", body = Vec<Listed>),
        (status = 400, description = "Invalid condition, field or limit", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn list_docs(
    State(s): State<AppState>,
    Path((space, collection)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<Listed>>, Failure> {
    let params = list_params(pairs)?;
    Ok(Json(
        ops::list(&s.node, Some(&space), &collection, &params).await?,
    ))
}

/// Query strings may repeat `where`, which serde's query decoding cannot
/// put in a struct, so the pairs are folded by hand.
fn list_params(pairs: Vec<(String, String)>) -> Result<ListParams, Failure> {
    let bad = |m: String| Failure::new(weft_core::ErrorKind::InvalidInput, m);
    let mut p = ListParams::default();
    for (k, v) in pairs {
        match k.as_str() {
            "where" => p.filters.push(v),
            "order" => p.order = Some(v),
            "desc" => {
                p.desc = v
                    .parse()
                    .map_err(|_| bad(format!("desc must be true or false, got {v:?}")))?
            }
            "limit" => {
                p.limit = Some(v.parse().map_err(|_| {
                    bad(format!(
                        "limit must be a whole number below 2^32, got {v:?}"
                    ))
                })?)
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter {other:?}; use where, order, desc, limit"
                )));
            }
        }
    }
    Ok(p)
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}/history", tag = "documents",
    operation_id = "history",
    params(("space" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Changes, oldest first", body = Vec<Change>),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn history(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
) -> Result<Json<Vec<Change>>, Failure> {
    Ok(Json(
        ops::history(&s.node, Some(&space), &collection, &id).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}/url", tag = "documents",
    operation_id = "automerge_url",
    description = "The document's automerge-repo URL, for apps syncing through `/v1/automerge`.",
    params(("space" = String, Path), ("collection" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Its URL", body = AutomergeUrl),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn url(
    State(s): State<AppState>,
    Path((space, collection, id)): DocPath,
) -> Result<Json<AutomergeUrl>, Failure> {
    Ok(Json(
        ops::url(&s.node, Some(&space), &collection, &id).await?,
    ))
}

#[utoipa::path(
    post, path = "/v1/sql", tag = "documents",
    operation_id = "sql",
    description = "Runs one read-only statement against the replica (the `documents` view: space, collection, id, json).",
    request_body = SqlRequest,
    responses(
        (status = 200, description = "Rows as objects", body = Vec<Object>),
        (status = 400, description = "Not a read-only statement, or it failed", body = ApiError),
        (status = 401, body = ApiError),
    )
)]
pub async fn sql(
    State(s): State<AppState>,
    Json(req): Json<SqlRequest>,
) -> Result<Json<Vec<Map<String, Value>>>, Failure> {
    Ok(Json(ops::sql(&s.node, &req.sql).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_fold_repeats_and_refuse_unknowns() {
        let p = list_params(vec![
            ("where".into(), "a=1".into()),
            ("where".into(), "b>2".into()),
            ("order".into(), "a".into()),
            ("desc".into(), "true".into()),
            ("limit".into(), "5".into()),
        ])
        .unwrap();
        assert_eq!(p.filters, ["a=1", "b>2"]);
        assert_eq!(
            (p.order.as_deref(), p.desc, p.limit),
            (Some("a"), true, Some(5))
        );
        assert_eq!(
            list_params(vec![("limit".into(), "-1".into())])
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            list_params(vec![("sort".into(), "a".into())])
                .unwrap_err()
                .status,
            400
        );
    }
}
