//! The two modes: with no daemon the app embeds its own node; with a
//! `weft daemon` running for the data dir it attaches to the daemon's API,
//! writes land in the daemon's replica (read back with `weft get`), the
//! CLI's edits show up live, and a daemon that goes away is said so and
//! found again.

use std::time::Duration;

use super::common::{SHORT, app, click, state, type_into, until, wait_ready};
use egui_kittest::kittest::Queryable;
use weft_desktop::msg::Mode;
use weft_tests::Device;

const OWN: &str = "Weft — this app's own replica";

#[test]
fn without_a_daemon_the_app_embeds_its_own_replica_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = app(dir.path(), false);
    wait_ready(&mut ui);
    assert_eq!(state(&ui).mode, Some(Mode::Embedded));
    assert!(ui.query_by_label(OWN).is_some(), "the title bar says so");
    let shown = state(&ui).node_id.clone().unwrap();
    assert!(!dir.path().join("daemon.json").exists());
    drop(ui);
    // Its own replica in that dir: the CLI, opening it next, is that device.
    let config = dir.path().join("test-weft.toml");
    std::fs::write(&config, "").unwrap();
    let id = std::process::Command::new(weft_tests::weft_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "id"])
        .env("WEFT_CONFIG", &config)
        .env_remove("WEFT_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        id.status.success(),
        "{}",
        String::from_utf8_lossy(&id.stderr)
    );
    let id: serde_json::Value = serde_json::from_slice(&id.stdout).unwrap();
    assert_eq!(id["node_id"].as_str(), Some(shown.as_str()));
}

#[test]
fn with_a_daemon_the_app_attaches_and_its_note_reaches_the_daemon() {
    let device = Device::new();
    let daemon = device.start_daemon(&[]);
    let (api, _) = device.api();
    let addr = api.strip_prefix("http://").unwrap().to_owned();
    let mut ui = app(device.path(), false);
    wait_ready(&mut ui);
    assert_eq!(state(&ui).mode, Some(Mode::Attached { api: addr.clone() }));
    let title = format!("Weft — attached to the daemon at {addr}");
    assert!(ui.query_by_label(&title).is_some(), "the title bar says so");
    assert!(ui.query_by_label(OWN).is_none());
    // The daemon's identity, not a second device.
    let id = device.json(&["id"]);
    assert_eq!(state(&ui).node_id.as_deref(), id["node_id"].as_str());

    // A note created and typed in the app is in the daemon's replica.
    click(&mut ui, "New note");
    until(&mut [&mut ui], "the new note's editor", SHORT, |a| {
        state(a[0]).note.is_some()
    });
    type_into(&mut ui, "Title", "Groceries");
    type_into(&mut ui, "Body", "eggs");
    until(&mut [&mut ui], "the note in the list, saved", SHORT, |a| {
        a[0].query_by_label("Groceries").is_some()
            && state(a[0]).note.as_ref().is_some_and(|n| !n.unsaved())
    });
    let note = state(&ui).note.as_ref().unwrap().id.clone();
    let got = device.json(&["get", "notes", &note]);
    assert_eq!(got["title"], "Groceries", "{got}");
    assert_eq!(got["body"], "eggs", "{got}");

    // The CLI's edit of the open note reaches its editor through the
    // daemon's change feed, and a new note its list.
    device.ok(&["patch", "notes", &note, r#"{"body": "eggs, milk"}"#]);
    device.ok(&[
        "put",
        "notes",
        "from-cli",
        r#"{"title": "From the CLI", "body": "", "updated": 1}"#,
    ]);
    until(&mut [&mut ui], "the CLI's edits in the app", SHORT, |a| {
        state(a[0])
            .note
            .as_ref()
            .is_some_and(|n| n.body == "eggs, milk")
            && a[0].query_by_label("From the CLI").is_some()
    });
    // Collections come from the daemon's API too.
    assert!(state(&ui).collections.iter().any(|c| c == "notes"));

    // The daemon goes away: the status line says so, the app does not open
    // the replica itself, and it attaches again when a daemon is back.
    assert!(daemon.terminate().success());
    until(
        &mut [&mut ui],
        "the app to notice the daemon is gone",
        SHORT,
        |a| state(a[0]).link_down.is_some(),
    );
    assert!(
        ui.query_by_label_contains("Daemon unreachable").is_some(),
        "the status line says so"
    );
    assert!(matches!(state(&ui).mode, Some(Mode::Attached { .. })));
    let _daemon = device.start_daemon(&[]);
    let (api, _) = device.api();
    let moved = Mode::Attached {
        api: api.strip_prefix("http://").unwrap().to_owned(),
    };
    until(
        &mut [&mut ui],
        "the app to find the daemon again",
        Duration::from_secs(30),
        |a| state(a[0]).link_down.is_none() && state(a[0]).mode.as_ref() == Some(&moved),
    );
    device.ok(&["patch", "notes", &note, r#"{"body": "eggs, milk, tea"}"#]);
    until(
        &mut [&mut ui],
        "the restarted daemon's change",
        SHORT,
        |a| {
            state(a[0])
                .note
                .as_ref()
                .is_some_and(|n| n.body == "eggs, milk, tea")
        },
    );
}
