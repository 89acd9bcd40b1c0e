//! The CLI's side of the API: finds a running daemon from `daemon.json` and
//! talks HTTP/1.1 to it over loopback with the token from `api-token`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CliError;
use crate::files::{DaemonInfo, read_daemon_info, read_token};
use crate::model::ApiError;

/// How long to wait for a daemon's port before calling it gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// A connection target: a running daemon's API.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    token: String,
}

impl std::fmt::Debug for Client {
    // The token stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Whether a process with this id exists. A `daemon.json` naming a dead
/// process is stale, whatever now listens on its port (which may be
/// anyone's, and must not be sent the token).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // Signal 0 checks existence without sending anything; EPERM means
        // it exists but belongs to someone else.
        // SAFETY: kill with signal 0 has no effect on the target.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

impl Client {
    /// The daemon serving `data_dir`, if one answers. A `daemon.json` left by
    /// a daemon that died (for example `kill -9`) is ignored.
    pub async fn discover(data_dir: &Path) -> Result<Option<Client>, CliError> {
        let Some(info) = read_daemon_info(data_dir)? else {
            return Ok(None);
        };
        if !process_alive(info.pid) {
            tracing::debug!(pid = info.pid, "daemon.json is stale: its process is gone");
            return Ok(None);
        }
        let addr = api_addr(&info)?;
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {}
            _ => {
                tracing::debug!(%addr, pid = info.pid, "daemon.json is stale: no daemon answers");
                return Ok(None);
            }
        }
        let token = read_token(data_dir)?.ok_or_else(|| {
            CliError::new(
                "unauthorized",
                format!(
                    "a daemon runs at {} but {} has no api-token file; restart the daemon",
                    info.api,
                    data_dir.display()
                ),
            )
        })?;
        Ok(Some(Client { addr, token }))
    }

    /// A client for the API at `addr` with `token`.
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Self {
        Self {
            addr,
            token: token.into(),
        }
    }

    /// Sends raw bytes with an explicit `Authorization` value (or none), for
    /// tools and tests that need to send what the typed calls never would.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Bytes), CliError> {
        let response = self
            .request(method, path, body.map(Bytes::from), authorization)
            .await?;
        let status = response.status();
        Ok((status, collect(response.into_body()).await?))
    }

    /// Sends a request and decodes a JSON answer (or the API's error).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CliError> {
        let body =
            body.map(|b| Bytes::from(serde_json::to_vec(b).expect("request bodies serialize")));
        let auth = format!("Bearer {}", self.token);
        let response = self.request(method, path, body, Some(&auth)).await?;
        let status = response.status();
        let bytes = collect(response.into_body()).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new("internal", format!("the daemon sent an answer this CLI cannot read ({e}); are both the same version?"))
        })
    }

    /// Sends a request and returns the raw body (for text endpoints).
    pub async fn call_text(&self, path: &str) -> Result<String, CliError> {
        let auth = format!("Bearer {}", self.token);
        let (status, bytes) = self.raw(Method::GET, path, None, Some(&auth)).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Opens a streaming GET (Server-Sent Events).
    pub async fn stream(&self, path: &str) -> Result<Incoming, CliError> {
        let auth = format!("Bearer {}", self.token);
        let response = self.request(Method::GET, path, None, Some(&auth)).await?;
        if !response.status().is_success() {
            let status = response.status();
            let bytes = collect(response.into_body()).await?;
            return Err(api_error(status, &bytes));
        }
        Ok(response.into_body())
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        authorization: Option<&str>,
    ) -> Result<hyper::Response<Incoming>, CliError> {
        let lost = |e: &dyn std::fmt::Display| {
            CliError::new(
                "unavailable",
                format!(
                    "lost the daemon at {} ({e}); check `weft status` and retry",
                    self.addr
                ),
            )
        };
        let stream = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(self.addr))
            .await
            .map_err(|e| lost(&e))?
            .map_err(|e| lost(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| lost(&e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        if let Some(auth) = authorization {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| {
                CliError::new("invalid_input", format!("cannot build the request: {e}"))
            })?;
        sender.send_request(request).await.map_err(|e| lost(&e))
    }
}

async fn collect(body: Incoming) -> Result<Bytes, CliError> {
    body.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        CliError::new(
            "unavailable",
            format!("the daemon's answer was cut off ({e}); retry"),
        )
    })
}

fn api_error(status: StatusCode, bytes: &[u8]) -> CliError {
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(e) => CliError::new(&e.error, e.message),
        Err(_) => CliError::new(
            "internal",
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(bytes)
            ),
        ),
    }
}

/// The socket address in `daemon.json`'s `api` URL.
fn api_addr(info: &DaemonInfo) -> Result<SocketAddr, CliError> {
    info.api
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|hostport| hostport.parse().ok())
        .ok_or_else(|| {
            CliError::new(
                "invalid_input",
                format!("daemon.json names API {:?}, not http://IP:PORT; delete the file if no daemon runs", info.api),
            )
        })
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

    #[test]
    fn api_urls_parse() {
        let info = |api: &str| DaemonInfo {
            pid: 1,
            api: api.to_owned(),
        };
        assert_eq!(
            api_addr(&info("http://127.0.0.1:4000")).unwrap(),
            "127.0.0.1:4000".parse().unwrap()
        );
        assert_eq!(
            api_addr(&info("http://[::1]:4000/")).unwrap(),
            "[::1]:4000".parse().unwrap()
        );
        assert!(api_addr(&info("https://x:1")).is_err());
    }
}
