//! Looking after the replica, and core features surfaced: backups,
//! restores, the integrity check, indexes, space members, leaving a space
//! and reading a document as it was. The API's shapes and operations live
//! here; [`cli`] runs the commands.

pub mod cli;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_core::{Error, Node};

use crate::ops::space_id;

/// Most heads `?at=` (`weft get --at`) takes: a document has one head per
/// concurrent branch not yet merged, rarely more than a few.
pub const MAX_AT_HEADS: usize = 256;

/// A backup written (by `weft backup`) or restored (by `weft restore`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupDone {
    /// The backup file, or for a restore the data dir.
    pub path: String,
    /// The device whose key the backup carries.
    pub node_id: String,
    /// Live documents in it.
    pub documents: u64,
    /// Spaces in it.
    pub spaces: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What the integrity check found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// Whether the replica is sound.
    pub ok: bool,
    /// What SQLite reports as wrong; empty when `ok`.
    pub problems: Vec<String>,
}

/// A request to index a field.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IndexRequest {
    /// A dotted JSON field path (`a.b.0`), 1 to 256 bytes of letters,
    /// digits, `_`, `-`, ` `, `$`, `@` between dots.
    #[schema(min_length = 1, max_length = 256)]
    pub field: String,
}

/// An indexed field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Indexed {
    /// The field path.
    pub field: String,
}

/// A member of a space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// Its node id.
    pub node_id: String,
    /// `reader`, `writer` or `admin`.
    pub role: String,
    /// Whether it is this device.
    pub this_device: bool,
}

/// A space this device left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Left {
    /// The space id.
    pub id: String,
    /// Documents removed from this replica (its membership log included).
    pub removed: u64,
}

/// `?at=` on a document read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtParams {
    /// The document as it was at these heads: change hashes, comma-separated,
    /// as `history` lists them (at most 256).
    #[param(pattern = "^[0-9a-fA-F]{64}( *, *[0-9a-fA-F]{64}){0,255}$")]
    pub at: Option<String>,
}

/// Headers of `GET /v1/backup` carrying what [`BackupDone`] reports.
pub const NODE_ID_HEADER: &str = "x-weft-node-id";
pub const DOCUMENTS_HEADER: &str = "x-weft-documents";
pub const SPACES_HEADER: &str = "x-weft-spaces";

/// A snapshot of the replica in a private temp file inside the data dir,
/// opened for reading. On unix it is already unlinked, so nothing is left
/// behind whatever happens to the stream; elsewhere the caller removes the
/// returned path once it has read the file.
pub async fn snapshot(
    node: &Node,
) -> Result<(weft_core::BackupInfo, std::fs::File, std::path::PathBuf), Error> {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name)
        .map_err(|e| Error::InvalidInput(format!("no randomness for a temp file name: {e}")))?;
    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = node.data_dir().join(format!(".backup-{hex}.tmp"));
    let info = node.backup(&tmp, false).await?;
    let opened = std::fs::File::open(&tmp);
    #[cfg(unix)]
    let _ = std::fs::remove_file(&tmp);
    let file = opened.map_err(|e| Error::InvalidInput(format!("cannot read the snapshot: {e}")))?;
    Ok((info, file, tmp))
}

pub async fn check(node: &Node) -> Result<Check, Error> {
    let problems = node.integrity_problems().await?;
    Ok(Check {
        ok: problems.is_empty(),
        problems,
    })
}

pub async fn create_index(node: &Node, field: &str) -> Result<Indexed, Error> {
    node.create_index(field).await?;
    Ok(Indexed {
        field: field.to_owned(),
    })
}

/// The members of a space, in node id order.
pub async fn members(node: &Node, space: Option<&str>) -> Result<Vec<Member>, Error> {
    let id = space_id(node, space).await?;
    let me = node.node_id();
    let info = node
        .space_list()
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(Error::UnknownSpace(id))?;
    Ok(info
        .members
        .into_iter()
        .map(|(n, r)| Member {
            node_id: n.to_string(),
            role: r.to_string(),
            this_device: n == me,
        })
        .collect())
}

pub async fn leave(node: &Node, space: Option<&str>) -> Result<Left, Error> {
    let id = space_id(node, space).await?;
    let removed = node.space_leave(Some(&id)).await?;
    Ok(Left { id, removed })
}

/// Heads as `history` prints them, comma-separated.
pub fn parse_heads(at: &str) -> Result<Vec<String>, Error> {
    let heads: Vec<String> = at
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    if heads.is_empty() || heads.len() > MAX_AT_HEADS {
        return Err(Error::InvalidInput(format!(
            "--at/at takes 1 to {MAX_AT_HEADS} change hashes, comma-separated, as `weft history` prints them"
        )));
    }
    if let Some(bad) = heads
        .iter()
        .find(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::InvalidInput(format!(
            "{bad:?} is not a change hash (64 hex digits, as `weft history` prints them)"
        )));
    }
    Ok(heads)
}

/// The document as it was at `at`; unknown heads are the caller's mistake
/// (400), a document deleted then (or never written) is not found (404).
pub async fn get_at(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
    at: &str,
) -> Result<Value, Error> {
    let heads = parse_heads(at)?;
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    match node.get_at(&key, &heads).await {
        Ok(Some(json)) => Ok(json),
        Ok(None) => Err(Error::NotFound(format!("{key} (deleted at those heads)"))),
        // Well-formed heads this replica has no change for: that version is
        // not here (yet), as a document that is not here is a 404.
        Err(Error::UnknownHeads(k)) => Err(Error::NotFound(format!(
            "{k} at those heads (this replica has no such version; pass heads `weft history` lists)"
        ))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_as_history_prints_them() {
        let h = "a".repeat(64);
        assert_eq!(parse_heads(&format!("{h}, {h}")).unwrap().len(), 2);
        for bad in ["", ",", "xyz", &"g".repeat(64)] {
            let e = parse_heads(bad).unwrap_err();
            assert_eq!(e.kind(), weft_core::ErrorKind::InvalidInput, "{bad}");
        }
        let too_many = vec![h.clone(); MAX_AT_HEADS + 1].join(",");
        assert!(parse_heads(&too_many).is_err());
        assert!(parse_heads(&vec![h; MAX_AT_HEADS].join(",")).is_ok());
    }
}
