//! `weft-bench`: Weft's costs as ratios against the physical limits
//! measured in the same run (raw SQLite, in-memory Automerge), so a noisy
//! shared machine still gives comparable figures.
//!
//! `cargo run --release -p weft-tests --bin weft-bench -- [--quick]
//! [--only storage|sync|latency|cluster]` prints a table and writes
//! `bench/results.json` and an SVG per scaling curve into `bench/`.

mod baseline;
mod cluster;
mod import;
mod latency;
mod plot;
mod storage;
mod sync;
mod text;

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

/// One row of the results.
#[derive(Debug, Serialize)]
pub struct Case {
    pub name: String,
    /// Weft's figure over the baseline's: lower is better.
    pub ratio: f64,
    /// The ratio this case must not exceed; `None` where it only reports.
    pub target: Option<f64>,
    pub unit: String,
    pub details: Value,
}

impl Case {
    fn verdict(&self) -> &'static str {
        match self.target {
            Some(t) if self.ratio <= t => "meets",
            Some(_) => "MISSES",
            None => "report",
        }
    }
}

/// Sizes of a run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub single_writes: usize,
    pub batches: usize,
    pub docs: usize,
    pub gets: usize,
    pub queries: usize,
    pub rounds: usize,
    /// Initial sync sizes, and the one the target applies to.
    pub initial_sizes: &'static [usize],
    pub initial_target_n: usize,
    /// Reconnect (and memory) sizes; the first is the baseline.
    pub reconnect_sizes: &'static [usize],
    /// Documents changed before a reconnect.
    pub changed: usize,
    pub latency_samples: usize,
    /// Writes per node during the partition.
    pub cluster_writes: usize,
}

impl Scale {
    fn quick() -> Self {
        Self {
            single_writes: 300,
            batches: 3,
            docs: 20_000,
            gets: 20_000,
            queries: 200,
            rounds: 3,
            initial_sizes: &[1_000, 10_000],
            initial_target_n: 10_000,
            reconnect_sizes: &[1_000, 10_000],
            changed: 10,
            latency_samples: 200,
            cluster_writes: 200,
        }
    }

    fn full() -> Self {
        Self {
            single_writes: 2_000,
            batches: 10,
            docs: 100_000,
            gets: 100_000,
            queries: 1_000,
            rounds: 5,
            initial_sizes: &[1_000, 10_000, 100_000],
            initial_target_n: 10_000,
            reconnect_sizes: &[10_000, 100_000, 1_000_000],
            changed: 10,
            latency_samples: 1_000,
            cluster_writes: 1_000,
        }
    }
}

/// The median of `samples` (per-operation times).
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir, space] = args.as_slice()
        && flag == "--memory-child"
    {
        return sync::memory_child(std::path::Path::new(dir), space).await;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if let Some(bad) = args
        .iter()
        .enumerate()
        .find(|(i, a)| *a != "--quick" && *a != "--only" && (*i == 0 || args[i - 1] != "--only"))
    {
        anyhow::bail!(
            "unknown argument {:?}; usage: weft-bench [--quick] [--only storage|sync|latency|cluster]",
            bad.1
        );
    }
    let scale = if quick { Scale::quick() } else { Scale::full() };
    eprintln!(
        "weft-bench ({}): {scale:?}",
        if quick { "quick" } else { "full" }
    );
    let started = std::time::Instant::now();
    let wanted = |group: &str| only.as_deref().is_none_or(|o| o == group);
    let mut cases = Vec::new();
    for group in ["storage", "sync", "latency", "cluster"] {
        if !wanted(group) {
            continue;
        }
        eprintln!("{group} ({:.0?} so far)", started.elapsed());
        cases.extend(match group {
            "storage" => storage::run(scale).await?,
            "sync" => sync::run(scale).await?,
            "latency" => latency::run(scale).await?,
            _ => cluster::run(scale).await?,
        });
    }
    anyhow::ensure!(
        !cases.is_empty(),
        "--only takes one of storage, sync, latency, cluster"
    );

    println!(
        "{:<44} {:>8} {:>8}  {:<7} unit",
        "case", "ratio", "target", ""
    );
    for c in &cases {
        let target = c.target.map_or("-".to_owned(), |t| format!("{t:.2}"));
        println!(
            "{:<44} {:>8.2} {:>8}  {:<7} {}",
            c.name,
            c.ratio,
            target,
            c.verdict(),
            c.unit
        );
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench");
    std::fs::create_dir_all(&out)?;
    let results = json!({
        "quick": quick,
        "seconds": started.elapsed().as_secs_f64(),
        "cases": cases,
    });
    let path = out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    let plots = plot::write(&out, &cases)?;
    eprintln!(
        "wrote {} and {} plot(s) {plots:?} in {:.0?}",
        path.display(),
        plots.len(),
        started.elapsed()
    );
    Ok(())
}
