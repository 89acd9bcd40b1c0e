//! Opens the replica in the default data dir (or `$WEFT_DATA_DIR`), writes a
//! few notes, queries them, and shows the history of one.

use serde_json::json;
use weft_core::{Config, Node, Query};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let node = Node::open(Config::default()).await?;
    println!("node {} at {}", node.node_id(), node.data_dir().display());

    for (id, title, done) in [
        ("buy-milk", "Buy milk", false),
        ("call-bob", "Call Bob", true),
        ("write-docs", "Write docs", false),
    ] {
        let key = node.key("notes", id)?;
        node.put(&key, json!({"title": title, "done": done}))
            .await?;
    }
    node.patch(
        &node.key("notes", "buy-milk")?,
        json!({"body": "oat, 2 litres"}),
    )
    .await?;

    let open = node
        .query(
            &Query::new("notes")
                .eq("done", false)
                .order_by("title", false),
        )
        .await?;
    println!("open notes:");
    for row in &open {
        println!("  {} {}", row.id, row.json);
    }
    let counts = node
        .sql("SELECT collection, count(*) AS documents FROM documents GROUP BY collection")
        .await?;
    println!(
        "documents per collection: {}",
        serde_json::to_string(&counts)?
    );
    for change in node.history(&node.key("notes", "buy-milk")?).await? {
        println!(
            "  change {} by {:?}: {:?}",
            &change.hash[..12],
            change.author.map(|a| a.to_string()),
            change.message
        );
    }
    node.close().await?;
    Ok(())
}
