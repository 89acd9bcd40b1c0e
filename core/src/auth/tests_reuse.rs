//! An invite's one use and a revocation hold against a joiner that picks
//! its own claimed time.

use ed25519_dalek::SigningKey;

use super::{Action, Entry, Invite, Membership, Role, SpaceKey};
use crate::identity::NodeId;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn id(k: &SigningKey) -> NodeId {
    NodeId::from_bytes(k.verifying_key().to_bytes())
}

struct Log {
    space: SpaceKey,
    entries: Vec<Entry>,
}

impl Log {
    fn new() -> Self {
        let space = SpaceKey::from_secret([9; 32]);
        let genesis = Entry::create(&space, id(&key(1)), "team", 100);
        Self {
            space,
            entries: vec![genesis],
        }
    }
    fn eval(&self) -> Membership {
        Membership::evaluate(self.space.id(), &self.entries)
    }
    fn invite(&self, node: Option<NodeId>) -> Invite {
        Invite::issue(
            &key(1),
            self.space.id(),
            "team",
            Role::Writer,
            10_000,
            vec![],
            node,
            &self.eval().heads(),
        )
        .unwrap()
    }
}

#[test]
fn a_used_invite_cannot_displace_its_first_user() {
    let mut log = Log::new();
    let invite = log.invite(None);
    log.entries
        .push(Entry::join(&key(2), &invite, 200).unwrap());
    assert_eq!(log.eval().role(id(&key(2))), Some(Role::Writer));
    // A second holder of the token claims an earlier time: by evaluation
    // order alone it would win and push the first user out.
    let late = Entry::join(&key(3), &invite, 150).unwrap();
    let mut with = log.entries.clone();
    with.push(late.clone());
    let raced = Membership::evaluate(log.space.id(), &with);
    assert_eq!(raced.role(id(&key(3))), Some(Role::Writer));
    assert_eq!(raced.role(id(&key(2))), None);
    // Which is why admission drops it against the log as it stands,
    // whoever carries it.
    assert!(log.eval().reuses_invite(&late));
    // The first user presenting its own join again is no reuse.
    let own = Entry::join(&key(2), &invite, 200).unwrap();
    assert!(!log.eval().reuses_invite(&own));
}

#[test]
fn a_revoked_node_gets_in_only_by_an_invite_bound_to_it() {
    let mut log = Log::new();
    let unbound = log.invite(None);
    // Revoked before it ever joined.
    let heads = log.eval().heads();
    log.entries.push(Entry::sign(
        &key(1),
        log.space.id(),
        Action::Revoke { node: id(&key(4)) },
        &heads,
        150,
    ));
    log.entries
        .push(Entry::join(&key(4), &unbound, 200).unwrap());
    let m = log.eval();
    assert_eq!(m.role(id(&key(4))), None);
    assert!(m.revoked(id(&key(4))));
    assert!(
        m.rejected().iter().any(|r| r.reason.starts_with("revoked")),
        "{:?}",
        m.rejected()
    );
    // An admin inviting this very node brings it back.
    let bound = log.invite(Some(id(&key(4))));
    log.entries.push(Entry::join(&key(4), &bound, 300).unwrap());
    assert_eq!(log.eval().role(id(&key(4))), Some(Role::Writer));
}
