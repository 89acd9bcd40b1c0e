//! Live queries: the first result at once, a new one after a change that
//! alters it, nothing for unrelated changes, bursts coalesced.

use std::time::Duration;

use serde_json::{Value, json};

use super::open;
use crate::node::Node;
use crate::store::{FilterOp, Query};

/// Long enough for a wrongly woken observer to have re-run and sent.
const QUIET: Duration = Duration::from_millis(300);

fn ids(rows: &[crate::store::QueryRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

async fn put(node: &Node, collection: &str, id: &str, v: Value) {
    node.put(&node.key(collection, id).unwrap(), v)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_observer_gets_the_result_then_each_change_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    put(&node, "tasks", "b", json!({"done": false, "n": 2})).await;
    put(&node, "tasks", "a", json!({"done": true, "n": 1})).await;
    let query = Query::new("tasks")
        .filter("done", FilterOp::Eq, false)
        .order_by("n", false);
    let mut obs = node.observe(query).await.unwrap();
    let first = obs.next().await.unwrap().unwrap();
    assert_eq!(ids(&first), ["b"]);

    // A matching document appears: the new result, in query order.
    put(&node, "tasks", "c", json!({"done": false, "n": 0})).await;
    let second = obs.next().await.unwrap().unwrap();
    assert_eq!(ids(&second), ["c", "b"]);
    assert_eq!(second[0].json, json!({"done": false, "n": 0}));

    // Another collection: the query is not even re-run.
    let before = obs.reruns();
    put(&node, "notes", "x", json!({"done": false, "n": 5})).await;
    assert!(tokio::time::timeout(QUIET, obs.next()).await.is_err());
    assert_eq!(obs.reruns(), before);

    // The same collection, but the result does not change: re-run, not sent.
    put(&node, "tasks", "a", json!({"done": true, "n": 7})).await;
    assert!(tokio::time::timeout(QUIET, obs.next()).await.is_err());
    assert!(obs.reruns() > before);

    // A document leaving the result (deleted) is a change too.
    node.delete(&node.key("tasks", "c").unwrap()).await.unwrap();
    assert_eq!(ids(&obs.next().await.unwrap().unwrap()), ["b"]);
    node.close().await.unwrap();
}

#[tokio::test]
async fn a_burst_of_changes_is_coalesced_and_the_last_result_wins() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut obs = node.observe(Query::new("log")).await.unwrap();
    assert!(obs.next().await.unwrap().unwrap().is_empty());
    for i in 0..200 {
        put(&node, "log", &format!("{i:03}"), json!({"i": i})).await;
    }
    // Results may come in steps, but they end with all 200 documents.
    let mut last = Vec::new();
    while last.len() < 200 {
        last = obs.next().await.unwrap().unwrap();
    }
    assert_eq!(last.first().unwrap().id, "000");
    assert!(
        obs.reruns() < 200,
        "200 changes re-ran the query {} times",
        obs.reruns()
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn dropped_observers_are_forgotten_and_closing_the_node_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    assert!(node.observe(Query::new("no tes")).await.is_err());
    let mut kept = node.observe(Query::new("a")).await.unwrap();
    let dropped = node.observe(Query::new("a")).await.unwrap();
    let hub = node.inner.observers.get().unwrap().clone();
    assert_eq!(hub.observers(), 2);
    drop(dropped);
    put(&node, "a", "1", json!({})).await;
    kept.next().await.unwrap().unwrap();
    assert_eq!(ids(&kept.next().await.unwrap().unwrap()), ["1"]);
    assert_eq!(hub.observers(), 1, "the dropped observer was forgotten");
    node.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), kept.next())
        .await
        .expect("next() returns once the node is closed");
    assert!(ended.is_none());
}

#[tokio::test]
async fn leaving_a_space_empties_its_live_queries() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let team = node.space_create("team").await.unwrap().to_string();
    let key = crate::DocKey::new(&team, "tasks", "t1").unwrap();
    node.put(&key, json!({"done": false})).await.unwrap();
    let mut obs = node
        .observe(Query::new("tasks").space(team.clone()))
        .await
        .unwrap();
    assert_eq!(ids(&obs.next().await.unwrap().unwrap()), ["t1"]);
    node.space_leave(team.as_str()).await.unwrap();
    // No change event names the removed documents; the leave itself wakes it.
    let emptied = tokio::time::timeout(Duration::from_secs(10), obs.next())
        .await
        .expect("the live query hears of the leave");
    assert!(emptied.unwrap().unwrap().is_empty());
    node.close().await.unwrap();
}
