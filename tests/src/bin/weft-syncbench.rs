//! Sync figures over loopback: initial sync of N documents between two
//! nodes, then a reconnect after d of them changed. Each phase reports its
//! reconciliation frames (both ways; a round trip is two) apart from the
//! rest of the traffic, which is Automerge sync messages.
//!
//! `cargo run --release -p weft-tests --bin weft-syncbench -- [N] [d]`
//! (defaults: N = 10000, d = 10).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use weft_core::internals::net::NetStats;
use weft_core::{DocKey, Node, Write};
use weft_tests::bench::{join, open, wait_count, wait_for};

/// How long a phase may take: `WEFT_BENCH_DEADLINE` seconds, default 600.
fn deadline() -> Duration {
    Duration::from_secs(
        std::env::var("WEFT_BENCH_DEADLINE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
    )
}

/// `Reconcile` frames and bytes sent by both nodes since `before`.
fn reconcile(a: &Node, b: &Node, before: (u64, u64)) -> (u64, u64) {
    let (pa, pb) = (*a.sync_progress().borrow(), *b.sync_progress().borrow());
    (
        pa.reconcile_frames + pb.reconcile_frames - before.0,
        pa.reconcile_bytes + pb.reconcile_bytes - before.1,
    )
}

fn delta(after: NetStats, before: NetStats) -> (u64, u64) {
    (
        after.frames_sent - before.frames_sent,
        after.bytes_sent - before.bytes_sent,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(10_000), |a| a.parse()).context("N")?;
    let d: usize = args.next().map_or(Ok(10), |a| a.parse()).context("d")?;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let a = open(da.path()).await?;
    let b = open(db.path()).await?;
    // b joins a space a creates (membership syncs first), then a fills it.
    let space = join(&a, &b, "bench").await?;
    b.close().await?;
    drop(b);
    for first in (0..n).step_by(1000) {
        let writes = (first..(first + 1000).min(n))
            .map(|i| {
                Ok(Write::Put(
                    DocKey::new(&space, "notes", format!("n{i:07}"))?,
                    json!({"title": format!("Note {i}"), "done": false, "tags": ["a", "b"],
                           "body": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."}),
                ))
            })
            .collect::<weft_core::Result<Vec<_>>>()?;
        a.batch(writes).await?;
    }
    println!("documents: {n}");

    let b = open(db.path()).await?;
    let (a0, b0) = (a.status().await?.net, b.status().await?.net);
    let r0 = reconcile(&a, &b, (0, 0));
    // Counting events, not rows after each: a count per event costs the
    // node more than the sync being measured.
    let mut feed = b.subscribe(weft_core::SubscribeFilter::default());
    let start = Instant::now();
    b.connect(&a.listen_addrs().await[0]).await?;
    wait_count(&b, &mut feed, &space, n, deadline()).await?;
    let initial = start.elapsed();
    let (a1, b1) = (a.status().await?.net, b.status().await?.net);
    let (fa, ba) = delta(a1, a0);
    let (fb, bb) = delta(b1, b0);
    let (rf, rb) = reconcile(&a, &b, r0);
    println!(
        "initial sync: {:.2} s, {:.1} MB on the wire ({ba} bytes a->b in {fa} frames, {bb} bytes b->a in {fb} frames); reconciliation {rb} bytes in {rf} frames",
        initial.as_secs_f64(),
        (ba + bb) as f64 / 1e6
    );
    b.close().await?;
    drop(b);

    for i in 0..d {
        a.patch(
            &DocKey::new(&space, "notes", format!("n{:07}", i * (n / d.max(1))))?,
            json!({"done": true}),
        )
        .await?;
    }
    let b = open(db.path()).await?;
    let a0 = a.status().await?.net;
    let b0 = b.status().await?.net;
    let r0 = reconcile(&a, &b, (0, 0));
    let start = Instant::now();
    b.connect(&a.listen_addrs().await[0]).await?;
    let last = DocKey::new(&space, "notes", format!("n{:07}", (d - 1) * (n / d.max(1))))?;
    wait_for(&b, deadline(), async |b: &Node| {
        Ok(b.get(&last).await?.is_some_and(|doc| doc["done"] == true)
            && b.status().await?.pending == 0)
    })
    .await?;
    let elapsed = start.elapsed();
    // The exchange's last frame may still be on its way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rf, rb) = reconcile(&a, &b, r0);
    let (fa, ba) = delta(a.status().await?.net, a0);
    let (fb, bb) = delta(b.status().await?.net, b0);
    println!(
        "reconnect with {d} of {n} changed: {:.3} s, {} bytes ({ba} a->b in {fa} frames, {bb} b->a in {fb} frames); reconciliation {rb} bytes in {rf} frames ({} round trips)",
        elapsed.as_secs_f64(),
        ba + bb,
        rf.div_ceil(2)
    );
    a.close().await?;
    b.close().await?;
    Ok(())
}
