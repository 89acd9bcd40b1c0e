//! Where a CLI command runs: through a running daemon's API, or on the
//! replica opened directly (embedded). Every operation has both paths and
//! both return the same types, so the output is the same either way.

use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use weft_core::{Config, Error, Node};

use crate::client::{Client, seg};
use crate::error::CliError;
use crate::model::{
    AutomergeUrl, Change, Connected, Identity, Invite, InviteRequest, JoinRequest, Joined,
    ListParams, Listed, Peer, Space, SpaceRef, Status, Written,
};
use crate::ops;

/// How long a command waits for a replica another process holds briefly
/// (another embedded command, or a daemon still starting).
const LOCK_WAIT: Duration = Duration::from_secs(15);

pub enum Backend {
    Remote(Client),
    Embedded(Node),
}

type R<T> = Result<T, CliError>;

impl Backend {
    /// The daemon for `data_dir` if one runs, else the replica itself.
    pub async fn open(data_dir: &Path) -> R<Backend> {
        let started = Instant::now();
        loop {
            if let Some(client) = Client::discover(data_dir).await? {
                return Ok(Backend::Remote(client));
            }
            match Node::open(Config::with_data_dir(data_dir)).await {
                Ok(node) => return Ok(Backend::Embedded(node)),
                Err(Error::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded(_))
    }

    /// Flushes and releases an embedded replica.
    pub async fn close(self) -> R<()> {
        if let Backend::Embedded(node) = self {
            node.close().await?;
        }
        Ok(())
    }

    pub async fn identity(&self) -> R<Identity> {
        match self {
            Backend::Remote(c) => c.call(Method::GET, "/v1/id", None::<&()>).await,
            Backend::Embedded(n) => Ok(ops::identity(n).await),
        }
    }

    pub async fn space_create(&self, name: &str) -> R<SpaceRef> {
        match self {
            Backend::Remote(c) => {
                let body = json!({ "name": name });
                c.call(Method::POST, "/v1/spaces", Some(&body)).await
            }
            Backend::Embedded(n) => Ok(ops::space_create(n, name).await?),
        }
    }

    pub async fn space_list(&self) -> R<Vec<Space>> {
        match self {
            Backend::Remote(c) => c.call(Method::GET, "/v1/spaces", None::<&()>).await,
            Backend::Embedded(n) => Ok(ops::space_list(n).await?),
        }
    }

    pub async fn space_invite(&self, space: Option<&str>, req: &InviteRequest) -> R<Invite> {
        match self {
            Backend::Remote(c) => {
                let path = format!("/v1/spaces/{}/invites", space_seg(space));
                c.call(Method::POST, &path, Some(req)).await
            }
            Backend::Embedded(n) => Ok(ops::space_invite(n, space, req).await?),
        }
    }

    /// Joins; through a daemon waits up to `wait` for the inviter's answer
    /// (a refusal is an error). Embedded there is no network to wait on,
    /// so it answers at once with the state recorded so far.
    pub async fn space_join(&self, token: &str, wait: Option<Duration>) -> R<Joined> {
        match self {
            Backend::Remote(c) => {
                let body = JoinRequest {
                    token: token.to_owned(),
                    wait: Some(wait.is_some()),
                    timeout_secs: wait.map(|w| w.as_secs_f64()),
                };
                c.call(Method::POST, "/v1/join", Some(&body)).await
            }
            Backend::Embedded(n) => {
                let id = ops::space_join(n, token).await?;
                let state = n.space_state(&id).await?;
                Ok(ops::joined(id, state)?)
            }
        }
    }

    pub async fn space_revoke(&self, space: Option<&str>, node: &str) -> R<()> {
        match self {
            Backend::Remote(c) => {
                let path = format!("/v1/spaces/{}/members/{}", space_seg(space), seg(node));
                c.call(Method::DELETE, &path, None::<&()>).await
            }
            Backend::Embedded(n) => Ok(ops::space_revoke(n, space, node).await?),
        }
    }

    pub async fn put(&self, space: Option<&str>, c: &str, id: &str, doc: Value) -> R<Written> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                cl.call(Method::PUT, &doc_path(space, c, id), Some(&doc))
                    .await
            }
            Backend::Embedded(n) => Ok(ops::put(n, space, c, id, doc).await?),
        }
    }

    pub async fn patch(&self, space: Option<&str>, c: &str, id: &str, doc: Value) -> R<Written> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                cl.call(Method::PATCH, &doc_path(space, c, id), Some(&doc))
                    .await
            }
            Backend::Embedded(n) => Ok(ops::patch(n, space, c, id, doc).await?),
        }
    }

    pub async fn delete(&self, space: Option<&str>, c: &str, id: &str) -> R<Written> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                cl.call(Method::DELETE, &doc_path(space, c, id), None::<&()>)
                    .await
            }
            Backend::Embedded(n) => Ok(ops::delete(n, space, c, id).await?),
        }
    }

    pub async fn get(&self, space: Option<&str>, c: &str, id: &str) -> R<Value> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                cl.call(Method::GET, &doc_path(space, c, id), None::<&()>)
                    .await
            }
            Backend::Embedded(n) => Ok(ops::get(n, space, c, id).await?),
        }
    }

    pub async fn history(&self, space: Option<&str>, c: &str, id: &str) -> R<Vec<Change>> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                let path = format!("{}/history", doc_path(space, c, id));
                cl.call(Method::GET, &path, None::<&()>).await
            }
            Backend::Embedded(n) => Ok(ops::history(n, space, c, id).await?),
        }
    }

    pub async fn url(&self, space: Option<&str>, c: &str, id: &str) -> R<AutomergeUrl> {
        check_doc(c, id)?;
        match self {
            Backend::Remote(cl) => {
                let path = format!("{}/url", doc_path(space, c, id));
                cl.call(Method::GET, &path, None::<&()>).await
            }
            Backend::Embedded(n) => Ok(ops::url(n, space, c, id).await?),
        }
    }

    pub async fn list(&self, space: Option<&str>, c: &str, p: &ListParams) -> R<Vec<Listed>> {
        weft_core::key::check_name("collection", c)?;
        match self {
            Backend::Remote(cl) => {
                let mut query: Vec<String> = p
                    .filters
                    .iter()
                    .map(|f| format!("where={}", seg(f)))
                    .collect();
                if let Some(o) = &p.order {
                    query.push(format!("order={}", seg(o)));
                }
                if p.desc {
                    query.push("desc=true".into());
                }
                if let Some(l) = p.limit {
                    query.push(format!("limit={l}"));
                }
                let path = format!(
                    "/v1/spaces/{}/collections/{}/docs?{}",
                    space_seg(space),
                    seg(c),
                    query.join("&")
                );
                cl.call(Method::GET, &path, None::<&()>).await
            }
            Backend::Embedded(n) => Ok(ops::list(n, space, c, p).await?),
        }
    }

    pub async fn sql(&self, statement: &str) -> R<Vec<Map<String, Value>>> {
        match self {
            Backend::Remote(c) => {
                let body = json!({ "sql": statement });
                c.call(Method::POST, "/v1/sql", Some(&body)).await
            }
            Backend::Embedded(n) => Ok(ops::sql(n, statement).await?),
        }
    }

    pub async fn peers(&self) -> R<Vec<Peer>> {
        match self {
            Backend::Remote(c) => c.call(Method::GET, "/v1/peers", None::<&()>).await,
            Backend::Embedded(n) => Ok(ops::peers(n).await?),
        }
    }

    pub async fn connect(&self, addr: &str) -> R<Connected> {
        match self {
            Backend::Remote(c) => {
                let body = json!({ "addr": addr });
                c.call(Method::POST, "/v1/peers", Some(&body)).await
            }
            Backend::Embedded(_) => Err(needs_daemon("weft connect")),
        }
    }

    pub async fn status(&self) -> R<Status> {
        match self {
            Backend::Remote(c) => c.call(Method::GET, "/v1/status", None::<&()>).await,
            Backend::Embedded(n) => Ok(ops::status(n).await?),
        }
    }

    /// The change feed; only a daemon has one worth watching, since an
    /// embedded replica sees no changes but its own.
    pub async fn events(&self, space: Option<&str>, collection: Option<&str>) -> R<Incoming> {
        match self {
            Backend::Remote(c) => {
                let mut query = Vec::new();
                if let Some(s) = space {
                    query.push(format!("space={}", seg(s)));
                }
                if let Some(col) = collection {
                    query.push(format!("collection={}", seg(col)));
                }
                c.stream(&format!("/v1/events?{}", query.join("&"))).await
            }
            Backend::Embedded(_) => Err(needs_daemon("weft watch")),
        }
    }
}

fn needs_daemon(what: &str) -> CliError {
    CliError::new(
        "unavailable",
        format!("{what} needs a running daemon for this data dir; start one with `weft daemon`"),
    )
}

/// Names and ids are checked here, before a request is built, so an empty
/// or malformed one fails the same way on both paths (an empty path segment
/// would otherwise reach no route at all).
fn check_doc(collection: &str, id: &str) -> R<()> {
    weft_core::DocKey::new("default", collection, id)?;
    Ok(())
}

fn space_seg(space: Option<&str>) -> String {
    seg(space.unwrap_or("default"))
}

fn doc_path(space: Option<&str>, collection: &str, id: &str) -> String {
    format!(
        "/v1/spaces/{}/collections/{}/docs/{}",
        space_seg(space),
        seg(collection),
        seg(id)
    )
}
