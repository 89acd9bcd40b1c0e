//! automerge-repo apps as clients of the daemon: a WebSocket endpoint
//! (`/v1/automerge?token=...`) speaking the automerge-repo network protocol
//! "1". Sync payloads go through [`weft_core::Node::external_sync`], so a
//! client's changes are stored and reach Weft peers like any other, and
//! changes from anywhere reach the client.

mod hub;
pub mod protocol;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, watch};
use weft_core::interop::automerge_id;
use weft_core::{DocKey, Error, ErrorKind, ExternalSync, FeedError, SubscribeFilter};

pub use hub::{Hub, Landing};
use protocol::Incoming;

use crate::api::{AppState, Failure};

/// Largest frame a client may send: a sync message of a large document.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Documents one connection may sync; beyond it the client is refused.
const MAX_DOCS: usize = 100_000;
/// The server pings this often; a client silent for three intervals is gone.
const PING_EVERY: Duration = Duration::from_secs(20);

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// The upgrade; the token was checked by the API's auth layer.
pub async fn upgrade(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    // Only a router serving sockets has a hub (see `api::in_process`).
    let Some(hub) = s.automerge.clone() else {
        return Failure::new(ErrorKind::NotFound, "no automerge-repo endpoint in process")
            .into_response();
    };
    if hub.sessions.load(Ordering::Relaxed) >= hub::MAX_SESSIONS {
        return Failure::new(
            ErrorKind::Closed,
            format!(
                "already {} automerge-repo clients; close some",
                hub::MAX_SESSIONS
            ),
        )
        .into_response();
    }
    let stop = s.shutdown.clone();
    ws.max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let mut session = Session::new(hub, socket);
            session.run(stop).await;
        })
}

/// What a step decided about the connection.
enum Step {
    Go,
    /// Send this error and close.
    Fail(String),
    Close,
}

struct Session {
    hub: Arc<Hub>,
    socket: WebSocket,
    id: u64,
    client: Option<String>,
    /// Documents this client syncs, with what it is known to have.
    docs: HashMap<String, (DocKey, ExternalSync)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.hub.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session {
    fn new(hub: Arc<Hub>, socket: WebSocket) -> Self {
        hub.sessions.fetch_add(1, Ordering::Relaxed);
        Self {
            hub,
            socket,
            id: SESSIONS.fetch_add(1, Ordering::Relaxed),
            client: None,
            docs: HashMap::new(),
        }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        let mut feed = self.hub.node.subscribe(SubscribeFilter::default());
        let mut relay = self.hub.relay.subscribe();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        loop {
            let step = tokio::select! {
                frame = self.socket.recv() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Binary(bytes))) => self.frame(&bytes).await,
                        Some(Ok(Message::Text(_))) => Step::Fail("frames must be binary CBOR".into()),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Go,
                        Some(Ok(Message::Close(_))) | None => Step::Close,
                        // Too large, or not WebSocket: say so before closing.
                        Some(Err(e)) => Step::Fail(format!("unreadable frame: {e}")),
                    }
                },
                _ = ping.tick() => {
                    if heard.elapsed() > PING_EVERY * 3 {
                        tracing::info!(client = ?self.client, "closing a silent automerge-repo connection");
                        Step::Close
                    } else {
                        self.sent_message(Message::Ping(Default::default())).await
                    }
                },
                event = feed.recv() => match event {
                    Ok(e) => self.changed(&e.key).await,
                    // Missed events: bring every document up to date.
                    Err(FeedError::Lagged(_)) => self.changed_all().await,
                    Err(FeedError::Closed) => Step::Close,
                },
                r = relay.recv() => match r {
                    Ok(r) => self.relay(r).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => Step::Go,
                    Err(broadcast::error::RecvError::Closed) => Step::Close,
                },
                // The guard `wait_for` returns is not Send: drop it inside.
                () = async { let _ = stop.wait_for(|s| *s).await; } => Step::Close,
            };
            match step {
                Step::Go => {}
                Step::Fail(message) => {
                    tracing::info!(client = ?self.client, %message, "closing an automerge-repo connection");
                    let frame = protocol::error(&self.hub.me, self.client.as_deref(), &message);
                    let _ = self.sent(frame).await;
                    let _ = self.socket.send(Message::Close(None)).await;
                    return;
                }
                Step::Close => {
                    let _ = self.socket.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }

    async fn frame(&mut self, bytes: &[u8]) -> Step {
        let message = match protocol::decode(bytes) {
            Ok(m) => m,
            Err(e) => return Step::Fail(e.to_string()),
        };
        let Some(client) = self.client.clone() else {
            return match message {
                Incoming::Join { sender, versions } => self.join(sender, versions).await,
                _ => Step::Fail("the first message must be `join`".into()),
            };
        };
        match message {
            // As the JS server does: a new join replaces the peer.
            Incoming::Join { sender, versions } => self.join(sender, versions).await,
            Incoming::Sync {
                request,
                document,
                data,
            } => self.sync(&client, request, document, data).await,
            Incoming::Ephemeral {
                sender,
                document,
                session,
                count,
                data,
            } => {
                // Clients forward each other's messages: relay each once,
                // under its original sender, and only small ones.
                if data.len() <= hub::MAX_EPHEMERAL
                    && self.docs.contains_key(&document)
                    && self.hub.first_sight(&sender, &session, count)
                {
                    let _ = self.hub.relay.send(hub::Relay {
                        from_session: self.id,
                        sender,
                        document,
                        session,
                        count,
                        data: Arc::new(data),
                    });
                }
                Step::Go
            }
            // The client lacks something we offered; nothing to do.
            Incoming::DocUnavailable { .. } | Incoming::Ignored(_) => Step::Go,
            Incoming::Leave => Step::Close,
        }
    }

    async fn join(&mut self, sender: String, versions: Vec<String>) -> Step {
        if !versions.iter().any(|v| v == protocol::PROTOCOL_VERSION) {
            return Step::Fail(format!(
                "unsupported protocol versions {versions:?}; this server speaks \"{}\"",
                protocol::PROTOCOL_VERSION
            ));
        }
        let peer = protocol::peer(&self.hub.me, &sender);
        tracing::debug!(client = %sender, "automerge-repo client joined");
        self.client = Some(sender);
        self.sent(peer).await
    }

    async fn sync(&mut self, client: &str, request: bool, document: String, data: Vec<u8>) -> Step {
        // Existing documents must be known before an id can be taken as new.
        self.hub.ensure_indexed().await;
        let Some(key) = self.hub.key_for(&document) else {
            let frame = protocol::doc_unavailable(&self.hub.me, client, &document);
            return self.sent(frame).await;
        };
        if !self.docs.contains_key(&document) && self.docs.len() >= MAX_DOCS {
            return Step::Fail(format!("more than {MAX_DOCS} documents on one connection"));
        }
        let (_, state) = self
            .docs
            .entry(document.clone())
            .or_insert_with(|| (key.clone(), ExternalSync::default()));
        match self.hub.node.external_sync(&key, state, Some(&data)).await {
            Ok(reply) if request && !reply.exists => {
                let frame = protocol::doc_unavailable(&self.hub.me, client, &document);
                self.sent(frame).await
            }
            Ok(reply) => match reply.message {
                Some(m) if !m.is_empty() => {
                    let frame = protocol::sync(&self.hub.me, client, &document, m);
                    self.sent(frame).await
                }
                _ => Step::Go,
            },
            Err(Error::Forbidden(_)) => {
                self.docs.remove(&document);
                let frame = protocol::doc_unavailable(&self.hub.me, client, &document);
                self.sent(frame).await
            }
            Err(e) => Step::Fail(format!("document {document}: {e}")),
        }
    }

    /// A document changed somewhere: send the client what it lacks.
    async fn changed(&mut self, key: &DocKey) -> Step {
        // The hub's own feed may not have caught up: record the id now.
        self.hub.remember(key);
        let document = automerge_id(key);
        // A document asked for before it existed was looked for where a new
        // one would land; it has arrived under its real key.
        if let Some(known) = self.hub.key_for(&document)
            && let Some((k, _)) = self.docs.get_mut(&document)
            && *k != known
        {
            *k = known;
        }
        self.push(&document).await
    }

    async fn changed_all(&mut self) -> Step {
        let ids: Vec<String> = self.docs.keys().cloned().collect();
        for id in ids {
            if let Step::Fail(m) = self.push(&id).await {
                return Step::Fail(m);
            }
        }
        Step::Go
    }

    async fn push(&mut self, document: &str) -> Step {
        let Some(client) = self.client.clone() else {
            return Step::Go;
        };
        let Some((key, state)) = self.docs.get_mut(document) else {
            return Step::Go;
        };
        let key = key.clone();
        match self.hub.node.external_sync(&key, state, None).await {
            Ok(reply) => match reply.message {
                Some(m) if !m.is_empty() => {
                    let frame = protocol::sync(&self.hub.me, &client, document, m);
                    self.sent(frame).await
                }
                _ => Step::Go,
            },
            Err(e) => {
                tracing::warn!(%key, error = %e, "cannot bring an automerge-repo client up to date");
                Step::Go
            }
        }
    }

    async fn relay(&mut self, r: hub::Relay) -> Step {
        let Some(client) = self.client.clone() else {
            return Step::Go;
        };
        // Never back to where it came from, nor to its original sender.
        if r.from_session == self.id || r.sender == client || !self.docs.contains_key(&r.document) {
            return Step::Go;
        }
        let frame = protocol::ephemeral(
            &r.sender,
            &client,
            &r.document,
            &r.session,
            r.count,
            &r.data,
        );
        self.sent(frame).await
    }

    /// Sends a frame; a socket that cannot take it is closed.
    async fn sent(&mut self, frame: Vec<u8>) -> Step {
        self.sent_message(Message::Binary(frame.into())).await
    }

    async fn sent_message(&mut self, message: Message) -> Step {
        match self.socket.send(message).await {
            Ok(()) => Step::Go,
            Err(_) => Step::Close,
        }
    }
}
