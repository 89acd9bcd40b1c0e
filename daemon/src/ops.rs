//! Every operation of the API, over a [`Node`], for its handlers. The CLI
//! reaches them only through the API (over HTTP or in process), so its two
//! paths cannot drift apart.

use std::time::Duration;

use serde_json::{Map, Value};
use weft_core::{
    Error, FilterOp, MAX_PAGE, Node, NodeId, Precondition, Query, Role, SpaceState, Versioned,
    Write,
};

use crate::duration::parse_duration;
use crate::model::{
    AutomergeUrl, Change, Connected, Event, Identity, Invite, InviteRequest, Joined, ListParams,
    Listed, Peer, Space, SpaceRef, Status, SyncState, Traffic, Written,
};

/// Invites last this long unless asked otherwise.
pub const DEFAULT_INVITE_EXPIRY: &str = "7d";

/// The space id for a `--space` value (see `weft_core::SpaceRef`: `None`
/// or `default` is the device's default space).
pub async fn space_id(node: &Node, space: Option<&str>) -> Result<String, Error> {
    node.resolve_space(space).await
}

pub async fn identity(node: &Node) -> Identity {
    Identity {
        node_id: node.node_id().to_string(),
        listen_addrs: node.listen_addrs().await,
    }
}

pub async fn space_create(node: &Node, name: &str) -> Result<SpaceRef, Error> {
    let id = node.space_create(name).await?;
    Ok(SpaceRef { id: id.to_string() })
}

pub async fn space_list(node: &Node) -> Result<Vec<Space>, Error> {
    Ok(node
        .space_list()
        .await?
        .into_iter()
        .map(|s| {
            let (state, reason) = state_name(s.state);
            Space {
                id: s.id,
                name: s.name,
                role: s.role.map(|r| r.to_string()),
                state,
                reason,
                members: s
                    .members
                    .into_iter()
                    .map(|(n, r)| (n.to_string(), r.to_string()))
                    .collect(),
                default: s.default,
            }
        })
        .collect())
}

pub async fn space_invite(
    node: &Node,
    space: Option<&str>,
    req: &InviteRequest,
) -> Result<Invite, Error> {
    let role: Role = req
        .role
        .as_deref()
        .unwrap_or("writer")
        .parse()
        .map_err(Error::InvalidInput)?;
    let expires = parse_duration(req.expires.as_deref().unwrap_or(DEFAULT_INVITE_EXPIRY))
        .map_err(Error::InvalidInput)?;
    let bound = match &req.node {
        Some(n) => Some(parse_node(n)?),
        None => None,
    };
    let space = space_id(node, space).await?;
    let invitation = node.space_invite(&space, role, expires, bound).await?;
    Ok(Invite {
        token: invitation.token,
        space,
        role: role.to_string(),
        expires_at: invitation.expires_at,
    })
}

/// The longest a join waits for its inviter: a day is far beyond any
/// sensible wait, and bounds the deadline arithmetic.
pub const MAX_JOIN_WAIT_SECS: f64 = 86_400.0;

/// How long a join waits for admission, from seconds given by a caller.
pub fn join_wait(secs: f64) -> Result<Duration, Error> {
    if !(0.0..=MAX_JOIN_WAIT_SECS).contains(&secs) {
        return Err(Error::InvalidInput(format!(
            "a join timeout of {secs} s is not usable: give 0 to {MAX_JOIN_WAIT_SECS} seconds"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Records the join (the token's entry) and, online, dials the inviter;
/// returns the space id. Where the device stands is [`joined`]'s to say.
pub async fn space_join(node: &Node, token: &str) -> Result<String, Error> {
    Ok(node.space_join(token.trim()).await?.to_string())
}

/// The answer to a join: the space and its state, or the refusal.
pub fn joined(id: String, state: SpaceState) -> Result<Joined, Error> {
    match state_name(state) {
        (_, Some(reason)) => Err(Error::Refused { space: id, reason }),
        (state, None) => Ok(Joined { id, state }),
    }
}

/// A space state as the CLI and API spell it, and the refusal's reason.
pub fn state_name(state: SpaceState) -> (String, Option<String>) {
    (state.name().to_owned(), state.reason().map(str::to_owned))
}

pub async fn space_revoke(node: &Node, space: Option<&str>, member: &str) -> Result<(), Error> {
    let member = parse_node(member)?;
    let space = space_id(node, space).await?;
    node.space_revoke(Some(&space), member).await
}

fn parse_node(s: &str) -> Result<NodeId, Error> {
    s.trim()
        .parse()
        .map_err(|e| Error::InvalidInput(format!("node id {s:?}: {e}")))
}

/// Puts the document if `pre` holds; also says whether it was created.
pub async fn put(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
    json: Value,
    pre: Precondition,
) -> Result<(Written, bool), Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    let done = node.write_if(Write::Put(key, json), pre).await?;
    Ok((Written { heads: done.heads }, done.created))
}

pub async fn patch(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
    patch: Value,
    pre: Precondition,
) -> Result<Written, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    let done = node.write_if(Write::Patch(key, patch), pre).await?;
    Ok(Written { heads: done.heads })
}

pub async fn delete(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
    pre: Precondition,
) -> Result<Written, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    let done = node.write_if(Write::Delete(key), pre).await?;
    Ok(Written { heads: done.heads })
}

/// The document with its heads, or [`Error::NotFound`] when absent or deleted.
pub async fn get_versioned(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
) -> Result<Versioned, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    node.get_versioned(&key)
        .await?
        .ok_or_else(|| Error::NotFound(key.to_string()))
}

/// The document, or [`Error::NotFound`] when absent or deleted.
pub async fn get(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
) -> Result<Value, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    node.get(&key)
        .await?
        .ok_or_else(|| Error::NotFound(key.to_string()))
}

/// The document's automerge-repo URL; [`Error::NotFound`] when absent.
pub async fn url(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
) -> Result<AutomergeUrl, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    if node.get(&key).await?.is_none() {
        return Err(Error::NotFound(key.to_string()));
    }
    Ok(AutomergeUrl {
        url: weft_core::interop::automerge_url(&key),
    })
}

pub async fn history(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    id: &str,
) -> Result<Vec<Change>, Error> {
    let key = weft_core::DocKey::new(&space_id(node, space).await?, collection, id)?;
    let changes = node.history(&key).await?;
    if changes.is_empty() {
        return Err(Error::NotFound(key.to_string()));
    }
    Ok(changes
        .into_iter()
        .map(|c| Change {
            hash: c.hash,
            author: c.author.map(|a| a.to_string()),
            actor: c.actor,
            seq: c.seq,
            time: c.time,
            message: c.message,
            deps: c.deps,
        })
        .collect())
}

/// One page of a listing (at most `limit`, default [`MAX_PAGE`]) and, when
/// more match and the listing is by id, the `after` cursor of the next.
/// The query a listing's parameters describe (without its page size).
pub async fn list_query(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    params: &ListParams,
) -> Result<Query, Error> {
    let mut query = Query::new(collection).space(space_id(node, space).await?);
    for cond in &params.filters {
        let (field, op, value) = parse_condition(cond)?;
        query = query.filter(field, op, value);
    }
    if let Some(field) = &params.order {
        query = query.order_by(field.clone(), params.desc);
    }
    if let Some(after) = &params.after {
        query = query.after(after.clone());
    }
    Ok(query)
}

pub async fn list(
    node: &Node,
    space: Option<&str>,
    collection: &str,
    params: &ListParams,
) -> Result<(Vec<Listed>, Option<String>), Error> {
    let mut query = list_query(node, space, collection, params).await?;
    let limit = params.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    // One more than the page shows whether another page follows.
    query = query.limit(limit + 1);
    let mut items: Vec<Listed> = node
        .query(&query)
        .await?
        .into_iter()
        .map(|r| Listed {
            id: r.id,
            doc: r.json,
        })
        .collect();
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = match (more, &params.order) {
        (true, None) => items.last().map(|l| l.id.clone()),
        _ => None,
    };
    Ok((items, next))
}

/// `FIELD=VALUE` and its siblings `!=`, `<=`, `>=`, `<`, `>`. The value is
/// JSON when it parses as a JSON scalar (`false`, `3`, `"3"`), else a string.
pub fn parse_condition(cond: &str) -> Result<(String, FilterOp, Value), Error> {
    let at = cond.find(['=', '!', '<', '>']).ok_or_else(|| {
        Error::InvalidQuery(format!(
            "condition {cond:?} has no operator; write FIELD=VALUE (or !=, <, <=, >, >=)"
        ))
    })?;
    let (field, rest) = cond.split_at(at);
    let (op, value) = [
        ("!=", FilterOp::Ne),
        ("<=", FilterOp::Le),
        (">=", FilterOp::Ge),
        ("=", FilterOp::Eq),
        ("<", FilterOp::Lt),
        (">", FilterOp::Gt),
    ]
    .into_iter()
    .find_map(|(sym, op)| rest.strip_prefix(sym).map(|v| (op, v)))
    .ok_or_else(|| Error::InvalidQuery(format!("condition {cond:?}: unknown operator")))?;
    let field = field.trim();
    if field.is_empty() {
        return Err(Error::InvalidQuery(format!(
            "condition {cond:?} has no field"
        )));
    }
    let value = match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
        _ => Value::String(value.to_owned()),
    };
    Ok((field.to_owned(), op, value))
}

pub async fn sql(node: &Node, statement: &str) -> Result<Vec<Map<String, Value>>, Error> {
    node.sql(statement).await
}

pub async fn peers(node: &Node) -> Result<Vec<Peer>, Error> {
    Ok(node
        .peers()
        .await?
        .into_iter()
        .map(|p| Peer {
            id: p.id.to_string(),
            addrs: p.addrs,
            connected: p.connected,
            last_seen_ms: p.last_seen_ms,
            pending: p.pending,
        })
        .collect())
}

pub async fn connect(node: &Node, addr: &str) -> Result<Connected, Error> {
    let id = node.connect(addr.trim()).await?;
    Ok(Connected {
        node_id: id.to_string(),
    })
}

pub async fn status(node: &Node) -> Result<Status, Error> {
    let s = node.status().await?;
    let spaces = node.space_list().await?.len();
    let p = *node.sync_progress().borrow();
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        // Known to the API's state, not the node: the handler fills them.
        api: None,
        data_dir: node.data_dir().display().to_string(),
        uptime_secs: 0,
        node_id: s.node_id.to_string(),
        documents: s.documents,
        spaces,
        peers_connected: s.peers_connected,
        online: s.online,
        sync: SyncState {
            peers: p.peers,
            pending: p.pending,
            idle: p.idle,
        },
        traffic: Traffic {
            frames_sent: s.net.frames_sent,
            frames_received: s.net.frames_received,
            bytes_sent: s.net.bytes_sent,
            bytes_received: s.net.bytes_received,
        },
    })
}

/// Waits until sync is idle (or `timeout`), then returns the status.
pub async fn wait_synced(node: &Node, timeout: Duration) -> Result<Status, Error> {
    node.wait_synced(timeout).await?;
    status(node).await
}

pub fn event(e: &weft_core::ChangeEvent) -> Event {
    Event {
        space: e.key.space().to_owned(),
        collection: e.key.collection().to_owned(),
        id: e.key.id().to_owned(),
        heads: e.heads.clone(),
        deleted: e.deleted,
        origin: match e.origin {
            weft_core::Origin::Local => "local",
            weft_core::Origin::Remote => "remote",
        }
        .to_owned(),
        seq: e.seq,
        doc: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_operators_and_values() {
        let (f, op, v) = parse_condition("done=false").unwrap();
        assert_eq!(
            (f.as_str(), op, v),
            ("done", FilterOp::Eq, Value::Bool(false))
        );
        let (f, op, v) = parse_condition("meta.n>=3").unwrap();
        assert_eq!(
            (f.as_str(), op, v),
            ("meta.n", FilterOp::Ge, serde_json::json!(3))
        );
        let (_, op, v) = parse_condition("title!=Hello world").unwrap();
        assert_eq!((op, v), (FilterOp::Ne, serde_json::json!("Hello world")));
        let (_, op, v) = parse_condition("code=\"42\"").unwrap();
        assert_eq!((op, v), (FilterOp::Eq, serde_json::json!("42")));
        let (_, op, v) = parse_condition("n<2").unwrap();
        assert_eq!((op, v), (FilterOp::Lt, serde_json::json!(2)));
        // Objects are not scalars: compared as the literal string.
        let (_, _, v) = parse_condition("x={}").unwrap();
        assert_eq!(v, serde_json::json!("{}"));
    }

    #[test]
    fn bad_conditions_say_what_to_write() {
        for bad in ["done", "=3", "a!b"] {
            let err = parse_condition(bad).unwrap_err().to_string();
            assert!(err.contains("condition"), "{bad}: {err}");
        }
    }
}
