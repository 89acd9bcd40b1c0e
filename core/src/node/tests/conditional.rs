//! Conditional writes and versioned reads.

use serde_json::json;

use super::open;
use crate::error::ErrorKind;
use crate::node::{Precondition, Write};
use crate::store::Query;

#[tokio::test]
async fn preconditions_are_checked_with_the_write_and_puts_say_if_they_created() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "a").unwrap();
    let put = |v: i64| Write::Put(key.clone(), json!({ "v": v }));
    fn failed<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
        r.unwrap_err().kind()
    }

    // Create-only, then refused once it exists.
    let made = node.write_if(put(1), Precondition::Absent).await.unwrap();
    assert!(made.created);
    let again = node.write_if(put(2), Precondition::Absent).await;
    assert_eq!(failed(again), ErrorKind::PreconditionFailed);
    let read = node.get_versioned(&key).await.unwrap().unwrap();
    assert_eq!((read.json, &read.heads), (json!({"v": 1}), &made.heads));

    // A write against the heads read succeeds once; the stale heads then fail.
    let next = node
        .write_if(put(3), Precondition::Heads(read.heads.clone()))
        .await
        .unwrap();
    assert!(!next.created);
    assert_ne!(next.heads, read.heads);
    let stale = node
        .write_if(put(4), Precondition::Heads(read.heads.clone()))
        .await;
    assert_eq!(failed(stale), ErrorKind::PreconditionFailed);
    let patch = Write::Patch(key.clone(), json!({"w": 1}));
    let stale = node
        .write_if(patch.clone(), Precondition::Heads(read.heads))
        .await;
    assert_eq!(failed(stale), ErrorKind::PreconditionFailed);
    assert_eq!(node.get(&key).await.unwrap(), Some(json!({"v": 3})));

    // A failed condition in a batch stores none of it.
    let other = node.key("notes", "b").unwrap();
    let batch = vec![
        (Write::Put(other.clone(), json!({})), Precondition::Any),
        (Write::Delete(key.clone()), Precondition::Absent),
    ];
    assert_eq!(
        failed(node.batch_if(batch).await),
        ErrorKind::PreconditionFailed
    );
    assert_eq!(node.get(&other).await.unwrap(), None);

    // Delete needs it to exist; a put after a delete creates again.
    let gone = node
        .write_if(Write::Delete(key.clone()), Precondition::Exists)
        .await
        .unwrap();
    assert!(!gone.created);
    assert_eq!(node.get_versioned(&key).await.unwrap(), None);
    let del = node
        .write_if(Write::Delete(key.clone()), Precondition::Exists)
        .await;
    assert_eq!(failed(del), ErrorKind::PreconditionFailed);
    assert!(
        node.write_if(put(5), Precondition::Absent)
            .await
            .unwrap()
            .created
    );
}

#[tokio::test]
async fn queries_page_by_id_after_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    for i in 0..7 {
        let key = node.key("n", &format!("d{i}")).unwrap();
        node.put(&key, json!({ "odd": i % 2 == 1 })).await.unwrap();
    }
    let page = node
        .query(&Query::new("n").eq("odd", true).after("d1").limit(2))
        .await
        .unwrap();
    let ids: Vec<_> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["d3", "d5"]);
    let bad = Query::new("n").after("d1").order_by("odd", false);
    assert_eq!(
        node.query(&bad).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let long = Query::new("n").after("x".repeat(300));
    assert_eq!(
        node.query(&long).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
