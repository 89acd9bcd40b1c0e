//! The spaces panel: pick a space, create one, copy an invite, join one.

use eframe::egui;
use weft_core::{SpaceState, printable};

use super::{field, muted};
use crate::msg::Command;
use crate::state::AppState;

pub fn show(ui: &mut egui::Ui, state: &mut AppState) {
    ui.heading("Spaces");
    egui::ScrollArea::vertical()
        .id_salt("spaces_list")
        .max_height(ui.available_height() * 0.45)
        .show(ui, |ui| {
            let mut chosen = None;
            for space in &state.spaces {
                let selected = state.space.as_deref() == Some(space.id.as_str());
                let mut label = space.name.clone();
                if space.default {
                    label.push_str(" (personal)");
                }
                // Not yet (or never) a member: say so beside the name.
                let state = space.state.name();
                if matches!(space.state, SpaceState::Pending | SpaceState::Refused(_)) {
                    label.push_str(&format!(" ({state})"));
                }
                let standing = match &space.state {
                    SpaceState::Refused(reason) => format!("refused: {}", printable(reason)),
                    SpaceState::Pending => "waiting for the inviter".to_owned(),
                    SpaceState::Member(_) => state.to_owned(),
                };
                let response = ui.selectable_label(selected, label).on_hover_text(format!(
                    "{}\nyou: {standing}\nmembers: {}",
                    space.id,
                    space.members.len()
                ));
                if response.clicked() && !selected {
                    chosen = Some(space.id.clone());
                }
            }
            if let Some(id) = chosen {
                state.select_space(id);
            }
        });
    ui.separator();

    if let Some(space) = state.space.clone() {
        let name = state.space_name(&space);
        if ui
            .button("Copy invite")
            .on_hover_text(format!("Copy an invite token for {name} (writer, 7 days)"))
            .clicked()
        {
            state.send(Command::Invite(space.clone()));
        }
        if let Some((_, token)) = state.invite.as_ref().filter(|(s, _)| *s == space) {
            // A `&str` buffer makes the field selectable but read-only.
            let mut shown: &str = token;
            ui.add(egui::TextEdit::singleline(&mut shown).desired_width(f32::INFINITY))
                .on_hover_text("The invite token (already on the clipboard)");
        }
        ui.separator();
    }

    ui.label(muted("New space"));
    let create = field(ui, "Name", &mut state.new_space_name, "e.g. team");
    let enter = create.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let can_create = !state.new_space_name.trim().is_empty();
    if (ui
        .add_enabled(can_create, egui::Button::new("Create space"))
        .clicked()
        || enter)
        && can_create
    {
        let name = std::mem::take(&mut state.new_space_name);
        state.send(Command::CreateSpace(name));
    }
    ui.separator();

    ui.label(muted("Join a space"));
    field(ui, "Token", &mut state.join_token, "paste an invite token");
    let can_join = !state.join_token.trim().is_empty();
    if ui
        .add_enabled(can_join, egui::Button::new("Join"))
        .clicked()
    {
        let token = std::mem::take(&mut state.join_token);
        state.send(Command::Join(token));
    }
}
