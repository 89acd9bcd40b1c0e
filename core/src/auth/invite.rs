//! Invite tokens: an admin's signed offer of a role in a space, compact
//! enough to paste into a chat.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::entry::EntryHash;
use super::space::{Role, SpaceId};
use super::{AuthError, signing_bytes};
use crate::identity::NodeId;

/// Every token starts with this, so a pasted token is recognisable.
pub const INVITE_PREFIX: &str = "weft-invite-";
const DOMAIN: &str = "weft/invite/1";
/// Longest token accepted (a token is normally a few hundred bytes).
const MAX_TOKEN: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Terms {
    space: SpaceId,
    name: String,
    role: Role,
    /// Unix seconds after which the invite is void.
    expires: i64,
    nonce: serde_bytes::ByteArray<16>,
    /// Where the inviter listens, so the joiner can dial it.
    addrs: Vec<String>,
    /// Only this node may use the invite, if set.
    node: Option<NodeId>,
    inviter: NodeId,
    /// The inviter's membership log heads: the joiner's entry cites them, so
    /// it is ordered after everything the inviter knew.
    log_heads: Vec<serde_bytes::ByteArray<32>>,
    /// Public half of a one-time key whose secret travels only in the token:
    /// a join must be signed with it, so an invite seen inside someone's
    /// join entry cannot be used by anybody else.
    claim_key: serde_bytes::ByteArray<32>,
}

/// A signed invite. As a token it also carries the claim secret; inside a
/// membership entry it never does.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    terms: Terms,
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
    #[serde(skip)]
    secret: Option<[u8; 32]>,
}

impl std::fmt::Debug for Invite {
    // The claim secret never goes to a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("terms", &self.terms)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .finish()
    }
}

/// What a token encodes: the invite and its claim secret.
#[derive(Serialize, Deserialize)]
struct TokenBody {
    invite: Invite,
    #[serde(with = "serde_bytes")]
    secret: [u8; 32],
}

const CLAIM_DOMAIN: &str = "weft/invite-claim/1";

fn claim_bytes(space: SpaceId, joiner: NodeId, nonce: [u8; 16]) -> Vec<u8> {
    signing_bytes(
        CLAIM_DOMAIN,
        &(space, joiner, serde_bytes::ByteArray::new(nonce)),
    )
}

impl Invite {
    /// Issues an invite signed by `inviter` (who must be an admin for the
    /// invite to be honoured).
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        inviter: &SigningKey,
        space: SpaceId,
        name: &str,
        role: Role,
        expires: i64,
        addrs: Vec<String>,
        node: Option<NodeId>,
        log_heads: &[EntryHash],
    ) -> Result<Self, AuthError> {
        let mut nonce = [0u8; 16];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut nonce)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|e| {
                AuthError::InvalidToken(format!("cannot make an invite token: no randomness ({e})"))
            })?;
        Ok(Self::issue_with(
            inviter, space, name, role, expires, addrs, node, log_heads, nonce, secret,
        ))
    }

    /// [`Self::issue`] with the caller's randomness (the invite's nonce and
    /// its claim secret): for simulations and tests, which must replay
    /// exactly. Anything else uses [`Self::issue`].
    #[allow(clippy::too_many_arguments)]
    pub fn issue_with(
        inviter: &SigningKey,
        space: SpaceId,
        name: &str,
        role: Role,
        expires: i64,
        addrs: Vec<String>,
        node: Option<NodeId>,
        log_heads: &[EntryHash],
        nonce: [u8; 16],
        secret: [u8; 32],
    ) -> Self {
        let claim_key = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
        let terms = Terms {
            space,
            name: name.to_owned(),
            role,
            expires,
            nonce: serde_bytes::ByteArray::new(nonce),
            addrs,
            node,
            inviter: NodeId::from_bytes(inviter.verifying_key().to_bytes()),
            log_heads: log_heads
                .iter()
                .map(|h| serde_bytes::ByteArray::new(*h))
                .collect(),
            claim_key: serde_bytes::ByteArray::new(claim_key),
        };
        let signature = inviter.sign(&signing_bytes(DOMAIN, &terms)).to_bytes();
        Self {
            terms,
            signature,
            secret: Some(secret),
        }
    }

    /// Checks the inviter's signature.
    pub fn verify_signature(&self) -> Result<(), AuthError> {
        let key = VerifyingKey::from_bytes(self.terms.inviter.as_bytes())
            .map_err(|_| AuthError::BadSignature("invite"))?;
        key.verify_strict(
            &signing_bytes(DOMAIN, &self.terms),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| AuthError::BadSignature("invite"))
    }

    /// Everything a joiner can check on its own: signature, expiry, binding.
    /// (Whether the inviter is an admin is checked against the space's log.)
    pub fn check(&self, joiner: NodeId, now: i64) -> Result<(), AuthError> {
        self.verify_signature()?;
        let held = self
            .secret
            .map(|s| SigningKey::from_bytes(&s).verifying_key().to_bytes());
        if held != Some(self.terms.claim_key.into_array()) {
            return Err(AuthError::InvalidToken(
                "invalid invite token: it is damaged (its secret does not match the invite); copy it again".into(),
            ));
        }
        if now > self.terms.expires {
            return Err(AuthError::Expired {
                expired: self.terms.expires,
                now,
            });
        }
        match self.terms.node {
            Some(bound) if bound != joiner => Err(AuthError::WrongNode(bound.to_string())),
            _ => Ok(()),
        }
    }

    /// The space offered.
    pub fn space(&self) -> SpaceId {
        self.terms.space
    }

    /// The space's name, as the inviter knows it.
    pub fn name(&self) -> &str {
        &self.terms.name
    }

    /// The role offered.
    pub fn role(&self) -> Role {
        self.terms.role
    }

    /// Unix seconds after which the invite is void.
    pub fn expires(&self) -> i64 {
        self.terms.expires
    }

    /// The node bound to the invite, if any.
    pub fn node(&self) -> Option<NodeId> {
        self.terms.node
    }

    /// Who issued it.
    pub fn inviter(&self) -> NodeId {
        self.terms.inviter
    }

    /// Where the inviter listens.
    pub fn addrs(&self) -> &[String] {
        &self.terms.addrs
    }

    /// The inviter's log heads when it issued the invite.
    pub fn log_heads(&self) -> Vec<EntryHash> {
        self.terms
            .log_heads
            .iter()
            .map(|h| h.into_array())
            .collect()
    }

    /// Identifies the invite (one invite admits one node).
    pub fn nonce(&self) -> [u8; 16] {
        self.terms.nonce.into_array()
    }

    /// Signs `joiner`'s use of the invite with the claim secret (held only
    /// by whoever has the token).
    pub fn claim(&self, joiner: NodeId) -> Result<[u8; 64], AuthError> {
        let secret = self.secret.ok_or_else(|| {
            AuthError::InvalidToken(
                "invalid invite token: this invite came without its secret".into(),
            )
        })?;
        let key = SigningKey::from_bytes(&secret);
        Ok(key
            .sign(&claim_bytes(self.terms.space, joiner, self.nonce()))
            .to_bytes())
    }

    /// The invite without its secret, as it goes into a join entry.
    pub fn public(&self) -> Invite {
        Invite {
            secret: None,
            ..self.clone()
        }
    }

    /// Checks that `joiner` held the token when it signed `claim`.
    pub fn verify_claim(&self, joiner: NodeId, claim: &[u8; 64]) -> Result<(), AuthError> {
        let key = VerifyingKey::from_bytes(&self.terms.claim_key.into_array())
            .map_err(|_| AuthError::BadSignature("invite claim"))?;
        key.verify_strict(
            &claim_bytes(self.terms.space, joiner, self.nonce()),
            &Signature::from_bytes(claim),
        )
        .map_err(|_| AuthError::BadSignature("invite claim"))
    }

    /// The copy-pasteable token (carries the claim secret).
    pub fn to_token(&self) -> String {
        let Some(secret) = self.secret else {
            tracing::error!("an invite without its secret cannot become a token");
            return String::new();
        };
        let body = TokenBody {
            invite: self.clone(),
            secret,
        };
        let mut bytes = Vec::new();
        if let Err(e) = ciborium::into_writer(&body, &mut bytes) {
            tracing::error!(error = %e, "encoding an invite failed");
        }
        format!("{INVITE_PREFIX}{}", bs58::encode(bytes).into_string())
    }

    /// Parses a token (signature not yet checked: see [`Self::check`]).
    pub fn from_token(token: &str) -> Result<Self, AuthError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN {
            return Err(AuthError::InvalidToken(format!(
                "not a Weft invite token: {} bytes is longer than any token ({MAX_TOKEN})",
                token.len()
            )));
        }
        let body = token.strip_prefix(INVITE_PREFIX).ok_or_else(|| {
            AuthError::InvalidToken(format!(
                "not a Weft invite token: it does not start with {INVITE_PREFIX:?}"
            ))
        })?;
        let bytes = bs58::decode(body).into_vec().map_err(|_| {
            AuthError::InvalidToken(
                "not a Weft invite token: it holds characters no token has; copy it again".into(),
            )
        })?;
        // The decoder's error says where CBOR broke, which helps nobody
        // holding a token: it is at debug level only.
        let body: TokenBody = ciborium::from_reader(bytes.as_slice()).map_err(|e| {
            tracing::debug!(error = %e, "invite token does not decode");
            AuthError::InvalidToken(
                "not a Weft invite token: it does not decode (cut short or changed?); copy it again"
                    .into(),
            )
        })?;
        Ok(Invite {
            secret: Some(body.secret),
            ..body.invite
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SpaceKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes(key(n).verifying_key().to_bytes())
    }

    fn invite(bound: Option<NodeId>) -> Invite {
        let space = SpaceKey::generate().unwrap().id();
        Invite::issue(
            &key(1),
            space,
            "team",
            Role::Writer,
            1_000,
            vec!["/ip4/127.0.0.1/tcp/1".into()],
            bound,
            &[[5; 32]],
        )
        .unwrap()
    }

    #[test]
    fn tokens_round_trip_and_check() {
        let inv = invite(None);
        let token = inv.to_token();
        assert!(
            token.starts_with(INVITE_PREFIX) && token.len() < 600,
            "{}",
            token.len()
        );
        let back = Invite::from_token(&format!("  {token}\n")).unwrap();
        assert_eq!(back, inv);
        back.check(node(2), 999).unwrap();
        assert_eq!(
            (back.role(), back.name(), back.inviter()),
            (Role::Writer, "team", node(1))
        );
    }

    #[test]
    fn only_the_token_holder_can_claim() {
        let inv = invite(None);
        let claim = inv.claim(node(2)).unwrap();
        inv.verify_claim(node(2), &claim).unwrap();
        // Someone who saw the claim (or the invite in a join entry) cannot
        // reuse it for another node, nor claim without the secret.
        assert!(inv.verify_claim(node(3), &claim).is_err());
        let mut public = inv.clone();
        public.secret = None;
        assert!(public.claim(node(3)).is_err());
        let mut other_secret = inv.clone();
        other_secret.secret = Some([9; 32]);
        assert!(
            inv.verify_claim(node(3), &other_secret.claim(node(3)).unwrap())
                .is_err()
        );
        // The entry form of an invite has no secret.
        let mut bytes = Vec::new();
        ciborium::into_writer(&inv, &mut bytes).unwrap();
        let seen: Invite = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(seen.secret, None);
    }

    #[test]
    fn expired_bound_forged_and_garbled_tokens_are_refused() {
        let inv = invite(Some(node(2)));
        assert!(matches!(
            inv.check(node(2), 1_001),
            Err(AuthError::Expired {
                expired: 1_000,
                now: 1_001
            })
        ));
        assert!(matches!(
            inv.check(node(3), 10),
            Err(AuthError::WrongNode(_))
        ));
        inv.check(node(2), 10).unwrap();

        let mut forged = inv.clone();
        forged.terms.role = Role::Admin;
        assert_eq!(
            forged.check(node(2), 10),
            Err(AuthError::BadSignature("invite"))
        );
        let mut stretched = inv.clone();
        stretched.terms.expires = i64::MAX;
        assert!(stretched.verify_signature().is_err());
        let mut other_inviter = inv.clone();
        other_inviter.terms.inviter = node(4);
        assert!(other_inviter.verify_signature().is_err());

        for bad in [
            "",
            "hello",
            "weft-invite-",
            "weft-invite-0OIl",
            "weft-invite-2NEpo7TZRRrLZSi2U",
        ] {
            let err = Invite::from_token(bad).unwrap_err();
            assert!(matches!(err, AuthError::InvalidToken(_)), "{bad:?}");
            // A sentence for people, not a decoder's debug text.
            let text = err.to_string();
            assert!(
                text.starts_with("not a Weft invite token: "),
                "{bad:?}: {text}"
            );
            for internal in [
                "Semantic",
                "Io(",
                "Error {",
                "(None",
                "expected map",
                "os error",
            ] {
                assert!(!text.contains(internal), "{bad:?}: {text}");
            }
        }
        let long = format!("{INVITE_PREFIX}{}", "1".repeat(MAX_TOKEN));
        assert!(Invite::from_token(&long).is_err());
    }
}
