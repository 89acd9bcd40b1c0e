//! The `node` layer: [`Node`], the facade every front end uses.
//!
//! A `Node` is a cheap handle. Writes, history and time travel go to the
//! writer actor (the single owner of documents in memory and of the write
//! connection); point reads, queries and SQL go straight to the read pool,
//! with hot documents served from an in-memory cache.

mod cache;
mod catalog;
mod conditional;
mod docs;
mod events;
mod external;
mod maintenance;
mod observe;
mod replication;
mod space_ref;
mod spaces;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::ChangeHash;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use catalog::{Invitation, MAX_PAGE, Page};
pub use conditional::Versioned;
pub use docs::{Precondition, Write, WriteOutcome};
pub use events::{ChangeEvent, ChangePage, FeedError, Origin, SubscribeFilter, Subscription};

/// Writes one [`Node::batch`] may hold: its rows are staged in memory and
/// committed in one transaction.
pub const MAX_BATCH: usize = 10_000;
pub use external::{ExternalReply, ExternalSync};
pub use maintenance::BackupInfo;
pub use observe::{OBSERVE_COALESCE, Observation};
pub use replication::SyncProgress;
pub use space_ref::{DEFAULT_SPACE_WORD, SpaceRef};
pub use spaces::{SpaceInfo, SpaceState};

use crate::auth::{Role, SpaceId};
use crate::config::Config;
use crate::doc::{ChangeInfo, as_object};
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::key::{DocKey, check_name};
use crate::net::{Net, NetStats};
use crate::store::{self, ProcessLock, Query, QueryRow, Reader};
use crate::sync::Engine;
use cache::JsonCache;
use spaces::{InviteRequest, SpaceCommand, Spaces, SpacesView};
use writer::{Actor, Command};

/// Commands queued for the writer before callers wait.
const WRITER_QUEUE: usize = 4096;

/// A local replica. Clone it freely; all clones share one replica.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    data_dir: PathBuf,
    default_space: String,
    writer: mpsc::Sender<Command>,
    reader: Reader,
    json: Arc<JsonCache>,
    events: broadcast::Sender<ChangeEvent>,
    /// The running network, `None` while offline or paused; the writer
    /// actor publishes it whenever it starts or stops networking.
    net: watch::Receiver<Option<Net>>,
    /// Whether the node was opened with networking (so it can be resumed).
    networked: bool,
    progress: watch::Receiver<SyncProgress>,
    /// The spaces this node is in, published by the writer actor after
    /// every change (also how joins wait for their admission).
    spaces: watch::Receiver<Arc<SpacesView>>,
    /// Live queries, started with the first [`Node::observe`].
    observers: std::sync::OnceLock<Arc<observe::Hub>>,
    /// Makes commits of document writes fail (tests of recovery only).
    #[cfg(any(test, feature = "fault-injection"))]
    commit_faults: store::CommitFaults,
}

/// A peer and how far sync with it has come.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerStatus {
    /// Its node id.
    pub id: NodeId,
    /// Addresses it was seen at.
    pub addrs: Vec<String>,
    /// Whether a connection is up now.
    pub connected: bool,
    /// When it was last connected (unix milliseconds).
    pub last_seen_ms: Option<i64>,
    /// Documents still being exchanged with it, per space (connected peers).
    pub pending: BTreeMap<String, usize>,
}

/// A summary of the node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// This node.
    pub node_id: NodeId,
    /// Live documents stored.
    pub documents: u64,
    /// Connected peers.
    pub peers_connected: usize,
    /// Documents still being exchanged, summed over peers and spaces.
    pub pending: usize,
    /// Whether networking is running (neither off nor paused).
    pub online: bool,
    /// Sync traffic so far.
    pub net: NetStats,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.inner.node_id)
            .field("data_dir", &self.inner.data_dir)
            .finish()
    }
}

impl Node {
    /// Opens (creating on first use) the replica in the configured data dir.
    /// Fails with [`Error::Locked`] if another process has it open.
    pub async fn open(config: Config) -> Result<Node> {
        let data_dir = config.resolve_data_dir()?;
        // The replica holds the device key and private documents: a new data
        // dir is for its owner only.
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(&data_dir)
            .map_err(|source| store::StoreError::Io {
                path: data_dir.clone(),
                source,
            })?;
        let lock = ProcessLock::acquire(&data_dir)?;
        let identity = Identity::load_or_create(&data_dir)?;
        let node_id = identity.node_id();
        let (mut store_writer, reader) = store::open(&data_dir).await?;
        store_writer.set_sync_state_max_age(config.sync_state_max_age);
        match store_writer.prune_sync_states(docs::now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(dropped = n, "pruned stale sync states"),
            Err(e) => tracing::warn!(error = %e, "pruning sync states failed"),
        }
        let joined = store_writer.joined_spaces()?;
        #[cfg(any(test, feature = "fault-injection"))]
        let commit_faults = store_writer.commit_faults();
        let spaces: Vec<String> = joined.iter().map(|s| s.id.clone()).collect();
        let default = joined.iter().find(|s| s.is_default).map(|s| s.id.clone());
        let net = match &config.network {
            Some(net_config) => Some(
                crate::net::spawn(identity.signing_key().to_bytes(), net_config.clone())
                    .map_err(|e| Error::Network(e.to_string()))?,
            ),
            None => None,
        };
        let (net_tx, net_rx) = watch::channel(net.as_ref().map(|(n, _)| n.clone()));
        let (progress_tx, progress) = watch::channel(SyncProgress::default());
        let (spaces_tx, spaces_rx) = watch::channel(Arc::new(SpacesView::new()));
        let sync = replication::SyncHost::new(
            Engine::new(identity.signing_key().clone(), spaces),
            net,
            config.network.clone(),
            net_tx,
            progress_tx,
        );
        let mut incarnation = [0u8; 8];
        getrandom::fill(&mut incarnation)
            .map_err(|e| crate::identity::IdentityError::Random(e.to_string()))?;
        let json = Arc::new(JsonCache::new(config.json_cache_size));
        let (events, _) = broadcast::channel(events::FEED_CAPACITY);
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let docs = docs::Docs::new(
            store_writer,
            config.doc_cache_size,
            json.clone(),
            events.clone(),
            crate::doc::actor_for(node_id, incarnation),
            config.compact_after_chunks,
        );
        let spaces = Spaces::new(joined, identity.signing_key().clone(), spaces_tx);
        let actor = Actor::new(rx, docs, sync, spaces, lock);
        tokio::spawn(actor.run());
        // A device starts with one personal space, its default.
        let default_space = match default {
            Some(id) => id,
            None => {
                let (reply, rx) = oneshot::channel();
                tx.send(Command::Space(SpaceCommand::Create {
                    name: "personal".into(),
                    default: true,
                    reply,
                }))
                .await
                .map_err(|_| Error::Closed)?;
                rx.await.map_err(|_| Error::Closed)??.to_string()
            }
        };
        tracing::info!(node_id = %node_id, data_dir = %data_dir.display(), "replica open");
        Ok(Node {
            inner: Arc::new(Inner {
                node_id,
                data_dir,
                default_space,
                writer: tx,
                reader,
                json,
                events,
                net: net_rx,
                networked: config.network.is_some(),
                progress,
                spaces: spaces_rx,
                observers: std::sync::OnceLock::new(),
                #[cfg(any(test, feature = "fault-injection"))]
                commit_faults,
            }),
        })
    }

    /// This device's node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Where the replica lives.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The space used when none is named.
    pub fn default_space(&self) -> &str {
        &self.inner.default_space
    }

    /// A key in the default space.
    pub fn key(&self, collection: &str, id: &str) -> Result<DocKey> {
        DocKey::new(self.default_space(), collection, id)
    }

    async fn call<T>(&self, make: impl FnOnce(writer::Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Replaces a document with a JSON object (creating it if needed). Only
    /// fields that differ are recorded, so concurrent edits to other fields,
    /// or to other parts of a string, merge. Returns the new heads.
    pub async fn put(&self, key: &DocKey, json: Value) -> Result<Vec<String>> {
        self.write_one(Write::Put(key.clone(), json)).await
    }

    /// Applies an RFC 7396 merge patch to an existing document.
    pub async fn patch(&self, key: &DocKey, patch: Value) -> Result<Vec<String>> {
        self.write_one(Write::Patch(key.clone(), patch)).await
    }

    /// Deletes a document: a tombstone that syncs. See the `doc` module for
    /// the rule against concurrent updates.
    pub async fn delete(&self, key: &DocKey) -> Result<Vec<String>> {
        self.write_one(Write::Delete(key.clone())).await
    }

    /// Applies many writes in one transaction: all are stored or none.
    /// Returns the heads after each write. A failure is an [`Error::Batch`]
    /// naming the operation ([`Error::batch_index`]); at most [`MAX_BATCH`]
    /// writes.
    pub async fn batch(&self, writes: Vec<Write>) -> Result<Vec<Vec<String>>> {
        let writes = writes.into_iter().map(|w| (w, Precondition::Any)).collect();
        let outcomes = self.batch_if(writes).await?;
        Ok(outcomes.into_iter().map(|o| o.heads).collect())
    }

    async fn write_one(&self, write: Write) -> Result<Vec<String>> {
        match self.batch(vec![write]).await {
            Ok(mut heads) => Ok(heads.remove(0)),
            Err(e) => Err(e.single()),
        }
    }

    /// The document's JSON, or `None` if absent or deleted.
    pub async fn get(&self, key: &DocKey) -> Result<Option<Value>> {
        let epoch = match self.inner.json.get(key) {
            Ok(hit) => return Ok(hit.map(|v| Value::clone(&v))),
            Err(epoch) => epoch,
        };
        let text = self.inner.reader.get(key)?;
        let value: Option<Value> =
            text.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| Error::Corrupt {
                    key: key.to_string(),
                    reason: format!("stored JSON does not parse: {e}"),
                })?;
        self.inner
            .json
            .fill(key.clone(), value.clone().map(Arc::new), epoch);
        Ok(value)
    }

    /// The document as it was at `heads` (from [`Node::history`] or a
    /// change event); `None` if it was deleted then.
    pub async fn get_at(&self, key: &DocKey, heads: &[String]) -> Result<Option<Value>> {
        let parsed = heads
            .iter()
            .map(|h| h.parse::<ChangeHash>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::UnknownHeads(key.to_string()))?;
        self.call(|reply| Command::GetAt {
            key: key.clone(),
            heads: parsed,
            reply,
        })
        .await
    }

    /// Every change of a document, oldest first.
    pub async fn history(&self, key: &DocKey) -> Result<Vec<ChangeInfo>> {
        self.call(|reply| Command::History {
            key: key.clone(),
            reply,
        })
        .await
    }

    /// Runs a structured query (in the default space unless it names one).
    pub async fn query(&self, query: &Query) -> Result<Vec<QueryRow>> {
        let space = query.space.as_deref().unwrap_or(self.default_space());
        check_name("space", space)?;
        check_name("collection", &query.collection)?;
        if let Some(after) = &query.after {
            crate::key::check_id(after)?;
        }
        Ok(self.inner.reader.query(query, space).await?)
    }

    /// Runs one read-only SQL statement (SELECT, WITH, VALUES or EXPLAIN of
    /// one). The `documents` view has one row per live document: `space`,
    /// `collection`, `id`, `json`, `updated_at`. Pragmas, `ATTACH` and
    /// writes fail with [`Error::Sql`]; a statement running longer than
    /// [`store::SQL_TIMEOUT`] fails with [`Error::Timeout`]; dropping the
    /// future stops the statement.
    pub async fn sql(&self, statement: &str) -> Result<Vec<Map<String, Value>>> {
        Ok(self.inner.reader.sql(statement, store::SQL_TIMEOUT).await?)
    }

    /// [`Node::sql`] with a shorter deadline (longer ones are cut to
    /// [`store::SQL_TIMEOUT`]).
    pub async fn sql_with_timeout(
        &self,
        statement: &str,
        timeout: std::time::Duration,
    ) -> Result<Vec<Map<String, Value>>> {
        Ok(self.inner.reader.sql(statement, timeout).await?)
    }

    /// Indexes a JSON field (dotted path) so queries filtering or sorting on
    /// it use an index. Idempotent.
    pub async fn create_index(&self, field: &str) -> Result<()> {
        let literal = store::path_literal(field)?;
        let name = index_name(field);
        self.call(|reply| Command::CreateIndex {
            field: field.to_owned(),
            literal,
            name,
            reply,
        })
        .await
    }

    /// A live feed of committed changes matching `filter`.
    pub fn subscribe(&self, filter: SubscribeFilter) -> Subscription {
        Subscription::new(self.inner.events.subscribe(), filter)
    }

    /// Runs SQLite's integrity check on the replica.
    pub async fn check_integrity(&self) -> Result<()> {
        let problems = self.integrity_problems().await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(store::StoreError::Damaged(problems.join("; ")).into())
        }
    }

    /// Dials a peer (a multiaddr ending in `/p2p/<node id>`); resolves once
    /// connected. Sync starts by itself.
    pub async fn connect(&self, addr: &str) -> Result<NodeId> {
        // An empty multiaddr parses; it is still the caller's mistake.
        if addr.trim().is_empty() {
            return Err(Error::InvalidInput(
                "an empty address: give a multiaddr such as /ip4/192.0.2.1/tcp/4001/p2p/<node id>"
                    .into(),
            ));
        }
        let net = self.net()?;
        let addr: crate::net::Multiaddr = addr
            .parse()
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "address {addr:?} is not a multiaddr ({e}); expected e.g. /ip4/192.0.2.1/tcp/4001/p2p/<node id>"
                ))
            })?;
        net.connect(addr).await.map_err(|e| match e {
            crate::net::NetError::InvalidAddress(_) => Error::InvalidInput(e.to_string()),
            e => Error::Network(e.to_string()),
        })
    }

    /// Addresses peers can dial, each ending in `/p2p/<node id>`.
    pub async fn listen_addrs(&self) -> Vec<String> {
        match self.current_net() {
            Some(net) => net
                .listen_addrs()
                .await
                .iter()
                .map(ToString::to_string)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Known peers with their sync progress.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>> {
        self.call(Command::Peers).await
    }

    /// Documents, peers, pending work and traffic.
    pub async fn status(&self) -> Result<Status> {
        let peers = self.peers().await?;
        let documents = self.inner.reader.count(None, None).await?;
        let current = self.current_net();
        let net = match &current {
            Some(net) => net.stats().await,
            None => NetStats::default(),
        };
        Ok(Status {
            node_id: self.node_id(),
            documents,
            peers_connected: peers.iter().filter(|p| p.connected).count(),
            pending: peers.iter().flat_map(|p| p.pending.values()).sum(),
            online: current.is_some(),
            net,
        })
    }

    /// Sync progress, updated as it changes (for progress displays).
    pub fn sync_progress(&self) -> watch::Receiver<SyncProgress> {
        self.inner.progress.clone()
    }

    /// Resolves once every session with a connected peer has reconciled and
    /// has nothing left to exchange, or fails with [`Error::Timeout`].
    pub async fn wait_synced(&self, timeout: std::time::Duration) -> Result<SyncProgress> {
        let mut rx = self.sync_progress();
        let wait = rx.wait_for(|p| p.idle);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(p)) => Ok(*p),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    fn current_net(&self) -> Option<Net> {
        self.inner.net.borrow().clone()
    }

    fn net(&self) -> Result<Net> {
        self.current_net().ok_or_else(|| {
            Error::Network(if self.inner.networked {
                "networking is paused: call `resume_network` first".into()
            } else {
                "networking is off: open the node with `Config::network` set".into()
            })
        })
    }

    /// Stops networking (for an app going to the background): every
    /// connection closes and nothing listens or dials until
    /// [`Node::resume_network`]. Local reads and writes go on. Idempotent.
    pub async fn pause_network(&self) -> Result<()> {
        self.call(Command::PauseNetwork).await
    }

    /// Starts networking again with the configuration the node was opened
    /// with (listen addresses are bound afresh, so ports `0` change) and
    /// redials the peers that were connected at the pause. Idempotent; fails
    /// with [`Error::Network`] on a node opened without networking.
    pub async fn resume_network(&self) -> Result<()> {
        self.call(Command::ResumeNetwork).await
    }

    /// Creates a space (a new ed25519 keypair; its public key is the id) with
    /// this node as its admin.
    pub async fn space_create(&self, name: &str) -> Result<SpaceId> {
        if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(Error::InvalidInput(format!(
                "space name {name:?} must be 1 to 128 bytes without control characters"
            )));
        }
        if name == DEFAULT_SPACE_WORD {
            return Err(Error::InvalidInput(format!(
                "the space name `{DEFAULT_SPACE_WORD}` is reserved: it means this device's default space"
            )));
        }
        self.call(|reply| {
            Command::Space(SpaceCommand::Create {
                name: name.to_owned(),
                default: false,
                reply,
            })
        })
        .await
    }

    /// Spaces this device is in, with roles and members.
    pub async fn space_list(&self) -> Result<Vec<SpaceInfo>> {
        let now = docs::now_ms() / 1000;
        let view = self.inner.spaces.borrow().clone();
        Ok(view.iter().map(|s| s.at(now)).collect())
    }

    /// The id of a joined space (see [`SpaceRef`] for how text names one).
    pub async fn resolve_space(&self, space: impl Into<SpaceRef>) -> Result<String> {
        let name = match space.into() {
            SpaceRef::Default => return Ok(self.default_space().to_owned()),
            SpaceRef::Id(id) => {
                let id = id.to_string();
                let spaces = self.space_list().await?;
                return match spaces.iter().any(|s| s.id == id) {
                    true => Ok(id),
                    false => Err(Error::UnknownSpace(id)),
                };
            }
            SpaceRef::Name(name) => name,
        };
        let spaces = self.space_list().await?;
        let named: Vec<_> = spaces.iter().filter(|s| s.name == name).collect();
        match named.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(Error::UnknownSpace(name)),
            _ => Err(Error::UnknownSpace(format!(
                "{name} (several spaces have this name: use the id)"
            ))),
        }
    }

    /// An invite for `space`, granting `role` until `expires_in` from now,
    /// optionally only to `node`. Needs the admin role.
    pub async fn space_invite(
        &self,
        space: impl Into<SpaceRef>,
        role: Role,
        expires_in: std::time::Duration,
        node: Option<NodeId>,
    ) -> Result<Invitation> {
        let space = self.resolve_space(space).await?;
        let request = InviteRequest {
            expires: (docs::now_ms() / 1000)
                .saturating_add(i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX)),
            addrs: self.listen_addrs().await,
            space,
            role,
            node,
        };
        self.call(|reply| Command::Space(SpaceCommand::Invite { request, reply }))
            .await
    }

    /// Joins a space with an invite token: records this node's signed
    /// membership entry citing it and, when online, dials the inviter so the
    /// space syncs. Returns the space id.
    pub async fn space_join(&self, token: impl AsRef<str>) -> Result<SpaceId> {
        let token = token.as_ref().trim().to_owned();
        let (space, addrs) = self
            .call(|reply| Command::Space(SpaceCommand::Join { token, reply }))
            .await?;
        if let Some(net) = self.current_net() {
            // Kept dialed, so a join made while the inviter is away (or a
            // connection lost before it answered) completes when it is back.
            net.keep(addrs.iter().filter_map(|a| a.parse().ok()).collect());
            for addr in &addrs {
                match self.connect(addr).await {
                    Ok(_) => break,
                    Err(e) => tracing::warn!(%addr, error = %e, "could not dial the inviter"),
                }
            }
        }
        Ok(space)
    }

    /// This node's standing in a joined space (by id or name).
    pub async fn space_state(&self, space: impl Into<SpaceRef>) -> Result<SpaceState> {
        let id = self.resolve_space(space).await?;
        self.space_list()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.state)
            .ok_or(Error::UnknownSpace(id))
    }

    /// Waits until a space this node joined admits it (a role) or refuses
    /// it (an admin or the inviter said why), up to `timeout`; returns the
    /// state then, [`SpaceState::Pending`] if neither happened in time (the
    /// inviter was not reachable, or has not answered yet).
    pub async fn wait_admission(
        &self,
        space: impl Into<SpaceRef>,
        timeout: std::time::Duration,
    ) -> Result<SpaceState> {
        let space = SpaceRef::Id(
            self.resolve_space(space)
                .await?
                .parse()
                .map_err(|_| Error::InvalidInput("a joined space's id does not parse".into()))?,
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let mut standing = self.inner.spaces.clone();
        loop {
            // Marked seen before reading, so a change during the read wakes us.
            standing.borrow_and_update();
            let state = self.space_state(&space).await?;
            if state != SpaceState::Pending {
                return Ok(state);
            }
            match tokio::time::timeout_at(deadline, standing.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => return Ok(SpaceState::Pending),
            }
        }
    }

    /// Revokes every role of `node` in `space` (default space when `None`).
    /// Needs the admin role.
    pub async fn space_revoke(&self, space: impl Into<SpaceRef>, node: NodeId) -> Result<()> {
        let space = self.resolve_space(space).await?;
        self.call(|reply| Command::Space(SpaceCommand::Revoke { space, node, reply }))
            .await
    }

    /// One Automerge sync step with a client outside Weft's protocol (an
    /// automerge-repo app): applies the client's sync `message`, if any, and
    /// returns what to send back. `sync` tracks what the client has; keep one
    /// per client and document. Changes are stored and reach Weft peers like
    /// a peer's; in a space this node may not write they are dropped.
    pub async fn external_sync(
        &self,
        key: &DocKey,
        sync: &mut ExternalSync,
        message: Option<&[u8]>,
    ) -> Result<ExternalReply> {
        let state = Box::new(std::mem::take(sync));
        let (tx, rx) = oneshot::channel();
        let command = Command::External(external::ExternalCommand {
            key: key.clone(),
            sync: state,
            message: message.map(<[u8]>::to_vec),
            reply: tx,
        });
        self.inner
            .writer
            .send(command)
            .await
            .map_err(|_| Error::Closed)?;
        let (state, result) = rx.await.map_err(|_| Error::Closed)?;
        *sync = *state;
        result
    }

    /// Makes the next commits of document writes (local or remote) fail as
    /// on a full disk: for tests that the node recovers. Only with the
    /// `fault-injection` feature.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn commit_faults(&self) -> store::CommitFaults {
        self.inner.commit_faults.clone()
    }

    /// Stores everything pending, checkpoints and releases the replica so
    /// another process may open it. Other clones stop working; running
    /// [`Node::sql`] statements are interrupted, not waited for.
    pub async fn close(&self) -> Result<()> {
        // Readers first: the checkpoint waits for open read transactions,
        // and a runaway statement would hold one until its deadline.
        self.inner.reader.close().await;
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }
}

/// What a write must satisfy before it reaches the writer actor.
pub(super) fn check_write(w: &Write) -> Result<()> {
    if w.key()
        .collection()
        .starts_with(crate::auth::SYSTEM_COLLECTION)
    {
        return Err(Error::InvalidKey(format!(
            "collection {:?} is reserved for Weft's own documents",
            w.key().collection()
        )));
    }
    if let Write::Put(_, v) | Write::Patch(_, v) = w {
        as_object(v)?;
    }
    Ok(())
}

/// A stable, SQL-safe index name for a field path.
fn index_name(field: &str) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = field.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let readable: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    format!("docs_json_{readable}_{hash:016x}")
}

#[cfg(test)]
mod tests;
