//! The libp2p stack: transports (TCP and QUIC, plus relayed circuits) and the
//! behaviours that run on every connection.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, dcutr, identify, identity::Keypair, kad, mdns, noise,
    ping, relay, tcp, yamux,
};

use super::{NetConfig, NetError};

/// Kademlia protocol of Weft's own DHT (kept apart from the public IPFS one).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/kad/1");
/// Identify protocol version string: peers with another one are still served.
const PROTOCOL_VERSION: &str = "/weft/1";
/// Connections with no open stream (e.g. to a relay or DHT peer) close after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every behaviour of a Weft node; sync streams go through `stream`.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub relay_client: relay::client::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub stream: libp2p_stream::Behaviour,
}

/// Builds the swarm for `key` (must run inside a tokio runtime).
pub fn build_swarm(key: Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let transport = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_behaviour(|key, relay_client| {
            let me = key.public().to_peer_id();
            let mdns = if config.mdns {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), me)?)
            } else {
                None
            };
            let relay = config
                .relay_server
                .then(|| relay::Behaviour::new(me, relay::Config::default()));
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            // The swarm task bootstraps on its own schedule, and only with
            // bootstrap peers; kad's own timer warns on every peerless node.
            kad_config.set_periodic_bootstrap_interval(None);
            let mut kad =
                kad::Behaviour::with_config(me, kad::store::MemoryStore::new(me), kad_config);
            // An always-on relay answers DHT queries; others decide from reachability.
            kad.set_mode(config.relay_server.then_some(kad::Mode::Server));
            Ok(Behaviour {
                relay_client,
                relay: relay.into(),
                dcutr: dcutr::Behaviour::new(me),
                identify: identify::Behaviour::new(
                    identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(format!("weft/{}", env!("CARGO_PKG_VERSION")))
                        .with_push_listen_addr_updates(true),
                ),
                ping: ping::Behaviour::default(),
                kad,
                mdns: mdns.into(),
                stream: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    Ok(swarm)
}
