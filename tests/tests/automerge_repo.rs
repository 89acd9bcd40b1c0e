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

#[path = "automerge_repo/browser.rs"]
mod browser;

const WAIT: Duration = Duration::from_secs(120);

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Installs the pinned JS packages (from the committed lock file) when
/// they are missing or the lock changed. `npm install` rather than `npm ci`:
/// npm 11's `ci` refuses this lock for leaving out other platforms'
/// optional native packages of cbor-x.
fn npm_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = js_dir();
        // node_modules is reinstalled whenever the lock file changes.
        let lock =
            std::fs::read(dir.join("package-lock.json")).expect("tests/js/package-lock.json");
        let stamp = dir.join("node_modules/.weft-lock");
        if std::fs::read(&stamp).is_ok_and(|s| s == lock) {
            return;
        }
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the automerge-repo interop tests (install Node.js and npm)");
        assert!(status.success(), "npm install in {} failed", dir.display());
        let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
        std::fs::write(&stamp, lock).expect("write the npm stamp");
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
    let (a, _da, b, db) = two_nodes();
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

    // Concurrent edits merge: with B's daemon stopped (so neither edit can
    // see the other), JS edits through A and the CLI edits B's replica;
    // then B comes back and reconnects.
    assert!(db.terminate().success());
    js.ok(json!({"cmd": "change", "url": url, "set": {"js": true, "title": "from js, edited"}}));
    b.ok(&[
        "--space",
        "team",
        "patch",
        "automerge",
        &id,
        r#"{"cli":true}"#,
    ]);
    let _db = b.start_daemon(&[]);
    let a_addr = a.json(&["id"])["listen_addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(&["connect", &a_addr]);
    let merged = json!({"title": "from js, edited", "n": 1, "js": true, "cli": true});
    js.ok(json!({"cmd": "find", "url": url, "want": merged}));
    eventually(WAIT, || {
        (b.json(&["--space", "team", "get", "automerge", &id]) == merged).then_some(())
    })
    .expect("B sees both edits");

    // Ephemeral messages (presence) reach every other client of the
    // document exactly once, and never come back to the sender.
    let mut second = Js::start(&ws_url(&api, &token));
    let mut third = Js::start(&ws_url(&api, &token));
    for c in [&mut js, &mut second, &mut third] {
        c.ok(json!({"cmd": "find", "url": url, "want": {"js": true}}));
        c.ok(json!({"cmd": "listen", "url": url}));
    }
    js.ok(json!({"cmd": "broadcast", "url": url, "message": {"cursor": 7}}));
    for c in [&mut second, &mut third] {
        let heard = c.ok(json!({"cmd": "heard", "url": url}));
        assert_eq!(heard, json!([{"cursor": 7}]));
    }
    std::thread::sleep(Duration::from_secs(1)); // room for echoes to arrive
    for c in [&mut second, &mut third] {
        let heard = c.ok(json!({"cmd": "heard", "url": url}));
        assert_eq!(heard, json!([{"cursor": 7}]), "heard exactly once");
    }
    assert!(
        js.call(json!({"cmd": "heard", "url": url, "timeoutMs": 500}))
            .is_err(),
        "the sender must not hear its own broadcast"
    );

    // A document asked for before it exists arrives once it is written.
    let late = weft_core::DocKey::new(team_id(&a), "notes", "late").unwrap();
    let late_url = weft_core::interop::automerge_url(&late);
    let mut waiting = Js::start(&ws_url(&api, &token));
    writeln!(
        waiting.input,
        "{}",
        json!({"cmd": "find", "url": late_url, "want": {"late": true}, "timeoutMs": 90000})
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1)); // it asks, and hears "unavailable"
    b.ok(&[
        "--space",
        "team",
        "put",
        "notes",
        "late",
        r#"{"late":true}"#,
    ]);
    let mut line = String::new();
    waiting.output.read_line(&mut line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"ok": {"late": true}}),
        "{line}"
    );

    // A JS client of B opens the document created through A.
    let (api_b, token_b) = b.api();
    let mut on_b = Js::start(&ws_url(&api_b, &token_b));
    let seen = on_b.ok(json!({"cmd": "find", "url": url, "want": {"js": true, "cli": true}}));
    assert_eq!(seen["title"], "from js, edited");

    // 1,000 documents sync without loss.
    let urls = js.ok(json!({"cmd": "createMany", "n": 1000}));
    let mut made: Vec<String> = urls.as_array().unwrap().iter().map(id_of).collect();
    made.sort();
    assert_eq!(made.len(), 1000);
    let ids = "SELECT id FROM documents WHERE collection = 'automerge' AND json_extract(json, '$.i') IS NOT NULL ORDER BY id";
    let arrived = eventually(WAIT, || {
        let rows = b.json(&["sql", ids]);
        let got: Vec<String> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        (got.len() == 1000).then_some(got)
    });
    assert_eq!(
        arrived,
        Some(made),
        "all 1,000 JS documents reached B, each under its own id"
    );
    let _ = js.call(json!({"cmd": "exit"}));
}

fn team_id(d: &Device) -> String {
    let spaces = d.json(&["space", "list"]);
    spaces
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "team")
        .expect("team")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn wrong_tokens_and_malformed_frames_are_refused() {
    let a = Device::new();
    let _da = a.start_daemon(&[]);
    let (api, token) = a.api();
    let doc_id = weft_core::interop::encode_automerge_id([5; 16]);
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
    // Not CBOR; a message before `join`; a broken sync message after a
    // proper `join` for an existing document: each gets one `error` frame
    // and a close, and the document is untouched.
    a.ok(&["put", "automerge", &doc_id, r#"{"keep":1}"#]);
    let heads_before = a
        .json(&["history", "automerge", &doc_id])
        .as_array()
        .unwrap()
        .len();
    let join = cbor_map(&[
        ("type", Cbor::Text("join")),
        ("senderId", Cbor::Text("raw")),
    ]);
    let garbage = cbor_map(&[
        ("type", Cbor::Text("sync")),
        ("senderId", Cbor::Text("raw")),
        ("documentId", Cbor::Text(&doc_id)),
        ("data", Cbor::Bytes(&[0x42, 0x00, 0x01, 0x02])),
    ]);
    for (what, frames, replies) in [
        ("not CBOR", vec!["ffff00".to_owned()], 1),
        (
            "leave before join",
            vec!["a16474797065656c65617665".to_owned()],
            1,
        ),
        ("broken sync after join", vec![join, garbage], 2),
    ] {
        let r = js.ok(json!({"cmd": "raw", "url": ws_url(&api, &token), "frames": frames}));
        assert_eq!(r["closed"], true, "{what}: {r}");
        let got = r["frames"].as_array().unwrap();
        assert_eq!(got.len(), replies, "{what}: {r}");
        let last = hex_decode(got.last().unwrap().as_str().unwrap());
        assert!(
            String::from_utf8_lossy(&last).contains("error"),
            "{what}: {r}"
        );
    }
    assert_eq!(a.json(&["get", "automerge", &doc_id]), json!({"keep": 1}));
    let heads_after = a
        .json(&["history", "automerge", &doc_id])
        .as_array()
        .unwrap()
        .len();
    assert_eq!(heads_after, heads_before, "the broken sync stored nothing");
    // Nothing else was stored.
    assert_eq!(
        a.json(&["sql", "SELECT count(*) AS n FROM documents"])[0]["n"],
        1
    );
    let _ = js.call(json!({"cmd": "exit"}));
}

enum Cbor<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// A small CBOR map in hex (definite lengths under 256 bytes each).
fn cbor_map(pairs: &[(&str, Cbor)]) -> String {
    fn head(out: &mut Vec<u8>, major: u8, len: usize) {
        if len < 24 {
            out.push((major << 5) | len as u8);
        } else {
            out.push((major << 5) | 24);
            out.push(u8::try_from(len).expect("short"));
        }
    }
    let mut out = Vec::new();
    head(&mut out, 5, pairs.len());
    for (k, v) in pairs {
        head(&mut out, 3, k.len());
        out.extend_from_slice(k.as_bytes());
        match v {
            Cbor::Text(t) => {
                head(&mut out, 3, t.len());
                out.extend_from_slice(t.as_bytes());
            }
            Cbor::Bytes(b) => {
                head(&mut out, 2, b.len());
                out.extend_from_slice(b);
            }
        }
    }
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The README's web-app flow in a real browser: a page served from a
/// loopback origin runs the stock automerge-repo client (bundled, with
/// Automerge's wasm) against the daemon; its document arrives in the
/// replica and a change made through the API reaches the page. The same
/// page from a non-loopback origin is refused at the WebSocket upgrade.
/// Skipped, saying so, where no `chromium` is installed.
#[test]
fn a_web_page_on_a_loopback_origin_syncs_and_a_foreign_one_is_refused() {
    let Some(chromium) = browser::chromium() else {
        eprintln!(
            "SKIPPED a_web_page_on_a_loopback_origin_syncs_and_a_foreign_one_is_refused: \
             no `chromium` on PATH (.ci/install-browser installs Debian's)"
        );
        return;
    };
    npm_ready();
    let out = tempfile::tempdir().unwrap();
    let bundle = browser::bundle(&js_dir(), out.path());
    let a = Device::new();
    let _daemon = a.start_daemon(&[]);
    let (api, token) = a.api();
    let ws = ws_url(&api, &token);
    let page = browser::PageServer::start(&bundle);

    let chrome = browser::Browser::open(&chromium, &page.url("127.0.0.1", &ws));
    let socket = page.next("socket", WAIT, &chrome);
    assert_eq!(
        socket["open"], true,
        "a loopback page may open the WebSocket"
    );
    let created = page.next("created", WAIT, &chrome);
    let id = id_of(&created["url"]);
    let got = eventually(WAIT, || {
        let out = a.run(&["--json", "get", "automerge", &id]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    })
    .expect("the page's document reached the daemon");
    assert_eq!(got, json!({"title": "from a browser", "n": 1}));
    a.ok(&["patch", "automerge", &id, r#"{"fromDaemon":true}"#]);
    let changed = page.next("changed", WAIT, &chrome);
    assert_eq!(
        changed["doc"],
        json!({"title": "from a browser", "n": 1, "fromDaemon": true}),
        "{changed}"
    );
    drop(chrome);

    let foreign = browser::Browser::open(&chromium, &page.url(browser::FOREIGN_HOST, &ws));
    let socket = page.next("socket", WAIT, &foreign);
    assert_eq!(
        socket["open"],
        false,
        "a page of http://{}:* must not open the WebSocket",
        browser::FOREIGN_HOST
    );
    drop(foreign);

    // The refusal is the daemon's: a daemon that lists that origin in
    // `api_allowed_origins` lets the same page in.
    let b = Device::new();
    b.write_config(&format!(
        "api_allowed_origins = [\"http://{}:{}\"]\n",
        browser::FOREIGN_HOST,
        page.port()
    ));
    let _daemon_b = b.start_daemon(&[]);
    let (api_b, token_b) = b.api();
    let listed = browser::Browser::open(
        &chromium,
        &page.url(browser::FOREIGN_HOST, &ws_url(&api_b, &token_b)),
    );
    let socket = page.next("socket", WAIT, &listed);
    assert_eq!(
        socket["open"], true,
        "a listed origin may open the WebSocket"
    );
    page.next("created", WAIT, &listed);
}
