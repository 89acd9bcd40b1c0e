//! Scaling cases on one growing replica `a`: initial sync of n documents
//! to a fresh peer (against in-memory Automerge sync), reconnect after d
//! changes (against the same reconnect at the smallest n), and the memory
//! of a process holding n documents (against the smallest n).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use weft_core::Node;

use crate::baseline::{automerge_docs, automerge_sync};
use crate::{Case, Scale};
use weft_tests::bench::{
    COLLECTION, Traffic, add_member, count, fill, join, key, open, wait_count, wait_for,
};

/// A fresh peer joined to `a`'s space, then closed: an empty replica that
/// already holds the membership, as after `weft space join`.
async fn fresh_peer(a: &Node, space: &mut Option<String>) -> anyhow::Result<TempDir> {
    let dir = tempfile::tempdir()?;
    let b = open(dir.path()).await?;
    match space {
        Some(s) => {
            add_member(a, &b, s).await?;
            b.wait_synced(Duration::from_secs(60)).await?;
            a.wait_synced(Duration::from_secs(60)).await?;
        }
        None => *space = Some(join(a, &b, "bench").await?),
    }
    b.close().await?;
    Ok(dir)
}

/// Copies `a`'s documents of `space` into the closed replica at `b`, as if
/// they had synced earlier: how the reconnect case gets a 1M-document peer
/// without an hour of initial sync.
fn seed(a: &Path, b: &Path, space: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(b.join(weft_core::internals::store::DB_FILE))?;
    conn.execute(
        "ATTACH ?1 AS src",
        [a.join(weft_core::internals::store::DB_FILE)
            .to_string_lossy()],
    )?;
    conn.execute_batch("BEGIN")?;
    conn.execute(
        "INSERT OR IGNORE INTO main.docs (space, collection, id, heads, json, deleted, updated_at, chunk_count)
         SELECT space, collection, id, heads, json, deleted, updated_at, chunk_count
         FROM src.docs WHERE space = ?1 AND collection = ?2",
        [space, COLLECTION],
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO main.chunks (doc, seq, data)
         SELECT m.doc, c.seq, c.data FROM src.docs s
         JOIN src.chunks c ON c.doc = s.doc
         JOIN main.docs m ON m.space = s.space AND m.collection = s.collection AND m.id = s.id
         WHERE s.space = ?1 AND s.collection = ?2",
        [space, COLLECTION],
    )?;
    conn.execute_batch("COMMIT")?;
    Ok(())
}

struct Initial {
    n: usize,
    weft: Duration,
    baseline: Duration,
    traffic: Traffic,
    baseline_bytes: u64,
}

async fn initial_sync(a: &Node, space: &str, dir: TempDir, n: usize) -> anyhow::Result<Initial> {
    let b = open(dir.path()).await?;
    let before = Traffic::of(a, &b).await?;
    let mut feed = b.subscribe(weft_core::SubscribeFilter::default());
    let started = Instant::now();
    b.connect(&a.listen_addrs().await[0]).await?;
    wait_count(&b, &mut feed, space, n, Duration::from_secs(3600)).await?;
    let weft = started.elapsed();
    let traffic = Traffic::of(a, &b).await?.since(before);
    b.close().await?;

    let mut docs = automerge_docs(n)?;
    let (baseline, baseline_bytes) = automerge_sync(&mut docs)?;
    eprintln!(
        "  initial sync n={n}: weft {:.2} s, in-memory Automerge {:.2} s",
        weft.as_secs_f64(),
        baseline.as_secs_f64()
    );
    Ok(Initial {
        n,
        weft,
        baseline,
        traffic,
        baseline_bytes,
    })
}

struct Reconnect {
    n: usize,
    elapsed: Duration,
    traffic: Traffic,
}

/// `b` holds `a`'s documents; `d` of them change on `a` while `b` is away;
/// then `b` reconnects.
async fn reconnect(
    a: &Node,
    space: &str,
    dir: TempDir,
    n: usize,
    d: usize,
) -> anyhow::Result<Reconnect> {
    seed(a.data_dir(), dir.path(), space)?;
    let stamp = format!("r{n}");
    let changed: Vec<usize> = (0..d).map(|i| i * (n / d.max(1))).collect();
    for &i in &changed {
        a.patch(&key(space, i)?, json!({ "stamp": stamp })).await?;
    }
    let b = open(dir.path()).await?;
    anyhow::ensure!(count(&b, space).await? as usize >= n, "seeding failed");
    let before = Traffic::of(a, &b).await?;
    let started = Instant::now();
    b.connect(&a.listen_addrs().await[0]).await?;
    let last = key(space, *changed.last().unwrap_or(&0))?;
    wait_for(&b, Duration::from_secs(600), async |b: &Node| {
        Ok(b.get(&last)
            .await?
            .is_some_and(|doc| doc["stamp"] == stamp.as_str())
            && b.status().await?.pending == 0)
    })
    .await?;
    let elapsed = started.elapsed();
    // Both ends report idle once the exchange's last frame is handled.
    b.wait_synced(Duration::from_secs(60)).await?;
    a.wait_synced(Duration::from_secs(60)).await?;
    let traffic = Traffic::of(a, &b).await?.since(before);
    for &i in &changed {
        let doc = b.get(&key(space, i)?).await?;
        anyhow::ensure!(
            doc.is_some_and(|d| d["stamp"] == stamp.as_str()),
            "change to document {i} did not arrive"
        );
    }
    b.close().await?;
    eprintln!(
        "  reconnect n={n} d={d}: {} bytes, {} reconcile frames, {:.2} s",
        traffic.bytes,
        traffic.reconcile_frames,
        elapsed.as_secs_f64()
    );
    Ok(Reconnect {
        n,
        elapsed,
        traffic,
    })
}

/// Resident memory of a separate process that opens the replica at `dir`
/// and runs a query, in KiB (see `memory_child`).
fn memory(dir: &Path, space: &str) -> anyhow::Result<Value> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--memory-child")
        .arg(dir)
        .arg(space)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "memory probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The probe itself: open with networking, query, report `/proc` figures.
pub async fn memory_child(dir: &Path, space: &str) -> anyhow::Result<()> {
    let node = open(dir).await?;
    let rows = node
        .query(
            &weft_core::Query::new(COLLECTION)
                .space(space)
                .eq("tag", "t7")
                .limit(50),
        )
        .await?;
    anyhow::ensure!(!rows.is_empty(), "the query found nothing");
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    println!(
        "{}",
        json!({
            "rss_kib": field("VmRSS:"),
            "peak_kib": field("VmHWM:"),
            "anon_kib": field("RssAnon:"),
            "file_kib": field("RssFile:"),
        })
    );
    node.close().await?;
    Ok(())
}

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Case>> {
    let dir = tempfile::tempdir()?;
    let mut a = open(&dir.path().join("a")).await?;
    let mut space = None;
    let mut sizes: Vec<usize> = scale
        .initial_sizes
        .iter()
        .chain(scale.reconnect_sizes)
        .copied()
        .collect();
    sizes.sort_unstable();
    sizes.dedup();

    // Every peer joins while the space is empty: a later join would sync
    // the documents already there.
    let mut peers = Vec::new();
    for _ in 0..scale.initial_sizes.len() + scale.reconnect_sizes.len() {
        peers.push(fresh_peer(&a, &mut space).await?);
    }
    let s = space.unwrap_or_default();

    let (mut initial, mut reconnects, mut memories) = (Vec::new(), Vec::new(), Vec::new());
    let mut have = 0;
    for n in sizes {
        eprintln!("  filling to {n} documents");
        fill(&a, &s, have, n).await?;
        have = n;
        if scale.initial_sizes.contains(&n) {
            let peer = peers.pop().ok_or_else(|| anyhow::anyhow!("no peer left"))?;
            initial.push(initial_sync(&a, &s, peer, n).await?);
        }
        if scale.reconnect_sizes.contains(&n) {
            let peer = peers.pop().ok_or_else(|| anyhow::anyhow!("no peer left"))?;
            reconnects.push(reconnect(&a, &s, peer, n, scale.changed).await?);
            a.close().await?;
            let mut m = memory(&dir.path().join("a"), &s)?;
            eprintln!("  memory n={n}: {m}");
            m["n"] = json!(n);
            memories.push(m);
            a = open(&dir.path().join("a")).await?;
        }
    }
    a.close().await?;
    Ok(vec![
        initial_case(&initial, scale.initial_target_n)?,
        reconnect_case(&reconnects, scale.changed)?,
        memory_case(&memories)?,
    ])
}

fn initial_case(rows: &[Initial], at: usize) -> anyhow::Result<Case> {
    let row = rows
        .iter()
        .find(|r| r.n == at)
        .ok_or_else(|| anyhow::anyhow!("no initial sync at n = {at}"))?;
    let ratio = |r: &Initial| r.weft.as_secs_f64() / r.baseline.as_secs_f64().max(1e-9);
    Ok(Case {
        name: format!("initial sync, {at} documents"),
        ratio: ratio(row),
        target: Some(2.0),
        unit: "time over loopback vs in-memory Automerge sync of the same documents".into(),
        details: json!({
            "series": rows.iter().map(|r| json!({
                "n": r.n,
                "weft_s": r.weft.as_secs_f64(),
                "baseline_s": r.baseline.as_secs_f64(),
                "ratio": ratio(r),
                "bytes": r.traffic.bytes,
                "frames": r.traffic.frames,
                "baseline_bytes": r.baseline_bytes,
            })).collect::<Vec<_>>(),
        }),
    })
}

fn reconnect_case(rows: &[Reconnect], d: usize) -> anyhow::Result<Case> {
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => anyhow::bail!("no reconnect measured"),
    };
    let round_trips = |r: &Reconnect| r.traffic.reconcile_frames.div_ceil(2);
    Ok(Case {
        name: format!("reconnect, d = {d}, n = {} vs {}", last.n, first.n),
        ratio: last.traffic.bytes as f64 / first.traffic.bytes.max(1) as f64,
        target: Some(1.2),
        unit: "bytes on the wire at the largest n over the smallest".into(),
        details: json!({
            "series": rows.iter().map(|r| json!({
                "n": r.n,
                "bytes": r.traffic.bytes,
                "frames": r.traffic.frames,
                "reconcile_bytes": r.traffic.reconcile_bytes,
                "reconcile_frames": r.traffic.reconcile_frames,
                "round_trips": round_trips(r),
                "seconds": r.elapsed.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "round_trips_ratio": round_trips(last) as f64 / round_trips(first).max(1) as f64,
        }),
    })
}

fn memory_case(rows: &[Value]) -> anyhow::Result<Case> {
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => anyhow::bail!("no memory measured"),
    };
    let rss = |v: &Value| v["rss_kib"].as_f64().unwrap_or(0.0);
    Ok(Case {
        name: format!(
            "memory after open + query, {} vs {} documents",
            last["n"], first["n"]
        ),
        ratio: rss(last) / rss(first).max(1.0),
        target: Some(1.5),
        unit: "resident set (VmRSS) at the largest n over the smallest".into(),
        details: json!({ "series": rows }),
    })
}
