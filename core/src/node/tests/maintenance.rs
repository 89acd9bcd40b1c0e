//! Backups taken while writes go on, restores, the integrity check, and
//! leaving a space.

use std::time::Duration;

use serde_json::json;

use super::faults::on_actor;
use super::*;
use crate::auth::Role;
use crate::net::NetConfig;

const WAIT: Duration = Duration::from_secs(30);

async fn networked(dir: &Path) -> Node {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(NetConfig::local());
    Node::open(config).await.unwrap()
}

/// Waits until `check` holds, looking again after each change event (and
/// every 100 ms, as a leave or a reconnection raises none).
async fn until(node: &Node, check: impl AsyncFn(&Node) -> bool) {
    let mut feed = node.subscribe(SubscribeFilter::default());
    let wait = async {
        while !check(node).await {
            let _ = tokio::time::timeout(Duration::from_millis(100), feed.recv()).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("condition reached in time");
}

/// `b` joins `a`'s new space `name` as a writer (the invite carries `a`'s
/// addresses, so `b` keeps `a` dialed).
async fn shared(a: &Node, b: &Node, name: &str) -> String {
    let space = a.space_create(name).await.unwrap().to_string();
    let token = a
        .space_invite(
            Some(&space),
            Role::Writer,
            Duration::from_secs(3600),
            Some(b.node_id()),
        )
        .await
        .unwrap()
        .token;
    b.space_join(&token).await.unwrap();
    assert_eq!(
        b.wait_admission(Some(&space), WAIT).await.unwrap(),
        SpaceState::Member(Role::Writer)
    );
    space
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_restores_into_a_working_node() {
    let (src, dst, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let node = open(src.path()).await;
    for i in 0..50 {
        node.put(
            &node.key("notes", &format!("n{i}")).unwrap(),
            json!({"i": i}),
        )
        .await
        .unwrap();
    }
    // A writer keeps writing while the backup runs.
    let writer = node.clone();
    let writing = tokio::spawn(async move {
        for i in 0..300 {
            let key = writer.key("live", &format!("w{i}")).unwrap();
            writer.put(&key, json!({"i": i})).await.unwrap();
        }
    });
    let file = files.path().join("weft.backup");
    let info = node.backup(&file, false).await.unwrap();
    writing.await.unwrap();
    assert_eq!(info.node_id, node.node_id());
    assert!(info.documents >= 50, "{info:?}");
    assert_eq!(mode(&file), 0o600);
    // No temp file is left beside it, and it is not replaced unasked.
    assert_eq!(std::fs::read_dir(files.path()).unwrap().count(), 1);
    let e = node.backup(&file, false).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::PreconditionFailed, "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");
    node.backup(&file, true).await.unwrap();

    // Restoring into a held data dir is refused, and changes nothing.
    let e = Node::restore(src.path(), &file, true).await.unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    node.close().await.unwrap();

    let restored = Node::restore(dst.path(), &file, false).await.unwrap();
    assert_eq!(restored.node_id, info.node_id);
    assert_eq!(mode(&dst.path().join(store::DB_FILE)), 0o600);
    assert_eq!(mode(&dst.path().join(crate::identity::KEY_FILE)), 0o600);
    let names: Vec<String> = std::fs::read_dir(dst.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");
    let back = open(dst.path()).await;
    assert_eq!(back.node_id(), info.node_id);
    assert_eq!(back.default_space(), node.default_space());
    for i in 0..50 {
        let key = back.key("notes", &format!("n{i}")).unwrap();
        assert_eq!(back.get(&key).await.unwrap(), Some(json!({"i": i})));
    }
    back.check_integrity().await.unwrap();
    // It is a working replica: writable, with its history.
    let key = back.key("notes", "n0").unwrap();
    back.patch(&key, json!({"after": true})).await.unwrap();
    assert_eq!(back.history(&key).await.unwrap().len(), 2);
    // A replica is there now: replaced only when asked.
    back.close().await.unwrap();
    let e = Node::restore(dst.path(), &file, false).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    Node::restore(dst.path(), &file, true).await.unwrap();
    let again = open(dst.path()).await;
    assert_eq!(again.get(&key).await.unwrap(), Some(json!({"i": 0})));
    again.close().await.unwrap();
}

#[tokio::test]
async fn a_damaged_backup_is_refused_and_the_target_stays() {
    let (src, dst, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let node = open(src.path()).await;
    for i in 0..200 {
        let key = node.key("notes", &format!("n{i}")).unwrap();
        node.put(&key, json!({"text": "x".repeat(2000), "i": i}))
            .await
            .unwrap();
    }
    let file = files.path().join("b");
    node.backup(&file, false).await.unwrap();
    node.close().await.unwrap();
    let target = open(dst.path()).await;
    let mine = target.key("notes", "mine").unwrap();
    target.put(&mine, json!({"keep": 1})).await.unwrap();
    target.close().await.unwrap();
    let before = std::fs::read(dst.path().join(store::DB_FILE)).unwrap();

    // One from a newer Weft is refused too: it would not open here.
    let newer = files.path().join("newer");
    std::fs::copy(&file, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'future', 1, x'00', 0)",
            [],
        )
        .unwrap();
    let e = Node::restore(dst.path(), &newer, true).await.unwrap_err();
    assert!(e.to_string().contains("newer Weft"), "{e}");

    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2 / 4096 * 4096;
    bytes[mid..mid + 4096].fill(0xa5);
    std::fs::write(&file, &bytes).unwrap();
    let e = Node::restore(dst.path(), &file, true).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not a usable Weft backup"), "{e}");
    assert_eq!(
        std::fs::read(dst.path().join(store::DB_FILE)).unwrap(),
        before
    );
    let target = open(dst.path()).await;
    assert_eq!(target.get(&mine).await.unwrap(), Some(json!({"keep": 1})));
    target.close().await.unwrap();
}

#[tokio::test]
async fn the_integrity_check_finds_damaged_pages() {
    let (dir, copy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = open(dir.path()).await;
    for i in 0..200 {
        let key = node.key("notes", &format!("n{i}")).unwrap();
        node.put(&key, json!({"text": "y".repeat(2000), "i": i}))
            .await
            .unwrap();
    }
    assert_eq!(
        node.integrity_problems().await.unwrap(),
        Vec::<String>::new()
    );
    node.close().await.unwrap();
    let db = copy.path().join(store::DB_FILE);
    let mut bytes = std::fs::read(dir.path().join(store::DB_FILE)).unwrap();
    let last = bytes.len() - 4096;
    bytes[last - 4096 * 3..last].fill(0x5a);
    std::fs::write(&db, &bytes).unwrap();
    std::fs::copy(
        dir.path().join(crate::identity::KEY_FILE),
        copy.path().join(crate::identity::KEY_FILE),
    )
    .unwrap();
    let damaged = open(copy.path()).await;
    let problems = damaged.integrity_problems().await.unwrap();
    assert!(!problems.is_empty());
    assert!(damaged.check_integrity().await.is_err());
    damaged.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_space_removes_it_and_its_peer_is_ignored() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (networked(da.path()).await, networked(db.path()).await);
    let addr = b.listen_addrs().await.into_iter().next().unwrap();
    a.connect(&addr).await.unwrap();
    let team = shared(&a, &b, "team").await;
    let other = shared(&a, &b, "other").await;
    let (t1, o1) = (
        DocKey::new(&team, "notes", "t1").unwrap(),
        DocKey::new(&other, "notes", "o1").unwrap(),
    );
    a.put(&t1, json!({"t": 1})).await.unwrap();
    a.put(&o1, json!({"o": 1})).await.unwrap();
    until(&b, async |n: &Node| {
        n.get(&t1).await.unwrap().is_some() && n.get(&o1).await.unwrap().is_some()
    })
    .await;
    let mine = b.key("notes", "mine").unwrap();
    b.put(&mine, json!({"m": 1})).await.unwrap();

    // The personal space stays; an unknown one is not found.
    let e = b.space_leave(None::<&str>).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Forbidden, "{e}");
    let e = b.space_leave(Some("nope")).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::NotFound, "{e}");

    let removed = b.space_leave(Some(&team)).await.unwrap();
    assert!(
        removed >= 2,
        "the document and the membership log: {removed}"
    );
    assert!(b.space_list().await.unwrap().iter().all(|s| s.id != team));
    assert_eq!(b.get(&t1).await.unwrap(), None);
    let t = team.clone();
    let (items, states, joined) = on_actor(&b, move |actor| {
        let store = actor.docs.store();
        (
            store.items(&t).unwrap(),
            store.sync_state_peers(&t).unwrap(),
            store.joined_spaces().unwrap(),
        )
    })
    .await;
    assert!(items.is_empty(), "{items:?}");
    assert!(states.is_empty(), "{states:?}");
    assert!(joined.iter().all(|s| s.id != team));

    // A goes on writing in both; B (reconnected, A offering the team
    // again) takes the other space's change and nothing of the team's.
    let (t2, o2) = (
        DocKey::new(&team, "notes", "t2").unwrap(),
        DocKey::new(&other, "notes", "o2").unwrap(),
    );
    a.put(&t2, json!({"t": 2})).await.unwrap();
    a.put(&o2, json!({"o": 2})).await.unwrap();
    until(&b, async |n: &Node| n.get(&o2).await.unwrap().is_some()).await;
    a.put(&t1, json!({"t": 3})).await.unwrap();
    let o3 = DocKey::new(&other, "notes", "o3").unwrap();
    a.put(&o3, json!({"o": 3})).await.unwrap();
    until(&b, async |n: &Node| n.get(&o3).await.unwrap().is_some()).await;
    let t = team.clone();
    let items = on_actor(&b, move |actor| actor.docs.store().items(&t).unwrap()).await;
    assert!(items.is_empty(), "the left space came back: {items:?}");
    assert_eq!(b.get(&t2).await.unwrap(), None);
    assert_eq!(b.get(&mine).await.unwrap(), Some(json!({"m": 1})));
    assert!(b.peers().await.unwrap().iter().any(|p| p.connected));
    // A still has its copy.
    assert_eq!(a.get(&t1).await.unwrap(), Some(json!({"t": 3})));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn indexed_fields_are_bounded_and_asking_again_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    for i in 0..crate::store::MAX_JSON_INDEXES {
        node.create_index(&format!("f{i}")).await.unwrap();
    }
    let e = node.create_index("one_more").await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("the most it keeps"), "{e}");
    // A field already indexed is still fine at the bound.
    node.create_index("f0").await.unwrap();
    let indexes = node
        .sql("SELECT count(*) AS n FROM json_indexes")
        .await
        .unwrap();
    assert_eq!(indexes[0]["n"], crate::store::MAX_JSON_INDEXES as u64);
    node.close().await.unwrap();
}
