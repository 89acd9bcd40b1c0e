//! PeerId <-> NodeId. A NodeId is an ed25519 key, so only peers with ed25519
//! identities can be named by the layers above.

use libp2p::PeerId;

use crate::identity::NodeId;

// PeerId bytes of an ed25519 key: identity multihash (0x00, len 36) over the
// protobuf `PublicKey { Type = Ed25519, Data = <32 bytes> }`.
const ED25519_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// The NodeId of a peer, or `None` when its key is not ed25519.
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    let bytes = peer.to_bytes();
    if bytes.len() != 38 || bytes[..6] != ED25519_PREFIX {
        return None;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[6..]);
    Some(NodeId::from_bytes(key))
}

/// The PeerId of a node.
pub fn peer_id(node: &NodeId) -> PeerId {
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&ED25519_PREFIX);
    bytes[6..].copy_from_slice(node.as_bytes());
    // An identity multihash of 36 bytes is always a valid PeerId.
    PeerId::from_bytes(&bytes).expect("ed25519 PeerId bytes are valid")
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
