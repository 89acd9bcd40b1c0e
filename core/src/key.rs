//! Document addresses. Keys are validated once, at construction, so every
//! later layer can rely on them (they appear in SQL, URLs and CLI arguments).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Longest space or collection name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest document id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Longest `(collection, id)` pair joined by one separator byte, the form
/// keys take in sync messages.
pub const MAX_JOINED_KEY_LEN: usize = MAX_NAME_LEN + 1 + MAX_ID_LEN;

/// Where a document lives: `(space, collection, id)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocKey {
    space: String,
    collection: String,
    id: String,
}

impl DocKey {
    /// Validates and builds a key.
    ///
    /// Space and collection names are 1–128 bytes of `A-Z a-z 0-9 _ - .`;
    /// ids are 1–256 bytes of any UTF-8 without control characters.
    pub fn new(
        space: impl Into<String>,
        collection: impl Into<String>,
        id: impl Into<String>,
    ) -> Result<Self, Error> {
        let (space, collection, id) = (space.into(), collection.into(), id.into());
        check_name("space", &space)?;
        check_name("collection", &collection)?;
        check_id(&id)?;
        Ok(Self {
            space,
            collection,
            id,
        })
    }

    /// The space name or id.
    pub fn space(&self) -> &str {
        &self.space
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The document id within its collection.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.space, self.collection, self.id)
    }
}

/// Validates a space or collection name.
pub fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidKey(format!(
            "{what} name must be 1 to {MAX_NAME_LEN} bytes, got {}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Error::InvalidKey(format!(
            "{what} name {name:?} contains {c:?}; use letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(())
}

/// Validates a document id.
pub fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::InvalidKey(format!(
            "document id must be 1 to {MAX_ID_LEN} bytes, got {}",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::InvalidKey(format!(
            "document id {id:?} contains a control character"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        let k = DocKey::new("personal", "notes", "2024/06 plan ✓").unwrap();
        assert_eq!(k.to_string(), "personal/notes/2024/06 plan ✓");
    }

    #[test]
    fn rejects_odd_keys() {
        for (s, c, i) in [
            ("", "notes", "a"),
            ("sp ace", "notes", "a"),
            ("s", "no/tes", "a"),
            ("s", "notes", ""),
            ("s", "notes", "a\0b"),
            ("s", "notes", "line\nbreak"),
        ] {
            let err = DocKey::new(s, c, i).unwrap_err();
            assert!(matches!(err, Error::InvalidKey(_)), "{s:?} {c:?} {i:?}");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(DocKey::new("s", "c", long).is_err());
        assert!(DocKey::new("s", "c".repeat(MAX_NAME_LEN + 1), "a").is_err());
    }
}

/// A document inside a space: `(collection, id)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
}

/// A document's identity and a hash of its heads: equal hashes mean equal
/// documents.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    /// Which document.
    pub key: ItemKey,
    /// SHA-256 of its sorted heads.
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
}

/// The hash that stands for a document's state in reconciliation: SHA-256
/// of its heads, sorted and concatenated.
pub fn heads_hash(heads: &[automerge::ChangeHash]) -> [u8; 32] {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted_heads_hash(sorted.iter().map(|h| &h.0[..]))
}

/// [`heads_hash`] of heads already sorted (as the store keeps them).
pub fn sorted_heads_hash<'a>(sorted: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for h in sorted {
        hasher.update(h);
    }
    hasher.finalize().into()
}
