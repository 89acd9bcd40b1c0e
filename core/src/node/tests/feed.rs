//! The change feed's sequence numbers and its replay from the store.

use std::collections::HashMap;

use serde_json::json;

use super::faults::{pair, until};
use super::*;

/// Every event a subscription has buffered.
fn drain(sub: &mut Subscription) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = sub.recv().now_or_never().transpose() {
        out.push(e);
    }
    out
}

trait NowOrNever: std::future::Future + Sized {
    /// The output if the future is ready at once (it never is pending for
    /// a buffered event).
    fn now_or_never(self) -> Option<Self::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(self);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
impl<F: std::future::Future> NowOrNever for F {}

/// Every change after `since`, read a page of `limit` at a time.
async fn replay(node: &Node, filter: &SubscribeFilter, since: u64, limit: u32) -> Vec<ChangeEvent> {
    let (mut out, mut since, mut pages) = (Vec::new(), since, 0);
    loop {
        let page = node.changes_since(filter, since, limit).await.unwrap();
        assert!(page.events.len() <= limit as usize);
        pages += 1;
        assert!(pages < 1000, "paging ends");
        out.extend(page.events);
        match page.next {
            Some(n) => since = n,
            None => return out,
        }
    }
}

#[tokio::test]
async fn seqs_increase_in_commit_order_across_group_commits_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut feed = node.subscribe(SubscribeFilter::default());
    let key = |i: u32| node.key("notes", &format!("n{i}")).unwrap();
    // One batch is one commit of several rows: consecutive numbers.
    node.batch(
        (0..5)
            .map(|i| Write::Put(key(i), json!({"i": i})))
            .collect(),
    )
    .await
    .unwrap();
    node.put(&key(0), json!({"i": "again"})).await.unwrap();
    let seen = drain(&mut feed);
    let user: Vec<_> = seen
        .iter()
        .filter(|e| e.key.collection() == "notes")
        .collect();
    assert_eq!(user.len(), 6);
    assert!(
        seen.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "consecutive, in order: {:?}",
        seen.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    let last = seen.last().unwrap().seq;
    assert_eq!(node.last_seq().await.unwrap(), last);
    node.close().await.unwrap();

    let node = open(dir.path()).await;
    let mut feed = node.subscribe(SubscribeFilter::default());
    node.put(&node.key("notes", "after").unwrap(), json!({}))
        .await
        .unwrap();
    assert_eq!(
        feed.recv().await.unwrap().seq,
        last + 1,
        "continues after a restart"
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn numbers_of_a_left_space_are_never_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.put(&node.key("notes", "kept").unwrap(), json!({}))
        .await
        .unwrap();
    // The space left holds the highest numbers.
    let team = node.space_create("team").await.unwrap().to_string();
    for i in 0..3 {
        let key = DocKey::new(&team, "notes", format!("t{i}")).unwrap();
        node.put(&key, json!({"i": i})).await.unwrap();
    }
    let before = node.last_seq().await.unwrap();
    node.space_leave(team.as_str()).await.unwrap();
    assert_eq!(node.last_seq().await.unwrap(), before, "latest stays");
    node.close().await.unwrap();

    // Not even after a restart, when the counter is read from the store.
    let node = open(dir.path()).await;
    assert_eq!(node.last_seq().await.unwrap(), before);
    let mut feed = node.subscribe(SubscribeFilter::default());
    node.put(&node.key("notes", "after").unwrap(), json!({}))
        .await
        .unwrap();
    assert_eq!(feed.recv().await.unwrap().seq, before + 1);
    node.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_uses_no_number_and_the_next_one_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut feed = node.subscribe(SubscribeFilter::default());
    let (a, b) = (
        node.key("notes", "a").unwrap(),
        node.key("notes", "b").unwrap(),
    );
    node.put(&a, json!({"v": 1})).await.unwrap();
    let before = feed.recv().await.unwrap().seq;
    node.commit_faults().fail_next(1);
    assert!(node.put(&b, json!({"v": 1})).await.is_err());
    node.put(&b, json!({"v": 2})).await.unwrap();
    let e = feed.recv().await.unwrap();
    assert_eq!((e.key.clone(), e.seq), (b.clone(), before + 1));
    assert!(
        drain(&mut feed).is_empty(),
        "the failed commit announced nothing"
    );
    // The store agrees: b's row carries that number, a's its own.
    let all = replay(&node, &SubscribeFilter::default(), 0, 100).await;
    let seqs: HashMap<_, _> = all.iter().map(|e| (e.key.clone(), e.seq)).collect();
    assert_eq!((seqs[&a], seqs[&b]), (before, before + 1));
    node.close().await.unwrap();
}

#[tokio::test]
async fn changes_since_pages_the_latest_change_of_each_document() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut feed = node.subscribe(SubscribeFilter::default());
    for i in 0..25 {
        let c = if i % 2 == 0 { "even" } else { "odd" };
        node.put(&node.key(c, &format!("d{i:02}")).unwrap(), json!({"i": i}))
            .await
            .unwrap();
    }
    let mark = drain(&mut feed).last().unwrap().seq;
    // After the mark: two documents change (one twice), one is deleted.
    let (d03, d04) = (
        node.key("odd", "d03").unwrap(),
        node.key("even", "d04").unwrap(),
    );
    node.patch(&d03, json!({"x": 1})).await.unwrap();
    node.patch(&d04, json!({"x": 1})).await.unwrap();
    let heads = node.patch(&d03, json!({"x": 2})).await.unwrap();
    node.delete(&d04).await.unwrap();
    let live = drain(&mut feed);
    assert_eq!(live.len(), 4);

    let all = SubscribeFilter::default();
    let since_mark = replay(&node, &all, mark, 1).await;
    assert_eq!(
        since_mark
            .iter()
            .map(|e| (e.key.clone(), e.seq, e.deleted, e.origin))
            .collect::<Vec<_>>(),
        [
            (d03.clone(), live[2].seq, false, Origin::Local),
            (d04.clone(), live[3].seq, true, Origin::Local),
        ],
        "intermediate versions collapse into the latest"
    );
    assert_eq!(since_mark[0].heads, heads);

    // Everything, in small pages: each document once, in seq order.
    let everything = replay(&node, &all, 0, 7).await;
    assert!(everything.windows(2).all(|w| w[0].seq < w[1].seq));
    let user: Vec<_> = everything
        .iter()
        .filter(|e| e.key.collection() != "_weft")
        .collect();
    assert_eq!(user.len(), 25);
    // A collection filter, paged.
    let odd = SubscribeFilter {
        space: Some(node.default_space().to_owned()),
        collection: Some("odd".into()),
    };
    let odds = replay(&node, &odd, 0, 5).await;
    assert_eq!(odds.len(), 12);
    assert!(odds.iter().all(|e| e.key.collection() == "odd"));
    assert_eq!(odds.last().unwrap().key, d03);
    // Another space has none of them; past the end is empty.
    let other = SubscribeFilter {
        space: Some("nope".into()),
        collection: None,
    };
    assert!(replay(&node, &other, 0, 5).await.is_empty());
    let end = node.changes_since(&all, live[3].seq, 10).await.unwrap();
    assert_eq!((end.events.len(), end.next), (0, None));
    // A limit of zero or past the page cap is cut, never unbounded.
    let one = node.changes_since(&all, 0, 0).await.unwrap();
    assert_eq!(one.events.len(), 1);
    assert!(one.next.is_some());
    node.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_changes_get_numbers_of_the_receiving_replica() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space) = pair(da.path(), db.path()).await;
    let key = DocKey::new(&space, "notes", "from-a").unwrap();
    let mut feed = b.subscribe(SubscribeFilter {
        space: Some(space.clone()),
        collection: Some("notes".into()),
    });
    a.put(&key, json!({"t": 1})).await.unwrap();
    let expected = Some(json!({"t": 1}));
    until(&b, async |n: &Node| n.get(&key).await.unwrap() == expected).await;
    let live = feed.recv().await.unwrap();
    assert_eq!(
        (live.key.clone(), live.origin),
        (key.clone(), Origin::Remote)
    );
    let filter = SubscribeFilter {
        space: Some(space),
        collection: Some("notes".into()),
    };
    let stored = replay(&b, &filter, 0, 10).await;
    assert_eq!(stored, [live], "the replay says what the live event said");
    a.close().await.unwrap();
    b.close().await.unwrap();
}
