//! How the CLI's requests reach the API: over HTTP to a running daemon
//! (found from `daemon.json`, with the token from `api-token`), or to the
//! same router in this process over a replica opened here (embedded). The
//! client above builds and reads the same requests either way.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tower::ServiceExt;
use weft_core::{ErrorKind, Node};

use crate::error::CliError;
use crate::files::{DaemonInfo, read_daemon_info, read_token};

/// How long to wait for a daemon's port before calling it gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Carries one API request to its answer.
pub trait Transport: Send + Sync {
    /// Sends `request` (a path-only URI; no `Host`, no `Authorization`).
    fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> BoxFuture<'_, Result<Response<Body>, CliError>>;

    /// True for the in-process API: no daemon runs, so nothing syncs.
    fn embedded(&self) -> bool;

    /// Flushes and releases what the transport opened.
    fn close(&self) -> BoxFuture<'_, Result<(), CliError>>;
}

/// A running daemon's API over loopback HTTP/1.1.
pub struct Http {
    addr: SocketAddr,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// The daemon serving `data_dir` and its token, if one answers. A
    /// `daemon.json` left by a daemon that died (for example `kill -9`) is
    /// ignored.
    pub async fn discover(data_dir: &Path) -> Result<Option<(Http, String)>, CliError> {
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
                ErrorKind::Unauthorized,
                format!(
                    "a daemon runs at {} but {} has no api-token file; restart the daemon",
                    info.api,
                    data_dir.display()
                ),
            )
        })?;
        Ok(Some((Http { addr }, token)))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Response<Body>, CliError> {
        let lost = |e: &dyn std::fmt::Display| {
            CliError::new(
                ErrorKind::Closed,
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
        let mut request = request;
        let host = hyper::header::HeaderValue::from_str(&self.addr.to_string())
            .expect("a socket address is a valid header value");
        request.headers_mut().insert(hyper::header::HOST, host);
        let response = sender.send_request(request).await.map_err(|e| lost(&e))?;
        Ok(response.map(Body::new))
    }
}

impl Transport for Http {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> BoxFuture<'_, Result<Response<Body>, CliError>> {
        Box::pin(self.exchange(request))
    }

    fn embedded(&self) -> bool {
        false
    }

    fn close(&self) -> BoxFuture<'_, Result<(), CliError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The API's router over a replica this process opened.
pub struct InProcess {
    node: Node,
    router: axum::Router,
    /// Held so the router's shutdown signal never fires: a one-shot
    /// command ends by closing the node instead.
    _shutdown: watch::Sender<bool>,
}

impl InProcess {
    /// The router over `node`, with `token` as its API token (made up by
    /// the caller; only this process can reach the router).
    pub fn new(node: Node, token: String) -> Self {
        let (shutdown, stopped) = watch::channel(false);
        Self {
            router: crate::api::in_process(node.clone(), token, stopped),
            node,
            _shutdown: shutdown,
        }
    }
}

impl Transport for InProcess {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> BoxFuture<'_, Result<Response<Body>, CliError>> {
        let router = self.router.clone();
        Box::pin(async move {
            // The router's error type is Infallible: failures are answers.
            let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
            Ok(response)
        })
    }

    fn embedded(&self) -> bool {
        true
    }

    fn close(&self) -> BoxFuture<'_, Result<(), CliError>> {
        Box::pin(async { Ok(self.node.close().await?) })
    }
}

/// Whether a process with this id exists. A `daemon.json` naming a dead
/// process is stale, whatever now listens on its port (which may be
/// anyone's, and must not be sent the token).
pub(crate) fn process_alive(pid: u32) -> bool {
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

/// The socket address in `daemon.json`'s `api` URL.
fn api_addr(info: &DaemonInfo) -> Result<SocketAddr, CliError> {
    info.api
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|hostport| hostport.parse().ok())
        .ok_or_else(|| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!("daemon.json names API {:?}, not http://IP:PORT; delete the file if no daemon runs", info.api),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
