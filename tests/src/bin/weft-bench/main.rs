//! `weft-bench`: Weft's costs as ratios against the physical limits
//! measured in the same run (raw SQLite, in-memory Automerge), so a noisy
//! shared machine still gives comparable figures.
//!
//! `cargo run --release -p weft-tests --bin weft-bench -- [--quick]`
//! prints a table and writes `bench/results.json`.

mod baseline;
mod storage;

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
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { Scale::quick() } else { Scale::full() };
    eprintln!(
        "weft-bench ({}): {scale:?}",
        if quick { "quick" } else { "full" }
    );
    let started = std::time::Instant::now();
    let cases = storage::run(scale).await?;

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
    eprintln!("wrote {} in {:.0?}", path.display(), started.elapsed());
    Ok(())
}
