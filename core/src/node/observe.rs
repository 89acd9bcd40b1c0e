//! Live queries: [`Node::observe`] delivers a query's result at once and
//! again whenever a committed change alters it.
//!
//! One dispatcher task reads the change feed and wakes only the observers
//! of the changed document's (space, collection); each observer re-runs its
//! query on the read pool and sends the result only if it differs. Wake-ups
//! are a one-slot channel and an observer re-runs at most once per
//! [`OBSERVE_COALESCE`], so a burst of changes costs one re-run per window,
//! not one per change, while a lone change is answered at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::Node;
use super::events::ChangeEvent;
use crate::error::{Error, Result};
use crate::store::{Query, QueryRow};

/// The least time between two runs of an observer's query: a change within
/// it of the last run waits for the window to end (gathering the rest of a
/// burst), so a new result is at most this long, plus the query's own
/// time, behind the change that caused it. A lone change runs at once.
pub const OBSERVE_COALESCE: Duration = Duration::from_millis(20);

type Wake = mpsc::Sender<()>;

/// Observers by the (space, collection) they watch.
#[derive(Default)]
pub(super) struct Hub {
    by_collection: Mutex<HashMap<(String, String), Vec<Wake>>>,
}

impl Hub {
    /// Starts the hub's dispatcher on the node's change feed.
    pub(super) fn start(events: broadcast::Receiver<ChangeEvent>) -> Arc<Hub> {
        let hub = Arc::new(Hub::default());
        tokio::spawn(dispatch(Arc::downgrade(&hub), events));
        hub
    }

    fn register(&self, space: String, collection: String) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel(1);
        let mut map = self.map();
        // Observers dropped since their collection last changed go here, so
        // the map holds no more than the live ones plus this one.
        map.retain(|_, wakes| {
            wakes.retain(|w| !w.is_closed());
            !wakes.is_empty()
        });
        map.entry((space, collection)).or_default().push(tx);
        rx
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<Wake>>> {
        // The map holds no invariant a panicking holder could break.
        self.by_collection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the observers of one collection, forgetting those gone.
    fn wake(&self, space: &str, collection: &str) {
        let mut map = self.map();
        let key = (space.to_owned(), collection.to_owned());
        if let Some(wakes) = map.get_mut(&key) {
            wakes.retain(|w| !w.is_closed());
            for w in wakes.iter() {
                // Full means a wake-up is already pending: coalesced.
                let _ = w.try_send(());
            }
            if wakes.is_empty() {
                map.remove(&key);
            }
        }
    }

    /// Wakes the observers of every collection of a space (it was left:
    /// its documents went without change events).
    pub(super) fn wake_space(&self, space: &str) {
        let map = self.map();
        for ((s, _), wakes) in map.iter() {
            if s == space {
                for w in wakes {
                    let _ = w.try_send(());
                }
            }
        }
    }

    /// Wakes every observer (the feed dropped events: any may be stale).
    fn wake_all(&self) {
        let mut map = self.map();
        map.retain(|_, wakes| {
            wakes.retain(|w| !w.is_closed());
            for w in wakes.iter() {
                let _ = w.try_send(());
            }
            !wakes.is_empty()
        });
    }

    #[cfg(test)]
    pub(super) fn observers(&self) -> usize {
        self.map().values().map(Vec::len).sum()
    }
}

async fn dispatch(hub: std::sync::Weak<Hub>, mut events: broadcast::Receiver<ChangeEvent>) {
    loop {
        let event = events.recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match event {
            Ok(e) => hub.wake(e.key.space(), e.key.collection()),
            Err(broadcast::error::RecvError::Lagged(_)) => hub.wake_all(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A live query. [`Observation::next`] returns the current result first,
/// then each new one; dropping it stops the observer.
#[derive(Debug)]
pub struct Observation {
    rx: watch::Receiver<Option<Arc<Vec<QueryRow>>>>,
    failure: Arc<Mutex<Option<Error>>>,
    /// How many times the query was re-run after a change.
    reruns: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Observation {
    /// The next result: the first call answers at once with the current
    /// one; later calls wait for a change that alters it. If results came
    /// faster than they were taken, only the latest is returned. `None`
    /// once the observer ended (the node closed); a failure to re-run the
    /// query is returned once, then `None`.
    pub async fn next(&mut self) -> Option<Result<Vec<QueryRow>>> {
        loop {
            if self.rx.changed().await.is_err() {
                let failure = self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                return failure.map(Err);
            }
            if let Some(rows) = self.rx.borrow_and_update().clone() {
                return Some(Ok(rows.as_ref().clone()));
            }
        }
    }
}

impl Observation {
    /// How many times the query was re-run after a change (whether or not
    /// its result changed): what observing costs.
    pub fn reruns(&self) -> u64 {
        self.reruns.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Node {
    /// Observes a query: its result now, and again whenever a committed
    /// change (local or from a peer) alters it, in query order. Changes to
    /// other collections never re-run it; a burst of changes is coalesced
    /// (see [`OBSERVE_COALESCE`]). An invalid query fails here, not later.
    pub async fn observe(&self, mut query: Query) -> Result<Observation> {
        let space = self.resolve_space(query.space.as_deref()).await?;
        query.space = Some(space.clone());
        let hub = self
            .inner
            .observers
            .get_or_init(|| Hub::start(self.inner.events.subscribe()))
            .clone();
        // Registered before the first query runs: a change committed after
        // that query read wakes the observer, so none is missed. (An invalid
        // query fails below; its wake sender is pruned with the dropped.)
        let mut wake = hub.register(space, query.collection.clone());
        let first = self.query(&query).await?;
        let mut last = Arc::new(first);
        let (tx, mut rx) = watch::channel(Some(last.clone()));
        rx.mark_changed();
        let failure = Arc::new(Mutex::new(None));
        let node = self.clone();
        let failed = failure.clone();
        let reruns = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = reruns.clone();
        let task = tokio::spawn(async move {
            let mut closing = node.inner.spaces.clone();
            // A lone change re-runs the query at once; further ones within
            // OBSERVE_COALESCE of a run wait for the window to end and are
            // served by one run.
            let mut quiet_until = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    woken = wake.recv() => if woken.is_none() { return },
                    () = tx.closed() => return,
                    // The writer actor's end: the node closed.
                    () = async { while closing.changed().await.is_ok() {} } => return,
                }
                tokio::time::sleep_until(quiet_until).await;
                while wake.try_recv().is_ok() {}
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let result = node.query(&query).await;
                quiet_until = tokio::time::Instant::now() + OBSERVE_COALESCE;
                match result {
                    Ok(rows) if rows == *last => {}
                    Ok(rows) => {
                        last = Arc::new(rows);
                        tx.send_replace(Some(last.clone()));
                    }
                    Err(e) => {
                        *failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        return;
                    }
                }
            }
        });
        Ok(Observation {
            rx,
            failure,
            reruns,
            task,
        })
    }
}
