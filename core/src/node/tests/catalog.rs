//! The facade's listings, counts, invitations and space references.

use std::time::Duration;

use serde_json::json;

use super::open;
use crate::auth::Role;
use crate::error::Error;
use crate::node::{Invitation, Node, SpaceRef, SpaceState};

#[tokio::test]
async fn collections_ids_and_keys_list_live_user_documents_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let team = node.space_create("team").await.unwrap().to_string();
    for (space, collection, id) in [
        (None, "notes", "b"),
        (None, "notes", "a"),
        (None, "notes", "c"),
        (None, "tasks", "x"),
        (None, "gone", "y"),
        (Some(team.as_str()), "notes", "t"),
    ] {
        let space = node.resolve_space(space).await.unwrap();
        let key = crate::DocKey::new(&space, collection, id).unwrap();
        node.put(&key, json!({"v": id})).await.unwrap();
    }
    node.delete(&node.key("gone", "y").unwrap()).await.unwrap();

    // A deleted document's collection is gone; Weft's own `_weft` is never listed.
    assert_eq!(
        node.collections(SpaceRef::Default).await.unwrap(),
        ["notes", "tasks"]
    );
    assert_eq!(node.collections(&team).await.unwrap(), ["notes"]);

    let first = node.list_ids("default", "notes", None, 2).await.unwrap();
    assert_eq!(first.items, ["a", "b"]);
    assert_eq!(first.next.as_deref(), Some("b"));
    let rest = node
        .list_ids("default", "notes", first.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!((rest.items, rest.next), (vec!["c".to_owned()], None));
    // A limit past the cap is cut to it, never an unbounded read.
    let all = node
        .list_ids("team", "notes", None, u32::MAX)
        .await
        .unwrap();
    assert_eq!((all.items, all.next), (vec!["t".to_owned()], None));

    assert_eq!(node.count(SpaceRef::Default, None).await.unwrap(), 4);
    assert_eq!(node.count("default", Some("notes")).await.unwrap(), 3);
    assert_eq!(node.count(&team, None).await.unwrap(), 1);
    assert_eq!(node.status().await.unwrap().documents, 5);

    // Every space, in key order, paged by the last key.
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = node.list_keys(after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last().cloned() else {
            break;
        };
        keys.extend(page);
        after = Some(last);
    }
    assert_eq!(keys.len(), 5);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert!(keys.iter().all(|k| k.collection() != "_weft"));

    // Weft's own documents are listed nowhere.
    let system = node.list_ids("default", "_weft", None, 10).await.unwrap();
    assert!(system.items.is_empty(), "{system:?}");
    // Bad names are errors, not empty pages.
    assert!(matches!(
        node.list_ids("default", "", None, 10).await,
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        node.collections("nope").await,
        Err(Error::UnknownSpace(_))
    ));
    node.close().await.unwrap();
}

#[tokio::test]
async fn a_replica_exists_once_opened() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!Node::replica_exists(dir.path()));
    let node = open(dir.path()).await;
    node.close().await.unwrap();
    assert!(Node::replica_exists(dir.path()));
}

#[tokio::test]
async fn spaces_resolve_by_id_name_or_the_default_word_and_default_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let team = node.space_create("team").await.unwrap();
    let default = node.default_space().to_owned();
    assert_eq!(node.resolve_space("default").await.unwrap(), default);
    assert_eq!(node.resolve_space(None::<&str>).await.unwrap(), default);
    assert_eq!(node.resolve_space("team").await.unwrap(), team.to_string());
    assert_eq!(node.resolve_space(team).await.unwrap(), team.to_string());
    assert_eq!(
        node.resolve_space(team.to_string()).await.unwrap(),
        team.to_string()
    );
    assert!(matches!(
        node.space_create("default").await,
        Err(Error::InvalidInput(_))
    ));
    node.space_create("team").await.unwrap();
    match node.resolve_space("team").await {
        Err(Error::UnknownSpace(m)) => assert!(m.contains("use the id"), "{m}"),
        other => panic!("two spaces named team: {other:?}"),
    }
    assert_eq!(
        node.space_state(team).await.unwrap(),
        SpaceState::Member(Role::Admin)
    );
    assert_eq!(SpaceState::Member(Role::Admin).name(), "admin");
    node.close().await.unwrap();
}

#[tokio::test]
async fn an_invitation_says_what_its_token_holds() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let invite = node
        .space_invite(
            SpaceRef::Default,
            Role::Reader,
            Duration::from_secs(60),
            None,
        )
        .await
        .unwrap();
    assert_eq!(invite.space.to_string(), node.default_space());
    assert_eq!((invite.role, invite.node), (Role::Reader, None));
    assert_eq!(invite.inviter, node.node_id());
    let now = crate::node::docs::now_ms() / 1000;
    assert!(
        (now + 55..=now + 61).contains(&invite.expires_at),
        "{}",
        invite.expires_at
    );
    assert_eq!(Invitation::from_token(&invite.token).unwrap(), invite);
    assert_eq!(invite.to_string(), invite.token);
    assert!(matches!(
        Invitation::from_token("weft-invite-nonsense"),
        Err(Error::Auth(_))
    ));
    node.close().await.unwrap();
}
