//! Rendering: functions from `&mut AppState` to widgets. They never wait on
//! the node; what they want done goes to `state.outbox`.

mod documents;
mod history;
mod notes;
mod peers;
mod spaces;

use eframe::egui::{self, Color32, RichText};

use crate::state::{AppState, Notice, View};

/// Draws the whole window.
pub fn show(ui: &mut egui::Ui, state: &mut AppState) {
    if let Some(text) = state.copy_request.take() {
        ui.ctx().copy_text(text);
    }
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(ui, state));
    egui::Panel::bottom("status_bar").show(ui, |ui| status_bar(ui, state));
    if let Some(message) = state.fatal.clone() {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Weft cannot start");
            ui.colored_label(ui.visuals().error_fg_color, message);
        });
        return;
    }
    egui::Panel::left("spaces_panel")
        .default_size(230.0)
        .show(ui, |ui| spaces::show(ui, state));
    egui::CentralPanel::default().show(ui, |ui| match state.view {
        View::Notes => notes::show(ui, state),
        View::Documents => documents::show(ui, state),
        View::Peers => peers::show(ui, state),
    });
    history::show(ui.ctx(), state);
}

fn top_bar(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        // The mode, as in the window title (which tests cannot see).
        match &state.mode {
            Some(mode) => ui.strong(mode.title()),
            None => ui.strong("Weft"),
        };
        ui.separator();
        for (view, label) in [
            (View::Notes, "Notes"),
            (View::Documents, "Documents"),
            (View::Peers, "Peers"),
        ] {
            if ui.selectable_label(state.view == view, label).clicked() {
                state.flush_note();
                state.view = view;
            }
        }
        ui.separator();
        online_badge(ui, state);
    });
}

/// "Online · N peers", or a red "Offline" when no peer is connected.
fn online_badge(ui: &mut egui::Ui, state: &AppState) {
    match &state.net {
        None => {
            ui.weak("starting…");
        }
        Some(net) if !net.online => {
            ui.colored_label(Color32::from_rgb(200, 60, 60), "• Offline (networking off)");
        }
        Some(net) if net.peers_connected == 0 => {
            ui.colored_label(
                Color32::from_rgb(200, 60, 60),
                "• Offline (no peer connected)",
            );
        }
        Some(net) => {
            let peers = match net.peers_connected {
                1 => "1 peer".to_owned(),
                n => format!("{n} peers"),
            };
            let sync = match net.pending {
                0 => "synced".to_owned(),
                n => format!("{n} pending"),
            };
            ui.colored_label(
                Color32::from_rgb(40, 150, 70),
                format!("• Online · {peers} · {sync}"),
            );
        }
    }
}

fn status_bar(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        if let Some(why) = &state.link_down {
            // Outranks any notice: nothing works until the daemon is back.
            ui.colored_label(ui.visuals().error_fg_color, why);
        } else {
            notice(ui, state);
        }
        if let Some(id) = &state.node_id {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.weak(format!("this device: {}", crate::state::short(id)))
                    .on_hover_text(id.as_str());
            });
        }
    });
}

fn notice(ui: &mut egui::Ui, state: &AppState) {
    {
        match &state.notice {
            Some(Notice::Error(text)) => {
                ui.colored_label(ui.visuals().error_fg_color, text);
            }
            Some(Notice::Info(text)) => {
                ui.label(text);
            }
            None => {
                ui.weak("Ready");
            }
        }
    }
}

/// A labelled single-line field, findable by its label in tests and screen
/// readers.
fn field(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.add(egui::TextEdit::singleline(text).hint_text(hint))
            .labelled_by(label.id)
    })
    .inner
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(secs: i64) -> String {
    format!("{} UTC", weft_core::format_utc(secs))
}

fn muted(text: impl Into<String>) -> RichText {
    RichText::new(text).weak()
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn times_say_they_are_utc() {
        // The date itself is core's to get right (weft_core::format_utc).
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
    }
}
