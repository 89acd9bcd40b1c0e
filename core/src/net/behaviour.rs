//! The libp2p stack: transports (TCP and QUIC, plus relayed circuits) and the
//! behaviours that run on every connection.
//!
//! Transport buffers a peer can fill without our reading are bounded per
//! connection: yamux grants each stream a 256 KiB window, so at most
//! `MAX_STREAMS × 256 KiB` = 8 MiB; QUIC at most [`QUIC_CONNECTION_WINDOW`].
//! With the connection limits that is at most `MAX_CONNECTIONS × 8 MiB`, and
//! much less in practice: streams we read (the sync stream after the
//! handshake, protocol negotiation) drain their windows.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, connection_limits, dcutr, identify, identity::Keypair,
    kad, mdns, noise, ping, relay, tcp, yamux,
};

use super::{
    MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, MAX_INCOMING_CONNECTIONS, MAX_PENDING_INCOMING,
    NetConfig, NetError,
};

/// Kademlia protocol of Weft's own DHT (kept apart from the public IPFS one).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/kad/1");
/// Identify protocol version string: peers with another one are still served.
const PROTOCOL_VERSION: &str = "/weft/1";
/// Connections with no open stream (e.g. to a relay or DHT peer) close after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent streams per yamux connection: two sync streams, identify, ping,
/// a few Kademlia queries and relay circuits fit many times over, and each
/// stream's window is memory a peer can fill.
pub const MAX_STREAMS: usize = 32;
/// Streams per connection still negotiating their protocol (libp2p's default
/// is 128); honest peers open a few at once.
pub const MAX_NEGOTIATING_STREAMS: usize = 16;
/// Bytes a QUIC peer may have in flight on one connection (quinn's default is
/// 15 MB): 8 MiB still fills a 100 ms, 600 Mbit/s path.
pub const QUIC_CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
/// Bytes a QUIC peer may have in flight on one stream: one frame's worth.
pub const QUIC_STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// Every behaviour of a Weft node; sync streams go through `stream`.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// First, so connections over the limits are denied before others see them.
    pub limits: connection_limits::Behaviour,
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
            yamux_config,
        )
        .map_err(|e| transport(&e))?
        .with_quic_config(|mut c| {
            c.max_connection_data = QUIC_CONNECTION_WINDOW;
            c.max_stream_data = QUIC_STREAM_WINDOW;
            c.max_concurrent_stream_limit = MAX_STREAMS as u32;
            c
        })
        .with_relay_client(noise::Config::new, yamux_config)
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
                limits: connection_limits::Behaviour::new(limits()),
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
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(IDLE_TIMEOUT)
                .with_max_negotiating_inbound_streams(MAX_NEGOTIATING_STREAMS)
        })
        .build();
    Ok(swarm)
}

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(MAX_STREAMS);
    c
}

/// The connection limits of the crate's constants.
pub fn limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_established(Some(MAX_CONNECTIONS))
        .with_max_established_incoming(Some(MAX_INCOMING_CONNECTIONS))
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
}
