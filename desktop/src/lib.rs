//! `weft-desktop`: an egui app embedding its own Weft replica. Layers:
//! `backend` (the task owning the `Node`), `msg` (what crosses between the
//! two), `state` (UI state as plain data), `ui` (rendering), `app` (eframe
//! glue) and `text_merge` (cursor-preserving merges of collaborative text).

pub mod app;
pub mod backend;
pub mod msg;
pub mod state;
pub mod text_merge;
pub mod ui;

pub use app::DesktopApp;
