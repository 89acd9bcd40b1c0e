//! Runs one parsed command line: settings, then the daemon or a CLI command.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http_body_util::BodyDataStream;
use serde_json::Value;

use crate::backend::Backend;
use crate::cli::{Cli, Command, SpaceCommand};
use crate::config::{self, FileConfig};
use crate::error::CliError;
use crate::model::{Event, InviteRequest, ListParams};
use crate::output::Printer;
use crate::{daemon, output};

/// Runs the command; returns the process exit status.
pub async fn run(cli: Cli) -> u8 {
    let file = match config::load(cli.config.as_deref()) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let json = cli.json || file.json.unwrap_or(false);
    let data_dir = match data_dir(&cli, &file) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let space = cli.space.clone().or_else(|| file.space.clone());
    let out = Printer { json };
    let result = match cli.command {
        Command::Daemon(args) => daemon::run(data_dir, args, &file).await,
        command => match Backend::open(&data_dir).await {
            Ok(backend) => {
                let r = command_on(&backend, command, space.as_deref(), &out).await;
                let closed = backend.close().await;
                r.and(closed)
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> u8 {
    eprintln!("error: {}", e.message);
    e.exit_code()
}

/// `--data-dir`/`WEFT_DATA_DIR`, then the config, then the platform default.
fn data_dir(cli: &Cli, file: &FileConfig) -> Result<PathBuf, CliError> {
    match cli.data_dir.clone().or_else(|| file.data_dir.clone()) {
        Some(d) => Ok(d),
        None => Ok(weft_core::config::default_data_dir()?),
    }
}

async fn command_on(
    b: &Backend,
    command: Command,
    space: Option<&str>,
    out: &Printer,
) -> Result<(), CliError> {
    match command {
        Command::Daemon(_) => unreachable!("handled by run"),
        Command::Id => {
            let id = b.identity().await?;
            out.identity(&id, b.is_embedded());
        }
        Command::Space(cmd) => space_command(b, cmd, space, out).await?,
        Command::Put {
            collection,
            id,
            doc,
        } => {
            let doc = read_json(&doc)?;
            out.written(&b.put(space, &collection, &id, doc).await?);
        }
        Command::Patch {
            collection,
            id,
            doc,
        } => {
            let doc = read_json(&doc)?;
            out.written(&b.patch(space, &collection, &id, doc).await?);
        }
        Command::Get { collection, id } => out.document(&b.get(space, &collection, &id).await?),
        Command::Delete { collection, id } => {
            out.written(&b.delete(space, &collection, &id).await?);
        }
        Command::List {
            collection,
            filters,
            order,
            desc,
            limit,
        } => {
            let params = ListParams {
                filters,
                order,
                desc,
                limit,
            };
            out.listed(&b.list(space, &collection, &params).await?);
        }
        Command::Sql { statement } => out.rows(&b.sql(&statement).await?),
        Command::History { collection, id } => {
            out.history(&b.history(space, &collection, &id).await?);
        }
        Command::Watch { collection } => watch(b, space, collection.as_deref(), out).await?,
        Command::Peers => {
            if b.is_embedded() {
                eprintln!("note: no daemon runs for this data dir, so no peers are connected");
            }
            out.peers(&b.peers().await?);
        }
        Command::Connect { multiaddr } => out.connected(&b.connect(&multiaddr).await?),
        Command::Status {
            wait_synced,
            timeout,
        } => {
            if wait_synced {
                wait_for_sync(b, timeout).await?;
            }
            out.status(&b.status().await?);
        }
    }
    Ok(())
}

async fn space_command(
    b: &Backend,
    cmd: SpaceCommand,
    space: Option<&str>,
    out: &Printer,
) -> Result<(), CliError> {
    match cmd {
        SpaceCommand::Create { name } => out.space_ref(&b.space_create(&name).await?),
        SpaceCommand::List => out.spaces(&b.space_list().await?),
        SpaceCommand::Invite {
            role,
            expires,
            node,
        } => {
            let req = InviteRequest {
                role: Some(role),
                expires: Some(expires),
                node,
            };
            out.invite(&b.space_invite(space, &req).await?);
        }
        SpaceCommand::Join { token } => out.space_ref(&b.space_join(&token).await?),
        SpaceCommand::Revoke { node_id } => {
            b.space_revoke(space, &node_id).await?;
            out.done();
        }
    }
    Ok(())
}

/// The JSON argument, or standard input for `-`.
fn read_json(arg: &str) -> Result<Value, CliError> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::new("invalid_input", format!("cannot read stdin: {e}")))?;
        s
    } else {
        arg.to_owned()
    };
    let map = weft_core::parse_object(&text).map_err(weft_core::Error::from)?;
    Ok(Value::Object(map))
}

/// Polls the status until sync is idle, showing progress on stderr.
async fn wait_for_sync(b: &Backend, timeout: f64) -> Result<(), CliError> {
    if b.is_embedded() {
        eprintln!("note: no daemon runs for this data dir; nothing is syncing");
        return Ok(());
    }
    let limit = Duration::try_from_secs_f64(timeout).map_err(|_| {
        CliError::new(
            "invalid_input",
            format!("--timeout {timeout} is not a number of seconds"),
        )
    })?;
    let started = Instant::now();
    let mut last = None;
    loop {
        let s = b.status().await?;
        if s.sync.idle {
            return Ok(());
        }
        if last != Some((s.sync.pending, s.sync.peers)) {
            eprintln!(
                "syncing: {} documents pending with {} peers",
                s.sync.pending, s.sync.peers
            );
            last = Some((s.sync.pending, s.sync.peers));
        }
        if started.elapsed() >= limit {
            return Err(CliError::new(
                "timeout",
                format!(
                    "sync not done after {timeout} s: {} documents still pending; retry with a longer --timeout",
                    s.sync.pending
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints change events as they arrive until the daemon stops.
async fn watch(
    b: &Backend,
    space: Option<&str>,
    collection: Option<&str>,
    out: &Printer,
) -> Result<(), CliError> {
    let body = b.events(space, collection).await?;
    let mut chunks = BodyDataStream::new(body);
    let mut parser = output::SseParser::default();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|e| CliError::new("unavailable", format!("the event stream broke ({e})")))?;
        for (kind, data) in parser.push(&chunk) {
            match kind.as_str() {
                "change" => match serde_json::from_str::<Event>(&data) {
                    Ok(e) => out.event(&e),
                    Err(e) => tracing::warn!(error = %e, "unreadable event"),
                },
                "lagged" => eprintln!("warning: fell behind; some events were dropped ({data})"),
                _ => {}
            }
        }
    }
    Err(CliError::new(
        "unavailable",
        "the daemon stopped; the event stream ended",
    ))
}
