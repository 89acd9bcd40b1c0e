//! Live queries and sync status across the boundary: foreign listeners fed
//! by threads of their own, as the change feed's are (see `feed`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::WeftError;
use crate::feed::{Subscription, raised};
use crate::node::{DocumentRow, Filter, WeftNode};

/// How often at most a [`SyncStatusListener`] hears of progress: pending
/// counts change per document during a large sync.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);

/// Implemented by the app to receive a live query's results. Called from a
/// thread Weft owns, one call at a time.
#[uniffi::export(foreign)]
pub trait QueryListener: Send + Sync {
    /// The query's whole result, in query order: first at once, then after
    /// every change that alters it.
    fn on_result(&self, rows: Vec<DocumentRow>);
    /// The query could no longer be run (the replica failed); no more
    /// results follow.
    fn on_error(&self, message: String);
}

/// Where sync stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// Peers this node has a sync session with.
    pub peers: u64,
    /// Documents still being exchanged, over all peers and spaces.
    pub pending: u64,
    /// Every session has nothing left to exchange (also true with no peers).
    pub synced: bool,
}

/// Implemented by the app to follow sync without polling.
#[uniffi::export(foreign)]
pub trait SyncStatusListener: Send + Sync {
    /// Sync status changed (at most every 100 ms; the last change always
    /// arrives).
    fn on_status(&self, status: SyncStatus);
}

#[uniffi::export]
impl WeftNode {
    /// Observes the query [`WeftNode::list`] would run: `listener` gets its
    /// result at once and again whenever a change (local or from a peer)
    /// alters it. Changes to other collections never re-run it; a lone
    /// change is answered at once, a burst with at most one result per
    /// 20 ms.
    #[uniffi::method(default(order = None, limit = None, space = None))]
    pub async fn observe(
        &self,
        collection: String,
        filters: Vec<Filter>,
        listener: Arc<dyn QueryListener>,
        order: Option<String>,
        limit: Option<u32>,
        space: Option<String>,
    ) -> Result<Arc<Subscription>, WeftError> {
        let query = self
            .query_of(collection, filters, order, limit, space)
            .await?;
        let mut closing = self.closing.subscribe();
        if *closing.borrow_and_update() {
            return Err(WeftError::closed());
        }
        let node = self.node.clone();
        let mut observation = self.run(async move { node.observe(query).await }).await?;
        let (cancel, mut cancelled) = watch::channel(false);
        spawn("weft-observer", move || {
            loop {
                let next = futures::executor::block_on(async {
                    tokio::select! {
                        biased;
                        _ = raised(&mut cancelled) => None,
                        _ = raised(&mut closing) => None,
                        next = observation.next() => next,
                    }
                });
                let call = match next {
                    None => return,
                    Some(Ok(rows)) => {
                        let rows = rows
                            .into_iter()
                            .map(|r| DocumentRow {
                                id: r.id,
                                json: r.json.to_string(),
                            })
                            .collect();
                        catch_unwind(AssertUnwindSafe(|| listener.on_result(rows)))
                    }
                    Some(Err(e)) => {
                        let _ = catch_unwind(AssertUnwindSafe(|| listener.on_error(e.to_string())));
                        return;
                    }
                };
                if call.is_err() {
                    tracing::warn!("a query listener failed; it keeps receiving results");
                }
            }
        })?;
        Ok(Arc::new(Subscription::new(cancel)))
    }

    /// Calls `listener` with the sync status now and whenever it changes.
    pub fn observe_sync_status(
        &self,
        listener: Arc<dyn SyncStatusListener>,
    ) -> Result<Arc<Subscription>, WeftError> {
        let mut closing = self.closing.subscribe();
        if *closing.borrow_and_update() {
            return Err(WeftError::closed());
        }
        let mut progress = self.node.sync_progress();
        let (cancel, mut cancelled) = watch::channel(false);
        spawn("weft-sync-status", move || {
            let mut last = None;
            loop {
                let status = {
                    let p = progress.borrow_and_update();
                    SyncStatus {
                        peers: p.peers as u64,
                        pending: p.pending as u64,
                        synced: p.idle,
                    }
                };
                // Progress also counts frames; only what the app sees matters.
                if last != Some(status) {
                    last = Some(status);
                    if catch_unwind(AssertUnwindSafe(|| listener.on_status(status))).is_err() {
                        tracing::warn!("a sync status listener failed; it keeps receiving");
                    }
                }
                let go_on = futures::executor::block_on(async {
                    tokio::select! {
                        biased;
                        _ = raised(&mut cancelled) => false,
                        _ = raised(&mut closing) => false,
                        changed = progress.changed() => changed.is_ok(),
                    }
                });
                if !go_on {
                    return;
                }
                std::thread::sleep(STATUS_INTERVAL);
            }
        })?;
        Ok(Arc::new(Subscription::new(cancel)))
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), WeftError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(|_| ())
        .map_err(|e| WeftError::Internal(format!("cannot start a listener thread: {e}")))
}
