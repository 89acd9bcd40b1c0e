//! Helpers for the multi-process tests: running the real `weft` binary as a
//! CLI and as daemons, each on its own temporary data dir and loopback ports.

pub mod bench;
pub mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `weft` binary that `cargo test --workspace` builds beside the test
/// executables (target/<profile>/weft), or the one `$WEFT_TEST_BIN` names
/// (to pin the build under test when several checkouts share a target dir).
pub fn weft_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("WEFT_TEST_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(format!("weft{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build -p weft-daemon` first)",
        bin.display()
    );
    bin
}

/// One device: a data dir and an empty config file, so the machine's own
/// `weft.toml` and `WEFT_DATA_DIR` never leak into a test.
pub struct Device {
    pub dir: tempfile::TempDir,
    config: PathBuf,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("test-weft.toml");
        std::fs::write(&config, "").expect("write config");
        Self { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces this device's `weft.toml`.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(&self.config, toml).expect("write config");
    }

    /// The daemon's API address and token, as local apps read them.
    pub fn api(&self) -> (String, String) {
        let info: Value = serde_json::from_slice(
            &std::fs::read(self.dir.path().join("daemon.json")).expect("daemon.json"),
        )
        .expect("daemon.json is JSON");
        let token = std::fs::read_to_string(self.dir.path().join("api-token")).expect("api-token");
        (
            info["api"].as_str().expect("api").to_owned(),
            token.trim().to_owned(),
        )
    }

    /// A `weft` command on this device's data dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(weft_bin());
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("WEFT_CONFIG", &self.config)
            .env_remove("WEFT_DATA_DIR")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Runs `weft ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run weft")
    }

    /// Runs `weft ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "weft {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs `weft --json ARGS`, which must succeed; returns the parsed JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Starts `weft daemon` on loopback (no mDNS) and waits until its API
    /// answers.
    pub fn start_daemon(&self, extra: &[&str]) -> Daemon {
        let log = std::fs::File::create(self.dir.path().join("daemon-test.log")).expect("log file");
        let mut args = vec!["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
        args.extend_from_slice(extra);
        let child = self
            .command(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn weft daemon");
        let daemon = Daemon {
            child,
            dir: self.dir.path().to_path_buf(),
        };
        let started = Instant::now();
        loop {
            let info = std::fs::read(self.dir.path().join("daemon.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            if info.is_some_and(|i| i["pid"] == daemon.pid())
                && self.run(&["status"]).status.success()
            {
                return daemon;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "daemon did not start; its log:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A running daemon; killed if the test ends without stopping it.
pub struct Daemon {
    pub child: Child,
    dir: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon-test.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(self.pid(), "TERM");
        let status = wait_exit(&mut self.child, Duration::from_secs(60));
        std::mem::forget(self);
        status
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
        std::mem::forget(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Retries `f` until it returns `Some` or `limit` passes.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `len` pseudo-random letters: text that does not compress, so a stored
/// document really is about that large.
pub fn filler(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}
