//! Notes through the real UI: create by clicking and typing, find it in the
//! list, and find it again after a restart.

use super::common::{SHORT, app, click, state, type_into, until, wait_ready};
use egui_kittest::kittest::Queryable;

#[test]
fn create_a_note_by_clicking_and_typing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = app(dir.path(), false);
    wait_ready(&mut ui);
    assert!(ui.query_by_label("Groceries").is_none());

    click(&mut ui, "New note");
    until(&mut [&mut ui], "the new note's editor", SHORT, |a| {
        state(a[0]).note.is_some()
    });
    type_into(&mut ui, "Title", "Groceries");
    type_into(&mut ui, "Body", "eggs, milk");
    until(&mut [&mut ui], "the note in the list, saved", SHORT, |a| {
        a[0].query_by_label("Groceries").is_some()
            && state(a[0]).note.as_ref().is_some_and(|n| !n.unsaved())
    });
    let note = state(&ui).note.clone().unwrap();
    assert_eq!(
        (note.title.as_str(), note.body.as_str()),
        ("Groceries", "eggs, milk")
    );
    assert_eq!(note.base.body, "eggs, milk", "the store has the body");
    drop(ui);

    // Reopened on the same replica: listed, and clicking it loads the text.
    let mut ui = app(dir.path(), false);
    wait_ready(&mut ui);
    until(&mut [&mut ui], "the stored note in the list", SHORT, |a| {
        a[0].query_by_label("Groceries").is_some()
    });
    click(&mut ui, "Groceries");
    until(&mut [&mut ui], "the stored note's text", SHORT, |a| {
        state(a[0])
            .note
            .as_ref()
            .is_some_and(|n| n.body == "eggs, milk")
    });
    assert_eq!(
        super::common::field_value(&ui, "Body").as_deref(),
        Some("eggs, milk")
    );
}
