//! `GET .../observe`: a live query over Server-Sent Events sends the
//! listing at once, again after a change that alters it, nothing for
//! changes elsewhere, and refuses what a listing would refuse.

mod common;

use std::time::Duration;

use common::{Served, call, serve};
use futures::StreamExt;
use http_body_util::BodyDataStream;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use weft_daemon::output::SseParser;

/// Long enough for a wrongly sent result to have arrived.
const QUIET: Duration = Duration::from_millis(400);

struct Results {
    chunks: BodyDataStream<axum::body::Body>,
    parser: SseParser,
    pending: Vec<(String, String)>,
}

impl Results {
    async fn open(s: &Served, query: &str) -> Results {
        let path = format!("/v1/spaces/default/collections/tasks/observe{query}");
        let body = s.client.stream(&path).await.unwrap();
        Results {
            chunks: BodyDataStream::new(body),
            parser: SseParser::default(),
            pending: Vec::new(),
        }
    }

    /// The next result's ids, or `None` if nothing came within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Vec<String>> {
        loop {
            if !self.pending.is_empty() {
                let (kind, data) = self.pending.remove(0);
                assert_eq!(kind, "result", "{data}");
                let rows: Vec<Value> = serde_json::from_str(&data).unwrap();
                return Some(
                    rows.iter()
                        .map(|r| r["id"].as_str().unwrap().to_owned())
                        .collect(),
                );
            }
            let chunk = tokio::time::timeout(wait, self.chunks.next())
                .await
                .ok()??;
            let events = self.parser.push(&chunk.unwrap());
            self.pending
                .extend(events.into_iter().filter(|(k, _)| !k.is_empty()));
        }
    }
}

async fn put(s: &Served, collection: &str, id: &str, doc: Value) {
    let path = format!("/v1/spaces/default/collections/{collection}/docs/{id}");
    let (status, body) = call(s, Method::PUT, &path, Some(doc)).await;
    assert!(status.is_success(), "{status} {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_query_sends_its_result_then_each_change_to_it() {
    let s = serve().await;
    put(&s, "tasks", "b", json!({"done": false, "n": 2})).await;
    put(&s, "tasks", "a", json!({"done": true, "n": 1})).await;
    let mut open = Results::open(&s, "?where=done%3Dfalse&order=n").await;
    let wait = Duration::from_secs(10);
    assert_eq!(open.next(wait).await.unwrap(), ["b"]);

    put(&s, "tasks", "c", json!({"done": false, "n": 0})).await;
    assert_eq!(open.next(wait).await.unwrap(), ["c", "b"]);
    // Another collection, or a change that leaves the result as it was:
    // nothing is sent.
    put(&s, "notes", "x", json!({"done": false})).await;
    put(&s, "tasks", "a", json!({"done": true, "n": 5})).await;
    assert_eq!(open.next(QUIET).await, None);
    // Leaving the result is a change.
    let path = "/v1/spaces/default/collections/tasks/docs/c";
    assert!(call(&s, Method::DELETE, path, None).await.0.is_success());
    assert_eq!(open.next(wait).await.unwrap(), ["b"]);

    // The limit bounds each result.
    let mut first = Results::open(&s, "?order=n&limit=1").await;
    assert_eq!(first.next(wait).await.unwrap(), ["b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_query_refuses_what_a_listing_refuses() {
    let s = serve().await;
    for (query, status) in [
        ("?after=a", StatusCode::BAD_REQUEST),
        ("?where=nonsense", StatusCode::BAD_REQUEST),
        ("?limit=0", StatusCode::BAD_REQUEST),
        ("?limit=10001", StatusCode::BAD_REQUEST),
        ("?sort=n", StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/v1/spaces/default/collections/tasks/observe{query}");
        let (got, body) = call(&s, Method::GET, &path, None).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body["error"], "invalid_input", "{query}: {body}");
    }
    let (got, _) = call(
        &s,
        Method::GET,
        "/v1/spaces/nope/collections/tasks/observe",
        None,
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
}
