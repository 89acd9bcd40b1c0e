//! Scale check for the replica: stores N documents, then reports write and
//! read costs and resident memory, to show memory stays bounded by the caches
//! rather than growing with the number of documents stored.
//!
//! `cargo run --release -p weft-core --example scale -- [N] [DIR]`
//! (N defaults to 100000; DIR to a fresh temporary directory).

use std::time::{Duration, Instant};

use serde_json::json;
use weft_core::{Config, Node, Query, Write};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn doc(i: usize) -> serde_json::Value {
    json!({
        "title": format!("Note number {i}"),
        "done": i.is_multiple_of(7),
        "tags": ["weft", format!("t{}", i % 100)],
        "body": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco.",
    })
}

fn per(d: Duration, n: usize) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6 / n as f64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(2)
        .map_or(tmp.path().to_path_buf(), Into::into);
    println!("documents: {n}, dir: {}", dir.display());

    let node = Node::open(Config::with_data_dir(&dir)).await?;
    let stored = node.sql("SELECT count(*) AS n FROM documents").await?[0]["n"]
        .as_u64()
        .unwrap_or(0);
    if stored as usize >= n {
        // A second run on the same DIR measures a fresh process against a
        // replica that is already full (no memory left over from filling it).
        println!("replica already holds {stored} documents; skipping the insert");
        println!("rss after open (full): {:.1} MiB", rss_mib());
    } else {
        fill(&node, n).await?;
    }
    node.close().await?;
    measure(&dir, n).await
}

async fn fill(node: &Node, n: usize) -> anyhow::Result<()> {
    println!("rss after open (empty): {:.1} MiB", rss_mib());
    let start = Instant::now();
    for first in (0..n).step_by(1000) {
        let writes = (first..(first + 1000).min(n))
            .map(|i| Ok(Write::Put(node.key("notes", &format!("n{i:07}"))?, doc(i))))
            .collect::<weft_core::Result<Vec<_>>>()?;
        node.batch(writes).await?;
        if first % 20_000 == 0 {
            eprintln!("  stored {first}/{n}");
        }
    }
    let t = start.elapsed();
    println!(
        "batched insert (1000 per transaction): {} per document, {:.1} s total",
        per(t, n),
        t.as_secs_f64()
    );
    println!("rss after insert: {:.1} MiB", rss_mib());
    Ok(())
}

async fn measure(dir: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let node = Node::open(Config::with_data_dir(dir)).await?;
    println!("rss after reopen: {:.1} MiB", rss_mib());
    let start = Instant::now();
    let rows = node
        .query(&Query::new("notes").eq("tags.1", "t42").limit(50))
        .await?;
    println!(
        "query on a JSON field, no index: {} rows in {:.1} ms",
        rows.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    node.create_index("tags.1").await?;
    let start = Instant::now();
    let rows = node
        .query(&Query::new("notes").eq("tags.1", "t42").limit(50))
        .await?;
    println!(
        "same query with an expression index: {} rows in {:.2} ms",
        rows.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    println!("rss after query: {:.1} MiB", rss_mib());

    let reads = 20_000.min(n);
    let start = Instant::now();
    for i in 0..reads {
        let key = node.key("notes", &format!("n{:07}", (i * 7919) % n))?;
        node.get(&key).await?;
    }
    println!("get, cold (from SQLite): {}", per(start.elapsed(), reads));
    let hot = 1000.min(n);
    for i in 0..hot {
        node.get(&node.key("notes", &format!("n{i:07}"))?).await?;
    }
    let start = Instant::now();
    for round in 0..10 {
        for i in 0..hot {
            let _ = round;
            node.get(&node.key("notes", &format!("n{i:07}"))?).await?;
        }
    }
    println!("get, hot (cached): {}", per(start.elapsed(), hot * 10));

    let writes = 2000.min(n);
    let start = Instant::now();
    for i in 0..writes {
        let key = node.key("notes", &format!("n{:07}", (i * 104_729) % n))?;
        node.patch(&key, json!({"done": true, "edited": i})).await?;
    }
    println!(
        "patch, one transaction each, sequential: {}",
        per(start.elapsed(), writes)
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let node = node.clone();
        tasks.spawn(async move {
            for i in 0..writes / 16 {
                let key = node.key("notes", &format!("n{:07}", (t * 1000 + i * 31) % n))?;
                node.patch(&key, json!({"concurrent": i})).await?;
            }
            weft_core::Result::<()>::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!(
        "patch, 16 concurrent writers (group commit): {}",
        per(start.elapsed(), writes / 16 * 16)
    );
    println!("rss after reads and writes: {:.1} MiB", rss_mib());
    node.close().await?;
    Ok(())
}
