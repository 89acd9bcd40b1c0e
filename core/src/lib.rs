//! # Weft core
//!
//! A peer-to-peer edge-sync database: every device holds a full replica in
//! SQLite of Automerge CRDT documents, and replicas merge when they meet.
//! This crate is the engine every front end (daemon, mobile FFI, desktop)
//! embeds through one facade, [`Node`].
//!
//! Layers, each depending only on those below it:
//!
//! - [`node`]: the facade and the writer actor (group commit, caches, change feed);
//! - [`doc`]: JSON <-> Automerge (field-level diff, text merge, tombstones);
//! - [`store`]: SQLite via rusqlite (sqlx only runs migrations), the only module with SQL;
//! - [`auth`]: spaces, signed membership logs and invites (pure, verifiable offline);
//! - [`sync`]: the sans-IO sync protocol (wire format, reconciliation, engine);
//! - [`net`]: libp2p transports, discovery and framed `/weft/sync/1` streams (IO only);
//! - [`identity`], [`config`], [`key`]: device keys, settings, addresses.
//!
//! ```no_run
//! # async fn demo() -> weft_core::Result<()> {
//! use weft_core::{Config, Node, Query};
//! let node = Node::open(Config::default()).await?;
//! let key = node.key("notes", "first")?;
//! node.put(&key, serde_json::json!({"title": "Hello", "done": false})).await?;
//! let open = node.query(&Query::new("notes").eq("done", false)).await?;
//! assert_eq!(open[0].id, "first");
//! node.close().await
//! # }
//! ```
#![deny(missing_docs)]

pub mod auth;
pub mod config;
pub mod doc;
mod error;
pub mod identity;
pub mod interop;
pub mod key;
pub mod net;
pub mod node;
pub mod store;
pub mod sync;
pub mod warn_limit;

pub use auth::{Role, SpaceId};
pub use config::Config;
pub use doc::{ChangeInfo, DocError, MAX_DOC_BYTES, parse_object};
pub use error::{Error, ErrorKind, Result, printable};
pub use identity::NodeId;
pub use key::DocKey;
pub use node::{
    ChangeEvent, ExternalReply, ExternalSync, FeedError, Node, Origin, PeerStatus, SpaceInfo,
    SpaceState, Status, SubscribeFilter, Subscription, SyncProgress, Write,
};
pub use store::{Filter, FilterOp, Order, Query, QueryRow};
