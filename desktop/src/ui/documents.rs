//! The documents view: any collection of the space, and a JSON editor that
//! validates before saving.

use eframe::egui;

use super::muted;
use crate::msg::Command;
use crate::state::AppState;

pub fn show(ui: &mut egui::Ui, state: &mut AppState) {
    egui::Panel::left("docs_list")
        .default_size(230.0)
        .show(ui, |ui| browser(ui, state));
    egui::CentralPanel::default().show(ui, |ui| editor(ui, state));
}

fn browser(ui: &mut egui::Ui, state: &mut AppState) {
    let mut chosen = None;
    let label = ui.label("Collection");
    egui::ComboBox::from_id_salt("collection_picker")
        .selected_text(state.collection.as_deref().unwrap_or("choose…"))
        .show_ui(ui, |ui| {
            for c in &state.collections {
                if ui
                    .selectable_label(state.collection.as_ref() == Some(c), c)
                    .clicked()
                {
                    chosen = Some(c.clone());
                }
            }
        })
        .response
        .labelled_by(label.id);
    if let Some(c) = chosen {
        state.select_collection(c);
    }
    if state.collections.is_empty() {
        ui.label(muted("This space has no documents yet."));
    }
    ui.separator();

    let mut open = None;
    egui::ScrollArea::vertical()
        .id_salt("docs_scroll")
        .max_height(ui.available_height() - 120.0)
        .show(ui, |ui| {
            for id in &state.doc_ids {
                let selected = state.doc.as_ref().is_some_and(|d| {
                    Some(&d.collection) == state.collection.as_ref() && &d.id == id
                });
                if ui.selectable_label(selected, id).clicked() {
                    open = Some(id.clone());
                }
            }
        });
    if let Some(id) = open {
        state.open_doc(id);
    }
    ui.separator();

    ui.label(muted("Create a document"));
    super::field(ui, "In", &mut state.new_doc_collection, "collection");
    super::field(ui, "Id", &mut state.new_doc_id, "document id");
    let ready = !state.new_doc_collection.trim().is_empty() && !state.new_doc_id.trim().is_empty();
    if ui
        .add_enabled(ready, egui::Button::new("New document"))
        .clicked()
    {
        state.new_doc();
    }
}

fn editor(ui: &mut egui::Ui, state: &mut AppState) {
    let Some(doc) = state.doc.as_mut() else {
        ui.centered_and_justified(|ui| {
            ui.label(muted("Pick a collection and a document."));
        });
        return;
    };
    let (mut save, mut history, mut reload) = (false, false, false);
    ui.horizontal(|ui| {
        ui.heading(format!("{}/{}", doc.collection, doc.id));
        if doc.is_new {
            ui.label(muted("(new, not saved)"));
        } else if doc.dirty() {
            ui.label(muted("(edited)"));
        }
    });
    ui.horizontal(|ui| {
        save = ui
            .add_enabled(!doc.saving, egui::Button::new("Save"))
            .clicked();
        history = ui
            .add_enabled(!doc.is_new, egui::Button::new("History"))
            .clicked();
        if doc.changed_remotely {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Changed on another device since you started editing.",
            );
            reload = ui.button("Reload (drops your edits)").clicked();
        }
    });
    if let Some(error) = &doc.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let label = ui.label("JSON");
    egui::ScrollArea::vertical()
        .id_salt("doc_json_scroll")
        .show(ui, |ui| {
            let response = ui
                .add(
                    egui::TextEdit::multiline(&mut doc.text)
                        .code_editor()
                        .hint_text(r#"{ "title": "…", "done": false }"#)
                        .id_salt("doc_json")
                        .desired_rows(20)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            if response.changed() {
                // The message described the text before this edit.
                doc.error = None;
            }
        });
    let (collection, id) = (doc.collection.clone(), doc.id.clone());
    if save {
        state.save_doc();
    }
    if let Some(space) = state.space.clone() {
        if history {
            state.send(Command::History {
                space: space.clone(),
                collection: collection.clone(),
                id: id.clone(),
            });
        }
        if reload {
            state.send(Command::OpenDoc {
                space,
                collection,
                id,
            });
        }
    }
}
