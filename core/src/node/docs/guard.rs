//! Panic containment for Automerge work in the writer actor's documents. Documents hold
//! bytes from peers and clients; a bug Automerge hits on them must cost that
//! document, not the actor every `Node` call waits on. A document that
//! panicked is quarantined: refused for sync and writes (and logged) until
//! the node restarts.

use std::collections::{HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::Docs;
use crate::error::{Error, Result};
use crate::key::DocKey;

/// Documents held in quarantine at once; past it the oldest is released.
/// Releasing is safe (one that panics again is caught and quarantined
/// again), so the bound only caps memory, at the price of repeated work.
pub const MAX_QUARANTINED: usize = 1024;

/// Documents whose Automerge handling panicked.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    keys: HashSet<DocKey>,
    order: VecDeque<DocKey>,
}

impl Quarantine {
    pub(crate) fn contains(&self, key: &DocKey) -> bool {
        self.keys.contains(key)
    }

    fn insert(&mut self, key: &DocKey) {
        if !self.keys.insert(key.clone()) {
            return;
        }
        self.order.push_back(key.clone());
        while self.order.len() > MAX_QUARANTINED {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The error a quarantined document's operations get.
pub(crate) fn quarantined(key: &DocKey) -> Error {
    Error::Corrupt {
        key: key.to_string(),
        reason: "handling its data made Automerge fail, so it is quarantined until restart".into(),
    }
}

impl Docs {
    /// Runs `f`, Automerge work on `key`'s document; a panic in it
    /// quarantines the document (see [`Self::quarantine`]) and becomes an
    /// error. Refuses a document already quarantined.
    pub(crate) fn guarded<T>(&mut self, key: &DocKey, f: impl FnOnce(&mut Self) -> T) -> Result<T> {
        if self.quarantine.contains(key) {
            return Err(quarantined(key));
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            self.test_panic(key);
            f(self)
        }));
        outcome.map_err(|_| {
            self.quarantine(key);
            quarantined(key)
        })
    }

    /// Drops a document whose handling panicked from memory (it may be half
    /// changed) and refuses it from now on.
    pub(crate) fn quarantine(&mut self, key: &DocKey) {
        tracing::error!(%key, "Automerge panicked on this document; quarantined until restart");
        self.dirty.remove(key);
        self.docs.pop(key);
        self.prefetched.remove(key);
        self.dropped(key);
        self.quarantine.insert(key);
    }

    /// Tests: Automerge "panics" on this document.
    #[cfg(test)]
    pub(crate) fn test_panic(&self, key: &DocKey) {
        if self.panic_on.as_ref() == Some(key) {
            panic!("injected panic for {key}");
        }
    }
}
