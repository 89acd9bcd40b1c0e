//! The `doc` layer: one Weft document as an Automerge document.
//!
//! The Automerge root *is* the user's JSON object (so other Automerge peers
//! see plain fields), plus reserved root fields starting with `_weft` for
//! Weft's own metadata. Today that is only the tombstone:
//!
//! **Delete rule.** `delete` removes every user field and sets
//! `_weft_deleted = true`. A concurrent update merged later cannot undo it:
//! the marker is still set, so the document stays deleted (*delete wins*),
//! and fields the concurrent update wrote stay hidden. A `put` made after
//! seeing the delete recreates the document: it removes the marker and any
//! hidden fields, so the result is exactly the new JSON. A `put` concurrent
//! with a delete of an already-recreated document follows Automerge's
//! deterministic last-writer rule for the marker, so all replicas agree.

mod apply;
mod chunks;
mod json;
mod remote;
mod text;

pub use chunks::MAX_INFLATED_BYTES;
pub use remote::ChangePolicy;
pub use text::MAX_TEXT_DIFF_COST;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, ChangeHash, ROOT, ReadDoc, ScalarValue, Value,
};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::identity::NodeId;

/// Root fields with this prefix belong to Weft and are refused in user input.
pub const RESERVED_PREFIX: &str = "_weft";
/// The tombstone field.
pub const DELETED_FIELD: &str = "_weft_deleted";
/// Largest document accepted, measured as its compact JSON text.
pub const MAX_DOC_BYTES: usize = 1 << 20;
/// Deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a document operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// Text that is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// JSON whose root (or merge patch) is not an object.
    #[error("a document must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A root field name reserved for Weft.
    #[error("field {0:?} is reserved: root fields starting with \"_weft\" hold Weft's metadata")]
    ReservedField(String),
    /// The document would exceed [`MAX_DOC_BYTES`].
    #[error("document is {size} bytes of JSON; the limit is {limit} bytes")]
    TooLarge {
        /// Its size as compact JSON.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document nests deeper than [`MAX_DEPTH`].
    #[error("document nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Stored bytes that Automerge cannot load.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A peer's sync message that Automerge cannot decode or apply.
    #[error("bad sync message: {0}")]
    BadSyncMessage(String),
    /// Automerge bytes from a peer whose chunk framing is invalid.
    #[error("bad Automerge data: {0}")]
    BadChunk(String),
    /// Peer bytes that would inflate past [`MAX_INFLATED_BYTES`].
    #[error("compressed data inflates past the limit of {limit} bytes")]
    InflatedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A peer's change this document's rules do not allow.
    #[error("change refused: {0}")]
    Refused(String),
    /// Heads that are not in the document.
    #[error("unknown heads")]
    UnknownHeads,
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

/// One change in a document's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeInfo {
    /// The change hash (hex).
    pub hash: String,
    /// The Automerge actor that made it (hex).
    pub actor: String,
    /// The node that made it, when the actor is a Weft actor.
    pub author: Option<NodeId>,
    /// The actor's sequence number.
    pub seq: u64,
    /// Unix time in seconds, as recorded by the author (advisory).
    pub time: i64,
    /// The commit message (`put`, `patch`, `delete`, or a peer's own).
    pub message: Option<String>,
    /// Hashes of the changes this one depends on.
    pub deps: Vec<String>,
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC, for showing
/// [`ChangeInfo::time`]; out-of-range times show as the raw number.
pub fn format_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// A change just made, with the document's JSON after it (computed anyway
/// for the size check, so callers need not materialize it again).
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The new change.
    pub hash: ChangeHash,
    /// The document after it; `None` when deleted.
    pub json: Option<Map<String, Json>>,
}

/// Builds the Automerge actor for a writer: the node's public key plus 8
/// random bytes per process, so history names the author and a replica that
/// lost its last writes (power loss) never reuses a sequence number.
pub fn actor_for(node: NodeId, incarnation: [u8; 8]) -> ActorId {
    let mut bytes = node.as_bytes().to_vec();
    bytes.extend_from_slice(&incarnation);
    ActorId::from(bytes)
}

/// A Weft document.
#[derive(Debug)]
pub struct Document {
    doc: AutoCommit,
}

impl Document {
    /// An empty document written by `actor`.
    pub fn new(actor: ActorId) -> Self {
        Self {
            doc: AutoCommit::new().with_actor(actor),
        }
    }

    /// Loads a document from concatenated snapshot and change chunks.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        Ok(Self {
            doc: doc.with_actor(actor),
        })
    }

    /// The current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether the tombstone is set.
    pub fn is_deleted(&self) -> bool {
        matches!(
            self.doc.get(ROOT, DELETED_FIELD),
            Ok(Some((Value::Scalar(v), _))) if *v == ScalarValue::Boolean(true)
        )
    }

    /// Whether the document has never been written.
    pub fn is_empty(&self) -> bool {
        self.doc.is_empty()
    }

    /// The user-visible JSON, or `None` when deleted.
    pub fn to_json(&self) -> Option<Map<String, Json>> {
        (!self.is_deleted()).then(|| json::root_to_json(&self.doc))
    }

    /// The JSON as it was at `heads` (`None` if deleted then).
    pub fn json_at(&mut self, heads: &[ChangeHash]) -> Result<Option<Map<String, Json>>, DocError> {
        if heads
            .iter()
            .any(|h| self.doc.get_change_by_hash(h).is_none())
        {
            return Err(DocError::UnknownHeads);
        }
        let past = Self {
            doc: self.doc.fork_at(heads)?,
        };
        Ok(past.to_json())
    }

    /// Replaces the document with `json`, recording only the fields that
    /// differ. Returns the new change, or `None` if nothing changed.
    pub fn put(
        &mut self,
        json: &Map<String, Json>,
        time: i64,
    ) -> Result<Option<Committed>, DocError> {
        check_input(json)?;
        self.transact("put", time, |doc| {
            apply::sync_map(doc, &ROOT, json, |k| k.starts_with(RESERVED_PREFIX))?;
            if doc.get(ROOT, DELETED_FIELD)?.is_some() {
                doc.delete(ROOT, DELETED_FIELD)?;
            }
            Ok(())
        })
    }

    /// Applies an RFC 7396 merge patch. The caller checks the document exists.
    pub fn patch(
        &mut self,
        patch: &Map<String, Json>,
        time: i64,
    ) -> Result<Option<Committed>, DocError> {
        check_input(patch)?;
        self.transact("patch", time, |doc| {
            Ok(apply::merge_patch(doc, &ROOT, patch)?)
        })
    }

    /// Sets the tombstone and clears the user fields.
    pub fn delete(&mut self, time: i64) -> Result<Option<Committed>, DocError> {
        self.transact("delete", time, |doc| {
            apply::sync_map(doc, &ROOT, &Map::new(), |k| k == DELETED_FIELD)?;
            doc.put(ROOT, DELETED_FIELD, true)?;
            Ok(())
        })
    }

    /// Runs `edit` as one Automerge change; on error, or if the result is too
    /// large, the change is rolled back and the document is as before.
    fn transact(
        &mut self,
        message: &str,
        time: i64,
        edit: impl FnOnce(&mut AutoCommit) -> Result<(), DocError>,
    ) -> Result<Option<Committed>, DocError> {
        if let Err(e) = edit(&mut self.doc) {
            self.doc.rollback();
            return Err(e);
        }
        if self.doc.pending_ops() == 0 {
            self.doc.rollback();
            // `put` of `{}` on a new document still creates it: an empty
            // change gives it heads, so it exists, syncs and lists.
            if message == "put" && self.doc.get_heads().is_empty() {
                let opts = CommitOptions::default()
                    .with_message(message)
                    .with_time(time);
                let hash = self.doc.empty_change(opts);
                return Ok(Some(Committed {
                    hash,
                    json: Some(Map::new()),
                }));
            }
            return Ok(None);
        }
        let deleted = self.is_deleted();
        let materialized = (!deleted).then(|| json::root_to_json(&self.doc));
        let size = serde_json::to_vec(&materialized).map_or(0, |v| v.len());
        if size > MAX_DOC_BYTES {
            self.doc.rollback();
            return Err(DocError::TooLarge {
                size,
                limit: MAX_DOC_BYTES,
            });
        }
        let opts = CommitOptions::default()
            .with_message(message)
            .with_time(time);
        Ok(self.doc.commit_with(opts).map(|hash| Committed {
            hash,
            json: materialized,
        }))
    }

    /// Adds membership log entries (a space's `_weft/members` document).
    /// Each entry is its own root field, keyed by its hash, so replicas that
    /// add entries concurrently never conflict.
    pub fn add_log_entries(
        &mut self,
        entries: &[([u8; 32], Vec<u8>)],
        time: i64,
    ) -> Result<Option<Committed>, DocError> {
        self.transact("membership", time, |doc| {
            for (hash, bytes) in entries {
                let key = log_key(hash);
                // Put unless these exact bytes are there already: a field a
                // peer filled with something else must not block the entry.
                let present = matches!(
                    doc.get(ROOT, key.as_str())?,
                    Some((Value::Scalar(v), _)) if *v == ScalarValue::Bytes(bytes.clone())
                );
                if !present {
                    doc.put(ROOT, key.as_str(), ScalarValue::Bytes(bytes.clone()))?;
                }
            }
            Ok(())
        })
    }

    /// The membership log entries this document holds (encoded): every
    /// value ever written under an entry field whose name is the hash of
    /// the value, read from the document's whole history. A peer that
    /// deletes or overwrites entry fields therefore removes nothing, and a
    /// value stored under the wrong name counts for nothing.
    pub fn log_entries(&mut self) -> Vec<Vec<u8>> {
        use automerge::legacy::{Key, ObjectId};
        let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for change in self.doc.get_changes(&[]) {
            for op in change.decode().operations {
                let (
                    ObjectId::Root,
                    Key::Map(name),
                    automerge::legacy::OpType::Put(ScalarValue::Bytes(bytes)),
                ) = (&op.obj, &op.key, &op.action)
                else {
                    continue;
                };
                if name.starts_with(LOG_PREFIX) && *name == log_key(&Sha256::digest(bytes).into()) {
                    found.insert(name.to_string(), bytes.clone());
                }
            }
        }
        found.into_values().collect()
    }

    /// Every change since `heads`, in Automerge's storage format.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The whole document as one compressed snapshot.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Merges another replica of this document (used by sync and tests).
    pub fn merge(&mut self, other: &mut Document) -> Result<Vec<ChangeHash>, DocError> {
        Ok(self.doc.merge(&mut other.doc)?)
    }

    /// Applies chunks from a trusted source (local storage, tests); a peer's
    /// go through [`Self::receive_chunks`].
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<usize, DocError> {
        self.doc
            .load_incremental(bytes)
            .map_err(|e| DocError::Corrupt(e.to_string()))
    }

    /// The next Automerge sync message for a peer, if there is anything to say.
    pub fn generate_sync_message(&mut self, state: &mut sync::State) -> Option<Vec<u8>> {
        self.doc
            .sync()
            .generate_sync_message(state)
            .map(sync::Message::encode)
    }

    /// Whether the document holds the change `hash`.
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// All changes, oldest first (causal order).
    pub fn history(&mut self) -> Vec<ChangeInfo> {
        self.doc
            .get_changes(&[])
            .into_iter()
            .map(|c| {
                let actor = c.actor_id();
                let author = <[u8; 32]>::try_from(actor.to_bytes().get(..32).unwrap_or_default())
                    .ok()
                    .filter(|_| actor.to_bytes().len() == 40)
                    .map(NodeId::from_bytes);
                ChangeInfo {
                    hash: c.hash().to_string(),
                    actor: actor.to_hex_string(),
                    author,
                    seq: c.seq(),
                    time: c.timestamp(),
                    message: c.message().map(str::to_owned),
                    deps: c.deps().iter().map(ToString::to_string).collect(),
                }
            })
            .collect()
    }
}

/// Root field prefix of membership log entries.
const LOG_PREFIX: &str = "entry/";

fn log_key(hash: &[u8; 32]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{LOG_PREFIX}{hex}")
}

/// What applying a peer's sync message did.
#[derive(Debug)]
pub struct Received {
    /// The document's heads moved (store it).
    pub changed: bool,
    /// Why (part of) the message was refused (end the session).
    pub error: Option<DocError>,
    /// Changes dropped because the peer may not write.
    pub refused_changes: usize,
}

impl Received {
    fn failed(error: DocError) -> Self {
        Self {
            changed: false,
            error: Some(error),
            refused_changes: 0,
        }
    }
}

/// Largest bloom filter parameters accepted from a peer. Automerge itself
/// uses 10 bits per entry and 7 probes; zero bits per entry makes its filter
/// divide by zero, and huge probe counts allocate without bound.
const MAX_BLOOM_PARAM: u64 = 64;

/// Validates a peer's bloom filter header (three LEB128 numbers: entries,
/// bits per entry, probes) before Automerge evaluates it.
fn check_bloom(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut rest = bytes;
    let mut next = || -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let (&b, tail) = rest.split_first()?;
            rest = tail;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    };
    let (entries, bits, probes) = (next(), next(), next());
    let usable = |v: Option<u64>| v.is_some_and(|v| (1..=MAX_BLOOM_PARAM).contains(&v));
    match entries {
        Some(0) => Ok(()),
        Some(_) if usable(bits) && usable(probes) => Ok(()),
        _ => Err(format!(
            "bloom filter with unusable parameters (entries {entries:?}, bits per entry {bits:?}, probes {probes:?})"
        )),
    }
}

/// Checks user input before it touches the document.
fn check_input(json: &Map<String, Json>) -> Result<(), DocError> {
    if let Some(key) = json.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
        return Err(DocError::ReservedField(key.clone()));
    }
    fn depth(v: &Json) -> usize {
        match v {
            Json::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Json::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    if json.values().map(depth).max().unwrap_or(0) + 1 > MAX_DEPTH {
        return Err(DocError::TooDeep);
    }
    // Refuse oversized input before it becomes Automerge operations: turning
    // megabytes of text into per-character ops is the expensive part.
    let size = serde_json::to_vec(json).map_or(usize::MAX, |v| v.len());
    if size > MAX_DOC_BYTES {
        return Err(DocError::TooLarge {
            size,
            limit: MAX_DOC_BYTES,
        });
    }
    Ok(())
}

/// Parses user text into a document body.
pub fn parse_object(text: &str) -> Result<Map<String, Json>, DocError> {
    if text.len() > MAX_DOC_BYTES * 4 {
        return Err(DocError::TooLarge {
            size: text.len(),
            limit: MAX_DOC_BYTES,
        });
    }
    match serde_json::from_str(text).map_err(|e| DocError::InvalidJson(e.to_string()))? {
        Json::Object(m) => Ok(m),
        other => as_object(&other).cloned(),
    }
}

/// Requires a JSON value to be an object.
pub fn as_object(value: &Json) -> Result<&Map<String, Json>, DocError> {
    match value {
        Json::Object(m) => Ok(m),
        Json::Null => Err(DocError::NotAnObject("null")),
        Json::Bool(_) => Err(DocError::NotAnObject("a boolean")),
        Json::Number(_) => Err(DocError::NotAnObject("a number")),
        Json::String(_) => Err(DocError::NotAnObject("a string")),
        Json::Array(_) => Err(DocError::NotAnObject("an array")),
    }
}

#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod format_tests {
    use super::format_utc;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18 11:06:40");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59");
    }
}
