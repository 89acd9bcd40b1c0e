//! The service files in `daemon/dist/` start the daemon with arguments the
//! CLI accepts, and stop it with the signal it handles.

use clap::Parser;
use weft_daemon::cli::{Cli, Command};

fn dist(name: &str) -> String {
    std::fs::read_to_string(format!("{}/dist/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn assert_runs_daemon(args: &[&str]) {
    assert!(args[0].ends_with("/weft"), "{args:?}");
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(matches!(cli.command, Command::Daemon(_)), "{args:?}");
}

#[test]
fn systemd_unit_starts_and_stops_the_daemon() {
    let unit = dist("weft.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert_runs_daemon(&exec.split_whitespace().collect::<Vec<_>>());
    assert!(unit.contains("KillSignal=SIGTERM"));
    // The JSON-logs variant the unit suggests runs as given.
    let json = unit
        .split("`ExecStart=")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the suggested JSON ExecStart");
    let args: Vec<&str> = json.split_whitespace().collect();
    assert_runs_daemon(&args);
    assert!(args.ends_with(&["--log-format", "json"]), "{args:?}");
    assert!(unit.contains("WantedBy=default.target"), "a user unit");
    let no_restart = format!(
        "RestartPreventExitStatus={}",
        weft_daemon::error::EXIT_CONFLICT
    );
    assert!(
        unit.contains(&no_restart),
        "a conflict is not retried in a loop"
    );
}

#[test]
fn launchd_plist_starts_the_daemon() {
    let plist = dist("org.weft.daemon.plist");
    let array = plist
        .split("<key>ProgramArguments</key>")
        .nth(1)
        .and_then(|rest| rest.split("</array>").next())
        .expect("ProgramArguments array");
    let args: Vec<&str> = array
        .split("<string>")
        .skip(1)
        .map(|s| s.split("</string>").next().unwrap())
        .collect();
    assert_runs_daemon(&args);
    assert!(plist.contains("<key>Label</key>\n    <string>org.weft.daemon</string>"));
}
