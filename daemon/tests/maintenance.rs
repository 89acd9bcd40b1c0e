//! Backups, the integrity check, indexes, members, leaving and reading at
//! heads, over the HTTP API: each answers as documented, and every input a
//! client can grow is refused past its bound with a 400.

mod common;

use common::{call, serve, team_with_invite};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use weft_daemon::maintenance::{MAX_AT_HEADS, MAX_PATH_BYTES};

fn assert_400(status: StatusCode, body: &Value, needle: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_input", "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_are_written_private_and_bad_paths_are_400s() {
    let a = serve().await;
    let doc = "/v1/spaces/default/collections/notes/docs/n1";
    call(&a, Method::PUT, doc, Some(json!({"t": 1}))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.weft");
    let body = json!({"path": path});
    let (status, done) = call(&a, Method::POST, "/v1/backup", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["node_id"], a.node.node_id().to_string());
    assert_eq!(done["documents"], 1);
    assert_eq!(done["bytes"], std::fs::metadata(&path).unwrap().len());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (status, e) = call(&a, Method::POST, "/v1/backup", Some(body)).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("already exists"),
        "{e}"
    );
    let forced = json!({"path": path, "force": true});
    let (status, _) = call(&a, Method::POST, "/v1/backup", Some(forced)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, e) = call(
        &a,
        Method::POST,
        "/v1/backup",
        Some(json!({"path": "rel.weft"})),
    )
    .await;
    assert_400(status, &e, "not absolute");
    let missing = dir.path().join("no/such/dir/b.weft");
    let (status, e) = call(
        &a,
        Method::POST,
        "/v1/backup",
        Some(json!({"path": missing})),
    )
    .await;
    assert_400(status, &e, "does not exist");
    let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
    let (status, e) = call(&a, Method::POST, "/v1/backup", Some(json!({"path": long}))).await;
    assert_400(status, &e, "4096");
    let (status, e) = call(
        &a,
        Method::POST,
        "/v1/backup",
        Some(json!({"path": dir.path()})),
    )
    .await;
    assert_400(status, &e, "is a directory");
    // Only the one backup is there: refusals leave no temp files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

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
