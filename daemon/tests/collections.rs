//! `GET /v1/spaces/{space}/collections`: the collections with live
//! documents, in name order; a space reference past its bound is a 400 and
//! an unknown space a 404, both with a message.

mod common;

use common::{call, serve};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn collections_lists_those_with_live_documents_and_bounds_its_space() {
    let a = serve().await;
    let (status, listed) = call(&a, Method::GET, "/v1/spaces/default/collections", None).await;
    assert_eq!((status, listed), (StatusCode::OK, json!([])));

    for (collection, id) in [
        ("tasks", "t1"),
        ("notes", "n1"),
        ("notes", "n2"),
        ("gone", "g"),
    ] {
        let path = format!("/v1/spaces/default/collections/{collection}/docs/{id}");
        let (status, body) = call(&a, Method::PUT, &path, Some(json!({"x": 1}))).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    let (status, body) = call(
        &a,
        Method::DELETE,
        "/v1/spaces/default/collections/gone/docs/g",
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, listed) = call(&a, Method::GET, "/v1/spaces/default/collections", None).await;
    assert_eq!(
        (status, listed),
        (StatusCode::OK, json!(["notes", "tasks"])),
        "name order, without the collection whose only document is deleted"
    );

    let (status, body) = call(&a, Method::GET, "/v1/spaces/nowhere/collections", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found", "{body}");

    // 128 characters is the bound of a space reference; one more is a 400.
    let long = "s".repeat(129);
    let path = format!("/v1/spaces/{long}/collections");
    let (status, body) = call(&a, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
}
