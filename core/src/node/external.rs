//! Automerge sync with clients outside Weft's own protocol, such as
//! automerge-repo apps talking to a daemon. The client is trusted as far as
//! the node itself is (it holds the local API token): its changes are stored
//! like a peer's, pushed to Weft peers, and refused in spaces this node may
//! not write.

use automerge::sync;

use super::docs::Docs;
use super::events::Origin;
use super::spaces::Spaces;
use crate::auth::{Role, SYSTEM_COLLECTION};
use crate::doc::ChangePolicy;
use crate::error::{Error, Result};
use crate::key::DocKey;

/// The sync state of one document with one external client: what the client
/// is known to have. Keep one per (client, document) for the connection's life.
#[derive(Debug, Default)]
pub struct ExternalSync {
    state: sync::State,
}

/// What one external sync step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalReply {
    /// The sync message to send back, if there is anything to say.
    pub message: Option<Vec<u8>>,
    /// Whether the document exists here (after the step).
    pub exists: bool,
    /// Whether the client's message changed the document.
    pub changed: bool,
    /// Changes of the client's that were dropped because this node may not
    /// write the document's space.
    pub refused_changes: usize,
}

pub(crate) struct ExternalCommand {
    pub key: DocKey,
    pub sync: Box<ExternalSync>,
    pub message: Option<Vec<u8>>,
    /// The state comes back whatever happened, so an error does not make
    /// the next step start over.
    pub reply: tokio::sync::oneshot::Sender<(Box<ExternalSync>, Result<ExternalReply>)>,
}

/// One step with a client, answered once the group it is part of is
/// committed: its changes are stored with the writes queued alongside it.
pub(super) fn external_sync(docs: &mut Docs, spaces: &mut Spaces, cmd: ExternalCommand) {
    let ExternalCommand {
        key,
        mut sync,
        message,
        reply,
    } = cmd;
    let outcome = match step(docs, spaces, &key, &mut sync, message.as_deref()) {
        Ok(outcome) => outcome,
        // Nothing staged: nothing to wait for.
        Err(e) => {
            let _ = reply.send((sync, Err(e)));
            return;
        }
    };
    let answer = move |stored: std::result::Result<(), String>| {
        let result = match stored {
            Ok(()) => outcome,
            Err(_) => {
                // Not stored: the client must not believe we hold its
                // changes (nor that it has ours), so the next step starts
                // over and it resends them.
                sync.state = sync::State::new();
                Err(Error::Store(crate::store::StoreError::WriteFailed(
                    format!("storing the client's changes to {key} failed"),
                )))
            }
        };
        let _ = reply.send((sync, result));
    };
    docs.on_commit(Box::new(answer));
}

/// Applies the client's message like a peer's (the same change policy and
/// Automerge receive path, under the panic guard) and stages what changed.
/// An error outside staged nothing and is answered at once; the result
/// inside is answered once the group is committed.
fn step(
    docs: &mut Docs,
    spaces: &mut Spaces,
    key: &DocKey,
    sync: &mut ExternalSync,
    message: Option<&[u8]>,
) -> Result<Result<ExternalReply>> {
    if key.collection() == SYSTEM_COLLECTION {
        return Err(Error::Forbidden(
            "membership logs are written through spaces, not synced from clients".into(),
        ));
    }
    // Only a node that may write the space takes a client's changes;
    // otherwise the client still receives the document, and the sync
    // state says read-only (Automerge's flag), so a client that knows
    // the flag stops sending changes instead of resending them.
    let may_write = spaces.require(docs, key.space(), Role::Writer).is_ok();
    let policy = ChangePolicy::for_key(key, may_write);
    let read_only = policy == ChangePolicy::ReadOnly;
    if sync.state.read_only != read_only {
        sync.state.set_read_only(read_only);
    }
    docs.load(key)?;
    // The client's bytes go through Automerge: a panic there costs this
    // document (quarantined), not the actor.
    let stepped = docs.guarded(key, |d| {
        let doc = d.loaded(key);
        let received =
            message.map(|bytes| doc.receive_sync_message(&mut sync.state, bytes, policy));
        let reply = doc.generate_sync_message(&mut sync.state);
        (received, reply, !doc.is_empty())
    });
    let (received, reply, exists) = stepped?;
    let mut changed = false;
    let mut refused = None;
    let mut refused_changes = 0;
    if let Some(received) = received {
        changed = received.changed;
        refused = received.error;
        refused_changes = received.refused_changes;
        if received.refused_changes > 0 {
            tracing::info!(%key, changes = received.refused_changes, "dropped a client's changes: this node may not write the space");
        }
    }
    if changed {
        // Whatever Automerge accepted is valid: store it even when the
        // rest of the message was refused.
        docs.stage(key, None, Origin::Remote)?;
    }
    if let Some(e) = refused {
        // With nothing staged, nothing to wait for: the client hears at once.
        return if changed {
            Ok(Err(e.into()))
        } else {
            Err(e.into())
        };
    }
    Ok(Ok(ExternalReply {
        message: reply,
        exists,
        changed,
        refused_changes,
    }))
}

#[cfg(test)]
mod tests {
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ReadDoc};
    use serde_json::json;

    use super::*;
    use crate::{Config, Node};

    /// One round: the client's message, if any, to the node and the
    /// node's answer back; whether the client said anything, and the reply.
    async fn round(
        node: &Node,
        key: &DocKey,
        ours: &mut ExternalSync,
        client: &mut AutoCommit,
        theirs: &mut sync::State,
    ) -> (bool, Result<ExternalReply>) {
        let out = client
            .sync()
            .generate_sync_message(theirs)
            .map(sync::Message::encode);
        let reply = node.external_sync(key, ours, out.as_deref()).await;
        if let Ok(ExternalReply {
            message: Some(m), ..
        }) = &reply
        {
            client
                .sync()
                .receive_sync_message(theirs, sync::Message::decode(m).unwrap())
                .unwrap();
        }
        (out.is_some(), reply)
    }

    /// Runs sync rounds between a client document and the node until
    /// neither side has anything to say.
    async fn converge(node: &Node, key: &DocKey, client: &mut AutoCommit) -> usize {
        let mut ours = ExternalSync::default();
        let mut theirs = sync::State::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 20, "sync does not settle");
            let (said, reply) = round(node, key, &mut ours, client, &mut theirs).await;
            if !said && reply.unwrap().message.is_none() {
                return rounds;
            }
        }
    }

    /// A node, a document key of its default space, and a client document
    /// with one change of its own.
    async fn open_with_client() -> (tempfile::TempDir, Node, DocKey, AutoCommit) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(Config::with_data_dir(dir.path())).await.unwrap();
        let key = node.key("automerge", "doc1").unwrap();
        let mut client = AutoCommit::new();
        client.put(ROOT, "title", "from the client").unwrap();
        client.commit();
        (dir, node, key, client)
    }

    #[tokio::test]
    async fn a_client_document_syncs_both_ways() {
        let (dir, node, key, mut client) = open_with_client().await;
        converge(&node, &key, &mut client).await;
        assert_eq!(
            node.get(&key).await.unwrap(),
            Some(json!({"title": "from the client"}))
        );
        node.patch(&key, json!({"done": true})).await.unwrap();
        converge(&node, &key, &mut client).await;
        assert_eq!(
            client.get(ROOT, "done").unwrap().map(|(v, _)| v.as_bool()),
            Some(Some(true))
        );
        // The client's change survives a restart: it was stored.
        node.close().await.unwrap();
        let node = Node::open(Config::with_data_dir(dir.path())).await.unwrap();
        assert_eq!(
            node.get(&key).await.unwrap(),
            Some(json!({"title": "from the client", "done": true}))
        );
        node.close().await.unwrap();
    }

    /// A client's change is answered only once stored: a failed commit is
    /// an error, and the exchange that follows stores it after all.
    #[tokio::test]
    async fn a_client_change_whose_commit_failed_is_sent_again() {
        let (_dir, node, key, mut client) = open_with_client().await;
        let mut ours = ExternalSync::default();
        let mut theirs = sync::State::new();
        node.commit_faults().fail_next(1);
        let mut failed = None;
        for _ in 0..4 {
            let (_, reply) = round(&node, &key, &mut ours, &mut client, &mut theirs).await;
            if let Err(e) = reply {
                failed = Some(e);
                break;
            }
        }
        assert!(matches!(failed, Some(Error::Store(_))), "{failed:?}");
        assert_eq!(node.get(&key).await.unwrap(), None);
        // The client starts over too, as after any error on its connection.
        converge(&node, &key, &mut AutoCommit::load(&client.save()).unwrap()).await;
        assert_eq!(
            node.get(&key).await.unwrap(),
            Some(json!({"title": "from the client"}))
        );
        node.close().await.unwrap();
    }

    #[tokio::test]
    async fn garbage_and_system_documents_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(Config::with_data_dir(dir.path())).await.unwrap();
        let key = node.key("automerge", "doc1").unwrap();
        let mut state = ExternalSync::default();
        let err = node
            .external_sync(&key, &mut state, Some(b"not a sync message"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Document(_)), "{err}");
        assert_eq!(node.get(&key).await.unwrap(), None);
        // Asking for an unknown document: it does not exist, nothing stored.
        let r = node.external_sync(&key, &mut state, None).await.unwrap();
        assert!(!r.exists);
        let log = DocKey::new(node.default_space(), SYSTEM_COLLECTION, "members").unwrap();
        assert!(matches!(
            node.external_sync(&log, &mut state, None).await,
            Err(Error::Forbidden(_))
        ));
        node.close().await.unwrap();
    }

    /// A client writing where this node may not (here: a space whose log
    /// has not arrived) is told the node is read-only; its changes are not
    /// stored, and the exchange settles instead of failing or looping.
    #[tokio::test]
    async fn a_client_writing_where_the_node_may_not_settles_read_only() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let admin = Node::open(Config::with_data_dir(da.path())).await.unwrap();
        let space = admin.space_create("team").await.unwrap().to_string();
        let token = admin
            .space_invite(
                Some(&space),
                crate::Role::Writer,
                std::time::Duration::from_secs(60),
                None,
            )
            .await
            .unwrap();
        let node = Node::open(Config::with_data_dir(db.path())).await.unwrap();
        node.space_join(&token).await.unwrap();
        let key = DocKey::new(&space, "automerge", "doc1").unwrap();
        let mut client = AutoCommit::new();
        client.put(ROOT, "title", "from the client").unwrap();
        client.commit();
        let mut ours = ExternalSync::default();
        let mut theirs = sync::State::new();
        let mut refused = 0;
        for _ in 0..6 {
            let (_, reply) = round(&node, &key, &mut ours, &mut client, &mut theirs).await;
            refused += reply.unwrap().refused_changes;
        }
        assert!(theirs.is_peer_read_only(), "the client was not told");
        assert!(refused <= 1, "the client's change was sent {refused} times");
        assert_eq!(node.get(&key).await.unwrap(), None);
        node.close().await.unwrap();
        admin.close().await.unwrap();
    }
}
