//! How a mobile app configures a node.

use weft_core::Config;
use weft_core::{Multiaddr, NetConfig};

use crate::error::WeftError;

/// Options for [`crate::WeftNode::open`]. The defaults suit a phone: online,
/// listening on every interface (TCP and QUIC, ports chosen by the OS),
/// discovering peers on the local network with mDNS.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NodeOptions {
    /// Sync with peers at all; `false` keeps the replica purely local.
    #[uniffi(default = true)]
    pub network: bool,
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/0`; empty means every
    /// interface on TCP and QUIC.
    #[uniffi(default)]
    pub listen: Vec<String>,
    /// Peers to keep connected to, each ending in `/p2p/<node id>`; redialed
    /// with backoff whenever the connection drops.
    #[uniffi(default)]
    pub peers: Vec<String>,
    /// Find peers on the local network. iOS needs the multicast entitlement
    /// and Android a `MulticastLock` for this to see anything.
    #[uniffi(default = true)]
    pub mdns: bool,
    /// Kademlia bootstrap peers, each ending in `/p2p/<node id>`.
    #[uniffi(default)]
    pub bootstrap: Vec<String>,
    /// Circuit relays to be reachable through from behind NAT, each ending
    /// in `/p2p/<node id>`.
    #[uniffi(default)]
    pub relays: Vec<String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            network: true,
            listen: Vec::new(),
            peers: Vec::new(),
            mdns: true,
            bootstrap: Vec::new(),
            relays: Vec::new(),
        }
    }
}

impl NodeOptions {
    /// The core configuration for a replica in `data_dir`.
    pub(crate) fn config(&self, data_dir: &str) -> Result<Config, WeftError> {
        if data_dir.is_empty() {
            return Err(WeftError::invalid(
                "data_dir is empty: pass the app's files directory",
            ));
        }
        let mut config = Config::with_data_dir(data_dir);
        if self.network {
            let mut net = NetConfig::default();
            if !self.listen.is_empty() {
                net.listen = addrs("listen", &self.listen)?;
            }
            net.peers = addrs("peers", &self.peers)?;
            net.mdns = self.mdns;
            net.bootstrap = addrs("bootstrap", &self.bootstrap)?;
            net.relays = addrs("relays", &self.relays)?;
            config.network = Some(net);
        }
        Ok(config)
    }
}

fn addrs(field: &str, list: &[String]) -> Result<Vec<Multiaddr>, WeftError> {
    list.iter()
        .map(|a| {
            a.parse()
                .map_err(|e| WeftError::invalid(format!("{field}: invalid address {a:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_online_with_mdns() {
        let config = NodeOptions::default().config("/tmp/weft").unwrap();
        let net = config.network.expect("online by default");
        assert!(net.mdns);
        assert_eq!(net.listen, NetConfig::default().listen);
    }

    #[test]
    fn bad_options_are_refused_with_the_field_named() {
        let options = NodeOptions {
            listen: vec!["not an address".into()],
            ..NodeOptions::default()
        };
        let err = options.config("/tmp/weft").unwrap_err();
        assert!(matches!(err, WeftError::InvalidInput(ref m) if m.starts_with("listen:")));
        assert!(NodeOptions::default().config("").is_err());
        let offline = NodeOptions {
            network: false,
            ..NodeOptions::default()
        };
        assert!(offline.config("/tmp/weft").unwrap().network.is_none());
    }
}
