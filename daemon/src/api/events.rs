//! The change feed as Server-Sent Events: optionally a replay from the
//! store of what a client missed, then live changes, each with its sequence
//! number as the SSE `id`.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::watch;
use weft_core::{ChangeEvent, ErrorKind, FeedError, Node, SubscribeFilter, Subscription};

use super::{AppState, Failure};
use crate::model::{ApiError, Event, EventParams};
use crate::ops;

/// Changes read from the store per query while replaying: what a replay
/// holds in memory, however much it has to send.
pub const REPLAY_PAGE: u32 = 256;

/// The header an SSE client (a browser's `EventSource`) sends when it
/// reconnects, with the `id` of the last event it received.
const LAST_EVENT_ID: &str = "last-event-id";

#[utoipa::path(
    get, path = "/v1/events", tag = "node", operation_id = "events",
    description = "Streams committed changes, local and remote, as Server-Sent Events: `event: change` with an Event as data and its `seq` as `id`. With `since` (or a `Last-Event-ID` header, which wins) it first replays, from the store, the latest change of every document changed after that sequence number, then goes live without a gap or duplicate. A client that falls behind is caught up the same way. `event: ready` (data `{\"seq\": N}`, id N) marks where live events begin.",
    params(
        EventParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number (wins over `since`)"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = Event),
        (status = 400, description = "Invalid space or collection name, or a malformed or future sequence number", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Failure> {
    if let Some(sp) = &p.space {
        super::input::space_ref(sp)?;
    }
    if let Some(c) = &p.collection {
        weft_core::key::check_name("collection", c).map_err(Failure::from)?;
    }
    let since = match headers.get(LAST_EVENT_ID) {
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            // A browser sends no header before its first event id; an empty
            // one means the same.
            if text.is_empty() {
                p.since
            } else {
                Some(text.parse::<u64>().map_err(|_| {
                    Failure::new(
                        ErrorKind::InvalidInput,
                        "Last-Event-ID must be a change sequence number (an integer from 0)",
                    )
                })?)
            }
        }
        None => p.since,
    };
    let space = match p.space.as_deref() {
        Some(sp) => Some(ops::space_id(&s.node, Some(sp)).await?),
        None => None,
    };
    let filter = SubscribeFilter {
        space,
        collection: p.collection,
    };
    // Subscribed before the store is read: a change committed meanwhile is
    // in both, and the seq cursor drops the second copy.
    let sub = s.node.subscribe(filter.clone());
    let latest = s.node.last_seq().await?;
    let cursor = match since {
        Some(n) if n > latest => {
            return Err(Failure::new(
                ErrorKind::InvalidInput,
                format!(
                    "sequence number {n} is beyond this replica's latest change ({latest}): \
                     it came from another replica, or this one was replaced; start again with since=0"
                ),
            ));
        }
        Some(n) => n,
        None => latest,
    };
    let feed = Feed::new(
        s.node.clone(),
        filter,
        sub,
        s.shutdown,
        p.include_docs.unwrap_or(false),
        cursor,
        since.is_some(),
    );
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One client's stream: replaying from the store, or live.
struct Feed {
    node: Node,
    filter: SubscribeFilter,
    sub: Subscription,
    stop: watch::Receiver<bool>,
    include_docs: bool,
    /// The highest sequence number sent (or, before any, where the client
    /// starts): live events at or below it were replayed already.
    cursor: u64,
    /// Where the next store page starts, while replaying.
    replay: Option<u64>,
    /// Whether `ready` was sent.
    ready: bool,
    /// The store page being sent.
    page: VecDeque<ChangeEvent>,
}

impl Feed {
    /// A stream over `sub` (made before `cursor` was read) that first
    /// replays the store after `cursor` if `replay`.
    fn new(
        node: Node,
        filter: SubscribeFilter,
        sub: Subscription,
        stop: watch::Receiver<bool>,
        include_docs: bool,
        cursor: u64,
        replay: bool,
    ) -> Self {
        Self {
            node,
            filter,
            sub,
            stop,
            include_docs,
            cursor,
            replay: replay.then_some(cursor),
            ready: false,
            page: VecDeque::new(),
        }
    }

    /// The next SSE event, or `None` to end the stream (shutdown, or the
    /// replica failed).
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(e) = self.page.pop_front() {
                return self.send(e).await;
            }
            if let Some(since) = self.replay {
                match self
                    .node
                    .changes_since(&self.filter, since, REPLAY_PAGE)
                    .await
                {
                    Ok(page) => {
                        self.page.extend(page.events);
                        self.replay = page.next;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "replaying changes failed; ending the event stream");
                        return None;
                    }
                }
                continue;
            }
            if !self.ready {
                self.ready = true;
                return Some(
                    SseEvent::default()
                        .event("ready")
                        .id(self.cursor.to_string())
                        .data(serde_json::json!({ "seq": self.cursor }).to_string()),
                );
            }
            let next = tokio::select! {
                next = self.sub.recv() => next,
                _ = self.stop.wait_for(|stopping| *stopping) => return None,
            };
            match next {
                Ok(e) if e.seq <= self.cursor => {}
                Ok(e) => return self.send(e).await,
                // The store has every change the channel dropped: catch up
                // from it (collapsed per document), then go on live.
                Err(FeedError::Lagged(n)) => {
                    tracing::debug!(
                        dropped = n,
                        after = self.cursor,
                        "event stream lagged; replaying from the store"
                    );
                    self.replay = Some(self.cursor);
                }
                Err(FeedError::Closed) => return None,
            }
        }
    }

    /// Renders one change (with its document, if asked) and moves the cursor.
    async fn send(&mut self, e: ChangeEvent) -> Option<SseEvent> {
        self.cursor = self.cursor.max(e.seq);
        let mut event = ops::event(&e);
        if self.include_docs {
            // Read now: the latest version, which may be newer than `heads`.
            let doc = match self.node.get(&e.key).await {
                Ok(doc) => doc,
                Err(err) => {
                    tracing::warn!(key = %e.key, error = %err, "event document unreadable; sent as null");
                    None
                }
            };
            event.doc = Some(doc.unwrap_or(serde_json::Value::Null));
        }
        SseEvent::default()
            .event("change")
            .id(e.seq.to_string())
            .json_data(&event)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_core::Config;

    use super::*;

    /// What an SSE event says, as text.
    fn text(e: SseEvent) -> String {
        format!("{e:?}")
    }

    #[tokio::test]
    async fn a_change_both_replayed_and_received_live_is_sent_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(Config::with_data_dir(dir.path())).await.unwrap();
        let filter = SubscribeFilter {
            space: None,
            collection: Some("notes".into()),
        };
        // Subscribed before the change, replaying from before it: the
        // change is in the store and in the subscription.
        let sub = node.subscribe(filter.clone());
        let since = node.last_seq().await.unwrap();
        node.put(&node.key("notes", "a").unwrap(), json!({}))
            .await
            .unwrap();
        let (_stop, stopped) = watch::channel(false);
        let mut feed = Feed::new(node.clone(), filter, sub, stopped, false, since, true);
        let replayed = text(feed.next().await.unwrap());
        assert!(replayed.contains(r#"\"id\":\"a\""#), "{replayed}");
        assert!(text(feed.next().await.unwrap()).contains("ready"));
        node.put(&node.key("notes", "b").unwrap(), json!({}))
            .await
            .unwrap();
        let live = text(feed.next().await.unwrap());
        assert!(
            live.contains(r#"\"id\":\"b\""#),
            "a came once, then b: {live}"
        );
        node.close().await.unwrap();
    }
}
