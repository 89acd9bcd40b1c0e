//! The CLI's in-process API (no daemon) is the daemon's router: the same
//! answers and errors as over HTTP, and the same token check.

mod common;

use common::serve;
use hyper::{Method, StatusCode};
use serde_json::json;
use weft_core::ErrorKind;
use weft_daemon::client::Client;

#[tokio::test(flavor = "multi_thread")]
async fn in_process_and_http_answer_alike() {
    let s = serve().await;
    let local = Client::in_process(s.node.clone()).unwrap();
    assert!(local.is_embedded() && !s.client.is_embedded());

    let written = local
        .put(None, "notes", "a/b c", json!({"n": 1}))
        .await
        .unwrap();
    assert!(!written.heads.is_empty());
    for c in [&local, &s.client] {
        assert_eq!(
            c.get(None, "notes", "a/b c").await.unwrap(),
            json!({"n": 1})
        );
        let missing = c.get(None, "notes", "nope").await.unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        let unknown = c.get(Some("nope"), "notes", "a").await.unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::NotFound);
        let bad = c.space_join("weft-invite-garbage", None).await.unwrap_err();
        assert_eq!(bad.kind, ErrorKind::InvalidInvite, "{bad}");
    }
    let (a, b) = (
        local.sql("DELETE FROM documents").await.unwrap_err(),
        s.client.sql("DELETE FROM documents").await.unwrap_err(),
    );
    assert_eq!(a, b);
    assert_eq!(
        local.status().await.unwrap().documents,
        s.client.status().await.unwrap().documents
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_process_router_checks_a_token_of_its_own_and_cannot_watch() {
    let s = serve().await;
    let local = Client::in_process(s.node.clone()).unwrap();
    // Its token is made up per process: not the daemon's, not absent.
    for auth in [None, Some("Bearer test-token")] {
        let (status, _) = local
            .raw(Method::GET, "/v1/status", None, auth)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    let watch = local.events(None, None, None, false).await.unwrap_err();
    assert_eq!(watch.kind, ErrorKind::Closed);
    assert!(watch.message.contains("needs a running daemon"), "{watch}");
}
