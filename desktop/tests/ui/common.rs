//! Driving the real app headless: a kittest harness per app, frames stepped
//! until the backend has answered, with short sleeps so its tasks can run.

use std::path::Path;
use std::time::{Duration, Instant};

use eframe::egui::{self, text::CCursor, text::CCursorRange, text_edit::TextEditState};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use weft_core::Config;
use weft_core::NetConfig;
use weft_desktop::DesktopApp;
use weft_desktop::state::AppState;

pub type App = Harness<'static, DesktopApp>;

pub const SHORT: Duration = Duration::from_secs(20);
/// Sync over loopback on a loaded 2-core machine can be slow.
pub const SYNC: Duration = Duration::from_secs(60);

pub fn app(dir: &Path, online: bool) -> App {
    let mut config = Config::with_data_dir(dir);
    if online {
        config.network = Some(NetConfig::local());
    }
    Harness::builder()
        .with_size(egui::Vec2::new(1100.0, 720.0))
        .build_eframe(move |cc| DesktopApp::new(&cc.egui_ctx, config).expect("start the backend"))
}

pub fn state(app: &App) -> &AppState {
    &app.state().state
}

/// Steps every app until `done` holds for them, or panics naming `what`.
pub fn until(
    apps: &mut [&mut App],
    what: &str,
    timeout: Duration,
    done: impl Fn(&[&mut App]) -> bool,
) {
    let start = Instant::now();
    loop {
        for app in apps.iter_mut() {
            app.step();
        }
        if done(apps) {
            return;
        }
        if start.elapsed() > timeout {
            let notices: Vec<_> = apps.iter().map(|a| state(a).notice.clone()).collect();
            panic!("timed out after {timeout:?} waiting for {what}; notices: {notices:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_ready(app: &mut App) {
    until(&mut [app], "the replica to open", SHORT, |a| {
        state(a[0]).node_id.is_some() && state(a[0]).space.is_some()
    });
}

/// Clicks a widget by its label (a button, or a field labelled by it), then
/// runs a second frame to show what the click changed.
pub fn click(app: &mut App, label: &str) {
    app.get_by_label(label).click();
    app.step();
    app.step();
}

/// Focuses the field labelled `label` and types `text` at its cursor.
pub fn type_into(app: &mut App, label: &str, text: &str) {
    click(app, label);
    app.get_by_label(label).type_text(text);
    app.step();
}

/// The text of the field labelled `label`, as screen readers see it.
pub fn field_value(app: &App, label: &str) -> Option<String> {
    app.query_by_label(label).and_then(|n| n.value())
}

pub fn body_id(note: &str) -> egui::Id {
    egui::Id::new(("note_body", note))
}

/// The char index of a text field's cursor.
pub fn cursor(app: &App, id: egui::Id) -> Option<usize> {
    let state = TextEditState::load(&app.ctx, id)?;
    Some(state.cursor.char_range()?.primary.index.0)
}

/// Puts a text field's cursor at char `index`, as a click there would.
pub fn set_cursor(app: &mut App, id: egui::Id, index: usize) {
    let mut state = TextEditState::load(&app.ctx, id).unwrap_or_default();
    state
        .cursor
        .set_char_range(Some(CCursorRange::one(CCursor::new(index))));
    state.store(&app.ctx, id);
    app.step();
}
