//! The `auth` layer: spaces, membership and invites, verifiable offline.
//!
//! A **space** is an ed25519 keypair; its public key is the [`SpaceId`].
//! The space key signs one genesis entry making its creator admin, and from
//! then on admins sign membership [`Entry`]s with their node keys. The log
//! of entries replicates like any document; every replica evaluates it with
//! [`Membership::evaluate`] and ignores (and reports) entries that do not
//! verify. An [`Invite`] is a token signed by an admin; the joiner records
//! its own entry citing the token. Pure code: no IO, no clock (callers pass
//! `now`).

mod entry;
mod invite;
mod membership;
mod proof;
mod space;
mod standing;
#[cfg(test)]
mod tests_reuse;

pub use entry::{Action, Entry, EntryHash, Signer};
pub use invite::{INVITE_PREFIX, Invite};
pub use membership::{MAX_VERIFIED, Membership, Rejected, Verified};
pub use proof::{MAX_PROOF, own_entries, refusal};
pub use space::{Role, SpaceId, SpaceKey};
pub use standing::{Admitted, PROVISIONAL_TRUST_SECS, Standing};

/// Collection of Weft's own documents in every space; users cannot write it.
pub const SYSTEM_COLLECTION: &str = "_weft";
/// Id of a space's membership log document (in [`SYSTEM_COLLECTION`]).
pub const MEMBERS_ID: &str = "members";

/// Why a membership entry, invite or space id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Text that is not a space id.
    #[error("invalid space id {0:?}")]
    InvalidSpaceId(String),
    /// A token that does not decode or does not hold together; the text
    /// is a whole sentence for people (never a decoder's debug output).
    #[error("{0}")]
    InvalidToken(String),
    /// A signature that does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// An invite past its expiry.
    #[error("the invite expired at unix time {expired} (now {now}); ask for a new one")]
    Expired {
        /// When it expired.
        expired: i64,
        /// The time it was checked at.
        now: i64,
    },
    /// An invite bound to another node.
    #[error("the invite is for node {0}, not this one")]
    WrongNode(String),
    /// Bytes that do not decode as an entry.
    #[error("malformed membership entry: {0}")]
    Malformed(String),
}

/// Domain-separated bytes to sign: a signature over one kind of object can
/// never be replayed as another.
fn signing_bytes(domain: &str, body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = domain.as_bytes().to_vec();
    out.push(0);
    if let Err(e) = ciborium::into_writer(body, &mut out) {
        tracing::error!(error = %e, "encoding a signed body failed");
    }
    out
}
