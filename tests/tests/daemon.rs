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
    let joined = b.ok(&["space", "join", token]).trim().to_owned();
    assert_eq!(joined, team);

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

    let line = watch_out.lines().next().expect("a watch line").unwrap();
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
    let a = Device::new();
    let daemon = a.start_daemon(&[]);
    let mut acknowledged = Vec::new();
    let mut daemon = Some(daemon);
    for i in 0..60 {
        if i == 20 {
            // Mid-stream, with puts in flight around it.
            daemon.take().unwrap().kill_9();
        }
        let id = format!("d{i}");
        let body = format!(r#"{{"i":{i}}}"#);
        let out = a.run(&["put", "c", &id, &body]);
        if out.status.success() {
            acknowledged.push(i);
        }
        if i == 40 {
            // Restarted while puts go on: it must wait out embedded writers.
            daemon = Some(a.start_daemon(&[]));
        }
    }
    assert!(
        acknowledged.len() >= 50,
        "most puts succeed: {acknowledged:?}"
    );
    let daemon = daemon.unwrap();
    for i in acknowledged {
        let doc = a.json(&["get", "c", &format!("d{i}")]);
        assert_eq!(doc, json!({ "i": i }), "put {i} exited 0 but is missing");
    }
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
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already runs"));
    // An open event stream does not hold shutdown up; the watcher is told.
    let watch = a
        .command(&["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    let watched = watch.wait_with_output().unwrap();
    assert_eq!(watched.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&watched.stderr).contains("daemon stopped"));
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
    assert_eq!(
        a.json(&["get", "notes", "a"]),
        json!({"n": 1, "done": false})
    );
    let missing = a.run(&["get", "notes", "missing"]);
    assert_eq!(missing.status.code(), Some(3), "absent documents exit 3");
    let embedded = reads(&a);
    let embedded_status = a.json(&["status"]);
    assert_eq!(embedded_status["online"], false);

    let daemon = a.start_daemon(&[]);
    let through_daemon = reads(&a);
    for (e, d) in embedded.iter().zip(&through_daemon) {
        assert_eq!(e, d, "embedded and daemon answers differ");
    }
    let status = a.json(&["status"]);
    assert_eq!(status["online"], true);
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
    let list = a.json(&["list", "notes", "--order", "n"]);
    assert_eq!(
        list,
        json!([{"id": "c", "doc": {"from": "stdin"}}, {"id": "a", "doc": {"n": 1, "done": false}}])
    );
}
