//! Evaluating a space's membership log.
//!
//! **Order.** Entries form a DAG through `prev` (each cites the entries its
//! signer had seen). Every replica evaluates them in the same order: causal
//! (cited entries first), ties broken by claimed time, then hash. So all
//! replicas holding the same entries agree on the result.
//!
//! **Validity**, checked against the state built by the entries before it:
//! the signature verifies and the space matches; the first entry is the
//! genesis (`Create`, signed by the space key); `Grant` and `Revoke` are
//! signed by an admin; a `Join` is signed by the joiner and carries an invite
//! signed by an admin, for this space, bound to the joiner if bound at all,
//! not expired at the join's claimed time, and not used by another node.
//! Anything else is ignored and reported in [`Membership::rejected`].
//!
//! **Cost.** Signatures are checked once per entry ([`Verified`] remembers
//! entries that verified), and a claim's few new entries extend an
//! evaluated log without walking it again ([`Membership::extended`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::entry::{Action, Entry, EntryHash, Signer};
use super::space::{Role, SpaceId};
use crate::identity::NodeId;

/// An entry that was ignored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The entry.
    pub hash: EntryHash,
    /// Why it does not count.
    pub reason: String,
}

/// Entries remembered as verified per cache; past it the cache starts
/// over (its entries are then verified again, once each). Far above a real
/// log, so only a flood of fresh claims ever reaches it.
pub const MAX_VERIFIED: usize = 65_536;

/// Entries whose signatures verified (the entry's, and for a join its
/// invite's and claim's), by entry hash, which covers the signatures: keep
/// one per space so each entry is verified once, not at every evaluation.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    hashes: HashSet<EntryHash>,
    checked: u64,
}

impl Verified {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries whose signatures were checked so far (each at most once
    /// while remembered).
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks everything about `e` that depends on `e` alone: signatures.
    fn verify(&mut self, hash: EntryHash, e: &Entry) -> Result<(), String> {
        if self.hashes.contains(&hash) {
            return Ok(());
        }
        self.checked += 1;
        e.verify_signature().map_err(|err| err.to_string())?;
        if let (Action::Join { invite, claim }, Signer::Node(joiner)) = (e.action(), e.signer()) {
            invite.verify_signature().map_err(|err| err.to_string())?;
            invite
                .verify_claim(joiner, claim)
                .map_err(|_| "the joiner did not hold the invite token".to_string())?;
        }
        if self.hashes.len() >= MAX_VERIFIED {
            self.hashes.clear();
        }
        self.hashes.insert(hash);
        Ok(())
    }
}

/// Who holds which role in a space, as its log says.
#[derive(Clone, Debug, Default)]
pub struct Membership {
    name: Option<String>,
    roles: BTreeMap<NodeId, Role>,
    accepted: Vec<EntryHash>,
    rejected: Vec<Rejected>,
    cited: BTreeSet<EntryHash>,
    /// Invites used so far, by nonce.
    used: HashMap<[u8; 16], NodeId>,
    /// Nodes whose membership a revocation ended (and nothing restored).
    revoked: BTreeSet<NodeId>,
    /// Every entry evaluated, whatever came of it.
    known: HashSet<EntryHash>,
    /// Entries never ordered (they cite unknown entries, or depend on
    /// such): whatever cites them is never ordered either.
    stuck: HashSet<EntryHash>,
    /// Hashes cited but not in the log: an entry supplying one changes
    /// earlier results, so it cannot simply extend them.
    missing: HashSet<EntryHash>,
    /// The greatest (time, hash) evaluated.
    last: Option<(i64, EntryHash)>,
}

impl Membership {
    /// Evaluates a log (in any order, duplicates allowed).
    pub fn evaluate(space: SpaceId, entries: &[Entry]) -> Self {
        Self::evaluate_with(space, entries, &mut Verified::new())
    }

    /// [`Self::evaluate`], verifying only entries `verified` does not hold.
    pub fn evaluate_with(space: SpaceId, entries: &[Entry], verified: &mut Verified) -> Self {
        let mut state = Membership::default();
        state.walk(space, entries, verified);
        state
    }

    /// The membership of this log with `more` entries added, costing only
    /// the new entries, when they all sort after every entry evaluated so
    /// far and none is one an evaluated entry cites (the usual case: a new
    /// join or grant). Then evaluation order puts them last, so the result
    /// equals evaluating the whole log. Otherwise `None`: evaluate it all.
    pub fn extended(
        &self,
        space: SpaceId,
        more: &[Entry],
        verified: &mut Verified,
    ) -> Option<Self> {
        let appends = more.iter().all(|e| {
            let hash = e.hash();
            self.known.contains(&hash)
                || (!self.missing.contains(&hash) && Some((e.time(), hash)) > self.last)
        });
        if !appends {
            return None;
        }
        let mut next = self.clone();
        next.walk(space, more, verified);
        Some(next)
    }

    /// Evaluates `entries` after those evaluated so far, which they may
    /// cite; the caller makes sure they come last in evaluation order.
    fn walk(&mut self, space: SpaceId, entries: &[Entry], verified: &mut Verified) {
        let mut by_hash: HashMap<EntryHash, &Entry> = HashMap::new();
        for e in entries {
            let hash = e.hash();
            if !self.known.contains(&hash) {
                by_hash.insert(hash, e);
            }
        }
        for (hash, e) in &by_hash {
            self.known.insert(*hash);
            self.last = self.last.max(Some((e.time(), *hash)));
        }
        let mut waiting: HashMap<EntryHash, usize> = HashMap::new();
        let mut dependents: HashMap<EntryHash, Vec<EntryHash>> = HashMap::new();
        let mut ready: BTreeSet<(i64, EntryHash)> = BTreeSet::new();
        for (hash, e) in &by_hash {
            let prev: BTreeSet<EntryHash> = e.prev().collect();
            if let Some(missing) = prev.iter().find(|p| !self.known.contains(*p)) {
                let missing = *missing;
                self.missing
                    .extend(prev.iter().filter(|p| !self.known.contains(*p)));
                self.stuck.insert(*hash);
                self.reject(*hash, format!("cites unknown entry {}", short(&missing)));
                continue;
            }
            // Earlier entries are done, unless they were never ordered.
            let open: Vec<EntryHash> = prev
                .into_iter()
                .filter(|p| by_hash.contains_key(p) || self.stuck.contains(p))
                .collect();
            if open.is_empty() {
                ready.insert((e.time(), *hash));
            } else {
                waiting.insert(*hash, open.len());
                for p in open {
                    dependents.entry(p).or_default().push(*hash);
                }
            }
        }
        while let Some((_, hash)) = ready.pop_first() {
            let entry = by_hash[&hash];
            match self.check(space, hash, entry, verified) {
                Ok(effect) => {
                    self.apply(effect);
                    self.accepted.push(hash);
                    self.cited.extend(entry.prev());
                }
                Err(reason) => self.reject(hash, reason),
            }
            for d in dependents.remove(&hash).unwrap_or_default() {
                if let Some(n) = waiting.get_mut(&d) {
                    *n -= 1;
                    if *n == 0 {
                        waiting.remove(&d);
                        ready.insert((by_hash[&d].time(), d));
                    }
                }
            }
        }
        // Whatever still waits depends on a rejected-as-unknown entry.
        for hash in waiting.into_keys() {
            self.stuck.insert(hash);
            self.reject(hash, "depends on an entry that cannot be ordered".into());
        }
    }

    fn reject(&mut self, hash: EntryHash, reason: String) {
        // Every evaluation meets the same rejected entries again (a peer's
        // junk, a used invite): not worth a warning each time.
        tracing::debug!(entry = %short(&hash), %reason, "ignoring membership entry");
        self.rejected.push(Rejected { hash, reason });
    }

    /// What a valid entry changes, or why it is invalid.
    fn check(
        &self,
        space: SpaceId,
        hash: EntryHash,
        e: &Entry,
        verified: &mut Verified,
    ) -> Result<Effect, String> {
        verified.verify(hash, e)?;
        if e.space() != space {
            return Err(format!("belongs to space {}", e.space()));
        }
        let genesis = self.accepted.is_empty();
        match (e.action(), e.signer()) {
            (Action::Create { admin, name }, Signer::Space) if genesis => {
                Ok(Effect::Create(*admin, name.clone()))
            }
            (Action::Create { .. }, _) => Err("a second or misplaced genesis".into()),
            _ if genesis => Err("precedes the space's genesis".into()),
            (_, Signer::Space) => Err("the space key only signs the genesis".into()),
            (Action::Grant { node, role }, Signer::Node(by)) => {
                self.require_admin(by)?;
                Ok(Effect::Set(*node, Some(*role)))
            }
            (Action::Revoke { node }, Signer::Node(by)) => {
                self.require_admin(by)?;
                Ok(Effect::Set(*node, None))
            }
            // Signatures (entry, invite, claim) were verified above.
            (Action::Join { invite, .. }, Signer::Node(joiner)) => {
                if invite.space() != space {
                    return Err("invite for another space".into());
                }
                if !invite.log_heads().iter().all(|h| e.prev().any(|p| p == *h)) {
                    return Err("join does not cite the log the invite was issued at".into());
                }
                self.require_admin(invite.inviter()).map_err(|_| {
                    format!("invite signed by {}, who is not an admin", invite.inviter())
                })?;
                if invite.node().is_some_and(|n| n != joiner) {
                    return Err("invite bound to another node".into());
                }
                if e.time() > invite.expires() {
                    return Err("joined after the invite expired".into());
                }
                // One invite admits one node, once: a revoked member cannot
                // come back with the invite it joined with.
                if self.used.contains_key(&invite.nonce()) {
                    return Err("invite already used".into());
                }
                // Nor with any other invite issued to whoever holds it: a
                // revocation stands until an admin grants a role or invites
                // this very node (an invite bound to its id).
                if self.revoked.contains(&joiner) && invite.node() != Some(joiner) {
                    return Err(
                        "revoked; an admin can grant this node a role or invite it by its node id"
                            .into(),
                    );
                }
                Ok(Effect::Join(joiner, invite.role(), invite.nonce()))
            }
        }
    }

    fn require_admin(&self, node: NodeId) -> Result<(), String> {
        match self.roles.get(&node) {
            Some(Role::Admin) => Ok(()),
            _ => Err(format!("signed by {node}, who is not an admin")),
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Create(admin, name) => {
                self.name = Some(name);
                self.roles.insert(admin, Role::Admin);
            }
            Effect::Set(node, Some(role)) => {
                self.revoked.remove(&node);
                self.roles.insert(node, role);
            }
            Effect::Set(node, None) => {
                // Also a node not (yet) a member: an admin revoking a node
                // that holds an invite means it should not get in with it.
                self.roles.remove(&node);
                self.revoked.insert(node);
            }
            Effect::Join(node, role, nonce) => {
                self.revoked.remove(&node);
                self.used.insert(nonce, node);
                let current = self.roles.entry(node).or_insert(role);
                *current = (*current).max(role);
            }
        }
    }

    /// Whether `e` is a join using an invite this log already credits to
    /// another node. Evaluation orders concurrent joins by their claimed
    /// time, which the joiner chooses, so admission drops such joins from a
    /// claim (whoever carries them): a used token cannot take the place of
    /// the node that used it first.
    pub fn reuses_invite(&self, e: &Entry) -> bool {
        match (e.signer(), e.action()) {
            (Signer::Node(joiner), Action::Join { invite, .. }) => self
                .used
                .get(&invite.nonce())
                .is_some_and(|first| *first != joiner),
            _ => false,
        }
    }

    /// Whether a revocation names `node` (and no grant or join restored it
    /// since), whether or not it was a member then.
    pub fn revoked(&self, node: NodeId) -> bool {
        self.revoked.contains(&node)
    }

    /// A node's role, if it is a member.
    pub fn role(&self, node: NodeId) -> Option<Role> {
        self.roles.get(&node).copied()
    }

    /// Every member.
    pub fn members(&self) -> &BTreeMap<NodeId, Role> {
        &self.roles
    }

    /// The name given at creation.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Entries that were ignored.
    pub fn rejected(&self) -> &[Rejected] {
        &self.rejected
    }

    /// Accepted entries no other accepted entry cites: what a new entry
    /// should cite as `prev`.
    pub fn heads(&self) -> Vec<EntryHash> {
        self.accepted
            .iter()
            .filter(|h| !self.cited.contains(*h))
            .copied()
            .collect()
    }
}

enum Effect {
    Create(NodeId, String),
    Set(NodeId, Option<Role>),
    Join(NodeId, Role, [u8; 16]),
}

fn short(hash: &EntryHash) -> String {
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::auth::{Invite, SpaceKey};

    struct Fixture {
        space: SpaceKey,
        admin: SigningKey,
        log: Vec<Entry>,
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn id(k: &SigningKey) -> NodeId {
        NodeId::from_bytes(k.verifying_key().to_bytes())
    }

    impl Fixture {
        fn new() -> Self {
            let space = SpaceKey::generate().unwrap();
            let admin = key(1);
            let genesis = Entry::create(&space, id(&admin), "team", 100);
            Self {
                space,
                admin,
                log: vec![genesis],
            }
        }
        fn eval(&self) -> Membership {
            Membership::evaluate(self.space.id(), &self.log)
        }
        fn add(&mut self, by: &SigningKey, action: Action, time: i64) -> EntryHash {
            let heads = self.eval().heads();
            let e = Entry::sign(by, self.space.id(), action, &heads, time);
            let h = e.hash();
            self.log.push(e);
            h
        }
        fn join(&mut self, by: &SigningKey, invite: &Invite, time: i64) -> EntryHash {
            let e = Entry::join(by, invite, time).unwrap();
            let h = e.hash();
            self.log.push(e);
            h
        }
        fn invite(&self, by: &SigningKey, role: Role, bound: Option<NodeId>) -> Invite {
            Invite::issue(
                by,
                self.space.id(),
                "team",
                role,
                1_000,
                vec![],
                bound,
                &self.eval().heads(),
            )
            .unwrap()
        }
    }

    #[test]
    fn genesis_grants_revokes_and_joins() {
        let mut f = Fixture::new();
        let m = f.eval();
        assert_eq!(m.name(), Some("team"));
        assert_eq!(m.role(id(&f.admin)), Some(Role::Admin));
        let admin = f.admin.clone();
        f.add(
            &admin,
            Action::Grant {
                node: id(&key(2)),
                role: Role::Writer,
            },
            101,
        );
        let inv = f.invite(&admin, Role::Reader, Some(id(&key(3))));
        f.join(&key(3), &inv, 102);
        let m = f.eval();
        assert_eq!(m.role(id(&key(2))), Some(Role::Writer));
        assert_eq!(m.role(id(&key(3))), Some(Role::Reader));
        f.add(&admin, Action::Revoke { node: id(&key(2)) }, 103);
        let m = f.eval();
        assert_eq!(m.role(id(&key(2))), None);
        assert!(m.rejected().is_empty(), "{:?}", m.rejected());
        assert_eq!(m.heads().len(), 1);
        // Evaluation does not depend on the order entries arrive in.
        let mut shuffled = f.log.clone();
        shuffled.reverse();
        let again = Membership::evaluate(f.space.id(), &shuffled);
        assert_eq!(again.members(), m.members());
    }

    #[test]
    fn invalid_entries_are_ignored_and_reported() {
        let mut f = Fixture::new();
        let admin = f.admin.clone();
        // A non-admin cannot grant, revoke or invite.
        f.add(
            &key(5),
            Action::Grant {
                node: id(&key(5)),
                role: Role::Admin,
            },
            101,
        );
        f.add(&key(5), Action::Revoke { node: id(&admin) }, 101);
        let rogue_invite = f.invite(&key(5), Role::Admin, None);
        f.join(&key(6), &rogue_invite, 101);
        // Bound, expired, reused and foreign invites.
        let bound = f.invite(&admin, Role::Writer, Some(id(&key(7))));
        f.join(&key(8), &bound, 101);
        let expiring = f.invite(&admin, Role::Writer, None);
        f.join(&key(9), &expiring, 5_000);
        let once = f.invite(&admin, Role::Writer, None);
        f.join(&key(10), &once.clone(), 101);
        f.join(&key(11), &once, 102);
        let other = SpaceKey::generate().unwrap();
        let foreign = Invite::issue(
            &admin,
            other.id(),
            "x",
            Role::Admin,
            1_000,
            vec![],
            None,
            &[],
        )
        .unwrap();
        f.join(&key(12), &foreign, 101);
        // An invite seen in someone's join, used without its secret's claim.
        let seen = f.invite(&admin, Role::Admin, None);
        let foreign_claim = seen.claim(id(&key(15))).unwrap();
        f.add(
            &key(16),
            Action::Join {
                invite: Box::new(seen),
                claim: foreign_claim,
            },
            101,
        );
        // A tampered entry (re-encoded with a changed role) and a second genesis.
        let mut tampered = Entry::sign(
            &admin,
            f.space.id(),
            Action::Grant {
                node: id(&key(13)),
                role: Role::Reader,
            },
            &[],
            101,
        )
        .encode();
        let pos = tampered.windows(6).position(|w| w == b"reader").unwrap();
        tampered[pos..pos + 6].copy_from_slice(b"writer");
        f.log.push(Entry::decode(&tampered).unwrap());
        // A genesis can only come from the space key, which the creator
        // discards after signing; a node signing one does not count.
        f.add(
            &key(14),
            Action::Create {
                admin: id(&key(14)),
                name: "takeover".into(),
            },
            101,
        );

        let m = f.eval();
        assert_eq!(
            m.members().len(),
            2,
            "{:?} {:#?}",
            m.members(),
            m.rejected()
        );
        assert_eq!(m.role(id(&key(10))), Some(Role::Writer));
        assert_eq!(m.rejected().len(), 10, "{:#?}", m.rejected());
        assert!(
            m.rejected()
                .iter()
                .any(|r| r.reason.contains("bad signature"))
        );
        assert!(m.rejected().iter().any(|r| r.reason.contains("expired")));
        assert!(
            m.rejected()
                .iter()
                .any(|r| r.reason.contains("already used"))
        );
    }

    #[test]
    fn a_revoked_member_cannot_rejoin_with_its_old_invite() {
        let mut f = Fixture::new();
        let admin = f.admin.clone();
        let inv = f.invite(&admin, Role::Writer, Some(id(&key(2))));
        f.join(&key(2), &inv, 101);
        assert_eq!(f.eval().role(id(&key(2))), Some(Role::Writer));
        f.add(&admin, Action::Revoke { node: id(&key(2)) }, 102);
        // The old invite, cited after the revocation (and citing the
        // invite's own heads, so only the one-use rule can stop it).
        let mut prev = f.eval().heads();
        prev.extend(inv.log_heads());
        let again = Entry::sign(
            &key(2),
            f.space.id(),
            Action::Join {
                invite: Box::new(inv.clone()),
                claim: inv.claim(id(&key(2))).unwrap(),
            },
            &prev,
            103,
        );
        f.log.push(again);
        let m = f.eval();
        assert_eq!(m.role(id(&key(2))), None);
        assert!(
            m.rejected()
                .iter()
                .any(|r| r.reason.contains("already used")),
            "{:?}",
            m.rejected()
        );
    }

    #[test]
    fn signatures_are_verified_once_and_a_new_join_costs_only_itself() {
        let mut f = Fixture::new();
        let admin = f.admin.clone();
        for n in 2..6 {
            let inv = f.invite(&admin, Role::Writer, Some(id(&key(n))));
            f.join(&key(n), &inv, 100 + i64::from(n));
        }
        let space = f.space.id();
        let mut cache = Verified::new();
        let m = Membership::evaluate_with(space, &f.log, &mut cache);
        assert_eq!(cache.checked(), f.log.len() as u64);
        // Evaluating again (the log changed elsewhere) verifies nothing.
        let again = Membership::evaluate_with(space, &f.log, &mut cache);
        assert_eq!(cache.checked(), f.log.len() as u64);
        assert_eq!(again.members(), m.members());
        // A new join extends the evaluation: one entry checked, no walk of
        // the log, and the same result as evaluating everything.
        let inv = f.invite(&admin, Role::Reader, Some(id(&key(9))));
        let join = Entry::join(&key(9), &inv, 200).unwrap();
        let extended = m
            .extended(space, std::slice::from_ref(&join), &mut cache)
            .expect("a later entry extends the log");
        assert_eq!(cache.checked(), f.log.len() as u64 + 1);
        f.log.push(join);
        let full = Membership::evaluate(space, &f.log);
        assert_eq!(extended.members(), full.members());
        assert_eq!(extended.role(id(&key(9))), Some(Role::Reader));
        assert_eq!(extended.heads(), full.heads());
        // Entries already evaluated change nothing.
        let same = extended.extended(space, &f.log, &mut cache).unwrap();
        assert_eq!(same.members(), full.members());
        // An entry that would sort before evaluated ones, or that an
        // evaluated entry cites, needs the whole log evaluated again.
        let backdated = Entry::sign(
            &admin,
            space,
            Action::Grant {
                node: id(&key(20)),
                role: Role::Writer,
            },
            &[f.log[0].hash()],
            50,
        );
        assert!(m.extended(space, &[backdated], &mut cache).is_none());
        let missing = Entry::sign(
            &admin,
            space,
            Action::Grant {
                node: id(&key(21)),
                role: Role::Writer,
            },
            &[f.log[0].hash()],
            300,
        );
        let citing = Entry::sign(
            &admin,
            space,
            Action::Grant {
                node: id(&key(22)),
                role: Role::Writer,
            },
            &[missing.hash()],
            301,
        );
        let mut log = f.log.clone();
        log.push(citing);
        let partial = Membership::evaluate(space, &log);
        assert!(
            partial
                .extended(space, std::slice::from_ref(&missing), &mut cache)
                .is_none()
        );
        log.push(missing);
        assert_eq!(
            Membership::evaluate(space, &log).role(id(&key(22))),
            Some(Role::Writer)
        );
    }

    #[test]
    fn the_verified_cache_holds_its_bound() {
        let f = Fixture::new();
        let mut cache = Verified::new();
        cache.hashes.extend((0..MAX_VERIFIED as u64).map(|i| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            h
        }));
        let genesis = &f.log[0];
        cache.verify(genesis.hash(), genesis).unwrap();
        assert_eq!(cache.hashes.len(), 1);
        assert_eq!(cache.checked(), 1);
    }

    #[test]
    fn unknown_citations_and_foreign_spaces_do_not_count() {
        let f = Fixture::new();
        let orphan = Entry::sign(
            &f.admin,
            f.space.id(),
            Action::Grant {
                node: id(&key(2)),
                role: Role::Admin,
            },
            &[[7; 32]],
            101,
        );
        let other = SpaceKey::generate().unwrap();
        let elsewhere = Entry::create(&other, id(&key(3)), "x", 100);
        let mut log = f.log.clone();
        log.extend([orphan, elsewhere]);
        let m = Membership::evaluate(f.space.id(), &log);
        assert_eq!(m.members().len(), 1);
        assert_eq!(m.rejected().len(), 2);
        // No genesis at all: nobody is a member.
        assert!(
            Membership::evaluate(other.id(), &f.log)
                .members()
                .is_empty()
        );
    }
}
