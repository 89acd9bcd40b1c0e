//! Five nodes in one space, partitioned: each writes on its own (new
//! documents, plus edits to documents all of them share), then the
//! network heals and the time until every replica is identical is reported.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_core::{Node, SubscribeFilter};

use crate::{Case, Scale};
use weft_tests::bench::{COLLECTION, add_member, count, key, open, wait_for};

/// Documents every node edits during the partition.
const SHARED: usize = 50;

/// Every live document of the space, as one string: equal on two replicas
/// exactly when they converged.
async fn digest(node: &Node, space: &str) -> anyhow::Result<String> {
    let rows = node
        .sql(&format!(
            "SELECT group_concat(id || '=' || json, ';') AS d FROM \
             (SELECT id, json FROM documents WHERE space = '{space}' AND collection = '{COLLECTION}' ORDER BY id)"
        ))
        .await?;
    Ok(rows[0]["d"].as_str().unwrap_or_default().to_owned())
}

/// Each node's first listen address, once every node has one.
async fn listen_addrs(nodes: &[Node]) -> anyhow::Result<Vec<String>> {
    for _ in 0..500 {
        let addrs: Vec<String> = futures::future::join_all(nodes.iter().map(|n| n.listen_addrs()))
            .await
            .into_iter()
            .filter_map(|a| a.into_iter().next())
            .collect();
        if addrs.len() == nodes.len() {
            return Ok(addrs);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("a node is not listening after 5 s")
}

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Case>> {
    let dir = tempfile::tempdir()?;
    let mut nodes = Vec::new();
    for i in 0..5 {
        nodes.push(open(&dir.path().join(format!("n{i}"))).await?);
    }
    let space = nodes[0].space_create("cluster").await?.to_string();
    for n in &nodes[1..] {
        add_member(&nodes[0], n, &space).await?;
    }
    eprintln!("  4 nodes joined");
    // A full mesh, so healing does not wait on discovery.
    let addrs = listen_addrs(&nodes).await?;
    for (i, n) in nodes.iter().enumerate() {
        for addr in &addrs[i + 1..] {
            n.connect(addr).await?;
        }
    }
    for i in 0..SHARED {
        nodes[0]
            .put(&key(&space, 1_000_000 + i)?, json!({ "shared": i }))
            .await?;
    }
    for n in &nodes {
        wait_for(n, Duration::from_secs(120), async |n: &Node| {
            Ok(count(n, &space).await? as usize >= SHARED && n.status().await?.pending == 0)
        })
        .await?;
    }

    eprintln!("  shared documents everywhere; partitioning");
    for n in &nodes {
        n.pause_network().await?;
    }
    let own = scale.cluster_writes - SHARED;
    for (w, n) in nodes.iter().enumerate() {
        for i in 0..own {
            let k = key(&space, w * 100_000 + i)?;
            n.put(&k, json!({ "writer": w, "i": i, "text": format!("written by {w} during the partition") }))
                .await?;
        }
        for i in 0..SHARED {
            n.patch(
                &key(&space, 1_000_000 + i)?,
                json!({ format!("by{w}"): i, "last": w }),
            )
            .await?;
        }
    }

    eprintln!("  healing");
    let expected = 5 * own + SHARED;
    let started = Instant::now();
    for n in &nodes {
        n.resume_network().await?;
    }
    // Resumed nodes listen on new ports; with mDNS off (loopback), the
    // mesh is dialled again as discovery would.
    let addrs = listen_addrs(&nodes).await?;
    for (i, n) in nodes.iter().enumerate() {
        for addr in &addrs[i + 1..] {
            n.connect(addr).await?;
        }
    }
    for n in &nodes {
        wait_for(n, Duration::from_secs(600), async |n: &Node| {
            Ok(count(n, &space).await? as usize >= expected)
        })
        .await?;
    }
    // Counts match; what may still differ are merges of shared documents.
    let mut feeds: Vec<_> = nodes
        .iter()
        .map(|n| n.subscribe(SubscribeFilter::default()))
        .collect();
    let reference = loop {
        let first = digest(&nodes[0], &space).await?;
        let mut same = true;
        for n in &nodes[1..] {
            same &= digest(n, &space).await? == first;
        }
        if same {
            break first;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "replicas still differ after 600 s"
        );
        // Look again after the next change anywhere (or a quiet second).
        let next = futures::future::select_all(feeds.iter_mut().map(|f| Box::pin(f.recv())));
        let _ = tokio::time::timeout(Duration::from_secs(1), next).await;
    };
    let converged = started.elapsed();
    let shared: Value = nodes[0]
        .get(&key(&space, 1_000_000)?)
        .await?
        .unwrap_or_default();
    anyhow::ensure!(
        (0..5).all(|w| shared.get(format!("by{w}")).is_some()),
        "a shared document lost a partition's edit: {shared}"
    );
    eprintln!(
        "  5 nodes converged in {:.2} s ({} bytes of documents each)",
        converged.as_secs_f64(),
        reference.len()
    );
    for n in &nodes {
        n.close().await?;
    }
    Ok(vec![Case {
        name: format!(
            "5 nodes, {} writes each while partitioned, then heal",
            scale.cluster_writes
        ),
        ratio: converged.as_secs_f64(),
        target: None,
        unit: "seconds to converge (reported; no baseline)".into(),
        details: json!({
            "nodes": 5,
            "writes_per_node": scale.cluster_writes,
            "shared_documents": SHARED,
            "documents_after": expected,
            "seconds": converged.as_secs_f64(),
        }),
    }])
}
