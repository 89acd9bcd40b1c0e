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

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::sync::{broadcast, watch};
use weft_core::interop::automerge_id;
use weft_core::{DocKey, Error, ExternalSync, FeedError, SubscribeFilter};

pub use hub::{Hub, Landing};
use protocol::Incoming;

use crate::api::AppState;

/// Largest frame a client may send: a sync message of a large document.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// The upgrade; the token was checked by the API's auth layer.
pub async fn upgrade(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let hub = s.automerge.clone();
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

impl Session {
    fn new(hub: Arc<Hub>, socket: WebSocket) -> Self {
        Self {
            hub,
            socket,
            id: SESSIONS.fetch_add(1, Ordering::Relaxed),
            client: None,
            docs: HashMap::new(),
        }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        self.hub.ensure_indexed().await;
        let mut feed = self.hub.node.subscribe(SubscribeFilter::default());
        let mut relay = self.hub.relay.subscribe();
        loop {
            let step = tokio::select! {
                frame = self.socket.recv() => match frame {
                    Some(Ok(Message::Binary(bytes))) => self.frame(&bytes).await,
                    Some(Ok(Message::Text(_))) => Step::Fail("frames must be binary CBOR".into()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Go,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Step::Close,
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
                    let _ = self.send(frame).await;
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

    async fn send(&mut self, frame: Vec<u8>) -> Result<(), axum::Error> {
        self.socket.send(Message::Binary(frame.into())).await
    }

    async fn frame(&mut self, bytes: &[u8]) -> Step {
        let message = match protocol::decode(bytes) {
            Ok(m) => m,
            Err(e) => return Step::Fail(e.to_string()),
        };
        let Some(client) = self.client.clone() else {
            return match message {
                Incoming::Join { sender, versions } => {
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
                _ => Step::Fail("the first message must be `join`".into()),
            };
        };
        match message {
            Incoming::Join { .. } => Step::Fail("a second `join`".into()),
            Incoming::Sync {
                request,
                document,
                data,
            } => self.sync(&client, request, document, data).await,
            Incoming::Ephemeral {
                document,
                session,
                count,
                data,
            } => {
                if self.docs.contains_key(&document) || self.hub.key_for(&document).is_some() {
                    let _ = self.hub.relay.send(hub::Relay {
                        from_session: self.id,
                        sender: client,
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

    async fn sync(&mut self, client: &str, request: bool, document: String, data: Vec<u8>) -> Step {
        let Some(key) = self.hub.key_for(&document) else {
            return self
                .sent(protocol::doc_unavailable(&self.hub.me, client, &document))
                .await;
        };
        let (_, state) = self
            .docs
            .entry(document.clone())
            .or_insert_with(|| (key.clone(), ExternalSync::default()));
        match self.hub.node.external_sync(&key, state, Some(&data)).await {
            Ok(reply) if request && !reply.exists => {
                self.sent(protocol::doc_unavailable(&self.hub.me, client, &document))
                    .await
            }
            Ok(reply) => match reply.message {
                Some(m) if !m.is_empty() => {
                    self.sent(protocol::sync(&self.hub.me, client, &document, m))
                        .await
                }
                _ => Step::Go,
            },
            Err(Error::Forbidden(_)) => {
                self.docs.remove(&document);
                self.sent(protocol::doc_unavailable(&self.hub.me, client, &document))
                    .await
            }
            Err(e) => Step::Fail(format!("document {document}: {e}")),
        }
    }

    /// A document changed somewhere: send the client what it lacks.
    async fn changed(&mut self, key: &DocKey) -> Step {
        let document = automerge_id(key);
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
                    self.sent(protocol::sync(&self.hub.me, &client, document, m))
                        .await
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
        if r.from_session == self.id || !self.docs.contains_key(&r.document) {
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
        match self.send(frame).await {
            Ok(()) => Step::Go,
            Err(_) => Step::Close,
        }
    }
}
