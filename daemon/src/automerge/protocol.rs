//! The automerge-repo network protocol, version "1": one CBOR map per
//! binary WebSocket frame. Decoding is lenient where real clients differ
//! (integers sent as floats, `undefined` fields, document ids as bytes,
//! `metadata` or `peerMetadata`) and strict where it matters: a frame that
//! is not a map with a known shape is an error, never a guess.

use ciborium::Value;
use weft_core::interop::encode_automerge_id;

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// A message from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Join {
        sender: String,
        versions: Vec<String>,
    },
    /// `request` (the client lacks the document) or `sync`.
    Sync {
        request: bool,
        document: String,
        data: Vec<u8>,
    },
    Ephemeral {
        /// The original sender: clients forward each other's messages.
        sender: String,
        document: String,
        session: String,
        count: u64,
        data: Vec<u8>,
    },
    DocUnavailable {
        document: String,
    },
    Leave,
    /// Messages a server may ignore (`remote-subscription-change`,
    /// `remote-heads-changed`).
    Ignored(String),
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed automerge-repo message: {0}")]
pub struct Malformed(pub String);

fn bad(m: impl Into<String>) -> Malformed {
    Malformed(m.into())
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
        // ciborium reads `undefined` as null; both mean absent.
        .filter(|v| !v.is_null())
}

fn text(map: &[(Value, Value)], name: &str) -> Result<String, Malformed> {
    match field(map, name) {
        Some(Value::Text(t)) => Ok(t.clone()),
        Some(_) => Err(bad(format!("`{name}` is not a string"))),
        None => Err(bad(format!("`{name}` is missing"))),
    }
}

fn bytes(map: &[(Value, Value)], name: &str) -> Result<Vec<u8>, Malformed> {
    match field(map, name) {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        // cbor-x may tag typed arrays (RFC 8746, tag 64 = uint8 array).
        Some(Value::Tag(_, inner)) if inner.is_bytes() => {
            Ok(inner.as_bytes().cloned().unwrap_or_default())
        }
        Some(_) => Err(bad(format!("`{name}` is not bytes"))),
        None => Err(bad(format!("`{name}` is missing"))),
    }
}

fn count(map: &[(Value, Value)], name: &str) -> Result<u64, Malformed> {
    match field(map, name) {
        Some(Value::Integer(i)) => {
            u64::try_from(i128::from(*i)).map_err(|_| bad(format!("`{name}` is negative")))
        }
        // cbor-x encodes some integers as float64.
        Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53) => {
            Ok(*f as u64)
        }
        Some(_) => Err(bad(format!("`{name}` is not a count"))),
        None => Ok(0),
    }
}

/// The document id, as text or as bytes (its 16 raw bytes, or its text in UTF-8).
fn document(map: &[(Value, Value)]) -> Result<String, Malformed> {
    let id = match field(map, "documentId") {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Bytes(b)) if b.len() == 16 => {
            encode_automerge_id(b.as_slice().try_into().expect("16 bytes"))
        }
        Some(Value::Bytes(b)) => String::from_utf8(b.clone())
            .map_err(|_| bad("`documentId` bytes are neither an id nor text"))?,
        Some(_) => return Err(bad("`documentId` is not a string")),
        None => return Err(bad("`documentId` is missing")),
    };
    // Normalized to the bare id, whatever form it came in.
    let bytes = weft_core::interop::parse_automerge_url(&id).map_err(|e| bad(e.to_string()))?;
    Ok(encode_automerge_id(bytes))
}

/// Deepest nesting a protocol message needs (a map holding a map).
const MAX_DEPTH: usize = 8;
/// Most data items in one frame; real messages have a few dozen.
const MAX_ITEMS: usize = 4_096;

/// Walks the CBOR headers without allocating and refuses frames nested or
/// numerous beyond any protocol message: decoded into a value tree, such a
/// frame would cost many times its size in memory.
fn check_shape(frame: &[u8]) -> Result<(), Malformed> {
    // Items still expected at each open level (`None`: indefinite length).
    let mut open: Vec<Option<u64>> = Vec::new();
    let mut items = 0usize;
    let mut at = 0usize;
    let arg = |at: &mut usize, info: u8| -> Result<Option<u64>, Malformed> {
        let len = match info {
            0..=23 => return Ok(Some(u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Ok(None),
            _ => return Err(bad("not CBOR: reserved header")),
        };
        let bytes = frame
            .get(*at..*at + len)
            .ok_or_else(|| bad("not CBOR: truncated"))?;
        *at += len;
        Ok(Some(
            bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)),
        ))
    };
    loop {
        // Close finished definite-length containers.
        while let Some(Some(0)) = open.last() {
            open.pop();
        }
        if open.is_empty() && items > 0 {
            return if at == frame.len() {
                Ok(())
            } else {
                Err(bad("not CBOR: trailing bytes"))
            };
        }
        let Some(&byte) = frame.get(at) else {
            return Err(bad("not CBOR: truncated"));
        };
        at += 1;
        if byte == 0xff {
            match open.pop() {
                Some(None) => continue,
                _ => return Err(bad("not CBOR: stray break")),
            }
        }
        if let Some(Some(n)) = open.last_mut() {
            *n -= 1;
        }
        items += 1;
        if items > MAX_ITEMS {
            return Err(bad(format!("more than {MAX_ITEMS} items in one frame")));
        }
        let (major, info) = (byte >> 5, byte & 0x1f);
        let n = arg(&mut at, info)?;
        match (major, n) {
            (0 | 1 | 7, _) => {}
            (2 | 3, Some(len)) => {
                let len = usize::try_from(len).map_err(|_| bad("not CBOR: huge string"))?;
                at = at
                    .checked_add(len)
                    .filter(|&e| e <= frame.len())
                    .ok_or_else(|| bad("not CBOR: truncated"))?;
            }
            // Indefinite strings are chunks until a break: a container.
            (2 | 3, None) => open.push(None),
            (4, n) => open.push(n),
            (5, n) => open.push(n.map(|p| p.saturating_mul(2))),
            // A tag is followed by one item.
            (6, _) => open.push(Some(1)),
            _ => return Err(bad("not CBOR")),
        }
        if open.len() > MAX_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_DEPTH} levels")));
        }
    }
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Incoming, Malformed> {
    check_shape(frame)?;
    let value: Value = ciborium::from_reader(frame).map_err(|e| bad(format!("not CBOR: {e}")))?;
    let Value::Map(map) = value else {
        return Err(bad("not a CBOR map"));
    };
    let kind = text(&map, "type")?;
    Ok(match kind.as_str() {
        "join" => Incoming::Join {
            sender: text(&map, "senderId")?,
            // Clients that predate versioning send none: they speak "1".
            versions: match field(&map, "supportedProtocolVersions") {
                Some(Value::Array(vs)) => vs
                    .iter()
                    .filter_map(|v| v.as_text().map(str::to_owned))
                    .collect(),
                Some(_) => return Err(bad("`supportedProtocolVersions` is not a list")),
                None => vec![PROTOCOL_VERSION.to_owned()],
            },
        },
        "request" | "sync" => Incoming::Sync {
            request: kind == "request",
            document: document(&map)?,
            data: bytes(&map, "data")?,
        },
        "ephemeral" => Incoming::Ephemeral {
            sender: text(&map, "senderId")?,
            document: document(&map)?,
            session: text(&map, "sessionId").unwrap_or_default(),
            count: count(&map, "count")?,
            data: bytes(&map, "data")?,
        },
        "doc-unavailable" => Incoming::DocUnavailable {
            document: document(&map)?,
        },
        "leave" => Incoming::Leave,
        "remote-subscription-change" | "remote-heads-changed" => Incoming::Ignored(kind),
        // Newer clients may send types this server does not know; like the
        // JS implementation, ignore them rather than drop the connection.
        _ => Incoming::Ignored(kind),
    })
}

fn encode(pairs: Vec<(&str, Value)>) -> Vec<u8> {
    let map = Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::Text(k.to_owned()), v))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).expect("writing CBOR to memory cannot fail");
    out
}

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// `peer`: the answer to a `join`.
pub fn peer(me: &str, client: &str) -> Vec<u8> {
    encode(vec![
        ("type", t("peer")),
        ("senderId", t(me)),
        ("targetId", t(client)),
        ("selectedProtocolVersion", t(PROTOCOL_VERSION)),
        (
            "peerMetadata",
            Value::Map(vec![(t("isEphemeral"), Value::Bool(false))]),
        ),
    ])
}

/// `error`, sent before closing the socket.
pub fn error(me: &str, client: Option<&str>, message: &str) -> Vec<u8> {
    let mut pairs = vec![
        ("type", t("error")),
        ("senderId", t(me)),
        ("message", t(message)),
    ];
    if let Some(c) = client {
        pairs.push(("targetId", t(c)));
    }
    encode(pairs)
}

/// `sync` with a non-empty Automerge sync message (an empty one makes the
/// JS client throw, so callers never send one).
pub fn sync(me: &str, client: &str, document: &str, data: Vec<u8>) -> Vec<u8> {
    debug_assert!(!data.is_empty());
    encode(vec![
        ("type", t("sync")),
        ("senderId", t(me)),
        ("targetId", t(client)),
        ("documentId", t(document)),
        ("data", Value::Bytes(data)),
    ])
}

/// `doc-unavailable`: this node has no such document.
pub fn doc_unavailable(me: &str, client: &str, document: &str) -> Vec<u8> {
    encode(vec![
        ("type", t("doc-unavailable")),
        ("senderId", t(me)),
        ("targetId", t(client)),
        ("documentId", t(document)),
    ])
}

/// `ephemeral`, relayed from another client with its sender kept.
pub fn ephemeral(
    sender: &str,
    target: &str,
    document: &str,
    session: &str,
    count: u64,
    data: &[u8],
) -> Vec<u8> {
    encode(vec![
        ("type", t("ephemeral")),
        ("senderId", t(sender)),
        ("targetId", t(target)),
        ("documentId", t(document)),
        ("sessionId", t(session)),
        ("count", Value::Integer(count.into())),
        ("data", Value::Bytes(data.to_vec())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pairs: Vec<(&str, Value)>) -> Vec<u8> {
        encode(pairs)
    }

    fn doc_id() -> String {
        encode_automerge_id([7; 16])
    }

    #[test]
    fn join_and_sync_decode_with_either_id_encoding() {
        let join = frame(vec![
            ("type", t("join")),
            ("senderId", t("client-1")),
            ("supportedProtocolVersions", Value::Array(vec![t("1")])),
            ("metadata", Value::Map(vec![])),
        ]);
        assert_eq!(
            decode(&join).unwrap(),
            Incoming::Join {
                sender: "client-1".into(),
                versions: vec!["1".into()]
            }
        );
        for id in [
            t(&doc_id()),
            Value::Bytes(vec![7; 16]),
            Value::Bytes(doc_id().into_bytes()),
        ] {
            let msg = frame(vec![
                ("type", t("request")),
                ("senderId", t("client-1")),
                ("targetId", t("server")),
                ("documentId", id),
                ("data", Value::Tag(64, Box::new(Value::Bytes(vec![1, 2])))),
            ]);
            assert_eq!(
                decode(&msg).unwrap(),
                Incoming::Sync {
                    request: true,
                    document: doc_id(),
                    data: vec![1, 2]
                }
            );
        }
    }

    #[test]
    fn floats_and_undefined_are_tolerated() {
        let mut msg = frame(vec![
            ("type", t("ephemeral")),
            ("senderId", t("client-2")),
            ("documentId", t(&doc_id())),
            ("sessionId", Value::Null),
            ("count", Value::Float(3.0)),
            ("data", Value::Bytes(vec![9])),
        ]);
        // Turn the one null (0xf6) into CBOR `undefined` (0xf7), as cbor-x sends.
        let at = msg.iter().position(|&b| b == 0xf6).unwrap();
        msg[at] = 0xf7;
        assert_eq!(
            decode(&msg).unwrap(),
            Incoming::Ephemeral {
                sender: "client-2".into(),
                document: doc_id(),
                session: String::new(),
                count: 3,
                data: vec![9]
            }
        );
    }

    #[test]
    fn unknown_types_versionless_joins_and_url_ids_are_accepted() {
        assert_eq!(
            decode(&frame(vec![("type", t("teleport"))])).unwrap(),
            Incoming::Ignored("teleport".into())
        );
        assert_eq!(
            decode(&frame(vec![("type", t("join")), ("senderId", t("old"))])).unwrap(),
            Incoming::Join {
                sender: "old".into(),
                versions: vec!["1".into()]
            }
        );
        let url = format!("automerge:{}", doc_id());
        let msg = frame(vec![
            ("type", t("sync")),
            ("documentId", t(&url)),
            ("data", Value::Bytes(vec![1])),
        ]);
        assert_eq!(
            decode(&msg).unwrap(),
            Incoming::Sync {
                request: false,
                document: doc_id(),
                data: vec![1]
            }
        );
    }

    #[test]
    fn deep_or_huge_structures_are_refused_before_decoding() {
        // 100,000 nested empty arrays would cost far more memory decoded
        // than the frame's size; the shape check refuses them first.
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x80);
        assert!(decode(&deep).unwrap_err().0.contains("nested"));
        // An indefinite array of 100,000 empty arrays: too many items.
        let mut wide = vec![0x9fu8];
        wide.extend(std::iter::repeat_n(0x80u8, 100_000));
        wide.push(0xff);
        assert!(decode(&wide).unwrap_err().0.contains("items"));
    }

    #[test]
    fn malformed_frames_are_refused() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff, 0x00],
            frame(vec![("nope", t("x"))]),
            frame(vec![
                ("type", t("sync")),
                ("documentId", t("not-an-id")),
                ("data", Value::Bytes(vec![1])),
            ]),
            frame(vec![
                ("type", t("sync")),
                ("documentId", t(&doc_id())),
                ("data", t("text")),
            ]),
            frame(vec![("type", t("sync")), ("documentId", t(&doc_id()))]),
            frame(vec![
                ("type", t("ephemeral")),
                ("documentId", t(&doc_id())),
                ("count", Value::Float(-1.5)),
                ("data", Value::Bytes(vec![])),
            ]),
            {
                let mut v = Vec::new();
                ciborium::into_writer(&Value::Array(vec![]), &mut v).unwrap();
                v
            },
        ];
        for c in cases {
            assert!(decode(&c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn server_messages_round_trip_through_the_decoder_shape() {
        let s = sync("server", "client", &doc_id(), vec![1, 2, 3]);
        let v: Value = ciborium::from_reader(s.as_slice()).unwrap();
        let map = v.into_map().unwrap();
        assert_eq!(text(&map, "type").unwrap(), "sync");
        assert_eq!(bytes(&map, "data").unwrap(), vec![1, 2, 3]);
        let p: Value = ciborium::from_reader(peer("server", "client").as_slice()).unwrap();
        let map = p.into_map().unwrap();
        assert_eq!(text(&map, "selectedProtocolVersion").unwrap(), "1");
        assert_eq!(text(&map, "targetId").unwrap(), "client");
    }
}
