use std::time::{Duration, Instant};

use super::*;

fn with_note(body: &str) -> AppState {
    let mut s = AppState::default();
    s.apply(Update::Ready {
        node_id: "me".into(),
        default_space: "sp".into(),
    });
    s.apply(Update::Note {
        space: "sp".into(),
        id: "n1".into(),
        text: text("T", body),
        source: NoteSource::Opened,
    });
    s.outbox.clear();
    s
}

fn text(title: &str, body: &str) -> NoteText {
    NoteText {
        title: title.into(),
        body: body.into(),
    }
}

fn type_body(s: &mut AppState, body: &str) {
    s.note.as_mut().unwrap().body = body.into();
    s.note_edited();
}

fn remote(s: &mut AppState, body: &str, source: NoteSource) {
    s.apply(Update::Note {
        space: "sp".into(),
        id: "n1".into(),
        text: text("T", body),
        source,
    });
}

#[test]
fn ready_selects_the_default_space() {
    let mut s = AppState::default();
    s.apply(Update::Ready {
        node_id: "me".into(),
        default_space: "sp".into(),
    });
    assert_eq!(s.space.as_deref(), Some("sp"));
    assert_eq!(s.outbox, vec![Command::SelectSpace("sp".into())]);
}

#[test]
fn saves_after_typing_pauses() {
    let mut s = with_note("hello");
    type_body(&mut s, "hello world");
    let now = Instant::now();
    let wait = s.tick(now).expect("waits for the debounce");
    assert!(wait <= SAVE_DEBOUNCE);
    assert!(s.outbox.is_empty());
    assert_eq!(s.tick(now + SAVE_DEBOUNCE + Duration::from_millis(1)), None);
    assert_eq!(
        s.outbox,
        vec![Command::SaveNote {
            space: "sp".into(),
            id: "n1".into(),
            base: text("T", "hello"),
            edited: text("T", "hello world"),
        }]
    );
    assert!(
        s.note.as_ref().unwrap().unsaved(),
        "in flight until answered"
    );
    remote(&mut s, "hello world", NoteSource::Saved);
    assert!(!s.note.as_ref().unwrap().unsaved());
}

#[test]
fn remote_text_replaces_a_clean_buffer_and_moves_the_cursor() {
    let mut s = with_note("world");
    remote(&mut s, "hello world", NoteSource::Remote);
    let note = s.note.as_ref().unwrap();
    assert_eq!(note.body, "hello world");
    assert!(!note.unsaved());
    assert_eq!(
        note.remap.body,
        Some(("world".to_owned(), "hello world".to_owned()))
    );
}

#[test]
fn remote_text_merges_with_unsaved_typing() {
    let mut s = with_note("middle");
    type_body(&mut s, "middle end");
    remote(&mut s, "start middle", NoteSource::Remote);
    let note = s.note.as_ref().unwrap();
    assert_eq!(note.body, "start middle end");
    assert_eq!(note.base.body, "start middle");
    assert!(note.unsaved(), "the local part still has to be saved");
    s.flush_note();
    assert!(matches!(
        &s.outbox[..],
        [Command::SaveNote { base, edited, .. }]
            if base.body == "start middle" && edited.body == "start middle end"
    ));
}

#[test]
fn remote_text_during_a_save_waits_for_the_answer() {
    let mut s = with_note("a");
    type_body(&mut s, "ab");
    s.flush_note();
    type_body(&mut s, "abc");
    // The peer's "X" reached the store before the save; the answer has both.
    remote(&mut s, "Xa", NoteSource::Remote);
    assert_eq!(s.note.as_ref().unwrap().body, "abc", "not applied twice");
    remote(&mut s, "Xab", NoteSource::Saved);
    let note = s.note.as_ref().unwrap();
    assert_eq!(note.body, "Xabc");
    assert_eq!(note.base.body, "Xab");
    assert!(note.in_flight.is_none() && note.edited_at.is_some());
}

#[test]
fn invalid_json_is_not_sent() {
    let mut s = with_note("");
    s.apply(Update::Doc {
        space: "sp".into(),
        collection: "todos".into(),
        id: "t1".into(),
        json: Some("{\"a\": 1}".into()),
        remote: false,
    });
    s.doc.as_mut().unwrap().text = "{\"a\": ".into();
    s.save_doc();
    let error = s.doc.as_ref().unwrap().error.clone().expect("an error");
    assert!(error.contains("invalid JSON"), "{error}");
    assert!(s.outbox.is_empty());

    s.doc.as_mut().unwrap().text = "[1]".into();
    s.save_doc();
    assert!(
        s.doc
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("object")
    );
    assert!(s.outbox.is_empty());

    s.doc.as_mut().unwrap().text = "{\"a\": 2}".into();
    s.save_doc();
    assert!(s.doc.as_ref().unwrap().error.is_none());
    assert!(matches!(&s.outbox[..], [Command::SaveDoc { json, .. }] if json["a"] == 2));
}

#[test]
fn answers_about_another_space_are_ignored() {
    let mut s = with_note("x");
    s.apply(Update::Notes {
        space: "other".into(),
        notes: vec![NoteSummary {
            id: "z".into(),
            title: "elsewhere".into(),
            updated: 0,
        }],
    });
    assert!(s.notes.is_empty());
    s.apply(Update::Note {
        space: "other".into(),
        id: "n1".into(),
        text: text("T", "not this"),
        source: NoteSource::Remote,
    });
    assert_eq!(s.note.as_ref().unwrap().body, "x");
}

#[test]
fn switching_spaces_saves_the_open_note() {
    let mut s = with_note("x");
    type_body(&mut s, "xy");
    s.select_space("other".into());
    assert!(matches!(&s.outbox[0], Command::SaveNote { space, .. } if space == "sp"));
    assert_eq!(s.outbox[1], Command::SelectSpace("other".into()));
    assert!(s.note.is_none());
}

#[test]
fn short_ids_keep_both_ends() {
    assert_eq!(short("abc"), "abc");
    assert_eq!(short("12D3KooWAbCdEfGhIj"), "12D3Ko…GhIj");
}

#[test]
fn a_join_reports_its_admission_in_the_status_line() {
    let mut s = AppState::default();
    s.apply(Update::Spaces(vec![weft_core::SpaceInfo {
        id: "sp2".into(),
        name: "team".into(),
        role: None,
        state: weft_core::SpaceState::Pending,
        members: Default::default(),
        default: false,
    }]));
    let admission = |state: &str, reason: Option<&str>| Update::Admission {
        space: "sp2".into(),
        state: state.into(),
        reason: reason.map(str::to_owned),
    };
    s.apply(admission("pending", None));
    assert!(
        matches!(&s.notice, Some(Notice::Info(m)) if m.contains("team") && m.contains("waiting for the inviter")),
        "{:?}",
        s.notice
    );
    s.apply(admission("writer", None));
    assert_eq!(
        s.notice,
        Some(Notice::Info("Joined team: admitted as writer".into()))
    );
    s.apply(admission("refused", Some("invite already used")));
    assert!(
        matches!(&s.notice, Some(Notice::Error(m)) if m.contains("refused: invite already used") && m.contains("new invite")),
        "{:?}",
        s.notice
    );
}
