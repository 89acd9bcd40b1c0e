//! `weft watch` through the real binary: it resumes from a sequence number
//! and outlives its daemon.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use weft_tests::Device;

const WAIT: Duration = Duration::from_secs(60);

/// Sends each line `r` yields, from a thread.
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next_event(rx: &mpsc::Receiver<String>) -> Value {
    let line = rx
        .recv_timeout(WAIT)
        .expect("the watcher printed a line in time");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn watch_since_resumes_across_a_daemon_restart() {
    let a = Device::new();
    let daemon = a.start_daemon(&[]);
    a.ok(&["put", "notes", "n1", r#"{"v":1}"#]);
    a.ok(&["put", "notes", "n1", r#"{"v":2}"#]);
    let mut watch = a
        .command(&["--json", "watch", "notes", "--since", "0", "--include-docs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(watch.stdout.take().unwrap());
    let err = lines(watch.stderr.take().unwrap());

    // The replay: n1 once, at its latest version.
    let first = next_event(&out);
    assert_eq!(
        (first["id"].as_str(), &first["doc"]["v"]),
        (Some("n1"), &Value::from(2))
    );
    let s1 = first["seq"].as_u64().unwrap();
    // Then live.
    a.ok(&["put", "notes", "n2", r#"{"v":1}"#]);
    let second = next_event(&out);
    assert_eq!(second["id"], "n2");
    let s2 = second["seq"].as_u64().unwrap();
    assert_eq!(s2, s1 + 1, "the next change has the next number");

    // The daemon dies; a change made meanwhile (embedded) is not lost.
    daemon.kill_9();
    let said = err.recv_timeout(WAIT).expect("the watcher says it waits");
    assert!(said.contains("daemon stopped"), "{said}");
    a.ok(&["put", "notes", "n3", r#"{"v":1}"#]);
    let _daemon = a.start_daemon(&[]);
    let third = next_event(&out);
    assert_eq!(
        (third["id"].as_str(), third["seq"].as_u64()),
        (Some("n3"), Some(s2 + 1))
    );
    a.ok(&["delete", "notes", "n2"]);
    let fourth = next_event(&out);
    assert_eq!(
        (
            fourth["id"].as_str(),
            fourth["deleted"].as_bool(),
            &fourth["doc"]
        ),
        (Some("n2"), Some(true), &Value::Null)
    );
    assert_eq!(fourth["seq"].as_u64(), Some(s2 + 2));
    assert!(
        watch.try_wait().unwrap().is_none(),
        "the watcher still runs"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}
