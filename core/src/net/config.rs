//! What a node listens on and whom it keeps in touch with.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::NetError;

/// Networking settings of one node.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Addresses to listen on; `0.0.0.0` means every interface.
    pub listen: Vec<Multiaddr>,
    /// Static peers (each ending in `/p2p/<id>`): dialed at start and redialed
    /// whenever the connection drops, with backoff from 1 s doubling to 60 s.
    pub peers: Vec<Multiaddr>,
    /// Discover and dial peers on the local network with mDNS.
    pub mdns: bool,
    /// Kademlia bootstrap peers (each ending in `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Serve as a circuit relay v2 for others (for always-on, reachable nodes);
    /// also puts Kademlia in server mode.
    pub relay_server: bool,
    /// Relays (each ending in `/p2p/<id>`) to listen through, so peers behind
    /// NAT can reach this node; DCUtR then tries to upgrade to a direct link.
    pub relays: Vec<Multiaddr>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid literal"),
                "/ip4/0.0.0.0/udp/0/quic-v1".parse().expect("valid literal"),
            ],
            peers: Vec::new(),
            mdns: true,
            bootstrap: Vec::new(),
            relay_server: false,
            relays: Vec::new(),
        }
    }
}

impl NetConfig {
    /// A config listening on loopback TCP only, without mDNS: for tests and
    /// single-machine setups.
    pub fn local() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid literal")],
            mdns: false,
            ..Self::default()
        }
    }

    /// Checks that every address that must name a peer does.
    pub(crate) fn validate(&self) -> Result<(), NetError> {
        for (what, list) in [
            ("static peer", &self.peers),
            ("bootstrap peer", &self.bootstrap),
            ("relay", &self.relays),
        ] {
            for addr in list {
                split_peer(addr).ok_or_else(|| {
                    NetError::InvalidAddress(format!("{what} {addr} must end in /p2p/<peer id>"))
                })?;
            }
        }
        Ok(())
    }
}

/// Splits `<transport addr>/p2p/<id>` into the peer id and the full address.
pub(crate) fn split_peer(addr: &Multiaddr) -> Option<libp2p::PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// `addr` with `/p2p/<peer>` appended unless it already ends in a peer id.
pub(crate) fn with_peer(addr: Multiaddr, peer: libp2p::PeerId) -> Multiaddr {
    if split_peer(&addr).is_some() {
        addr
    } else {
        addr.with(Protocol::P2p(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_must_name_an_id() {
        let mut config = NetConfig::local();
        assert!(config.validate().is_ok());
        config.peers.push("/ip4/127.0.0.1/tcp/1".parse().unwrap());
        let err = config.validate().unwrap_err();
        assert!(matches!(err, NetError::InvalidAddress(_)), "{err}");
        assert!(err.to_string().contains("/p2p/"), "{err}");
    }

    #[test]
    fn with_peer_appends_once() {
        let peer = libp2p::PeerId::random();
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let b = with_peer(a.clone(), peer);
        assert_eq!(split_peer(&b), Some(peer));
        assert_eq!(with_peer(b.clone(), peer), b);
    }
}
