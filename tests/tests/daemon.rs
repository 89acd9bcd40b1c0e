//! The real `weft` binary across processes: two daemons sharing a space,
//! `kill -9` during a stream of puts, clean shutdown on SIGTERM, and the
//! CLI giving the same answers through a daemon and on its own.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use weft_tests::{Device, eventually};

const SYNC_WAIT: Duration = Duration::from_secs(90);

#[test]
fn two_daemons_share_a_space_through_the_cli() {
    let (a, b) = (Device::new(), Device::new());
    let da = a.start_daemon(&[]);
    let _db = b.start_daemon(&[]);

    // `weft --json id`: addresses end in /p2p/<node id> and are dialable as given.
    let id = a.json(&["id"]);
    let node_id = id["node_id"].as_str().unwrap().to_owned();
    let addrs = id["listen_addrs"].as_array().unwrap();
    assert!(!addrs.is_empty(), "{id}");
    for addr in addrs {
        assert!(
            addr.as_str().unwrap().ends_with(&format!("/p2p/{node_id}")),
            "{addr}"
        );
    }

    let team = a.ok(&["space", "create", "team"]).trim().to_owned();
    let token = a.ok(&[
        "--space",
        "team",
        "space",
        "invite",
        "--role",
        "writer",
        "--expires",
        "1h",
    ]);
    let token = token.trim();
    assert!(token.starts_with("weft-invite-"), "{token}");
    // The join waits for A's answer: B is a writer when it returns.
    let joined = b.json(&["space", "join", token]);
    assert_eq!(joined, json!({"id": team, "state": "writer"}));

    // A watcher on B sees A's change arrive as a remote event.
    let mut watch = b
        .command(&["--json", "--space", "team", "watch", "notes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watch_out = BufReader::new(watch.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500)); // let the watcher subscribe

    a.ok(&[
        "--space",
        "team",
        "put",
        "notes",
        "n1",
        r#"{"title":"from A","done":false}"#,
    ]);
    let got = eventually(SYNC_WAIT, || {
        let out = b.run(&["--json", "--space", "team", "get", "notes", "n1"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    })
    .unwrap_or_else(|| panic!("B never got the document; A's log:\n{}", da.log()));
    assert_eq!(got, json!({"title": "from A", "done": false}));

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(watch_out.lines().next());
    });
    let line = rx
        .recv_timeout(SYNC_WAIT)
        .expect("the watcher printed the remote change in time")
        .expect("a watch line")
        .unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (
            event["id"].as_str(),
            event["origin"].as_str(),
            event["space"].as_str()
        ),
        (Some("n1"), Some("remote"), Some(team.as_str()))
    );

    // B writes back (it joined as a writer); A sees it.
    b.ok(&[
        "--space",
        "team",
        "patch",
        "notes",
        "n1",
        r#"{"done":true}"#,
    ]);
    let merged = eventually(SYNC_WAIT, || {
        let doc = a.json(&["--space", "team", "get", "notes", "n1"]);
        (doc["done"] == true).then_some(doc)
    })
    .expect("A got B's patch");
    assert_eq!(merged["title"], "from A");

    let status = b.ok(&["status", "--wait-synced", "--timeout", "60"]);
    assert!(status.contains("idle"), "{status}");
    let peers = b.json(&["peers"]);
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == node_id.as_str() && p["connected"] == true),
        "{peers}"
    );
}

#[test]
fn kill_9_during_puts_loses_no_put_that_exited_0() {
    let a = std::sync::Arc::new(Device::new());
    let daemon = a.start_daemon(&[]);
    // Three writers put continuously while the daemon is killed and later
    // restarted under them; each records the puts that exited 0.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (a, stop, acked) = (a.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("w{w}-{i}");
                    let out = a.run(&["put", "c", &id, &format!(r#"{{"w":{w},"i":{i}}}"#)]);
                    if out.status.success() {
                        acked.lock().unwrap().push((id, w, i));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let count = || acked.lock().unwrap().len();
    eventually(SYNC_WAIT, || (count() >= 15).then_some(())).expect("puts through the daemon");
    daemon.kill_9(); // while puts are in flight
    let at_kill = count();
    eventually(SYNC_WAIT, || (count() >= at_kill + 15).then_some(()))
        .expect("puts go on without the daemon (embedded)");
    let daemon = a.start_daemon(&[]); // must wait out the embedded writers
    let at_restart = count();
    eventually(SYNC_WAIT, || (count() >= at_restart + 15).then_some(()))
        .expect("puts go on through the restarted daemon");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    for (id, w, i) in &acked {
        let doc = a.json(&["get", "c", id]);
        assert_eq!(
            doc,
            json!({ "w": w, "i": i }),
            "put {id} exited 0 but is missing"
        );
    }
    let stored = a.json(&["sql", "SELECT count(*) AS n FROM documents"]);
    assert!(stored[0]["n"].as_u64().unwrap() >= acked.len() as u64);
    assert!(daemon.terminate().success());
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let a = Device::new();
    let daemon = a.start_daemon(&[]);
    for i in 0..20 {
        a.ok(&["put", "c", &format!("d{i}"), r#"{"x":1}"#]);
    }
    assert!(a.path().join("daemon.json").exists());
    // A second daemon on the same replica refuses to start.
    let second = a.run(&["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    assert_eq!(
        second.status.code(),
        Some(4),
        "conflict: a daemon already runs"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("already runs"));
    // An open event stream does not hold shutdown up; the watcher is told,
    // and waits for a daemon to come back (tests/tests/watch.rs).
    let mut watch = a
        .command(&["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    let mut said = String::new();
    BufReader::new(watch.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert!(said.contains("daemon stopped"), "{said}");
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        !a.path().join("daemon.json").exists(),
        "daemon.json left behind"
    );
    let wal = a.path().join("weft.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "WAL not checkpointed on shutdown");
    // Embedded now: the data is there and the token file is private.
    assert_eq!(
        a.json(&["sql", "SELECT count(*) AS n FROM documents"])[0]["n"],
        20
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.path().join("api-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Runs the same read commands and compares their `--json` output.
fn reads(d: &Device) -> Vec<(String, i32, String, String)> {
    [
        vec!["get", "notes", "a"],
        vec!["get", "notes", "missing"],
        vec!["list", "notes", "--where", "done=false", "--order", "n"],
        vec!["list", "notes", "--order", "n", "--desc", "--limit", "1"],
        vec![
            "sql",
            "SELECT id, json_extract(json, '$.n') AS n FROM documents ORDER BY id",
        ],
        vec!["sql", "DELETE FROM documents"],
        vec!["history", "notes", "a"],
        vec!["space", "list"],
        vec!["--space", "nope", "get", "notes", "a"],
        vec!["list", "notes", "--where", "nonsense"],
        vec!["get", "notes", "a/b c?é"],
        vec!["history", "notes", "a/b c?é"],
        vec!["get", "notes", ""],
        vec!["list", ""],
        vec!["put", "notes", "", "{}"],
        vec!["put", "notes", "z", "[1]"],
        vec!["patch", "notes", "missing", "{}"],
        vec!["delete", "notes", "missing"],
        vec!["space", "invite", "--role", "boss"],
        vec!["space", "revoke", "not-a-node"],
        vec!["--space", "nope", "list", "notes"],
    ]
    .iter()
    .map(|args| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = d.run(&all);
        (
            args.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .collect()
}

#[test]
fn the_cli_answers_alike_with_and_without_a_daemon() {
    let a = Device::new();
    // Embedded writes.
    a.ok(&["put", "notes", "a", r#"{"n":1,"done":false,"t":"x"}"#]);
    a.ok(&["put", "notes", "b", r#"{"n":2,"done":true}"#]);
    a.ok(&["patch", "notes", "a", r#"{"t":null}"#]);
    a.ok(&["put", "notes", "a/b c?é", r#"{"odd":true}"#]);
    assert_eq!(
        a.json(&["get", "notes", "a"]),
        json!({"n": 1, "done": false})
    );
    let missing = a.run(&["get", "notes", "missing"]);
    assert_eq!(missing.status.code(), Some(3), "absent documents exit 3");
    let embedded = reads(&a);
    let embedded_status = a.json(&["status"]);
    assert_eq!(embedded_status["online"], false);
    let embedded_id = a.json(&["id"]);
    assert_eq!(embedded_id["listen_addrs"], json!([]));

    let daemon = a.start_daemon(&[]);
    let through_daemon = reads(&a);
    for (e, d) in embedded.iter().zip(&through_daemon) {
        assert_eq!(e, d, "embedded and daemon answers differ");
    }
    let status = a.json(&["status"]);
    assert_eq!(status["online"], true);
    assert_eq!(a.json(&["id"])["node_id"], embedded_id["node_id"]);
    assert_eq!(status["documents"], embedded_status["documents"]);

    // Daemon writes, then read embedded after it stops.
    a.ok(&["delete", "notes", "b"]);
    let mut put = a
        .command(&["put", "notes", "c", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    put.stdin
        .take()
        .unwrap()
        .write_all(br#"{"from":"stdin"}"#)
        .unwrap();
    assert!(put.wait().unwrap().success());
    let empty = a.run(&["put", "notes", "d", "-"]); // stdin is empty
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("JSON"));
    assert!(daemon.terminate().success());
    assert_eq!(a.run(&["get", "notes", "b"]).status.code(), Some(3));
    let mut list = a.json(&["list", "notes"]).as_array().unwrap().clone();
    list.sort_by_key(|d| d["id"].as_str().unwrap().to_owned());
    assert_eq!(
        list,
        [
            json!({"id": "a", "doc": {"n": 1, "done": false}}),
            json!({"id": "a/b c?é", "doc": {"odd": true}}),
            json!({"id": "c", "doc": {"from": "stdin"}}),
        ]
    );
}

/// The API of a real daemon process, found the way local apps find it: the
/// address in `daemon.json`, the token in `api-token`.
#[test]
fn local_apps_reach_the_daemon_with_its_files() {
    use hyper::{Method, StatusCode};
    use weft_daemon::client::Client;

    let a = Device::new();
    let daemon = a.start_daemon(&[]);
    let info: Value =
        serde_json::from_slice(&std::fs::read(a.path().join("daemon.json")).unwrap()).unwrap();
    assert_eq!(info["pid"], daemon.pid());
    let api = info["api"].as_str().unwrap();
    let addr: std::net::SocketAddr = api.strip_prefix("http://").unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback(), "{api}");
    let token = std::fs::read_to_string(a.path().join("api-token")).unwrap();
    let client = Client::new(addr, token.trim());
    let auth = format!("Bearer {}", token.trim());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for bad in [None, Some("Bearer nope"), Some("Basic eDp5")] {
            let (status, body) = client
                .raw(Method::GET, "/v1/status", None, bad)
                .await
                .unwrap();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "unauthorized");
        }
        // The scheme is case-insensitive (RFC 7235).
        let lower = format!("bearer {}", token.trim());
        let (status, _) = client
            .raw(Method::GET, "/v1/status", None, Some(&lower))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let path = "/v1/spaces/default/collections/notes/docs/from-api";
        let (status, body) = client
            .raw(
                Method::PUT,
                path,
                Some(br#"{"via":"api"}"#.to_vec()),
                Some(&auth),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let (status, body) = client
            .raw(Method::PATCH, path, Some(b"{oops".to_vec()), Some(&auth))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
        let metrics = client.call_text("/metrics").await.unwrap();
        assert!(metrics.contains("\nweft_documents 1\n"), "{metrics}");
    });
    // The CLI sees what the API wrote.
    assert_eq!(a.json(&["get", "notes", "from-api"]), json!({"via": "api"}));
    assert!(daemon.terminate().success());
}

/// Frames the daemons of a settled space may still send in [`QUIET`]: none
/// is expected (pings are libp2p's, not sync frames).
const QUIET_FRAMES: u64 = 4;
const QUIET: Duration = Duration::from_secs(3);
/// Frames a reader may exchange from its join until the space is settled
/// (the handshake, the log and two notes take a few dozen).
const READER_FRAMES: u64 = 100;

fn frames(d: &Device) -> (u64, u64) {
    let status = d.json(&["status"]);
    let t = &status["traffic"];
    (
        t["frames_sent"].as_u64().unwrap(),
        t["frames_received"].as_u64().unwrap(),
    )
}

#[test]
fn a_reader_and_a_revoked_member_leave_the_daemons_quiet() {
    let (a, reader, revoked) = (Device::new(), Device::new(), Device::new());
    let _da = a.start_daemon(&[]);
    let _dr = reader.start_daemon(&[]);
    let _dv = revoked.start_daemon(&[]);
    a.ok(&["space", "create", "team"]);
    for (d, role) in [(&reader, "reader"), (&revoked, "writer")] {
        let token = a.ok(&["--space", "team", "space", "invite", "--role", role]);
        d.ok(&["space", "join", token.trim()]);
    }
    let note = |d: &Device, id: &str| d.run(&["--space", "team", "get", "notes", id]);
    // Joining waited for the inviter to admit each device; checked here.
    eventually(SYNC_WAIT, || {
        let spaces = revoked.ok(&["space", "list"]);
        spaces
            .lines()
            .any(|l| l.contains("team") && l.contains("writer"))
            .then_some(())
    })
    .expect("the writer was admitted");
    revoked.ok(&["--space", "team", "put", "notes", "before", r#"{"v":1}"#]);
    eventually(SYNC_WAIT, || {
        note(&a, "before").status.success().then_some(())
    })
    .expect("the member's note reached the admin");
    let revoked_id = revoked.json(&["id"])["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(&["--space", "team", "space", "revoke", &revoked_id]);
    a.ok(&["--space", "team", "put", "notes", "after", r#"{"v":2}"#]);
    eventually(SYNC_WAIT, || {
        note(&reader, "after").status.success().then_some(())
    })
    .expect("the reader received the admin's note");
    // The revoked daemon settles too: the admin refuses it, so it stops.
    for d in [&a, &reader, &revoked] {
        d.ok(&["status", "--wait-synced", "--timeout", "60"]);
    }
    let (sent, received) = frames(&reader);
    assert!(
        sent + received < READER_FRAMES,
        "the reader exchanged {sent} + {received} frames to settle"
    );
    let before: Vec<_> = [&a, &reader, &revoked].map(frames).to_vec();
    std::thread::sleep(QUIET);
    let after: Vec<_> = [&a, &reader, &revoked].map(frames).to_vec();
    let moved: u64 = before.iter().zip(&after).map(|(b, a)| a.0 - b.0).sum();
    assert!(
        moved <= QUIET_FRAMES,
        "{moved} frames in {QUIET:?} after every daemon settled ({before:?} -> {after:?})"
    );
    assert!(
        !note(&revoked, "after").status.success(),
        "a revoked member received a note"
    );
}
