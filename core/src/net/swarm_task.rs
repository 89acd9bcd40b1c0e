//! The task that owns the swarm: runs commands from [`super::Net`] handles,
//! reacts to swarm events, starts and ends peer sessions, and redials the
//! peers it keeps (static and mDNS-discovered) with backoff.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, Swarm, identify, mdns, ping};
use tokio::sync::{mpsc, oneshot};

use super::backoff::Backoff;
use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::config::{split_peer, with_peer};
use super::dial_reason::dial_reason;
use super::link::Links;
use super::peers::{
    ConnectReply, Keep, MAX_DISCOVERED, MAX_KNOWN_ADDRS, Peer, RelayListen, end_session, make_room,
};
use super::session::{self, Counters, Report, SessionParams};
use super::{NetConfig, NetError, NetEvent, PeerInfo, SYNC_PROTOCOL, ids};
use crate::identity::NodeId;
use crate::warn_limit::WarnLimit;

/// How long `listen_addrs` waits for listeners that have not reported yet.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How often Kademlia re-bootstraps when bootstrap peers are configured.
const BOOTSTRAP_EVERY: Duration = Duration::from_secs(300);
/// Inbound streams held for a peer whose connection event has not arrived yet:
/// a session reads one, so holding more would only buffer a stranger's data.
const MAX_EARLY_STREAMS: usize = 1;

/// Requests from [`super::Net`] handles.
pub enum Command {
    Connect(Multiaddr, ConnectReply),
    /// Keep these peers connected: dial now, redial with backoff.
    Keep(Vec<Multiaddr>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Disconnect(NodeId, oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    /// Hands out the stream control, so tests can open extra streams.
    #[cfg(test)]
    Control(oneshot::Sender<libp2p_stream::Control>),
}

/// The swarm and everything the task tracks.
pub struct SwarmTask {
    swarm: Swarm<Behaviour>,
    control: libp2p_stream::Control,
    incoming: libp2p_stream::IncomingStreams,
    commands: mpsc::UnboundedReceiver<Command>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    events: mpsc::Sender<NetEvent>,
    counters: Arc<Counters>,
    links: Arc<Links>,
    peers: HashMap<PeerId, Peer>,
    keep: HashMap<PeerId, Keep>,
    relays: Vec<RelayListen>,
    dials: HashMap<ConnectionId, ConnectReply>,
    pending_listeners: HashSet<ListenerId>,
    addr_waiters: Vec<(Instant, oneshot::Sender<Vec<Multiaddr>>)>,
    early_streams: HashMap<PeerId, Vec<Stream>>,
    relay_server: bool,
    next_bootstrap: Option<Instant>,
    generation: u64,
    /// Warnings a peer causes, one line per peer and cause a minute.
    warnings: WarnLimit,
    started: Instant,
}

impl SwarmTask {
    /// Binds the listeners and queues the first dials.
    pub fn new(
        mut swarm: Swarm<Behaviour>,
        config: &NetConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<NetEvent>,
        counters: Arc<Counters>,
        links: Arc<Links>,
    ) -> Result<Self, NetError> {
        let mut control = swarm.behaviour().stream.new_control();
        let incoming = control
            .accept(StreamProtocol::new(SYNC_PROTOCOL))
            .map_err(|e| NetError::Transport(e.to_string()))?;
        let mut pending_listeners = HashSet::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen(format!("{addr}: {e}")))?;
            pending_listeners.insert(id);
        }
        let now = Instant::now();
        let mut keep: HashMap<PeerId, Keep> = HashMap::new();
        for addr in &config.peers {
            let Some(peer) = split_peer(addr) else {
                continue; // validated by NetConfig::validate
            };
            let entry = keep.entry(peer).or_insert_with(|| Keep {
                addrs: Vec::new(),
                is_static: true,
                backoff: Backoff::default(),
                due: Some(now),
            });
            entry.addrs.push(addr.clone());
        }
        let mut relays = Vec::new();
        for relay in &config.relays {
            let circuit = relay.clone().with(Protocol::P2pCircuit);
            let id = swarm
                .listen_on(circuit.clone())
                .map_err(|e| NetError::Listen(format!("{circuit}: {e}")))?;
            pending_listeners.insert(id);
            relays.push(RelayListen {
                circuit,
                listener: Some(id),
                backoff: Backoff::default(),
                due: None,
            });
        }
        for addr in &config.bootstrap {
            if let Some(peer) = split_peer(addr) {
                let mut plain = addr.clone();
                plain.pop();
                swarm.behaviour_mut().kad.add_address(&peer, plain);
            }
        }
        let (reports_tx, reports) = mpsc::unbounded_channel();
        Ok(Self {
            swarm,
            control,
            incoming,
            commands,
            reports_tx,
            reports,
            events,
            counters,
            links,
            peers: HashMap::new(),
            keep,
            relays,
            dials: HashMap::new(),
            pending_listeners,
            addr_waiters: Vec::new(),
            early_streams: HashMap::new(),
            relay_server: config.relay_server,
            next_bootstrap: (!config.bootstrap.is_empty()).then_some(now),
            generation: 0,
            warnings: WarnLimit::default(),
            started: now,
        })
    }

    /// Runs until `shutdown` or until every [`super::Net`] handle is dropped.
    pub async fn run(mut self) {
        tracing::info!(id = %self.swarm.local_peer_id(), "networking started");
        let reply = loop {
            let deadline = self.next_deadline();
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // Biased: a session's report is handled before any command the app
            // sends after seeing that session's events, so `peers()` agrees with them.
            tokio::select! {
                biased;
                Some(report) = self.reports.recv() => self.on_report(report),
                Some((peer, stream)) = self.incoming.next() => self.on_inbound(peer, stream),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                () = timer => self.on_timer(),
            }
        };
        tracing::info!(id = %self.swarm.local_peer_id(), "networking stopped");
        // Dropping the sessions ends them (each emits Disconnected); dropping
        // the swarm closes every connection.
        self.links.clear();
        drop(self);
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let keep = self.keep.values().filter_map(|k| k.due);
        let relays = self.relays.iter().filter_map(|r| r.due);
        let waiters = self.addr_waiters.iter().map(|(at, _)| *at);
        keep.chain(relays)
            .chain(waiters)
            .chain(self.next_bootstrap)
            .min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .keep
            .iter()
            .filter(|(_, k)| k.due.is_some_and(|at| at <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.dial_kept(peer);
        }
        for relay in &mut self.relays {
            if relay.due.is_some_and(|at| at <= now) {
                relay.due = None;
                match self.swarm.listen_on(relay.circuit.clone()) {
                    Ok(id) => {
                        relay.listener = Some(id);
                        self.pending_listeners.insert(id);
                    }
                    Err(e) => {
                        tracing::warn!(relay = %relay.circuit, error = %e, "cannot listen via relay");
                        relay.due = Some(now + relay.backoff.next_delay());
                    }
                }
            }
        }
        if self.next_bootstrap.is_some_and(|at| at <= now) {
            self.next_bootstrap = Some(now + BOOTSTRAP_EVERY);
            if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
                tracing::debug!(error = %e, "kademlia bootstrap skipped");
            }
        }
        self.answer_addr_waiters(now);
    }

    /// Adds a found peer (mDNS, an invite) to those kept connected, within
    /// `MAX_DISCOVERED` such peers and `MAX_KNOWN_ADDRS` addresses each.
    /// Returns whether it is kept.
    fn keep_addr(&mut self, peer: PeerId, addr: Multiaddr) -> bool {
        let discovered = self.keep.values().filter(|k| !k.is_static).count();
        if !self.keep.contains_key(&peer) && discovered >= MAX_DISCOVERED {
            tracing::debug!(%peer, "not keeping peer: MAX_DISCOVERED reached");
            return false;
        }
        let keep = self.keep.entry(peer).or_insert_with(|| Keep {
            addrs: Vec::new(),
            is_static: false,
            backoff: Backoff::default(),
            due: None,
        });
        if !keep.addrs.contains(&addr) && keep.addrs.len() < MAX_KNOWN_ADDRS {
            keep.addrs.push(addr);
        }
        true
    }

    /// Dials a kept peer unless it is connected or being dialed.
    fn dial_kept(&mut self, peer: PeerId) {
        let Some(keep) = self.keep.get_mut(&peer) else {
            return;
        };
        keep.due = None;
        if self.swarm.is_connected(&peer) || keep.addrs.is_empty() {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(keep.addrs.clone())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => tracing::debug!(%peer, "dialing kept peer"),
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "dial failed at once");
                keep.due = Some(Instant::now() + keep.backoff.next_delay());
            }
        }
    }

    /// Schedules the next redial of a kept peer that is not connected.
    fn schedule_redial(&mut self, peer: PeerId) {
        if self.swarm.is_connected(&peer) {
            return;
        }
        if let Some(keep) = self.keep.get_mut(&peer)
            && keep.due.is_none()
        {
            let delay = keep.backoff.next_delay();
            tracing::debug!(%peer, ?delay, "redial scheduled");
            keep.due = Some(Instant::now() + delay);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Connect(addr, reply) => self.connect(addr, reply),
            Command::Keep(addrs) => {
                let mut dial = Vec::new();
                for addr in addrs {
                    let Some(peer) = split_peer(&addr) else {
                        tracing::debug!(%addr, "not keeping an address without /p2p/<id>");
                        continue;
                    };
                    if self.keep_addr(peer, addr) && !dial.contains(&peer) {
                        dial.push(peer);
                    }
                }
                for peer in dial {
                    self.dial_kept(peer);
                }
            }
            Command::ListenAddrs(reply) => {
                if self.pending_listeners.is_empty() {
                    let _ = reply.send(self.listen_addrs());
                } else {
                    self.addr_waiters
                        .push((Instant::now() + LISTEN_WAIT, reply));
                }
            }
            Command::Peers(reply) => {
                let mut peers: Vec<PeerInfo> = self.peers.values().map(Peer::info).collect();
                peers.sort_by_key(|p| p.id);
                let _ = reply.send(peers);
            }
            Command::Disconnect(node, reply) => {
                let peer = ids::peer_id(&node);
                if self.swarm.disconnect_peer_id(peer).is_ok() {
                    tracing::info!(%node, "disconnecting peer on request");
                }
                let _ = reply.send(());
            }
            // Handled by the run loop.
            Command::Shutdown(_) => {}
            #[cfg(test)]
            Command::Control(reply) => {
                let _ = reply.send(self.control.clone());
            }
        }
    }

    fn connect(&mut self, addr: Multiaddr, reply: ConnectReply) {
        let opts = match split_peer(&addr) {
            Some(peer) => {
                if let Some(p) = self.peers.get_mut(&peer)
                    && !p.conns.is_empty()
                {
                    if p.ready {
                        let _ = reply.send(Ok(p.node));
                    } else {
                        p.waiters.push(reply);
                    }
                    return;
                }
                if ids::node_id(&peer).is_none() {
                    let _ = reply.send(Err(NetError::InvalidAddress(format!(
                        "{addr}: peer id is not an ed25519 key"
                    ))));
                    return;
                }
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::Always)
                    .build()
            }
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dials.insert(id, reply);
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "dial failed at once");
                let _ = reply.send(Err(NetError::Dial(dial_reason(&e))));
            }
        }
    }

    fn listen_addrs(&self) -> Vec<Multiaddr> {
        let me = *self.swarm.local_peer_id();
        self.swarm
            .listeners()
            .map(|a| with_peer(a.clone(), me))
            .collect()
    }

    fn answer_addr_waiters(&mut self, now: Instant) {
        let all_reported = self.pending_listeners.is_empty();
        if !all_reported && self.addr_waiters.iter().all(|(at, _)| *at > now) {
            return;
        }
        let addrs = self.listen_addrs();
        let waiters = std::mem::take(&mut self.addr_waiters);
        for (at, reply) in waiters {
            if all_reported || at <= now {
                let _ = reply.send(addrs.clone());
            } else {
                self.addr_waiters.push((at, reply));
            }
        }
    }

    fn on_inbound(&mut self, peer: PeerId, stream: Stream) {
        match self.peers.get(&peer).and_then(|p| p.session.as_ref()) {
            Some(session) => {
                let _ = session.inbound.send(stream);
            }
            None => {
                // The stream can overtake the connection event; hold it briefly.
                let early = self.early_streams.entry(peer).or_default();
                if early.len() < MAX_EARLY_STREAMS {
                    early.push(stream);
                }
            }
        }
    }

    fn on_report(&mut self, report: Report) {
        match report {
            Report::Ready { peer, generation } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.session.as_ref().map(|s| s.generation) != Some(generation) {
                    return;
                }
                p.ready = true;
                tracing::info!(peer = %p.node, "peer session ready");
                for waiter in p.waiters.drain(..) {
                    let _ = waiter.send(Ok(p.node));
                }
                if let Some(keep) = self.keep.get_mut(&peer) {
                    keep.backoff.reset();
                }
            }
            Report::Failed {
                peer,
                generation,
                reason,
            } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.session.as_ref().map(|s| s.generation) != Some(generation) {
                    return;
                }
                let since = self.started.elapsed().as_millis() as u64;
                if let Some(repeated) = self.warnings.allow(p.node, "session failed", since) {
                    tracing::warn!(peer = %p.node, %reason, repeated, "closing connections to peer");
                }
                end_session(p, &self.links, "session failed");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn start_session(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.session.is_some() {
            return;
        }
        self.generation += 1;
        let session = session::start(
            SessionParams {
                peer,
                node: p.node,
                generation: self.generation,
                control: self.control.clone(),
                events: self.events.clone(),
                reports: self.reports_tx.clone(),
                counters: self.counters.clone(),
                previous: p.previous.take(),
            },
            &self.links,
        );
        for stream in self.early_streams.remove(&peer).unwrap_or_default() {
            let _ = session.inbound.send(stream);
        }
        p.session = Some(session);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_connection(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.conns.remove(&connection_id);
                    p.seen();
                    if num_established == 0 {
                        end_session(
                            p,
                            &self.links,
                            "connection closed before the sync stream opened",
                        );
                        tracing::info!(peer = %p.node, "peer disconnected");
                    }
                }
                if num_established == 0 {
                    self.early_streams.remove(&peer_id);
                    self.schedule_redial(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial(dial_reason(&error))));
                }
                if let Some(peer) = peer_id {
                    self.schedule_redial(peer);
                }
            }
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                self.pending_listeners.remove(&listener_id);
                let circuit = address.iter().any(|p| p == Protocol::P2pCircuit);
                if self.relay_server && !circuit {
                    // A relay advertises itself only with confirmed external addresses;
                    // an always-on node's listen addresses are those.
                    self.swarm.add_external_address(address);
                }
                if let Some(relay) = self
                    .relays
                    .iter_mut()
                    .find(|r| r.listener == Some(listener_id))
                {
                    relay.backoff.reset();
                }
                self.answer_addr_waiters(Instant::now());
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.pending_listeners.remove(&listener_id);
                if let Some(relay) = self
                    .relays
                    .iter_mut()
                    .find(|r| r.listener == Some(listener_id))
                {
                    let delay = relay.backoff.next_delay();
                    tracing::warn!(relay = %relay.circuit, ?reason, ?delay, "relay listener closed; retrying");
                    relay.listener = None;
                    relay.due = Some(Instant::now() + delay);
                } else if let Err(e) = reason {
                    tracing::warn!(error = %e, "listener closed");
                }
                self.answer_addr_waiters(Instant::now());
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            _ => {}
        }
    }

    fn on_connection(&mut self, peer: PeerId, id: ConnectionId, endpoint: &ConnectedPoint) {
        let reply = self.dials.remove(&id);
        let Some(node) = ids::node_id(&peer) else {
            tracing::warn!(%peer, "refusing peer: its key is not ed25519, so it has no node id");
            self.swarm.close_connection(id);
            if let Some(reply) = reply {
                let _ = reply.send(Err(NetError::Dial(format!(
                    "peer {peer} does not use an ed25519 key"
                ))));
            }
            return;
        };
        if !self.peers.contains_key(&peer) {
            make_room(&mut self.peers);
        }
        let p = self.peers.entry(peer).or_insert_with(|| Peer::new(node));
        let remote = match endpoint {
            ConnectedPoint::Dialer { address, .. } => {
                p.remember(address);
                address.clone()
            }
            ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
        };
        tracing::debug!(%node, %remote, "connection established");
        p.conns.insert(id, remote);
        p.seen();
        if let Some(reply) = reply {
            if p.ready {
                let _ = reply.send(Ok(node));
            } else {
                p.waiters.push(reply);
            }
        }
        if let Some(keep) = self.keep.get_mut(&peer) {
            keep.due = None;
        }
        self.start_session(peer);
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let kad = info.protocols.contains(&KAD_PROTOCOL);
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    for addr in &info.listen_addrs {
                        p.remember(addr);
                    }
                    p.seen();
                }
                if kad {
                    for addr in info.listen_addrs.into_iter().take(MAX_KNOWN_ADDRS) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) => match result {
                Ok(rtt) => {
                    tracing::trace!(%peer, ?rtt, "ping");
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.seen();
                    }
                }
                Err(e) => tracing::debug!(%peer, error = %e, "ping failed"),
            },
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                let me = *self.swarm.local_peer_id();
                let mut dial = Vec::new();
                for (peer, addr) in found {
                    if peer == me || ids::node_id(&peer).is_none() {
                        continue;
                    }
                    tracing::debug!(%peer, %addr, "mDNS discovered");
                    if self.keep_addr(peer, addr) {
                        dial.push(peer);
                    }
                }
                dial.dedup();
                for peer in dial {
                    self.dial_kept(peer);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(gone)) => {
                for (peer, addr) in gone {
                    if let Some(keep) = self.keep.get_mut(&peer)
                        && !keep.is_static
                    {
                        keep.addrs.retain(|a| *a != addr);
                        if keep.addrs.is_empty() {
                            self.keep.remove(&peer);
                        }
                    }
                }
            }
            BehaviourEvent::RelayClient(event) => tracing::info!(?event, "relay client"),
            BehaviourEvent::Relay(event) => tracing::debug!(?event, "relay server"),
            BehaviourEvent::Dcutr(event) => tracing::info!(?event, "hole punching"),
            BehaviourEvent::Kad(event) => tracing::trace!(?event, "kademlia"),
            _ => {}
        }
    }
}
