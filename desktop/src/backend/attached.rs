//! The attached source: a running `weft daemon`'s local API, through the
//! CLI's own client. Changes come from `GET /v1/events`; when the stream
//! drops the task says so (the status line shows it), finds the daemon
//! again from its data dir (it may have restarted on another port) and
//! resumes the feed after the last change it saw.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use weft_core::{ChangeInfo, ErrorKind, NodeId, PeerStatus, Role, SpaceInfo, SpaceState};
use weft_daemon::client::Client;
use weft_daemon::model::{Event, InviteRequest, ListParams, Space};
use weft_daemon::output::SseParser;

use super::source::{Changed, DOC_LIST_LIMIT, Feed, Res};
use crate::msg::{NOTES, NetSummary};

/// How long to wait between attempts to reach a daemon that went away.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often a join's state is polled while waiting for the inviter.
const ADMISSION_POLL: Duration = Duration::from_millis(500);
/// Heads of this app's recent writes, so their events are not mistaken for
/// another client's edit (the daemon calls every API write `local`).
const OWN_WRITES: usize = 256;

#[derive(Clone)]
pub struct Attached {
    dir: PathBuf,
    /// Replaced by the feed task when it finds the daemon again.
    client: Arc<Mutex<Client>>,
    own: Arc<Mutex<VecDeque<Vec<String>>>>,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Attached {
    /// The daemon serving `dir`, if one answers; with its API address
    /// (`127.0.0.1:PORT`) for the title bar.
    pub async fn discover(dir: &Path) -> Res<Option<(Attached, String)>> {
        let Some(client) = Client::discover(dir).await.map_err(text)? else {
            return Ok(None);
        };
        let api = api_addr(&client).await?;
        let attached = Attached {
            dir: dir.to_path_buf(),
            client: Arc::new(Mutex::new(client)),
            own: Arc::default(),
        };
        Ok(Some((attached, api)))
    }

    fn client(&self) -> Client {
        self.client.lock().expect("client lock").clone()
    }

    /// This node's id and its default space's id.
    pub async fn ready(&self) -> Res<(String, String)> {
        let client = self.client();
        let id = client.identity().await.map_err(text)?;
        let spaces = client.space_list().await.map_err(text)?;
        let default = spaces
            .into_iter()
            .find(|s| s.default)
            .map(|s| s.id)
            .ok_or("the daemon lists no default space")?;
        Ok((id.node_id, default))
    }

    pub fn spawn_feed(&self, tx: mpsc::UnboundedSender<Feed>) {
        let (dir, client, own) = (self.dir.clone(), self.client.clone(), self.own.clone());
        tokio::spawn(feed(dir, client, own, tx));
    }

    pub async fn space_list(&self) -> Res<Vec<SpaceInfo>> {
        let spaces = self.client().space_list().await.map_err(text)?;
        Ok(spaces.into_iter().map(space_info).collect())
    }

    pub async fn space_create(&self, name: &str) -> Res<String> {
        Ok(self.client().space_create(name).await.map_err(text)?.id)
    }

    pub async fn invite(&self, space: &str) -> Res<String> {
        let request = InviteRequest {
            role: Some("writer".into()),
            expires: Some("7d".into()),
            node: None,
        };
        let invite = self.client().space_invite(Some(space), &request).await;
        Ok(invite.map_err(text)?.token)
    }

    pub async fn join(&self, token: &str) -> Res<String> {
        Ok(self
            .client()
            .space_join(token, None)
            .await
            .map_err(text)?
            .id)
    }

    /// Polls the space's state: the API's waiting join would need the token
    /// again, and the join is already recorded.
    pub async fn wait_admission(&self, space: &str, wait: Duration) -> Res<SpaceState> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let state = self
                .space_list()
                .await?
                .into_iter()
                .find(|s| s.id == space)
                .map_or(SpaceState::Pending, |s| s.state);
            if state != SpaceState::Pending || tokio::time::Instant::now() >= until {
                return Ok(state);
            }
            tokio::time::sleep(ADMISSION_POLL).await;
        }
    }

    pub async fn connect(&self, addr: &str) -> Res<String> {
        Ok(self.client().connect(addr).await.map_err(text)?.node_id)
    }

    pub async fn notes(&self, space: &str) -> Res<Vec<(String, Value)>> {
        let params = ListParams {
            order: Some("updated".into()),
            desc: true,
            ..ListParams::default()
        };
        let rows = self.client().list(Some(space), NOTES, &params).await;
        Ok(rows
            .map_err(text)?
            .into_iter()
            .map(|r| (r.id, r.doc))
            .collect())
    }

    pub async fn get(&self, space: &str, collection: &str, id: &str) -> Res<Option<Value>> {
        match self.client().get(Some(space), collection, id).await {
            Ok(doc) => Ok(Some(doc)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(text(e)),
        }
    }

    pub async fn put(&self, space: &str, collection: &str, id: &str, doc: Value) -> Res<()> {
        let written = self.client().put(Some(space), collection, id, doc).await;
        let heads = written.map_err(text)?.heads;
        let mut own = self.own.lock().expect("own writes lock");
        if own.len() == OWN_WRITES {
            own.pop_front();
        }
        own.push_back(heads);
        Ok(())
    }

    pub async fn collections(&self, space: &str) -> Res<Vec<String>> {
        self.client().collections(Some(space)).await.map_err(text)
    }

    pub async fn list_ids(&self, space: &str, collection: &str) -> Res<Vec<String>> {
        let params = ListParams {
            limit: Some(DOC_LIST_LIMIT),
            ..ListParams::default()
        };
        let rows = self.client().list(Some(space), collection, &params).await;
        Ok(rows.map_err(text)?.into_iter().map(|r| r.id).collect())
    }

    pub async fn history(&self, space: &str, collection: &str, id: &str) -> Res<Vec<ChangeInfo>> {
        let changes = self.client().history(Some(space), collection, id).await;
        Ok(changes
            .map_err(text)?
            .into_iter()
            .map(|c| ChangeInfo {
                hash: c.hash,
                actor: c.actor,
                author: c.author.and_then(|a| a.parse::<NodeId>().ok()),
                seq: c.seq,
                time: c.time,
                message: c.message,
                deps: c.deps,
            })
            .collect())
    }

    pub async fn net(&self) -> Res<(Vec<PeerStatus>, NetSummary)> {
        let client = self.client();
        let peers = client.peers().await.map_err(text)?;
        let status = client.status().await.map_err(text)?;
        let id = client.identity().await.map_err(text)?;
        let peers = peers
            .into_iter()
            .filter_map(|p| {
                Some(PeerStatus {
                    id: p.id.parse().ok()?,
                    addrs: p.addrs,
                    connected: p.connected,
                    last_seen_ms: p.last_seen_ms,
                    pending: p.pending,
                })
            })
            .collect();
        let summary = NetSummary {
            online: status.online,
            peers_connected: status.peers_connected,
            pending: status.sync.pending,
            documents: status.documents,
            listen_addrs: id.listen_addrs,
        };
        Ok((peers, summary))
    }
}

/// The daemon's API address as the title bar shows it (`127.0.0.1:PORT`).
async fn api_addr(client: &Client) -> Res<String> {
    let api = client.status().await.map_err(text)?.api.unwrap_or_default();
    Ok(api.strip_prefix("http://").unwrap_or(&api).to_owned())
}

/// The API's space as core's value type, which the UI shows.
fn space_info(s: Space) -> SpaceInfo {
    let role = s.role.as_deref().and_then(|r| r.parse::<Role>().ok());
    let state = match (s.state.as_str(), role) {
        ("refused", _) => SpaceState::Refused(s.reason.unwrap_or_default()),
        (_, Some(role)) if s.state != "pending" => SpaceState::Member(role),
        _ => SpaceState::Pending,
    };
    let members: BTreeMap<NodeId, Role> = s
        .members
        .into_iter()
        .filter_map(|(id, role)| Some((id.parse().ok()?, role.parse().ok()?)))
        .collect();
    SpaceInfo {
        id: s.id,
        name: s.name,
        role,
        state,
        members,
        default: s.default,
    }
}

/// Streams the daemon's change feed into `tx` until the backend is gone,
/// finding the daemon again whenever the stream drops.
async fn feed(
    dir: PathBuf,
    client: Arc<Mutex<Client>>,
    own: Arc<Mutex<VecDeque<Vec<String>>>>,
    tx: mpsc::UnboundedSender<Feed>,
) {
    let mut since: Option<u64> = None;
    let mut down = false;
    loop {
        let current = client.lock().expect("client lock").clone();
        let why = match current.events(None, None, since, false).await {
            Ok(mut body) => {
                if down {
                    tracing::info!("the daemon answers again");
                    down = false;
                    // A restarted daemon listens on another port.
                    if let Ok(api) = api_addr(&current).await
                        && tx.send(Feed::Moved(api)).is_err()
                    {
                        return;
                    }
                    if tx.send(Feed::Link(None)).is_err() {
                        return;
                    }
                }
                // Whatever changed while the stream was down and is older
                // than the replay (names, memberships) shows up on reload.
                if tx.send(Feed::Reload).is_err() {
                    return;
                }
                let mut parser = SseParser::default();
                loop {
                    let frame = tokio::select! {
                        frame = body.frame() => frame,
                        () = tx.closed() => return,
                    };
                    match frame {
                        Some(Ok(frame)) => {
                            let Some(bytes) = frame.data_ref() else {
                                continue;
                            };
                            for (kind, data) in parser.push(bytes) {
                                if kind != "change" {
                                    continue;
                                }
                                let event: Event = match serde_json::from_str(&data) {
                                    Ok(e) => e,
                                    Err(e) => {
                                        tracing::warn!(error = %e, "unreadable change event");
                                        continue;
                                    }
                                };
                                since = Some(event.seq);
                                let foreign =
                                    !own.lock().expect("own writes lock").contains(&event.heads);
                                let changed = Changed {
                                    space: event.space,
                                    collection: event.collection,
                                    id: event.id,
                                    deleted: event.deleted,
                                    foreign,
                                };
                                if tx.send(Feed::Change(changed)).is_err() {
                                    return;
                                }
                            }
                        }
                        Some(Err(e)) => break format!("the daemon's change feed broke ({e})"),
                        None => break "the daemon closed its change feed".to_owned(),
                    }
                }
            }
            Err(e) => {
                // A replica restored from an older backup has no change
                // `since`: start the feed afresh (the reload covers the gap).
                if e.kind == ErrorKind::InvalidInput && since.is_some() {
                    since = None;
                }
                e.to_string()
            }
        };
        if !down {
            tracing::warn!(reason = %why, "lost the daemon");
            down = true;
            let line = format!("Daemon unreachable, retrying: {why}");
            if tx.send(Feed::Link(Some(line))).is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_EVERY) => {}
            () = tx.closed() => return,
        }
        // It may have restarted on another port, with a new token.
        match Client::discover(&dir).await {
            Ok(Some(found)) => *client.lock().expect("client lock") = found,
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "daemon not found yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(state: &str, role: Option<&str>, reason: Option<&str>) -> Space {
        Space {
            id: "sp".into(),
            name: "team".into(),
            role: role.map(str::to_owned),
            state: state.into(),
            reason: reason.map(str::to_owned),
            members: BTreeMap::from([
                ("not a node id".to_owned(), "admin".to_owned()),
                ("12D3KooWx".to_owned(), "no such role".to_owned()),
            ]),
            default: false,
        }
    }

    #[test]
    fn the_apis_spaces_read_as_cores() {
        let member = space_info(space("writer", Some("writer"), None));
        assert_eq!(member.state, SpaceState::Member(Role::Writer));
        assert_eq!(member.role, Some(Role::Writer));
        // Members a hostile peer named badly are left out, not a failure.
        assert!(member.members.is_empty());
        let pending = space_info(space("pending", None, None));
        assert_eq!(pending.state, SpaceState::Pending);
        let refused = space_info(space("refused", None, Some("not you")));
        assert_eq!(refused.state, SpaceState::Refused("not you".into()));
        // A state this app does not know yet is not taken for a role.
        let odd = space_info(space("pending", Some("admin"), None));
        assert_eq!(odd.state, SpaceState::Pending);
    }
}
