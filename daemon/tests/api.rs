//! The HTTP API in-process over real sockets: every OpenAPI operation is
//! exercised and answers a status its document promises; auth and bad
//! input give 4xx JSON errors; the event stream carries a peer's change.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{TOKEN, call, serve, serve_guarded, team_with_invite};
use futures::StreamExt;
use http_body_util::BodyDataStream;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use weft_daemon::api;
use weft_daemon::output::SseParser;

/// (what, method, OpenAPI path template, concrete path, body)
type BadCase = (
    &'static str,
    Method,
    &'static str,
    &'static str,
    Option<&'static [u8]>,
);

/// `{error, message}` with a non-empty message.
fn assert_api_error(status: StatusCode, body: &Value, context: &str) {
    assert!(status.is_client_error(), "{context}: {status} {body}");
    assert!(body["error"].is_string(), "{context}: {body}");
    assert!(
        !body["message"].as_str().unwrap_or("").is_empty(),
        "{context}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_works_as_documented() {
    let a = serve().await;
    let b = serve().await;
    let (_, spec) = call(&a, Method::GET, "/v1/openapi.json", None).await;
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }

    let b_id = b.node.node_id().to_string();
    // Bound to B: A revokes B below, and only an invite bound to a revoked
    // node's id lets it in again.
    let (team, invite) =
        team_with_invite(&a, json!({"role": "writer", "expires": "1h", "node": b_id})).await;
    let token = invite["token"].as_str().unwrap().to_owned();
    let a_addr = a.node.listen_addrs().await[0].clone();
    let doc = "/v1/spaces/team/collections/notes/docs/a%2Fb";

    // (method, template, concrete path, body, expected status), in an order
    // where each step's state is set up by the ones before.
    let cases: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        ("GET", "/v1/id", "/v1/id".into(), None, 200),
        ("GET", "/v1/status", "/v1/status".into(), None, 200),
        ("GET", "/v1/spaces", "/v1/spaces".into(), None, 200),
        (
            "POST",
            "/v1/spaces",
            "/v1/spaces".into(),
            Some(json!({"name": "other"})),
            201,
        ),
        (
            "POST",
            "/v1/spaces/{space}/invites",
            format!("/v1/spaces/{team}/invites"),
            Some(json!({"role": "reader"})),
            201,
        ),
        (
            "PUT",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}",
            doc.into(),
            Some(json!({"title": "hi", "n": 1})),
            201,
        ),
        (
            "PATCH",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}",
            doc.into(),
            Some(json!({"n": 2})),
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}",
            doc.into(),
            None,
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}/history",
            format!("{doc}/history"),
            None,
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}/url",
            format!("{doc}/url"),
            None,
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/collections/{collection}/docs",
            "/v1/spaces/team/collections/notes/docs?where=n%3E%3D2&order=n&limit=5".into(),
            None,
            200,
        ),
        (
            "POST",
            "/v1/spaces/{space}/batch",
            "/v1/spaces/team/batch".into(),
            Some(
                json!({"ops": [{"op": "put", "collection": "notes", "id": "z", "doc": {"n": 0}}]}),
            ),
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/export",
            "/v1/spaces/team/export?collection=notes".into(),
            None,
            200,
        ),
        (
            "POST",
            "/v1/sql",
            "/v1/sql".into(),
            Some(json!({"sql": "SELECT count(*) AS n FROM documents"})),
            200,
        ),
        (
            "DELETE",
            "/v1/spaces/{space}/collections/{collection}/docs/{id}",
            doc.into(),
            None,
            200,
        ),
        ("GET", "/v1/peers", "/v1/peers".into(), None, 200),
        (
            "GET",
            "/v1/spaces/{space}/collections",
            format!("/v1/spaces/{team}/collections"),
            None,
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/members",
            format!("/v1/spaces/{team}/members"),
            None,
            200,
        ),
        (
            "POST",
            "/v1/indexes",
            "/v1/indexes".into(),
            Some(json!({"field": "n"})),
            200,
        ),
        ("GET", "/v1/backup", "/v1/backup".into(), None, 200),
        ("GET", "/v1/check", "/v1/check".into(), None, 200),
        (
            "DELETE",
            "/v1/spaces/{space}",
            "/v1/spaces/other".into(),
            None,
            200,
        ),
        (
            "DELETE",
            "/v1/spaces/{space}/members/{node_id}",
            format!("/v1/spaces/{team}/members/{b_id}"),
            None,
            204,
        ),
        (
            "GET",
            "/v1/events",
            "/v1/events?collection=none".into(),
            None,
            200,
        ),
        (
            "GET",
            "/v1/spaces/{space}/collections/{collection}/observe",
            "/v1/spaces/team/collections/notes/observe?where=n%3E%3D0&order=n".into(),
            None,
            200,
        ),
        ("GET", "/metrics", "/metrics".into(), None, 200),
        (
            "GET",
            "/v1/openapi.json",
            "/v1/openapi.json".into(),
            None,
            200,
        ),
    ];
    let mut exercised: BTreeSet<(String, String)> = BTreeSet::new();
    for (method, template, path, body, expected) in &cases {
        let method_ = Method::from_bytes(method.as_bytes()).unwrap();
        let streams = [
            "/v1/events",
            "/v1/spaces/{space}/collections/{collection}/observe",
        ];
        let (status, answer) = if streams.contains(template) {
            // A stream never ends: only its status line is checked here.
            let resp = a.client.stream(path).await.map(|_| StatusCode::OK);
            (resp.unwrap(), Value::Null)
        } else {
            call(&a, method_, path, body.clone()).await
        };
        assert_eq!(status.as_u16(), *expected, "{method} {path}: {answer}");
        let op = &spec["paths"][template][method.to_lowercase()];
        assert!(
            op["responses"][status.as_str()].is_object(),
            "{method} {template} answered {status}, which its OpenAPI entry does not list"
        );
        exercised.insert((method.to_string(), template.to_string()));
    }
    // B joins and dials A: the last two operations. A revoked B above; the
    // invite is bound to B, so A admits it (tests/join.rs covers refusals);
    // not waiting keeps this a plain 200.
    let body = json!({"token": token, "wait": false});
    let (status, joined) = call(&b, Method::POST, "/v1/join", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["id"], team);
    assert!(joined["state"].is_string(), "{joined}");
    exercised.insert(("POST".into(), "/v1/join".into()));
    let (status, connected) =
        call(&b, Method::POST, "/v1/peers", Some(json!({"addr": a_addr}))).await;
    assert_eq!(status, StatusCode::OK, "{connected}");
    assert_eq!(connected["node_id"], a.node.node_id().to_string());
    exercised.insert(("POST".into(), "/v1/peers".into()));
    let (status, health) = call(&a, Method::GET, "/v1/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    exercised.insert(("GET".into(), "/v1/health".into()));

    assert_eq!(
        exercised, documented,
        "every OpenAPI operation is exercised, and no other"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_tokens_get_401_everywhere() {
    let a = serve().await;
    let (_, spec) = call(&a, Method::GET, "/v1/openapi.json", None).await;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path
            .replace("{space}", "default")
            .replace("{collection}", "c")
            .replace("{id}", "i")
            .replace("{node_id}", "n");
        for (method, op) in item.as_object().unwrap() {
            // Operations the document marks as open (`security: [{}]`).
            if op["security"] == json!([{}]) {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdA==")] {
                let (status, bytes) = a.client.raw(m.clone(), &path, None, auth).await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
                assert_eq!(body["error"], "unauthorized");
            }
        }
    }
}

/// A 401 names the Bearer scheme; `GET /v1/health` alone answers without a
/// token; an empty peer address is the caller's mistake (400), not a 502.
#[tokio::test(flavor = "multi_thread")]
async fn auth_challenge_health_and_empty_addresses() {
    let a = serve().await;
    let (status, head) = raw_head(a.addr, "GET", "/v1/status", &[]).await;
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"weft\""),
        "{head}"
    );
    let (status, bytes) = a
        .client
        .raw(Method::GET, "/v1/health", None, None)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (_, spec) = call(&a, Method::GET, "/v1/openapi.json", None).await;
    let open: Vec<&String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| item["get"]["security"] == json!([{}]))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(open, ["/v1/health"], "only health is open");
    for addr in ["", "  "] {
        let (status, body) = call(&a, Method::POST, "/v1/peers", Some(json!({"addr": addr}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{addr:?}: {body}");
        assert_eq!(body["error"], "invalid_input");
    }
}

/// Sends one HTTP/1.1 request with exactly these extra header lines and
/// returns the status and the head plus whatever body came before close
/// (a WebSocket upgrade stays open, so only its head is read).
async fn raw_head(addr: SocketAddr, method: &str, path: &str, headers: &[String]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nContent-Length: 0\r\n");
    if !headers.iter().any(|h| h.starts_with("Connection:")) {
        request.push_str("Connection: close\r\n");
    }
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if n == 0 || whole_answer(&String::from_utf8_lossy(&got)) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the API answers");
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

/// Whether `text` holds a whole answer: the head of a 101, or a head and
/// as much body as its `content-length` says (a refused upgrade keeps the
/// connection open, so the end of the stream cannot be waited for).
fn whole_answer(text: &str) -> bool {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    if head.starts_with("HTTP/1.1 101") {
        return true;
    }
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .and_then(Result::ok)
        .is_some_and(|len| body.len() >= len)
}

/// Headers of a WebSocket upgrade as a browser sends them.
fn upgrade_headers() -> Vec<String> {
    vec![
        "Upgrade: websocket".into(),
        "Connection: Upgrade".into(),
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".into(),
        "Sec-WebSocket-Version: 13".into(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_hosts_and_origins_get_403_everywhere() {
    let guard = api::Guard::with_origins(&["https://app.example.com".into()], None).unwrap();
    let a = serve_guarded(guard).await;
    let port = a.addr.port();
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (_, spec) = call(&a, Method::GET, "/v1/openapi.json", None).await;
    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path
            .replace("{space}", "default")
            .replace("{collection}", "c")
            .replace("{id}", "i")
            .replace("{node_id}", "n");
        for method in item.as_object().unwrap().keys() {
            targets.push((method.to_uppercase(), path.clone()));
        }
    }
    targets.push(("GET".into(), format!("/v1/automerge?token={TOKEN}")));
    targets.push(("GET".into(), "/no/such/route".into()));
    let rebound = format!("Host: rebound.example:{port}");
    let loopback = format!("Host: 127.0.0.1:{port}");
    for (method, path) in &targets {
        for extra in [
            vec![rebound.clone()],
            vec![loopback.clone(), "Origin: http://evil.example".into()],
            vec![loopback.clone(), "Origin: null".into()],
            vec![
                loopback.clone(),
                format!("Origin: http://localhost.evil.example:{port}"),
            ],
        ] {
            let mut headers = vec![auth.clone()];
            headers.extend(extra.iter().cloned());
            if path.starts_with(api::AUTOMERGE_PATH) {
                headers.extend(upgrade_headers());
            }
            let (status, text) = raw_head(a.addr, method, path, &headers).await;
            assert_eq!(status, 403, "{method} {path} {extra:?}: {text}");
            let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
            let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(body["error"], "forbidden", "{text}");
            assert!(!body["message"].as_str().unwrap().is_empty());
        }
    }
    // Loopback hosts and origins, the configured origin, and clients that
    // send no Origin at all get through.
    for extra in [
        vec![loopback.clone()],
        vec![
            format!("Host: localhost:{port}"),
            "Origin: http://localhost:5173".into(),
        ],
        vec![
            format!("Host: [::1]:{port}"),
            "Origin: http://[::1]:8080".into(),
        ],
        vec![loopback.clone(), format!("Origin: http://127.0.0.1:{port}")],
        vec![loopback.clone(), "Origin: https://app.example.com".into()],
    ] {
        let mut headers = vec![auth.clone()];
        headers.extend(extra.iter().cloned());
        let (status, text) = raw_head(a.addr, "GET", "/v1/id", &headers).await;
        assert_eq!(status, 200, "{extra:?}: {text}");
        let mut upgrade = upgrade_headers();
        upgrade.extend(extra.iter().cloned());
        let ws = format!("{}?token={TOKEN}", api::AUTOMERGE_PATH);
        let (status, text) = raw_head(a.addr, "GET", &ws, &upgrade).await;
        assert_eq!(status, 101, "the WebSocket opens for {extra:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_documented_4xx_with_a_message() {
    let a = serve().await;
    let (_, spec) = call(&a, Method::GET, "/v1/openapi.json", None).await;
    let auth = format!("Bearer {TOKEN}");
    let doc = "/v1/spaces/default/collections/notes/docs/x";
    let doc_t = "/v1/spaces/{space}/collections/{collection}/docs/{id}";
    let list_t = "/v1/spaces/{space}/collections/{collection}/docs";
    let invite_t = "/v1/spaces/{space}/invites";
    let cases: Vec<BadCase> = vec![
        ("truncated JSON", Method::PUT, doc_t, doc, Some(b"{\"a\":")),
        ("not an object", Method::PUT, doc_t, doc, Some(b"[1,2]")),
        (
            "reserved field",
            Method::PUT,
            doc_t,
            doc,
            Some(b"{\"_weft_deleted\":true}"),
        ),
        ("no body", Method::PUT, doc_t, doc, None),
        (
            "patch of a missing doc",
            Method::PATCH,
            doc_t,
            doc,
            Some(b"{\"a\":1}"),
        ),
        (
            "missing field",
            Method::POST,
            "/v1/spaces",
            "/v1/spaces",
            Some(b"{}"),
        ),
        (
            "empty space name",
            Method::POST,
            "/v1/spaces",
            "/v1/spaces",
            Some(b"{\"name\":\"\"}"),
        ),
        (
            "reserved space name",
            Method::POST,
            "/v1/spaces",
            "/v1/spaces",
            Some(b"{\"name\":\"default\"}"),
        ),
        (
            "damaged token",
            Method::POST,
            "/v1/join",
            "/v1/join",
            Some(b"{\"token\":\"weft-invite-xyz\"}"),
        ),
        (
            "negative join timeout",
            Method::POST,
            "/v1/join",
            "/v1/join",
            Some(b"{\"token\":\"weft-invite-xyz\",\"timeout_secs\":-1}"),
        ),
        (
            "SQL write",
            Method::POST,
            "/v1/sql",
            "/v1/sql",
            Some(b"{\"sql\":\"DELETE FROM docs\"}"),
        ),
        (
            "bad role",
            Method::POST,
            invite_t,
            "/v1/spaces/default/invites",
            Some(b"{\"role\":\"boss\"}"),
        ),
        (
            "bad duration",
            Method::POST,
            invite_t,
            "/v1/spaces/default/invites",
            Some(b"{\"expires\":\"soon\"}"),
        ),
        (
            "endless expiry",
            Method::POST,
            invite_t,
            "/v1/spaces/default/invites",
            Some(b"{\"expires\":\"15250284452w\"}"),
        ),
        (
            "bad address",
            Method::POST,
            "/v1/peers",
            "/v1/peers",
            Some(b"{\"addr\":\"nowhere\"}"),
        ),
        (
            "unknown space",
            Method::GET,
            doc_t,
            "/v1/spaces/nope/collections/c/docs/x",
            None,
        ),
        (
            "missing doc",
            Method::GET,
            doc_t,
            "/v1/spaces/default/collections/c/docs/x",
            None,
        ),
        (
            "bad collection",
            Method::GET,
            doc_t,
            "/v1/spaces/default/collections/a%20b/docs/x",
            None,
        ),
        (
            "bad condition",
            Method::GET,
            list_t,
            "/v1/spaces/default/collections/c/docs?where=nonsense",
            None,
        ),
        (
            "bad limit",
            Method::GET,
            list_t,
            "/v1/spaces/default/collections/c/docs?limit=-3",
            None,
        ),
        (
            "unknown parameter",
            Method::GET,
            list_t,
            "/v1/spaces/default/collections/c/docs?sort=a",
            None,
        ),
    ];
    for (what, method, template, path, body) in cases {
        let (status, bytes) = a
            .client
            .raw(method.clone(), path, body.map(<[u8]>::to_vec), Some(&auth))
            .await
            .unwrap();
        let answer = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
        assert_api_error(status, &answer, what);
        let documented = &spec["paths"][template][method.as_str().to_lowercase()]["responses"];
        assert!(
            documented[status.as_str()].is_object(),
            "{what}: {method} {template} answered {status}, which its OpenAPI entry does not list"
        );
    }
    let (status, body) = call(&a, Method::GET, "/v1/nothing", None).await;
    assert_api_error(status, &body, "unknown endpoint");
    let (status, body) = call(
        &a,
        Method::GET,
        "/v1/spaces/nope/collections/c/docs/x",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Nothing bad was stored.
    let (_, rows) = call(
        &a,
        Method::POST,
        "/v1/sql",
        Some(json!({"sql": "SELECT count(*) AS n FROM documents"})),
    )
    .await;
    assert_eq!(rows[0]["n"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_a_peers_change_and_metrics_count_it() {
    let a = serve().await;
    let b = serve().await;
    let (team, invite) = team_with_invite(&a, json!({})).await;
    let (status, joined) = call(
        &b,
        Method::POST,
        "/v1/join",
        Some(json!({"token": invite["token"], "timeout_secs": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    // The join waited for A, so B is a writer (the invite's default) now.
    assert_eq!(joined, json!({"id": team, "state": "writer"}));

    let body = b
        .client
        .stream("/v1/events?space=team&collection=notes")
        .await
        .unwrap();
    let mut chunks = BodyDataStream::new(body);
    let (status, _) = call(
        &a,
        Method::PUT,
        "/v1/spaces/team/collections/notes/docs/n1",
        Some(json!({"t": "from a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut parser = SseParser::default();
    let event = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(chunk) = chunks.next().await {
            for (kind, data) in parser.push(&chunk.unwrap()) {
                if kind == "change" {
                    return serde_json::from_str::<Value>(&data).unwrap();
                }
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("B's event stream shows A's change");
    assert_eq!(
        (event["id"].as_str(), event["origin"].as_str()),
        (Some("n1"), Some("remote"))
    );
    assert_eq!(event["space"], team);

    let text = b.client.call_text("/metrics").await.unwrap();
    let metric = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    assert!(metric("weft_documents") >= 1.0, "{text}");
    assert!(metric("weft_sync_bytes_received_total") > 0.0, "{text}");
    assert!(metric("weft_peers_known") >= 1.0, "{text}");
    assert!(text.contains("# TYPE weft_sync_bytes_sent_total counter"));
}
