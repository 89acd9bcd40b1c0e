use serde_json::json;

use super::*;
use crate::DocError;
use crate::store::FilterOp;

async fn open(dir: &Path) -> Node {
    Node::open(Config::with_data_dir(dir)).await.unwrap()
}

#[tokio::test]
async fn crud_round_trip_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "n1").unwrap();
    assert_eq!(node.get(&key).await.unwrap(), None);
    node.put(&key, json!({"title": "a", "tags": ["x"]}))
        .await
        .unwrap();
    node.patch(&key, json!({"done": true, "tags": null}))
        .await
        .unwrap();
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"title": "a", "done": true}))
    );
    let id = node.node_id();
    node.close().await.unwrap();

    let node = open(dir.path()).await;
    assert_eq!(node.node_id(), id, "identity is stable across restarts");
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"title": "a", "done": true}))
    );
    node.delete(&key).await.unwrap();
    assert_eq!(node.get(&key).await.unwrap(), None);
    assert!(matches!(node.delete(&key).await, Err(Error::NotFound(_))));
    assert!(matches!(
        node.patch(&key, json!({})).await,
        Err(Error::NotFound(_))
    ));
    node.put(&key, json!({"title": "back"})).await.unwrap();
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"title": "back"}))
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn an_empty_object_is_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "blank").unwrap();
    let heads = node.put(&key, json!({})).await.unwrap();
    assert_eq!(heads.len(), 1, "the empty document has a change");
    assert_eq!(node.get(&key).await.unwrap(), Some(json!({})));
    let listed = node.query(&Query::new("notes")).await.unwrap();
    assert_eq!(listed.len(), 1);
    // Putting it again changes nothing and keeps the heads.
    assert_eq!(node.put(&key, json!({})).await.unwrap(), heads);
    node.close().await.unwrap();
    let node = open(dir.path()).await;
    assert_eq!(node.get(&key).await.unwrap(), Some(json!({})));
    node.close().await.unwrap();
}

#[tokio::test]
async fn runaway_sql_stops_at_the_row_cap_and_new_dirs_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new");
    let node = open(&data).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
    match node.sql(endless).await {
        Err(Error::Sql(m)) => assert!(m.contains("LIMIT"), "{m}"),
        other => panic!("expected the row cap, got {other:?}"),
    }
    let capped = format!("{endless} LIMIT {}", crate::store::MAX_SQL_ROWS);
    assert_eq!(
        node.sql(&capped).await.unwrap().len(),
        crate::store::MAX_SQL_ROWS
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn sql_refuses_pragmas_under_explain_and_writes_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "a").unwrap();
    node.put(&key, json!({"v": 1})).await.unwrap();
    for statement in [
        "EXPLAIN PRAGMA query_only=0",
        "EXPLAIN PRAGMA hard_heap_limit=300000",
        "EXPLAIN INSERT INTO docs (space) VALUES ('x')",
        "EXPLAIN ATTACH ':memory:' AS x",
    ] {
        match node.sql(statement).await {
            Err(Error::Sql(m)) => assert!(m.contains("not allowed"), "{statement}: {m}"),
            other => panic!("{statement}: expected a refusal, got {other:?}"),
        }
    }
    // The heap limit is unset, so writes still succeed; the read pool that
    // `get` and `query` use was never reached.
    node.put(&key, json!({"v": 2})).await.unwrap();
    let stored = node.inner.reader.get(&key).unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap(),
        json!({"v": 2})
    );
    assert!(matches!(
        node.sql("WITH x AS (SELECT 1) DELETE FROM docs").await,
        Err(Error::Sql(_))
    ));
    assert_eq!(node.query(&Query::new("notes")).await.unwrap().len(), 1);
    node.close().await.unwrap();
}

#[tokio::test]
async fn runaway_sql_times_out_and_close_does_not_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let short = std::time::Duration::from_millis(100);
    assert!(matches!(
        node.sql_with_timeout(endless, short).await,
        Err(Error::Timeout(t)) if t == short
    ));
    let running = tokio::spawn({
        let node = node.clone();
        async move { node.sql(endless).await }
    });
    let mut executing = node.inner.reader.sql_executing();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        executing.wait_for(|n| *n == 1),
    )
    .await
    .unwrap()
    .unwrap();
    // Far less than the statement's 10 s deadline.
    tokio::time::timeout(std::time::Duration::from_secs(5), node.close())
        .await
        .expect("close waited for the runaway statement")
        .unwrap();
    assert!(matches!(running.await.unwrap(), Err(Error::Closed)));
    open(dir.path()).await.close().await.unwrap();
}

#[tokio::test]
async fn second_open_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let err = Node::open(Config::with_data_dir(dir.path()))
        .await
        .unwrap_err();
    match &err {
        Error::Locked { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id()))
    );
    node.close().await.unwrap();
    open(dir.path()).await.close().await.unwrap();
}

#[tokio::test]
async fn history_and_get_at() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "h").unwrap();
    let v1 = node.put(&key, json!({"v": 1})).await.unwrap();
    node.put(&key, json!({"v": 2})).await.unwrap();
    // An identical put records nothing.
    let same = node.put(&key, json!({"v": 2})).await.unwrap();
    let history = node.history(&key).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].author, Some(node.node_id()));
    assert_eq!(vec![history[1].hash.clone()], same);
    assert!(history[0].time > 1_600_000_000);
    assert_eq!(node.get_at(&key, &v1).await.unwrap(), Some(json!({"v": 1})));
    let bogus = vec!["00".repeat(32)];
    assert!(matches!(
        node.get_at(&key, &bogus).await,
        Err(Error::UnknownHeads(_))
    ));
    assert!(matches!(
        node.get_at(&key, &["xyz".into()]).await,
        Err(Error::UnknownHeads(_))
    ));
    let missing = node.key("notes", "none").unwrap();
    assert!(matches!(
        node.history(&missing).await,
        Err(Error::NotFound(_))
    ));
    node.close().await.unwrap();
}

#[tokio::test]
async fn queries_filter_order_and_limit_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let writes = (0u32..20)
        .map(|i| {
            let key = node.key("tasks", &format!("t{i:02}")).unwrap();
            Write::Put(
                key,
                json!({"n": i, "done": i.is_multiple_of(2), "meta": {"owner": format!("u{}", i % 3)}}),
            )
        })
        .collect();
    node.batch(writes).await.unwrap();
    node.put(&node.key("other", "x").unwrap(), json!({"n": 1}))
        .await
        .unwrap();

    let q = Query::new("tasks")
        .eq("done", true)
        .filter("n", FilterOp::Ge, 10)
        .order_by("n", true)
        .limit(3);
    let ids: Vec<_> = node
        .query(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["t18", "t16", "t14"]);
    let owned = node
        .query(&Query::new("tasks").eq("meta.owner", "u1"))
        .await
        .unwrap();
    assert_eq!(owned.len(), 7);
    assert_eq!(owned[0].json["n"], 1);
    assert!(
        node.query(&Query::new("tasks").space("elsewhere"))
            .await
            .unwrap()
            .is_empty()
    );

    node.create_index("meta.owner").await.unwrap();
    node.create_index("meta.owner").await.unwrap();
    let name = node
        .sql("SELECT name FROM json_indexes WHERE field = 'meta.owner'")
        .await
        .unwrap();
    let name = name[0]["name"].as_str().unwrap().to_owned();
    // INDEXED BY fails ("no query solution") unless the index expression
    // matches the one queries compile to.
    let plan = node
        .sql(&format!(
            "EXPLAIN QUERY PLAN SELECT id, json FROM docs INDEXED BY \"{name}\" WHERE space = 'personal' \
             AND collection = 'tasks' AND deleted = 0 AND json_extract(json, {}) = 'u1' ORDER BY id",
            store::path_literal("meta.owner").unwrap()
        ))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&plan).unwrap().contains("<expr>=?"),
        "{plan:?}"
    );
    assert_eq!(
        node.query(&Query::new("tasks").eq("meta.owner", "u1"))
            .await
            .unwrap()
            .len(),
        7
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn sql_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.put(
        &node.key("notes", "a").unwrap(),
        json!({"title": "t", "n": 1.5}),
    )
    .await
    .unwrap();
    let rows = node
        .sql("SELECT id, json_extract(json, '$.title') AS title, json_extract(json, '$.n') AS n, NULL AS z FROM documents")
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Array(rows.into_iter().map(Value::Object).collect()),
        json!([{"id": "a", "title": "t", "n": 1.5, "z": null}])
    );
    for statement in [
        "DELETE FROM docs",
        "WITH x AS (SELECT 1) DELETE FROM docs",
        "SELECT 1; DELETE FROM docs",
        "PRAGMA query_only = 0",
    ] {
        assert!(
            matches!(node.sql(statement).await, Err(Error::Sql(_))),
            "{statement}"
        );
    }
    assert!(matches!(
        node.sql("SELEC nonsense").await,
        Err(Error::Sql(_))
    ));
    assert_eq!(
        node.sql("SELECT count(*) AS n FROM documents")
            .await
            .unwrap()[0]["n"],
        1
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_an_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "keep").unwrap();
    node.put(&key, json!({"title": "safe"})).await.unwrap();

    assert!(matches!(
        crate::parse_object("{not json"),
        Err(DocError::InvalidJson(_))
    ));
    assert!(matches!(
        node.put(&key, json!([1, 2])).await,
        Err(Error::Document(DocError::NotAnObject(_)))
    ));
    assert!(matches!(
        node.put(&key, json!("text")).await,
        Err(Error::Document(DocError::NotAnObject(_)))
    ));
    let huge = "x".repeat(crate::MAX_DOC_BYTES + 1);
    assert!(matches!(
        node.put(&key, json!({"title": huge})).await,
        Err(Error::Document(DocError::TooLarge { .. }))
    ));
    assert!(matches!(
        node.key("notes", "bad\u{0}id"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(node.key("no tes", "a"), Err(Error::InvalidKey(_))));
    assert!(matches!(
        node.put(&key, json!({"_weft_deleted": 1})).await,
        Err(Error::Document(DocError::ReservedField(_)))
    ));

    // A batch is all or nothing: its failing last write undoes the first.
    let other = node.key("notes", "other").unwrap();
    let missing = node.key("notes", "missing").unwrap();
    let err = node
        .batch(vec![
            Write::Put(other.clone(), json!({"a": 1})),
            Write::Put(key.clone(), json!({"title": "changed"})),
            Write::Patch(missing, json!({"a": 1})),
        ])
        .await
        .unwrap_err();
    // The error names the failing write and keeps its kind.
    assert_eq!(err.batch_index(), Some(2));
    assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    assert!(err.to_string().contains("notes/missing"), "{err}");
    assert!(matches!(err, Error::Batch { source, .. } if matches!(*source, Error::NotFound(_))));
    // Checks made before the actor name the write too.
    let err = node
        .batch(vec![
            Write::Put(other.clone(), json!({"a": 1})),
            Write::Put(other.clone(), json!([1])),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.batch_index(), Some(1));
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    // A batch over the bound is refused whole, before any work.
    let too_many = (0..=super::MAX_BATCH)
        .map(|_| Write::Delete(other.clone()))
        .collect();
    let err = node.batch(too_many).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(node.get(&other).await.unwrap(), None);
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"title": "safe"}))
    );
    assert_eq!(node.history(&key).await.unwrap().len(), 1);
    node.put(&key, json!({"title": "still writable"}))
        .await
        .unwrap();
    node.close().await.unwrap();
    let node = open(dir.path()).await;
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"title": "still writable"}))
    );
    assert_eq!(node.get(&other).await.unwrap(), None);
    node.check_integrity().await.unwrap();
    node.close().await.unwrap();
}

#[tokio::test]
async fn compaction_keeps_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        compact_after_chunks: 4,
        doc_cache_size: 1, // force reloads from storage between writes
        ..Config::with_data_dir(dir.path())
    };
    let node = Node::open(config.clone()).await.unwrap();
    let key = node.key("notes", "c").unwrap();
    let spare = node.key("notes", "spare").unwrap();
    for i in 0..23 {
        node.put(&key, json!({"i": i, "body": format!("line {i}")}))
            .await
            .unwrap();
        node.put(&spare, json!({"i": i})).await.unwrap();
    }
    let before = node.history(&key).await.unwrap();
    assert_eq!(before.len(), 23);
    let chunks = node
        .sql("SELECT count(*) AS n FROM chunks JOIN docs USING (doc) WHERE docs.id = 'c'")
        .await
        .unwrap();
    let n = chunks[0]["n"].as_i64().unwrap();
    assert!((1..=4).contains(&n), "chunks were compacted: {n}");
    node.close().await.unwrap();

    let node = Node::open(config).await.unwrap();
    let after = node.history(&key).await.unwrap();
    assert_eq!(before, after, "compaction lost or altered a change");
    assert_eq!(
        node.get(&key).await.unwrap(),
        Some(json!({"i": 22, "body": "line 22"}))
    );
    assert_eq!(
        node.get_at(&key, &[before[5].hash.clone()])
            .await
            .unwrap()
            .unwrap()["i"],
        5
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn a_corrupted_chunk_is_reported_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let bad = node.key("notes", "bad").unwrap();
    let good = node.key("notes", "good").unwrap();
    node.put(&bad, json!({"t": "will break"})).await.unwrap();
    node.put(&good, json!({"t": "fine"})).await.unwrap();
    node.close().await.unwrap();

    // Damage the stored Automerge bytes of one document behind Weft's back.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join(store::DB_FILE).display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE chunks SET data = X'00112233445566778899' WHERE doc = (SELECT doc FROM docs WHERE id = 'bad')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    let node = open(dir.path()).await;
    let err = node.put(&bad, json!({"t": "x"})).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("notes/bad"), "{err}");
    assert!(matches!(
        node.history(&bad).await,
        Err(Error::Corrupt { .. })
    ));
    // Its last materialized state stays readable; other documents work.
    assert_eq!(
        node.get(&bad).await.unwrap(),
        Some(json!({"t": "will break"}))
    );
    node.put(&good, json!({"t": "still fine"})).await.unwrap();
    assert_eq!(
        node.get(&good).await.unwrap(),
        Some(json!({"t": "still fine"}))
    );
    node.close().await.unwrap();
}

#[tokio::test]
async fn change_feed_reports_committed_local_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut all = node.subscribe(SubscribeFilter::default());
    let mut notes = node.subscribe(SubscribeFilter {
        space: None,
        collection: Some("notes".into()),
    });
    let task = node.key("tasks", "t").unwrap();
    let note = node.key("notes", "n").unwrap();
    node.put(&task, json!({"a": 1})).await.unwrap();
    let heads = node.put(&note, json!({"a": 1})).await.unwrap();
    node.delete(&note).await.unwrap();

    let first = all.recv().await.unwrap();
    assert_eq!(
        (first.key.clone(), first.origin, first.deleted),
        (task, Origin::Local, false)
    );
    let e = notes.recv().await.unwrap();
    assert_eq!((e.key.clone(), e.heads.clone()), (note.clone(), heads));
    let e = notes.recv().await.unwrap();
    assert!(e.deleted);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["collection"], "notes");
    assert_eq!(json["origin"], "local");
    node.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_writers_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let node = node.clone();
        tasks.spawn(async move {
            let key = node.key("bulk", &format!("d{}", i % 100)).unwrap();
            node.patch(&key, json!({format!("f{i}"): i}))
                .await
                .or(node.put(&key, json!({format!("f{i}"): i})).await)
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let rows = node.query(&Query::new("bulk")).await.unwrap();
    assert_eq!(rows.len(), 100);
    node.close().await.unwrap();
}

#[tokio::test]
async fn spaces_invites_and_local_enforcement() {
    use crate::auth::{AuthError, Role};
    use std::time::Duration;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path()).await;
    let b = open(db.path()).await;

    // Every device starts with a personal space where it is the admin.
    let spaces = a.space_list().await.unwrap();
    assert_eq!(spaces.len(), 1);
    assert!(spaces[0].default && spaces[0].name == "personal");
    assert_eq!(spaces[0].id, a.default_space());
    assert_eq!(spaces[0].role, Some(Role::Admin));

    let team = a.space_create("team").await.unwrap().to_string();
    assert_eq!(a.resolve_space("team").await.unwrap(), team);
    a.put(&DocKey::new(&team, "notes", "n").unwrap(), json!({"t": 1}))
        .await
        .unwrap();

    // Writes need a space this node is in, and `_weft` is Weft's own.
    let stranger = crate::auth::SpaceKey::generate().unwrap().id().to_string();
    assert!(matches!(
        a.put(&DocKey::new(&stranger, "notes", "n").unwrap(), json!({}))
            .await,
        Err(Error::UnknownSpace(_))
    ));
    assert!(matches!(
        a.put(&DocKey::new(&team, "_weft", "members").unwrap(), json!({}))
            .await,
        Err(Error::InvalidKey(_))
    ));

    // Tokens: bound to b, a day long.
    let day = Duration::from_secs(86_400);
    let token = a
        .space_invite(Some("team"), Role::Reader, day, Some(b.node_id()))
        .await
        .unwrap();
    let for_a = a
        .space_invite(Some("team"), Role::Reader, day, Some(a.node_id()))
        .await
        .unwrap();
    assert!(matches!(
        b.space_join(&for_a).await,
        Err(Error::Auth(AuthError::WrongNode(_)))
    ));
    // An invite a's key signed that expired a minute ago.
    let a_key = crate::identity::Identity::load_or_create(da.path()).unwrap();
    let past = docs::now_ms() / 1000 - 60;
    let expired = crate::auth::Invite::issue(
        a_key.signing_key(),
        team.parse().unwrap(),
        "team",
        Role::Reader,
        past,
        vec![],
        None,
        &[],
    )
    .unwrap()
    .to_token();
    assert!(matches!(
        b.space_join(&expired).await,
        Err(Error::Auth(AuthError::Expired { .. }))
    ));
    let mut forged = token.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    assert!(matches!(b.space_join(&forged).await, Err(Error::Auth(_))));
    assert!(matches!(
        b.space_join("not a token").await,
        Err(Error::Auth(AuthError::InvalidToken(_)))
    ));

    let joined = b.space_join(&token).await.unwrap().to_string();
    assert_eq!(joined, team);
    // Offline, b holds only its own entry: no genesis yet, so no role and no writes.
    let info = b
        .space_list()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == team)
        .unwrap();
    assert_eq!((info.name.as_str(), info.role), ("team", None));
    assert!(matches!(
        b.put(&DocKey::new(&team, "notes", "x").unwrap(), json!({}))
            .await,
        Err(Error::Forbidden(_))
    ));
    // Only admins invite or revoke.
    assert!(matches!(
        b.space_invite(Some(&team), Role::Admin, day, None).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        a.space_invite(Some("nope"), Role::Reader, day, None).await,
        Err(Error::UnknownSpace(_))
    ));
    a.space_revoke(Some(&team), b.node_id()).await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Spaces and the default survive a restart.
    let a = open(da.path()).await;
    assert_eq!(a.space_list().await.unwrap().len(), 2);
    assert_eq!(
        a.resolve_space("personal").await.unwrap(),
        a.default_space()
    );
    a.close().await.unwrap();
}

#[test]
fn proofs_stay_short_and_about_the_prover() {
    use crate::auth::{Action, Entry, Role, SpaceKey};
    use ed25519_dalek::SigningKey;
    let space = SpaceKey::generate().unwrap();
    let admin = SigningKey::from_bytes(&[1; 32]);
    let admin_id = NodeId::from_bytes(admin.verifying_key().to_bytes());
    let mut log = vec![Entry::create(&space, admin_id, "team", 1).encode()];
    // An admin that granted forty roles proves itself with its genesis alone.
    for n in 0..40u8 {
        let grant = Action::Grant {
            node: NodeId::from_bytes([n; 32]),
            role: Role::Reader,
        };
        log.push(Entry::sign(&admin, space.id(), grant, &[], 2 + i64::from(n)).encode());
    }
    assert_eq!(crate::auth::own_entries(&log, admin_id).len(), 1);
    // A node whose role changed many times sends only the latest entries.
    let member = NodeId::from_bytes([7; 32]);
    for t in 0..30 {
        let grant = Action::Grant {
            node: member,
            role: Role::Writer,
        };
        log.push(Entry::sign(&admin, space.id(), grant, &[], 100 + t).encode());
    }
    let proof = crate::auth::own_entries(&log, member);
    assert_eq!(proof.len(), 16);
    assert!(
        proof
            .iter()
            .all(|b| Entry::decode(b).unwrap().time() >= 114)
    );
}

#[test]
fn a_squatted_log_field_does_not_block_the_entry() {
    let mut log =
        crate::doc::Document::new(crate::doc::actor_for(NodeId::from_bytes([1; 32]), [0; 8]));
    let entry = b"an entry".to_vec();
    let hash: [u8; 32] =
        sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &entry)).into();
    // A peer fills the field first with other bytes.
    log.add_log_entries(&[(hash, b"squat".to_vec())], 1)
        .unwrap();
    assert!(log.log_entries().is_empty());
    log.add_log_entries(&[(hash, entry.clone())], 2).unwrap();
    assert_eq!(log.log_entries(), vec![entry]);
}

#[tokio::test]
async fn an_injected_commit_failure_fails_one_write_group() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let key = node.key("notes", "f").unwrap();
    node.commit_faults().fail_next(1);
    match node.put(&key, json!({"v": 1})).await {
        Err(Error::Store(store::StoreError::WriteFailed(m))) => assert!(m.contains("full"), "{m}"),
        other => panic!("expected a failed commit, got {other:?}"),
    }
    assert_eq!(node.get(&key).await.unwrap(), None);
    node.put(&key, json!({"v": 2})).await.unwrap();
    assert_eq!(node.get(&key).await.unwrap(), Some(json!({"v": 2})));
    node.close().await.unwrap();
}
mod catalog;
mod conditional;
mod faults;
mod feed;
mod maintenance;
mod observe;
