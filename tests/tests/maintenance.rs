//! The real `weft` binary: a backup taken while a writer keeps writing
//! through the daemon restores into a fresh data dir; restores into a held
//! dir or from a damaged file are refused and change nothing; `weft check`
//! finds damaged pages; `space members`, `space leave`, `get --at` and
//! `index create` work through the CLI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use weft_tests::{Device, eventually, filler};

const SYNC_WAIT: Duration = Duration::from_secs(90);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Overwrites three pages near the end of a database file, where the
/// document rows and chunks written last are.
fn damage(db: &std::path::Path) {
    let mut bytes = std::fs::read(db).unwrap();
    let end = bytes.len() - 4096;
    bytes[end - 3 * 4096..end].fill(0x5a);
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn a_backup_under_writes_restores_and_bad_restores_change_nothing() {
    let a = Arc::new(Device::new());
    let daemon = a.start_daemon(&[]);
    for i in 0..120 {
        let doc = json!({"i": i, "text": filler(i, 2000)}).to_string();
        a.ok(&["put", "notes", &format!("n{i}"), &doc]);
    }
    // A writer keeps writing through the daemon while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (a, stop, written) = (a.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                a.ok(&[
                    "put",
                    "live",
                    &format!("w{i}"),
                    &json!({"i": i}).to_string(),
                ]);
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    eventually(SYNC_WAIT, || {
        (written.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .expect("the writer writes");
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("a.backup");
    let file_s = file.to_str().unwrap();
    let done = a.json(&["backup", file_s]);
    let during = written.load(Ordering::SeqCst);
    eventually(SYNC_WAIT, || {
        (written.load(Ordering::SeqCst) >= during + 3).then_some(())
    })
    .expect("writes go on after the backup");
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let node_id = a.json(&["id"])["node_id"].clone();
    assert_eq!(done["node_id"], node_id);
    assert!(done["documents"].as_u64().unwrap() >= 120, "{done}");
    let out = a.run(&["backup", file_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(a.ok(&["check"]).trim(), "ok");

    // The daemon holds A's data dir: exit 4, nothing replaced.
    let out = a.run(&["restore", file_s, "--force"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));

    // Into a fresh data dir: the same device, its documents, sound.
    let b = Device::new();
    let restored = b.json(&["restore", file_s]);
    assert_eq!(restored["node_id"], node_id);
    assert_eq!(restored["documents"], done["documents"]);
    assert_eq!(b.json(&["id"])["node_id"], node_id);
    let n7 = b.json(&["get", "notes", "n7"]);
    assert_eq!(n7, json!({"i": 7, "text": filler(7, 2000)}));
    assert_eq!(b.ok(&["check"]).trim(), "ok");
    let listed = b.json(&["list", "live"]).as_array().unwrap().len() as u64;
    assert_eq!(listed + 120, done["documents"].as_u64().unwrap());
    // A replica is there now: replaced only with --force.
    let out = b.run(&["restore", file_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // A damaged backup is refused before anything is touched.
    let bad = files.path().join("bad.backup");
    std::fs::copy(&file, &bad).unwrap();
    damage(&bad);
    let before = std::fs::read(b.path().join("weft.db")).unwrap();
    let out = b.run(&["restore", bad.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a usable Weft backup"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(b.path().join("weft.db")).unwrap(), before);
    assert_eq!(b.json(&["get", "notes", "n7"]), n7);

    // `weft check` on a copy of A's replica with damaged pages: exit 1,
    // the problems on stdout.
    assert!(daemon.terminate().success());
    let c = Device::new();
    for name in ["weft.db", "identity.key"] {
        std::fs::copy(a.path().join(name), c.path().join(name)).unwrap();
    }
    damage(&c.path().join("weft.db"));
    let out = c.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let problems = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!problems.trim().is_empty() && problems.trim() != "ok");
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let report = c.run(&["--json", "check"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(!report["problems"].as_array().unwrap().is_empty());
}

#[test]
fn members_leave_get_at_and_indexes_through_the_cli() {
    let (a, b) = (Device::new(), Device::new());
    let _da = a.start_daemon(&[]);
    let _db = b.start_daemon(&[]);
    let team = a.ok(&["space", "create", "team"]).trim().to_owned();
    let token = a.ok(&["--space", "team", "space", "invite", "--expires", "1h"]);
    assert_eq!(b.json(&["space", "join", token.trim()])["state"], "writer");
    let (a_id, b_id) = (
        a.json(&["id"])["node_id"].clone(),
        b.json(&["id"])["node_id"].clone(),
    );

    let members = b.json(&["--space", "team", "space", "members"]);
    let mut expected = vec![
        json!({"node_id": a_id, "role": "admin", "this_device": false}),
        json!({"node_id": b_id, "role": "writer", "this_device": true}),
    ];
    expected.sort_by_key(|m| m["node_id"].as_str().unwrap().to_owned());
    assert_eq!(members, Value::Array(expected));
    let text = b.ok(&["--space", "team", "space", "members"]);
    assert!(text.contains("writer  (this device)"), "{text}");

    a.ok(&["--space", "team", "put", "notes", "n1", r#"{"v":1}"#]);
    eventually(SYNC_WAIT, || {
        b.run(&["--space", "team", "get", "notes", "n1"])
            .status
            .success()
            .then_some(())
    })
    .expect("B got the document");

    // Leaving needs --space; the default space stays.
    let out = b.run(&["space", "leave"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--space"), "{}", stderr(&out));
    let left = b.json(&["--space", "team", "space", "leave"]);
    assert_eq!(left["id"], team.as_str());
    assert!(left["removed"].as_u64().unwrap() >= 2, "{left}");
    let out = b.run(&["--space", team.as_str(), "get", "notes", "n1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let spaces = b.json(&["space", "list"]);
    assert_eq!(spaces.as_array().unwrap().len(), 1, "{spaces}");

    // A writes on in the team and in a new space; B, reconnected, takes
    // the new space's document and nothing of the team's.
    a.ok(&["--space", "team", "put", "notes", "n2", r#"{"v":2}"#]);
    a.ok(&["space", "create", "other"]);
    let token = a.ok(&["--space", "other", "space", "invite", "--expires", "1h"]);
    assert_eq!(b.json(&["space", "join", token.trim()])["state"], "writer");
    a.ok(&["--space", "other", "put", "notes", "o1", r#"{"o":1}"#]);
    eventually(SYNC_WAIT, || {
        b.run(&["--space", "other", "get", "notes", "o1"])
            .status
            .success()
            .then_some(())
    })
    .expect("B got the other space's document");
    let rows = b.json(&[
        "sql",
        &format!("SELECT count(*) AS n FROM documents WHERE space = '{team}'"),
    ]);
    assert_eq!(rows, json!([{"n": 0}]));
    assert_eq!(
        a.json(&["--space", "team", "get", "notes", "n1"]),
        json!({"v": 1})
    );

    // The document as it was, at the heads `history` printed.
    let first = a.json(&["put", "notes", "h", r#"{"v":1}"#]);
    a.ok(&["patch", "notes", "h", r#"{"v":2}"#]);
    let heads: Vec<&str> = first["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let history = a.json(&["history", "notes", "h"]);
    assert_eq!(history[0]["hash"], heads[0]);
    let at = a.json(&["get", "notes", "h", "--at", &heads.join(",")]);
    assert_eq!(at, json!({"v": 1}));
    let out = a.run(&["get", "notes", "h", "--at", &"ab".repeat(32)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no such version"), "{}", stderr(&out));

    for _ in 0..2 {
        let done = a.json(&["index", "create", "meta.due"]);
        assert_eq!(done, json!({"field": "meta.due"}));
    }
    let out = a.run(&["index", "create", "a..b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("field path"), "{}", stderr(&out));
}
