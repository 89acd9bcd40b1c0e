//! Which browsers may reach the API. A web page anywhere can make the
//! user's browser send requests to `127.0.0.1`, and DNS rebinding can make
//! a hostile name resolve there; so every request (the automerge-repo
//! WebSocket upgrade included) must name a loopback `Host` and come from
//! no `Origin` (not a browser), a loopback origin, or one the user allowed.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use weft_core::ErrorKind;

use super::{AppState, Failure};

/// Longest `Host` or `Origin` value examined; a real one is far shorter, so
/// anything longer is refused rather than parsed.
pub const MAX_HOST_LEN: usize = 512;

/// What the guard lets through besides loopback.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Guard {
    /// Browser origins allowed besides loopback ones, normalized by
    /// [`normalize_origin`] (`https://app.example.com`, `http://10.0.0.5:3000`).
    pub allowed_origins: Vec<String>,
    /// With `api_allow_remote`: the address the API serves on. A `Host` that
    /// is this IP literal (any IP literal when it is unspecified, `0.0.0.0`)
    /// is accepted; host names stay refused, as those are what DNS
    /// rebinding forges.
    pub remote: Option<IpAddr>,
}

/// Why a configured origin is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "origin {origin:?} {reason}; write it as scheme://host[:port], e.g. https://app.example.com"
)]
pub struct BadOrigin {
    pub origin: String,
    pub reason: &'static str,
}

/// The form origins are compared in: lowercase `scheme://host[:port]`, no
/// path or trailing slash, as browsers send them in `Origin`.
pub fn normalize_origin(origin: &str) -> Result<String, BadOrigin> {
    let bad = |reason| BadOrigin {
        origin: origin.to_owned(),
        reason,
    };
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| bad("has no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("is not http or https"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return Err(bad("is not just a host and port"));
    }
    if lower.len() > MAX_HOST_LEN {
        return Err(bad("is too long"));
    }
    Ok(lower)
}

impl Guard {
    /// A guard allowing these configured origins.
    pub fn with_origins(origins: &[String], remote: Option<IpAddr>) -> Result<Guard, BadOrigin> {
        Ok(Guard {
            allowed_origins: origins
                .iter()
                .map(|o| normalize_origin(o))
                .collect::<Result<_, _>>()?,
            remote,
        })
    }

    /// Whether a request's `Host` names this API rather than a rebound name.
    pub fn host_ok(&self, host: &str) -> bool {
        if host.len() > MAX_HOST_LEN {
            return false;
        }
        let Some(name) = host_name(host) else {
            return false;
        };
        if is_loopback_name(name) {
            return true;
        }
        match (self.remote, parse_ip(name)) {
            (Some(remote), Some(ip)) => remote.is_unspecified() || remote == ip,
            _ => false,
        }
    }

    /// Whether a browser page of this origin may call the API.
    pub fn origin_ok(&self, origin: &str) -> bool {
        let Ok(origin) = normalize_origin(origin) else {
            return false;
        };
        if let Some(hostport) = origin.split_once("://").map(|(_, rest)| rest)
            && host_name(hostport).is_some_and(is_loopback_name)
        {
            return true;
        }
        self.allowed_origins.contains(&origin)
    }
}

/// The host part of `host[:port]` (brackets kept off an IPv6 literal);
/// `None` when the port is not a number.
fn host_name(hostport: &str) -> Option<&str> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return match after {
            "" => Some(ip),
            _ => after
                .strip_prefix(':')
                .filter(|p| p.parse::<u16>().is_ok())
                .map(|_| ip),
        };
    }
    match hostport.rsplit_once(':') {
        Some((name, port)) => port.parse::<u16>().ok().map(|_| name),
        None => Some(hostport),
    }
}

fn parse_ip(name: &str) -> Option<IpAddr> {
    name.parse().ok()
}

/// `localhost` or a loopback IP literal: names no DNS answer can change.
fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case("localhost.")
        || parse_ip(name).is_some_and(|ip| ip.is_loopback())
}

/// The middleware: refuses a foreign `Host` or `Origin` with 403 before the
/// token is even looked at.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    // HTTP/1.1 requires `Host`; a client that omits it is not a browser,
    // which is what the check is about.
    let host_ok = match (headers.get(header::HOST), req.uri().authority()) {
        (Some(v), _) => v.to_str().is_ok_and(|h| state.guard.host_ok(h)),
        (None, Some(authority)) => state.guard.host_ok(authority.as_str()),
        (None, None) => true,
    };
    if !host_ok {
        return Failure::new(
            ErrorKind::Forbidden,
            "the Host header does not name this API (loopback, or its address with api_allow_remote); \
             address it as 127.0.0.1, [::1] or localhost",
        )
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| state.guard.origin_ok(o));
        if !ok {
            return Failure::new(
                ErrorKind::Forbidden,
                "pages of this Origin may not call the API; serve the page from a loopback origin \
                 or list its origin in `api_allowed_origins` in weft.toml",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_and_names_do_not() {
        let g = Guard::default();
        for ok in [
            "127.0.0.1:7070",
            "127.0.0.1",
            "127.1.2.3:80",
            "localhost:9",
            "LOCALHOST",
            "[::1]:7070",
            "[::1]",
        ] {
            assert!(g.host_ok(ok), "{ok}");
        }
        for bad in [
            "evil.example:7070",
            "localhost.evil.example",
            "10.0.0.5:7070",
            "127.0.0.1:notaport",
            "[::1",
            "[::1]x",
            "",
            &"a".repeat(MAX_HOST_LEN + 1),
        ] {
            assert!(!g.host_ok(bad), "{bad}");
        }
    }

    #[test]
    fn remote_hosts_pass_only_as_the_served_ip() {
        let one = Guard {
            remote: Some("10.0.0.5".parse().unwrap()),
            ..Guard::default()
        };
        assert!(one.host_ok("10.0.0.5:7070"));
        assert!(!one.host_ok("10.0.0.6:7070"));
        assert!(!one.host_ok("box.lan:7070"));
        let any = Guard {
            remote: Some("0.0.0.0".parse().unwrap()),
            ..Guard::default()
        };
        assert!(any.host_ok("192.168.1.9:7070"));
        assert!(any.host_ok("[fd00::1]:7070"));
        assert!(!any.host_ok("rebound.example:7070"));
    }

    #[test]
    fn loopback_and_listed_origins_pass() {
        let g = Guard::with_origins(&["https://App.Example.com/".into()], None).unwrap();
        for ok in [
            "http://127.0.0.1:5173",
            "http://localhost:3000",
            "http://localhost",
            "http://[::1]:8080",
            "https://localhost:8443",
            "https://app.example.com",
        ] {
            assert!(g.origin_ok(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "https://app.example.com:444",
            "http://app.example.com",
            "file://",
            "chrome-extension://abc",
        ] {
            assert!(!g.origin_ok(bad), "{bad}");
        }
    }

    #[test]
    fn configured_origins_are_checked() {
        assert!(normalize_origin("app.example.com").is_err());
        assert!(normalize_origin("ftp://x").is_err());
        assert!(normalize_origin("https://x/path").is_err());
        assert!(normalize_origin("*").is_err());
        assert!(normalize_origin("https://*.example.com").is_err());
        assert_eq!(
            normalize_origin("HTTP://X:1/").unwrap(),
            "http://x:1".to_owned()
        );
    }
}
