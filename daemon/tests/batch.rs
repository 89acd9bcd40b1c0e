//! `POST /v1/spaces/{space}/batch` and `GET /v1/spaces/{space}/export` over
//! a real socket: all or nothing, the failing operation named, bounds held.

mod common;

use common::{call, serve};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const BATCH: &str = "/v1/spaces/default/batch";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_all_or_nothing_and_names_the_failing_operation() {
    let a = serve().await;
    let ops = json!({"ops": [
        {"op": "put", "collection": "notes", "id": "a", "doc": {"n": 1}},
        {"op": "put", "collection": "notes", "id": "b", "doc": {"n": 2}},
        {"op": "patch", "collection": "notes", "id": "a", "doc": {"n": 3}},
        {"op": "delete", "collection": "notes", "id": "b"},
    ]});
    let (status, done) = call(&a, Method::POST, BATCH, Some(ops)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        results
            .iter()
            .all(|r| r["heads"].as_array().is_some_and(|h| h.len() == 1))
    );
    let doc = "/v1/spaces/default/collections/notes/docs";
    assert_eq!(
        call(&a, Method::GET, &format!("{doc}/a"), None).await.1,
        json!({"n": 3})
    );
    assert_eq!(
        call(&a, Method::GET, &format!("{doc}/b"), None).await.0,
        StatusCode::NOT_FOUND
    );

    // The third operation patches a document that does not exist: nothing
    // of the batch is stored, and the answer names it.
    let failing = json!({"ops": [
        {"op": "put", "collection": "notes", "id": "c", "doc": {"n": 1}},
        {"op": "put", "collection": "notes", "id": "a", "doc": {"n": 9}},
        {"op": "patch", "collection": "notes", "id": "missing", "doc": {"n": 1}},
    ]});
    let (status, err) = call(&a, Method::POST, BATCH, Some(failing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(
        (&err["error"], &err["index"]),
        (&json!("not_found"), &json!(2)),
        "{err}"
    );
    assert!(
        err["message"].as_str().unwrap().contains("notes/missing"),
        "{err}"
    );
    assert_eq!(
        call(&a, Method::GET, &format!("{doc}/c"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&a, Method::GET, &format!("{doc}/a"), None).await.1,
        json!({"n": 3})
    );

    // An id from a hostile file cannot rewrite the terminal the error is
    // printed on.
    let hostile = json!({"ops": [{"op": "patch", "collection": "notes", "id": "\u{1b}]0;pwn\u{7}", "doc": {}}]});
    let (status, err) = call(&a, Method::POST, BATCH, Some(hostile)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        !message.contains('\u{1b}') && message.contains("\\u{1b}"),
        "{message}"
    );

    // Invalid operations, named before anything runs.
    for (ops, index) in [
        (
            json!([{"op": "put", "collection": "_weft", "id": "x", "doc": {}}]),
            0,
        ),
        (
            json!([{"op": "delete", "collection": "notes", "id": "a"}, {"op": "put", "collection": "no tes", "id": "x", "doc": {}}]),
            1,
        ),
    ] {
        let (status, err) = call(&a, Method::POST, BATCH, Some(json!({"ops": ops}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["index"], index, "{err}");
    }
    // Bodies that are not a batch: refused whole, without an index.
    for body in [
        json!([null, null]),
        json!({"ops": [{"op": "put", "collection": "n", "id": "x", "doc": [1]}]}),
        json!({"ops": [{"op": "upsert", "collection": "n", "id": "x"}]}),
        json!({"ops": [], "extra": 1}),
    ] {
        let (status, err) = call(&a, Method::POST, BATCH, Some(body.clone())).await;
        assert!(status.is_client_error(), "{body}: {status} {err}");
        assert_eq!(err["index"], Value::Null, "{body}: {err}");
    }
    assert_eq!(
        call(&a, Method::GET, &format!("{doc}/a"), None).await.1,
        json!({"n": 3})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_over_the_bounds_are_refused() {
    let a = serve().await;
    let delete = json!({"op": "delete", "collection": "notes", "id": "x"});
    let too_many = json!({"ops": vec![delete; weft_core::MAX_BATCH + 1]});
    let (status, err) = call(&a, Method::POST, BATCH, Some(too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("at most"),
        "{err}"
    );
    // A body over the batch limit is cut off by the server, not buffered.
    let big = "x".repeat(weft_daemon::batch::MAX_BATCH_BODY);
    let op = json!({"op": "put", "collection": "notes", "id": "big", "doc": {"t": big}});
    let (status, err) = call(&a, Method::POST, BATCH, Some(json!({"ops": [op]}))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    // More batches at once than are let in: the rest wait their turn.
    let batches = (0..6).map(|b| {
        let ops: Vec<Value> = (0..500)
            .map(|i| json!({"op": "put", "collection": "many", "id": format!("{b}-{i}"), "doc": {"i": i}}))
            .collect();
        call(&a, Method::POST, BATCH, Some(json!({ "ops": ops })))
    });
    for (status, body) in futures::future::join_all(batches).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        a.node.count(None::<&str>, Some("many")).await.unwrap(),
        3000
    );
    // The largest document fits in a batch body (other bodies stop at 2 MB).
    let doc = "y".repeat(weft_core::MAX_DOC_BYTES - 100);
    let op = json!({"op": "put", "collection": "notes", "id": "max", "doc": {"t": doc}});
    let (status, err) = call(
        &a,
        Method::POST,
        BATCH,
        Some(json!({"ops": [op.clone(), op]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_streams_every_live_document_once() {
    let a = serve().await;
    // More than one export page (1000 documents).
    let ops: Vec<Value> = (0..2100)
        .map(|i| json!({"op": "put", "collection": if i % 2 == 0 { "even" } else { "odd" }, "id": format!("{i}"), "doc": {"i": i}}))
        .collect();
    let (status, _) = call(&a, Method::POST, BATCH, Some(json!({"ops": ops}))).await;
    assert_eq!(status, StatusCode::OK);
    let gone = json!({"ops": [{"op": "delete", "collection": "odd", "id": "1"}]});
    assert_eq!(
        call(&a, Method::POST, BATCH, Some(gone)).await.0,
        StatusCode::OK
    );
    let (status, body) = call(&a, Method::GET, "/v1/spaces/default/export", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2099);
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        let i = r["doc"]["i"].as_u64().unwrap();
        assert_eq!(r["id"], i.to_string());
        assert_eq!(r["collection"], if i % 2 == 0 { "even" } else { "odd" });
        assert!(seen.insert(i), "{i} twice");
    }
    assert!(!seen.contains(&1));
    let (_, odd) = call(
        &a,
        Method::GET,
        "/v1/spaces/default/export?collection=odd",
        None,
    )
    .await;
    assert_eq!(odd.as_str().unwrap().lines().count(), 1049);
    let (status, err) = call(
        &a,
        Method::GET,
        "/v1/spaces/default/export?collection=no%20tes",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = call(&a, Method::GET, "/v1/spaces/nope/export", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
