//! `GET /v1/events` over a real socket: replay from a sequence number, then
//! live, with no gap or duplicate; `Last-Event-ID`; `include_docs`; a
//! stream that falls behind catching up from the store; bad numbers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Served, TOKEN, call, serve};
use futures::StreamExt;
use http_body_util::{BodyDataStream, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use weft_core::Write;

const WAIT: Duration = Duration::from_secs(60);

/// One SSE message.
#[derive(Debug)]
struct Message {
    event: String,
    id: Option<String>,
    data: Value,
}

/// An open event stream.
struct Stream {
    body: BodyDataStream<Incoming>,
    buf: String,
}

impl Stream {
    /// The next message (keep-alive comments skipped).
    async fn next(&mut self) -> Message {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let raw: String = self.buf.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) = (String::new(), None, String::new());
                    for line in raw.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().to_owned());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if !data.is_empty() {
                        let data = serde_json::from_str(&data).unwrap();
                        return Message { event, id, data };
                    }
                    continue;
                }
                let chunk = self.body.next().await.expect("stream open").unwrap();
                self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("a message in time")
    }

    /// The next `change`, checking its SSE id is its seq.
    async fn change(&mut self) -> Value {
        let m = self.next().await;
        assert_eq!(m.event, "change", "{m:?}");
        assert_eq!(m.id, Some(m.data["seq"].as_u64().unwrap().to_string()));
        m.data
    }

    /// The `ready` marker; returns its seq (also its id).
    async fn ready(&mut self) -> u64 {
        let m = self.next().await;
        assert_eq!(m.event, "ready", "{m:?}");
        let seq = m.data["seq"].as_u64().unwrap();
        assert_eq!(m.id, Some(seq.to_string()));
        seq
    }
}

/// Opens `path` with an optional `Last-Event-ID`; the status and, when
/// 200, the stream (else the error body).
async fn open(
    s: &Served,
    path: &str,
    last_event_id: Option<&str>,
) -> Result<Stream, (StatusCode, Value)> {
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", s.addr.to_string())
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let mut body = BodyDataStream::new(res.into_body());
    if status != StatusCode::OK {
        let mut bytes = Vec::new();
        while let Some(c) = body.next().await {
            bytes.extend_from_slice(&c.unwrap());
        }
        return Err((status, serde_json::from_slice(&bytes).unwrap()));
    }
    Ok(Stream {
        body,
        buf: String::new(),
    })
}

async fn put(s: &Served, collection: &str, id: &str, doc: Value) -> Value {
    let (status, written) = call(
        s,
        Method::PUT,
        &format!("/v1/spaces/default/collections/{collection}/docs/{id}"),
        Some(doc),
    )
    .await;
    assert!(status.is_success(), "{status} {written}");
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_replays_the_latest_change_of_each_missed_document_then_goes_live() {
    let s = serve().await;
    put(&s, "notes", "a", json!({"v": 1})).await;
    put(&s, "notes", "b", json!({"v": 1})).await;
    put(&s, "notes", "c", json!({"v": 1})).await;
    let a2 = put(&s, "notes", "a", json!({"v": 2})).await;
    put(&s, "tasks", "x", json!({})).await;

    let mut all = open(&s, "/v1/events?collection=notes&since=0", None)
        .await
        .unwrap();
    let (b, c, a) = (all.change().await, all.change().await, all.change().await);
    assert_eq!(
        [&b["id"], &c["id"], &a["id"]],
        [&json!("b"), &json!("c"), &json!("a")],
        "in seq order, a once at its latest change"
    );
    assert_eq!(a["heads"], a2["heads"]);
    assert!(b["seq"].as_u64() < c["seq"].as_u64() && c["seq"].as_u64() < a["seq"].as_u64());
    assert!(b.get("doc").is_none(), "no doc unless asked");
    assert_eq!(all.ready().await, a["seq"].as_u64().unwrap());

    // Live now; a second stream resumes after b.
    let mut after_b = open(
        &s,
        &format!("/v1/events?collection=notes&since={}", b["seq"]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(after_b.change().await["id"], "c");
    assert_eq!(after_b.change().await["id"], "a");
    after_b.ready().await;
    put(&s, "notes", "d", json!({})).await;
    let d = all.change().await;
    assert_eq!(d["id"], "d");
    // x (another collection) was numbered in between: seqs are the replica's.
    assert_eq!(d["seq"].as_u64().unwrap(), a["seq"].as_u64().unwrap() + 2);
    assert_eq!(after_b.change().await, d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_racing_writes_has_no_gap_and_no_duplicate() {
    let s = serve().await;
    const N: usize = 300;
    let node = s.node.clone();
    let (started, mut halfway) = tokio::sync::mpsc::channel::<()>(1);
    let writer = tokio::spawn(async move {
        for i in 0..N {
            let key = node.key("race", &format!("r{i:03}")).unwrap();
            node.put(&key, json!({"i": i})).await.unwrap();
            if i == N / 3 {
                started.send(()).await.unwrap();
            }
        }
    });
    halfway.recv().await.unwrap();
    let mut stream = open(&s, "/v1/events?collection=race&since=0", None)
        .await
        .unwrap();
    let (mut seen, mut last, mut ready) = (HashSet::new(), 0, false);
    while seen.len() < N {
        let m = stream.next().await;
        if m.event == "ready" {
            ready = true;
            continue;
        }
        let seq = m.data["seq"].as_u64().unwrap();
        assert!(seq > last, "seqs increase: {seq} after {last}");
        last = seq;
        let id = m.data["id"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone()), "{id} twice");
    }
    assert!(ready);
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_wins_over_since() {
    let s = serve().await;
    for id in ["a", "b", "c"] {
        put(&s, "notes", id, json!({})).await;
    }
    let mut all = open(&s, "/v1/events?collection=notes&since=0", None)
        .await
        .unwrap();
    let b = {
        all.change().await;
        all.change().await
    };
    let mut resumed = open(
        &s,
        "/v1/events?collection=notes&since=0",
        Some(&b["seq"].to_string()),
    )
    .await
    .unwrap();
    assert_eq!(resumed.change().await["id"], "c");
    resumed.ready().await;
    // An empty header (a browser's before its first id) is no header.
    let mut live = open(&s, "/v1/events?collection=notes", Some(""))
        .await
        .unwrap();
    let now = live.ready().await;
    put(&s, "notes", "d", json!({})).await;
    assert_eq!(live.change().await["seq"].as_u64(), Some(now + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_future_sequence_numbers_are_400() {
    let s = serve().await;
    put(&s, "notes", "a", json!({})).await;
    for (path, header) in [
        ("/v1/events?since=abc", None),
        ("/v1/events?since=-1", None),
        ("/v1/events?since=18446744073709551616", None),
        ("/v1/events?since=1000000", None),
        ("/v1/events?include_docs=maybe", None),
        ("/v1/events", Some("abc")),
        ("/v1/events?since=0", Some("-5")),
        ("/v1/events", Some("1000000")),
    ] {
        let Err((status, body)) = open(&s, path, header).await else {
            panic!("{path} {header:?} was accepted");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {header:?}: {body}");
        assert_eq!(body["error"], "invalid_input");
    }
    let Err((_, body)) = open(&s, "/v1/events?since=1000000", None).await else {
        unreachable!()
    };
    assert!(
        body["message"].as_str().unwrap().contains("beyond"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_docs_puts_the_document_or_null_in_each_event() {
    let s = serve().await;
    put(&s, "notes", "a", json!({"v": 1})).await;
    put(&s, "notes", "b", json!({"v": 1})).await;
    let (status, _) = call(
        &s,
        Method::DELETE,
        "/v1/spaces/default/collections/notes/docs/b",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut st = open(
        &s,
        "/v1/events?collection=notes&since=0&include_docs=true",
        None,
    )
    .await
    .unwrap();
    let a = st.change().await;
    assert_eq!((&a["id"], &a["doc"]), (&json!("a"), &json!({"v": 1})));
    let b = st.change().await;
    assert_eq!(
        (&b["id"], &b["deleted"], &b["doc"]),
        (&json!("b"), &json!(true), &Value::Null)
    );
    st.ready().await;
    put(&s, "notes", "c", json!({"v": 3})).await;
    assert_eq!(st.change().await["doc"], json!({"v": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_falls_behind_catches_up_from_the_store() {
    let s = serve().await;
    let mut st = open(&s, "/v1/events?collection=bulk", None).await.unwrap();
    let start = st.ready().await;
    // One commit of more events than the feed buffers per subscriber
    // (FEED_CAPACITY, 4096): published at once, faster than this stream
    // sends them, so it lags.
    const N: usize = 6000;
    let writes = (0..N)
        .map(|i| {
            Write::Put(
                s.node.key("bulk", &format!("k{i:04}")).unwrap(),
                json!({"i": i}),
            )
        })
        .collect();
    s.node.batch(writes).await.unwrap();
    let (mut seen, mut last) = (HashSet::new(), start);
    while seen.len() < N {
        let m = st.next().await;
        assert_eq!(m.event, "change", "no lagged event: {m:?}");
        let seq = m.data["seq"].as_u64().unwrap();
        assert!(seq > last, "seqs increase: {seq} after {last}");
        last = seq;
        assert!(seen.insert(m.data["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(last, start + N as u64);
}
