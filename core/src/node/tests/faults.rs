//! Faults on the writer actor: a commit that fails under a remote change,
//! Automerge panicking on a document, and the limits of provisional trust.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::docs::guard::MAX_QUARANTINED;
use super::super::docs::now_ms;
use super::super::spaces::members_key;
use super::*;
use crate::auth::PROVISIONAL_TRUST_SECS;
use crate::auth::Role;
use crate::net::NetConfig;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `f` on the node's writer actor and returns what it returns.
pub(super) async fn on_actor<T: Send + 'static>(
    node: &Node,
    f: impl FnOnce(&mut Actor) -> T + Send + 'static,
) -> T {
    let (tx, rx) = oneshot::channel();
    let run = Box::new(move |actor: &mut Actor| {
        let _ = tx.send(f(actor));
    });
    node.inner
        .writer
        .send(Command::Test(run))
        .await
        .expect("actor runs");
    rx.await.expect("actor answers")
}

async fn networked(dir: &Path) -> Node {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(NetConfig::local());
    Node::open(config).await.unwrap()
}

/// A one-hour writer invite to `space` from `a`, bound to `b`.
async fn writer_invite(a: &Node, b: &Node, space: &str) -> String {
    a.space_invite(
        Some(space),
        Role::Writer,
        Duration::from_secs(3600),
        Some(b.node_id()),
    )
    .await
    .unwrap()
    .token
}

/// A connected to B, both writers of a space A created.
pub(super) async fn pair(da: &Path, db: &Path) -> (Node, Node, String) {
    let (a, b) = (networked(da).await, networked(db).await);
    let addr = b.listen_addrs().await.into_iter().next().unwrap();
    assert_eq!(a.connect(&addr).await.unwrap(), b.node_id());
    let space = a.space_create("team").await.unwrap().to_string();
    let token = writer_invite(&a, &b, &space).await;
    b.space_join(&token).await.unwrap();
    let s = space.clone();
    until(&b, async move |n: &Node| {
        n.space_list()
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == s && i.role == Some(Role::Writer))
    })
    .await;
    (a, b, space)
}

/// Waits until `check` holds, looking again after each change event.
pub(super) async fn until(node: &Node, check: impl AsyncFn(&Node) -> bool) {
    let mut feed = node.subscribe(SubscribeFilter::default());
    let wait = async {
        while !check(node).await {
            let _ = feed.recv().await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("condition reached in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_change_whose_commit_failed_arrives_without_a_reconnect() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space) = pair(da.path(), db.path()).await;
    let key = DocKey::new(&space, "notes", "n1").unwrap();
    let k = key.clone();
    on_actor(&b, move |actor| actor.docs.store().fail_commit_of = Some(k)).await;
    let value = json!({"t": "survives a failed commit"});
    a.put(&key, value.clone()).await.unwrap();
    let expected = Some(value);
    until(&b, async |n: &Node| n.get(&key).await.unwrap() == expected).await;
    // The failure did happen (the hook is spent), and B still has its one
    // connection to A: the change came by a retry, not a reconnect.
    assert!(on_actor(&b, |actor| actor.docs.store().fail_commit_of.is_none()).await);
    let peers = b.peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert!(peers[0].connected);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_a_remote_document_quarantines_it_and_the_node_goes_on() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space) = pair(da.path(), db.path()).await;
    let bad = DocKey::new(&space, "notes", "bad").unwrap();
    let k = bad.clone();
    on_actor(&b, move |actor| actor.docs.panic_on = Some(k)).await;
    let mut progress = b.sync_progress();
    a.put(&bad, json!({"t": "makes automerge panic"}))
        .await
        .unwrap();
    // The panic ends A's session (B's progress changes); wait for it.
    let k = bad.clone();
    let quarantined = async {
        loop {
            let k = k.clone();
            if on_actor(&b, move |actor| actor.docs.is_quarantined(&k)).await {
                break;
            }
            progress.changed().await.unwrap();
        }
    };
    tokio::time::timeout(WAIT, quarantined).await.unwrap();
    // B answers, writes and reads as before; only the document is refused.
    let good = DocKey::new(&space, "notes", "good").unwrap();
    b.put(&good, json!({"ok": true})).await.unwrap();
    assert_eq!(b.get(&good).await.unwrap(), Some(json!({"ok": true})));
    assert!(matches!(
        b.put(&bad, json!({})).await,
        Err(Error::Corrupt { .. })
    ));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_panic_loading_or_writing_a_document_costs_only_that_document() {
    let dir = tempfile::tempdir().unwrap();
    let node = super::open(dir.path()).await;
    let (bad, good) = (
        node.key("notes", "bad").unwrap(),
        node.key("notes", "good").unwrap(),
    );
    let heads = node.put(&bad, json!({"v": 1})).await.unwrap();
    node.put(&good, json!({"v": 1})).await.unwrap();
    // Out of memory, so the next read loads it from the store, and panics.
    let k = bad.clone();
    on_actor(&node, move |actor| {
        actor.docs.evict(&k);
        actor.docs.panic_on = Some(k);
    })
    .await;
    for result in [
        node.history(&bad).await.map(|_| ()),
        node.get_at(&bad, &heads).await.map(|_| ()),
        node.patch(&bad, json!({"v": 2})).await.map(|_| ()),
    ] {
        assert!(
            matches!(&result, Err(Error::Corrupt { reason, .. }) if reason.contains("quarantined")),
            "{result:?}"
        );
    }
    let mut sync = ExternalSync::default();
    assert!(node.external_sync(&bad, &mut sync, None).await.is_err());
    // Everything else works, and the quarantine holds its bound.
    node.patch(&good, json!({"v": 2})).await.unwrap();
    assert_eq!(node.history(&good).await.unwrap().len(), 2);
    let held = on_actor(&node, |actor| {
        let space = actor.spaces.first_id().unwrap();
        for i in 0..MAX_QUARANTINED + 10 {
            let key = DocKey::new(space.as_str(), "q", format!("{i}").as_str());
            actor.docs.quarantine(&key.unwrap());
        }
        actor.docs.quarantined_len()
    })
    .await;
    assert_eq!(held, MAX_QUARANTINED);
    // The oldest was released first: `bad` is usable again (and its panic
    // hook is gone).
    on_actor(&node, |actor| actor.docs.panic_on = None).await;
    assert_eq!(node.history(&bad).await.unwrap().len(), 1);
    node.close().await.unwrap();
}

#[tokio::test]
async fn a_membership_change_that_was_not_stored_is_an_error_and_counts_for_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = super::open(dir.path()).await;
    let space = node.space_create("team").await.unwrap().to_string();
    let me = node.node_id();
    let log = members_key(&space).unwrap();
    on_actor(&node, move |actor| {
        actor.docs.store().fail_commit_of = Some(log)
    })
    .await;
    // Revoking itself would leave the space without an admin, had it stuck.
    assert!(matches!(
        node.space_revoke(Some(&space), me).await,
        Err(Error::Store(_))
    ));
    let info = node.space_list().await.unwrap();
    let info = info.iter().find(|i| i.id == space).unwrap();
    assert_eq!(info.role, Some(Role::Admin));
    node.close().await.unwrap();
}

/// Offline A and B; A made a space and a writer invite for B, not used yet.
async fn invited(da: &Path, db: &Path) -> (Node, Node, String, String) {
    let (a, b) = (super::open(da).await, super::open(db).await);
    let space = a.space_create("team").await.unwrap().to_string();
    let token = writer_invite(&a, &b, &space).await;
    (a, b, space, token)
}

#[tokio::test]
async fn a_join_whose_entry_was_not_stored_is_an_error() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space, token) = invited(da.path(), db.path()).await;
    let log = members_key(&space).unwrap();
    on_actor(&b, move |actor| {
        actor.docs.store().fail_commit_of = Some(log)
    })
    .await;
    // The join's entry is the log's first change here: not stored, not joined.
    assert!(matches!(b.space_join(&token).await, Err(Error::Store(_))));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn an_inviter_is_trusted_with_the_log_only_and_not_for_long() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space, token) = invited(da.path(), db.path()).await;
    // B joins offline: its log holds only its own join.
    b.space_join(&token).await.unwrap();
    b.space_list().await.unwrap();
    let (inviter, stranger) = (a.node_id(), NodeId::from_bytes([7; 32]));
    let s = space.clone();
    let checks = on_actor(&b, move |actor| {
        let joined = actor.spaces.get(&s).unwrap();
        let (log, note) = (
            members_key(&s).unwrap(),
            DocKey::new(&s, "notes", "n").unwrap(),
        );
        let now = now_ms() / 1000;
        let later = now + PROVISIONAL_TRUST_SECS;
        [
            joined.role_at(inviter, now),
            joined.role_at(inviter, later),
            joined.role_at(stranger, now),
        ]
        .map(|r| r.map(|r| json!(r)))
        .into_iter()
        .chain([
            Some(json!(joined.refuses(inviter, &log, now))),
            Some(json!(joined.refuses(inviter, &note, now))),
            Some(json!(joined.refuses(inviter, &log, later))),
            Some(json!(joined.refuses(stranger, &log, now))),
        ])
        .collect::<Vec<Option<Value>>>()
    })
    .await;
    assert_eq!(
        checks,
        [
            Some(json!(Role::Admin)),
            None,
            None,
            Some(json!(false)),
            Some(json!(true)),
            Some(json!(true)),
            Some(json!(true)),
        ]
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A document `a` writes, with a sync state for `b` stored as a disconnect
/// would have saved it; returns the peers with stored states then.
async fn b_state_saved_on(a: &Node, b: &Node, space: &str) -> Vec<NodeId> {
    let key = DocKey::new(space, "notes", "n1").unwrap();
    a.put(&key, json!({"t": 1})).await.unwrap();
    let bid = b.node_id();
    on_actor(a, move |actor| {
        let state = automerge::sync::State::new().encode();
        actor
            .docs
            .store()
            .save_sync_states(bid, &[(key, state)])
            .unwrap();
    })
    .await;
    state_peers(a, space).await
}

/// Peers with sync states stored on `node` for `space`.
async fn state_peers(node: &Node, space: &str) -> Vec<NodeId> {
    let s = space.to_owned();
    on_actor(node, move |actor| {
        actor.docs.store().sync_state_peers(&s).unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_members_stored_sync_states_are_dropped() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, space) = pair(da.path(), db.path()).await;
    let bid = b.node_id();
    assert_eq!(b_state_saved_on(&a, &b, &space).await, vec![bid]);
    a.space_revoke(Some(&space), bid).await.unwrap();
    let left = state_peers(&a, &space).await;
    assert!(left.is_empty(), "states of a revoked member stay: {left:?}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A log change that keeps a member (here: a third node admitted) keeps
/// that member's stored sync states: only states of non-members go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_does_not_cost_the_others_their_sync_states() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, space) = pair(dirs[0].path(), dirs[1].path()).await;
    let bid = b.node_id();
    b_state_saved_on(&a, &b, &space).await;
    let c = networked(dirs[2].path()).await;
    let token = writer_invite(&a, &c, &space).await;
    c.space_join(&token).await.unwrap();
    let addr = a.listen_addrs().await.into_iter().next().unwrap();
    c.connect(&addr).await.unwrap();
    let (s, cid) = (space.clone(), c.node_id());
    until(&a, async move |n: &Node| {
        n.space_list()
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == s && i.members.contains_key(&cid))
    })
    .await;
    let left = state_peers(&a, &space).await;
    assert!(
        left.contains(&bid),
        "B's states went with C's join: {left:?}"
    );
    for n in [a, b, c] {
        n.close().await.unwrap();
    }
}

/// Listing and resolving spaces read the published view: they answer while
/// the writer actor is busy, and see a space as soon as its creation returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_are_read_without_waiting_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let node = super::open(dir.path()).await;
    let team = node.space_create("team").await.unwrap().to_string();
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let busy = Box::new(move |_: &mut Actor| {
        let _ = hold.recv_timeout(Duration::from_secs(30));
    });
    node.inner.writer.send(Command::Test(busy)).await.unwrap();
    let listed = tokio::time::timeout(Duration::from_secs(5), node.space_list())
        .await
        .expect("answered while the writer is busy")
        .unwrap();
    assert!(listed.iter().any(|s| s.id == team && s.name == "team"));
    assert_eq!(node.resolve_space("team").await.unwrap(), team);
    release.send(()).unwrap();
    node.close().await.unwrap();
}
