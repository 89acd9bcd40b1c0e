//! The change feed across the boundary: a foreign [`ChangeListener`] is fed
//! by a thread of its own, so a slow listener holds up neither the caller
//! nor the node's runtime.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::watch;
use weft_core::{FeedError, SubscribeFilter};

use crate::error::WeftError;
use crate::node::WeftNode;

/// A committed change to one document, local or from a peer.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ChangeEvent {
    /// The space id.
    pub space: String,
    /// The collection.
    pub collection: String,
    /// The document id.
    pub id: String,
    /// The document's heads after the change.
    pub heads: Vec<String>,
    /// Whether the document is now deleted.
    pub deleted: bool,
    /// Made here or received from a peer.
    pub origin: Origin,
}

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Origin {
    /// Written through this node.
    Local,
    /// Received from a peer.
    Remote,
}

/// Implemented by the app to receive change events. Called from a thread
/// Weft owns, one call at a time per subscription, in commit order.
#[uniffi::export(foreign)]
pub trait ChangeListener: Send + Sync {
    /// A document changed.
    fn on_change(&self, event: ChangeEvent);
    /// The listener fell behind and `missed` events were dropped; re-read
    /// what it shows (for example with `list`) to catch up.
    fn on_lagged(&self, missed: u64);
}

/// A running subscription (to changes, a live query or sync status). It
/// lasts until [`Subscription::cancel`] or until the node closes; dropping
/// the handle does not end it.
#[derive(uniffi::Object)]
pub struct Subscription {
    cancel: watch::Sender<bool>,
}

impl Subscription {
    pub(crate) fn new(cancel: watch::Sender<bool>) -> Self {
        Self { cancel }
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops delivering events (one already being delivered completes).
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }
}

#[uniffi::export]
impl WeftNode {
    /// Calls `listener` for every committed change, optionally only in one
    /// space (name or id) or one collection.
    #[uniffi::method(default(space = None, collection = None))]
    pub async fn subscribe(
        &self,
        listener: Arc<dyn ChangeListener>,
        space: Option<String>,
        collection: Option<String>,
    ) -> Result<Arc<Subscription>, WeftError> {
        let space = match space {
            Some(s) => Some(self.space_id(Some(s)).await?),
            None => None,
        };
        let mut closing = self.closing.subscribe();
        if *closing.borrow_and_update() {
            return Err(WeftError::closed());
        }
        let feed = self.node.subscribe(SubscribeFilter { space, collection });
        let (cancel, cancelled) = watch::channel(false);
        std::thread::Builder::new()
            .name("weft-listener".into())
            .spawn(move || deliver(feed, listener, cancelled, closing))
            .map_err(|e| WeftError::Internal(format!("cannot start a listener thread: {e}")))?;
        Ok(Arc::new(Subscription::new(cancel)))
    }
}

/// Feeds events to the listener until cancelled, closed or the feed ends.
fn deliver(
    mut feed: weft_core::Subscription,
    listener: Arc<dyn ChangeListener>,
    mut cancelled: watch::Receiver<bool>,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        // The feed and the flags need no runtime, so this thread can wait on
        // them itself and outlive the node's runtime safely.
        let next = futures::executor::block_on(async {
            tokio::select! {
                biased;
                _ = raised(&mut cancelled) => None,
                _ = raised(&mut closing) => None,
                next = feed.recv() => Some(next),
            }
        });
        // A listener that throws must not end the subscription, nor unwind
        // into code that does not expect it.
        let delivered = match next {
            None | Some(Err(FeedError::Closed)) => return,
            Some(Ok(e)) => catch_unwind(AssertUnwindSafe(|| listener.on_change(event(e)))),
            Some(Err(FeedError::Lagged(n))) => {
                catch_unwind(AssertUnwindSafe(|| listener.on_lagged(n)))
            }
        };
        if delivered.is_err() {
            tracing::warn!("a change listener failed; it keeps receiving events");
        }
    }
}

/// Resolves once the flag is set; never if its sender is gone unset.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn event(e: weft_core::ChangeEvent) -> ChangeEvent {
    ChangeEvent {
        space: e.key.space().to_owned(),
        collection: e.key.collection().to_owned(),
        id: e.key.id().to_owned(),
        heads: e.heads,
        deleted: e.deleted,
        origin: match e.origin {
            weft_core::Origin::Local => Origin::Local,
            weft_core::Origin::Remote => Origin::Remote,
        },
    }
}
