//! Operating the real `weft` binary: clean logs, `weft daemon stop`,
//! `weft status`, completions and the man page, usage errors, tables and
//! progress on a terminal, and error texts without library internals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A data dir and an empty config, so the machine's own never leak in.
struct Dev {
    dir: tempfile::TempDir,
}

impl Dev {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weft.toml"), "").unwrap();
        Dev { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("replica")
    }

    fn config(&self, toml: &str) {
        std::fs::write(self.dir.path().join("weft.toml"), toml).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(WEFT);
        c.arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env("WEFT_CONFIG", self.dir.path().join("weft.toml"))
            .env_remove("WEFT_DATA_DIR")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Starts `weft daemon` with stderr to a file and waits for `daemon.json`.
    fn daemon(&self, extra: &[&str]) -> Daemon {
        let log = self.dir.path().join(format!("daemon-{}.log", nanos()));
        std::fs::File::create(&log).unwrap();
        self.daemon_logging_to(log, extra, &[])
    }

    /// Starts `weft daemon` appending its stderr to `log`, with `env` set.
    fn daemon_logging_to(&self, log: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut args = vec!["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
        args.extend_from_slice(extra);
        let mut cmd = self.cmd(&args);
        cmd.envs(env.iter().copied());
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, log };
        let started = Instant::now();
        while !self.data().join("daemon.json").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no daemon.json; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Dev {
    /// Runs a `weft daemon` that must exit by itself (killed after a minute).
    fn daemon_fails(&self, extra: &[&str]) -> Output {
        let mut args = vec!["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the daemon did not exit: {:?}", child.wait_with_output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `weft daemon stop` returned only after the process ended, so it
    /// must be over (or a zombie) at once.
    fn exited(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn stop(dev: &Dev, d: &mut Daemon) {
    let out = dev.run(&["daemon", "stop"]);
    assert!(
        out.status.success(),
        "stop: {}\nlog:\n{}",
        text(&out.stderr),
        d.log()
    );
    assert!(d.exited().success(), "the daemon exits 0 when stopped");
}

#[test]
fn logs_have_no_colour_codes_when_piped_and_json_gives_one_object_per_line() {
    let dev = Dev::new();
    let mut d = dev.daemon(&[]);
    stop(&dev, &mut d);
    let log = d.log();
    assert!(log.contains("daemon ready"), "{log}");
    assert!(
        !log.contains("\x1b["),
        "ANSI codes in a piped log:\n{log:?}"
    );

    // Under systemd (stderr is the journal), lines carry no time of their
    // own: the journal stamps them. Elsewhere they start with the time.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let stamped = |l: &str| l.len() > 4 && l[..4].bytes().all(|b| b.is_ascii_digit());
        assert!(stamped(log.lines().next().unwrap()), "{log}");
        let journal = dev.dir.path().join("journal.log");
        let meta = std::fs::File::create(&journal).unwrap().metadata().unwrap();
        let stream = format!("{}:{}", meta.dev(), meta.ino());
        let mut d = dev.daemon_logging_to(journal, &[], &[("JOURNAL_STREAM", &stream)]);
        stop(&dev, &mut d);
        let log = d.log();
        assert!(log.contains("daemon ready"), "{log}");
        assert!(log.lines().all(|l| !stamped(l)), "{log}");
        assert!(
            log.lines().next().unwrap().trim_start().starts_with("INFO"),
            "{log}"
        );
    }

    for how in ["flag", "config"] {
        let mut d = if how == "flag" {
            dev.daemon(&["--log-format", "json"])
        } else {
            dev.config("log_format = \"json\"\n");
            dev.daemon(&[])
        };
        if how == "config" {
            // A second daemon on the same data dir fails, in JSON too.
            let d2 = dev.daemon_fails(&["--log-format", "json"]);
            assert_eq!(d2.status.code(), Some(4));
            let err = text(&d2.stderr);
            let last: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
            assert_eq!(last["level"], "ERROR", "{err}");
            assert!(
                last["message"].as_str().unwrap().contains("already runs"),
                "{err}"
            );
            for l in err.lines() {
                assert!(serde_json::from_str::<Value>(l).is_ok(), "{l}");
            }
        }
        stop(&dev, &mut d);
        let log = d.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 3, "{how}: {log}");
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{how}: {e}: {l}"));
            assert!(v["level"].is_string(), "{how}: {l}");
            assert!(v["message"].is_string(), "{how}: {l}");
            assert!(v["timestamp"].is_string(), "{how}: {l}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.contains(r#""message":"daemon ready""#)),
            "{log}"
        );
        assert!(!log.contains("\x1b["), "{log:?}");
    }

    // A bad value is a clear error, from the flag (usage, 2) or the file (1).
    dev.config("log_format = \"xml\"\n");
    let out = dev.run(&["daemon", "--no-mdns"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("log_format") && err.contains("json"), "{err}");
    dev.config("");
    let out = dev.run(&["daemon", "--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("text, json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn daemon_stop_stops_the_daemon_of_the_data_dir_and_says_when_none_runs() {
    let dev = Dev::new();
    let out = dev.run(&["daemon", "stop"]);
    assert_eq!(out.status.code(), Some(3), "nothing to stop is exit 3");
    assert!(
        text(&out.stderr).contains("no daemon runs for"),
        "{}",
        text(&out.stderr)
    );

    let mut d = dev.daemon(&[]);
    let pid = d.child.id();
    assert!(
        dev.run(&["put", "notes", "a", r#"{"n":1}"#])
            .status
            .success()
    );
    let out = dev.run(&["--json", "daemon", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer, serde_json::json!({"stopped": true, "pid": pid}));
    assert!(d.exited().success());
    assert!(
        !dev.data().join("daemon.json").exists(),
        "removed on a clean exit"
    );
    assert!(d.log().contains("stopped"), "{}", d.log());
    // The replica is whole and free: an embedded command reads it at once.
    let out = dev.run(&["get", "notes", "a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Stopped already: the same clear answer.
    assert_eq!(dev.run(&["daemon", "stop"]).status.code(), Some(3));
}

#[test]
fn status_shows_version_api_address_data_dir_and_uptime() {
    let dev = Dev::new();
    assert!(dev.run(&["put", "notes", "a", "{}"]).status.success());
    let embedded = status(&dev);
    assert_eq!(embedded["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(embedded["api"], Value::Null);
    assert_eq!(embedded["data_dir"], dev.data().display().to_string());
    assert!(embedded["uptime_secs"].is_u64(), "{embedded}");

    let mut d = dev.daemon(&[]);
    let info: Value =
        serde_json::from_slice(&std::fs::read(dev.data().join("daemon.json")).unwrap()).unwrap();
    let served = status(&dev);
    assert_eq!(served["api"], info["api"]);
    assert_eq!(served["data_dir"], dev.data().display().to_string());
    let first = served["uptime_secs"].as_u64().unwrap();
    // Uptime counts from the daemon's start, not from each request.
    let later = eventually(|| {
        let up = status(&dev)["uptime_secs"].as_u64().unwrap();
        (up > first).then_some(up)
    });
    assert!(later > first);
    let out = dev.run(&["status"]);
    let shown = text(&out.stdout);
    for want in [
        format!("version:    {}", env!("CARGO_PKG_VERSION")),
        format!("api:        {}", info["api"].as_str().unwrap()),
        format!("data dir:   {}", dev.data().display()),
        "uptime:     ".to_owned(),
    ] {
        assert!(shown.contains(&want), "{want:?} in\n{shown}");
    }
    stop(&dev, &mut d);
}

fn status(dev: &Dev) -> Value {
    let out = dev.run(&["--json", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never happened"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let dev = Dev::new();
    let generate = |args: &[&str]| {
        let out = dev.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let bash = generate(&["completion", "bash"]);
    for word in [
        "_weft()",
        "complete -F _weft",
        "--log-format",
        "completion",
        "stop",
    ] {
        assert!(bash.contains(word), "bash: {word}");
    }
    if let Ok(check) = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
    {
        use std::io::Write;
        let mut check = check;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(bash.as_bytes())
            .unwrap();
        assert!(
            check.wait().unwrap().success(),
            "bash -n rejects the script"
        );
    }
    assert!(generate(&["completion", "zsh"]).starts_with("#compdef weft"));
    let fish = generate(&["completion", "fish"]);
    assert!(
        fish.contains("complete -c weft") && fish.contains("reader"),
        "roles complete"
    );
    let man = generate(&["man"]);
    assert!(man.contains(".TH weft 1"), "{man}");
    for word in [
        "weft\\-daemon(1)",
        "completion",
        "status",
        "GLOBAL OPTIONS",
        "data\\-dir",
    ] {
        assert!(man.contains(word), "man: {word}");
    }
    // Each page it lists exists.
    let invite = generate(&["man", "space", "invite"]);
    assert!(invite.contains(".TH weft-space-invite 1"), "{invite}");
    assert!(
        invite.contains("reader") && invite.contains("Examples:"),
        "{invite}"
    );
    let out = dev.run(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // None of this touches a replica.
    assert!(!dev.data().exists());
    let out = dev.run(&["completion", "powershell"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bash, zsh, fish"));
}

#[test]
fn bad_usage_exits_2_naming_what_is_allowed_and_changes_nothing() {
    let dev = Dev::new();
    for (args, want) in [
        (
            &["space", "invite", "--role", "owner"][..],
            "reader, writer, admin",
        ),
        (
            &["space", "invite", "--expires", "3y"][..],
            "s, m, h, d or w",
        ),
        (
            &["space", "join", "weft-invite-x", "--timeout", "soon"][..],
            "90s, 5m, 1h",
        ),
        (&["status", "--timeout", "2d"][..], "a day"),
        (&["--space", "team", "sql", "SELECT 1"][..], "space` column"),
    ] {
        let out = dev.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!dev.data().exists(), "a usage error opened the replica");
    let help = text(&dev.run(&["--help"]).stdout);
    assert!(dev.run(&["put", "notes", "a", "{}"]).status.success());
    assert!(
        help.contains("Global options:") && help.contains("Examples:"),
        "{help}"
    );
    // Without the flag, the config's defaults apply.
    dev.config("invite_role = \"reader\"\ninvite_expires = \"2h\"\n");
    let out = dev.run(&["--json", "space", "invite"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let invite: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(invite["role"], "reader");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let left = invite["expires_at"].as_i64().unwrap() - now;
    assert!((7000..=7300).contains(&left), "2h: {left}");
}

/// Markers of text a library meant for its developers.
const INTERNALS: [&str; 8] = [
    "Semantic(",
    "Io(",
    "Error {",
    "kind:",
    "os error",
    "Failed to negotiate",
    "[(",
    "Custom",
];

#[test]
fn errors_print_no_library_internals() {
    let dev = Dev::new();
    for token in [
        "weft-invite-abc",
        "weft-invite-",
        "weft-invite-3mJr7AoUXx2Wqd",
        "weft-invite-0OIl",
        "hello",
    ] {
        let out = dev.run(&["space", "join", token]);
        assert_eq!(out.status.code(), Some(1), "{token}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: not a Weft invite token: "),
            "{token}: {err}"
        );
        for marker in INTERNALS {
            assert!(!err.contains(marker), "{token}: {err}");
        }
    }

    let mut d = dev.daemon(&[]);
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}");
    let out = dev.run(&["connect", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("connection refused"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for marker in INTERNALS {
        assert!(!err.contains(marker), "{err}");
    }
    stop(&dev, &mut d);
}

/// Runs `weft ARGS` with its stdout and stderr on a terminal (`script`
/// gives it a pseudo-terminal); returns what it printed.
#[cfg(target_os = "linux")]
fn on_terminal(dev: &Dev, args: &str) -> String {
    let line = format!("{WEFT} --data-dir {} {args}", shell_quote(&dev.data()));
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("WEFT_CONFIG", dev.dir.path().join("weft.toml"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs commands on a pseudo-terminal");
    assert!(out.status.success(), "{args}: {}", text(&out.stdout));
    text(&out.stdout).replace("\r\n", "\n")
}

#[cfg(target_os = "linux")]
fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[cfg(target_os = "linux")]
#[test]
fn listings_print_headers_on_a_terminal_and_plain_lines_otherwise() {
    let dev = Dev::new();
    assert!(
        dev.run(&["put", "notes", "a", r#"{"n":1}"#])
            .status
            .success()
    );
    let spaces = on_terminal(&dev, "space list");
    let header = spaces.lines().next().unwrap();
    for col in ["ID", "NAME", "STATE", "DEFAULT", "MEMBERS"] {
        assert!(header.contains(col), "{spaces}");
    }
    let list = on_terminal(&dev, "list notes");
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        ["ID  DOCUMENT", r#"a   {"n":1}"#]
    );
    let sql = on_terminal(&dev, "sql \"SELECT id, collection FROM documents\"");
    assert_eq!(
        sql.lines().collect::<Vec<_>>(),
        ["collection  id", "notes       a"]
    );

    // Piped: the stable plain lines, no header.
    let plain = text(&dev.run(&["list", "notes"]).stdout);
    assert_eq!(plain, "a\t{\"n\":1}\n");
    let plain = text(&dev.run(&["space", "list"]).stdout);
    assert!(plain.ends_with("admin  (default)  1 members\n"), "{plain}");

    // Waiting for sync: a redrawn bar on a terminal, plain lines otherwise.
    let mut d = dev.daemon(&[]);
    let shown = on_terminal(&dev, "status --wait-synced --timeout 30");
    assert!(shown.contains("\r\x1b[2Ksyncing ["), "{shown:?}");
    assert!(
        shown.contains("0 of 0 left") && shown.contains("docs/s"),
        "{shown:?}"
    );
    let out = dev.run(&["status", "--wait-synced", "--timeout", "30"]);
    let err = text(&out.stderr);
    assert_eq!(err, "syncing: 0 documents pending with 0 peers\n");
    stop(&dev, &mut d);
}
