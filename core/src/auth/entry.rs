//! Signed membership entries.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::space::{Role, SpaceId, SpaceKey};
use super::{AuthError, Invite, signing_bytes};
use crate::identity::NodeId;

/// SHA-256 of an encoded entry.
pub type EntryHash = [u8; 32];

/// What an entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Genesis, signed by the space key: `admin` becomes the first admin.
    Create {
        /// The creator.
        admin: NodeId,
        /// A human name for the space.
        name: String,
    },
    /// An admin gives `node` a role.
    Grant {
        /// The member.
        node: NodeId,
        /// Its role.
        role: Role,
    },
    /// An admin takes every role from `node`.
    Revoke {
        /// The former member.
        node: NodeId,
    },
    /// The signer joins with an admin's invite.
    Join {
        /// The invite, as issued (without its secret).
        invite: Box<Invite>,
        /// The joiner's id signed with the invite's claim secret: proof that
        /// the joiner held the token.
        #[serde(with = "serde_bytes")]
        claim: [u8; 64],
    },
}

/// Who signed an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signer {
    /// The space key itself (only for `Create`).
    Space,
    /// A node key.
    Node(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    space: SpaceId,
    action: Action,
    /// Entries the signer had seen: the log is a DAG ordered by these.
    prev: Vec<serde_bytes::ByteArray<32>>,
    /// Unix seconds, as claimed by the signer (advisory, breaks ties).
    time: i64,
    signer: Signer,
}

/// One signed membership entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    body: Body,
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
}

const DOMAIN: &str = "weft/membership/1";

impl Entry {
    /// The genesis entry of a new space.
    pub fn create(space: &SpaceKey, admin: NodeId, name: &str, time: i64) -> Self {
        Self::sign_with(
            &space.0,
            Body {
                space: space.id(),
                action: Action::Create {
                    admin,
                    name: name.to_owned(),
                },
                prev: Vec::new(),
                time,
                signer: Signer::Space,
            },
        )
    }

    /// A node's join with an invite token (which carries the claim secret).
    pub fn join(node: &SigningKey, invite: &Invite, time: i64) -> Result<Self, AuthError> {
        let joiner = NodeId::from_bytes(node.verifying_key().to_bytes());
        let claim = invite.claim(joiner)?;
        let action = Action::Join {
            invite: Box::new(invite.public()),
            claim,
        };
        Ok(Self::sign(
            node,
            invite.space(),
            action,
            &invite.log_heads(),
            time,
        ))
    }

    /// An entry signed by a node (grant, revoke or join).
    pub fn sign(
        node: &SigningKey,
        space: SpaceId,
        action: Action,
        prev: &[EntryHash],
        time: i64,
    ) -> Self {
        let signer = Signer::Node(NodeId::from_bytes(node.verifying_key().to_bytes()));
        Self::sign_with(
            node,
            Body {
                space,
                action,
                prev: prev
                    .iter()
                    .map(|h| serde_bytes::ByteArray::new(*h))
                    .collect(),
                time,
                signer,
            },
        )
    }

    fn sign_with(key: &SigningKey, body: Body) -> Self {
        let signature = key.sign(&signing_bytes(DOMAIN, &body)).to_bytes();
        Self { body, signature }
    }

    /// Checks the signature against the signer's public key.
    pub fn verify_signature(&self) -> Result<(), AuthError> {
        let key = match self.body.signer {
            Signer::Space => *self.body.space.as_bytes(),
            Signer::Node(n) => *n.as_bytes(),
        };
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| AuthError::BadSignature("membership entry"))?;
        key.verify_strict(
            &signing_bytes(DOMAIN, &self.body),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| AuthError::BadSignature("membership entry"))
    }

    /// The entry's identity.
    pub fn hash(&self) -> EntryHash {
        Sha256::digest(self.encode()).into()
    }

    /// The space it belongs to.
    pub fn space(&self) -> SpaceId {
        self.body.space
    }

    /// What it does.
    pub fn action(&self) -> &Action {
        &self.body.action
    }

    /// Who signed it.
    pub fn signer(&self) -> Signer {
        self.body.signer
    }

    /// The signer's claimed time.
    pub fn time(&self) -> i64 {
        self.body.time
    }

    /// Entries it cites.
    pub fn prev(&self) -> impl Iterator<Item = EntryHash> + '_ {
        self.body.prev.iter().map(|h| h.into_array())
    }

    /// Binary form (CBOR).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = ciborium::into_writer(self, &mut out) {
            tracing::error!(error = %e, "encoding a membership entry failed");
        }
        out
    }

    /// Parses the binary form (any bytes: never panics).
    pub fn decode(bytes: &[u8]) -> Result<Self, AuthError> {
        ciborium::from_reader(bytes).map_err(|e| AuthError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn entries_verify_and_round_trip() {
        let space = SpaceKey::generate().unwrap();
        let admin = node_key(1);
        let genesis = Entry::create(
            &space,
            NodeId::from_bytes(admin.verifying_key().to_bytes()),
            "team",
            10,
        );
        genesis.verify_signature().unwrap();
        let grant = Entry::sign(
            &admin,
            space.id(),
            Action::Grant {
                node: NodeId::from_bytes([9; 32]),
                role: Role::Reader,
            },
            &[genesis.hash()],
            11,
        );
        grant.verify_signature().unwrap();
        let back = Entry::decode(&grant.encode()).unwrap();
        assert_eq!(back, grant);
        assert_eq!(back.prev().collect::<Vec<_>>(), vec![genesis.hash()]);
        assert!(Entry::decode(b"\xff\x00junk").is_err());
    }

    #[test]
    fn any_tampering_breaks_the_signature() {
        let space = SpaceKey::generate().unwrap();
        let admin = node_key(1);
        let entry = Entry::sign(
            &admin,
            space.id(),
            Action::Grant {
                node: NodeId::from_bytes([9; 32]),
                role: Role::Reader,
            },
            &[],
            11,
        );
        let mut promoted = entry.clone();
        promoted.body.action = Action::Grant {
            node: NodeId::from_bytes([9; 32]),
            role: Role::Admin,
        };
        assert_eq!(
            promoted.verify_signature(),
            Err(AuthError::BadSignature("membership entry"))
        );
        let mut other_space = entry.clone();
        other_space.body.space = SpaceKey::generate().unwrap().id();
        assert!(other_space.verify_signature().is_err());
        let mut impostor = entry.clone();
        impostor.body.signer =
            Signer::Node(NodeId::from_bytes(node_key(2).verifying_key().to_bytes()));
        assert!(impostor.verify_signature().is_err());
        let mut flipped = entry;
        flipped.signature[0] ^= 1;
        assert!(flipped.verify_signature().is_err());
        // A node key cannot pose as the space key.
        let fake_genesis = Entry::sign_with(
            &admin,
            Body {
                space: space.id(),
                action: Action::Create {
                    admin: NodeId::from_bytes([1; 32]),
                    name: "x".into(),
                },
                prev: vec![],
                time: 0,
                signer: Signer::Space,
            },
        );
        assert!(fake_genesis.verify_signature().is_err());
    }
}
