//! Backups, the integrity check, indexes, members, leaving and reading at
//! heads, over the HTTP API: each answers as documented, and every input a
//! client can grow is refused past its bound with a 400.

mod common;

use common::{call, serve, team_with_invite};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use weft_daemon::maintenance::MAX_AT_HEADS;

fn assert_400(status: StatusCode, body: &Value, needle: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_input", "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_are_streamed_and_the_daemon_writes_no_file_a_client_names() {
    let a = serve().await;
    let doc = "/v1/spaces/default/collections/notes/docs/n1";
    call(&a, Method::PUT, doc, Some(json!({"t": 1}))).await;
    let before: Vec<_> = files(a.node.data_dir());

    let response = a.client.download("/v1/backup").await.unwrap();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-weft-node-id"), a.node.node_id().to_string());
    assert_eq!(header("x-weft-documents"), "1");
    assert_eq!(header("content-type"), "application/octet-stream");
    let length: usize = header("content-length").parse().unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(bytes.len(), length);
    // What was streamed is a backup that restores into a working replica.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.weft");
    std::fs::write(&file, &bytes).unwrap();
    let restored = dir.path().join("restored");
    weft_core::Node::restore(&restored, &file, false)
        .await
        .unwrap();
    let mut config = weft_core::Config::with_data_dir(&restored);
    config.network = None;
    let back = weft_core::Node::open(config).await.unwrap();
    let key = back.key("notes", "n1").unwrap();
    assert_eq!(back.get(&key).await.unwrap(), Some(json!({"t": 1})));
    back.close().await.unwrap();

    // No request names a path: the old POST is gone, and the snapshot's
    // temp file in the data dir is gone once it was streamed.
    let (status, _) = call(
        &a,
        Method::POST,
        "/v1/backup",
        Some(json!({"path": dir.path().join("x"), "force": true})),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!dir.path().join("x").exists());
    assert_eq!(files(a.node.data_dir()), before);
}

/// The names of the files in `dir`, sorted.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_integrity_check_answers_ok() {
    let a = serve().await;
    let (status, check) = call(&a, Method::GET, "/v1/check", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check, json!({"ok": true, "problems": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_read_at_their_heads() {
    let a = serve().await;
    let doc = "/v1/spaces/default/collections/notes/docs/n1";
    let (_, first) = call(&a, Method::PUT, doc, Some(json!({"t": 1}))).await;
    call(&a, Method::PATCH, doc, Some(json!({"t": 2}))).await;
    let heads = first["heads"].as_array().unwrap();
    let at: Vec<&str> = heads.iter().map(|h| h.as_str().unwrap()).collect();
    let (status, old) = call(&a, Method::GET, &format!("{doc}?at={}", at.join(",")), None).await;
    assert_eq!((status, old), (StatusCode::OK, json!({"t": 1})));
    let (_, now) = call(&a, Method::GET, doc, None).await;
    assert_eq!(now, json!({"t": 2}));

    let unknown = "ab".repeat(32);
    // Well-formed heads of no change here: that version is not here (404).
    let (status, e) = call(&a, Method::GET, &format!("{doc}?at={unknown}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("no such version"),
        "{e}"
    );
    let (status, e) = call(&a, Method::GET, &format!("{doc}?at=nothex"), None).await;
    assert_400(status, &e, "not a change hash");
    let many = vec![unknown.as_str(); MAX_AT_HEADS + 1].join(",");
    let (status, e) = call(&a, Method::GET, &format!("{doc}?at={many}"), None).await;
    assert_400(status, &e, "1 to 256");
    let absent = "/v1/spaces/default/collections/notes/docs/absent";
    let (status, e) = call(&a, Method::GET, &format!("{absent}?at={unknown}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn indexes_members_and_leaving() {
    let a = serve().await;
    for _ in 0..2 {
        let (status, done) = call(
            &a,
            Method::POST,
            "/v1/indexes",
            Some(json!({"field": "meta.due"})),
        )
        .await;
        assert_eq!(
            (status, done),
            (StatusCode::OK, json!({"field": "meta.due"}))
        );
    }
    for bad in ["", "a..b", "a;drop", &"x".repeat(257)] {
        let (status, e) = call(&a, Method::POST, "/v1/indexes", Some(json!({"field": bad}))).await;
        assert_400(status, &e, "field path");
    }

    let (team, _) = team_with_invite(&a, json!({"role": "reader"})).await;
    let (status, members) = call(&a, Method::GET, "/v1/spaces/team/members", None).await;
    assert_eq!(status, StatusCode::OK);
    let me = a.node.node_id().to_string();
    assert_eq!(
        members,
        json!([{"node_id": me, "role": "admin", "this_device": true}])
    );
    let (status, _) = call(&a, Method::GET, "/v1/spaces/nope/members", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let doc = format!("/v1/spaces/{team}/collections/notes/docs/n1");
    call(&a, Method::PUT, &doc, Some(json!({"t": 1}))).await;
    let (status, e) = call(&a, Method::DELETE, "/v1/spaces/default", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("cannot be left"),
        "{e}"
    );
    let (status, left) = call(&a, Method::DELETE, "/v1/spaces/team", None).await;
    assert_eq!(status, StatusCode::OK, "{left}");
    assert_eq!(left, json!({"id": team, "removed": 2}));
    let (status, _) = call(&a, Method::GET, &doc, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&a, Method::DELETE, "/v1/spaces/team", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, spaces) = call(&a, Method::GET, "/v1/spaces", None).await;
    assert_eq!(spaces.as_array().unwrap().len(), 1, "{spaces}");
}
