//! Multi-process tests of one replica: crash safety (`kill -9` while
//! writing), the cross-process lock, and the data dir environment override.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use weft_core::{Config, Error, Node};

const WRITER: &str = env!("CARGO_BIN_EXE_weft-writer");

/// Kills the child however the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Guard, BufReader<std::process::ChildStdout>) {
    let mut cmd = Command::new(WRITER);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn weft-writer");
    let out = BufReader::new(child.stdout.take().unwrap());
    (Guard(child), out)
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    for round in 0..2 {
        let (mut child, mut out) = spawn(&["write", path], &[]);
        // Latest acknowledged n per document: a later write may have been
        // acknowledged before an earlier one's line was read, so keep the max.
        let mut acked: HashMap<String, u64> = HashMap::new();
        let mut line = String::new();
        let mut count = 0;
        while count < 400 {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "writer exited early");
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(parts[0], "ok", "{line}");
            let n: u64 = parts[3].parse().unwrap();
            let slot = acked.entry(parts[2].to_owned()).or_default();
            *slot = (*slot).max(n);
            count += 1;
        }
        child.0.kill().unwrap(); // SIGKILL: no chance to flush or close
        child.0.wait().unwrap();

        let node = Node::open(Config::with_data_dir(dir.path())).await.unwrap();
        node.check_integrity().await.unwrap();
        for (id, n) in &acked {
            let doc = node
                .get(&node.key("crash", id).unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged document {id} is missing"));
            let stored = doc["n"].as_u64().unwrap();
            assert!(
                stored >= *n,
                "round {round}: {id} has n={stored}, acknowledged {n}"
            );
            // The Automerge data loads and agrees with the materialized JSON.
            let history = node.history(&node.key("crash", id).unwrap()).await.unwrap();
            assert!(!history.is_empty());
        }
        node.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_second_process_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (child, mut out) = spawn(&["hold", dir.path().to_str().unwrap()], &[]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let err = Node::open(Config::with_data_dir(dir.path()))
        .await
        .unwrap_err();
    match &err {
        Error::Locked { pid, .. } => assert_eq!(*pid, Some(child.0.id())),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string().contains(&format!("pid {}", child.0.id())),
        "{err}"
    );
    drop(child);
    // The kernel released the lock with the process.
    Node::open(Config::with_data_dir(dir.path()))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}

#[test]
fn weft_data_dir_overrides_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("from-env");
    let (_child, mut out) = spawn(&["hold"], &[("WEFT_DATA_DIR", target.to_str().unwrap())]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("ready {}", target.display()));
    assert!(target.join("weft.db").exists() && target.join("identity.key").exists());
}
