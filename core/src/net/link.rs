//! What [`super::Net`] handles share with running sessions without going
//! through the swarm task: the per-session send queue (counted in bytes, so a
//! peer that does not read cannot make the node buffer without limit) and
//! whether the peer has proven its identity to the sync layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};

use super::session::Outgoing;
use super::{SEND_HIGH_WATER, SEND_QUEUE_MAX};
use crate::identity::NodeId;

/// State one session shares with `Net` handles and its writer.
#[derive(Debug, Default)]
pub struct LinkState {
    /// Bytes (bodies plus headers) accepted by `send` and not yet written.
    queued: AtomicUsize,
    /// A `send` would have passed [`SEND_QUEUE_MAX`]: the session must end.
    overflowed: AtomicBool,
    /// The sync layer saw the peer's proof of identity.
    proven: AtomicBool,
    /// Wakes the session when any of the above changes.
    wake: Notify,
}

impl LinkState {
    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether the peer's queue is past [`SEND_HIGH_WATER`].
    pub fn congested(&self) -> bool {
        self.queued() > SEND_HIGH_WATER
    }

    /// Counts `bytes` as queued unless that would pass [`SEND_QUEUE_MAX`]; then
    /// nothing is counted, the link is marked overflowed and the session woken.
    pub fn charge(&self, bytes: usize) -> bool {
        let fits = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                q.checked_add(bytes)
                    .filter(|total| *total <= SEND_QUEUE_MAX)
            })
            .is_ok();
        if !fits {
            self.overflowed.store(true, Ordering::Release);
            self.wake.notify_one();
        }
        fits
    }

    /// `bytes` left the queue (written, or discarded with the session).
    pub fn written(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            });
        self.wake.notify_one();
    }

    /// Whether a `send` found the queue full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Marks the peer proven and wakes the session so it reads on.
    pub fn prove(&self) {
        self.proven.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether the peer proved its identity.
    pub fn proven(&self) -> bool {
        self.proven.load(Ordering::Acquire)
    }

    /// Resolves at the next change (a notification is kept if nobody waits).
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// The way into one session's writer.
#[derive(Clone, Debug)]
pub struct Link {
    /// Tells this session apart from earlier and later ones of the peer.
    pub generation: u64,
    /// Items for the writer, in order; their bytes are counted in `state`.
    pub outgoing: mpsc::UnboundedSender<Outgoing>,
    pub state: Arc<LinkState>,
}

/// The running sessions' links, by peer. Holds one entry per live session,
/// so its size is bounded by the connection limits.
#[derive(Debug, Default)]
pub struct Links(Mutex<HashMap<NodeId, Link>>);

impl Links {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Link>> {
        // Nothing panics while holding the lock; a poisoned map is still valid.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer's current link, if a session is running.
    pub fn get(&self, peer: &NodeId) -> Option<Link> {
        self.lock().get(peer).cloned()
    }

    /// Registers a new session's link, replacing the previous session's.
    pub fn insert(&self, peer: NodeId, link: Link) {
        self.lock().insert(peer, link);
    }

    /// Removes the peer's link if it still belongs to `generation`.
    pub fn remove(&self, peer: &NodeId, generation: u64) {
        let mut links = self.lock();
        if links.get(peer).is_some_and(|l| l.generation == generation) {
            links.remove(peer);
        }
    }

    /// Forgets every link (at shutdown).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_cap_and_mark_overflow() {
        let state = LinkState::default();
        assert!(state.charge(SEND_QUEUE_MAX - 10));
        assert!(!state.overflowed());
        assert!(!state.charge(11), "one byte over the cap must be refused");
        assert_eq!(
            state.queued(),
            SEND_QUEUE_MAX - 10,
            "a refused charge counts nothing"
        );
        assert!(state.overflowed());
        state.written(SEND_QUEUE_MAX);
        assert_eq!(state.queued(), 0, "never below zero");
    }

    #[test]
    fn congestion_is_past_the_high_water_mark() {
        let state = LinkState::default();
        assert!(state.charge(SEND_HIGH_WATER));
        assert!(!state.congested());
        assert!(state.charge(1));
        assert!(state.congested());
        state.written(1);
        assert!(!state.congested());
    }
}
