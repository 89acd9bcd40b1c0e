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

use super::{BackupDone, Check, Indexed, Left, Member};
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

/// `weft backup FILE [--force]`: the daemon (or the replica opened here)
/// streams a snapshot and this process writes FILE: to a fresh temp file
/// beside it, synced, then moved into place, so FILE is whole or absent.
pub async fn backup(b: &Client, file: &Path, force: bool, out: &Printer) -> R<()> {
    let failed = |what: &str, e: std::io::Error| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("{what} {}: {e}", file.display()),
        )
    };
    if file.is_dir() {
        return Err(CliError::new(
            ErrorKind::InvalidInput,
            format!("{} is a directory; name a file", file.display()),
        ));
    }
    if !force && file.exists() {
        return Err(exists(file));
    }
    let response = b.download("/v1/backup").await?;
    let number = |name: &str| -> u64 {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (documents, spaces) = (
        number(super::DOCUMENTS_HEADER),
        number(super::SPACES_HEADER),
    );
    let expected = number("content-length");
    let node_id = response
        .headers()
        .get(super::NODE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out_file = options
        .open(&tmp)
        .map_err(|e| failed("cannot write the backup beside", e))?;
    let written = copy_body(response.into_body(), &mut out_file).await;
    let finished = written.and_then(|n| {
        if n != expected {
            return Err(CliError::new(
                ErrorKind::Closed,
                format!("the backup was cut off ({n} of {expected} bytes); run it again"),
            ));
        }
        out_file
            .sync_all()
            .map_err(|e| failed("cannot sync the backup beside", e))?;
        publish(&tmp, file, force)?;
        Ok(n)
    });
    let bytes = match finished {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let done = BackupDone {
        path: file.to_string_lossy().into_owned(),
        node_id,
        documents,
        spaces,
        bytes,
    };
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

fn exists(file: &Path) -> CliError {
    CliError::new(
        ErrorKind::PreconditionFailed,
        format!(
            "{} already exists; pass force (`--force`) to replace it",
            file.display()
        ),
    )
}

/// Writes the body to `file`; returns the bytes written.
async fn copy_body(body: axum::body::Body, file: &mut std::fs::File) -> R<u64> {
    use futures::StreamExt;
    use std::io::Write;
    let mut chunks = http_body_util::BodyDataStream::new(body);
    let mut n = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::new(
                ErrorKind::Closed,
                format!("the backup was cut off ({e}); run it again"),
            )
        })?;
        file.write_all(&chunk).map_err(|e| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!("cannot write the backup: {e}"),
            )
        })?;
        n += chunk.len() as u64;
    }
    Ok(n)
}

/// Moves the finished temp file to `file`: replacing it only if `force`
/// (a hard link then unlink otherwise, so no check-then-rename race
/// replaces a file that appeared meanwhile).
fn publish(tmp: &Path, file: &Path, force: bool) -> R<()> {
    let io = |e: std::io::Error| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("cannot write the backup at {}: {e}", file.display()),
        )
    };
    if force {
        return std::fs::rename(tmp, file).map_err(io);
    }
    match std::fs::hard_link(tmp, file) {
        Ok(()) => std::fs::remove_file(tmp).map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(file)),
        Err(e) => Err(io(e)),
    }
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
