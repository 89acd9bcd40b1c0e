//! The `sync` layer: how replicas converge, as pure state machines.
//!
//! - [`wire`]: the versioned `/weft/sync/1` frame format;
//! - [`reconcile`]: which documents differ between two replicas of a space;
//! - [`engine`]: every peer session of a node, inputs in, effects out.
//!
//! Nothing here does IO, reads a clock or spawns a task; the node runtime and
//! the deterministic simulator (`sync::sim`, a test module) drive the same code.

pub mod engine;
pub mod reconcile;
pub mod wire;

// The seeded simulator of whole networks, beside the engine it drives.
#[cfg(test)]
mod sim;

pub use engine::{Admission, Engine, Input, Needs, Output, Replica, START_WINDOW};

use crate::identity::NodeId;

/// The peer, space and document of a received document frame (`Sync` or
/// `Doc`), which a runtime checks against the membership before the engine.
pub fn received_document(input: &Input) -> Option<(NodeId, &str, &wire::ItemKey)> {
    match input {
        Input::Received(
            peer,
            wire::Message::Sync { space, key, .. } | wire::Message::Doc { space, key, .. },
        ) => Some((*peer, space.as_str(), key)),
        _ => None,
    }
}
