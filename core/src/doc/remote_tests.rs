//! Peer input: inflation bombs, limits on remote results, system documents,
//! and the text diff budget.

use std::io::Write;
use std::time::{Duration, Instant};

use automerge::sync::{State, SyncDoc};
use automerge::transaction::Transactable;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use serde_json::json;
use sha2::Digest;

use super::chunks::{self, MAX_INFLATED_BYTES};
use super::*;
use crate::auth::{Entry, SpaceKey};

fn actor(n: u8) -> ActorId {
    actor_for(NodeId::from_bytes([n; 32]), [n; 8])
}

fn obj(v: Json) -> Map<String, Json> {
    as_object(&v).unwrap().clone()
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// `n` zero bytes, DEFLATE-compressed (about n / 1000 bytes).
fn deflated_zeros(n: usize) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    let block = vec![0u8; 1 << 16];
    for _ in 0..n / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

/// A chunk of `kind` around `body` (the checksum is never reached).
fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
    uleb(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// A sync message (v1) carrying `changes` and nothing else.
fn sync_message(changes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x42, 0, 0, 0, 1];
    uleb(&mut out, changes.len() as u64);
    out.extend_from_slice(changes);
    out
}

/// Where the bomb inflates to: four times the budget.
const BOMB: usize = 4 * MAX_INFLATED_BYTES;

#[test]
fn compressed_change_bomb_is_refused_before_automerge() {
    let bomb = chunk(2, &deflated_zeros(BOMB));
    assert!(bomb.len() < BOMB / 500, "the bomb is small on the wire");
    let mut doc = Document::new(actor(1));
    doc.put(&obj(json!({"a": 1})), 1).unwrap();
    let heads = doc.heads();

    let received = doc.receive_sync_message(&mut State::new(), &sync_message(&bomb), true);
    assert!(
        matches!(received.error, Some(DocError::InflatedTooLarge { limit }) if limit == MAX_INFLATED_BYTES),
        "{:?}",
        received.error
    );
    assert!(!received.changed);
    let received = doc.receive_chunks(&bomb, ChangePolicy::Write);
    assert!(matches!(
        received.error,
        Some(DocError::InflatedTooLarge { .. })
    ));
    assert_eq!(doc.heads(), heads);
}

#[test]
fn deflated_document_column_bomb_is_refused() {
    let column = deflated_zeros(BOMB);
    let mut body = vec![0, 0]; // no actors, no heads
    body.push(1); // one change column...
    uleb(&mut body, 0x08 | (1 << 4)); // ...deflated
    uleb(&mut body, column.len() as u64);
    body.push(0); // no op columns
    body.extend_from_slice(&column);
    let doc_chunk = chunk(0, &body);
    assert!(matches!(
        chunks::check(&doc_chunk, MAX_INFLATED_BYTES),
        Err(DocError::InflatedTooLarge { .. })
    ));
    // Within a budget the same column is counted, not refused.
    assert!(chunks::check(&doc_chunk, BOMB + body.len()).is_ok());
}

#[test]
fn malformed_framing_is_refused() {
    for bad in [
        b"\x85\x6f\x4a\x83\0\0\0\0\x01\xff\xff\xff\xff\x0f".to_vec(), // length past the end
        b"\x85\x6f\x4a\x84\0\0\0\0\x01\x00".to_vec(),                 // magic
        b"\x85\x6f\x4a\x83\0\0\0\0\x09\x00".to_vec(),                 // type
        chunk(2, b"not deflate at all"),
    ] {
        assert!(
            matches!(
                chunks::check(&bad, MAX_INFLATED_BYTES),
                Err(DocError::BadChunk(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn honest_compressed_documents_and_changes_pass() {
    let mut peer = Document::new(actor(2));
    let text: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    peer.put(&obj(json!({"body": text, "n": 1})), 1).unwrap();
    let saved = peer.save();
    let mut doc = Document::new(actor(1));
    let received = doc.receive_chunks(&saved, ChangePolicy::Write);
    assert!(received.error.is_none(), "{:?}", received.error);
    assert!(received.changed);
    assert_eq!(doc.to_json(), peer.to_json());
    // A large change travels compressed in storage; it passes too.
    let heads = peer.heads();
    peer.put(&obj(json!({"body": "short", "n": 2})), 2).unwrap();
    let after = peer.save_after(&heads);
    let received = doc.receive_chunks(&after, ChangePolicy::Write);
    assert!(received.error.is_none(), "{:?}", received.error);
    assert_eq!(doc.to_json(), peer.to_json());
}

/// A peer that bypasses Weft's local checks: raw Automerge on a shared base.
fn raw_peer(doc: &mut Document) -> AutoCommit {
    AutoCommit::load(&doc.save()).unwrap().with_actor(actor(9))
}

/// Syncs `peer` into `doc` until quiet, returning the first error.
fn sync_from(doc: &mut Document, peer: &mut AutoCommit, policy: ChangePolicy) -> Option<DocError> {
    let (mut ours, mut theirs) = (State::new(), State::new());
    for _ in 0..10 {
        let mut quiet = true;
        if let Some(m) = peer.sync().generate_sync_message(&mut theirs) {
            quiet = false;
            let r = doc.receive_sync_message(&mut ours, &m.encode(), policy);
            if r.error.is_some() {
                return r.error;
            }
        }
        if let Some(m) = doc.generate_sync_message(&mut ours) {
            quiet = false;
            let m = automerge::sync::Message::decode(&m).unwrap();
            peer.sync().receive_sync_message(&mut theirs, m).unwrap();
        }
        if quiet {
            return None;
        }
    }
    None
}

#[test]
fn remote_change_over_the_size_limit_is_refused_and_rolled_back() {
    let mut doc = Document::new(actor(1));
    doc.put(&obj(json!({"a": 1})), 1).unwrap();
    let heads = doc.heads();
    let mut peer = raw_peer(&mut doc);
    let big = "x".repeat(MAX_DOC_BYTES);
    peer.put(ROOT, "big", big.as_str()).unwrap();
    peer.commit();

    let error = sync_from(&mut doc, &mut peer, ChangePolicy::Write);
    assert!(
        matches!(error, Some(DocError::TooLarge { .. })),
        "{error:?}"
    );
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.to_json(), Some(obj(json!({"a": 1}))));
    // The same as a `Doc` frame; hidden in a reserved field it counts too.
    let mut peer = raw_peer(&mut doc);
    peer.put(ROOT, "_weft_hidden", big.as_str()).unwrap();
    peer.commit();
    let received = doc.receive_chunks(&peer.save(), ChangePolicy::Write);
    assert!(matches!(received.error, Some(DocError::TooLarge { .. })));
    assert_eq!(doc.heads(), heads);
    // The document still works, as its own actor.
    let committed = doc.put(&obj(json!({"a": 2})), 2).unwrap().unwrap();
    assert_eq!(doc.heads(), vec![committed.hash]);
    assert_eq!(
        doc.history().last().unwrap().author,
        Some(NodeId::from_bytes([1; 32]))
    );
}

#[test]
fn remote_change_over_the_depth_limit_is_refused() {
    let mut doc = Document::new(actor(1));
    let heads = doc.heads();
    let mut peer = AutoCommit::new().with_actor(actor(9));
    let mut at = ROOT;
    for _ in 0..MAX_DEPTH {
        at = peer.put_object(&at, "d", automerge::ObjType::Map).unwrap();
    }
    peer.commit();
    let error = sync_from(&mut doc, &mut peer, ChangePolicy::Write);
    assert!(matches!(error, Some(DocError::TooDeep)), "{error:?}");
    assert_eq!(doc.heads(), heads);
    assert!(doc.is_empty());
    // One level less is exactly the local limit and is accepted.
    let mut peer = AutoCommit::new().with_actor(actor(9));
    let mut at = ROOT;
    for _ in 0..MAX_DEPTH - 1 {
        at = peer.put_object(&at, "d", automerge::ObjType::Map).unwrap();
    }
    peer.commit();
    assert!(sync_from(&mut doc, &mut peer, ChangePolicy::Write).is_none());
    assert!(!doc.is_empty());
}

#[test]
fn policies_by_document() {
    use ChangePolicy::*;
    assert_eq!(ChangePolicy::for_doc("todos", "1", true), Write);
    assert_eq!(ChangePolicy::for_doc("todos", "1", false), ReadOnly);
    assert_eq!(
        ChangePolicy::for_doc("_weft", "members", true),
        MembershipLog
    );
    // A reader's own entries (its join) must reach the admins.
    assert_eq!(
        ChangePolicy::for_doc("_weft", "members", false),
        MembershipLog
    );
    assert_eq!(ChangePolicy::for_doc("_weft", "other", true), Forbidden);
    assert_eq!(ChangePolicy::for_doc("_weft", "other", false), Forbidden);
}

#[test]
fn peers_may_not_write_other_system_documents() {
    let mut doc = Document::new(actor(1));
    let mut peer = AutoCommit::new().with_actor(actor(9));
    peer.put(ROOT, "x", 1).unwrap();
    peer.commit();
    let error = sync_from(&mut doc, &mut peer, ChangePolicy::Forbidden);
    assert!(matches!(error, Some(DocError::Refused(_))), "{error:?}");
    assert!(doc.is_empty());
    let received = doc.receive_chunks(&peer.save(), ChangePolicy::Forbidden);
    assert!(matches!(received.error, Some(DocError::Refused(_))));
    assert!(doc.is_empty());
}

fn entry(name: &str) -> Vec<u8> {
    let space = SpaceKey::generate().unwrap();
    Entry::create(&space, NodeId::from_bytes([3; 32]), name, 1).encode()
}

fn hashed(bytes: &[u8]) -> ([u8; 32], Vec<u8>) {
    (sha2::Sha256::digest(bytes).into(), bytes.to_vec())
}

#[test]
fn membership_log_takes_valid_entries_from_peers() {
    let mut log = Document::new(actor(1));
    log.add_log_entries(&[hashed(&entry("a"))], 1).unwrap();
    let mut peer = Document::load(&log.save(), actor(2)).unwrap();
    peer.add_log_entries(&[hashed(&entry("b"))], 2).unwrap();
    let (mut ours, mut theirs) = (State::new(), State::new());
    let mut rounds = 0;
    while rounds < 10 {
        rounds += 1;
        let a = peer.generate_sync_message(&mut theirs);
        let b = log.generate_sync_message(&mut ours);
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(m) = a {
            let r = log.receive_sync_message(&mut ours, &m, ChangePolicy::MembershipLog);
            assert!(r.error.is_none(), "{:?}", r.error);
        }
        if let Some(m) = b {
            peer.receive_sync_message(&mut theirs, &m, ChangePolicy::MembershipLog);
        }
    }
    assert_eq!(log.log_entries().len(), 2);
    // A whole log as a `Doc` frame, into a fresh replica.
    let mut fresh = Document::new(actor(3));
    let r = fresh.receive_chunks(&log.save(), ChangePolicy::MembershipLog);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(fresh.log_entries().len(), 2);
}

#[test]
fn membership_log_refuses_anything_but_entries() {
    let mut log = Document::new(actor(1));
    let genesis = entry("a");
    log.add_log_entries(&[hashed(&genesis)], 1).unwrap();
    let heads = log.heads();
    let key = log_key(&sha2::Sha256::digest(&genesis).into());
    let other = entry("b");
    type Edit = Box<dyn Fn(&mut AutoCommit)>;
    let wrong_key = log_key(&sha2::Sha256::digest(&other).into());
    let edits: Vec<(&str, Edit)> = vec![
        (
            "delete an entry",
            Box::new(move |p| p.delete(ROOT, key.as_str()).unwrap()),
        ),
        (
            "a string field",
            Box::new(|p| p.put(ROOT, "x", "y").unwrap()),
        ),
        (
            "a nested object",
            Box::new(|p| {
                p.put_object(ROOT, "entry/x", automerge::ObjType::Map)
                    .unwrap();
            }),
        ),
        (
            "bytes that are not an entry",
            Box::new(|p| {
                let junk = b"junk".to_vec();
                let name = log_key(&sha2::Sha256::digest(&junk).into());
                p.put(ROOT, name.as_str(), ScalarValue::Bytes(junk))
                    .unwrap();
            }),
        ),
        (
            "an entry under the wrong name",
            Box::new(move |p| {
                p.put(
                    ROOT,
                    format!("{wrong_key}0").as_str(),
                    ScalarValue::Bytes(other.clone()),
                )
                .unwrap();
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut peer = raw_peer(&mut log);
        edit(&mut peer);
        peer.commit();
        let error = sync_from(&mut log, &mut peer, ChangePolicy::MembershipLog);
        assert!(
            matches!(error, Some(DocError::Refused(_))),
            "{what}: {error:?}"
        );
        assert_eq!(log.heads(), heads, "{what}");
        let r = log.receive_chunks(&peer.save(), ChangePolicy::MembershipLog);
        assert!(
            matches!(r.error, Some(DocError::Refused(_))),
            "{what}: {:?}",
            r.error
        );
        assert_eq!(log.heads(), heads, "{what}");
    }
}

#[test]
fn replacing_a_long_text_costs_about_a_fresh_write() {
    let old: String = (0..600_000u32)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let new: String = (0..600_000u32)
        .map(|i| char::from(b'a' + (i * 11 % 26) as u8))
        .collect();
    let mut d = Document::new(actor(1));
    let start = Instant::now();
    d.put(&obj(json!({"body": old})), 1).unwrap();
    let fresh = start.elapsed();
    let start = Instant::now();
    d.put(&obj(json!({"body": new.clone()})), 2).unwrap();
    let replaced = start.elapsed();
    // Diffing this took minutes; a splice deletes and inserts, about twice
    // a fresh write (compared, not timed, so a loaded machine cannot fail it).
    assert!(
        replaced < fresh * 4 + Duration::from_secs(1),
        "replaced in {replaced:?}, written fresh in {fresh:?}"
    );
    assert_eq!(d.to_json(), Some(obj(json!({"body": new}))));
}

#[test]
fn small_edits_to_long_text_stay_minimal() {
    let base: String = "lorem ipsum ".repeat(20_000);
    let mut d = Document::new(actor(1));
    d.put(&obj(json!({"body": base.clone()})), 1).unwrap();
    // Two edits whose span stays within the diff budget.
    let mut edited = base.clone();
    edited.insert_str(100_000, "NEW");
    edited.replace_range(100_900..100_905, "");
    d.put(&obj(json!({"body": edited.clone()})), 2).unwrap();
    let last = d.doc.get_changes(&[]).last().unwrap().decode();
    // Three inserted characters and five deletions, not a rewrite.
    assert!(last.operations.len() <= 8, "{} ops", last.operations.len());
    assert_eq!(d.to_json(), Some(obj(json!({"body": edited}))));
}

#[test]
fn past_the_budget_edits_elsewhere_still_merge() {
    let base: String = "abcdefghij".repeat(1000);
    let mut a = Document::new(actor(1));
    a.put(&obj(json!({"t": base.clone()})), 1).unwrap();
    let mut b = Document::load(&a.save(), actor(2)).unwrap();
    // `a` rewrites the middle (over the budget); `b` edits both ends.
    let middle: String = "Z".repeat(8000);
    let a_text = format!("{}{}{}", &base[..1000], middle, &base[9000..]);
    a.put(&obj(json!({"t": a_text})), 2).unwrap();
    let b_text = format!("<{base}>");
    b.put(&obj(json!({"t": b_text})), 2).unwrap();
    a.merge(&mut b).unwrap();
    let expected = format!("<{}{}{}>", &base[..1000], middle, &base[9000..]);
    // (Compared as a boolean: a failure would print 20k characters.)
    assert!(a.to_json() == Some(obj(json!({"t": expected}))));
}

#[test]
fn a_short_text_rewritten_still_merges_in_place() {
    let (mut a, mut b) = (Document::new(actor(1)), Document::new(actor(2)));
    a.put(&obj(json!({"t": "kitten"})), 1).unwrap();
    b.merge(&mut a).unwrap();
    a.put(&obj(json!({"t": "sitting"})), 2).unwrap();
    b.put(&obj(json!({"t": "kitten!"})), 2).unwrap();
    a.merge(&mut b).unwrap();
    // Both edits survive; the two inserts after "n" are ordered by actor.
    let merged = a.to_json().unwrap()["t"].clone();
    assert!(
        merged == json!("sitting!") || merged == json!("sittin!g"),
        "{merged}"
    );
}
