//! Where the backend's data lives: this app's own `Node` (embedded), or a
//! running daemon's local API (attached). Both answer the same few calls the
//! UI needs and feed the same `Feed` of changes, so the backend loop does
//! not care which one it runs over.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use weft_core::{
    ChangeInfo, DocKey, FeedError, Node, Origin, PeerStatus, Query, Role, SpaceInfo, SpaceState,
    SubscribeFilter,
};

use super::attached::Attached;
use crate::msg::{NOTES, NetSummary};

/// Errors as the status line shows them.
pub type Res<T> = Result<T, String>;

/// Invites issued from the app last a week, like the CLI's default.
pub const INVITE_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// Documents one collection view lists (the first ids in order).
pub const DOC_LIST_LIMIT: u32 = 1000;

/// A change to one document, from either source.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub space: String,
    pub collection: String,
    pub id: String,
    pub deleted: bool,
    /// Made elsewhere (a peer, or another client of the daemon), so an open
    /// editor must reload it; false for this app's own writes.
    pub foreign: bool,
}

/// What the backend loop hears from its source besides command answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Feed {
    Change(Changed),
    /// Something changed that events do not name (lag, sync progress, a
    /// reconnect): reload the lists.
    Reload,
    /// Attached: the daemon answers (`None`) or not (`Some(why)`).
    Link(Option<String>),
    /// Attached: the daemon was found again, at this API address.
    Moved(String),
}

#[derive(Clone)]
pub enum Source {
    Embedded(Node),
    Attached(Attached),
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn key(space: &str, collection: &str, id: &str) -> Res<DocKey> {
    DocKey::new(space, collection, id).map_err(text)
}

impl Source {
    /// Forwards the node's change feed and sync progress into `tx` until
    /// the node closes; the attached source runs its own stream task.
    pub fn spawn_feed(&self, tx: mpsc::UnboundedSender<Feed>) {
        match self {
            Source::Embedded(node) => {
                let mut feed = node.subscribe(SubscribeFilter::default());
                let mut progress = node.sync_progress();
                tokio::spawn(async move {
                    loop {
                        let item = tokio::select! {
                            event = feed.recv() => match event {
                                Ok(e) => Feed::Change(Changed {
                                    space: e.key.space().to_owned(),
                                    collection: e.key.collection().to_owned(),
                                    id: e.key.id().to_owned(),
                                    deleted: e.deleted,
                                    foreign: e.origin == Origin::Remote,
                                }),
                                Err(FeedError::Lagged(n)) => {
                                    tracing::debug!(dropped = n, "change feed lagged; reloading lists");
                                    Feed::Reload
                                }
                                Err(FeedError::Closed) => break,
                            },
                            // Membership can change with sync (a join being
                            // admitted); the loop folds these like changes.
                            changed = progress.changed() => match changed {
                                Ok(()) => Feed::Reload,
                                Err(_) => break,
                            },
                        };
                        if tx.send(item).is_err() {
                            break;
                        }
                    }
                });
            }
            Source::Attached(a) => a.spawn_feed(tx),
        }
    }

    pub async fn space_list(&self) -> Res<Vec<SpaceInfo>> {
        match self {
            Source::Embedded(n) => n.space_list().await.map_err(text),
            Source::Attached(a) => a.space_list().await,
        }
    }

    pub async fn space_create(&self, name: &str) -> Res<String> {
        match self {
            Source::Embedded(n) => n
                .space_create(name)
                .await
                .map(|id| id.to_string())
                .map_err(text),
            Source::Attached(a) => a.space_create(name).await,
        }
    }

    /// A writer invite token for `space`.
    pub async fn invite(&self, space: &str) -> Res<String> {
        match self {
            Source::Embedded(n) => n
                .space_invite(space, Role::Writer, INVITE_EXPIRY, None)
                .await
                .map(|i| i.token)
                .map_err(text),
            Source::Attached(a) => a.invite(space).await,
        }
    }

    /// Joins without waiting for the inviter; answers the space id.
    pub async fn join(&self, token: &str) -> Res<String> {
        match self {
            Source::Embedded(n) => n
                .space_join(token)
                .await
                .map(|id| id.to_string())
                .map_err(text),
            Source::Attached(a) => a.join(token).await,
        }
    }

    /// Waits up to `wait` for the inviter's answer to a join.
    pub async fn wait_admission(&self, space: &str, wait: Duration) -> Res<SpaceState> {
        match self {
            Source::Embedded(n) => n.wait_admission(space, wait).await.map_err(text),
            Source::Attached(a) => a.wait_admission(space, wait).await,
        }
    }

    /// Dials a peer; answers its node id.
    pub async fn connect(&self, addr: &str) -> Res<String> {
        match self {
            Source::Embedded(n) => n.connect(addr).await.map(|id| id.to_string()).map_err(text),
            Source::Attached(a) => a.connect(addr).await,
        }
    }

    /// The notes of a space, newest edit first, as (id, document).
    pub async fn notes(&self, space: &str) -> Res<Vec<(String, Value)>> {
        match self {
            Source::Embedded(n) => {
                let query = Query::new(NOTES).space(space).order_by("updated", true);
                let rows = n.query(&query).await.map_err(text)?;
                Ok(rows.into_iter().map(|r| (r.id, r.json)).collect())
            }
            Source::Attached(a) => a.notes(space).await,
        }
    }

    pub async fn get(&self, space: &str, collection: &str, id: &str) -> Res<Option<Value>> {
        match self {
            Source::Embedded(n) => n.get(&key(space, collection, id)?).await.map_err(text),
            Source::Attached(a) => a.get(space, collection, id).await,
        }
    }

    pub async fn put(&self, space: &str, collection: &str, id: &str, doc: Value) -> Res<()> {
        match self {
            Source::Embedded(n) => n
                .put(&key(space, collection, id)?, doc)
                .await
                .map(drop)
                .map_err(text),
            Source::Attached(a) => a.put(space, collection, id, doc).await,
        }
    }

    pub async fn collections(&self, space: &str) -> Res<Vec<String>> {
        match self {
            Source::Embedded(n) => n.collections(space).await.map_err(text),
            Source::Attached(a) => a.collections(space).await,
        }
    }

    /// The first `DOC_LIST_LIMIT` document ids of a collection.
    pub async fn list_ids(&self, space: &str, collection: &str) -> Res<Vec<String>> {
        match self {
            Source::Embedded(n) => n
                .list_ids(space, collection, None, DOC_LIST_LIMIT)
                .await
                .map(|page| page.items)
                .map_err(text),
            Source::Attached(a) => a.list_ids(space, collection).await,
        }
    }

    pub async fn history(&self, space: &str, collection: &str, id: &str) -> Res<Vec<ChangeInfo>> {
        match self {
            Source::Embedded(n) => n.history(&key(space, collection, id)?).await.map_err(text),
            Source::Attached(a) => a.history(space, collection, id).await,
        }
    }

    /// The peers and a summary of networking and sync.
    pub async fn net(&self) -> Res<(Vec<PeerStatus>, NetSummary)> {
        match self {
            Source::Embedded(n) => {
                let peers = n.peers().await.map_err(text)?;
                let status = n.status().await.map_err(text)?;
                let summary = NetSummary {
                    online: status.online,
                    peers_connected: status.peers_connected,
                    pending: status.pending,
                    documents: status.documents,
                    listen_addrs: n.listen_addrs().await,
                };
                Ok((peers, summary))
            }
            Source::Attached(a) => a.net().await,
        }
    }

    /// Closes an embedded node (stores pending writes, releases its lock);
    /// the daemon's replica is the daemon's to close.
    pub async fn close(&self) {
        if let Source::Embedded(node) = self
            && let Err(e) = node.close().await
        {
            tracing::warn!(error = %e, "closing the replica");
        }
    }
}
