//! A child process for multi-process tests of the replica.
//!
//! `weft-writer write DIR` writes documents from several tasks forever,
//! printing `ok <collection> <id> <n>` after each write returns Ok.
//! `weft-writer hold [DIR]` opens the replica (default data dir when DIR is
//! absent), prints `ready <data dir>`, and waits to be killed.

use std::io::Write as _;

use anyhow::{Context, bail};
use serde_json::json;
use weft_core::{Config, Node};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.get(1) {
        Some(dir) => Config::with_data_dir(dir),
        None => Config::default(),
    };
    let node = Node::open(config).await.context("opening the replica")?;
    match args.first().map(String::as_str) {
        Some("write") => write_forever(node).await,
        Some("hold") => {
            println!("ready {}", node.data_dir().display());
            std::io::stdout().flush()?;
            std::future::pending::<()>().await;
            Ok(())
        }
        _ => bail!("usage: weft-writer write DIR | hold [DIR]"),
    }
}

async fn write_forever(node: Node) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4 {
        let node = node.clone();
        tasks.spawn(async move {
            for n in 0u64.. {
                // Each task rewrites a small set of documents so writes hit
                // existing documents (chunks, compaction) as well as new ones.
                let id = format!("t{task}-{}", n % 50);
                let key = node.key("crash", &id)?;
                node.put(
                    &key,
                    json!({"task": task, "n": n, "body": format!("write {n}")}),
                )
                .await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "ok crash {id} {n}")?;
                out.flush()?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}
