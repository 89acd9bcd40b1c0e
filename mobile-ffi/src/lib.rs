//! # weft-ffi
//!
//! Weft for mobile apps: a [`WeftNode`] object wrapping [`weft_core::Node`],
//! exported with UniFFI proc-macros to Kotlin, Swift and Python. Build the
//! `weft_ffi` cdylib (or staticlib for iOS) and generate bindings from it
//! with the workspace's `uniffi-bindgen` binary; see `mobile-ffi/README.md`.
//!
//! Conventions at the boundary:
//!
//! - documents cross as JSON strings, everything else as typed records;
//! - every failure is one [`WeftError`], raised as a native exception whose
//!   message says what went wrong;
//! - the node owns a small tokio runtime; operations are async exports
//!   (Kotlin `suspend`, Swift `async`, Python coroutines) that run there, so
//!   the caller's thread is never blocked and any executor can await them;
//! - change events, live query results and sync status reach foreign
//!   listeners ([`ChangeListener`], [`QueryListener`],
//!   [`SyncStatusListener`]) on threads of the node's own, never on the
//!   caller's.

mod error;
mod feed;
mod network;
mod node;
mod observe;
mod options;
mod spaces;

pub use error::WeftError;
pub use feed::{ChangeEvent, ChangeListener, Origin, Subscription};
pub use network::{NodeStatus, Peer};
pub use node::{Change, DocumentRow, Filter, FilterOp, WeftNode};
pub use observe::{QueryListener, SyncStatus, SyncStatusListener};
pub use options::NodeOptions;
pub use spaces::{Member, Role, Space};

uniffi::setup_scaffolding!();
