//! Space identities and roles.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// A space: the public key of its keypair, written in base58.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub(crate) [u8; 32]);

impl SpaceId {
    /// The raw public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpaceId({self})")
    }
}

impl FromStr for SpaceId {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|_| AuthError::InvalidSpaceId(s.to_owned()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::InvalidSpaceId(s.to_owned()))?;
        // Only a valid curve point can ever have signed anything.
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|_| AuthError::InvalidSpaceId(s.to_owned()))?;
        Ok(Self(key))
    }
}

impl Serialize for SpaceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpaceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A space's keypair. Only its creator ever holds the secret half, which
/// signs the genesis entry.
pub struct SpaceKey(pub(crate) SigningKey);

impl SpaceKey {
    /// A fresh random space key.
    pub fn generate() -> Result<Self, AuthError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| AuthError::Malformed(format!("no randomness: {e}")))?;
        Ok(Self(SigningKey::from_bytes(&secret)))
    }

    /// The space key with this secret (simulations and tests, which need
    /// the same space on every run; real spaces use [`Self::generate`]).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&secret))
    }

    /// The space this key defines.
    pub fn id(&self) -> SpaceId {
        SpaceId(self.0.verifying_key().to_bytes())
    }
}

/// What a member may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Receives the space's documents.
    Reader,
    /// Also changes them.
    Writer,
    /// Also grants, revokes and invites.
    Admin,
}

impl Role {
    /// The role's name as commands, the API and bindings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: use reader, writer or admin"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_ids_round_trip_and_reject_junk() {
        let key = SpaceKey::generate().unwrap();
        let id = key.id();
        assert_eq!(id.to_string().parse::<SpaceId>().unwrap(), id);
        for bad in [
            "",
            "0OIl",
            "personal",
            &bs58::encode([1u8; 31]).into_string(),
        ] {
            assert!(bad.parse::<SpaceId>().is_err(), "{bad:?}");
        }
        assert_eq!("writer".parse::<Role>(), Ok(Role::Writer));
        for role in [Role::Reader, Role::Writer, Role::Admin] {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
        assert!(Role::Admin > Role::Writer && Role::Writer > Role::Reader);
    }
}
