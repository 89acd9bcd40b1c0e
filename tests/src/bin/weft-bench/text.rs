//! Replacing a long text field: every character of a ~1 MiB string replaced
//! by an unrelated one must cost about what writing that string fresh does
//! (the text diff has a work budget), not minutes of diffing.

use std::time::Instant;

use serde_json::{Value, json};
use weft_core::Node;

use crate::storage::ratio_case;
use crate::{Case, Scale};

/// Characters per text: the document stays under the 1 MiB JSON limit.
const TEXT_CHARS: usize = 1_000_000;

/// A pseudo-random lowercase text, different for each `seed`.
fn text(seed: u64) -> String {
    weft_tests::filler(seed, TEXT_CHARS)
}

pub async fn run(node: &Node, scale: Scale) -> anyhow::Result<Case> {
    let (mut replace, mut fresh) = (Vec::new(), Vec::new());
    for r in 0..scale.rounds {
        let seed = r as u64 * 2 + 1;
        let key = node.key("text", &format!("t{r}"))?;
        let t = Instant::now();
        node.put(&key, json!({ "body": text(seed) })).await?;
        fresh.push(t.elapsed());
        let new = text(seed + 1);
        let t = Instant::now();
        node.put(&key, json!({ "body": new })).await?;
        replace.push(t.elapsed());
        let stored = node.get(&key).await?;
        anyhow::ensure!(
            stored.as_ref().and_then(|d| d.get("body")) == Some(&Value::String(new)),
            "the replaced text did not round-trip"
        );
    }
    Ok(ratio_case(
        "replace 1 MiB text vs write it fresh",
        replace,
        fresh,
        2.0,
        "µs per put replacing every character vs a first put",
    ))
}
