//! The eframe glue: each frame applies the backend's updates to the state,
//! renders it, and sends the commands the frame queued.

use std::time::Instant;

use crate::backend::{BackendHandle, Launch};
use crate::state::AppState;
use eframe::egui;

pub struct DesktopApp {
    pub state: AppState,
    backend: BackendHandle,
    /// The window title last set from the mode (set when it changes).
    title: Option<String>,
}

impl DesktopApp {
    /// Starts the backend (which attaches to the daemon or opens the node
    /// `launch` describes; a bare `Config` attaches to a daemon serving
    /// its data dir) and wires its updates to repaint `ctx`.
    pub fn new(ctx: &egui::Context, launch: impl Into<Launch>) -> std::io::Result<Self> {
        let repaint = ctx.clone();
        let backend =
            BackendHandle::start(launch.into(), Box::new(move || repaint.request_repaint()))?;
        Ok(Self {
            state: AppState::default(),
            backend,
            title: None,
        })
    }

    /// One frame.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        while let Some(update) = self.backend.try_recv() {
            self.state.apply(update);
        }
        let title = self.state.mode.as_ref().map(crate::msg::Mode::title);
        if title.is_some() && title != self.title {
            self.title.clone_from(&title);
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.unwrap_or_default()));
        }
        crate::ui::show(ui, &mut self.state);
        if let Some(wait) = self.state.tick(Instant::now()) {
            ui.ctx().request_repaint_after(wait);
        }
        if std::mem::take(&mut self.state.repaint) {
            ui.ctx().request_repaint();
        }
        for command in self.state.outbox.drain(..) {
            tracing::debug!(?command, "to backend");
            self.backend.send(command);
        }
    }
}

impl eframe::App for DesktopApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        // Store the last keystrokes; dropping the backend then closes the node.
        self.state.flush_note();
        for command in self.state.outbox.drain(..) {
            self.backend.send(command);
        }
    }
}
