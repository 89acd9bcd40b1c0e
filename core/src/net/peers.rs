//! What the swarm task remembers per peer, and the peers and relays it keeps
//! reconnecting to.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use libp2p::core::transport::ListenerId;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::link::Links;
use super::session::SessionHandle;
use super::{NetError, PeerInfo};
use crate::identity::NodeId;

/// Addresses remembered per peer (announced ones are attacker-controlled).
pub const MAX_KNOWN_ADDRS: usize = 16;

/// Peers remembered at most. Every new identity that connects adds a record,
/// and identities cost a stranger nothing; records of disconnected peers are
/// evicted, oldest first, past this (it is twice `MAX_CONNECTIONS`, so live
/// peers always fit).
pub const MAX_PEER_RECORDS: usize = 256;
/// Peers found by mDNS kept for redialing at most: anyone on the LAN can
/// announce identities, and each is dialed.
pub const MAX_DISCOVERED: usize = 64;

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

/// Makes room for one more record: if `peers` is full, evicts the
/// disconnected peer seen longest ago (one with nothing pending on it).
pub fn make_room(peers: &mut HashMap<PeerId, Peer>) {
    if peers.len() < MAX_PEER_RECORDS {
        return;
    }
    let idle = peers
        .iter()
        .filter(|(_, p)| {
            p.conns.is_empty()
                && p.session.is_none()
                && p.waiters.is_empty()
                && p.previous.as_ref().is_none_or(JoinHandle::is_finished)
        })
        .min_by_key(|(_, p)| p.last_seen_ms)
        .map(|(id, _)| *id);
    if let Some(id) = idle {
        peers.remove(&id);
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
pub fn end_session(p: &mut Peer, links: &Links, why: &str) {
    if let Some(session) = p.session.take() {
        links.remove(&p.node, session.generation);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeId {
        let key = libp2p::identity::Keypair::generate_ed25519();
        super::super::ids::node_id(&key.public().to_peer_id()).expect("ed25519")
    }

    #[test]
    fn the_table_evicts_the_oldest_disconnected_peer() {
        let mut peers = HashMap::new();
        let live = PeerId::random();
        let mut p = Peer::new(node());
        p.conns
            .insert(ConnectionId::new_unchecked(1), Multiaddr::empty());
        p.last_seen_ms = Some(0);
        peers.insert(live, p);
        for i in 1..MAX_PEER_RECORDS {
            let mut p = Peer::new(node());
            p.last_seen_ms = Some(i as i64);
            peers.insert(PeerId::random(), p);
        }
        let oldest_idle = peers
            .iter()
            .find(|(_, p)| p.last_seen_ms == Some(1))
            .map(|(id, _)| *id)
            .expect("present");
        for _ in 0..3 * MAX_PEER_RECORDS {
            make_room(&mut peers);
            assert!(peers.len() < MAX_PEER_RECORDS);
            let mut p = Peer::new(node());
            p.last_seen_ms = Some(i64::MAX);
            peers.insert(PeerId::random(), p);
            assert!(peers.len() <= MAX_PEER_RECORDS);
        }
        assert!(
            peers.contains_key(&live),
            "a connected peer is never evicted"
        );
        assert!(!peers.contains_key(&oldest_idle));
    }
}
