//! The node under attack: a real `weft daemon` process on its own data dir,
//! seeded beforehand through the embedded library (fast: one batch write
//! per thousand documents), whose memory, life and API latency the tests
//! watch from outside.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use libp2p::Multiaddr;
use serde_json::{Value, json};
use weft_core::{Config, DocKey, Node, NodeId, Role, Write};

use crate::{Daemon, Device};

/// Address space a target daemon may map. A node with a decoder bug can try
/// to allocate tens of gigabytes; capped, it fails there (and the test sees
/// it die) instead of pushing the whole machine into the kernel's OOM killer.
/// A debug daemon maps a few hundred MiB of virtual memory when idle.
pub const TARGET_ADDRESS_SPACE: u64 = 4 << 30;
/// How long a daemon may take to start answering.
const START_WAIT: Duration = Duration::from_secs(90);
/// Documents written per embedded batch while seeding.
const SEED_BATCH: usize = 1000;

/// What to put into the target's replica before its daemon starts.
#[derive(Clone, Debug, Default)]
pub struct Seed {
    /// Documents in collection `notes` of the space.
    pub docs: usize,
    /// Bytes of filler text in each.
    pub doc_bytes: usize,
    /// Invites to issue: the role, bound to this node.
    pub invites: Vec<(Role, NodeId)>,
}

/// A running target node.
pub struct Target {
    /// Its data dir and config.
    pub device: Device,
    /// The daemon process.
    pub daemon: Daemon,
    /// Its peer address (`/ip4/127.0.0.1/tcp/<port>/p2p/<id>`).
    pub addr: Multiaddr,
    /// The seeded space's id.
    pub space: String,
    /// One token per [`Seed::invites`] entry, in order.
    pub tokens: Vec<String>,
}

/// Memory figures of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set (`VmHWM`), bytes.
    pub peak: u64,
    /// Current resident set (`VmRSS`), bytes.
    pub resident: u64,
}

impl Target {
    /// Seeds a fresh data dir, then starts `weft daemon` on it under
    /// [`TARGET_ADDRESS_SPACE`].
    pub async fn start(seed: &Seed) -> Result<Self> {
        let device = Device::new();
        let (space, tokens) = seed_replica(&device, seed).await?;
        let dev = device.path().to_path_buf();
        let (device, daemon) = tokio::task::spawn_blocking(move || {
            let daemon = start_limited(&device)?;
            anyhow::Ok((device, daemon))
        })
        .await??;
        let addr =
            peer_addr(&device).with_context(|| format!("no peer address in {}", dev.display()))?;
        Ok(Self {
            device,
            daemon,
            addr,
            space,
            tokens,
        })
    }

    /// The daemon's memory now; `None` once it exited.
    pub fn memory(&self) -> Option<Memory> {
        memory_of(self.daemon.pid())
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.daemon.child.try_wait(), Ok(None))
    }

    /// Whether `weft status` answers through the daemon.
    pub fn answers(&self) -> bool {
        self.device.run(&["status"]).status.success()
    }

    /// The daemon's log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = self.daemon.log();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or(&log).to_owned()
    }

    /// One `PUT` of a document through the HTTP API; how long it took.
    /// A request that does not finish within `limit` counts as `limit`.
    pub fn timed_put(&self, id: &str, body: &Value, limit: Duration) -> Duration {
        let (api, token) = self.device.api();
        let path = format!("/v1/spaces/{}/collections/probe/docs/{id}", self.space);
        let started = Instant::now();
        match http(&api, &token, "PUT", &path, &body.to_string(), limit) {
            Ok(status) if (200..300).contains(&status) => started.elapsed(),
            Ok(_) | Err(_) => limit.max(started.elapsed()),
        }
    }
}

/// `VmHWM` and `VmRSS` of a process; `None` if it is gone.
pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some(Memory {
        peak: field("VmHWM:")?,
        resident: field("VmRSS:")?,
    })
}

/// Creates the space, writes the documents and issues the invites through
/// the embedded library (offline), then closes the replica for the daemon.
async fn seed_replica(device: &Device, seed: &Seed) -> Result<(String, Vec<String>)> {
    let node = Node::open(Config::with_data_dir(device.path())).await?;
    let space = node.space_create("target").await?.to_string();
    let ids: Vec<usize> = (0..seed.docs).collect();
    for chunk in ids.chunks(SEED_BATCH) {
        let writes = chunk
            .iter()
            .map(|i| {
                let key = DocKey::new(space.as_str(), "notes", format!("n{i:06}").as_str())?;
                let text = crate::filler(*i as u64, seed.doc_bytes);
                Ok(Write::Put(key, json!({ "n": i, "text": text })))
            })
            .collect::<Result<Vec<_>>>()?;
        node.batch(writes).await?;
    }
    let mut tokens = Vec::new();
    for (role, who) in &seed.invites {
        let token = node
            .space_invite(
                Some(space.as_str()),
                *role,
                Duration::from_secs(3600),
                Some(*who),
            )
            .await?;
        tokens.push(token.token);
    }
    node.close().await?;
    Ok((space, tokens))
}

/// Starts `weft daemon` on loopback (no mDNS) under an address-space limit
/// and waits until its API answers.
fn start_limited(device: &Device) -> Result<Daemon> {
    let log = std::fs::File::create(device.path().join("daemon-test.log"))?;
    let limit_kib = (TARGET_ADDRESS_SPACE / 1024).to_string();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(&limit_kib)
        .arg(crate::weft_bin())
        .arg("--data-dir")
        .arg(device.path())
        .args(["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
        .env("WEFT_CONFIG", &device.config)
        .env_remove("WEFT_DATA_DIR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut daemon = Daemon {
        child,
        dir: device.path().to_path_buf(),
    };
    let started = Instant::now();
    loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!("daemon exited at start ({status}):\n{}", daemon.log());
        }
        let info = std::fs::read(device.path().join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if info.is_some_and(|i| i["pid"] == daemon.pid())
            && device.run(&["status"]).status.success()
        {
            return Ok(daemon);
        }
        if started.elapsed() > START_WAIT {
            bail!("daemon did not start; its log:\n{}", daemon.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon's loopback TCP peer address, from `weft --json id`.
fn peer_addr(device: &Device) -> Result<Multiaddr> {
    let id = device.json(&["id"]);
    let addrs = id["listen_addrs"].as_array().context("listen_addrs")?;
    let addr = addrs
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
        .context("no loopback TCP address")?;
    Ok(addr.parse()?)
}

/// A minimal HTTP/1.1 request (`Connection: close`); returns the status.
fn http(
    api: &str,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
    limit: Duration,
) -> Result<u16> {
    let host = api.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad HTTP response: {head:?}"))
}
