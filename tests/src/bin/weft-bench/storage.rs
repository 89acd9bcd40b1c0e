//! Local storage cases: single and batched writes, get by id, and a query
//! on a JSON field, each against raw SQLite (plus in-memory Automerge for
//! writes) doing the same work; and replacing a long text against writing it.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use weft_core::{Config, Node, Query, Write};

use crate::baseline::{RawDb, automerge_put};
use crate::{Case, Scale, median, micros};
use weft_tests::bench::document;

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Case>> {
    let dir = tempfile::tempdir()?;
    let node = Node::open(Config::with_data_dir(dir.path().join("weft"))).await?;
    let raw = RawDb::open(&dir.path().join("raw.db"))?;
    let mut cases = Vec::new();

    // Single-document writes, one transaction each, alternating rounds so
    // both see the same machine.
    let (mut weft, mut base) = (Vec::new(), Vec::new());
    let mut next = 0;
    for _ in 0..scale.rounds {
        for _ in 0..scale.single_writes / scale.rounds {
            let doc = document(next);
            let id = format!("s{next}");
            next += 1;
            let t = Instant::now();
            let change = automerge_put(&doc)?;
            raw.conn.execute_batch("BEGIN")?;
            raw.upsert(&id, &change.heads, &change.json, &change.chunk)?;
            raw.conn.execute_batch("COMMIT")?;
            base.push(t.elapsed());
            let key = node.key("c", &id)?;
            let t = Instant::now();
            node.put(&key, Value::Object(doc)).await?;
            weft.push(t.elapsed());
        }
    }
    cases.push(ratio_case(
        "single-document write (1 transaction each)",
        weft,
        base,
        1.5,
        "µs per write vs Automerge change + raw SQLite upsert",
    ));

    // Batched writes: 1,000 per transaction.
    let (mut weft, mut base) = (Vec::new(), Vec::new());
    for b in 0..scale.batches {
        let docs: Vec<(String, Map<String, Value>)> = (0..1000)
            .map(|i| (format!("b{b}-{i}"), document(b * 1000 + i)))
            .collect();
        let t = Instant::now();
        let changes = docs
            .iter()
            .map(|(_, d)| automerge_put(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        raw.conn.execute_batch("BEGIN")?;
        for ((id, _), c) in docs.iter().zip(&changes) {
            raw.upsert(id, &c.heads, &c.json, &c.chunk)?;
        }
        raw.conn.execute_batch("COMMIT")?;
        base.push(t.elapsed() / 1000);
        let writes = docs
            .into_iter()
            .map(|(id, d)| Ok(Write::Put(node.key("c", &id)?, Value::Object(d))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let t = Instant::now();
        node.batch(writes).await?;
        weft.push(t.elapsed() / 1000);
    }
    cases.push(ratio_case(
        "batched writes (1,000 per transaction)",
        weft,
        base,
        1.5,
        "µs per write vs the same, batched",
    ));

    // Fill both to `docs` documents for reads.
    let have = next + scale.batches * 1000;
    let mut i = 0;
    while i < scale.docs.saturating_sub(have) {
        let n = 1000.min(scale.docs - have - i);
        let docs: Vec<(String, Map<String, Value>)> = (0..n)
            .map(|k| (format!("f{}", i + k), document(i + k)))
            .collect();
        raw.conn.execute_batch("BEGIN")?;
        for (id, d) in &docs {
            let c = automerge_put(d)?;
            raw.upsert(id, &c.heads, &c.json, &c.chunk)?;
        }
        raw.conn.execute_batch("COMMIT")?;
        let writes = docs
            .into_iter()
            .map(|(id, d)| Ok(Write::Put(node.key("c", &id)?, Value::Object(d))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        node.batch(writes).await?;
        i += n;
    }
    let ids: Vec<String> = (0..scale.docs.saturating_sub(have))
        .map(|k| format!("f{k}"))
        .collect();
    anyhow::ensure!(
        !ids.is_empty(),
        "the read cases need more documents than the writes made"
    );

    // Point reads of random documents (a fresh node, so Weft's caches start
    // cold as SQLite's page cache does after open).
    node.close().await?;
    let node = Node::open(Config::with_data_dir(dir.path().join("weft"))).await?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut pick = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        &ids[(rng % ids.len() as u64) as usize]
    };
    let (mut weft, mut base) = (Vec::new(), Vec::new());
    for _ in 0..scale.rounds {
        let batch: Vec<String> = (0..scale.gets / scale.rounds)
            .map(|_| pick().clone())
            .collect();
        let t = Instant::now();
        for id in &batch {
            anyhow::ensure!(raw.get(id)?.is_some(), "raw row {id} missing");
        }
        base.push(t.elapsed() / batch.len() as u32);
        let t = Instant::now();
        for id in &batch {
            anyhow::ensure!(
                node.get(&node.key("c", id)?).await?.is_some(),
                "{id} missing"
            );
        }
        weft.push(t.elapsed() / batch.len() as u32);
    }
    cases.push(ratio_case(
        "get by id (random, cold start)",
        weft,
        base,
        2.0,
        "µs per get vs raw SQLite point read",
    ));

    // A query on a JSON field, LIMIT 50, no index on either side.
    let (mut weft, mut base) = (Vec::new(), Vec::new());
    for r in 0..scale.rounds {
        let tags: Vec<String> = (0..scale.queries / scale.rounds)
            .map(|q| format!("t{}", (q * 31 + r) % 100))
            .collect();
        let t = Instant::now();
        for tag in &tags {
            anyhow::ensure!(raw.query_eq("tag", tag, 50)? > 0, "raw query found nothing");
        }
        base.push(t.elapsed() / tags.len() as u32);
        let t = Instant::now();
        for tag in &tags {
            let rows = node
                .query(&Query::new("c").eq("tag", tag.as_str()).limit(50))
                .await?;
            anyhow::ensure!(!rows.is_empty(), "query found nothing");
        }
        weft.push(t.elapsed() / tags.len() as u32);
    }
    cases.push(ratio_case(
        &format!("query by JSON field ({} documents)", scale.docs),
        weft,
        base,
        1.5,
        "µs per query (LIMIT 50) vs raw SQLite json_extract",
    ));
    cases.push(crate::text::run(&node, scale).await?);
    node.close().await?;
    cases.push(crate::import::run(scale).await?);
    Ok(cases)
}

pub fn ratio_case(
    name: &str,
    weft: Vec<Duration>,
    base: Vec<Duration>,
    target: f64,
    unit: &str,
) -> Case {
    let (w, b) = (median(weft), median(base));
    Case {
        name: name.to_owned(),
        ratio: micros(w) / micros(b).max(1e-3),
        target: Some(target),
        unit: unit.to_owned(),
        details: json!({ "weft_us": micros(w), "baseline_us": micros(b) }),
    }
}
