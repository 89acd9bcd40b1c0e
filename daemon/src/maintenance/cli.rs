//! The maintenance commands: `backup`, `restore`, `check`, `index create`,
//! `space members`, `space leave` and `get --at`. All but `restore` go
//! through the API like every command; `restore` replaces the replica, so
//! it runs only where no process (no daemon) holds it.

use std::io::Write;
use std::path::Path;

use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};
use weft_core::{ErrorKind, Node};

use super::{BackupDone, BackupRequest, Check, Indexed, Left, Member};
use crate::client::{Client, seg};
use crate::error::CliError;
use crate::output::{Printer, clean};

type R<T> = Result<T, CliError>;

fn line(s: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

/// One compact JSON line with `--json`; whether it printed.
fn json_line(out: &Printer, v: &impl Serialize) -> bool {
    if out.json {
        line(serde_json::to_string(v).expect("output serializes"));
    }
    out.json
}

fn space_seg(space: Option<&str>) -> String {
    seg(space.unwrap_or("default"))
}

/// `weft backup FILE [--force]`: the path is made absolute here, since the
/// daemon (another process, maybe another directory) writes the file.
pub async fn backup(b: &Client, file: &Path, force: bool, out: &Printer) -> R<()> {
    let path = std::path::absolute(file).map_err(|e| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("backup path {}: {e}", file.display()),
        )
    })?;
    let req = BackupRequest {
        path: path.to_string_lossy().into_owned(),
        force,
    };
    let done: BackupDone = b.call(Method::POST, "/v1/backup", Some(&req)).await?;
    if !json_line(out, &done) {
        line(format!(
            "backup written to {} ({} documents, {} spaces, {} bytes)",
            clean(&done.path),
            done.documents,
            done.spaces,
            done.bytes
        ));
    }
    Ok(())
}

/// `weft --data-dir DIR restore FILE [--force]`: on the replica files
/// directly (there is no node to ask), refused while any process holds
/// the data dir.
pub async fn restore(data_dir: &Path, file: &Path, force: bool, out: &Printer) -> R<()> {
    let info = Node::restore(data_dir, file, force).await?;
    let done = BackupDone {
        path: data_dir.to_string_lossy().into_owned(),
        node_id: info.node_id.to_string(),
        documents: info.documents,
        spaces: info.spaces,
        bytes: info.bytes,
    };
    if !json_line(out, &done) {
        line(format!(
            "restored {} documents in {} spaces into {} (node id {})",
            done.documents,
            done.spaces,
            clean(&done.path),
            done.node_id
        ));
    }
    Ok(())
}

/// `weft check`: prints `ok` or the problems; damage exits 1.
pub async fn check(b: &Client, out: &Printer) -> R<()> {
    let c: Check = b.call(Method::GET, "/v1/check", None::<&()>).await?;
    if !json_line(out, &c) {
        if c.ok {
            line("ok");
        }
        for p in &c.problems {
            line(clean(p));
        }
    }
    if c.ok {
        return Ok(());
    }
    Err(CliError::new(
        ErrorKind::Storage,
        format!(
            "the replica is damaged ({} problems); restore it from a backup (`weft restore --force`) or sync it afresh from a peer",
            c.problems.len()
        ),
    ))
}

/// `weft index create FIELD`: prints nothing for people, as writes do.
pub async fn index_create(b: &Client, field: &str, out: &Printer) -> R<()> {
    let body = json!({ "field": field });
    let done: Indexed = b.call(Method::POST, "/v1/indexes", Some(&body)).await?;
    json_line(out, &done);
    Ok(())
}

/// `weft space members`: `NODE_ID  ROLE  [(this device)]` per member.
pub async fn members(b: &Client, space: Option<&str>, out: &Printer) -> R<()> {
    let path = format!("/v1/spaces/{}/members", space_seg(space));
    let members: Vec<Member> = b.call(Method::GET, &path, None::<&()>).await?;
    if json_line(out, &members) {
        return Ok(());
    }
    for m in &members {
        let me = if m.this_device { "  (this device)" } else { "" };
        line(format!("{}  {}{me}", m.node_id, m.role));
    }
    Ok(())
}

/// `weft space leave`: the space named by `--space` (which must be given:
/// the default space cannot be left).
pub async fn leave(b: &Client, space: Option<&str>, out: &Printer) -> R<()> {
    let Some(space) = space else {
        return Err(CliError::new(
            ErrorKind::InvalidInput,
            "name the space to leave with --space (the default space cannot be left)",
        ));
    };
    let path = format!("/v1/spaces/{}", seg(space));
    let left: Left = b.call(Method::DELETE, &path, None::<&()>).await?;
    if !json_line(out, &left) {
        line(format!(
            "left space {} ({} documents removed from this device)",
            left.id, left.removed
        ));
    }
    Ok(())
}

/// `weft get COLLECTION ID --at HEADS`.
pub async fn get_at(
    b: &Client,
    space: Option<&str>,
    collection: &str,
    id: &str,
    at: &str,
) -> R<Value> {
    weft_core::DocKey::new("default", collection, id)?;
    let path = format!(
        "/v1/spaces/{}/collections/{}/docs/{}?at={}",
        space_seg(space),
        seg(collection),
        seg(id),
        seg(at)
    );
    b.call(Method::GET, &path, None::<&()>).await
}
