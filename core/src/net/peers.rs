//! What the swarm task remembers per peer, and the peers and relays it keeps
//! reconnecting to.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use libp2p::Multiaddr;
use libp2p::core::transport::ListenerId;
use libp2p::swarm::ConnectionId;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::session::SessionHandle;
use super::{NetError, PeerInfo};
use crate::identity::NodeId;

/// Addresses remembered per peer (announced ones are attacker-controlled).
pub const MAX_KNOWN_ADDRS: usize = 16;

/// Where a `connect` call waits for its answer.
pub type ConnectReply = oneshot::Sender<Result<NodeId, NetError>>;

/// What the task tracks about one peer.
pub struct Peer {
    pub node: NodeId,
    /// Addresses we dialed it at or it announced (capped).
    pub known: Vec<Multiaddr>,
    /// Open connections and their remote addresses.
    pub conns: HashMap<ConnectionId, Multiaddr>,
    pub last_seen_ms: Option<i64>,
    pub session: Option<SessionHandle>,
    /// The ended session, still emitting its `Disconnected`.
    pub previous: Option<JoinHandle<()>>,
    pub ready: bool,
    /// `connect` calls waiting for the session to be ready.
    pub waiters: Vec<ConnectReply>,
}

impl Peer {
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            known: Vec::new(),
            conns: HashMap::new(),
            last_seen_ms: None,
            session: None,
            previous: None,
            ready: false,
            waiters: Vec::new(),
        }
    }

    pub fn remember(&mut self, addr: &Multiaddr) {
        if self.known.len() < MAX_KNOWN_ADDRS && !self.known.contains(addr) {
            self.known.push(addr.clone());
        }
    }

    pub fn seen(&mut self) {
        self.last_seen_ms = Some(now_ms());
    }

    pub fn info(&self) -> PeerInfo {
        let mut addrs: Vec<String> = Vec::new();
        for a in self.known.iter().chain(self.conns.values()) {
            let text = a.to_string();
            if !addrs.contains(&text) {
                addrs.push(text);
            }
        }
        PeerInfo {
            id: self.node,
            addrs,
            connected: self.ready,
            last_seen_ms: self.last_seen_ms,
        }
    }
}

/// A peer we keep connected to: redialed with backoff whenever it drops.
pub struct Keep {
    pub addrs: Vec<Multiaddr>,
    pub is_static: bool,
    pub backoff: Backoff,
    pub due: Option<Instant>,
}

/// A relay we listen through; re-listened with backoff when the listener closes.
pub struct RelayListen {
    pub circuit: Multiaddr,
    pub listener: Option<ListenerId>,
    pub backoff: Backoff,
    pub due: Option<Instant>,
}

/// Ends the peer's session (it emits `Disconnected` itself) and fails waiters.
pub fn end_session(p: &mut Peer, why: &str) {
    if let Some(session) = p.session.take() {
        p.previous = Some(session.done);
    }
    p.ready = false;
    for waiter in p.waiters.drain(..) {
        let _ = waiter.send(Err(NetError::Dial(why.to_string())));
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
