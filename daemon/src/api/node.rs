//! Identity, status, peers, metrics and the API's own description.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::input::JsonObject;
use super::{AppState, Failure};
use crate::model::{ApiError, ConnectRequest, Connected, Health, Identity, Peer, Status};
use crate::ops;

#[utoipa::path(
    get, path = "/v1/health", tag = "node", operation_id = "health",
    security(()),
    responses(
        (status = 200, description = "The daemon answers; no token needed", body = Health),
    )
)]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

#[utoipa::path(
    get, path = "/v1/id", tag = "node", operation_id = "identity",
    responses(
        (status = 200, description = "Node id and dialable addresses", body = Identity),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn identity(State(s): State<AppState>) -> Json<Identity> {
    Json(ops::identity(&s.node).await)
}

#[utoipa::path(
    get, path = "/v1/status", tag = "node", operation_id = "status",
    responses(
        (status = 200, description = "Version, API address, data dir, uptime, documents, peers, sync progress and traffic", body = Status),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn status(State(s): State<AppState>) -> Result<Json<Status>, Failure> {
    Ok(Json(Status {
        api: s.api_url.as_deref().map(str::to_owned),
        uptime_secs: s.started.elapsed().as_secs(),
        ..ops::status(&s.node).await?
    }))
}

#[utoipa::path(
    get, path = "/v1/peers", tag = "node", operation_id = "list_peers",
    responses(
        (status = 200, description = "Known peers", body = Vec<Peer>),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn peers(State(s): State<AppState>) -> Result<Json<Vec<Peer>>, Failure> {
    Ok(Json(ops::peers(&s.node).await?))
}

/// Longest address dialed (the schema's `maxLength`).
const MAX_ADDR_CHARS: usize = 1024;

#[utoipa::path(
    post, path = "/v1/peers", tag = "node", operation_id = "connect",
    description = "Dials a peer and waits until connected; sync then starts by itself.",
    request_body = ConnectRequest,
    responses(
        (status = 200, description = "Connected", body = Connected),
        (status = 400, description = "Not a JSON object, or not a multiaddr ending in /p2p/<node id>", body = ApiError),
        (status = 502, description = "The peer could not be reached", body = ApiError),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn connect(
    State(s): State<AppState>,
    JsonObject(req): JsonObject<ConnectRequest>,
) -> Result<Json<Connected>, Failure> {
    // The schema's bounds: a multiaddr, so it starts with `/`.
    if !req.addr.starts_with('/') || req.addr.chars().count() > MAX_ADDR_CHARS {
        return Err(super::input::bad(format!(
            "addr must be a multiaddr (starting with `/`) of at most {MAX_ADDR_CHARS} characters"
        )));
    }
    Ok(Json(ops::connect(&s.node, &req.addr).await?))
}

#[utoipa::path(
    get, path = "/metrics", tag = "node", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, Failure> {
    let status = ops::status(&s.node).await?;
    let known = s.node.peers().await.map_err(Failure::from)?.len();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&status, known),
    ))
}

/// The Prometheus text format: `# HELP`, `# TYPE`, then `name value`.
pub fn render_metrics(s: &Status, peers_known: usize) -> String {
    let t = &s.traffic;
    let rows: [(&str, &str, &str, u64); 10] = [
        (
            "weft_documents",
            "gauge",
            "Live documents in the replica.",
            s.documents,
        ),
        (
            "weft_spaces",
            "gauge",
            "Spaces this device is in.",
            s.spaces as u64,
        ),
        (
            "weft_peers_connected",
            "gauge",
            "Peers connected now.",
            s.peers_connected as u64,
        ),
        (
            "weft_peers_known",
            "gauge",
            "Peers this node knows of.",
            peers_known as u64,
        ),
        (
            "weft_sync_pending_documents",
            "gauge",
            "Documents still being exchanged with peers.",
            s.sync.pending as u64,
        ),
        (
            "weft_sync_idle",
            "gauge",
            "1 when every sync session is idle.",
            u64::from(s.sync.idle),
        ),
        (
            "weft_sync_bytes_sent_total",
            "counter",
            "Sync bytes written to peers.",
            t.bytes_sent,
        ),
        (
            "weft_sync_bytes_received_total",
            "counter",
            "Sync bytes read from peers.",
            t.bytes_received,
        ),
        (
            "weft_sync_frames_sent_total",
            "counter",
            "Sync frames written to peers.",
            t.frames_sent,
        ),
        (
            "weft_sync_frames_received_total",
            "counter",
            "Sync frames read from peers.",
            t.frames_received,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "node", operation_id = "openapi",
    responses(
        (status = 200, description = "This API as an OpenAPI 3 document", body = Object),
        (status = 401, description = "Missing or wrong API token", body = ApiError),
    )
)]
pub async fn openapi(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.openapi.get().cloned().unwrap_or_default(),
    )
}
