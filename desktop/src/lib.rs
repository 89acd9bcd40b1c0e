//! `weft-desktop`: an egui app on a Weft replica: a running daemon's
//! (attached, through its local API) or its own (embedded). Layers:
//! `backend` (the task owning the data source), `msg` (what crosses between
//! the two), `state` (UI state as plain data), `ui` (rendering), `app`
//! (eframe glue) and `text_merge` (cursor-preserving merges of
//! collaborative text).

pub mod app;
pub mod backend;
pub mod msg;
pub mod state;
pub mod text_merge;
pub mod ui;

pub use app::DesktopApp;
