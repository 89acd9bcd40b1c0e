//! The local HTTP API: axum routes under `/v1/`, bearer-token auth, JSON
//! errors, Server-Sent Events and Prometheus metrics. Routes and the OpenAPI
//! document come from the same handler annotations (utoipa-axum), so the
//! document cannot list a route that does not exist or miss one that does.

mod batch;
mod collections;
mod conditional;
mod docs;
mod error;
mod events;
mod guard;
mod input;
mod maintenance;
mod node;
mod observe;
mod spaces;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_core::{ErrorKind, Node};

pub use error::{Failure, kind_for_status, status};
pub use guard::{BadOrigin, Guard, MAX_HOST_LEN, normalize_origin};

use crate::automerge::{Hub, Landing};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub(crate) node: Node,
    token: Arc<str>,
    /// Flips to `true` when the daemon stops, ending live event streams so
    /// graceful shutdown does not wait on them forever.
    pub(crate) shutdown: watch::Receiver<bool>,
    openapi: Arc<OnceLock<String>>,
    /// The automerge-repo clients' hub; `None` in process.
    pub(crate) automerge: Option<Arc<Hub>>,
    guard: Arc<Guard>,
    /// How long `POST /v1/join` waits for the inviter unless the request
    /// says (config `status_timeout`, else 60 s).
    pub(crate) join_timeout: Duration,
    /// When this API (and so its node) started, for the status's uptime.
    pub(crate) started: Instant,
    /// The base URL clients reach this API at; `None` in process.
    pub(crate) api_url: Option<Arc<str>>,
}

/// How long joins wait for their inviter when neither the request nor the
/// config says, as `weft status --wait-synced` waits for sync.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weft local API",
        description = "The API of a `weft daemon`: documents, queries, spaces, peers and live changes of the local replica. Every request needs `Authorization: Bearer <token>`; the token is in the file `api-token` in the data dir.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "documents", description = "Documents, listings, history and read-only SQL"),
        (name = "spaces", description = "Spaces, invites and members"),
        (name = "node", description = "Identity, status, peers, live events and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The router, with automerge-repo documents landing in the default space,
/// collection `automerge`, and browsers allowed only from loopback origins.
pub fn router(node: Node, token: String, shutdown: watch::Receiver<bool>) -> Router {
    let landing = Landing {
        space: node.default_space().to_owned(),
        collection: DEFAULT_LANDING_COLLECTION.to_owned(),
    };
    router_with(
        node,
        token,
        shutdown,
        landing,
        Guard::default(),
        DEFAULT_JOIN_TIMEOUT,
    )
}

/// The collection automerge-repo documents land in unless configured.
pub const DEFAULT_LANDING_COLLECTION: &str = "automerge";

/// The router: the OpenAPI-described routes, plus the automerge-repo
/// WebSocket (which OpenAPI cannot describe), behind `guard`; joins wait
/// `join_timeout` for their inviter unless a request says otherwise.
pub fn router_with(
    node: Node,
    token: String,
    shutdown: watch::Receiver<bool>,
    landing: Landing,
    guard: Guard,
    join_timeout: Duration,
) -> Router {
    router_at(node, token, shutdown, landing, guard, join_timeout, None)
}

/// [`router_with`], for a daemon serving at `api_url`, which its status
/// reports.
pub fn router_at(
    node: Node,
    token: String,
    shutdown: watch::Receiver<bool>,
    landing: Landing,
    guard: Guard,
    join_timeout: Duration,
    api_url: Option<String>,
) -> Router {
    let state = AppState {
        automerge: Some(Hub::new(node.clone(), landing)),
        node,
        token: token.into(),
        shutdown,
        openapi: Arc::new(OnceLock::new()),
        guard: Arc::new(guard),
        join_timeout,
        started: Instant::now(),
        api_url: api_url.map(Into::into),
    };
    assemble(state)
}

/// The same API for the CLI to call in process when no daemon runs, so a
/// command gives the same answer with or without one. Requests need
/// `token` as over HTTP (the caller picks it; nothing outside the process
/// can reach this router). There is no automerge-repo endpoint: its hub
/// indexes the whole replica for WebSocket clients a one-shot command
/// never has.
pub fn in_process(node: Node, token: String, shutdown: watch::Receiver<bool>) -> Router {
    let state = AppState {
        automerge: None,
        node,
        token: token.into(),
        shutdown,
        openapi: Arc::new(OnceLock::new()),
        guard: Arc::new(Guard::default()),
        join_timeout: DEFAULT_JOIN_TIMEOUT,
        started: Instant::now(),
        api_url: None,
    };
    assemble(state)
}

/// The routes behind the API's layers: origin guard, token check, JSON errors.
fn assemble(state: AppState) -> Router {
    let (mut router, _) = routes().split_for_parts();
    let _ = state.openapi.set(openapi_json());
    // A router serving sockets (the daemon's) has the automerge-repo
    // endpoint and logs replica failures; in process, they are the
    // command's error.
    let serving = state.automerge.is_some();
    if serving {
        router = router
            .route(
                AUTOMERGE_PATH,
                axum::routing::get(crate::automerge::upgrade),
            )
            .layer(middleware::map_response(error::log_failures));
    }
    router
        .fallback(|| async {
            Failure::new(
                ErrorKind::NotFound,
                "no such endpoint; see GET /v1/openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        // Outside the token check, so a foreign page learns nothing about it.
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(middleware::map_response(json_errors))
        .with_state(state)
}

/// Every route with its OpenAPI operation.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            docs::get_doc,
            docs::put_doc,
            docs::patch_doc,
            docs::delete_doc
        ))
        .routes(routes!(docs::list_docs))
        .routes(routes!(collections::collections))
        .routes(routes!(docs::history))
        .routes(routes!(docs::url))
        .routes(routes!(docs::sql))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(batch::batch))
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::batch::MAX_BATCH_BODY,
                ))
                // Outside the handler, so the wait comes before the body is read.
                .layer(middleware::from_fn(batch::in_turn)),
        )
        .routes(routes!(batch::export))
        .routes(routes!(spaces::list, spaces::create))
        .routes(routes!(spaces::invite))
        .routes(routes!(spaces::join))
        .routes(routes!(spaces::revoke))
        .routes(routes!(maintenance::members))
        .routes(routes!(maintenance::leave))
        .routes(routes!(maintenance::create_index))
        .routes(routes!(maintenance::backup))
        .routes(routes!(maintenance::check))
        .routes(routes!(node::health))
        .routes(routes!(node::identity))
        .routes(routes!(node::status))
        .routes(routes!(node::peers, node::connect))
        .routes(routes!(events::events))
        .routes(routes!(observe::observe))
        .routes(routes!(node::metrics))
        .routes(routes!(node::openapi))
}

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub fn openapi_json() -> String {
    let (_, api) = routes().split_for_parts();
    let mut doc = serde_json::to_value(&api).expect("the OpenAPI document serializes");
    crate::patterns::apply(&mut doc);
    serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
}

/// The one endpoint that needs no token.
pub const HEALTH_PATH: &str = "/v1/health";

/// The automerge-repo WebSocket endpoint.
pub const AUTOMERGE_PATH: &str = "/v1/automerge";

async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The stock automerge-repo WebSocket client cannot set headers, so its
    // endpoint takes the token as a query parameter instead.
    // Liveness for service managers and load checks: says nothing else.
    if req.uri().path() == HEALTH_PATH {
        return next.run(req).await;
    }
    if req.uri().path() == AUTOMERGE_PATH {
        let token = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
        return match token {
            Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => next.run(req).await,
            Some(_) => Failure::new(ErrorKind::Unauthorized, "wrong API token in `token`").into_response(),
            None => Failure::new(ErrorKind::Unauthorized, "missing `?token=<api token>`; the token is in the file `api-token` in the data dir").into_response(),
        };
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => next.run(req).await,
        Some(_) => Failure::new(ErrorKind::Unauthorized, "wrong API token; read it from the file `api-token` in the data dir").into_response(),
        None => Failure::new(ErrorKind::Unauthorized, "missing `Authorization: Bearer <token>`; the token is in the file `api-token` in the data dir").into_response(),
    }
}

/// Compares without an early exit, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `subtle` compares lengths first (not secret) and then every byte.
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Turns axum's plain-text rejections (bad path, query or body) into the
/// API's JSON error shape, so every error a client sees is `{error, message}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    // axum answers 415 (no JSON content type) and 422 (JSON of the wrong
    // shape); to clients both are a bad request, as documented.
    let status = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            StatusCode::BAD_REQUEST
        }
        s => s,
    };
    let mut out = Failure::with_status(status, kind_for_status(status), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn openapi_lists_every_operation_with_a_security_scheme() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/v1/spaces/{space}/collections/{collection}/docs/{id}"));
        assert!(paths.contains_key("/metrics"));
        let ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(ops, 30, "{}", serde_json::to_string_pretty(paths).unwrap());
        // Only the health check opts out of the token.
        let open: Vec<_> = paths
            .iter()
            .filter(|(_, item)| item["get"]["security"] == serde_json::json!([{}]))
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(open, [HEALTH_PATH]);
    }
}
