//! The browser side of the automerge-repo tests: the page (tests/js/browser.mjs)
//! bundled with esbuild, served from a loopback HTTP server, and opened in
//! headless Chromium. The page reports its steps back with `POST /report`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use serde_json::Value;

/// A name Chromium is told resolves to 127.0.0.1, so the same page can be
/// loaded from an origin that is not loopback by name.
pub const FOREIGN_HOST: &str = "weft-foreign.test";

/// Chromium on `PATH` (Debian's package is `chromium`), if any.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Bundles the page's script with the esbuild pinned in tests/js.
pub fn bundle(js_dir: &Path, out_dir: &Path) -> PathBuf {
    let out = out_dir.join("bundle.js");
    let status = Command::new(js_dir.join("node_modules/.bin/esbuild"))
        .arg(js_dir.join("browser.mjs"))
        .args([
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", out.display()))
        .current_dir(js_dir)
        .status()
        .expect("esbuild from tests/js (npm install puts it there)");
    assert!(
        status.success(),
        "esbuild could not bundle tests/js/browser.mjs"
    );
    out
}

/// The loopback HTTP server of the page.
pub struct PageServer {
    addr: SocketAddr,
    reports: Receiver<Value>,
}

const PAGE: &str = "<!doctype html><meta charset=utf-8><title>weft browser test</title>\
                    <script type=module src=/bundle.js></script>";

impl PageServer {
    pub fn start(bundle: &Path) -> PageServer {
        let script = std::fs::read(bundle).expect("the bundle");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let (tx, reports) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, tx) = (script.clone(), tx.clone());
                std::thread::spawn(move || serve(stream, &script, &tx));
            }
        });
        PageServer { addr, reports }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The page's URL on `host`, connecting to the WebSocket `ws`.
    pub fn url(&self, host: &str, ws: &str) -> String {
        let ws: String = ws
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("http://{host}:{}/?ws={ws}", self.addr.port())
    }

    /// The page's next report of `step`; panics on a page error or timeout.
    pub fn next(&self, step: &str, limit: Duration, browser: &Browser) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let report = self.reports.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "the page did not report {step:?} within {limit:?}; Chromium's log:\n{}",
                    browser.log()
                )
            });
            if report["step"] == "error" {
                panic!("the page failed: {}", report["error"]);
            }
            if report["step"] == step {
                return report;
            }
        }
    }
}

/// Answers one request: the page, its script, or a report.
fn serve(stream: TcpStream, script: &[u8], reports: &Sender<Value>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, content): (&str, &str, &[u8]) = match (method, path) {
        ("GET", p) if p == "/" || p.starts_with("/?") => ("200 OK", "text/html", PAGE.as_bytes()),
        ("GET", "/bundle.js") => ("200 OK", "text/javascript", script),
        ("POST", "/report") => {
            let report = serde_json::from_slice(&body)
                .unwrap_or_else(|e| serde_json::json!({"step": "error", "error": e.to_string()}));
            let _ = reports.send(report);
            ("204 No Content", "text/plain", b"")
        }
        _ => ("404 Not Found", "text/plain", b"not found"),
    };
    let mut stream = &stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let _ = stream.write_all(content);
}

/// Headless Chromium showing one page; killed when dropped.
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    pub fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a profile dir");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("log file");
        let child = Command::new(chromium)
            .args([
                "--headless",
                // Root (as in CI containers) cannot use Chromium's sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--enable-logging=stderr",
            ])
            .arg(format!(
                "--host-resolver-rules=MAP {FOREIGN_HOST} 127.0.0.1"
            ))
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chromium");
        Browser { child, profile }
    }

    /// What Chromium wrote (the page's console errors included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
