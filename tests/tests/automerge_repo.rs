//! Real automerge-repo clients (the JS packages pinned in tests/js) sync
//! with `weft daemon` over its WebSocket endpoint, and through it with a
//! second Weft node over libp2p.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use weft_tests::{Device, eventually};

const WAIT: Duration = Duration::from_secs(120);

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Installs the pinned JS packages once per test run (`npm ci`, from the
/// committed lock file).
fn npm_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = js_dir();
        let marker = dir.join("node_modules/@automerge/automerge-repo/package.json");
        if marker.exists() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the automerge-repo interop tests (install Node.js and npm)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// A Node.js process running an automerge-repo `Repo`, driven line by line.
struct Js {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Js {
    fn start(ws_url: &str) -> Js {
        npm_ready();
        let mut child = Command::new("node")
            .arg(js_dir().join("interop.mjs"))
            .arg(ws_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is needed for the automerge-repo interop tests");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Js {
            child,
            input,
            output,
        }
    }

    fn call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.input, "{command}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        match answer.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(answer["error"].as_str().unwrap_or("?").to_owned()),
        }
    }

    fn ok(&mut self, command: Value) -> Value {
        let what = command.to_string();
        self.call(command).unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}

impl Drop for Js {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ws_url(api: &str, token: &str) -> String {
    format!(
        "{}/v1/automerge?token={token}",
        api.replace("http://", "ws://")
    )
}

/// Two daemons share the space `team`; A's automerge-repo documents land in it.
fn two_nodes() -> (Device, weft_tests::Daemon, Device, weft_tests::Daemon) {
    let (a, b) = (Device::new(), Device::new());
    a.ok(&["space", "create", "team"]);
    a.write_config("automerge_space = \"team\"\n");
    let da = a.start_daemon(&[]);
    let db = b.start_daemon(&[]);
    let token = a.ok(&["--space", "team", "space", "invite"]);
    b.ok(&["space", "join", token.trim()]);
    eventually(WAIT, || {
        let spaces = b.json(&["space", "list"]);
        spaces
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "team" && s["role"] == "writer")
            .then_some(())
    })
    .expect("B joined team");
    (a, da, b, db)
}

fn id_of(url: &Value) -> String {
    url.as_str()
        .unwrap()
        .strip_prefix("automerge:")
        .unwrap()
        .to_owned()
}

#[test]
fn automerge_repo_apps_sync_through_weft() {
    let (a, _da, b, _db) = two_nodes();
    let (api, token) = a.api();
    let mut js = Js::start(&ws_url(&api, &token));

    // A JS document reaches the second Weft node over libp2p.
    let url = js.ok(json!({"cmd": "create", "doc": {"title": "from js", "n": 1}}));
    let id = id_of(&url);
    let got = eventually(WAIT, || {
        let out = b.run(&["--json", "--space", "team", "get", "automerge", &id]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    })
    .expect("the JS document reached B");
    assert_eq!(got, json!({"title": "from js", "n": 1}));

    // A document put with the CLI on B is found by the JS repo through A.
    b.ok(&[
        "--space",
        "team",
        "put",
        "notes",
        "n1",
        r#"{"title":"from the cli"}"#,
    ]);
    let cli_url = b.ok(&["--space", "team", "url", "notes", "n1"]);
    let cli_url = cli_url.trim();
    assert!(cli_url.starts_with("automerge:"), "{cli_url}");
    let found = js.ok(json!({"cmd": "find", "url": cli_url, "want": {"title": "from the cli"}}));
    assert_eq!(found, json!({"title": "from the cli"}));
    // Every replica names it alike.
    eventually(WAIT, || {
        let out = a.run(&["--space", "team", "url", "notes", "n1"]);
        out.status
            .success()
            .then(|| assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), cli_url))
    })
    .expect("A has n1 too");

    // Concurrent edits from JS (through A) and the CLI (on B) merge.
    js.ok(json!({"cmd": "change", "url": url, "set": {"js": true}}));
    b.ok(&[
        "--space",
        "team",
        "patch",
        "automerge",
        &id,
        r#"{"cli":true}"#,
    ]);
    let merged = json!({"title": "from js", "n": 1, "js": true, "cli": true});
    js.ok(json!({"cmd": "find", "url": url, "want": merged}));
    eventually(WAIT, || {
        (b.json(&["--space", "team", "get", "automerge", &id]) == merged).then_some(())
    })
    .expect("B sees both edits");

    // Ephemeral messages (presence) reach another client of the document.
    let mut other = Js::start(&ws_url(&api, &token));
    other.ok(json!({"cmd": "find", "url": url, "want": {"title": "from js"}}));
    other.ok(json!({"cmd": "listen", "url": url}));
    let heard = eventually(WAIT, || {
        js.ok(json!({"cmd": "broadcast", "url": url, "message": {"cursor": 7}}));
        other
            .call(json!({"cmd": "heard", "url": url, "timeoutMs": 1000}))
            .ok()
    })
    .expect("the other client heard the broadcast");
    assert_eq!(heard[0], json!({"cursor": 7}));

    // 1,000 documents sync without loss.
    let urls = js.ok(json!({"cmd": "createMany", "n": 1000}));
    assert_eq!(urls.as_array().unwrap().len(), 1000);
    let count = "SELECT count(*) AS n FROM documents WHERE collection = 'automerge' AND json_extract(json, '$.i') IS NOT NULL";
    let n = eventually(WAIT, || {
        let n = b.json(&["sql", count])[0]["n"].as_u64().unwrap();
        (n == 1000).then_some(n)
    });
    assert_eq!(n, Some(1000), "all 1,000 JS documents reached B");
    let _ = js.call(json!({"cmd": "exit"}));
}

#[test]
fn wrong_tokens_and_malformed_frames_are_refused() {
    let a = Device::new();
    let _da = a.start_daemon(&[]);
    let (api, token) = a.api();
    let mut js = Js::start(&ws_url(&api, &token));
    for bad in [
        ws_url(&api, "wrong"),
        format!("{}/v1/automerge", api.replace("http://", "ws://")),
    ] {
        let probe = js.ok(json!({"cmd": "probe", "url": bad}));
        assert_eq!(probe, json!({"open": false, "status": 401}), "{bad}");
    }
    assert_eq!(
        js.ok(json!({"cmd": "probe", "url": ws_url(&api, &token)})),
        json!({"open": true})
    );
    // Not CBOR, then a sync before join: each gets an `error` and a close.
    for hex in ["ffff00", "a16474797065656c65617665"] {
        let r = js.ok(json!({"cmd": "raw", "url": ws_url(&api, &token), "hex": hex}));
        assert_eq!(r["closed"], true, "{r}");
        let frames = r["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 1, "{r}");
        // The one frame is a CBOR map whose type is "error".
        let bytes = hex_decode(frames[0].as_str().unwrap());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("error"), "{text}");
    }
    // Nothing was stored.
    assert_eq!(
        a.json(&["sql", "SELECT count(*) AS n FROM documents"])[0]["n"],
        0
    );
    let _ = js.call(json!({"cmd": "exit"}));
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
