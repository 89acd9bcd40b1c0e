//! Two apps, each with its own embedded node, in one space over loopback:
//! what one types appears live in the other, concurrent typing merges, and
//! the reader's cursor stays where it was.

use super::common::{
    App, SHORT, SYNC, app, body_id, click, cursor, set_cursor, state, type_into, until, wait_ready,
};
use egui_kittest::kittest::Queryable;
use weft_desktop::state::Notice;

fn body(app: &App) -> String {
    state(app)
        .note
        .as_ref()
        .map(|n| n.body.clone())
        .unwrap_or_default()
}

#[test]
fn text_typed_in_one_app_appears_in_the_other() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = app(dir_a.path(), true);
    let mut b = app(dir_b.path(), true);
    wait_ready(&mut a);
    wait_ready(&mut b);

    // A creates a space and copies an invite; B pastes it.
    type_into(&mut a, "Name", "team");
    click(&mut a, "Create space");
    until(&mut [&mut a], "the new space to be selected", SHORT, |x| {
        let s = state(x[0]);
        s.spaces
            .iter()
            .any(|sp| sp.name == "team" && s.space.as_ref() == Some(&sp.id))
    });
    let team = state(&a).space.clone().unwrap();
    click(&mut a, "Copy invite");
    until(&mut [&mut a], "the invite token", SHORT, |x| {
        state(x[0]).invite.is_some()
    });
    let (_, token) = state(&a).invite.clone().unwrap();
    type_into(&mut b, "Token", &token);
    click(&mut b, "Join");
    until(
        &mut [&mut a, &mut b],
        "B to be a writer in the space",
        SYNC,
        |x| {
            let s = state(x[1]);
            s.space.as_ref() == Some(&team)
                && s.spaces
                    .iter()
                    .any(|sp| sp.id == team && sp.role == Some(weft_core::Role::Writer))
        },
    );
    // The join's outcome is in B's status line once A admitted it.
    until(&mut [&mut a, &mut b], "B told it was admitted", SYNC, |x| {
        state(x[1]).notice == Some(Notice::Info("Joined team: admitted as writer".into()))
    });

    // A writes a note; B opens it once it has synced.
    click(&mut a, "New note");
    until(&mut [&mut a], "A's editor", SHORT, |x| {
        state(x[0]).note.is_some()
    });
    let note = state(&a).note.as_ref().unwrap().id.clone();
    type_into(&mut a, "Body", "Hello from A");
    until(&mut [&mut a, &mut b], "the note in B's list", SYNC, |x| {
        state(x[1]).notes.iter().any(|n| n.id == note)
    });
    click(&mut b, "Untitled");
    until(&mut [&mut a, &mut b], "A's text in B's editor", SYNC, |x| {
        super::common::field_value(x[1], "Body").as_deref() == Some("Hello from A")
    });

    // Both type at once, at opposite ends; B's cursor is at its end.
    let b_body = body_id(&note);
    click(&mut b, "Body");
    set_cursor(&mut b, b_body, "Hello from A".len());
    b.get_by_label("Body").type_text(" and B");
    b.step();
    click(&mut a, "Body");
    set_cursor(&mut a, body_id(&note), 0);
    a.get_by_label("Body").type_text("Hi! ");
    a.step();
    let want = "Hi! Hello from A and B";
    until(
        &mut [&mut a, &mut b],
        "both edits in both apps",
        SYNC,
        |x| body(x[0]) == want && body(x[1]) == want,
    );
    assert_eq!(
        super::common::field_value(&b, "Body").as_deref(),
        Some(want)
    );
    // B's cursor followed its text: still right after " and B".
    assert_eq!(cursor(&b, b_body), Some(want.chars().count()));

    // A's peers panel shows B connected and the space synced.
    click(&mut a, "Peers");
    until(&mut [&mut a, &mut b], "B listed as connected", SYNC, |x| {
        x[0].query_by_label("connected").is_some()
    });
    assert!(a.query_by_label_contains("Online").is_some());
}
