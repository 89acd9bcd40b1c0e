//! `weft-daemon`: the `weft` binary's library. The daemon serves a local
//! HTTP API (axum) over a [`weft_core::Node`]; the CLI ([`client`]) sends
//! its requests to that API when a daemon runs for the data dir, and to the
//! same router in process over the replica it opens otherwise
//! ([`transport`]), so both paths run the same handlers and print the same
//! shapes ([`model`]).

pub mod api;
pub mod automerge;
pub mod batch;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod duration;
pub mod error;
pub mod files;
pub mod logging;
pub mod maintenance;
pub mod model;
pub mod ops;
pub mod output;
pub mod patterns;
pub mod progress;
pub mod run;
pub mod table;
pub mod transfer;
pub mod transport;
pub mod watch;

pub use run::run;
