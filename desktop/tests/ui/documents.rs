//! The JSON editor: invalid JSON shows an error and stores nothing; valid
//! JSON is stored and shows up in the collection and its history.

use super::common::{SHORT, app, click, state, type_into, until, wait_ready};
use egui_kittest::kittest::Queryable;

#[test]
fn invalid_json_shows_an_error_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = app(dir.path(), false);
    wait_ready(&mut ui);
    click(&mut ui, "Documents");
    type_into(&mut ui, "In", "todos");
    type_into(&mut ui, "Id", "t1");
    click(&mut ui, "New document");
    assert!(state(&ui).doc.as_ref().is_some_and(|d| d.is_new));

    type_into(&mut ui, "JSON", r#"{"title": "buy milk", "done": false"#);
    click(&mut ui, "Save");
    let error = ui
        .query_by_label_contains("invalid JSON")
        .and_then(|n| n.value())
        .expect("an inline error naming the problem");
    assert!(error.contains("Not saved"), "{error}");

    // A document that is valid JSON but not an object is refused too.
    click(&mut ui, "JSON");
    ui.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    ui.get_by_label("JSON").type_text("[1, 2]");
    ui.step();
    click(&mut ui, "Save");
    assert!(
        ui.query_by_label_contains("must be a JSON object")
            .is_some()
    );

    // Give the backend time to (wrongly) store something, then look.
    std::thread::sleep(std::time::Duration::from_millis(300));
    ui.step();
    assert!(state(&ui).collections.is_empty(), "nothing was stored");

    click(&mut ui, "JSON");
    ui.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    ui.get_by_label("JSON")
        .type_text(r#"{"title": "buy milk", "done": false}"#);
    ui.step();
    click(&mut ui, "Save");
    until(
        &mut [&mut ui],
        "the save and the collection list",
        SHORT,
        |a| {
            let s = state(a[0]);
            s.doc
                .as_ref()
                .is_some_and(|d| !d.saving && !d.is_new && d.error.is_none())
                && s.collections.contains(&"todos".to_owned())
        },
    );
    assert!(ui.query_by_label_contains("invalid JSON").is_none());

    // One change in the history: the refused saves left no trace.
    click(&mut ui, "History");
    until(&mut [&mut ui], "the history", SHORT, |a| {
        state(a[0]).history.is_some()
    });
    let history = state(&ui).history.clone().unwrap();
    assert_eq!(history.rows.len(), 1, "{:?}", history.rows);
    assert_eq!(
        history.rows[0].author.map(|a| a.to_string()),
        state(&ui).node_id
    );
    assert!(ui.query_by_label("this device").is_some());
}
