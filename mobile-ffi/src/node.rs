//! [`WeftNode`]: opening and closing a replica, its runtime, and the
//! document operations. Spaces, networking and the change feed add their
//! methods in their own modules.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;
use weft_core::{DocKey, Node, Query};

use crate::error::WeftError;
use crate::options::NodeOptions;

/// Runtime threads per node: enough that a slow sync round does not hold
/// up reads, few enough for a phone.
const WORKER_THREADS: usize = 2;

/// A local replica: documents in spaces, synced with peers. Every method
/// may be called from any thread.
#[derive(uniffi::Object)]
pub struct WeftNode {
    pub(crate) node: Node,
    runtime: Handle,
    /// Taken (and shut down) by `shutdown`, or on drop.
    owned: Mutex<Option<Runtime>>,
    closed: AtomicBool,
    /// Becomes `true` on close, ending every subscription.
    pub(crate) closing: watch::Sender<bool>,
}

/// One document of a [`WeftNode::list`] result.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DocumentRow {
    /// The document id.
    pub id: String,
    /// The document, as a JSON object.
    pub json: String,
}

/// A condition of [`WeftNode::list`], like the CLI's `--where FIELD=VALUE`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Filter {
    /// A dotted path into the document (`address.city`, `tags.0`).
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// A JSON scalar: `"milk"` (with the quotes), `3`, `true` or `null`.
    pub value: String,
}

/// How a [`Filter`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum FilterOp {
    /// Equal (with `null`: absent or null).
    Eq,
    /// Not equal (with `null`: present and not null).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
}

/// One change in a document's history.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Change {
    /// The change hash (hex); usable as heads.
    pub hash: String,
    /// The node that made it, when known.
    pub author: Option<String>,
    /// Unix time in seconds, as recorded by the author.
    pub time: i64,
    /// `put`, `patch`, `delete`, or a peer's own message.
    pub message: Option<String>,
    /// Hashes of the changes it depends on.
    pub deps: Vec<String>,
}

impl WeftNode {
    /// Runs `work` on the node's runtime and waits for it without blocking
    /// the caller's executor.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, WeftError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, weft_core::Error>> + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(WeftError::closed());
        }
        match self.runtime.spawn(work).await {
            Ok(result) => result.map_err(WeftError::from),
            Err(e) if e.is_panic() => Err(WeftError::Internal(format!(
                "a Weft operation panicked: {}",
                panic_message(e.into_panic())
            ))),
            // The runtime was shut down under the call: `shutdown` won the race.
            Err(_) => Err(WeftError::closed()),
        }
    }

    /// A document address; `space` is a name or id, the default space when `None`.
    async fn key(
        &self,
        space: Option<String>,
        collection: &str,
        id: &str,
    ) -> Result<DocKey, WeftError> {
        let space = self.space_id(space).await?;
        Ok(DocKey::new(space, collection, id)?)
    }

    /// The query [`WeftNode::list`] and [`WeftNode::observe`] run.
    pub(crate) async fn query_of(
        &self,
        collection: String,
        filters: Vec<Filter>,
        order: Option<String>,
        limit: Option<u32>,
        space: Option<String>,
    ) -> Result<Query, WeftError> {
        let mut query = Query::new(collection).space(self.space_id(space).await?);
        for f in filters {
            let value = parse_json(&format!("filter value for {}", f.field), &f.value)?;
            query = query.filter(f.field, f.op.into(), value);
        }
        if let Some(order) = order {
            query = match order.strip_prefix('-') {
                Some(field) => query.order_by(field, true),
                None => query.order_by(order, false),
            };
        }
        query.limit = limit;
        Ok(query)
    }

    /// A space id from a name or id, or the default space.
    pub(crate) async fn space_id(&self, space: Option<String>) -> Result<String, WeftError> {
        let node = self.node.clone();
        self.run(async move { node.resolve_space(space).await })
            .await
    }
}

#[uniffi::export]
impl WeftNode {
    /// Opens (creating on first use) the replica in `data_dir`, usually the
    /// app's private files directory. Fails with `Locked` if another process
    /// has it open.
    #[uniffi::constructor]
    pub async fn open(data_dir: String, options: NodeOptions) -> Result<Arc<Self>, WeftError> {
        let config = options.config(&data_dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("weft")
            .enable_all()
            .build()
            .map_err(|e| WeftError::Internal(format!("cannot start the runtime: {e}")))?;
        // `Node::open`'s future is not provably `Send` (a compiler limit with
        // higher-ranked lifetimes), so it is driven on a blocking thread.
        let handle = runtime.handle().clone();
        let opening = runtime.spawn_blocking(move || handle.block_on(Node::open(config)));
        let opened = match opening.await {
            Ok(opened) => opened.map_err(WeftError::from),
            Err(e) => Err(WeftError::Internal(format!("opening failed: {e}"))),
        };
        let node = match opened {
            Ok(node) => node,
            Err(e) => {
                // Never block here: the caller may be on an async executor.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        Ok(Arc::new(WeftNode {
            node,
            runtime: runtime.handle().clone(),
            owned: Mutex::new(Some(runtime)),
            closed: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        }))
    }

    /// This device's node id (an ed25519 public key, base58).
    pub fn node_id(&self) -> String {
        self.node.node_id().to_string()
    }

    /// Replaces a document with a JSON object, creating it if needed.
    /// Returns the document's new heads.
    #[uniffi::method(default(space = None))]
    pub async fn put(
        &self,
        collection: String,
        id: String,
        json: String,
        space: Option<String>,
    ) -> Result<Vec<String>, WeftError> {
        let value = parse_json("json", &json)?;
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        self.run(async move { node.put(&key, value).await }).await
    }

    /// Applies an RFC 7396 merge patch (a JSON object; `null` removes a
    /// field) to an existing document. Returns its new heads.
    #[uniffi::method(default(space = None))]
    pub async fn patch(
        &self,
        collection: String,
        id: String,
        patch: String,
        space: Option<String>,
    ) -> Result<Vec<String>, WeftError> {
        let value = parse_json("patch", &patch)?;
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        self.run(async move { node.patch(&key, value).await }).await
    }

    /// The document as a JSON object, or nothing if absent or deleted.
    #[uniffi::method(default(space = None))]
    pub async fn get(
        &self,
        collection: String,
        id: String,
        space: Option<String>,
    ) -> Result<Option<String>, WeftError> {
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        let value = self.run(async move { node.get(&key).await }).await?;
        Ok(value.map(|v| v.to_string()))
    }

    /// Deletes a document (a tombstone that syncs). Returns its new heads.
    #[uniffi::method(default(space = None))]
    pub async fn delete(
        &self,
        collection: String,
        id: String,
        space: Option<String>,
    ) -> Result<Vec<String>, WeftError> {
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        self.run(async move { node.delete(&key).await }).await
    }

    /// Documents of a collection matching every filter, sorted by `order`
    /// (a field; prefix `-` for descending) or by id, at most `limit`.
    #[uniffi::method(default(filters = [], order = None, limit = None, space = None))]
    pub async fn list(
        &self,
        collection: String,
        filters: Vec<Filter>,
        order: Option<String>,
        limit: Option<u32>,
        space: Option<String>,
    ) -> Result<Vec<DocumentRow>, WeftError> {
        let query = self
            .query_of(collection, filters, order, limit, space)
            .await?;
        let node = self.node.clone();
        let rows = self.run(async move { node.query(&query).await }).await?;
        Ok(rows
            .into_iter()
            .map(|r| DocumentRow {
                id: r.id,
                json: r.json.to_string(),
            })
            .collect())
    }

    /// Runs one read-only SQL statement; returns the rows as a JSON array of
    /// objects. The `documents` view has `space`, `collection`, `id`, `json`
    /// and `updated_at`.
    pub async fn sql(&self, statement: String) -> Result<String, WeftError> {
        let node = self.node.clone();
        let rows = self.run(async move { node.sql(&statement).await }).await?;
        Ok(Value::Array(rows.into_iter().map(Value::Object).collect()).to_string())
    }

    /// The document's automerge-repo URL (`automerge:<id>`), the same on
    /// every replica; raises `NotFound` when the document does not exist.
    #[uniffi::method(default(space = None))]
    pub async fn url(
        &self,
        collection: String,
        id: String,
        space: Option<String>,
    ) -> Result<String, WeftError> {
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        let probe = key.clone();
        let doc = self.run(async move { node.get(&probe).await }).await?;
        if doc.is_none() {
            return Err(weft_core::Error::NotFound(key.to_string()).into());
        }
        Ok(weft_core::interop::automerge_url(&key))
    }

    /// Every change of a document, oldest first.
    #[uniffi::method(default(space = None))]
    pub async fn history(
        &self,
        collection: String,
        id: String,
        space: Option<String>,
    ) -> Result<Vec<Change>, WeftError> {
        let key = self.key(space, &collection, &id).await?;
        let node = self.node.clone();
        let changes = self.run(async move { node.history(&key).await }).await?;
        Ok(changes
            .into_iter()
            .map(|c| Change {
                hash: c.hash,
                author: c.author.map(|a| a.to_string()),
                time: c.time,
                message: c.message,
                deps: c.deps,
            })
            .collect())
    }

    /// Stores everything, stops networking, change feeds and the runtime,
    /// and releases the replica so it can be opened again. Later calls fail
    /// with `Closed`. Idempotent. (Not `close`: Kotlin objects already
    /// have `AutoCloseable.close()`, which would clash.)
    pub async fn shutdown(&self) -> Result<(), WeftError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.closing.send_replace(true);
        let node = self.node.clone();
        let result = self.runtime.spawn(async move { node.close().await }).await;
        if let Some(runtime) = self.take_runtime() {
            runtime.shutdown_background();
        }
        match result {
            Ok(r) => r.map_err(WeftError::from),
            Err(e) => Err(WeftError::Internal(format!("closing failed: {e}"))),
        }
    }
}

impl WeftNode {
    fn take_runtime(&self) -> Option<Runtime> {
        // A poisoned lock only means a panic elsewhere; the runtime is intact.
        match self.owned.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl Drop for WeftNode {
    fn drop(&mut self) {
        self.closing.send_replace(true);
        // Dropping a runtime blocks, which panics inside async code; the
        // last reference may well be released there.
        if let Some(runtime) = self.take_runtime() {
            runtime.shutdown_background();
        }
    }
}

impl From<FilterOp> for weft_core::FilterOp {
    fn from(op: FilterOp) -> Self {
        match op {
            FilterOp::Eq => Self::Eq,
            FilterOp::Ne => Self::Ne,
            FilterOp::Lt => Self::Lt,
            FilterOp::Le => Self::Le,
            FilterOp::Gt => Self::Gt,
            FilterOp::Ge => Self::Ge,
        }
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, WeftError> {
    serde_json::from_str(text)
        .map_err(|e| WeftError::invalid(format!("{what} is not valid JSON: {e}")))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
