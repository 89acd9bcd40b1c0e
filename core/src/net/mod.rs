//! Networking: libp2p transports and discovery, and one ordered, framed
//! `/weft/sync/1` stream per direction per peer. Frames are opaque here; the
//! sync layer gives them meaning.
//!
//! The swarm lives in one task ([`spawn`]) driven by commands from cheap
//! [`Net`] handles; each connected peer gets a session task that owns its
//! streams and emits its [`NetEvent`]s in order.
//!
//! Memory a peer can make the node hold is bounded: connections by
//! [`MAX_CONNECTIONS`], [`MAX_INCOMING_CONNECTIONS`], [`MAX_PENDING_INCOMING`]
//! and [`MAX_CONNECTIONS_PER_PEER`]; each session reads one inbound stream,
//! one frame at a time; before the sync layer calls [`Net::proven`] at most
//! [`PRE_AUTH_FRAMES`] frames of [`PRE_AUTH_FRAME_MAX`] bytes; frames queued
//! for a peer by [`SEND_QUEUE_MAX`]. Frames waiting for the app: at most
//! [`EVENT_BUFFER`] in the event channel plus one per session. So strangers
//! (never proven) make the node hold at most
//! `MAX_CONNECTIONS × PRE_AUTH_FRAMES × PRE_AUTH_FRAME_MAX` = 4 MiB of frames
//! (plus transport windows, see `behaviour.rs`); members at most
//! `(EVENT_BUFFER + MAX_CONNECTIONS) × MAX_FRAME` inbound and
//! `SEND_QUEUE_MAX` outbound per session.

mod backoff;
mod behaviour;
mod config;
mod dial_reason;
mod framing;
mod ids;
mod link;
mod peers;
mod session;
mod swarm_task;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use config::NetConfig;
pub use libp2p::Multiaddr;

use crate::identity::NodeId;
use framing::HEADER_LEN;
use link::Links;
use session::{Counters, Outgoing};
use swarm_task::Command;

/// Protocol of the raw sync streams.
pub const SYNC_PROTOCOL: &str = "/weft/sync/1";
/// Largest frame body in bytes; a peer announcing more is disconnected.
/// The wire format's bound: the transport enforces what sync accepts.
pub use crate::sync::wire::MAX_FRAME;
/// Frames read from a peer before the sync layer calls [`Net::proven`]: its
/// `Hello` and its `Proof`, all an honest peer sends before proving itself.
pub const PRE_AUTH_FRAMES: usize = 2;
/// Largest frame body before [`Net::proven`]; a peer announcing more is
/// disconnected. `Hello` (node id, challenge) and `Proof` (a 64-byte
/// signature) take under 100 bytes; 16 KiB leaves room for the protocol to
/// grow while keeping a stranger's frames 256 times smaller than [`MAX_FRAME`].
pub const PRE_AUTH_FRAME_MAX: usize = 16 * 1024;
/// While more bytes than this wait to be written to a peer, its frames are not
/// read: a peer that does not read our replies does not get its requests read.
/// Two full frames, so one large reply does not stall an honest peer.
pub const SEND_HIGH_WATER: usize = 2 * MAX_FRAME;
/// Bytes queued for one peer at most; a frame that would pass it ends the
/// session (reconnection and reconciliation resume the exchange). Room above
/// [`SEND_HIGH_WATER`] for the replies to frames read before reading paused
/// and for documents the node starts on its own.
pub const SEND_QUEUE_MAX: usize = 8 * MAX_FRAME;
/// Established connections in total: a personal node talks to a handful of
/// devices, a relay and some DHT peers; each connection can hold transport
/// buffers, so this bounds what strangers can make the node hold.
pub const MAX_CONNECTIONS: u32 = 128;
/// Established incoming connections: half of [`MAX_CONNECTIONS`], so strangers
/// dialing in cannot take the slots our own dials need.
pub const MAX_INCOMING_CONNECTIONS: u32 = 64;
/// Incoming connections still in their handshake (each costs a Noise
/// handshake and buffers).
pub const MAX_PENDING_INCOMING: u32 = 16;
/// Connections per peer: TCP, QUIC, a relayed circuit and its direct upgrade.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// How long [`Net::connect`] waits for the peer's sync stream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered for the app before sessions wait for it: enough to keep the
/// writer busy between batches; with one more frame held per session it bounds
/// the frames waiting for the app.
pub const EVENT_BUFFER: usize = 256;

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
    links: Arc<Links>,
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
    let links = Arc::new(Links::default());
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
    let task = swarm_task::SwarmTask::new(
        swarm,
        &config,
        commands_rx,
        events,
        counters.clone(),
        links.clone(),
    )?;
    tokio::spawn(task.run());
    let net = Net {
        commands,
        links,
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

    /// Keeps the peers at `addrs` (each ending in `/p2p/<id>`) connected:
    /// dialed now and redialed with backoff whenever they drop, like the
    /// configured peers (at most `MAX_DISCOVERED` such besides those).
    pub fn keep(&self, addrs: Vec<Multiaddr>) {
        let _ = self.commands.send(Command::Keep(addrs));
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
    /// exceeds [`MAX_FRAME`]. The per-peer queue holds at most
    /// [`SEND_QUEUE_MAX`] bytes: a frame that does not fit ends the session
    /// rather than vanishing from a session that goes on.
    pub fn send(&self, peer: NodeId, frame: Vec<u8>) {
        if frame.len() > MAX_FRAME {
            tracing::warn!(%peer, len = frame.len(), "dropping frame larger than MAX_FRAME");
            return;
        }
        self.enqueue(peer, frame.len() + HEADER_LEN, Outgoing::Frame(frame));
    }

    fn enqueue(&self, peer: NodeId, bytes: usize, item: Outgoing) {
        let Some(link) = self.links.get(&peer) else {
            tracing::debug!(%peer, "dropping frame: peer not connected");
            return;
        };
        if link.state.overflowed() {
            // Already ending; the frame goes with the session.
            tracing::debug!(%peer, "dropping frame: session ending on a full send queue");
            return;
        }
        if !link.state.charge(bytes) {
            tracing::warn!(
                %peer,
                queued = link.state.queued(),
                "send queue full: ending the session"
            );
            return;
        }
        if link.outgoing.send(item).is_err() {
            // The session is ending; its queue goes with it.
            link.state.written(bytes);
        }
    }

    /// Bytes queued for `peer` and not yet written (0 if not connected).
    /// Above [`SEND_HIGH_WATER`] the peer is congested: its frames are not read
    /// until it catches up, and the runtime should not start new documents for
    /// it; past [`SEND_QUEUE_MAX`] the session ends.
    pub fn queued(&self, peer: NodeId) -> usize {
        self.links.get(&peer).map_or(0, |link| link.state.queued())
    }

    /// Tells the peer's session that the sync layer verified its proof of
    /// identity: it reads on, with frames up to [`MAX_FRAME`] instead of
    /// [`PRE_AUTH_FRAME_MAX`]. Applies to the peer's current session (a call
    /// racing a reconnect lifts the new session's limit, which is the same
    /// transport-authenticated key that just proved itself).
    pub fn proven(&self, peer: NodeId) {
        if let Some(link) = self.links.get(&peer) {
            link.state.prove();
        }
    }

    /// Writes raw bytes on the peer's sync stream, bypassing framing.
    #[cfg(test)]
    pub(crate) fn send_raw(&self, peer: NodeId, bytes: Vec<u8>) {
        self.enqueue(peer, bytes.len(), Outgoing::Raw(bytes));
    }

    /// Ends the peer's outbound sync stream (EOF), as a peer dying mid-frame would.
    #[cfg(test)]
    pub(crate) fn close_stream_for_test(&self, peer: NodeId) {
        self.enqueue(peer, 0, Outgoing::Close);
    }

    /// The swarm's stream control, so tests can open streams of their own.
    #[cfg(test)]
    pub(crate) async fn control_for_test(&self) -> Option<libp2p_stream::Control> {
        self.ask(Command::Control).await
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
