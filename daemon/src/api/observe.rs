//! Live queries as Server-Sent Events: a listing's result at once, then
//! again whenever a committed change alters it (`Node::observe`).

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;
use weft_core::MAX_PAGE;

use super::docs::list_params;
use super::input::{bad, space_ref};
use super::{AppState, Failure};
use crate::model::{ApiError, CollectionPath, Listed};
use crate::ops;

/// The query of a live listing: a listing's parameters without `after`
/// (a live result is one page, not a cursor).
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query string for the OpenAPI document; `list_params` reads it, since `where` repeats"
)]
pub struct ObserveParams {
    /// `FIELD=VALUE` (also `!=`, `<`, `<=`, `>`, `>=`), as in listings. May repeat.
    #[serde(default, rename = "where")]
    #[param(
        rename = "where",
        max_items = 32,
        pattern = r"^[^=!<>]*[^=!<>\s][^=!<>]*(!=|<|>|=)[\s\S]*$"
    )]
    pub filters: Vec<String>,
    /// A field to sort by (a dotted path).
    #[param(min_length = 1, max_length = 256)]
    pub order: Option<String>,
    /// Sort largest first.
    #[serde(default)]
    pub desc: bool,
    /// At most this many documents in each result (1 to 10,000; default 10,000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/v1/spaces/{space}/collections/{collection}/observe", tag = "documents",
    operation_id = "observe",
    description = "A live query as Server-Sent Events: `event: result` whose data is the listing `GET .../docs` gives for the same parameters (`[{\"id\", \"doc\"}]`, in query order), sent at once and again whenever a committed change, local or from a peer, alters it. Changes to other collections never re-run it; a lone change is answered at once and a burst with at most one result per 20 ms. Each result holds at most `limit` documents (default and at most 10,000). If the query can no longer run, `event: error` with `{\"error\", \"message\"}` ends the stream.",
    params(CollectionPath, ObserveParams),
    responses(
        (status = 200, description = "An event stream of results", content_type = "text/event-stream", body = Vec<Listed>),
        (status = 400, description = "Invalid space, collection, condition, field or limit; or `after`", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
        (status = 404, description = "Unknown space", body = ApiError),
    )
)]
pub async fn observe(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Failure> {
    space_ref(&p.space)?;
    let params = list_params(pairs)?;
    if params.after.is_some() {
        return Err(bad(
            "a live query is one result, not pages: `after` is for GET .../docs",
        ));
    }
    let limit = params.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let query = ops::list_query(&s.node, Some(&p.space), &p.collection, &params)
        .await?
        .limit(limit);
    let observation = s.node.observe(query).await?;
    let stream = futures::stream::unfold(Some((observation, s.shutdown)), |state| async move {
        let (mut observation, mut stop) = state?;
        let next = tokio::select! {
            next = observation.next() => next,
            _ = stop.wait_for(|stopping| *stopping) => return None,
        };
        match next {
            None => None,
            Some(Ok(rows)) => {
                let listed: Vec<Listed> = rows
                    .into_iter()
                    .map(|r| Listed {
                        id: r.id,
                        doc: r.json,
                    })
                    .collect();
                let event = SseEvent::default().event("result").json_data(listed).ok()?;
                Some((Ok(event), Some((observation, stop))))
            }
            Some(Err(e)) => {
                let event = SseEvent::default().event("error").data(
                    serde_json::json!({ "error": e.kind().code(), "message": e.to_string() })
                        .to_string(),
                );
                // The observer has ended: this is the stream's last event.
                Some((Ok(event), None))
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
