//! `weft daemon`: opens the replica with networking, serves the local API,
//! tells clients where it is (`daemon.json`, `api-token`), and on SIGINT or
//! SIGTERM stops accepting, flushes and exits cleanly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weft_core::{Config, Error, ErrorKind, Multiaddr, NetConfig, Node};

use crate::api::{self, Guard};
use crate::automerge::Landing;
use crate::cli::DaemonArgs;
use crate::client::Client;
use crate::config::FileConfig;
use crate::error::CliError;
use crate::files::{DaemonInfo, load_or_create_token, remove_daemon_info, write_daemon_info};

/// How long start-up waits for a short-lived CLI command to release the replica.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// In-flight requests get this long to finish after a stop signal; then
/// the replica is flushed and closed regardless.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(data_dir: PathBuf, args: DaemonArgs, file: &FileConfig) -> Result<(), CliError> {
    // Signals are watched from the start, so a stop during start-up is
    // clean too (the default action would kill the process unflushed).
    let stop = stop_signal();
    let net = net_config(&args, file)?;
    let api_addr = api_addr(args.api.as_deref().or(file.api.as_deref()), file)?;
    let guard = guard(&args, file, api_addr)?;
    let join_timeout = match file.status_timeout {
        Some(secs) => crate::ops::join_wait(secs).map_err(|e| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!("config status_timeout: {e}"),
            )
        })?,
        None => api::DEFAULT_JOIN_TIMEOUT,
    };
    if Client::discover(&data_dir).await?.is_some() {
        return Err(CliError::new(
            ErrorKind::Locked,
            format!(
                "a daemon already runs for {} (see daemon.json there); stop it first or pass another --data-dir",
                data_dir.display()
            ),
        ));
    }
    let mut waiting = stop.clone();
    let node = tokio::select! {
        node = open(&data_dir, net) => node?,
        _ = waiting.wait_for(|s| *s) => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
    };
    let served = match landing(&node, file).await {
        Ok(landing) => {
            serve(
                &node,
                &data_dir,
                api_addr,
                landing,
                guard,
                join_timeout,
                stop,
            )
            .await
        }
        Err(e) => Err(e),
    };
    tracing::info!("flushing the replica");
    let closed = node.close().await;
    remove_daemon_info(&data_dir, std::process::id());
    served?;
    closed?;
    tracing::info!("stopped");
    Ok(())
}

/// Where documents created by automerge-repo clients land.
async fn landing(node: &Node, file: &FileConfig) -> Result<Landing, CliError> {
    let space = crate::ops::space_id(node, file.automerge_space.as_deref()).await?;
    let collection = file
        .automerge_collection
        .clone()
        .unwrap_or_else(|| api::DEFAULT_LANDING_COLLECTION.to_owned());
    if collection.starts_with('_') {
        return Err(CliError::new(
            ErrorKind::InvalidInput,
            format!(
                "config automerge_collection {collection:?}: names starting with `_` are Weft's own"
            ),
        ));
    }
    weft_core::key::check_name("collection", &collection).map_err(|e| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("config automerge_collection: {e}"),
        )
    })?;
    Ok(Landing { space, collection })
}

async fn serve(
    node: &Node,
    data_dir: &Path,
    api_addr: SocketAddr,
    landing: Landing,
    guard: Guard,
    join_timeout: Duration,
    stop: watch::Receiver<bool>,
) -> Result<(), CliError> {
    let token = load_or_create_token(data_dir)?;
    let listener = tokio::net::TcpListener::bind(api_addr).await.map_err(|e| {
        CliError::new(
            ErrorKind::Locked,
            format!("cannot serve the API on {api_addr}: {e}; pick another with --api HOST:PORT"),
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::new(ErrorKind::Internal, e.to_string()))?;
    let api_url = format!("http://{}", dialable(bound));
    let app = api::router_at(
        node.clone(),
        token,
        stop.clone(),
        landing,
        guard,
        join_timeout,
        Some(api_url.clone()),
    );
    let mut graceful = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|s| *s).await;
        tracing::info!("stopping: no new requests");
    });
    let info = DaemonInfo {
        pid: std::process::id(),
        api: api_url,
    };
    write_daemon_info(data_dir, &info)?;
    tracing::info!(
        node_id = %node.node_id(),
        api = %info.api,
        data_dir = %data_dir.display(),
        "daemon ready"
    );
    let node = node.clone();
    tokio::spawn(async move {
        for addr in node.listen_addrs().await {
            tracing::info!(%addr, "listening for peers");
        }
    });
    let mut stopped = stop;
    let server = server.into_future();
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r,
        // A request that never ends (a slow SQL statement) must not hold
        // the shutdown up forever.
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(DRAIN).await;
        } => {
            tracing::warn!("requests still running after {DRAIN:?}; closing anyway");
            Ok(())
        }
    };
    result.map_err(|e| CliError::new(ErrorKind::Internal, format!("the API server failed: {e}")))
}

/// Opens the replica, waiting out a CLI command that holds it briefly.
async fn open(data_dir: &Path, net: NetConfig) -> Result<Node, CliError> {
    let started = Instant::now();
    let mut told = false;
    loop {
        let mut config = Config::with_data_dir(data_dir);
        config.network = Some(net.clone());
        match Node::open(config).await {
            Ok(node) => return Ok(node),
            Err(Error::Locked { pid, .. }) if started.elapsed() < LOCK_WAIT => {
                if !told {
                    tracing::info!(?pid, "the replica is in use by another process; waiting");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Flips to `true` on the first SIGINT or SIGTERM; a second one exits at once.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_signal().await;
        let _ = tx.send(true);
        wait_signal().await;
        tracing::warn!("second signal: exiting without a clean shutdown");
        std::process::exit(130);
    });
    rx
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Networking from flags, then `weft.toml`, then defaults (every interface,
/// random TCP and QUIC ports, mDNS on). A flag replaces the key's value.
fn net_config(args: &DaemonArgs, file: &FileConfig) -> Result<NetConfig, CliError> {
    let mut net = NetConfig::default();
    let pick = |flags: &[String], key: &Option<Vec<String>>| -> Option<Vec<String>> {
        if flags.is_empty() {
            key.clone()
        } else {
            Some(flags.to_vec())
        }
    };
    if let Some(listen) = pick(&args.listen, &file.listen) {
        net.listen = parse_addrs("--listen", &listen)?;
    }
    if let Some(peers) = pick(&args.peer, &file.peers) {
        net.peers = parse_addrs("--peer", &peers)?;
    }
    net.mdns = !args.no_mdns && file.mdns.unwrap_or(true);
    if let Some(b) = &file.bootstrap {
        net.bootstrap = parse_addrs("bootstrap", b)?;
    }
    if let Some(r) = &file.relays {
        net.relays = parse_addrs("relays", r)?;
    }
    net.relay_server = file.relay_server.unwrap_or(false);
    Ok(net)
}

fn parse_addrs(what: &str, addrs: &[String]) -> Result<Vec<Multiaddr>, CliError> {
    addrs
        .iter()
        .map(|a| {
            a.parse().map_err(|e| {
                CliError::new(
                    ErrorKind::InvalidInput,
                    format!("{what} {a:?} is not a multiaddr ({e}); e.g. /ip4/0.0.0.0/tcp/0"),
                )
            })
        })
        .collect()
}

/// The API address: loopback only, unless `api_allow_remote = true`.
fn api_addr(given: Option<&str>, file: &FileConfig) -> Result<SocketAddr, CliError> {
    let text = given.unwrap_or("127.0.0.1:0");
    let addr: SocketAddr = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => text.parse(),
    }
    .map_err(|_| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("--api {text:?} is not HOST:PORT with an IP address, e.g. 127.0.0.1:7070"),
        )
    })?;
    if !addr.ip().is_loopback() {
        if !file.api_allow_remote.unwrap_or(false) {
            return Err(CliError::new(
                ErrorKind::InvalidInput,
                format!(
                    "refusing to serve the API on {addr}, which is reachable from other machines; \
                     use a loopback address, or set `api_allow_remote = true` in weft.toml"
                ),
            ));
        }
        tracing::warn!(%addr, "the API is reachable from the network (api_allow_remote); anyone with the token can read and write");
    }
    Ok(addr)
}

/// Which browser pages and `Host` names the API answers: the flag (or
/// its environment variable) replaces `api_allowed_origins`; a remote API
/// address is accepted as `Host` only when it was allowed.
fn guard(args: &DaemonArgs, file: &FileConfig, api_addr: SocketAddr) -> Result<Guard, CliError> {
    let origins = if args.api_allowed_origin.is_empty() {
        file.api_allowed_origins.clone().unwrap_or_default()
    } else {
        args.api_allowed_origin.clone()
    };
    let remote = (!api_addr.ip().is_loopback()).then_some(api_addr.ip());
    Guard::with_origins(&origins, remote)
        .map_err(|e| CliError::new(ErrorKind::InvalidInput, format!("api_allowed_origins: {e}")))
}

/// An address clients on this machine can connect to.
fn dialable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_is_loopback_unless_allowed() {
        let none = FileConfig::default();
        assert_eq!(
            api_addr(None, &none).unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(api_addr(Some("localhost:9"), &none).unwrap().port(), 9);
        assert!(api_addr(Some("[::1]:0"), &none).is_ok());
        let err = api_addr(Some("0.0.0.0:0"), &none).unwrap_err();
        assert!(err.message.contains("api_allow_remote"), "{err}");
        let allowed = FileConfig {
            api_allow_remote: Some(true),
            ..FileConfig::default()
        };
        assert!(api_addr(Some("0.0.0.0:0"), &allowed).is_ok());
        assert!(api_addr(Some("nonsense"), &none).is_err());
        assert_eq!(
            dialable("0.0.0.0:5".parse().unwrap()),
            "127.0.0.1:5".parse().unwrap()
        );
    }

    #[test]
    fn allowed_origins_come_from_the_flag_else_the_key() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let file = FileConfig {
            api_allowed_origins: Some(vec!["https://App.example.com/".into()]),
            ..FileConfig::default()
        };
        let g = guard(&DaemonArgs::default(), &file, loopback).unwrap();
        assert_eq!(
            g.allowed_origins,
            vec!["https://app.example.com".to_owned()]
        );
        assert_eq!(g.remote, None);
        let args = DaemonArgs {
            api_allowed_origin: vec!["http://10.0.0.5:3000".into()],
            ..DaemonArgs::default()
        };
        let g = guard(&args, &file, "0.0.0.0:7070".parse().unwrap()).unwrap();
        assert_eq!(g.allowed_origins, vec!["http://10.0.0.5:3000".to_owned()]);
        assert!(g.remote.is_some_and(|ip| ip.is_unspecified()));
        let bad = FileConfig {
            api_allowed_origins: Some(vec!["*".into()]),
            ..FileConfig::default()
        };
        let err = guard(&DaemonArgs::default(), &bad, loopback).unwrap_err();
        assert!(err.message.contains("api_allowed_origins"), "{err}");
    }

    #[test]
    fn flags_replace_config_keys() {
        let file = FileConfig {
            listen: Some(vec!["/ip4/127.0.0.1/tcp/0".into()]),
            mdns: Some(true),
            ..FileConfig::default()
        };
        let net = net_config(&DaemonArgs::default(), &file).unwrap();
        assert_eq!(net.listen.len(), 1);
        assert!(net.mdns);
        let args = DaemonArgs {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".into(),
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
            ],
            no_mdns: true,
            ..DaemonArgs::default()
        };
        let net = net_config(&args, &file).unwrap();
        assert_eq!(net.listen.len(), 2);
        assert!(!net.mdns);
        let bad = DaemonArgs {
            peer: vec!["not an addr".into()],
            ..DaemonArgs::default()
        };
        assert!(
            net_config(&bad, &file)
                .unwrap_err()
                .message
                .contains("--peer")
        );
    }
}
