//! The app driven through its real UI with egui_kittest (headless, no GPU).
//! One test binary for all of them: each links the whole app and its node.

mod common;
mod documents;
mod modes;
mod notes;
mod sync;
