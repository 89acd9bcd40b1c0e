//! Hot point reads: a bounded cache of materialized JSON shared by readers
//! and the writer. The writer updates it after each commit; a reader may fill
//! it after a miss only if no commit happened meanwhile (the epoch check), so
//! a slow reader can never put an older version back.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use serde_json::Value;

use crate::key::DocKey;

/// `None` caches "no live document".
pub(crate) type Entry = Option<Arc<Value>>;

pub(crate) struct JsonCache {
    inner: Mutex<Inner>,
}

struct Inner {
    lru: LruCache<DocKey, Entry>,
    epoch: u64,
}

impl JsonCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::new(cap),
                epoch: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain data; a panic elsewhere cannot leave it torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached entry, and the epoch to pass to [`Self::fill`] on a miss.
    pub(crate) fn get(&self, key: &DocKey) -> Result<Entry, u64> {
        let mut inner = self.lock();
        match inner.lru.get(key) {
            Some(e) => Ok(e.clone()),
            None => Err(inner.epoch),
        }
    }

    /// Caches what a reader found, unless a write committed since `epoch`.
    pub(crate) fn fill(&self, key: DocKey, entry: Entry, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.lru.put(key, entry);
        }
    }

    /// Records committed values (writer only).
    pub(crate) fn commit(&self, entries: impl IntoIterator<Item = (DocKey, Entry)>) {
        let mut inner = self.lock();
        inner.epoch += 1;
        for (key, entry) in entries {
            inner.lru.put(key, entry);
        }
    }

    /// Forgets every entry of a space (writer only: the space was left);
    /// a reader's fill that raced this is dropped by the epoch.
    pub(crate) fn forget_space(&self, space: &str) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let keys: Vec<DocKey> = inner
            .lru
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.space() == space)
            .cloned()
            .collect();
        for key in keys {
            inner.lru.pop(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> DocKey {
        DocKey::new("s", "c", id).unwrap()
    }

    #[test]
    fn a_fill_that_raced_a_commit_is_dropped() {
        let cache = JsonCache::new(4);
        let epoch = cache.get(&key("a")).unwrap_err();
        cache.commit([(key("a"), Some(Arc::new(Value::from(2))))]);
        cache.fill(key("a"), Some(Arc::new(Value::from(1))), epoch);
        assert_eq!(
            cache.get(&key("a")).unwrap().as_deref(),
            Some(&Value::from(2))
        );
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = JsonCache::new(2);
        cache.commit((0..10).map(|i| (key(&i.to_string()), None)));
        assert!(cache.get(&key("0")).is_err());
        assert!(cache.get(&key("9")).is_ok());
    }
}
