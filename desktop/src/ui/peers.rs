//! The peers panel: connection state, this device's addresses, per-space
//! sync state and every known peer.

use eframe::egui;

use super::{field, format_time, muted};
use crate::msg::Command;
use crate::state::{AppState, short};

pub fn show(ui: &mut egui::Ui, state: &mut AppState) {
    egui::ScrollArea::vertical()
        .id_salt("peers_scroll")
        .show(ui, |ui| {
            ui.heading("This device");
            this_device(ui, state);
            ui.separator();
            ui.heading("Sync by space");
            spaces(ui, state);
            ui.separator();
            ui.heading("Peers");
            peers(ui, state);
        });
}

fn this_device(ui: &mut egui::Ui, state: &mut AppState) {
    if let Some(id) = &state.node_id {
        ui.label(format!("Node id: {id}"));
    }
    match &state.net {
        Some(net) if net.online => {
            ui.label(format!("{} documents stored; listening on:", net.documents));
            for addr in &net.listen_addrs {
                ui.horizontal(|ui| {
                    ui.monospace(addr);
                    if ui.small_button("Copy").clicked() {
                        ui.ctx().copy_text(addr.clone());
                    }
                });
            }
        }
        Some(_) => {
            ui.label("Networking is off: this device syncs with nobody.");
        }
        None => {
            ui.label(muted("Starting…"));
        }
    }
    ui.label(muted(
        "Connect to a peer, e.g. a `weft daemon` (its address is in `weft status`):",
    ));
    let response = field(
        ui,
        "Peer address",
        &mut state.connect_addr,
        "/ip4/192.0.2.1/tcp/4001/p2p/12D3Koo…",
    );
    let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let ready = !state.connect_addr.trim().is_empty();
    if (ui
        .add_enabled(ready, egui::Button::new("Connect"))
        .clicked()
        || enter)
        && ready
    {
        let addr = std::mem::take(&mut state.connect_addr);
        state.send(Command::Connect(addr));
    }
}

fn spaces(ui: &mut egui::Ui, state: &AppState) {
    let connected: Vec<_> = state.peers.iter().filter(|p| p.connected).collect();
    egui::Grid::new("space_sync")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for space in &state.spaces {
                ui.label(&space.name);
                let pending: usize = connected
                    .iter()
                    .filter_map(|p| p.pending.get(&space.id))
                    .sum();
                if connected.is_empty() {
                    ui.label(muted("offline"));
                } else if pending == 0 {
                    ui.label("synced");
                } else {
                    ui.label(format!("{pending} documents pending"));
                }
                ui.end_row();
            }
        });
}

fn peers(ui: &mut egui::Ui, state: &AppState) {
    if state.peers.is_empty() {
        ui.label(muted(
            "No peers known yet. Devices on this network are found automatically; \
             others can be connected above or by joining a space.",
        ));
        return;
    }
    egui::Grid::new("peers_grid")
        .num_columns(4)
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Peer");
            ui.strong("State");
            ui.strong("Pending");
            ui.strong("Addresses");
            ui.end_row();
            for peer in &state.peers {
                let id = peer.id.to_string();
                ui.label(short(&id)).on_hover_text(id.as_str());
                if peer.connected {
                    ui.colored_label(egui::Color32::from_rgb(40, 150, 70), "connected");
                } else {
                    let seen = peer
                        .last_seen_ms
                        .map_or("never connected".to_owned(), |ms| {
                            format!("last seen {}", format_time(ms / 1000))
                        });
                    ui.label(muted(seen));
                }
                let pending: Vec<String> = peer
                    .pending
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(space, n)| format!("{}: {n}", state.space_name(space)))
                    .collect();
                ui.label(if pending.is_empty() {
                    "synced".to_owned()
                } else {
                    pending.join(", ")
                });
                ui.vertical(|ui| {
                    for addr in &peer.addrs {
                        ui.monospace(addr);
                    }
                });
                ui.end_row();
            }
        });
}
