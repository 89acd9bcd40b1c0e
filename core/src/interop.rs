//! Names Weft documents have in other Automerge systems. An automerge-repo
//! document id is 16 bytes written in bs58check; its URL is
//! `automerge:<id>`. A Weft document whose id already is such an id (one an
//! automerge-repo app created) keeps it; any other gets one derived from its
//! key, so every replica computes the same id without storing it.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::key::DocKey;

/// The URL scheme of automerge-repo document URLs.
pub const AUTOMERGE_URL_PREFIX: &str = "automerge:";

/// The automerge-repo document id of a Weft document (bs58check).
pub fn automerge_id(key: &DocKey) -> String {
    if parse_automerge_id(key.id()).is_ok() {
        return key.id().to_owned();
    }
    let mut h = Sha256::new();
    // Length-prefixed parts, so no two keys share an input.
    h.update(b"weft/automerge-id/v1");
    for part in [key.space(), key.collection(), key.id()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    encode_automerge_id(id)
}

/// `automerge:<id>` for a Weft document.
pub fn automerge_url(key: &DocKey) -> String {
    format!("{AUTOMERGE_URL_PREFIX}{}", automerge_id(key))
}

/// Writes 16 id bytes as automerge-repo does (bs58check).
pub fn encode_automerge_id(bytes: [u8; 16]) -> String {
    bs58::encode(bytes).with_check().into_string()
}

/// The 16 bytes of an automerge-repo URL (`automerge:<id>`) or bare id.
pub fn parse_automerge_url(text: &str) -> Result<[u8; 16], Error> {
    parse_automerge_id(text.strip_prefix(AUTOMERGE_URL_PREFIX).unwrap_or(text))
}

/// The 16 bytes of a bare automerge-repo document id (no `automerge:`).
pub fn parse_automerge_id(id: &str) -> Result<[u8; 16], Error> {
    let text = id;
    let bytes = bs58::decode(id).with_check(None).into_vec().map_err(|e| {
        Error::InvalidInput(format!("{text:?} is not an automerge document id: {e}"))
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        Error::InvalidInput(format!(
            "{text:?} is not an automerge document id: {} bytes, not 16",
            b.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_stable() {
        let key = DocKey::new("space1", "notes", "n1").unwrap();
        let id = automerge_id(&key);
        assert_eq!(id, automerge_id(&key), "deterministic");
        assert_ne!(
            id,
            automerge_id(&DocKey::new("space1", "notes", "n2").unwrap())
        );
        let bytes = parse_automerge_url(&automerge_url(&key)).unwrap();
        assert!(
            parse_automerge_id(&automerge_url(&key)).is_err(),
            "a URL is not a bare id"
        );
        assert_eq!(encode_automerge_id(bytes), id);
        // A document named by an automerge id keeps it.
        let own = DocKey::new("space1", "automerge", &id).unwrap();
        assert_eq!(automerge_id(&own), id);
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "",
            "automerge:",
            "hello",
            "automerge:3xyz",
            "11111111111111111111111",
        ] {
            assert!(parse_automerge_id(bad).is_err(), "{bad}");
        }
        // Valid bs58check but the wrong length.
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert!(parse_automerge_id(&short).is_err());
    }
}
