//! Commands about the `weft` program itself rather than the replica:
//! `weft daemon stop`, `weft completion SHELL` and `weft man`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::CommandFactory;
use weft_core::ErrorKind;

use crate::cli::{Cli, Shell};
use crate::client::Client;
use crate::error::CliError;
use crate::files::read_daemon_info;
use crate::output::Printer;
use crate::transport::process_alive;

/// How long `weft daemon stop` waits unless told: the daemon gives
/// requests in flight 10 s, then flushes and checkpoints the replica.
pub const DEFAULT_STOP_WAIT: f64 = 30.0;

/// Asks the daemon of `data_dir` to stop as SIGTERM does (stop accepting,
/// drain, flush, remove `daemon.json`, exit 0) and waits until it exited.
/// Only a daemon that `daemon.json` names and that answers on its port is
/// signalled, so a stale file never gets an unrelated process killed.
pub async fn stop(data_dir: &Path, timeout_secs: f64, out: &Printer) -> Result<(), CliError> {
    let not_running = || {
        CliError::new(
            ErrorKind::NotFound,
            format!("no daemon runs for {}", data_dir.display()),
        )
    };
    let Some(info) = read_daemon_info(data_dir)? else {
        return Err(not_running());
    };
    if Client::discover(data_dir).await?.is_none() {
        return Err(not_running());
    }
    terminate(info.pid)?;
    let limit = Duration::from_secs_f64(timeout_secs);
    let started = Instant::now();
    loop {
        let file_gone = read_daemon_info(data_dir)
            .ok()
            .flatten()
            .is_none_or(|i| i.pid != info.pid);
        if file_gone && exited(info.pid) {
            out.stopped(info.pid);
            return Ok(());
        }
        if started.elapsed() >= limit {
            return Err(CliError::new(
                ErrorKind::Timeout,
                format!(
                    "the daemon (pid {}) is still stopping after {timeout_secs} s; \
                     it may be finishing a long request: wait, or retry with a longer --timeout",
                    info.pid
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(unix)]
fn terminate(pid: u32) -> Result<(), CliError> {
    let failed = |e: std::io::Error| {
        CliError::new(
            ErrorKind::Internal,
            format!("cannot signal the daemon (pid {pid}): {e}"),
        )
    };
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| failed(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    // SAFETY: sends SIGTERM to one process id; no memory is involved.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn terminate(pid: u32) -> Result<(), CliError> {
    Err(CliError::new(
        ErrorKind::InvalidInput,
        format!(
            "`weft daemon stop` needs a Unix system here; stop the daemon (pid {pid}) with Ctrl-C or its service manager"
        ),
    ))
}

/// Whether `pid` ended. A process that ended but was not yet reaped by its
/// parent (a zombie: a service manager or test harness about to wait on it)
/// has exited too: it holds no files any more.
fn exited(pid: u32) -> bool {
    if !process_alive(pid) {
        return true;
    }
    #[cfg(target_os = "linux")]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`.
        return stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
    }
    false
}

/// Writes the completion script for `shell` to stdout.
pub fn completion(shell: Shell) -> Result<(), CliError> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "weft", &mut out);
    emit(&out)
}

/// Writes the man page (roff, section 1) of `weft` or of the command
/// `path` names (`["space", "invite"]` is `weft-space-invite(1)`, which
/// the parent's page lists) to stdout: the same definitions as `--help`,
/// so it cannot drift from the program.
pub fn man(path: &[String]) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    // Building gives subcommands their `weft-space-invite` names and globals.
    cmd.build();
    for name in path {
        cmd = cmd.find_subcommand(name).cloned().ok_or_else(|| {
            CliError::new(
                ErrorKind::NotFound,
                format!("no command `{}`; see `weft --help`", path.join(" ")),
            )
        })?;
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .source(format!("weft {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .map_err(|e| {
            CliError::new(
                ErrorKind::Internal,
                format!("cannot render the man page: {e}"),
            )
        })?;
    emit(&out)
}

/// A closed pipe (`weft man | head`) is not an error.
fn emit(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            ErrorKind::Internal,
            format!("cannot write to stdout: {e}"),
        )),
        _ => Ok(()),
    }
}
