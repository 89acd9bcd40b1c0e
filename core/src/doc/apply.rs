//! JSON -> Automerge as a field-level diff: only what changed becomes an
//! operation, so concurrent edits to different fields (or different parts of
//! one string, via the bounded text diff in `text`) merge instead of overwriting each other.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use serde_json::{Map, Value as Json};

/// Makes the map `obj` equal to `target`, leaving fields for which `keep`
/// returns true untouched (used for reserved root fields).
pub(super) fn sync_map(
    doc: &mut AutoCommit,
    obj: &ObjId,
    target: &Map<String, Json>,
    keep: impl Fn(&str) -> bool,
) -> Result<(), AutomergeError> {
    let stale: Vec<String> = doc
        .keys(obj)
        .filter(|k| !target.contains_key(k) && !keep(k))
        .collect();
    for key in stale {
        doc.delete(obj, key.as_str())?;
    }
    for (key, value) in target {
        set(doc, obj, Prop::Map(key.clone()), value)?;
    }
    Ok(())
}

/// Applies an RFC 7396 merge patch to the map `obj`: `null` removes a field,
/// an object merges recursively, anything else replaces.
pub(super) fn merge_patch(
    doc: &mut AutoCommit,
    obj: &ObjId,
    patch: &Map<String, Json>,
) -> Result<(), AutomergeError> {
    for (key, value) in patch {
        let existing = doc.get(obj, key.as_str())?;
        match value {
            Json::Null => {
                if existing.is_some() {
                    doc.delete(obj, key.as_str())?;
                }
            }
            Json::Object(inner) => match existing {
                Some((Value::Object(ObjType::Map), child)) => merge_patch(doc, &child, inner)?,
                _ => set(doc, obj, Prop::Map(key.clone()), &strip_nulls(inner))?,
            },
            other => set(doc, obj, Prop::Map(key.clone()), other)?,
        }
    }
    Ok(())
}

/// A merge patch applied to a non-object yields the patch without its nulls.
fn strip_nulls(map: &Map<String, Json>) -> Json {
    Json::Object(
        map.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Json::Object(m) => (k.clone(), strip_nulls(m)),
                v => (k.clone(), v.clone()),
            })
            .collect(),
    )
}

/// Sets `obj[prop]` to `value`, reusing the existing object when its type
/// matches so that only the difference is recorded.
fn set(doc: &mut AutoCommit, obj: &ObjId, prop: Prop, value: &Json) -> Result<(), AutomergeError> {
    let existing = doc.get(obj, prop.clone())?;
    match (existing, value) {
        (Some((Value::Object(ObjType::Map), child)), Json::Object(m)) => {
            sync_map(doc, &child, m, |_| false)
        }
        (Some((Value::Object(ObjType::List), child)), Json::Array(items)) => {
            sync_list(doc, &child, items)
        }
        (Some((Value::Object(ObjType::Text), child)), Json::String(s)) => {
            let old = doc.text(&child)?;
            if old != *s {
                super::text::update(doc, (obj, prop), &child, &old, s)?;
            }
            Ok(())
        }
        (Some((Value::Scalar(old), _)), new) if scalar_equals(&old, new) => Ok(()),
        (_, new) => put_new(doc, obj, prop, new, false),
    }
}

/// Element-wise diff of a list: common prefix positions are diffed in place,
/// extra elements appended or removed from the end.
fn sync_list(doc: &mut AutoCommit, list: &ObjId, items: &[Json]) -> Result<(), AutomergeError> {
    let len = doc.length(list);
    for (i, item) in items.iter().enumerate().take(len) {
        set(doc, list, Prop::Seq(i), item)?;
    }
    for (i, item) in items.iter().enumerate().skip(len) {
        put_new(doc, list, Prop::Seq(i), item, true)?;
    }
    for i in (items.len()..len).rev() {
        doc.delete(list, i)?;
    }
    Ok(())
}

/// Writes a fresh value at `prop` (inserting into a list when `insert`).
fn put_new(
    doc: &mut AutoCommit,
    obj: &ObjId,
    prop: Prop,
    value: &Json,
    insert: bool,
) -> Result<(), AutomergeError> {
    let object = |doc: &mut AutoCommit, kind| match (&prop, insert) {
        (Prop::Seq(i), true) => doc.insert_object(obj, *i, kind),
        _ => doc.put_object(obj, prop.clone(), kind),
    };
    match value {
        Json::Object(m) => {
            let child = object(doc, ObjType::Map)?;
            sync_map(doc, &child, m, |_| false)
        }
        Json::Array(items) => {
            let child = object(doc, ObjType::List)?;
            sync_list(doc, &child, items)
        }
        Json::String(s) => {
            let child = object(doc, ObjType::Text)?;
            doc.splice_text(&child, 0, 0, s)?;
            Ok(())
        }
        scalar => {
            let v = json_scalar(scalar);
            match (&prop, insert) {
                (Prop::Seq(i), true) => doc.insert(obj, *i, v),
                _ => doc.put(obj, prop.clone(), v),
            }
        }
    }
}

fn json_scalar(value: &Json) -> ScalarValue {
    match value {
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ScalarValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                ScalarValue::Uint(u)
            } else {
                ScalarValue::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Null | Json::Array(_) | Json::Object(_) => ScalarValue::Null,
    }
}

fn scalar_equals(old: &ScalarValue, new: &Json) -> bool {
    match (old, new) {
        (ScalarValue::Null, Json::Null) => true,
        (ScalarValue::Boolean(a), Json::Bool(b)) => a == b,
        (ScalarValue::Int(a), Json::Number(n)) => n.as_i64() == Some(*a),
        (ScalarValue::Uint(a), Json::Number(n)) => n.as_i64().is_none() && n.as_u64() == Some(*a),
        (ScalarValue::F64(a), Json::Number(n)) => n.is_f64() && n.as_f64() == Some(*a),
        (ScalarValue::Str(a), Json::String(b)) => a.as_str() == b,
        _ => false,
    }
}
