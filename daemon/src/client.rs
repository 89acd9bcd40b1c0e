//! The CLI's one client of the API: builds each command's request and
//! reads the answer, over a [`Transport`]: a running daemon's HTTP API, or
//! the same router in process over the replica opened here. Both paths run
//! the same handlers, so they give the same answers by construction.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use weft_core::{Config, Error, ErrorKind, Node};

use crate::batch::{BatchOp, BatchRequest, Batched};
use crate::error::CliError;
use crate::files::new_token;
use crate::model::{
    ApiError, AutomergeUrl, Change, Connected, Identity, Invite, InviteRequest, JoinRequest,
    Joined, ListParams, Listed, Peer, Space, SpaceRef, Status, Written,
};
use crate::transport::{Http, InProcess, Transport};

/// How long a command waits for a replica another process holds briefly
/// (another embedded command, or a daemon still starting).
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or query value (ids may hold `/`, `?`, spaces).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

type R<T> = Result<T, CliError>;

/// The API, wherever it runs.
#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    token: String,
}

impl std::fmt::Debug for Client {
    // The token stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("embedded", &self.is_embedded())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The daemon for `data_dir` if one runs, else the replica itself.
    pub async fn open(data_dir: &Path) -> R<Client> {
        let started = Instant::now();
        loop {
            if let Some(client) = Client::discover(data_dir).await? {
                return Ok(client);
            }
            match Node::open(Config::with_data_dir(data_dir)).await {
                Ok(node) => return Client::in_process(node),
                Err(Error::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The daemon serving `data_dir`, if one answers.
    pub async fn discover(data_dir: &Path) -> R<Option<Client>> {
        Ok(Http::discover(data_dir)
            .await?
            .map(|(http, token)| Client::over(Arc::new(http), token)))
    }

    /// A client for the API at `addr` with `token`.
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Self {
        Client::over(Arc::new(Http::new(addr)), token.into())
    }

    /// The API in process over `node`, under a token made up for it: the
    /// router checks it as over HTTP, so the API's checks stay in one place.
    pub fn in_process(node: Node) -> R<Client> {
        let token = new_token()?;
        Ok(Client::over(
            Arc::new(InProcess::new(node, token.clone())),
            token,
        ))
    }

    fn over(transport: Arc<dyn Transport>, token: String) -> Self {
        Self { transport, token }
    }

    /// True when no daemon runs and the replica is opened here.
    pub fn is_embedded(&self) -> bool {
        self.transport.embedded()
    }

    /// Flushes and releases an embedded replica.
    pub async fn close(self) -> R<()> {
        self.transport.close().await
    }

    /// Sends raw bytes with an explicit `Authorization` value (or none), for
    /// tools and tests that need to send what the typed calls never would.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authorization: Option<&str>,
    ) -> R<(StatusCode, Bytes)> {
        let response = self
            .request(method, path, body.map(Bytes::from), authorization)
            .await?;
        let status = response.status();
        Ok((status, collect(response.into_body()).await?))
    }

    /// Sends raw bytes with the client's token and these extra headers;
    /// answers the status, headers and body as they came (for tests and
    /// tools that look at HTTP itself: validators, links).
    pub async fn raw_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> R<(StatusCode, hyper::HeaderMap, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::AUTHORIZATION, self.bearer());
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.map(Bytes::from).unwrap_or_default()))
            .map_err(|e| {
                CliError::new(
                    ErrorKind::InvalidInput,
                    format!("cannot build the request: {e}"),
                )
            })?;
        let response = self.transport.send(request).await?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        Ok((status, parts.headers, collect(body).await?))
    }

    /// Sends a request and decodes a JSON answer (or the API's error).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> R<T> {
        let body =
            body.map(|b| Bytes::from(serde_json::to_vec(b).expect("request bodies serialize")));
        let bytes = self.answer(method, path, body).await?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(ErrorKind::Internal, format!("the daemon sent an answer this CLI cannot read ({e}); are both the same version?"))
        })
    }

    /// Sends a request and returns the raw body (for text endpoints).
    pub async fn call_text(&self, path: &str) -> R<String> {
        let bytes = self.answer(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Opens a streaming GET (Server-Sent Events).
    pub async fn stream(&self, path: &str) -> R<Body> {
        Ok(self.download(path).await?.into_body())
    }

    /// A successful GET's response, its body not read yet (a download).
    pub async fn download(&self, path: &str) -> R<hyper::Response<Body>> {
        let response = self
            .request(Method::GET, path, None, Some(&self.bearer()))
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let bytes = collect(response.into_body()).await?;
            return Err(api_error(status, &bytes));
        }
        Ok(response)
    }

    /// A successful answer's body, or the API's error.
    async fn answer(&self, method: Method, path: &str, body: Option<Bytes>) -> R<Bytes> {
        Ok(self.answer_with_headers(method, path, body).await?.1)
    }

    /// A successful answer's headers and body, or the API's error.
    async fn answer_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> R<(hyper::HeaderMap, Bytes)> {
        let response = self
            .request(method, path, body, Some(&self.bearer()))
            .await?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        let bytes = collect(body).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok((parts.headers, bytes))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        authorization: Option<&str>,
    ) -> R<hyper::Response<Body>> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(auth) = authorization {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| {
                CliError::new(
                    ErrorKind::InvalidInput,
                    format!("cannot build the request: {e}"),
                )
            })?;
        self.transport.send(request).await
    }

    pub async fn identity(&self) -> R<Identity> {
        self.call(Method::GET, "/v1/id", None::<&()>).await
    }

    pub async fn space_create(&self, name: &str) -> R<SpaceRef> {
        let body = json!({ "name": name });
        self.call(Method::POST, "/v1/spaces", Some(&body)).await
    }

    pub async fn space_list(&self) -> R<Vec<Space>> {
        self.call(Method::GET, "/v1/spaces", None::<&()>).await
    }

    pub async fn space_invite(&self, space: Option<&str>, req: &InviteRequest) -> R<Invite> {
        let path = format!("/v1/spaces/{}/invites", space_seg(space));
        self.call(Method::POST, &path, Some(req)).await
    }

    /// Joins; with `wait`, waits up to it for the inviter's answer (a
    /// refusal is an error); without, answers at once with the state
    /// recorded so far.
    pub async fn space_join(&self, token: &str, wait: Option<Duration>) -> R<Joined> {
        let body = JoinRequest {
            token: token.to_owned(),
            wait: Some(wait.is_some()),
            timeout_secs: wait.map(|w| w.as_secs_f64()),
        };
        self.call(Method::POST, "/v1/join", Some(&body)).await
    }

    pub async fn space_revoke(&self, space: Option<&str>, node: &str) -> R<()> {
        let path = format!("/v1/spaces/{}/members/{}", space_seg(space), seg(node));
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    pub async fn put(&self, space: Option<&str>, c: &str, id: &str, doc: Value) -> R<Written> {
        let path = doc_path(space, c, id)?;
        self.call(Method::PUT, &path, Some(&doc)).await
    }

    pub async fn patch(&self, space: Option<&str>, c: &str, id: &str, doc: Value) -> R<Written> {
        let path = doc_path(space, c, id)?;
        self.call(Method::PATCH, &path, Some(&doc)).await
    }

    pub async fn delete(&self, space: Option<&str>, c: &str, id: &str) -> R<Written> {
        let path = doc_path(space, c, id)?;
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    pub async fn get(&self, space: Option<&str>, c: &str, id: &str) -> R<Value> {
        let path = doc_path(space, c, id)?;
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The collections with live documents in a space, in name order.
    pub async fn collections(&self, space: Option<&str>) -> R<Vec<String>> {
        let path = format!("/v1/spaces/{}/collections", space_seg(space));
        self.call(Method::GET, &path, None::<&()>).await
    }

    pub async fn history(&self, space: Option<&str>, c: &str, id: &str) -> R<Vec<Change>> {
        let path = format!("{}/history", doc_path(space, c, id)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    pub async fn url(&self, space: Option<&str>, c: &str, id: &str) -> R<AutomergeUrl> {
        let path = format!("{}/url", doc_path(space, c, id)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Every matching document (at most `p.limit`), following the
    /// listing's `next` links page by page.
    pub async fn list(&self, space: Option<&str>, c: &str, p: &ListParams) -> R<Vec<Listed>> {
        weft_core::key::check_name("collection", c)?;
        if p.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut page = p.clone();
        page.limit = p.limit.map(|l| l.min(weft_core::MAX_PAGE));
        let mut path = list_url(space.unwrap_or("default"), c, &page, None);
        let mut out: Vec<Listed> = Vec::new();
        loop {
            let (headers, bytes) = self.answer_with_headers(Method::GET, &path, None).await?;
            let items: Vec<Listed> = serde_json::from_slice(&bytes).map_err(|e| {
                CliError::new(ErrorKind::Internal, format!("the daemon sent a listing this CLI cannot read ({e}); are both the same version?"))
            })?;
            out.extend(items);
            if let Some(total) = p.limit
                && out.len() >= total as usize
            {
                out.truncate(total as usize);
                break;
            }
            match next_link(&headers) {
                Some(next) => path = next,
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn sql(&self, statement: &str) -> R<Vec<Map<String, Value>>> {
        let body = json!({ "sql": statement });
        self.call(Method::POST, "/v1/sql", Some(&body)).await
    }

    pub async fn peers(&self) -> R<Vec<Peer>> {
        self.call(Method::GET, "/v1/peers", None::<&()>).await
    }

    /// Dials a peer; only a daemon has a network to dial on.
    pub async fn connect(&self, addr: &str) -> R<Connected> {
        self.needs_daemon("weft connect")?;
        let body = json!({ "addr": addr });
        self.call(Method::POST, "/v1/peers", Some(&body)).await
    }

    pub async fn status(&self) -> R<Status> {
        self.call(Method::GET, "/v1/status", None::<&()>).await
    }

    /// The change feed; only a daemon has one worth watching, since an
    /// embedded replica sees no changes but its own. With `since`, the
    /// stream first replays what changed after that sequence number.
    pub async fn events(
        &self,
        space: Option<&str>,
        collection: Option<&str>,
        since: Option<u64>,
        include_docs: bool,
    ) -> R<Body> {
        self.needs_daemon("weft watch")?;
        let mut query = Vec::new();
        if let Some(s) = space {
            query.push(format!("space={}", seg(s)));
        }
        if let Some(col) = collection {
            query.push(format!("collection={}", seg(col)));
        }
        if let Some(n) = since {
            query.push(format!("since={n}"));
        }
        if include_docs {
            query.push("include_docs=true".to_owned());
        }
        self.stream(&format!("/v1/events?{}", query.join("&")))
            .await
    }

    /// Runs a batch of writes in one transaction. A failure comes with the
    /// failing operation's position, when the API named one.
    pub async fn batch(
        &self,
        space: Option<&str>,
        ops: Vec<BatchOp>,
    ) -> Result<Batched, (CliError, Option<usize>)> {
        let path = format!("/v1/spaces/{}/batch", space_seg(space));
        let body = serde_json::to_vec(&BatchRequest { ops }).expect("request bodies serialize");
        let response = self
            .request(
                Method::POST,
                &path,
                Some(Bytes::from(body)),
                Some(&self.bearer()),
            )
            .await
            .map_err(|e| (e, None))?;
        let status = response.status();
        let bytes = collect(response.into_body()).await.map_err(|e| (e, None))?;
        if !status.is_success() {
            let index = serde_json::from_slice::<ApiError>(&bytes)
                .ok()
                .and_then(|e| e.index);
            return Err((api_error(status, &bytes), index));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            (
                CliError::new(
                    ErrorKind::Internal,
                    format!("the daemon sent an answer this CLI cannot read ({e}); are both the same version?"),
                ),
                None,
            )
        })
    }

    /// A space's documents as an NDJSON stream (one collection, or all).
    pub async fn export(&self, space: Option<&str>, collection: Option<&str>) -> R<Body> {
        let mut path = format!("/v1/spaces/{}/export", space_seg(space));
        if let Some(c) = collection {
            path.push_str(&format!("?collection={}", seg(c)));
        }
        self.stream(&path).await
    }

    fn needs_daemon(&self, what: &str) -> R<()> {
        if !self.is_embedded() {
            return Ok(());
        }
        Err(CliError::new(
            ErrorKind::Closed,
            format!(
                "{what} needs a running daemon for this data dir; start one with `weft daemon`"
            ),
        ))
    }
}

async fn collect(body: Body) -> R<Bytes> {
    body.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        CliError::new(
            ErrorKind::Closed,
            format!("the daemon's answer was cut off ({e}); retry"),
        )
    })
}

fn api_error(status: StatusCode, bytes: &[u8]) -> CliError {
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(e) => e.into(),
        Err(_) => CliError::new(
            ErrorKind::Internal,
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(bytes)
            ),
        ),
    }
}

/// A listing's URL, percent-encoded: what the CLI asks first, and what the
/// API's `next` links point to.
pub fn list_url(space: &str, collection: &str, p: &ListParams, after: Option<&str>) -> String {
    let mut query: Vec<String> = p
        .filters
        .iter()
        .map(|f| format!("where={}", seg(f)))
        .collect();
    if let Some(o) = &p.order {
        query.push(format!("order={}", seg(o)));
    }
    if p.desc {
        query.push("desc=true".into());
    }
    if let Some(l) = p.limit {
        query.push(format!("limit={l}"));
    }
    if let Some(a) = after.or(p.after.as_deref()) {
        query.push(format!("after={}", seg(a)));
    }
    format!(
        "/v1/spaces/{}/collections/{}/docs?{}",
        seg(space),
        seg(collection),
        query.join("&")
    )
}

/// The target of a `Link: <URL>; rel="next"` header, if it is one of this
/// API's paths (never another host).
fn next_link(headers: &hyper::HeaderMap) -> Option<String> {
    let link = headers.get(hyper::header::LINK)?.to_str().ok()?;
    let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
    let next = params
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
    (next && target.starts_with("/v1/")).then(|| target.to_owned())
}

fn space_seg(space: Option<&str>) -> String {
    seg(space.unwrap_or("default"))
}

/// A document's path. Names and ids are checked here, before a request is
/// built: an empty path segment would reach no route at all.
fn doc_path(space: Option<&str>, collection: &str, id: &str) -> R<String> {
    weft_core::DocKey::new("default", collection, id)?;
    Ok(format!(
        "/v1/spaces/{}/collections/{}/docs/{}",
        space_seg(space),
        seg(collection),
        seg(id)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("a/b c?d"), "a%2Fb%20c%3Fd");
        assert_eq!(seg("plain-id_1.x~"), "plain-id_1.x~");
        assert_eq!(seg("ü"), "%C3%BC");
    }
}
