//! Peers, status and the network's lifecycle as an app sees it.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::WeftError;
use crate::node::WeftNode;

/// A peer and how far sync with it has come.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Peer {
    /// Its node id.
    pub node_id: String,
    /// Addresses it was seen at.
    pub addrs: Vec<String>,
    /// Whether a connection is up now.
    pub connected: bool,
    /// When it was last seen (unix milliseconds).
    pub last_seen_ms: Option<i64>,
    /// Documents still being exchanged with it, per space id.
    pub pending: HashMap<String, u64>,
}

/// A summary of the node.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NodeStatus {
    /// This device's node id.
    pub node_id: String,
    /// Live documents stored.
    pub documents: u64,
    /// Peers connected now.
    pub peers_connected: u64,
    /// Documents still being exchanged, over all peers and spaces.
    pub pending: u64,
    /// Whether networking is running (not off, not paused).
    pub online: bool,
    /// Sync frames and bytes since networking last started.
    pub frames_sent: u64,
    /// Frames read from peers.
    pub frames_received: u64,
    /// Bytes written to peers.
    pub bytes_sent: u64,
    /// Bytes read from peers.
    pub bytes_received: u64,
}

#[uniffi::export]
impl WeftNode {
    /// Addresses peers can dial, each ending in `/p2p/<node id>`; empty
    /// while networking is off or paused.
    pub async fn listen_addrs(&self) -> Result<Vec<String>, WeftError> {
        let node = self.node.clone();
        self.run(async move { Ok(node.listen_addrs().await) }).await
    }

    /// Dials a peer (a multiaddr ending in `/p2p/<node id>`) and returns its
    /// node id once connected; sync starts by itself.
    pub async fn connect(&self, addr: String) -> Result<String, WeftError> {
        let node = self.node.clone();
        let id = self.run(async move { node.connect(&addr).await }).await?;
        Ok(id.to_string())
    }

    /// Known peers with their sync progress.
    pub async fn peers(&self) -> Result<Vec<Peer>, WeftError> {
        let node = self.node.clone();
        let peers = self.run(async move { node.peers().await }).await?;
        Ok(peers
            .into_iter()
            .map(|p| Peer {
                node_id: p.id.to_string(),
                addrs: p.addrs,
                connected: p.connected,
                last_seen_ms: p.last_seen_ms,
                pending: p
                    .pending
                    .into_iter()
                    .map(|(space, n)| (space, n as u64))
                    .collect(),
            })
            .collect())
    }

    /// Documents, peers, pending work and traffic.
    pub async fn status(&self) -> Result<NodeStatus, WeftError> {
        let node = self.node.clone();
        let s = self.run(async move { node.status().await }).await?;
        Ok(NodeStatus {
            node_id: s.node_id.to_string(),
            documents: s.documents,
            peers_connected: s.peers_connected as u64,
            pending: s.pending as u64,
            online: s.online,
            frames_sent: s.net.frames_sent,
            frames_received: s.net.frames_received,
            bytes_sent: s.net.bytes_sent,
            bytes_received: s.net.bytes_received,
        })
    }

    /// Waits until every connected peer is in sync (nothing left to
    /// exchange), failing with `Timeout` after `timeout_ms`.
    pub async fn wait_synced(&self, timeout_ms: u64) -> Result<(), WeftError> {
        let node = self.node.clone();
        self.run(async move {
            node.wait_synced(Duration::from_millis(timeout_ms))
                .await
                .map(|_| ())
        })
        .await
    }

    /// Closes every connection and stops listening and dialing, for an app
    /// going to the background. Reads and writes keep working locally.
    pub async fn pause_network(&self) -> Result<(), WeftError> {
        let node = self.node.clone();
        self.run(async move { node.pause_network().await }).await
    }

    /// Starts networking again after [`WeftNode::pause_network`]: listens
    /// anew (ports chosen by the OS may change) and redials the peers that
    /// were connected; changes made meanwhile sync.
    pub async fn resume_network(&self) -> Result<(), WeftError> {
        let node = self.node.clone();
        self.run(async move { node.resume_network().await }).await
    }
}
