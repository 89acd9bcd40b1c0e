//! A document's history in a window: when, by whom, what kind of change.

use eframe::egui;

use super::{format_time, muted};
use crate::state::{AppState, short};

pub fn show(ctx: &egui::Context, state: &mut AppState) {
    let Some(history) = &state.history else {
        return;
    };
    let mut open = true;
    let me = state.node_id.as_deref();
    egui::Window::new(format!("History of {}/{}", history.collection, history.id))
        .id(egui::Id::new("history_window"))
        .open(&mut open)
        .default_width(460.0)
        .show(ctx, |ui| {
            ui.label(muted(format!(
                "{} changes, newest first; times are the authors' clocks.",
                history.rows.len()
            )));
            egui::ScrollArea::vertical().show(ui, |ui| {
                egui::Grid::new("history_grid")
                    .num_columns(3)
                    .striped(true)
                    .show(ui, |ui| {
                        ui.strong("When");
                        ui.strong("Author");
                        ui.strong("Change");
                        ui.end_row();
                        for row in &history.rows {
                            ui.label(format_time(row.time)).on_hover_text(&row.hash);
                            match row.author.map(|a| a.to_string()) {
                                Some(a) if Some(a.as_str()) == me => ui.label("this device"),
                                Some(a) => ui.label(short(&a)).on_hover_text(a),
                                None => ui.label(muted("unknown")),
                            };
                            ui.label(row.message.as_deref().unwrap_or("change"));
                            ui.end_row();
                        }
                    });
            });
        });
    if !open {
        state.history = None;
    }
}
