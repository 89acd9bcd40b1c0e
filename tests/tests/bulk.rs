//! `weft import` and `weft export` through the real binary, with a daemon
//! and without: NDJSON round trips, a bad line is named and nothing after
//! the last stored batch is half-written.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};
use weft_tests::Device;

/// `n` documents over two collections, as `weft import` reads them.
fn ndjson(n: usize) -> String {
    (0..n)
        .map(|i| {
            let collection = if i % 3 == 0 { "tasks" } else { "notes" };
            json!({"collection": collection, "id": format!("d{i:05}"), "doc": {"i": i, "t": "é\n\"x"}})
                .to_string()
                + "\n"
        })
        .collect()
}

fn lines(text: &str) -> Vec<Value> {
    let mut v: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by_key(|r| (r["collection"].to_string(), r["id"].to_string()));
    v
}

fn import_stdin(d: &Device, args: &[&str], input: &str) -> std::process::Output {
    let mut child = d
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse the input before reading all of it: write
    // beside it, and ignore the closed pipe that follows.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn import_and_export_round_trip_with_and_without_a_daemon() {
    let a = Device::new();
    // More than one import batch (1000 documents each).
    let input = ndjson(2500);
    let file = a.path().join("in.ndjson");
    std::fs::write(&file, &input).unwrap();
    let done = a.json(&["import", file.to_str().unwrap()]);
    assert_eq!(done, json!({"imported": 2500}));
    let embedded = a.ok(&["export"]);
    assert_eq!(lines(&embedded), lines(&input));
    assert_eq!(a.ok(&["export", "tasks"]).lines().count(), 834);

    // Through a daemon, into another space, from stdin.
    let daemon = a.start_daemon(&[]);
    a.ok(&["space", "create", "team"]);
    let out = import_stdin(&a, &["--space", "team", "--json", "import", "-"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"imported": 2500})
    );
    let through_daemon = a.ok(&["--space", "team", "export"]);
    assert_eq!(lines(&through_daemon), lines(&input));
    assert_eq!(
        a.json(&["--space", "team", "get", "notes", "d00001"]),
        json!({"i": 1, "t": "é\n\"x"})
    );
    // Importing the same file again changes nothing.
    let before = a.json(&["--space", "team", "history", "notes", "d00001"]);
    let again = import_stdin(&a, &["--space", "team", "import", "-"], &input);
    assert!(again.status.success());
    assert_eq!(
        a.json(&["--space", "team", "history", "notes", "d00001"]),
        before
    );
    assert!(daemon.terminate().success());
}

#[test]
fn a_bad_line_is_named_and_nothing_of_its_batch_is_stored() {
    let a = Device::new();
    let mut input = ndjson(1500);
    // Line 1203 is in the second batch: the first (1000 lines) is stored,
    // the second not at all.
    let bad_lines = [
        (
            r#"{"collection": "notes", "id": "x", "doc": [1, 2]}"#,
            "line 1203",
        ),
        (
            r#"{"collection": "_weft", "id": "x", "doc": {}}"#,
            "line 1203",
        ),
        (
            r#"{"collection": "notes", "id": "", "doc": {}}"#,
            "line 1203",
        ),
        ("not json", "line 1203"),
    ];
    let mut all: Vec<&str> = input.lines().collect();
    all.truncate(1202);
    let head = all.join("\n") + "\n";
    for (bad, named) in bad_lines {
        input = format!("{head}{bad}\n{}", ndjson(3));
        let out = import_stdin(&a, &["import", "-"], &input);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{bad}: {err}");
        assert!(err.contains("1000 documents were imported"), "{bad}: {err}");
    }
    // The first batch is there, nothing of the second.
    assert_eq!(a.json(&["get", "notes", "d00001"])["i"], 1);
    assert_eq!(a.run(&["get", "notes", "d01001"]).status.code(), Some(3));
    // A line longer than any document could be is refused before it is
    // buffered whole.
    let huge = format!(
        "{{\"collection\": \"notes\", \"id\": \"h\", \"doc\": {{\"t\": \"{}\"}}}}\n",
        "x".repeat(3 << 20)
    );
    let out = import_stdin(&a, &["import", "-"], &huge);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1 is over"));
    // A missing file is a clear error.
    let out = a.run(&["import", "/nonexistent/file.ndjson"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/file.ndjson"));
}
