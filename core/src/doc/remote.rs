//! Changes from peers: what each document accepts from them, and the limits
//! the result is held to. Peer bytes are checked (chunk framing, inflated
//! size, the document's rules) before Automerge parses them, and a result
//! over [`MAX_DOC_BYTES`] or [`MAX_DEPTH`] is rolled back to the heads the
//! document had before.

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash, ScalarValue};
use sha2::{Digest, Sha256};

use super::chunks::{self, ChunkKind, MAX_INFLATED_BYTES};
use super::{DocError, Document, MAX_DEPTH, MAX_DOC_BYTES, Received, check_bloom, json, log_key};
use crate::auth::{Entry, MEMBERS_ID, SYSTEM_COLLECTION};

/// What a peer may change in a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangePolicy {
    /// Drop the peer's changes and count them (a peer that may only read).
    ReadOnly,
    /// Any change, within the size and depth limits.
    Write,
    /// Only new membership log entries (the space's `_weft/members`).
    MembershipLog,
    /// None: a system document that only its own node writes. Changes are
    /// an error, not silently dropped, since no honest peer sends them.
    Forbidden,
}

impl ChangePolicy {
    /// The policy for a peer's changes to document `collection/id`, given
    /// whether the peer may write the space at all. The membership log takes
    /// signed entries from every member, readers included: a reader's own
    /// `Join` must reach the admins, and entries verify themselves (a
    /// refused one would be offered again forever).
    pub fn for_doc(collection: &str, id: &str, may_write: bool) -> Self {
        match (collection == SYSTEM_COLLECTION, id == MEMBERS_ID, may_write) {
            (true, true, _) => Self::MembershipLog,
            (true, false, _) => Self::Forbidden,
            (false, _, true) => Self::Write,
            (false, _, false) => Self::ReadOnly,
        }
    }
}

impl ChangePolicy {
    /// [`ChangePolicy::for_doc`] for a document key.
    pub fn for_key(key: &crate::key::DocKey, may_write: bool) -> Self {
        Self::for_doc(key.collection(), key.id(), may_write)
    }
}

/// `true` is [`ChangePolicy::Write`], `false` [`ChangePolicy::ReadOnly`].
impl From<bool> for ChangePolicy {
    fn from(may_write: bool) -> Self {
        if may_write {
            Self::Write
        } else {
            Self::ReadOnly
        }
    }
}

impl Document {
    /// Applies a peer's sync message. Its changes are checked against
    /// `policy`, the inflated-size budget and the document limits before any
    /// is kept: a message is applied whole or not at all (then the document
    /// keeps its heads, `state` is unchanged, and the error says why).
    /// Under [`ChangePolicy::ReadOnly`] the changes are dropped and counted,
    /// the rest of the message is processed.
    pub fn receive_sync_message(
        &mut self,
        state: &mut sync::State,
        bytes: &[u8],
        policy: impl Into<ChangePolicy>,
    ) -> Received {
        let policy = policy.into();
        let mut message = match sync::Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => return Received::failed(DocError::BadSyncMessage(e.to_string())),
        };
        if let Some(bad) = message
            .have
            .iter()
            .find_map(|h| check_bloom(&h.bloom.to_bytes()).err())
        {
            return Received::failed(DocError::BadSyncMessage(bad));
        }
        let mut refused_changes = 0;
        if policy == ChangePolicy::ReadOnly {
            refused_changes = message.changes.len();
            message.changes = sync::ChunkList::empty();
        } else if !message.changes.is_empty() {
            let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
            if let Err(e) = self.admit(&joined, policy) {
                return Received::failed(e);
            }
        }
        // A change the peer explicitly needs never arrived, whatever we
        // recorded as sent (a message was lost): send it again.
        for hash in &message.need {
            state.sent_hashes.remove(hash);
        }
        let before = self.doc.get_heads();
        let saved_state = state.clone();
        let result = self.doc.sync().receive_sync_message(state, message);
        // Where we refuse changes, a peer's summary counted from changes we
        // do not hold (ones we refused) would make Automerge answer with a
        // reset, and the peer with the same summary, for ever: drop it. The
        // peer's `need` still gets it everything it lacks.
        if policy != ChangePolicy::Write
            && let Some(have) = state.their_have.as_mut()
        {
            have.retain(|h| {
                h.last_sync
                    .iter()
                    .all(|hash| self.doc.get_change_by_hash(hash).is_some())
            });
        }
        let changed = self.doc.get_heads() != before;
        if changed && let Err(e) = self.hold_limits(&before) {
            *state = saved_state;
            return Received::failed(e);
        }
        Received {
            changed,
            error: result
                .err()
                .map(|e| DocError::BadSyncMessage(e.to_string())),
            refused_changes,
        }
    }

    /// Applies chunks a peer sent (a `Doc` frame: snapshot or changes),
    /// checked like [`Self::receive_sync_message`]. Returns whether the heads
    /// moved; Automerge may accept a valid prefix of bad input, which is then
    /// kept (and must be stored) although an error is returned.
    pub fn receive_chunks(&mut self, bytes: &[u8], policy: ChangePolicy) -> Received {
        if policy == ChangePolicy::ReadOnly {
            return Received {
                changed: false,
                error: None,
                refused_changes: 1,
            };
        }
        if let Err(e) = self.admit(bytes, policy) {
            return Received::failed(e);
        }
        let before = self.doc.get_heads();
        let loaded = self.doc.load_incremental(bytes);
        let changed = self.doc.get_heads() != before;
        if changed && let Err(e) = self.hold_limits(&before) {
            return Received::failed(e);
        }
        Received {
            changed,
            error: loaded.err().map(|e| DocError::Corrupt(e.to_string())),
            refused_changes: 0,
        }
    }

    /// Checks peer bytes before Automerge applies them: framing and inflated
    /// size always, and the document's rules for what the changes do.
    fn admit(&mut self, bytes: &[u8], policy: ChangePolicy) -> Result<(), DocError> {
        let chunks = chunks::check(bytes, MAX_INFLATED_BYTES)?;
        match policy {
            ChangePolicy::ReadOnly | ChangePolicy::Write => Ok(()),
            ChangePolicy::Forbidden => Err(DocError::Refused(
                "peers may not write this system document".into(),
            )),
            ChangePolicy::MembershipLog => {
                for chunk in chunks {
                    for change in self.new_changes(chunk)? {
                        check_log_change(&change)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The changes in one chunk this document does not hold yet.
    fn new_changes(&mut self, chunk: chunks::Chunk<'_>) -> Result<Vec<Change>, DocError> {
        let changes = match chunk.kind {
            ChunkKind::Change | ChunkKind::CompressedChange => vec![
                Change::try_from(chunk.bytes)
                    .map_err(|e| DocError::BadSyncMessage(e.to_string()))?,
            ],
            // A whole document loads on its own (its size is checked).
            ChunkKind::Document => AutoCommit::load(chunk.bytes)
                .map_err(|e| DocError::BadSyncMessage(e.to_string()))?
                .get_changes(&[]),
            ChunkKind::Bundle => {
                return Err(DocError::Refused(
                    "membership log changes must come as change or document chunks".into(),
                ));
            }
        };
        Ok(changes
            .into_iter()
            .filter(|c| self.doc.get_change_by_hash(&c.hash()).is_none())
            .collect())
    }

    /// Refuses a result over the limits local writes are held to, returning
    /// the document to `before` (rebuilt from its history up to those heads).
    fn hold_limits(&mut self, before: &[ChangeHash]) -> Result<(), DocError> {
        let refusal = if json::deeper_than(&self.doc, MAX_DEPTH) {
            Some(DocError::TooDeep)
        } else {
            let size =
                serde_json::to_vec(&json::root_fields(&self.doc, true)).map_or(0, |v| v.len());
            (size > MAX_DOC_BYTES).then_some(DocError::TooLarge {
                size,
                limit: MAX_DOC_BYTES,
            })
        };
        let Some(refusal) = refusal else {
            return Ok(());
        };
        let actor = self.doc.get_actor().clone();
        self.doc = self.doc.fork_at(before)?.with_actor(actor);
        Err(refusal)
    }
}

/// A membership log change may only put entries: root fields named after
/// the hash of their value, whose value is a signed membership entry.
fn check_log_change(change: &Change) -> Result<(), DocError> {
    let refuse = |why: String| {
        Err(DocError::Refused(format!(
            "membership log change {}: {why}",
            change.hash()
        )))
    };
    for op in change.decode().operations {
        let (ObjectId::Root, Key::Map(name), OpType::Put(ScalarValue::Bytes(bytes)), false) =
            (&op.obj, &op.key, &op.action, op.insert)
        else {
            return refuse(format!("{:?} is not an entry put", op.action));
        };
        if *name != log_key(&Sha256::digest(bytes).into()) {
            return refuse(format!("field {name:?} is not named after its entry"));
        }
        let entry = Entry::decode(bytes).map_err(|e| DocError::Refused(e.to_string()))?;
        entry
            .verify_signature()
            .map_err(|e| DocError::Refused(e.to_string()))?;
    }
    Ok(())
}
