//! What every automerge-repo connection shares: the map from document ids
//! to Weft keys, where new documents land, and the relay of ephemeral
//! messages between clients of one document.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{OnceCell, broadcast};
use weft_core::interop::automerge_id;
use weft_core::{DocKey, Node, SubscribeFilter};

/// Rows read per query while indexing existing documents.
const PAGE: u32 = 5_000;
/// Ephemeral messages buffered for slow clients before they miss some
/// (ephemeral messages are fire-and-forget by design).
const RELAY_BUFFER: usize = 256;
/// Largest ephemeral payload relayed (presence and cursors are small); with
/// the buffer this bounds what the relay can hold.
pub const MAX_EPHEMERAL: usize = 64 * 1024;
/// Connected automerge-repo clients at most.
pub const MAX_SESSIONS: usize = 256;

/// Where documents created by automerge-repo clients are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landing {
    /// A space id.
    pub space: String,
    /// A collection name.
    pub collection: String,
}

/// An ephemeral message on its way to other clients of the document.
#[derive(Clone, Debug)]
pub struct Relay {
    pub from_session: u64,
    pub sender: String,
    pub document: String,
    pub session: String,
    pub count: u64,
    pub data: Arc<Vec<u8>>,
}

pub struct Hub {
    pub node: Node,
    /// This server's automerge-repo peer id.
    pub me: String,
    landing: Landing,
    /// Automerge document id → Weft key, for documents whose id is derived
    /// from their key. Written by the indexing task, read by sessions.
    ids: RwLock<HashMap<String, DocKey>>,
    indexed: OnceCell<()>,
    pub relay: broadcast::Sender<Relay>,
    /// Highest count relayed per (sender, session): clients forward each
    /// other's ephemeral messages, so copies arrive more than once.
    seen: std::sync::Mutex<lru::LruCache<(String, String), u64>>,
    pub sessions: std::sync::atomic::AtomicUsize,
}

impl Hub {
    pub fn new(node: Node, landing: Landing) -> Arc<Hub> {
        let (relay, _) = broadcast::channel(RELAY_BUFFER);
        let hub = Arc::new(Hub {
            me: format!("weft-{}", node.node_id()),
            node,
            landing,
            ids: RwLock::new(HashMap::new()),
            indexed: OnceCell::new(),
            relay,
            seen: std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(4096).expect("non-zero"),
            )),
            sessions: std::sync::atomic::AtomicUsize::new(0),
        });
        // Index in the background, so the first client is answered at once.
        let indexing = Arc::downgrade(&hub);
        tokio::spawn(async move {
            if let Some(hub) = indexing.upgrade() {
                hub.ensure_indexed().await;
            }
        });
        // Keep the map current: every document that changes is (re)indexed.
        let weak = Arc::downgrade(&hub);
        let mut feed = hub.node.subscribe(SubscribeFilter::default());
        tokio::spawn(async move {
            loop {
                let event = feed.recv().await;
                let Some(hub) = weak.upgrade() else { break };
                match event {
                    Ok(e) => hub.remember(&e.key),
                    Err(weft_core::FeedError::Lagged(_)) => {
                        let _ = hub.reindex().await;
                    }
                    Err(weft_core::FeedError::Closed) => break,
                }
            }
        });
        hub
    }

    /// Records a document's id, unless it sits where `key_for` would look
    /// for it anyway (the landing collection under its own id).
    pub fn remember(&self, key: &DocKey) {
        let id = automerge_id(key);
        let landed = key.space() == self.landing.space
            && key.collection() == self.landing.collection
            && key.id() == id;
        if !landed {
            let mut ids = self.ids.write().expect("id map lock");
            // Two keys may carry one id (an app's document copied to two
            // collections): the smallest key wins, on every replica alike.
            let keep = ids.get(&id).is_none_or(|k| key < k);
            if keep {
                ids.insert(id, key.clone());
            }
        }
    }

    /// Whether this ephemeral message is new (not a copy already relayed).
    pub fn first_sight(&self, sender: &str, session: &str, count: u64) -> bool {
        let mut seen = self.seen.lock().expect("seen lock");
        let key = (sender.to_owned(), session.to_owned());
        match seen.get(&key) {
            Some(&last) if last >= count => false,
            _ => {
                seen.put(key, count);
                true
            }
        }
    }

    /// Indexes every stored document once; retried if it failed.
    pub async fn ensure_indexed(&self) {
        let _ = self.indexed.get_or_try_init(|| self.reindex()).await;
    }

    /// Reads all document keys, a page at a time, and records their ids.
    async fn reindex(&self) -> Result<(), weft_core::Error> {
        let mut after: Option<DocKey> = None;
        loop {
            let keys = self
                .node
                .list_keys(after.as_ref(), PAGE)
                .await
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "indexing documents for automerge-repo clients failed");
                })?;
            for key in &keys {
                self.remember(key);
            }
            match keys.into_iter().last() {
                Some(last) => after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// The Weft document an automerge-repo id names: a known document, or
    /// where a client's new document lands.
    pub fn key_for(&self, document: &str) -> Option<DocKey> {
        if let Some(key) = self.ids.read().expect("id map lock").get(document) {
            return Some(key.clone());
        }
        DocKey::new(&self.landing.space, &self.landing.collection, document).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_of_existing_and_new_documents_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(weft_core::Config::with_data_dir(dir.path()))
            .await
            .unwrap();
        let old = node.key("notes", "it's old").unwrap();
        node.put(&old, serde_json::json!({"a": 1})).await.unwrap();
        let landing = Landing {
            space: node.default_space().to_owned(),
            collection: "automerge".into(),
        };
        let hub = Hub::new(node.clone(), landing);
        hub.ensure_indexed().await;
        assert_eq!(hub.key_for(&automerge_id(&old)), Some(old));
        // A document written later is found too (through the feed).
        let new = node.key("notes", "new").unwrap();
        node.put(&new, serde_json::json!({"b": 2})).await.unwrap();
        let id = automerge_id(&new);
        for _ in 0..100 {
            if hub.key_for(&id) == Some(new.clone()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(hub.key_for(&id), Some(new));
        // An unknown id lands in the landing collection under its own name.
        let fresh = weft_core::interop::encode_automerge_id([3; 16]);
        let landed = hub.key_for(&fresh).unwrap();
        assert_eq!(
            (landed.collection(), landed.id()),
            ("automerge", fresh.as_str())
        );
        node.close().await.unwrap();
    }
}
