//! `weft-daemon`: the `weft` binary's library. The daemon serves a local
//! HTTP API (axum) over a [`weft_core::Node`]; the CLI talks to that API when
//! a daemon runs for the data dir and opens the replica itself otherwise.
//! Both paths run the same operations ([`ops`]) and print the same shapes
//! ([`model`]).

pub mod api;
pub mod automerge;
pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod error;
pub mod files;
pub mod model;
pub mod ops;
pub mod output;
pub mod run;

pub use run::run;
