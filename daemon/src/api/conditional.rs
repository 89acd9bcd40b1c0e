//! HTTP validators for documents: the `ETag` a read or write answers with,
//! and the `If-Match` / `If-None-Match` headers of a write, turned into the
//! core's [`Precondition`] (which the writer actor checks atomically with
//! the write).
//!
//! The entity tag is the document's heads, sorted, joined by `.`, quoted:
//! `"<hex>.<hex>"`. The heads name the version exactly (equal heads, equal
//! document), so it is a strong validator, and a client can build it from
//! the `heads` a write answered with.

use axum::http::{HeaderMap, HeaderValue, header};
use weft_core::Precondition;

use super::Failure;
use super::input::bad;

/// Longest `If-Match` / `If-None-Match` value read: a tag of a thousand
/// concurrent heads fits; anything longer is refused, not parsed.
pub const MAX_CONDITION_LEN: usize = 65 * 1024;

/// The entity tag of a version with these (sorted) heads.
pub fn etag(heads: &[String]) -> HeaderValue {
    let mut sorted = heads.to_vec();
    sorted.sort();
    let tag = format!("\"{}\"", sorted.join("."));
    HeaderValue::from_str(&tag).expect("hex heads make a valid header value")
}

/// The write's precondition from its headers: `If-Match: *` (the document
/// exists), `If-Match: "<tag>"` (it exists with exactly these heads),
/// `If-None-Match: *` (it does not exist); both at once can never hold.
/// Malformed headers, several tags, or `If-None-Match` with a tag are a
/// 400; an empty header is no condition.
pub fn precondition(headers: &HeaderMap) -> Result<Precondition, Failure> {
    let if_match = value(headers, header::IF_MATCH)?;
    let if_none = value(headers, header::IF_NONE_MATCH)?;
    match (if_match, if_none) {
        (None, None) => Ok(Precondition::Any),
        (_, Some(v)) if v != "*" => Err(bad(
            "on a write, If-None-Match takes only `*` (create only if absent)",
        )),
        // The document would have to exist (If-Match) and not exist
        // (If-None-Match: *): RFC 9110 evaluates one, then the other, and
        // one of them fails. No live document has empty heads.
        (Some(v), Some(_)) => entity_tags_or_star(&v).map(|()| Precondition::Heads(Vec::new())),
        (None, Some(_)) => Ok(Precondition::Absent),
        (Some(v), None) if v == "*" => Ok(Precondition::Exists),
        (Some(v), None) => {
            let tags = entity_tags(&v)?;
            match tags.as_slice() {
                [(false, tag)] => Ok(Precondition::Heads(heads_of(tag))),
                // A weak tag never matches in If-Match (strong comparison):
                // no live document has empty heads, so this always fails.
                [(true, _)] => Ok(Precondition::Heads(Vec::new())),
                _ => Err(bad(
                    "If-Match takes `*` or one entity tag (the ETag a read answered with)",
                )),
            }
        }
    }
}

/// Whether a read's `If-None-Match` names the version with these heads
/// (`*`, or any tag equal to its `ETag`, weak or not: RFC 9110's weak
/// comparison), so the answer can be 304 without the body. A malformed
/// header is a 400.
pub fn not_modified(headers: &HeaderMap, heads: &[String]) -> Result<bool, Failure> {
    let Some(v) = value(headers, header::IF_NONE_MATCH)? else {
        return Ok(false);
    };
    if v == "*" {
        return Ok(true);
    }
    let current = etag(heads);
    let current = current.to_str().unwrap_or_default().trim_matches('"');
    Ok(entity_tags(&v)?.iter().any(|(_, tag)| tag == current))
}

/// Checks an `If-Match` value is `*` or a well-formed tag list.
fn entity_tags_or_star(v: &str) -> Result<(), Failure> {
    match v {
        "*" => Ok(()),
        _ => entity_tags(v).map(drop),
    }
}

/// A header's value, all its lines joined; `None` when absent.
fn value(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<String>, Failure> {
    let mut out: Option<String> = None;
    for v in headers.get_all(&name) {
        let text = v
            .to_str()
            .map_err(|_| bad(format!("{name} must be visible ASCII")))?;
        let joined = out.get_or_insert_with(String::new);
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(text);
        if joined.len() > MAX_CONDITION_LEN {
            return Err(bad(format!(
                "{name} is longer than {MAX_CONDITION_LEN} bytes"
            )));
        }
    }
    // An empty value states no condition: taken as absent (the schema's
    // patterns allow exactly that, and blanks around a value).
    Ok(out
        .map(|v| v.trim_matches([' ', '\t']).to_owned())
        .filter(|v| !v.is_empty()))
}

/// `1#entity-tag` (RFC 9110): `(weak, opaque-tag)` pairs.
fn entity_tags(list: &str) -> Result<Vec<(bool, String)>, Failure> {
    let malformed = || {
        bad(format!(
            "malformed entity tag list {list:?}: write \"<tag>\" as an ETag gave it"
        ))
    };
    let mut tags = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let body = rest.strip_prefix('"').ok_or_else(malformed)?;
        let end = body.find('"').ok_or_else(malformed)?;
        let tag = &body[..end];
        if !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return Err(malformed());
        }
        tags.push((weak, tag.to_owned()));
        rest = body[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
            if rest.is_empty() {
                return Err(malformed());
            }
        } else if !rest.is_empty() {
            return Err(malformed());
        }
    }
    if tags.is_empty() {
        return Err(malformed());
    }
    Ok(tags)
}

/// The heads an entity tag names. A tag this API did not make names no
/// heads any document has, so it fails as a stale one does (412).
fn heads_of(tag: &str) -> Vec<String> {
    tag.split('.').map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn headers_become_preconditions() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        assert_eq!(precondition(&HeaderMap::new()).unwrap(), Precondition::Any);
        let m = |v: &str| precondition(&with(header::IF_MATCH, v));
        assert_eq!(m("*").unwrap(), Precondition::Exists);
        assert_eq!(
            m(&format!("\"{a}.{b}\"")).unwrap(),
            Precondition::Heads(vec![a.clone(), b.clone()])
        );
        assert_eq!(
            m(&format!("W/\"{a}\"")).unwrap(),
            Precondition::Heads(vec![])
        );
        for bad in ["abc", "\"a", "\"a\" x", "\"a\",", "\"a\", \"b\""] {
            assert!(m(bad).is_err(), "{bad:?}");
        }
        let n = |v: &str| precondition(&with(header::IF_NONE_MATCH, v));
        assert_eq!(n("*").unwrap(), Precondition::Absent);
        assert!(n("\"x\"").is_err());
        let mut both = with(header::IF_MATCH, "*");
        both.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(precondition(&both).unwrap(), Precondition::Heads(vec![]));
        assert_eq!(m(" ").unwrap(), Precondition::Any);
        assert!(m(&format!("\"{}\"", "a".repeat(MAX_CONDITION_LEN))).is_err());
        assert_eq!(
            etag(&[b.clone(), a.clone()]),
            format!("\"{a}.{}\"", "b".repeat(64))
        );
        let heads = [a.clone()];
        let n = |v: &str| not_modified(&with(header::IF_NONE_MATCH, v), &heads);
        assert!(!not_modified(&HeaderMap::new(), &heads).unwrap());
        assert!(n("*").unwrap());
        assert!(n(&format!("\"{b}\", W/\"{a}\"")).unwrap());
        assert!(!n(&format!("\"{b}\"")).unwrap());
        assert!(n("nonsense").is_err());
    }
}
