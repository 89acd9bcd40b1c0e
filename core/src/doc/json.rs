//! Automerge -> JSON: the materialized view that SQLite indexes and `get`
//! returns. Text objects become strings; Weft's reserved root fields are
//! left out.

use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValueRef, ValueRef};
use serde_json::{Map, Number, Value};

use super::{MAX_DEPTH, RESERVED_PREFIX};

/// The document's user-visible root as a JSON object.
pub(super) fn root_to_json(doc: &AutoCommit) -> Map<String, Value> {
    root_fields(doc, false)
}

/// The root as JSON, with Weft's reserved fields when `reserved` (what a
/// peer wrote there counts towards the size limit too).
pub(super) fn root_fields(doc: &AutoCommit, reserved: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for item in doc.map_range(&ROOT, ..) {
        if !reserved && item.key.starts_with(RESERVED_PREFIX) {
            continue;
        }
        let id = item.id();
        let value = value_to_json(doc, item.value, &id, 1);
        out.insert(item.key.into_owned(), value);
    }
    out
}

/// Renders a value. Local writes never nest deeper than [`MAX_DEPTH`], but
/// a peer's changes can; deeper levels render as `null` so rendering (and
/// everything downstream that recurses) stays within the stack.
fn value_to_json(doc: &AutoCommit, value: ValueRef<'_>, id: &ObjId, depth: usize) -> Value {
    match value {
        ValueRef::Scalar(s) => scalar_to_json(s),
        ValueRef::Object(_) if depth >= MAX_DEPTH => Value::Null,
        ValueRef::Object(ObjType::Map | ObjType::Table) => {
            let mut out = Map::new();
            for item in doc.map_range(id, ..) {
                let child = item.id();
                let v = value_to_json(doc, item.value, &child, depth + 1);
                out.insert(item.key.into_owned(), v);
            }
            Value::Object(out)
        }
        ValueRef::Object(ObjType::List) => Value::Array(
            doc.list_range(id, ..)
                .map(|item| {
                    let child = item.id();
                    value_to_json(doc, item.value, &child, depth + 1)
                })
                .collect(),
        ),
        ValueRef::Object(ObjType::Text) => Value::String(doc.text(id).unwrap_or_default()),
    }
}

fn scalar_to_json(s: ScalarValueRef<'_>) -> Value {
    match s {
        ScalarValueRef::Str(s) => Value::String(s.into_owned()),
        ScalarValueRef::Int(i) | ScalarValueRef::Counter(i) | ScalarValueRef::Timestamp(i) => {
            Value::Number(i.into())
        }
        ScalarValueRef::Uint(u) => Value::Number(u.into()),
        // NaN and infinities cannot come from JSON but can from other peers.
        ScalarValueRef::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ScalarValueRef::Boolean(b) => Value::Bool(b),
        ScalarValueRef::Bytes(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        ScalarValueRef::Null | ScalarValueRef::Unknown { .. } => Value::Null,
    }
}

/// Whether any object or array nests deeper than `max` levels (the root
/// being level 1, as for local input). Stops descending past `max`, so the
/// recursion is bounded whatever a peer built.
pub(super) fn deeper_than(doc: &AutoCommit, max: usize) -> bool {
    fn walk(doc: &AutoCommit, obj: &ObjId, kind: ObjType, level: usize, max: usize) -> bool {
        if level > max {
            return true;
        }
        let children: Vec<(ObjId, ObjType)> = match kind {
            ObjType::Map | ObjType::Table => doc
                .map_range(obj, ..)
                .filter_map(|item| match item.value {
                    ValueRef::Object(t) => Some((item.id(), t)),
                    ValueRef::Scalar(_) => None,
                })
                .collect(),
            ObjType::List => doc
                .list_range(obj, ..)
                .filter_map(|item| match item.value {
                    ValueRef::Object(t) => Some((item.id(), t)),
                    ValueRef::Scalar(_) => None,
                })
                .collect(),
            ObjType::Text => Vec::new(),
        };
        children.into_iter().any(|(child, t)| {
            // Text renders as a string: it does not add a level.
            t != ObjType::Text && walk(doc, &child, t, level + 1, max)
        })
    }
    walk(doc, &ROOT, ObjType::Map, 1, max)
}
