//! The live change feed as Server-Sent Events.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use weft_core::{FeedError, SubscribeFilter};

use super::{AppState, Failure};
use crate::model::{ApiError, Event, EventParams};
use crate::ops;

#[utoipa::path(
    get, path = "/v1/events", tag = "node", operation_id = "events",
    description = "Streams committed changes, local and remote, as Server-Sent Events: `event: change` with an Event as data; `event: lagged` with `{\"dropped\": N}` when this client fell behind (re-read state to catch up).",
    params(EventParams),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = Event),
        (status = 400, description = "Invalid space or collection name", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn events(
    State(s): State<AppState>,
    Query(p): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Failure> {
    if let Some(sp) = &p.space {
        super::input::space_ref(sp)?;
    }
    if let Some(c) = &p.collection {
        weft_core::key::check_name("collection", c).map_err(Failure::from)?;
    }
    let space = match p.space.as_deref() {
        Some(sp) => Some(ops::space_id(&s.node, Some(sp)).await?),
        None => None,
    };
    let sub = s.node.subscribe(SubscribeFilter {
        space,
        collection: p.collection,
    });
    let stream = futures::stream::unfold((sub, s.shutdown), |(mut sub, mut stop)| async move {
        let next = tokio::select! {
            next = sub.recv() => next,
            _ = stop.wait_for(|stopping| *stopping) => return None,
        };
        let event = match next {
            Ok(e) => SseEvent::default()
                .event("change")
                .json_data(ops::event(&e))
                .ok()?,
            Err(FeedError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(serde_json::json!({ "dropped": n }).to_string()),
            Err(FeedError::Closed) => return None,
        };
        Some((Ok(event), (sub, stop)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
