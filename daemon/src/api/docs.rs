//! Documents: read, write, list, history and read-only SQL.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::conditional::{etag, not_modified, precondition};
use super::input::{JsonObject, bad, space_ref};
use super::{AppState, Failure};
use crate::client::{list_url, seg};
use crate::maintenance::{self, AtParams};
use crate::model::{
    ApiError, AutomergeUrl, Change, CollectionPath, DocPath, ListParams, Listed, SqlRequest,
    Written,
};
use crate::ops;

/// The doc path's space, checked as the document states it.
fn doc_path(p: &DocPath) -> Result<(), Failure> {
    space_ref(&p.space)
}

/// A write's answer: its heads, with the new version's `ETag`.
fn written(status: StatusCode, w: Written) -> Response {
    let tag = etag(&w.heads);
    let mut response = (status, Json(w)).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "get_doc",
    params(
        DocPath,
        AtParams,
        ("If-None-Match" = Option<String>, Header, description = "`*` or `ETag`s the client holds: 304 without a body when the document is at one of them (not with `at`)", pattern = r#"^[ \t]*(\*|(W/)?"[\x21\x23-\x7e]*"([ \t]*,[ \t]*(W/)?"[\x21\x23-\x7e]*")*)?[ \t]*$"#),
    ),
    responses(
        (status = 200, description = "The document's JSON; with `at`, as it was at those heads (and no `ETag`: it is not the current version)", body = Object,
         headers(("ETag" = String, description = "The version read: `\"<heads>\"`, its heads sorted and joined by `.`; send it back in `If-Match` to write only if nobody changed it since"))),
        (status = 304, description = "Not modified: the document is at a version `If-None-Match` named",
         headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such document (or deleted), unknown space, or with `at`: deleted at those heads, or heads this replica does not have", body = ApiError),
        (status = 400, description = "Invalid space, collection name, id, If-None-Match or `at`", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn get_doc(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
    Query(at): Query<AtParams>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    doc_path(&p)?;
    if let Some(at) = &at.at {
        let json = maintenance::get_at(&s.node, Some(&p.space), &p.collection, &p.id, at).await?;
        return Ok(Json(json).into_response());
    }
    let found = ops::get_versioned(&s.node, Some(&p.space), &p.collection, &p.id).await?;
    let mut response = match not_modified(&headers, &found.heads)? {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => Json(found.json).into_response(),
    };
    response
        .headers_mut()
        .insert(header::ETAG, etag(&found.heads));
    Ok(response)
}

#[utoipa::path(
    put, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "put_doc",
    description = "Creates or replaces the document with the body (a JSON object); the change is a field-level diff, so concurrent edits to other fields merge. `If-Match` writes only over the version it names (`*`: any existing version); `If-None-Match: *` only creates.",
    params(
        DocPath,
        ("If-Match" = Option<String>, Header, description = "`*`, or the `ETag` of the version this write replaces; 412 if the document is absent or moved on", pattern = r#"^[ \t]*(\*|"[0-9a-f]{64}(\.[0-9a-f]{64})*")?[ \t]*$"#),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only; 412 if the document exists", pattern = r"^[ \t]*\*?[ \t]*$"),
    ),
    request_body(content = Object, description = "The new document", content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced an existing document", body = Written,
         headers(("ETag" = String, description = "The new version"))),
        (status = 201, description = "Created the document (it was absent or deleted)", body = Written,
         headers(("ETag" = String, description = "The new version"), ("Location" = String, description = "The document's URL (percent-encoded path)"))),
        (status = 400, description = "Not a JSON object, too large, too deep, a reserved field, an invalid name or id, or malformed conditional headers", body = ApiError),
        (status = 403, description = "This device may not write in the space", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 412, description = "`If-Match` or `If-None-Match` does not hold (code `precondition_failed`): nothing was written", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn put_doc(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    doc_path(&p)?;
    let pre = precondition(&headers)?;
    let Json(body) = body.map_err(super::input::rejected)?;
    let (w, created) = ops::put(&s.node, Some(&p.space), &p.collection, &p.id, body, pre).await?;
    if !created {
        return Ok(written(StatusCode::OK, w));
    }
    let mut response = written(StatusCode::CREATED, w);
    let location = format!(
        "/v1/spaces/{}/collections/{}/docs/{}",
        seg(&p.space),
        seg(&p.collection),
        seg(&p.id)
    );
    let location = HeaderValue::from_str(&location).expect("percent-encoded paths are ASCII");
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

#[utoipa::path(
    patch, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "patch_doc",
    description = "Applies an RFC 7396 JSON merge patch to an existing document. `If-Match` patches only the version it names.",
    params(
        DocPath,
        ("If-Match" = Option<String>, Header, description = "`*`, or the `ETag` of the version this patch applies to; 412 if the document is absent or moved on", pattern = r#"^[ \t]*(\*|"[0-9a-f]{64}(\.[0-9a-f]{64})*")?[ \t]*$"#),
        ("If-None-Match" = Option<String>, Header, description = "`*`: 412 if the document exists (else 404: there is nothing to patch)", pattern = r"^[ \t]*\*?[ \t]*$"),
    ),
    request_body(content = Object, description = "A JSON merge patch", content_type = "application/json"),
    responses(
        (status = 200, description = "Patched", body = Written,
         headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Invalid patch, name, id or conditional headers", body = ApiError),
        (status = 403, description = "This device may not write in the space", body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 412, description = "A conditional header does not hold: nothing was written", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn patch_doc(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Failure> {
    doc_path(&p)?;
    let pre = precondition(&headers)?;
    let Json(body) = body.map_err(super::input::rejected)?;
    let w = ops::patch(&s.node, Some(&p.space), &p.collection, &p.id, body, pre).await?;
    Ok(written(StatusCode::OK, w))
}

#[utoipa::path(
    delete, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}", tag = "documents",
    operation_id = "delete_doc",
    description = "Deletes the document (a tombstone that syncs; delete wins over concurrent updates). `If-Match` deletes only the version it names.",
    params(
        DocPath,
        ("If-Match" = Option<String>, Header, description = "`*`, or the `ETag` of the version to delete; 412 if the document is absent or moved on", pattern = r#"^[ \t]*(\*|"[0-9a-f]{64}(\.[0-9a-f]{64})*")?[ \t]*$"#),
        ("If-None-Match" = Option<String>, Header, description = "`*`: 412 if the document exists (else 404)", pattern = r"^[ \t]*\*?[ \t]*$"),
    ),
    responses(
        (status = 200, description = "Deleted", body = Written,
         headers(("ETag" = String, description = "The tombstone's version"))),
        (status = 400, description = "Invalid name, id or conditional headers", body = ApiError),
        (status = 403, description = "This device may not write in the space", body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 412, description = "A conditional header does not hold: nothing was deleted", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn delete_doc(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    doc_path(&p)?;
    let pre = precondition(&headers)?;
    let w = ops::delete(&s.node, Some(&p.space), &p.collection, &p.id, pre).await?;
    Ok(written(StatusCode::OK, w))
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs", tag = "documents",
    operation_id = "list_docs",
    description = "Lists matching documents, by id unless `order` says otherwise, a page at a time: when more match than `limit`, the answer has `Link: <URL>; rel=\"next\"`, the same listing after the page's last id. A listing with `order` is one page (it cannot be continued with `after`).",
    params(CollectionPath, ListParams),
    responses(
        (status = 200, description = "Matching documents", body = Vec<Listed>,
         headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when there is one"))),
        (status = 400, description = "Invalid condition, field, limit, cursor, name, or `after` with `order`", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn list_docs(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    space_ref(&p.space)?;
    let params = list_params(pairs)?;
    let (items, next) = ops::list(&s.node, Some(&p.space), &p.collection, &params).await?;
    let mut response = Json(items).into_response();
    if let Some(after) = next {
        let url = list_url(&p.space, &p.collection, &params, Some(&after));
        let link = HeaderValue::from_str(&format!("<{url}>; rel=\"next\""))
            .expect("percent-encoded URLs are ASCII");
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Query strings may repeat `where`, which serde's query decoding cannot
/// put in a struct, so the pairs are folded by hand. Bounds are the ones
/// `ListParams` states in the OpenAPI document.
pub(super) fn list_params(pairs: Vec<(String, String)>) -> Result<ListParams, Failure> {
    let mut p = ListParams::default();
    let once = |seen: bool, name: &str| match seen {
        true => Err(bad(format!("{name} may be given once"))),
        false => Ok(()),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "where" => p.filters.push(v),
            "order" => {
                once(p.order.is_some(), "order")?;
                if v.is_empty() || v.chars().count() > 256 {
                    return Err(bad("order must be a field path of 1 to 256 characters"));
                }
                p.order = Some(v)
            }
            "desc" => {
                p.desc = v
                    .parse()
                    .map_err(|_| bad(format!("desc must be true or false, got {v:?}")))?
            }
            "limit" => {
                once(p.limit.is_some(), "limit")?;
                let limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=weft_core::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "limit must be a whole number from 1 to {}, got {v:?}",
                            weft_core::MAX_PAGE
                        ))
                    })?;
                p.limit = Some(limit)
            }
            "after" => {
                once(p.after.is_some(), "after")?;
                weft_core::key::check_id(&v).map_err(Failure::from)?;
                if v.chars().count() > 256 {
                    return Err(bad("after must be a document id of 1 to 256 characters"));
                }
                p.after = Some(v)
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter {other:?}; use where, order, desc, limit, after"
                )));
            }
        }
    }
    if p.after.is_some() && p.order.is_some() {
        return Err(bad(
            "after pages by document id and cannot be combined with order; drop order, or narrow the listing with where",
        ));
    }
    Ok(p)
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}/history", tag = "documents",
    operation_id = "history",
    params(DocPath),
    responses(
        (status = 200, description = "Changes, oldest first", body = Vec<Change>),
        (status = 400, description = "Invalid space, collection name or id", body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn history(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
) -> Result<Json<Vec<Change>>, Failure> {
    doc_path(&p)?;
    Ok(Json(
        ops::history(&s.node, Some(&p.space), &p.collection, &p.id).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/docs/{id}/url", tag = "documents",
    operation_id = "automerge_url",
    description = "The document's automerge-repo URL, for apps syncing through `/v1/automerge`.",
    params(DocPath),
    responses(
        (status = 200, description = "Its URL", body = AutomergeUrl),
        (status = 400, description = "Invalid space, collection name or id", body = ApiError),
        (status = 404, description = "No such document or space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn url(
    State(s): State<AppState>,
    Path(p): Path<DocPath>,
) -> Result<Json<AutomergeUrl>, Failure> {
    doc_path(&p)?;
    Ok(Json(
        ops::url(&s.node, Some(&p.space), &p.collection, &p.id).await?,
    ))
}

#[utoipa::path(
    post, path = "/v1/sql", tag = "documents",
    operation_id = "sql",
    description = "Runs one read-only statement against the replica (the `documents` view: space, collection, id, json).",
    request_body = SqlRequest,
    responses(
        (status = 200, description = "Rows as objects", body = Vec<Object>),
        (status = 400, description = "Not a JSON object, not a read-only statement, or it failed", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn sql(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<SqlRequest>,
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
        for (k, v) in [("limit", "0"), ("limit", "10001"), ("after", "")] {
            let e = list_params(vec![(k.into(), v.into())]).unwrap_err();
            assert_eq!(e.status, 400, "{k}={v}");
        }
        let both = vec![("after".into(), "a".into()), ("order".into(), "n".into())];
        assert_eq!(list_params(both).unwrap_err().status, 400);
    }
}
