//! The notes view: a list of the space's notes and an editor whose body is
//! collaborative text. Remote edits are merged into the buffers by the state;
//! here the text fields' cursors are moved along with them.

use eframe::egui::{self, text::CCursor, text::CCursorRange, text_edit::TextEditState};

use super::{format_time, muted};
use crate::msg::{Command, NOTES};
use crate::state::AppState;
use crate::text_merge::map_selection;

pub fn show(ui: &mut egui::Ui, state: &mut AppState) {
    egui::Panel::left("notes_list")
        .default_size(220.0)
        .show(ui, |ui| list(ui, state));
    egui::CentralPanel::default().show(ui, |ui| editor(ui, state));
}

fn list(ui: &mut egui::Ui, state: &mut AppState) {
    if ui.button("New note").clicked() {
        state.create_note();
    }
    ui.separator();
    if state.notes.is_empty() {
        ui.label(muted("No notes in this space yet."));
    }
    let mut open = None;
    egui::ScrollArea::vertical()
        .id_salt("notes_scroll")
        .show(ui, |ui| {
            for note in &state.notes {
                let selected = state.note.as_ref().is_some_and(|e| e.id == note.id);
                let title = if note.title.trim().is_empty() {
                    "Untitled"
                } else {
                    note.title.as_str()
                };
                let response = ui
                    .selectable_label(selected, title)
                    .on_hover_text(format!("edited {}", format_time(note.updated / 1000)));
                if response.clicked() && !selected {
                    open = Some(note.id.clone());
                }
            }
        });
    if let Some(id) = open {
        state.open_note(id);
    }
}

fn editor(ui: &mut egui::Ui, state: &mut AppState) {
    let Some(editor) = state.note.as_mut() else {
        ui.centered_and_justified(|ui| {
            ui.label(muted("Pick a note, or create one with \"New note\"."));
        });
        return;
    };
    if editor.gone {
        ui.label("This note was deleted on another device.");
        return;
    }
    let ctx = ui.ctx().clone();
    let title_id = egui::Id::new(("note_title", &editor.id));
    let body_id = egui::Id::new(("note_body", &editor.id));
    move_cursor(&ctx, title_id, editor.remap.title.take());
    move_cursor(&ctx, body_id, editor.remap.body.take());

    let mut edited = false;
    let mut history = false;
    ui.horizontal(|ui| {
        let label = ui.label("Title");
        edited |= ui
            .add(
                egui::TextEdit::singleline(&mut editor.title)
                    .id(title_id)
                    .hint_text("Untitled")
                    .desired_width(ui.available_width() - 170.0),
            )
            .labelled_by(label.id)
            .changed();
        let saved = if editor.unsaved() {
            "Saving…"
        } else {
            "Saved"
        };
        ui.label(muted(saved));
        history = ui.button("History").clicked();
    });
    let label = ui.label("Body");
    egui::ScrollArea::vertical()
        .id_salt("note_body_scroll")
        .show(ui, |ui| {
            edited |= ui
                .add(
                    egui::TextEdit::multiline(&mut editor.body)
                        .id(body_id)
                        .hint_text("Write here; other devices see it as you type.")
                        .desired_rows(18)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id)
                .changed();
        });
    let id = editor.id.clone();
    if edited {
        state.note_edited();
    }
    if history && let Some(space) = state.space.clone() {
        state.send(Command::History {
            space,
            collection: NOTES.to_owned(),
            id,
        });
    }
}

/// Moves a text field's cursor and selection from `old` to the same place in
/// `new`, so text merged in elsewhere does not make the cursor jump.
fn move_cursor(ctx: &egui::Context, id: egui::Id, change: Option<(String, String)>) {
    let Some((old, new)) = change else {
        return;
    };
    let Some(mut edit) = TextEditState::load(ctx, id) else {
        return;
    };
    let Some(range) = edit.cursor.char_range() else {
        return;
    };
    let (primary, secondary) =
        map_selection(&old, &new, (range.primary.index.0, range.secondary.index.0));
    edit.cursor.set_char_range(Some(CCursorRange {
        primary: CCursor::new(primary),
        secondary: CCursor::new(secondary),
        h_pos: None,
    }));
    edit.store(ctx, id);
}
