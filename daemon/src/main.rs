//! `weft`: the daemon and the command line.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use weft_daemon::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime.block_on(weft_daemon::run(cli)))
}

/// `RUST_LOG` wins; else the config's `log`; else `info` for the daemon and
/// `warn` for one-shot commands, whose output is their result.
fn init_logging(cli: &Cli) {
    let default = match cli.command {
        // kad warns whenever a node has no DHT peers yet, which is the normal
        // state of a LAN-only daemon.
        Command::Daemon(_) => "info,libp2p_kad=error",
        _ => "warn",
    };
    let configured = weft_daemon::config::load(cli.config.as_deref())
        .ok()
        .and_then(|c| c.log);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(configured.as_deref().unwrap_or(default)))
        .unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
