//! Real-network sync tests: nodes in one process over loopback (port 0).
//! Convergence is awaited through change events with a timeout, never by
//! sleeping.

use std::time::Duration;

use serde_json::{Value, json};
use weft_core::internals::net::NetConfig;
use weft_core::{Config, DocKey, Node, Origin, Role, SubscribeFilter, Write};

const WAIT: Duration = Duration::from_secs(30);

async fn node(dir: &std::path::Path) -> Node {
    node_with(dir, NetConfig::local()).await
}

async fn node_with(dir: &std::path::Path, net: NetConfig) -> Node {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(net);
    Node::open(config).await.expect("open node")
}

async fn connect(a: &Node, b: &Node) {
    let addr = b
        .listen_addrs()
        .await
        .into_iter()
        .next()
        .expect("b listens");
    let id = a.connect(&addr).await.expect("connect");
    assert_eq!(id, b.node_id());
}

/// Waits until `check` holds on `node`, re-checking after each change event.
async fn until<F>(node: &Node, what: &str, check: F)
where
    F: AsyncFn(&Node) -> bool,
{
    let mut feed = node.subscribe(SubscribeFilter::default());
    let wait = async {
        while !check(node).await {
            // Any change (or a lag notice) is a reason to look again.
            let _ = feed.recv().await;
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!(
            "timed out waiting for {what} on {}; its spaces: {:?}; peers: {:?}",
            node.node_id(),
            node.space_list().await,
            node.peers().await
        );
    }
}

/// Creates a space on `owner`, invites each of `others` as a writer and
/// waits until each knows it is a member (the membership log has synced).
async fn shared_space(owner: &Node, others: &[&Node]) -> String {
    let space = owner.space_create("team").await.unwrap().to_string();
    for other in others {
        let token = owner
            .space_invite(
                Some(&space),
                Role::Writer,
                Duration::from_secs(3600),
                Some(other.node_id()),
            )
            .await
            .unwrap();
        let joined = other.space_join(&token).await.unwrap();
        assert_eq!(joined.to_string(), space);
        let s = space.clone();
        until(other, "membership", async |n: &Node| {
            n.space_list()
                .await
                .unwrap()
                .iter()
                .any(|i| i.id == s && i.role == Some(Role::Writer))
        })
        .await;
    }
    space
}

fn key(space: &str, id: &str) -> DocKey {
    DocKey::new(space, "notes", id).unwrap()
}

async fn has(node: &Node, key: &DocKey, expected: &Value) -> bool {
    node.get(key).await.unwrap().as_ref() == Some(expected)
}

async fn snapshot(node: &Node, space: &str) -> Vec<(String, Value)> {
    node.query(&weft_core::Query::new("notes").space(space))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.json))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_across_a_partition() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = node(dirs[0].path()).await;
    let b = node(dirs[1].path()).await;
    let c = node(dirs[2].path()).await;
    connect(&a, &b).await;
    connect(&b, &c).await;
    let space = shared_space(&a, &[&b, &c]).await;

    // Writes on every node reach every node, arriving as remote changes.
    let mut remote_on_c = c.subscribe(SubscribeFilter::default());
    for (i, n) in [&a, &b, &c].into_iter().enumerate() {
        n.put(
            &key(&space, &format!("from-{i}")),
            json!({"by": i, "body": "hello"}),
        )
        .await
        .unwrap();
    }
    for n in [&a, &b, &c] {
        until(n, "3 notes", async |n: &Node| {
            snapshot(n, &space).await.len() == 3
        })
        .await;
    }
    let e = tokio::time::timeout(WAIT, async {
        loop {
            let e = remote_on_c.recv().await.unwrap();
            if e.origin == Origin::Remote {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_ne!(e.key.id(), "from-2");

    // Partition: stop c. Both sides edit the same note concurrently.
    let shared = key(&space, "from-0");
    c.close().await.unwrap();
    drop(c);
    a.patch(&shared, json!({"left": true})).await.unwrap();
    {
        let offline = Node::open(Config::with_data_dir(dirs[2].path()))
            .await
            .unwrap();
        offline
            .patch(&shared, json!({"right": true}))
            .await
            .unwrap();
        offline
            .put(
                &key(&space, "offline"),
                json!({"written": "while partitioned"}),
            )
            .await
            .unwrap();
        offline.close().await.unwrap();
    }

    // Heal: c comes back and dials b.
    let c = node(dirs[2].path()).await;
    connect(&c, &b).await;
    let merged = json!({"by": 0, "body": "hello", "left": true, "right": true});
    for n in [&a, &b, &c] {
        until(n, "the merged note", async |n: &Node| {
            has(n, &shared, &merged).await
        })
        .await;
        until(n, "4 notes", async |n: &Node| {
            snapshot(n, &space).await.len() == 4
        })
        .await;
    }
    assert_eq!(snapshot(&a, &space).await, snapshot(&c, &space).await);
    for n in [a, b, c] {
        n.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_without_resending_everything() {
    const DOCS: usize = 200;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(da.path()).await;
    let b = node(db.path()).await;
    let space = shared_space(&a, &[&b]).await;
    let writes = (0..DOCS)
        .map(|i| {
            Write::Put(
                key(&space, &format!("n{i:04}")),
                json!({"i": i, "body": "some text"}),
            )
        })
        .collect();
    a.batch(writes).await.unwrap();

    until(&b, "the initial sync", async |n: &Node| {
        snapshot(n, &space).await.len() == DOCS
    })
    .await;
    let initial = a.status().await.unwrap().net;
    b.close().await.unwrap();
    drop(b);

    // While b is away, 10 documents change on a.
    for i in 0..10 {
        a.patch(&key(&space, &format!("n{i:04}")), json!({"changed": true}))
            .await
            .unwrap();
    }
    let before = a.status().await.unwrap().net;
    let b = node(db.path()).await;
    connect(&b, &a).await;
    let changed = key(&space, "n0009");
    until(&b, "the 10 changes", async |n: &Node| {
        n.get(&changed)
            .await
            .unwrap()
            .is_some_and(|d| d["changed"] == true)
    })
    .await;
    a.wait_synced(WAIT).await.unwrap();
    b.wait_synced(WAIT).await.unwrap();
    let after = a.status().await.unwrap().net;
    let resync_frames = after.frames_sent - before.frames_sent;
    eprintln!(
        "initial sync: {} frames, {} bytes from a; reconnect with 10 of {DOCS} changed: {resync_frames} frames, {} bytes",
        initial.frames_sent,
        initial.bytes_sent,
        after.bytes_sent - before.bytes_sent
    );
    // Sync messages flow only for changed documents: a handful per document
    // plus the handshake, far below one per stored document.
    assert!(
        resync_frames < 60,
        "reconnect sent {resync_frames} frames for 10 changed documents"
    );
    assert!(
        initial.frames_sent as usize >= DOCS,
        "initial sync sent every document"
    );
    assert_eq!(snapshot(&a, &space).await, snapshot(&b, &space).await);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_is_cut_off_and_others_are_served() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(da.path()).await;
    let precious = a.key("notes", "precious").unwrap();
    a.put(&precious, json!({"keep": "me"})).await.unwrap();

    // A raw network endpoint that speaks garbage on /weft/sync/1.
    let (evil, mut evil_events) =
        weft_core::internals::net::spawn([66; 32], NetConfig::local()).unwrap();
    let addr = a.listen_addrs().await[0].parse().unwrap();
    let a_id = evil.connect(addr).await.unwrap();
    evil.send(a_id, vec![1, 0xff, 0x00, 0x13, 0x37]);
    tokio::time::timeout(WAIT, async {
        while let Some(e) = evil_events.recv().await {
            if matches!(e, weft_core::internals::net::NetEvent::Disconnected(id) if id == a_id) {
                return;
            }
        }
    })
    .await
    .expect("the hostile peer is disconnected");
    evil.shutdown().await;

    // Nothing stored changed, and an honest peer still syncs.
    assert_eq!(a.get(&precious).await.unwrap(), Some(json!({"keep": "me"})));
    let b = node(db.path()).await;
    let space = shared_space(&a, &[&b]).await;
    let note = key(&space, "shared");
    a.put(&note, json!({"keep": "me"})).await.unwrap();
    until(&b, "the precious note", async |n: &Node| {
        has(n, &note, &json!({"keep": "me"})).await
    })
    .await;
    a.check_integrity().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Peers connected before one of them joins (mDNS often connects devices
/// first): the join happens while the connection's hellos are in flight or
/// done, and the space must sync either way. Several rounds vary the timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_while_connected_syncs_the_space() {
    for _ in 0..4 {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (node(da.path()).await, node(db.path()).await);
        let space = a.space_create("team").await.unwrap().to_string();
        let token = a
            .space_invite(Some(&space), Role::Writer, Duration::from_secs(3600), None)
            .await
            .unwrap();
        connect(&b, &a).await;
        b.space_join(&token).await.unwrap();
        until(&b, "b becoming a writer", async |n: &Node| {
            n.space_list()
                .await
                .unwrap()
                .iter()
                .any(|s| s.id == space && s.role == Some(Role::Writer))
        })
        .await;
        let k = key(&space, "after-join");
        a.put(&k, json!({"from": "a"})).await.unwrap();
        until(&b, "a's document", async |n: &Node| {
            has(n, &k, &json!({"from": "a"})).await
        })
        .await;
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}
