//! PeerId <-> NodeId. A NodeId is an ed25519 key, so only peers with ed25519
//! identities can be named by the layers above.

use libp2p::PeerId;

use crate::identity::NodeId;

/// The NodeId of a peer, or `None` when its key is not ed25519.
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    NodeId::from_peer_id_bytes(&peer.to_bytes())
}

/// The PeerId of a node.
pub fn peer_id(node: &NodeId) -> PeerId {
    // An identity multihash of 36 bytes is always a valid PeerId.
    PeerId::from_bytes(&node.peer_id_bytes()).expect("ed25519 PeerId bytes are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_agree_with_libp2p() {
        let key = libp2p::identity::Keypair::ed25519_from_bytes([9u8; 32]).unwrap();
        let peer = key.public().to_peer_id();
        let node = node_id(&peer).unwrap();
        assert_eq!(node.to_string(), peer.to_string());
        assert_eq!(peer_id(&node), peer);
        assert!(node_id(&PeerId::random()).is_none());
    }
}
