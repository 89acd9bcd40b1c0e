//! Networking: libp2p transports and discovery, and one ordered, framed
//! `/weft/sync/1` stream per direction per peer. Frames are opaque here; the
//! sync layer gives them meaning.
//!
//! The swarm lives in one task ([`spawn`]) driven by commands from cheap
//! [`Net`] handles; each connected peer gets a session task that owns its
//! streams and emits its [`NetEvent`]s in order.

mod backoff;
mod behaviour;
mod config;
mod framing;
mod ids;
mod peers;
mod session;
mod swarm_task;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use config::NetConfig;
pub use libp2p::Multiaddr;

use crate::identity::NodeId;
use session::{Counters, Outgoing};
use swarm_task::Command;

/// Protocol of the raw sync streams.
pub const SYNC_PROTOCOL: &str = "/weft/sync/1";
/// Largest frame body in bytes; a peer announcing more is disconnected.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// How long [`Net::connect`] waits for the peer's sync stream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered for the app before sessions wait for it.
const EVENT_BUFFER: usize = 1024;

/// Networking failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// An address is malformed or lacks a required `/p2p/<id>`.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// A dial failed or the peer went away before its sync stream opened.
    #[error("dial failed: {0}")]
    Dial(String),
    /// A listen address could not be bound.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The transport stack could not be set up.
    #[error("network setup failed: {0}")]
    Transport(String),
    /// The peer did not become ready in time.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// The networking task has stopped.
    #[error("networking is shut down")]
    Closed,
}

/// What the node knows about a peer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PeerInfo {
    /// The peer's node id.
    pub id: NodeId,
    /// Addresses the peer was reached at or announced.
    pub addrs: Vec<String>,
    /// Whether a session is up (between its `Connected` and `Disconnected`).
    pub connected: bool,
    /// Last sign of life (connection change or ping), Unix milliseconds.
    pub last_seen_ms: Option<i64>,
}

/// What happens on the network, per peer in this order: `Connected`, any
/// number of `Frame`s, `Disconnected`.
#[derive(Debug)]
pub enum NetEvent {
    /// A session with the peer started: its sync stream is open, so frames
    /// sent from now on are delivered.
    Connected(NodeId),
    /// The session ended (last connection closed, or the stream failed).
    Disconnected(NodeId),
    /// One complete frame body from the peer.
    Frame(NodeId, Vec<u8>),
}

/// Totals since start: frames, and bytes including the 4-byte headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    /// Frames written to peers.
    pub frames_sent: u64,
    /// Frames read from peers.
    pub frames_received: u64,
    /// Bytes written (bodies plus headers).
    pub bytes_sent: u64,
    /// Bytes read (bodies plus headers).
    pub bytes_received: u64,
}

/// A cheap handle to the swarm task.
#[derive(Clone)]
pub struct Net {
    commands: mpsc::UnboundedSender<Command>,
    counters: Arc<Counters>,
    local: NodeId,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Net({})", self.local)
    }
}

/// Starts the swarm task on the current tokio runtime. `secret` is the
/// device's ed25519 secret key, so the PeerId text equals the [`NodeId`] text.
/// The task runs until [`Net::shutdown`] or until every [`Net`] clone is dropped.
pub fn spawn(
    secret: [u8; 32],
    config: NetConfig,
) -> Result<(Net, mpsc::Receiver<NetEvent>), NetError> {
    config.validate()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NetError::Transport(
            "net::spawn needs a tokio runtime".into(),
        ));
    }
    let key = libp2p::identity::Keypair::ed25519_from_bytes(secret)
        .map_err(|e| NetError::Transport(format!("bad secret key: {e}")))?;
    let local = ids::node_id(&key.public().to_peer_id())
        .ok_or_else(|| NetError::Transport("key is not ed25519".into()))?;
    let swarm = behaviour::build_swarm(key, &config)?;
    let counters = Arc::new(Counters::default());
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
    let task = swarm_task::SwarmTask::new(swarm, &config, commands_rx, events, counters.clone())?;
    tokio::spawn(task.run());
    let net = Net {
        commands,
        counters,
        local,
    };
    Ok((net, events_rx))
}

impl Net {
    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.local
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Dials `addr` and resolves with the peer's id once its sync stream is
    /// open (so a `send` right after is delivered), or fails after 10 s.
    pub async fn connect(&self, addr: Multiaddr) -> Result<NodeId, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Connect(addr, tx))
            .map_err(|_| NetError::Closed)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NetError::Closed),
            Err(_) => Err(NetError::Timeout(CONNECT_TIMEOUT)),
        }
    }

    /// Addresses others can dial, each ending in `/p2p/<own id>`. Waits (up
    /// to a few seconds) until every listener has reported its addresses.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(Command::ListenAddrs).await.unwrap_or_default()
    }

    /// Peers this node is connected to or has seen.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// Queues a frame for `peer`, delivered in order after earlier ones. It is
    /// dropped (with a log line) if the peer is not connected or the frame
    /// exceeds [`MAX_FRAME`]. The per-peer queue is unbounded: the sync layer
    /// paces itself by its protocol's round trips.
    pub fn send(&self, peer: NodeId, frame: Vec<u8>) {
        if frame.len() > MAX_FRAME {
            tracing::warn!(%peer, len = frame.len(), "dropping frame larger than MAX_FRAME");
            return;
        }
        let _ = self
            .commands
            .send(Command::Send(peer, Outgoing::Frame(frame)));
    }

    /// Writes raw bytes on the peer's sync stream, bypassing framing.
    #[cfg(test)]
    pub(crate) fn send_raw(&self, peer: NodeId, bytes: Vec<u8>) {
        let _ = self
            .commands
            .send(Command::Send(peer, Outgoing::Raw(bytes)));
    }

    /// Ends the peer's outbound sync stream (EOF), as a peer dying mid-frame would.
    #[cfg(test)]
    pub(crate) fn close_stream_for_test(&self, peer: NodeId) {
        let _ = self.commands.send(Command::Send(peer, Outgoing::Close));
    }

    /// Closes every connection to `peer`. Static peers are redialed later.
    pub async fn disconnect(&self, peer: NodeId) {
        self.ask(|tx| Command::Disconnect(peer, tx)).await;
    }

    /// Frame and byte totals since start (still readable after shutdown).
    pub async fn stats(&self) -> NetStats {
        self.counters.snapshot()
    }

    /// Stops the swarm task and closes every connection.
    pub async fn shutdown(&self) {
        self.ask(Command::Shutdown).await;
    }
}
