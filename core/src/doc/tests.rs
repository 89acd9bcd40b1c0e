use proptest::prelude::*;
use serde_json::json;
use sha2::Digest;

use super::*;

fn actor(n: u8) -> ActorId {
    actor_for(NodeId::from_bytes([n; 32]), [n; 8])
}

fn obj(v: Json) -> Map<String, Json> {
    as_object(&v).unwrap().clone()
}

/// Two replicas that share `base` as their common history.
fn fork_pair(base: Json) -> (Document, Document) {
    let mut a = Document::new(actor(1));
    a.put(&obj(base), 1).unwrap();
    let b = Document::load(&a.save(), actor(2)).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    (a, b)
}

fn sync(a: &mut Document, b: &mut Document) {
    a.merge(b).unwrap();
    b.merge(a).unwrap();
}

#[test]
fn put_round_trips_every_json_type() {
    let value = json!({"s": "héllo", "i": -3, "u": u64::MAX, "f": 1.5, "b": true, "n": null,
                       "a": [1, "two", {"three": 3}], "o": {"deep": {"er": []}}});
    let mut d = Document::new(actor(1));
    assert!(d.put(&obj(value.clone()), 1).unwrap().is_some());
    assert_eq!(Json::Object(d.to_json().unwrap()), value);
}

#[test]
fn identical_put_makes_no_change() {
    let mut d = Document::new(actor(1));
    d.put(&obj(json!({"a": 1, "t": "x"})), 1).unwrap();
    let heads = d.heads();
    assert_eq!(d.put(&obj(json!({"a": 1, "t": "x"})), 2).unwrap(), None);
    assert_eq!(d.heads(), heads);
}

#[test]
fn concurrent_puts_to_different_fields_merge() {
    let (mut a, mut b) = fork_pair(json!({"title": "t", "done": false}));
    a.put(&obj(json!({"title": "t2", "done": false})), 2)
        .unwrap();
    b.put(&obj(json!({"title": "t", "done": true})), 2).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(
        Json::Object(a.to_json().unwrap()),
        json!({"title": "t2", "done": true})
    );
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn concurrent_string_edits_merge_character_wise() {
    let (mut a, mut b) = fork_pair(json!({"body": "hello world"}));
    a.put(&obj(json!({"body": "hello brave world"})), 2)
        .unwrap();
    b.put(&obj(json!({"body": "hello world!"})), 2).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(
        Json::Object(a.to_json().unwrap()),
        json!({"body": "hello brave world!"})
    );
}

#[test]
fn merge_patch_follows_rfc_7396() {
    let mut d = Document::new(actor(1));
    d.put(
        &obj(json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1})),
        1,
    )
    .unwrap();
    d.patch(
        &obj(json!({"a": "z", "c": {"f": null}, "new": {"x": null, "y": 1}})),
        2,
    )
    .unwrap();
    assert_eq!(
        Json::Object(d.to_json().unwrap()),
        json!({"a": "z", "c": {"d": "e"}, "keep": 1, "new": {"y": 1}})
    );
}

#[test]
fn delete_wins_over_a_concurrent_update_and_put_recreates() {
    let (mut a, mut b) = fork_pair(json!({"title": "t", "body": "b"}));
    a.delete(2).unwrap();
    b.patch(&obj(json!({"body": "edited"})), 2).unwrap();
    sync(&mut a, &mut b);
    assert!(a.is_deleted() && b.is_deleted());
    assert_eq!(a.to_json(), None);
    // A put after the delete recreates exactly the new JSON, with no hidden
    // field from the concurrent update resurfacing.
    b.put(&obj(json!({"title": "again"})), 3).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(
        Json::Object(a.to_json().unwrap()),
        json!({"title": "again"})
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut d = Document::new(actor(1));
    d.put(&obj(json!({"a": 1})), 1).unwrap();
    let heads = d.heads();
    assert!(matches!(
        d.put(&obj(json!({"_weft_deleted": false})), 2),
        Err(DocError::ReservedField(_))
    ));
    let mut deep = json!(1);
    for _ in 0..MAX_DEPTH {
        deep = json!([deep]);
    }
    assert!(matches!(
        d.put(&obj(json!({"x": deep})), 2),
        Err(DocError::TooDeep)
    ));
    let big = "x".repeat(MAX_DOC_BYTES);
    assert!(matches!(
        d.put(&obj(json!({"big": big})), 2),
        Err(DocError::TooLarge { .. })
    ));
    assert_eq!(d.heads(), heads);
    assert_eq!(Json::Object(d.to_json().unwrap()), json!({"a": 1}));
    assert!(matches!(
        parse_object("[1]"),
        Err(DocError::NotAnObject("an array"))
    ));
    assert!(matches!(parse_object("{"), Err(DocError::InvalidJson(_))));
}

#[test]
fn history_and_time_travel() {
    let mut d = Document::new(actor(7));
    d.put(&obj(json!({"v": 1})), 100).unwrap();
    let first = d.heads();
    d.patch(&obj(json!({"v": 2})), 200).unwrap();
    let h = d.history();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].message.as_deref(), Some("put"));
    assert_eq!(h[1].time, 200);
    assert_eq!(h[1].author, Some(NodeId::from_bytes([7; 32])));
    assert_eq!(h[1].deps, vec![h[0].hash.clone()]);
    assert_eq!(
        Json::Object(d.json_at(&first).unwrap().unwrap()),
        json!({"v": 1})
    );
    let unknown = ChangeHash([9; 32]);
    assert!(matches!(d.json_at(&[unknown]), Err(DocError::UnknownHeads)));
}

#[test]
fn garbage_bytes_do_not_load() {
    assert!(matches!(
        Document::load(b"not automerge", actor(1)),
        Err(DocError::Corrupt(_))
    ));
}

/// One user operation in the property test.
#[derive(Clone, Debug)]
enum Op {
    Put(Json),
    Patch(Json),
    Delete,
}

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        (-5i64..5).prop_map(Json::from),
        "[a-c ]{0,6}".prop_map(Json::from),
    ]
}

fn value() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::from),
            prop::collection::btree_map("[xyz]", inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Json> {
    prop::collection::btree_map("[a-d]", value(), 0..4)
        .prop_map(|m| Json::Object(m.into_iter().collect()))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => body().prop_map(Op::Put),
        3 => body().prop_map(Op::Patch),
        1 => Just(Op::Delete),
    ]
}

fn run(d: &mut Document, ops: &[Op]) {
    for (t, op) in ops.iter().enumerate() {
        let t = t as i64;
        match op {
            Op::Put(v) => {
                d.put(&obj(v.clone()), t).unwrap();
            }
            Op::Patch(v) if !d.is_deleted() => {
                d.patch(&obj(v.clone()), t).unwrap();
            }
            Op::Patch(_) => {}
            Op::Delete => {
                d.delete(t).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random edits on two replicas of one document, merged both ways,
    /// always give identical JSON (and identical deletion state).
    #[test]
    fn replicas_converge(base in body(), left in prop::collection::vec(op(), 0..6),
                         right in prop::collection::vec(op(), 0..6)) {
        let (mut a, mut b) = fork_pair(base);
        run(&mut a, &left);
        run(&mut b, &right);
        let mut a2 = Document::load(&a.save(), actor(3)).unwrap();
        let mut b2 = Document::load(&b.save(), actor(4)).unwrap();
        a.merge(&mut b2).unwrap();
        b.merge(&mut a2).unwrap();
        prop_assert_eq!(a.heads(), b.heads());
        prop_assert_eq!(a.to_json(), b.to_json());
        prop_assert_eq!(a.is_deleted(), b.is_deleted());
    }

    /// A put always leaves exactly the JSON that was put.
    #[test]
    fn put_is_exact(first in body(), second in body()) {
        let mut d = Document::new(actor(1));
        d.put(&obj(first), 1).unwrap();
        d.put(&obj(second.clone()), 2).unwrap();
        prop_assert_eq!(Json::Object(d.to_json().unwrap()), second);
    }
}

#[test]
fn hostile_bloom_filters_are_refused_without_panicking() {
    use automerge::sync::{BloomFilter, Have, Message, State};
    let mut sender = Document::new(actor(1));
    sender.put(&obj(json!({"a": 1})), 1).unwrap();
    let mut receiver = Document::load(&sender.save(), actor(2)).unwrap();
    let bytes = sender.generate_sync_message(&mut State::new()).unwrap();
    // entries = 1, bits per entry = 0, probes = 1: Automerge would divide by
    // zero evaluating it; a huge probe count would allocate without bound.
    let zero_bits = BloomFilter::try_from(&[1u8, 0, 1][..]).expect("parses");
    let many_probes =
        BloomFilter::try_from(&[1u8, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0][..]).expect("parses");
    for bloom in [zero_bits, many_probes] {
        let mut message = Message::decode(&bytes).unwrap();
        message.have = vec![Have {
            last_sync: vec![],
            bloom,
        }];
        let received = receiver.receive_sync_message(&mut State::new(), &message.encode(), true);
        assert!(
            matches!(received.error, Some(DocError::BadSyncMessage(_))),
            "{received:?}"
        );
        assert!(!received.changed);
        assert!(receiver.generate_sync_message(&mut State::new()).is_some());
    }
    let garbage = receiver.receive_sync_message(&mut State::new(), b"\x42garbage", true);
    assert!(garbage.error.is_some() && !garbage.changed);
}

#[test]
fn remote_nesting_beyond_the_limit_renders_as_null() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};
    // A peer's document nested far deeper than local writes may go.
    let mut remote = automerge::AutoCommit::new();
    let mut obj_id = remote.put_object(ROOT, "deep", ObjType::Map).unwrap();
    for _ in 0..(MAX_DEPTH * 4) {
        obj_id = remote.put_object(&obj_id, "x", ObjType::Map).unwrap();
    }
    let mut doc = Document::new(actor(1));
    doc.load_incremental(&remote.save()).unwrap();
    let json = Json::Object(doc.to_json().unwrap());
    let mut depth = 0;
    let mut cursor = &json["deep"];
    while let Json::Object(m) = cursor {
        depth += 1;
        cursor = &m["x"];
    }
    assert_eq!(*cursor, Json::Null);
    assert!(depth < MAX_DEPTH, "{depth}");
}

#[test]
fn a_log_cannot_lose_entries_to_deletes_or_overwrites() {
    use automerge::transaction::Transactable;
    let mut log = Document::new(actor(1));
    let entry = b"a signed entry".to_vec();
    let hash: [u8; 32] = sha2::Sha256::digest(&entry).into();
    log.add_log_entries(&[(hash, entry.clone())], 1).unwrap();
    // A writer deletes the entry, overwrites its field, and plants junk
    // under a name that is not its hash.
    let name = log_key(&hash);
    log.doc.delete(ROOT, name.as_str()).unwrap();
    log.doc.commit();
    log.doc
        .put(ROOT, name.as_str(), ScalarValue::Bytes(b"junk".to_vec()))
        .unwrap();
    log.doc
        .put(
            ROOT,
            log_key(&[7; 32]).as_str(),
            ScalarValue::Bytes(b"junk".to_vec()),
        )
        .unwrap();
    log.doc.commit();
    assert_eq!(log.log_entries(), vec![entry]);
}
