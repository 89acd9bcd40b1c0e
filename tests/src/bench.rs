//! Shared by the benchmark binaries (`weft-bench`, `weft-syncbench`): nodes
//! on loopback, pairing two nodes in one space, filling a node with
//! documents and waiting for convergence.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Map, Value, json};
use weft_core::internals::net::{NetConfig, NetStats};
use weft_core::{Config, DocKey, Node, Role, SubscribeFilter, Write};

/// A document like the ones people keep: a title, a 200-character body, a
/// tag shared by 1% of documents, a number and a flag.
pub fn document(i: usize) -> Map<String, Value> {
    let body: String = (0..200)
        .map(|k| char::from(b'a' + ((i * 7 + k) % 26) as u8))
        .collect();
    match json!({
        "title": format!("note {i}"),
        "body": body,
        "tag": format!("t{}", i % 100),
        "n": i,
        "done": i.is_multiple_of(2),
    }) {
        Value::Object(m) => m,
        _ => unreachable!("a literal object"),
    }
}

/// The collection every sync case writes.
pub const COLLECTION: &str = "notes";

pub async fn open(dir: &Path) -> anyhow::Result<Node> {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(NetConfig::local());
    Ok(Node::open(config).await?)
}

pub fn key(space: &str, i: usize) -> anyhow::Result<DocKey> {
    Ok(DocKey::new(space, COLLECTION, format!("n{i:07}"))?)
}

/// `a` invites `b` into `space` as a writer and `b` joins (dialling `a`).
pub async fn add_member(a: &Node, b: &Node, space: &str) -> anyhow::Result<()> {
    let token = a
        .space_invite(
            Some(space),
            Role::Writer,
            Duration::from_secs(3600),
            Some(b.node_id()),
        )
        .await?;
    b.space_join(&token).await?;
    Ok(())
}

/// `a` creates a space and `b` joins it (membership synced both ways);
/// returns the space id with both nodes still open and connected.
pub async fn join(a: &Node, b: &Node, name: &str) -> anyhow::Result<String> {
    let space = a.space_create(name).await?.to_string();
    add_member(a, b, &space).await?;
    wait_for(b, Duration::from_secs(60), async |b: &Node| {
        Ok(b.space_list()
            .await?
            .iter()
            .any(|s| s.id == space && s.role.is_some()))
    })
    .await?;
    // The join is recorded in the membership document, which `a` must hold
    // before it accepts `b`'s writes.
    a.wait_synced(Duration::from_secs(60)).await?;
    b.wait_synced(Duration::from_secs(60)).await?;
    Ok(space)
}

/// Writes documents `from..to` into `space`, 1,000 per transaction.
pub async fn fill(node: &Node, space: &str, from: usize, to: usize) -> anyhow::Result<()> {
    let mut first = from;
    while first < to {
        let last = (first + 1000).min(to);
        let writes = (first..last)
            .map(|i| Ok(Write::Put(key(space, i)?, Value::Object(document(i)))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        node.batch(writes).await?;
        first = last;
    }
    Ok(())
}

/// Waits (on change events, or a quiet 100 ms) until `done` holds.
pub async fn wait_for(
    node: &Node,
    limit: Duration,
    done: impl AsyncFn(&Node) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut feed = node.subscribe(SubscribeFilter::default());
    let deadline = Instant::now() + limit;
    while !done(node).await? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no convergence within {limit:?}; peers: {:?}",
                node.peers().await?
            );
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), feed.recv()).await;
    }
    Ok(())
}

/// Waits until `node` holds `n` documents of the bench collection,
/// counting change events rather than querying on each (a count per event
/// would cost the node more than the sync being measured). `feed` must be
/// subscribed before the sync starts.
pub async fn wait_count(
    node: &Node,
    feed: &mut weft_core::Subscription,
    space: &str,
    n: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut seen = std::collections::HashSet::new();
    loop {
        if seen.len() >= n && count(node, space).await? as usize >= n {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(
            !left.is_zero(),
            "no convergence within {limit:?}: {} of {n} documents",
            count(node, space).await?
        );
        match tokio::time::timeout(left.min(Duration::from_secs(1)), feed.recv()).await {
            Ok(Ok(e)) => {
                if e.key.space() == space && e.key.collection() == COLLECTION {
                    seen.insert(e.key.id().to_owned());
                }
            }
            // Missed events (lagged) or a quiet second: ask the store.
            Ok(Err(_)) | Err(_) => {
                if count(node, space).await? as usize >= n {
                    return Ok(());
                }
            }
        }
    }
}

pub async fn count(node: &Node, space: &str) -> anyhow::Result<u64> {
    let rows = node
        .sql(&format!(
            "SELECT count(*) AS n FROM documents WHERE space = '{space}' AND collection = '{COLLECTION}'"
        ))
        .await?;
    Ok(rows[0]["n"].as_u64().unwrap_or(0))
}

/// Frames and bytes both nodes sent, and reconciliation frames and bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub frames: u64,
    pub bytes: u64,
    pub reconcile_frames: u64,
    pub reconcile_bytes: u64,
}

impl Traffic {
    pub async fn of(a: &Node, b: &Node) -> anyhow::Result<Self> {
        let (na, nb): (NetStats, NetStats) = (a.status().await?.net, b.status().await?.net);
        let (pa, pb) = (*a.sync_progress().borrow(), *b.sync_progress().borrow());
        Ok(Self {
            frames: na.frames_sent + nb.frames_sent,
            bytes: na.bytes_sent + nb.bytes_sent,
            reconcile_frames: pa.reconcile_frames + pb.reconcile_frames,
            reconcile_bytes: pa.reconcile_bytes + pb.reconcile_bytes,
        })
    }

    pub fn since(self, before: Self) -> Self {
        Self {
            frames: self.frames - before.frames,
            bytes: self.bytes - before.bytes,
            reconcile_frames: self.reconcile_frames - before.reconcile_frames,
            reconcile_bytes: self.reconcile_bytes - before.reconcile_bytes,
        }
    }
}
