//! Pausing and resuming networking, for apps that must go quiet in the
//! background. A pause shuts the swarm down for real (no sockets, no timers)
//! and a resume spawns a new one from the stored [`NetConfig`]; sessions are
//! rebuilt from scratch, so nothing the engine believed about the old
//! connections survives into the new ones.
//!
//! [`NetConfig`]: crate::net::NetConfig

use std::time::Duration;

use super::writer::Actor;
use crate::error::{Error, Result};
use crate::net::Net;
use crate::sync::Input;

/// How long a pause waits for the stopped swarm's sessions to report their
/// end before the engine is told about the rest itself.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

impl Actor {
    /// Shuts networking down, keeping the frames that already arrived.
    pub(super) async fn pause_network(&mut self) {
        let Some(net) = self.sync.net.take() else {
            return;
        };
        self.sync.published.send_replace(None);
        self.sync.redial = net
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
        if let Some(mut events) = self.sync.events.take() {
            let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
                self.net_events(event).await;
            }
        }
        let stale: Vec<_> = self.sync.engine.peers().collect();
        for peer in stale {
            self.drive(Input::Disconnected(peer)).await;
        }
        self.flush().await;
        tracing::info!("networking paused");
    }

    /// Starts networking again and redials the peers of the last pause in
    /// the background.
    pub(super) fn resume_network(&mut self) -> Result<()> {
        if self.sync.net.is_some() {
            return Ok(());
        }
        let config = self.sync.config.clone().ok_or_else(|| {
            Error::Network("networking is off: open the node with networking to resume it".into())
        })?;
        let (net, events) = crate::net::spawn(self.signing.to_bytes(), config)
            .map_err(|e| Error::Network(e.to_string()))?;
        self.sync.net = Some(net.clone());
        self.sync.events = Some(events);
        self.sync.published.send_replace(Some(net.clone()));
        let redial = std::mem::take(&mut self.sync.redial);
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
