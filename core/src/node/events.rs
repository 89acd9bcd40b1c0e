//! The change feed: every committed change, local or remote, is published
//! once; subscribers filter by space and collection.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{MAX_PAGE, Node};
use crate::error::Result;
use crate::key::DocKey;

/// Events buffered per subscriber before it is told it lagged.
pub(crate) const FEED_CAPACITY: usize = 4096;

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Written through this node.
    Local,
    /// Received from a peer.
    Remote,
}

/// A committed change to one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The document.
    #[serde(flatten)]
    pub key: DocKey,
    /// Its heads after the change (hex change hashes).
    pub heads: Vec<String>,
    /// Whether the document is now deleted.
    pub deleted: bool,
    /// Local or remote.
    pub origin: Origin,
    /// This replica's sequence number of the change: strictly increasing
    /// in commit order, never reused (see [`Node::changes_since`]).
    pub seq: u64,
}

/// One page of [`Node::changes_since`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangePage {
    /// The latest change of each document changed after `since`, in `seq`
    /// order.
    pub events: Vec<ChangeEvent>,
    /// Pass as `since` for the next page; `None` when this was the last.
    pub next: Option<u64>,
}

/// Which events a subscription receives. The default receives all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeFilter {
    /// Only this space.
    pub space: Option<String>,
    /// Only this collection.
    pub collection: Option<String>,
}

impl SubscribeFilter {
    fn matches(&self, e: &ChangeEvent) -> bool {
        self.space.as_deref().is_none_or(|s| s == e.key.space())
            && self
                .collection
                .as_deref()
                .is_none_or(|c| c == e.key.collection())
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The subscriber fell behind and this many events were dropped; read
    /// current state again (for example with `query`) to catch up.
    #[error("subscriber fell behind: {0} change events were dropped")]
    Lagged(u64),
    /// The node was closed.
    #[error("the node is closed")]
    Closed,
}

/// A live stream of change events.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<ChangeEvent>,
    filter: SubscribeFilter,
}

impl Subscription {
    pub(crate) fn new(rx: broadcast::Receiver<ChangeEvent>, filter: SubscribeFilter) -> Self {
        Self { rx, filter }
    }

    /// The next matching event.
    pub async fn recv(&mut self) -> Result<ChangeEvent, FeedError> {
        loop {
            match self.rx.recv().await {
                Ok(e) if self.filter.matches(&e) => return Ok(e),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(FeedError::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return Err(FeedError::Closed),
            }
        }
    }
}

impl Node {
    /// The sequence number of the latest stored change (0 for none). A
    /// subscription made before this call receives every change numbered
    /// above it.
    pub async fn last_seq(&self) -> Result<u64> {
        Ok(self.inner.reader.last_seq().await?)
    }

    /// The changes stored after sequence number `since` that `filter`
    /// matches, at most `limit` (cut to [`MAX_PAGE`]), read from the store
    /// (not the actor). Only each document's latest change is kept, so a
    /// document changed several times since `since` appears once, with its
    /// current heads, deleted state and origin, under its latest `seq`.
    /// Subscribe first, then page through this and skip live events whose
    /// `seq` is not above the last one read, to resume without a gap.
    pub async fn changes_since(
        &self,
        filter: &SubscribeFilter,
        since: u64,
        limit: u32,
    ) -> Result<ChangePage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (rows, next) = self
            .inner
            .reader
            .changes_since(
                filter.space.as_deref(),
                filter.collection.as_deref(),
                since,
                limit,
            )
            .await?;
        let events = rows
            .into_iter()
            .map(|r| ChangeEvent {
                heads: super::docs::hex_heads(&r.heads),
                deleted: r.deleted,
                origin: if r.remote {
                    Origin::Remote
                } else {
                    Origin::Local
                },
                seq: r.seq,
                key: r.key,
            })
            .collect();
        Ok(ChangePage { events, next })
    }
}
