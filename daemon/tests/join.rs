//! `POST /v1/join` over a real socket: it waits for the inviter, answers a
//! refusal with 409 `refused` and the reason, and a join nobody answers
//! stays pending.

mod common;

use std::time::Duration;

use common::{call, listed_space, serve, team_with_invite};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_join_is_a_409_with_the_reason() {
    let (a, b, c) = (serve().await, serve().await, serve().await);
    let (team, invite) = team_with_invite(&a, json!({"role": "reader"})).await;
    let join = json!({"token": invite["token"], "timeout_secs": 60});
    let (status, joined) = call(&b, Method::POST, "/v1/join", Some(join.clone())).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined, json!({"id": team, "state": "reader"}));
    // B counts itself admitted once A's log arrives, which may be before A
    // has B's claim; C joins once A names B, so A sees the token used.
    let b_id = b.node.node_id().to_string();
    let mut named = false;
    for _ in 0..300 {
        named = listed_space(&a, &team).await["members"]
            .get(&b_id)
            .is_some();
        if named {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(named, "A never named B: {}", listed_space(&a, &team).await);
    // The same token again, from another device: A refuses it.
    let (status, refused) = call(&c, Method::POST, "/v1/join", Some(join)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"], "refused", "{refused}");
    let (_, spec) = call(&c, Method::GET, "/v1/openapi.json", None).await;
    assert!(spec["paths"]["/v1/join"]["post"]["responses"]["409"].is_object());
    // The space stays listed as refused, with the inviter's reason.
    let listed = listed_space(&c, &team).await;
    assert_eq!(listed["state"], "refused", "{listed}");
    let reason = listed["reason"].as_str().unwrap();
    assert!(
        refused["message"].as_str().unwrap().contains(reason),
        "the error carries the reason: {refused} vs {listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_its_inviter_does_not_answer_stays_pending() {
    let a = serve().await;
    let b = serve().await;
    let (team, first) = team_with_invite(&a, json!({})).await;
    let (_, second) = call(
        &a,
        Method::POST,
        &format!("/v1/spaces/{team}/invites"),
        Some(json!({})),
    )
    .await;
    // The inviter goes away: nobody can admit or refuse B.
    a.node.close().await.unwrap();
    for body in [
        json!({"token": first["token"], "wait": false}),
        json!({"token": second["token"], "timeout_secs": 0.5}),
    ] {
        let (status, joined) = call(&b, Method::POST, "/v1/join", Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}: {joined}");
        assert_eq!(joined, json!({"id": team, "state": "pending"}), "{body}");
    }
    let listed = listed_space(&b, &team).await;
    assert_eq!(
        (&listed["state"], &listed["reason"], &listed["role"]),
        (&json!("pending"), &Value::Null, &Value::Null),
        "{listed}"
    );
}
