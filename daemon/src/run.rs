//! Runs one parsed command line: settings, then the daemon or a CLI command.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_core::{ErrorKind, Node};

use crate::cli::{Cli, Command, DaemonAction, DaemonArgs, IndexCommand, SpaceCommand};
use crate::client::Client;
use crate::config::{self, FileConfig};
use crate::error::CliError;
use crate::maintenance::cli as maintenance;
use crate::model::{InviteRequest, ListParams};
use crate::output::Printer;
use crate::{control, daemon, output, watch};

/// Runs the command; returns the process exit status.
pub async fn run(cli: Cli) -> u8 {
    // These need neither config nor replica: a broken config must not
    // keep anyone from reading the manual.
    match cli.command {
        Command::Completion { shell } => return finish(control::completion(shell)),
        Command::Man { command } => return finish(control::man(&command)),
        _ => {}
    }
    if let Command::Sql { .. } = cli.command
        && cli.space.is_some()
    {
        return refuse_sql_space();
    }
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
        Command::Daemon(DaemonArgs {
            action: Some(DaemonAction::Stop { timeout }),
            ..
        }) => {
            let secs = timeout.unwrap_or(control::DEFAULT_STOP_WAIT);
            control::stop(&data_dir, secs, &out).await
        }
        Command::Daemon(args) => match daemon::run(data_dir, args, &file).await {
            Err(e) if crate::logging::json_logs() => {
                tracing::error!(exit_status = e.exit_code(), "{}", e.message);
                return e.exit_code();
            }
            r => r,
        },
        Command::Restore {
            file: backup,
            force,
        } => maintenance::restore(&data_dir, &backup, force, &out).await,
        command => client_command(&data_dir, command, space.as_deref(), &file, &out).await,
    };
    finish(result)
}

fn finish(result: Result<(), CliError>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

/// `sql` sees every space (the view has a `space` column), so a `--space`
/// it would not honour is refused as bad usage rather than ignored.
fn refuse_sql_space() -> u8 {
    use clap::CommandFactory;
    let err = Cli::command().error(
        clap::error::ErrorKind::ArgumentConflict,
        "`weft sql` runs over every space and does not take --space; \
         filter on the view's `space` column instead (WHERE space = 'SPACE_ID')",
    );
    let _ = err.print();
    // clap's usage-error status.
    2
}

async fn client_command(
    data_dir: &Path,
    command: Command,
    space: Option<&str>,
    file: &FileConfig,
    out: &Printer,
) -> Result<(), CliError> {
    // Standard input is read before the replica is opened, so a command
    // waiting on a terminal never holds the replica's lock.
    let command = read_stdin_argument(command)?;
    if !creates_replica(&command) && !Node::replica_exists(data_dir) {
        return Err(CliError::new(
            ErrorKind::InvalidInput,
            format!(
                "there is no replica at {}; check --data-dir (a replica is made by `weft daemon` or the first write)",
                data_dir.display()
            ),
        ));
    }
    let client = Client::open(data_dir).await?;
    let r = command_on(data_dir, &client, command, space, file, out).await;
    let closed = client.close().await;
    r.and(closed)
}

/// Commands that make sense on a device with no replica yet.
fn creates_replica(command: &Command) -> bool {
    matches!(
        command,
        Command::Id
            | Command::Put { .. }
            | Command::Import { .. }
            | Command::Space(SpaceCommand::Create { .. } | SpaceCommand::Join { .. })
    )
}

/// Replaces a `-` document argument by standard input.
fn read_stdin_argument(command: Command) -> Result<Command, CliError> {
    let read = || -> Result<String, CliError> {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            CliError::new(ErrorKind::InvalidInput, format!("cannot read stdin: {e}"))
        })?;
        Ok(s)
    };
    Ok(match command {
        Command::Put {
            collection,
            id,
            doc,
        } if doc == "-" => Command::Put {
            collection,
            id,
            doc: read()?,
        },
        Command::Patch {
            collection,
            id,
            doc,
        } if doc == "-" => Command::Patch {
            collection,
            id,
            doc: read()?,
        },
        other => other,
    })
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
    data_dir: &Path,
    b: &Client,
    command: Command,
    space: Option<&str>,
    file: &FileConfig,
    out: &Printer,
) -> Result<(), CliError> {
    match command {
        Command::Daemon(_)
        | Command::Completion { .. }
        | Command::Man { .. }
        | Command::Restore { .. } => unreachable!("handled by run"),
        Command::Id => {
            let id = b.identity().await?;
            out.identity(&id, b.is_embedded());
        }
        Command::Space(cmd) => space_command(b, cmd, space, file, out).await?,
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
        Command::Get {
            collection,
            id,
            at: Some(at),
        } => out.document(&maintenance::get_at(b, space, &collection, &id, &at).await?),
        Command::Get { collection, id, .. } => out.document(&b.get(space, &collection, &id).await?),
        Command::Backup { file, force } => maintenance::backup(b, &file, force, out).await?,
        Command::Check => maintenance::check(b, out).await?,
        Command::Index(IndexCommand::Create { field }) => {
            maintenance::index_create(b, &field, out).await?
        }
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
                after: None,
            };
            out.listed(&b.list(space, &collection, &params).await?);
        }
        Command::Sql { statement } => out.rows(&b.sql(&statement).await?),
        Command::History { collection, id } => {
            out.history(&b.history(space, &collection, &id).await?);
        }
        Command::Url { collection, id } => out.url(&b.url(space, &collection, &id).await?),
        Command::Watch {
            collection,
            all,
            since,
            include_docs,
        } => {
            let space = if all {
                None
            } else {
                Some(space.unwrap_or("default"))
            };
            let args = watch::Args {
                space,
                collection: collection.as_deref(),
                since,
                include_docs,
            };
            watch::watch(data_dir, b, &args, out).await?;
        }
        Command::Import { file } => crate::transfer::import(b, space, &file, out).await?,
        Command::Export { collection } => {
            crate::transfer::export(b, space, collection.as_deref()).await?
        }
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
                let timeout = timeout.or(file.status_timeout).unwrap_or(60.0);
                wait_for_sync(b, timeout).await?;
            }
            out.status(&b.status().await?);
        }
    }
    Ok(())
}

async fn space_command(
    b: &Client,
    cmd: SpaceCommand,
    space: Option<&str>,
    file: &FileConfig,
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
                role: role
                    .map(|r| r.as_str().to_owned())
                    .or_else(|| file.invite_role.clone()),
                expires: expires.or_else(|| file.invite_expires.clone()),
                node,
            };
            let invite = b.space_invite(space, &req).await?;
            if b.is_embedded() {
                eprintln!(
                    "note: no daemon runs, so the token carries no address of this device; \
                     the joiner finds it by mDNS on the LAN or with `weft connect` (start `weft daemon` first to include addresses)"
                );
            }
            out.invite(&invite);
        }
        SpaceCommand::Join {
            token,
            no_wait,
            timeout,
        } => {
            let secs = timeout.or(file.status_timeout).unwrap_or(60.0);
            // Checked before joining, so a bad --timeout changes nothing.
            let limit = crate::ops::join_wait(secs)
                .map_err(|e| CliError::new(ErrorKind::InvalidInput, format!("--timeout: {e}")))?;
            let wait = (!no_wait && !b.is_embedded()).then_some(limit);
            if wait.is_some() {
                eprintln!(
                    "joining; waiting up to {secs} s for the inviter to admit this device (--no-wait returns at once)"
                );
            }
            let joined = b.space_join(&token, wait).await?;
            if wait.is_some() && joined.state == "pending" {
                return Err(not_admitted_in_time(&joined.id, secs));
            }
            if b.is_embedded() {
                let addrs = weft_core::Invitation::from_token(&token)
                    .map(|i| i.addrs)
                    .unwrap_or_default();
                eprintln!(
                    "note: joined, but no daemon runs here, so nothing syncs yet: start `weft daemon`; \
                     it dials the inviter at the addresses in the invite until it answers, and finds it \
                     by mDNS on the LAN; from elsewhere, run `weft connect ADDR`{}",
                    if addrs.is_empty() {
                        String::new()
                    } else {
                        // The addresses come from the token, which anyone can write.
                        format!(" with one of: {}", output::clean(&addrs.join(" ")))
                    }
                );
            }
            out.joined(&joined);
        }
        SpaceCommand::Revoke { node_id } => {
            b.space_revoke(space, &node_id).await?;
            out.done();
        }
        SpaceCommand::Members => maintenance::members(b, space, out).await?,
        SpaceCommand::Leave => maintenance::leave(b, space, out).await?,
    }
    Ok(())
}

/// A join still pending after its wait: not a refusal (the inviter may just
/// be offline), so the space stays joined and is admitted later.
fn not_admitted_in_time(space: &str, secs: f64) -> CliError {
    CliError::new(
        ErrorKind::Timeout,
        format!(
            "the inviter did not answer within {secs} s; space {space} stays joined as pending \
             and is admitted once the inviter is reachable (`weft space list` shows it): \
             make sure the inviter's daemon runs, or `weft connect` to it, or wait longer with --timeout"
        ),
    )
}

/// The JSON argument (standard input was read in already).
fn read_json(text: &str) -> Result<Value, CliError> {
    let map = weft_core::parse_object(text).map_err(weft_core::Error::from)?;
    Ok(Value::Object(map))
}

/// Polls the status until sync is idle, showing progress on stderr.
async fn wait_for_sync(b: &Client, timeout: f64) -> Result<(), CliError> {
    if b.is_embedded() {
        eprintln!("note: no daemon runs for this data dir; nothing is syncing");
        return Ok(());
    }
    let limit = Duration::try_from_secs_f64(timeout).map_err(|_| {
        CliError::new(
            ErrorKind::InvalidInput,
            format!("--timeout {timeout} is not a number of seconds"),
        )
    })?;
    let started = Instant::now();
    let mut shown = crate::progress::SyncProgress::default();
    let mut idle_polls = 0;
    loop {
        let s = b.status().await?;
        shown.update(&s);
        // Idle means nothing left with every connected peer; a peer just
        // dialed (say by `space join`) may not have a session yet, and a
        // single idle reading may precede the first reconcile.
        if s.sync.idle && s.sync.peers >= s.peers_connected {
            idle_polls += 1;
            if idle_polls >= 2 {
                return Ok(());
            }
        } else {
            idle_polls = 0;
        }
        if started.elapsed() >= limit {
            shown.finish();
            return Err(CliError::new(
                ErrorKind::Timeout,
                format!(
                    "sync not done after {timeout} s: {} documents still pending; retry with a longer --timeout",
                    s.sync.pending
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
