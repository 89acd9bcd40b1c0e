//! Pausing and resuming networking (apps going to the background): while
//! paused a node has no connections and changes wait; on resume it redials
//! the peers it had and both sides catch up.

use std::time::{Duration, Instant};

use serde_json::json;
use weft_core::internals::net::NetConfig;
use weft_core::{Config, DocKey, Error, Node, Role};

const WAIT: Duration = Duration::from_secs(30);

async fn open(dir: &std::path::Path, net: Option<NetConfig>) -> Node {
    let mut config = Config::with_data_dir(dir);
    config.network = net;
    Node::open(config).await.expect("open node")
}

/// Polls `check` until it holds, failing after [`WAIT`].
async fn until<F>(what: &str, check: F)
where
    F: AsyncFn() -> bool,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connected(node: &Node) -> usize {
    node.status().await.unwrap().peers_connected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stops_while_paused_and_catches_up_on_resume() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path(), Some(NetConfig::local())).await;
    let b = open(db.path(), Some(NetConfig::local())).await;
    let space = a.space_create("team").await.unwrap().to_string();
    let token = a
        .space_invite(Some(&space), Role::Writer, Duration::from_secs(3600), None)
        .await
        .unwrap();
    b.space_join(&token).await.unwrap();
    let key = |id: &str| DocKey::new(&space, "notes", id).unwrap();
    a.put(&key("before"), json!({"n": 1})).await.unwrap();
    until("the first document on b", async || {
        b.get(&key("before")).await.unwrap().is_some()
    })
    .await;

    a.pause_network().await.unwrap();
    a.pause_network().await.expect("pausing twice is harmless");
    let status = a.status().await.unwrap();
    assert!(!status.online);
    assert_eq!(status.peers_connected, 0);
    assert!(a.listen_addrs().await.is_empty());
    let err = a.connect("/ip4/127.0.0.1/tcp/1").await.unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
    until("b to see a leave", async || connected(&b).await == 0).await;

    // Changes on both sides while apart stay local.
    a.put(&key("from-a"), json!({"n": 2})).await.unwrap();
    b.put(&key("from-b"), json!({"n": 3})).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.get(&key("from-a")).await.unwrap(), None);
    assert_eq!(a.get(&key("from-b")).await.unwrap(), None);
    assert_eq!(
        connected(&b).await,
        0,
        "nobody reconnected to a paused node"
    );

    a.resume_network().await.unwrap();
    a.resume_network()
        .await
        .expect("resuming twice is harmless");
    assert!(a.status().await.unwrap().online);
    assert!(!a.listen_addrs().await.is_empty());
    until("a to redial b", async || connected(&a).await == 1).await;
    until("both changes on both sides", async || {
        b.get(&key("from-a")).await.unwrap() == Some(json!({"n": 2}))
            && a.get(&key("from-b")).await.unwrap() == Some(json!({"n": 3}))
    })
    .await;
    // The new sessions carry live changes too, both ways.
    a.put(&key("after-a"), json!({"n": 4})).await.unwrap();
    b.put(&key("after-b"), json!({"n": 5})).await.unwrap();
    until("live changes after resume", async || {
        b.get(&key("after-a")).await.unwrap().is_some()
            && a.get(&key("after-b")).await.unwrap().is_some()
    })
    .await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn an_offline_node_cannot_resume() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), None).await;
    node.pause_network().await.expect("nothing to pause");
    let err = node.resume_network().await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err}");
    assert!(err.to_string().contains("off"), "{err}");
    node.close().await.unwrap();
}
