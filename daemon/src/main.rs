//! `weft`: the daemon and the command line.

use std::process::ExitCode;

use clap::Parser;
use weft_daemon::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    weft_daemon::logging::init(&cli);
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
