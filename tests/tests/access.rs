//! Access control over real connections (loopback, port 0): outsiders get
//! nothing, readers cannot write, revoked members stop receiving. Waits are
//! on events with a timeout; "nothing arrived" is checked after a witness
//! event that is ordered after what must not arrive.

use std::collections::BTreeMap;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;
use weft_core::internals::auth::{Entry, Invite};
use weft_core::internals::net::{Net, NetConfig, NetEvent};
use weft_core::internals::sync::wire::{self, Claim, ItemKey, Message};
use weft_core::{Config, DocKey, Error, Node, NodeId, Role, SpaceState, SubscribeFilter};

const WAIT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(86_400);

async fn node(dir: &std::path::Path) -> Node {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(NetConfig::local());
    Node::open(config).await.expect("open node")
}

fn temp_dirs<const N: usize>() -> [tempfile::TempDir; N] {
    std::array::from_fn(|_| tempfile::tempdir().unwrap())
}

/// A networked node at `dir` that created the space "team"; its id.
async fn admin_with_team(dir: &std::path::Path) -> (Node, String) {
    let a = node(dir).await;
    let space = a.space_create("team").await.unwrap().to_string();
    (a, space)
}

async fn until<F: AsyncFn(&Node) -> bool>(node: &Node, what: &str, check: F) {
    let mut feed = node.subscribe(SubscribeFilter::default());
    let wait = async {
        while !check(node).await {
            let _ = feed.recv().await;
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("timed out waiting for {what}");
    }
}

async fn join(owner: &Node, member: &Node, space: &str, role: Role) {
    let token = owner
        .space_invite(Some(space), role, DAY, Some(member.node_id()))
        .await
        .unwrap();
    member.space_join(&token).await.unwrap();
    let s = space.to_owned();
    until(member, "membership", async |n: &Node| {
        n.space_list()
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == s && i.role == Some(role))
    })
    .await;
}

/// An admin with a space and a reader of it that has received one note.
async fn reader_with_note(
    da: &std::path::Path,
    db: &std::path::Path,
) -> (Node, Node, String, DocKey) {
    let a = node(da).await;
    let space = a.space_create("team").await.unwrap().to_string();
    let reader = node(db).await;
    join(&a, &reader, &space, Role::Reader).await;
    let note = DocKey::new(&space, "notes", "n").unwrap();
    a.put(&note, json!({"v": 1})).await.unwrap();
    until(&reader, "the note", async |n: &Node| {
        n.get(&note).await.unwrap().is_some()
    })
    .await;
    (a, reader, space, note)
}

/// The members of `space` by `node`'s log.
async fn members_of(node: &Node, space: &str) -> BTreeMap<NodeId, Role> {
    node.space_list()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == space)
        .unwrap()
        .members
}

async fn docs_in(node: &Node, space: &str) -> u64 {
    let rows = node
        .sql(&format!(
            "SELECT count(*) AS n FROM docs WHERE space = '{space}' AND collection <> '_weft'"
        ))
        .await
        .unwrap();
    rows[0]["n"].as_u64().unwrap()
}

/// An invite for `secret`'s node as a reader of `space`, and the `Join`
/// entry that node would sign with it (built by hand, as an attacker would).
async fn reader_join(a: &Node, space: &str, secret: [u8; 32]) -> (NodeId, Entry) {
    let key = SigningKey::from_bytes(&secret);
    let id = NodeId::from_bytes(key.verifying_key().to_bytes());
    let token = a
        .space_invite(Some(space), Role::Reader, DAY, Some(id))
        .await
        .unwrap()
        .token;
    let invite = Invite::from_token(&token).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (id, Entry::join(&key, &invite, now).unwrap())
}

/// A raw endpoint speaking `/weft/sync/1` by hand, as an attacker would.
struct Raw {
    key: SigningKey,
    net: Net,
    events: tokio::sync::mpsc::Receiver<NetEvent>,
    peer: NodeId,
}

impl Raw {
    async fn connect(secret: [u8; 32], to: &Node, claims: Vec<Claim>) -> Raw {
        Self::connect_signing(secret, to, claims, false).await
    }

    /// Like `connect`; with `bad_proof`, the challenge is signed wrongly.
    async fn connect_signing(
        secret: [u8; 32],
        to: &Node,
        claims: Vec<Claim>,
        bad_proof: bool,
    ) -> Raw {
        let (net, mut events) =
            weft_core::internals::net::spawn(secret, NetConfig::local()).unwrap();
        let peer = net
            .connect(to.listen_addrs().await[0].parse().unwrap())
            .await
            .unwrap();
        // This end plays the attacker, not the victim: read all the node sends.
        net.proven(peer);
        let key = SigningKey::from_bytes(&secret);
        let me = NodeId::from_bytes(key.verifying_key().to_bytes());
        net.send(
            peer,
            wire::encode(&Message::Hello {
                node: me,
                challenge: [1; 32],
            }),
        );
        // Answer the node's hello with a valid proof, like an honest peer.
        let challenge = loop {
            let event = tokio::time::timeout(WAIT, events.recv())
                .await
                .unwrap()
                .unwrap();
            if let NetEvent::Frame(_, bytes) = event
                && let Ok(Message::Hello { challenge, .. }) = wire::decode(&bytes)
            {
                break challenge;
            }
        };
        let signed = if bad_proof { [0; 32] } else { challenge };
        let signature = key.sign(&wire::proof_bytes(&signed, me, peer)).to_bytes();
        net.send(peer, wire::encode(&Message::Proof { signature }));
        // Claims go in an offer after the proof (wire version 4); the first
        // offer, even empty, completes the handshake.
        net.send(peer, wire::encode(&Message::Offer { spaces: claims }));
        Raw {
            key,
            net,
            events,
            peer,
        }
    }

    fn id(&self) -> NodeId {
        NodeId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Sends an Automerge change creating `id` in `space` (the two messages
    /// of a real exchange against an empty replica).
    fn send_change(&self, space: &str, id: &str) {
        use automerge::sync::{State, SyncDoc};
        let mut doc = automerge::AutoCommit::new();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "evil", true).unwrap();
        doc.commit();
        let mut empty = automerge::AutoCommit::new();
        let (mut s1, mut s2) = (State::new(), State::new());
        let first = doc.sync().generate_sync_message(&mut s1).unwrap();
        empty
            .sync()
            .receive_sync_message(&mut s2, first.clone())
            .unwrap();
        let ask = empty.sync().generate_sync_message(&mut s2).unwrap();
        doc.sync().receive_sync_message(&mut s1, ask).unwrap();
        let with_changes = doc.sync().generate_sync_message(&mut s1).unwrap();
        assert!(!with_changes.changes.is_empty());
        let key = ItemKey {
            collection: "notes".into(),
            id: id.into(),
        };
        for data in [first.encode(), with_changes.encode()] {
            self.net.send(
                self.peer,
                wire::encode(&Message::Sync {
                    space: space.into(),
                    key: key.clone(),
                    data,
                }),
            );
        }
    }

    /// The next message from the node matching `pick`.
    async fn expect(&mut self, what: &str, pick: impl Fn(&Message) -> bool) -> Message {
        let wait = async {
            loop {
                if let Some(NetEvent::Frame(_, bytes)) = self.events.recv().await
                    && let Ok(m) = wire::decode(&bytes)
                    && pick(&m)
                {
                    return m;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} from the node"))
    }

    /// Sends garbage and waits to be cut off: frames are handled in order,
    /// so everything sent before has been processed. Returns the space
    /// frames received meanwhile.
    async fn leave(mut self) -> Vec<Message> {
        self.net.send(self.peer, vec![0xff]);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                NetEvent::Disconnected(_) => break,
                NetEvent::Frame(_, bytes) => {
                    if let Ok(m @ (Message::Reconcile { .. } | Message::Sync { .. })) =
                        wire::decode(&bytes)
                    {
                        seen.push(m);
                    }
                }
                NetEvent::Connected(_) => {}
            }
        }
        self.net.shutdown().await;
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_get_nothing_and_their_frames_are_rejected() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = node(da.path()).await;
    let space = a.space_create("team").await.unwrap().to_string();
    a.put(
        &DocKey::new(&space, "notes", "secret").unwrap(),
        json!({"plan": "x"}),
    )
    .await
    .unwrap();

    // An honest outsider: connected, but never invited.
    let outsider = node(db.path()).await;
    outsider.connect(&a.listen_addrs().await[0]).await.unwrap();
    // A member joining afterwards is the witness: once it has the secret,
    // a has pushed the space to every session it has.
    let member = node(dc.path()).await;
    join(&a, &member, &space, Role::Writer).await;
    let secret = DocKey::new(&space, "notes", "secret").unwrap();
    until(&member, "the secret note", async |n: &Node| {
        n.get(&secret).await.unwrap().is_some()
    })
    .await;
    outsider.wait_synced(WAIT).await.unwrap();
    assert_eq!(
        docs_in(&outsider, &space).await,
        0,
        "an outsider received documents"
    );
    assert!(matches!(
        outsider
            .put(&DocKey::new(&space, "notes", "x").unwrap(), json!({}))
            .await,
        Err(Error::UnknownSpace(_))
    ));

    // A raw outsider claiming the space without proof: sees none of it, and
    // what it sends is not applied.
    let claim = Claim {
        space: space.clone(),
        proof: vec![],
    };
    let raw = Raw::connect([66; 32], &a, vec![claim]).await;
    raw.send_change(&space, "planted");
    let seen = raw.leave().await;
    assert!(seen.is_empty(), "the outsider was sent {seen:?}");
    assert_eq!(
        a.get(&DocKey::new(&space, "notes", "planted").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(docs_in(&a, &space).await, 1);
    for n in [a, outsider, member] {
        n.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_cannot_write_anywhere() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The reader receives...
    let (a, reader, space, note) = reader_with_note(da.path(), db.path()).await;
    // ...but its own node refuses its writes,
    assert!(matches!(
        reader.put(&note, json!({"v": 2})).await,
        Err(Error::Forbidden(_))
    ));

    // and a reader that bypasses its node has its changes refused by peers.
    let (raw_id, join_entry) = reader_join(&a, &space, [77; 32]).await;
    let claim = Claim {
        space: space.clone(),
        proof: vec![serde_bytes::ByteBuf::from(join_entry.encode())],
    };
    let mut raw = Raw::connect([77; 32], &a, vec![claim]).await;
    assert_eq!(raw.id(), raw_id);
    // Admitted as a reader, it is sent the space...
    raw.expect("reconcile", |m| matches!(m, Message::Reconcile { .. }))
        .await;
    raw.send_change(&space, "forged");
    // ...and once the node has handled its sync messages (`leave` waits for
    // that), nothing it wrote was applied. The node answers at most once,
    // read-only and with nothing: it holds nothing of that document and
    // takes nothing from a reader.
    let seen = raw.leave().await;
    let answers: Vec<automerge::sync::Message> = seen
        .iter()
        .filter_map(|m| match m {
            Message::Sync { key, data, .. } if key.id == "forged" => {
                Some(automerge::sync::Message::decode(data).unwrap())
            }
            _ => None,
        })
        .collect();
    assert!(answers.len() <= 1, "{seen:?}");
    for answer in &answers {
        assert!(
            answer.heads.is_empty() && answer.changes.is_empty(),
            "{answer:?}"
        );
        assert!(
            answer
                .flags
                .is_some_and(|f| f.contains(automerge::sync::MessageFlags::READ_ONLY)),
            "{answer:?}"
        );
    }
    assert_eq!(
        a.get(&DocKey::new(&space, "notes", "forged").unwrap())
            .await
            .unwrap(),
        None
    );
    let members = members_of(&a, &space).await;
    assert_eq!(members.get(&raw_id), Some(&Role::Reader));
    a.close().await.unwrap();
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_member_stops_receiving() {
    let [da, db, dc] = temp_dirs();
    let (a, space) = admin_with_team(da.path()).await;
    let revoked = node(db.path()).await;
    let witness = node(dc.path()).await;
    join(&a, &revoked, &space, Role::Writer).await;
    join(&a, &witness, &space, Role::Writer).await;
    let before = DocKey::new(&space, "notes", "before").unwrap();
    a.put(&before, json!({"v": 1})).await.unwrap();
    until(&revoked, "the first note", async |n: &Node| {
        n.get(&before).await.unwrap().is_some()
    })
    .await;

    a.space_revoke(Some(&space), revoked.node_id())
        .await
        .unwrap();
    let after = DocKey::new(&space, "notes", "after").unwrap();
    a.put(&after, json!({"v": 2})).await.unwrap();
    // The witness learns of the revocation and the new note; by then a has
    // pushed the note to every session it still has.
    let revoked_id = revoked.node_id();
    let s = space.clone();
    until(&witness, "the revocation", async |n: &Node| {
        let spaces = n.space_list().await.unwrap();
        spaces
            .iter()
            .any(|i| i.id == s && !i.members.contains_key(&revoked_id))
    })
    .await;
    until(&witness, "the new note", async |n: &Node| {
        n.get(&after).await.unwrap().is_some()
    })
    .await;
    a.wait_synced(WAIT).await.unwrap();
    assert_eq!(
        revoked.get(&after).await.unwrap(),
        None,
        "a revoked member received a change"
    );
    assert!(
        revoked.get(&before).await.unwrap().is_some(),
        "it keeps what it already had"
    );
    for n in [a, revoked, witness] {
        n.close().await.unwrap();
    }
}

#[tokio::test]
async fn expired_and_forged_tokens_are_clear_errors() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Node::open(Config::with_data_dir(da.path())).await.unwrap();
    let b = Node::open(Config::with_data_dir(db.path())).await.unwrap();
    let token = a
        .space_invite(weft_core::SpaceRef::Default, Role::Writer, DAY, None)
        .await
        .unwrap()
        .token;
    let space = Invite::from_token(&token).unwrap().space();
    // A token with a changed byte: its signature (or its encoding) breaks.
    // (Replacing the last character by a different one: the same one would
    // leave the token intact, one run in 58.)
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    assert!(matches!(b.space_join(&tampered).await, Err(Error::Auth(_))));
    let err = b.space_join("weft-invite-nonsense0").await.unwrap_err();
    assert!(err.to_string().contains("not a Weft invite token"), "{err}");
    // A validly signed invite that expired long ago.
    let expired = Invite::issue(
        &SigningKey::from_bytes(&[3; 32]),
        space,
        "team",
        Role::Admin,
        0,
        vec![],
        None,
        &[],
    )
    .unwrap();
    let err = b.space_join(&expired.to_token()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Auth(weft_core::internals::auth::AuthError::Expired { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ask for a new one"), "{err}");
    // Nothing was joined.
    assert_eq!(b.space_list().await.unwrap().len(), 1);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_entries_and_bad_proofs_admit_nobody() {
    let da = tempfile::tempdir().unwrap();
    let a = node(da.path()).await;
    let space = a.space_create("team").await.unwrap().to_string();
    a.put(&DocKey::new(&space, "notes", "n").unwrap(), json!({"v": 1}))
        .await
        .unwrap();

    // A join entry for a reader invite, re-encoded to claim admin: its
    // signature no longer verifies, so the claim admits nobody.
    let (raw_id, join) = reader_join(&a, &space, [88; 32]).await;
    let mut bytes = join.encode();
    let at = bytes
        .windows(6)
        .position(|w| w == b"reader")
        .expect("role in the entry");
    bytes.splice(at..at + 6, b"admin".iter().copied());
    let claim = Claim {
        space: space.clone(),
        proof: vec![serde_bytes::ByteBuf::from(bytes)],
    };
    let raw = Raw::connect([88; 32], &a, vec![claim]).await;
    let seen = raw.leave().await;
    assert!(seen.is_empty(), "a tampered claim was sent {seen:?}");
    let members = members_of(&a, &space).await;
    assert!(!members.contains_key(&raw_id), "{members:?}");

    // A valid join, but a proof of identity signed over the wrong challenge:
    // the node cuts the connection before any session.
    let claim = Claim {
        space: space.clone(),
        proof: vec![serde_bytes::ByteBuf::from(join.encode())],
    };
    let mut raw = Raw::connect_signing([88; 32], &a, vec![claim], true).await;
    // No garbage needed: the bad proof alone ends the connection.
    let cut = tokio::time::timeout(WAIT, async {
        loop {
            match raw.events.recv().await {
                Some(NetEvent::Disconnected(_)) | None => return,
                Some(NetEvent::Frame(_, bytes)) => {
                    let m = wire::decode(&bytes);
                    assert!(
                        !matches!(m, Ok(Message::Reconcile { .. } | Message::Sync { .. })),
                        "sent {m:?}"
                    );
                }
                Some(NetEvent::Connected(_)) => {}
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "a peer with a bad proof stayed connected");
    raw.net.shutdown().await;
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_spraying_refused_claims_is_cut_off() {
    let da = tempfile::tempdir().unwrap();
    let a = node(da.path()).await;
    let space = a.space_create("team").await.unwrap().to_string();
    let mut raw = Raw::connect([99; 32], &a, vec![]).await;
    // Each offer is a new claim, so each costs the node an evaluation: past
    // a bound, the node stops paying and ends the connection.
    for i in 0..100u32 {
        let junk = serde_bytes::ByteBuf::from(i.to_le_bytes().to_vec());
        let claim = Claim {
            space: space.clone(),
            proof: vec![junk],
        };
        raw.net.send(
            raw.peer,
            wire::encode(&Message::Offer {
                spaces: vec![claim],
            }),
        );
    }
    let cut = tokio::time::timeout(WAIT, async {
        while let Some(event) = raw.events.recv().await {
            if matches!(event, NetEvent::Disconnected(_)) {
                return;
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the node kept evaluating refused claims");
    raw.net.shutdown().await;
    a.close().await.unwrap();
}

/// Frames two idle nodes may still exchange in `QUIET` (pings are libp2p's,
/// not sync frames): none is expected, a few allow for a late answer.
const QUIET_FRAMES: u64 = 4;
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_only_space_goes_quiet() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, reader, space, _) = reader_with_note(da.path(), db.path()).await;
    assert_quiet(&[&a, &reader]).await;
    // The reader's join reached the admin by sync: it is a member there.
    let members = members_of(&a, &space).await;
    assert_eq!(members.get(&reader.node_id()), Some(&Role::Reader));
    a.close().await.unwrap();
    reader.close().await.unwrap();
}

/// Waits until every node is synced, then checks that their frame counters
/// stay still for [`QUIET`] (an absence has no event to wait for).
async fn assert_quiet(nodes: &[&Node]) {
    for (i, n) in nodes.iter().enumerate() {
        if let Err(e) = n.wait_synced(WAIT).await {
            panic!("node {i} did not settle: {e}");
        }
    }
    let mut before = Vec::new();
    for n in nodes {
        before.push(n.status().await.unwrap().net.frames_sent);
    }
    tokio::time::sleep(QUIET).await;
    let mut moved = 0;
    for (n, b) in nodes.iter().zip(before) {
        moved += n.status().await.unwrap().net.frames_sent - b;
    }
    assert!(
        moved <= QUIET_FRAMES,
        "{moved} frames in {QUIET:?} after every node was synced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_writer_reader_and_outsider_go_quiet_around_a_revocation() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = node(dirs[0].path()).await;
    let space = a.space_create("team").await.unwrap().to_string();
    let (writer, reader, revoked, outsider) = (
        node(dirs[1].path()).await,
        node(dirs[2].path()).await,
        node(dirs[3].path()).await,
        node(dirs[4].path()).await,
    );
    join(&a, &writer, &space, Role::Writer).await;
    join(&a, &reader, &space, Role::Reader).await;
    join(&a, &revoked, &space, Role::Writer).await;
    outsider.connect(&a.listen_addrs().await[0]).await.unwrap();
    for (i, n) in [&a, &writer, &revoked].into_iter().enumerate() {
        let key = DocKey::new(&space, "notes", format!("n{i}")).unwrap();
        n.put(&key, json!({"by": i})).await.unwrap();
    }
    // What the revoked member wrote while a member stays in the space.
    until(&a, "the members' notes", async |n: &Node| {
        docs_in(n, &space).await == 3
    })
    .await;
    a.space_revoke(Some(&space), revoked.node_id())
        .await
        .unwrap();
    let after = DocKey::new(&space, "notes", "after").unwrap();
    writer.put(&after, json!({"v": 1})).await.unwrap();
    until(&reader, "every note", async |n: &Node| {
        docs_in(n, &space).await == 4
    })
    .await;
    // The revoked member settles too: refused by the others, it stops.
    assert_quiet(&[&a, &writer, &reader, &revoked, &outsider]).await;
    assert_eq!(revoked.get(&after).await.unwrap(), None);
    assert_eq!(docs_in(&outsider, &space).await, 0);
    for n in [a, writer, reader, revoked, outsider] {
        n.close().await.unwrap();
    }
}

/// A device refused for a reused invite sees `Refused` with the reason from
/// `wait_admission`, and still after a restart (the reason is stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_reported_and_survives_a_restart() {
    let [da, db, dc] = temp_dirs();
    let (a, space) = admin_with_team(da.path()).await;
    let token = a
        .space_invite(Some(&space), Role::Writer, DAY, None)
        .await
        .unwrap();
    let first = node(db.path()).await;
    first.space_join(&token).await.unwrap();
    let state = first.wait_admission(&space, WAIT).await.unwrap();
    assert_eq!(state, SpaceState::Member(Role::Writer));
    let second = node(dc.path()).await;
    second.space_join(&token).await.unwrap();
    let refused = SpaceState::Refused("invite already used".into());
    assert_eq!(second.wait_admission(&space, WAIT).await.unwrap(), refused);
    second.close().await.unwrap();
    let mut config = Config::with_data_dir(dc.path());
    config.network = None;
    let reopened = Node::open(config).await.unwrap();
    assert_eq!(reopened.space_state(&space).await.unwrap(), refused);
    for n in [a, first, reopened] {
        n.close().await.unwrap();
    }
}
