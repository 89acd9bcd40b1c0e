//! # Weft core
//!
//! A peer-to-peer edge-sync database: every device holds a full replica in
//! SQLite of Automerge CRDT documents, and replicas merge when they meet.
//! This crate is the engine every front end (daemon, mobile FFI, desktop)
//! embeds through one facade, [`Node`].
//!
//! Front ends use [`Node`] and the value types re-exported here. The layers
//! below it (`store`: SQLite, the only SQL; `net`: libp2p, IO only; `sync`:
//! the sans-IO protocol; `doc`: Automerge; `auth`: membership and invites)
//! are private; `.ci/layers` checks which may import which. Test harnesses
//! reach them through [`internals`] with the `internals` feature.
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

// Items of the private layers that only the `internals` harnesses use are
// unused without that feature; the attribute says so for those modules only.
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod auth;
pub mod config;
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod doc;
mod error;
pub mod identity;
pub mod interop;
pub mod key;
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod net;
pub mod node;
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod store;
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod sync;
#[cfg_attr(not(feature = "internals"), allow(unused_imports, dead_code))]
mod warn_limit;

/// The layers below the facade, for test harnesses and benchmarks only
/// (the simulator, hostile peers, `weft-bench`): no stability promise.
#[cfg(feature = "internals")]
pub mod internals {
    /// Spaces, membership logs and invites.
    pub mod auth {
        pub use crate::auth::*;
    }
    /// JSON <-> Automerge.
    pub mod doc {
        pub use crate::doc::*;
    }
    /// libp2p transports and framed streams.
    pub mod net {
        pub use crate::net::*;
    }
    /// SQLite storage.
    pub mod store {
        pub use crate::store::*;
    }
    /// The sans-IO sync protocol.
    pub mod sync {
        pub use crate::sync::*;
    }
    /// Rate-limited warnings.
    pub mod warn_limit {
        pub use crate::warn_limit::*;
    }
}

pub use auth::{Role, SpaceId};
pub use config::Config;
pub use doc::{ChangeInfo, DocError, MAX_DOC_BYTES, format_utc, parse_object};
pub use error::{Error, ErrorKind, Result, printable};
pub use identity::NodeId;
pub use key::DocKey;
pub use net::{Multiaddr, NetConfig, NetStats};
pub use node::{
    BackupInfo, ChangeEvent, ChangePage, DEFAULT_SPACE_WORD, ExternalReply, ExternalSync,
    FeedError, Invitation, MAX_BATCH, MAX_PAGE, Node, OBSERVE_COALESCE, Observation, Origin, Page,
    PeerStatus, Precondition, SpaceInfo, SpaceRef, SpaceState, Status, SubscribeFilter,
    Subscription, SyncProgress, Versioned, Write, WriteOutcome,
};
pub use store::{Filter, FilterOp, Order, Query, QueryRow};
