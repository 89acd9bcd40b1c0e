//! `weft import` over the HTTP API against the core batch path it is built
//! on: the NDJSON parsing, request encoding and HTTP round trips must cost
//! little next to storing the documents.

use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::watch;
use weft_core::{Config, Node, Write};
use weft_daemon::api;
use weft_daemon::client::Client;

use crate::storage::ratio_case;
use crate::{Case, Scale};
use weft_tests::bench::document;

const TOKEN: &str = "bench-token";

pub async fn run(scale: Scale) -> anyhow::Result<Case> {
    let n = scale.docs;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("import.ndjson");
    let mut text = String::new();
    for i in 0..n {
        let line = json!({"collection": "c", "id": format!("d{i}"), "doc": document(i)});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&file, text)?;

    let (mut weft, mut base) = (Vec::new(), Vec::new());
    for round in 0..2 {
        // The core path: the same documents, 1,000 per batch.
        let node = Node::open(Config::with_data_dir(
            dir.path().join(format!("core{round}")),
        ))
        .await?;
        let t = Instant::now();
        let mut i = 0;
        while i < n {
            let writes = (i..(i + 1000).min(n))
                .map(|k| {
                    Ok(Write::Put(
                        node.key("c", &format!("d{k}"))?,
                        Value::Object(document(k)),
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            node.batch(writes).await?;
            i += 1000;
        }
        base.push(t.elapsed() / n as u32);
        node.close().await?;

        // `weft import FILE` against a daemon's API over a socket.
        let node = Node::open(Config::with_data_dir(
            dir.path().join(format!("api{round}")),
        ))
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let landing = weft_daemon::automerge::Landing {
            space: node.default_space().to_owned(),
            collection: api::DEFAULT_LANDING_COLLECTION.to_owned(),
        };
        let app = api::router_with(
            node.clone(),
            TOKEN.into(),
            stop_rx,
            landing,
            api::Guard::default(),
            api::DEFAULT_JOIN_TIMEOUT,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(addr, TOKEN);
        let t = Instant::now();
        let done = weft_daemon::transfer::import_file(&client, None, file.to_str().unwrap())
            .await
            .map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
        weft.push(t.elapsed() / n as u32);
        anyhow::ensure!(
            done.imported == n as u64,
            "imported {} of {n}",
            done.imported
        );
        anyhow::ensure!(
            node.count(None::<&str>, Some("c")).await? == n as u64,
            "documents missing after import"
        );
        let _ = stop.send(true);
        server.abort();
        node.close().await?;
    }
    Ok(ratio_case(
        &format!("import NDJSON over the API ({n} documents)"),
        weft,
        base,
        1.5,
        "µs per document vs core batch (1,000 per transaction)",
    ))
}
