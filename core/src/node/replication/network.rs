//! The sync host's side facing the network: bursts of network events, the
//! peers' statuses, and pausing and resuming networking for apps that must
//! go quiet in the background. A pause shuts the swarm down for real (no
//! sockets, no timers) and a resume spawns a new one from the stored
//! [`NetConfig`]; sessions are rebuilt from scratch, so nothing the engine
//! believed about the old connections survives into the new ones.
//!
//! [`NetConfig`]: crate::net::NetConfig

use std::collections::HashMap;
use std::time::Duration;

use super::SyncHost;
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::net::{Net, NetEvent};
use crate::node::PeerStatus;
use crate::node::docs::Docs;
use crate::node::spaces::Spaces;
use crate::sync::{Input, wire};

/// How long a pause waits for the stopped swarm's sessions to report their
/// end before the engine is told about the rest itself.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

impl SyncHost {
    /// Handles a burst of network events, then commits what they changed.
    pub(in crate::node) async fn net_events(
        &mut self,
        docs: &mut Docs,
        spaces: &mut Spaces,
        first: NetEvent,
    ) {
        let now = self.started.elapsed().as_millis() as u64;
        self.engine.advance(now);
        let mut event = Some(first);
        // Reused across bursts (an `Input` is large; growing a fresh vector
        // each burst showed in profiles).
        let mut inputs = std::mem::take(&mut self.inputs);
        while let Some(e) = event.take() {
            let input = match e {
                NetEvent::Connected(peer) => {
                    let mut challenge = [0u8; 32];
                    if let Err(e) = getrandom::fill(&mut challenge) {
                        tracing::error!(error = %e, "no randomness for a session challenge");
                        continue;
                    }
                    Input::Connected(peer, challenge)
                }
                NetEvent::Disconnected(peer) => Input::Disconnected(peer),
                NetEvent::Frame(peer, bytes) => match wire::decode(&bytes) {
                    Ok(message) => Input::Received(peer, message),
                    Err(err) => Input::Malformed(peer, err),
                },
            };
            inputs.push(input);
            if inputs.len() < super::EVENTS_PER_GROUP {
                event = self.events.as_mut().and_then(|rx| rx.try_recv().ok());
            }
        }
        self.prefetch_for(docs, &inputs);
        for input in inputs.drain(..) {
            self.drive(docs, spaces, input).await;
        }
        self.inputs = inputs;
        // Unused prefetched rows would go stale once the next write lands.
        self.states_read.clear();
        docs.end_prefetch();
        self.flush(docs);
    }

    /// Reads the documents and sync states a burst of inputs needs in one
    /// query each, instead of a store round trip per input (a large sync
    /// brings hundreds of frames per burst, each about another document).
    fn prefetch_for(&mut self, docs: &mut Docs, inputs: &[Input]) {
        let (mut keys, mut states) = (Vec::new(), Vec::new());
        for input in inputs {
            let needs = self.engine.needs(input);
            keys.extend(needs.docs);
            states.extend(needs.states);
        }
        docs.prefetch(keys);
        let mut by_peer: HashMap<NodeId, Vec<&DocKey>> = HashMap::new();
        for (peer, key) in &states {
            by_peer.entry(*peer).or_default().push(key);
        }
        for (peer, keys) in by_peer {
            match docs.store().sync_states(peer, &keys) {
                Ok(found) => {
                    for (key, state) in found {
                        self.states.insert((peer, key), state);
                    }
                    self.states_read
                        .extend(keys.into_iter().map(|k| (peer, k.clone())));
                }
                // Each input reads its own states again and reports it.
                Err(e) => tracing::warn!(error = %e, "prefetching sync states failed"),
            }
        }
    }

    /// Known peers with their sync progress.
    pub(in crate::node) async fn peer_statuses(&self) -> Vec<PeerStatus> {
        let Some(net) = &self.net else {
            return Vec::new();
        };
        net.peers()
            .await
            .into_iter()
            .map(|p| PeerStatus {
                pending: self.engine.pending(p.id),
                id: p.id,
                addrs: p.addrs,
                connected: p.connected,
                last_seen_ms: p.last_seen_ms,
            })
            .collect()
    }

    /// Shuts networking down, keeping the frames that already arrived.
    pub(in crate::node) async fn pause_network(&mut self, docs: &mut Docs, spaces: &mut Spaces) {
        let Some(net) = self.net.take() else {
            return;
        };
        self.published.send_replace(None);
        self.redial = net
            .peers()
            .await
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| {
                // `connect` needs the peer id in the address.
                let suffix = format!("/p2p/{}", p.id);
                p.addrs
                    .into_iter()
                    .map(|a| if a.ends_with(&suffix) { a } else { a + &suffix })
                    .collect()
            })
            .collect();
        net.shutdown().await;
        // The stopped sessions still emit what they read and their
        // `Disconnected`; the channel closes once the last one is gone.
        if let Some(mut events) = self.events.take() {
            let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
                self.net_events(docs, spaces, event).await;
            }
        }
        let stale: Vec<_> = self.engine.peers().collect();
        for peer in stale {
            self.drive(docs, spaces, Input::Disconnected(peer)).await;
        }
        self.flush(docs);
        tracing::info!("networking paused");
    }

    /// Starts networking again with the node key and redials the peers of
    /// the last pause in the background.
    pub(in crate::node) fn resume_network(&mut self, key: [u8; 32]) -> Result<()> {
        if self.net.is_some() {
            return Ok(());
        }
        let config = self.config.clone().ok_or_else(|| {
            Error::Network("networking is off: open the node with networking to resume it".into())
        })?;
        let (net, events) =
            crate::net::spawn(key, config).map_err(|e| Error::Network(e.to_string()))?;
        self.net = Some(net.clone());
        self.events = Some(events);
        self.published.send_replace(Some(net.clone()));
        let redial = std::mem::take(&mut self.redial);
        if !redial.is_empty() {
            tokio::spawn(redial_all(net, redial));
        }
        tracing::info!("networking resumed");
        Ok(())
    }
}

/// Dials each peer at its addresses in turn until one answers.
async fn redial_all(net: Net, peers: Vec<Vec<String>>) {
    let dials = peers.into_iter().map(|addrs| {
        let net = net.clone();
        async move {
            for addr in addrs {
                let Ok(parsed) = addr.parse() else { continue };
                match net.connect(parsed).await {
                    Ok(peer) => {
                        tracing::debug!(%peer, %addr, "redialed after resume");
                        return;
                    }
                    Err(e) => tracing::debug!(%addr, error = %e, "redial failed"),
                }
            }
        }
    });
    futures::future::join_all(dials).await;
}
