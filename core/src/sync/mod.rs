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

pub use engine::{Engine, Input, Needs, Output, Replica, START_WINDOW};
