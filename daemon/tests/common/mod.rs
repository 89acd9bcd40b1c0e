//! What the API tests share: a node served over a real socket, and calls.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::net::SocketAddr;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use weft_core::NetConfig;
use weft_core::{Config, Node};
use weft_daemon::api;
use weft_daemon::client::Client;

pub const TOKEN: &str = "test-token";

pub struct Served {
    pub node: Node,
    pub client: Client,
    pub addr: SocketAddr,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

pub async fn serve() -> Served {
    serve_guarded(api::Guard::default()).await
}

/// A node whose joins wait at most `join_timeout` for the inviter.
pub async fn serve_joining_within(join_timeout: std::time::Duration) -> Served {
    serve_with(api::Guard::default(), join_timeout).await
}

pub async fn serve_guarded(guard: api::Guard) -> Served {
    serve_with(guard, api::DEFAULT_JOIN_TIMEOUT).await
}

async fn serve_with(guard: api::Guard, join_timeout: std::time::Duration) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(dir.path());
    config.network = Some(NetConfig::local());
    let node = Node::open(config).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let landing = weft_daemon::automerge::Landing {
        space: node.default_space().to_owned(),
        collection: api::DEFAULT_LANDING_COLLECTION.to_owned(),
    };
    let app = api::router_with(
        node.clone(),
        TOKEN.into(),
        stop_rx,
        landing,
        guard,
        join_timeout,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        node,
        client: Client::new(addr, TOKEN),
        addr,
        _stop: stop,
        _dir: dir,
    }
}

pub async fn call(
    s: &Served,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, bytes) = s.client.raw(method, path, body, Some(&auth)).await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// Creates the space `team` on `s` and an invite to it made from `body`.
pub async fn team_with_invite(s: &Served, body: Value) -> (String, Value) {
    let (_, created) = call(s, Method::POST, "/v1/spaces", Some(json!({"name": "team"}))).await;
    let team = created["id"].as_str().unwrap().to_owned();
    let (_, invite) = call(
        s,
        Method::POST,
        &format!("/v1/spaces/{team}/invites"),
        Some(body),
    )
    .await;
    (team, invite)
}

/// `s`'s entry for `space` in `GET /v1/spaces`.
pub async fn listed_space(s: &Served, space: &str) -> Value {
    let (_, spaces) = call(s, Method::GET, "/v1/spaces", None).await;
    let found = spaces.as_array().unwrap().iter().find(|x| x["id"] == space);
    found
        .cloned()
        .unwrap_or_else(|| panic!("{space} is not listed: {spaces}"))
}
