//! The hostile peer itself: its own libp2p swarm (TCP + noise + yamux, a
//! fresh ed25519 identity) that dials a node, opens `/weft/sync/1` streams
//! and writes whatever bytes a test wants on them, with or without the
//! handshake. Nothing here uses the node's own networking code.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ed25519_dalek::{Signer as _, SigningKey};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot, watch};
use weft_core::NodeId;
use weft_core::internals::sync::wire::{self, Claim, Message};

/// The node's sync protocol (`SYNC_PROTOCOL` in the node's `net` module).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/sync/1");
/// Every single network wait of the harness gives up after this, so a test
/// against a node that stopped answering fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, String>>),
    Disconnect(PeerId, oneshot::Sender<()>),
}

/// One identity with its own swarm, driven by a background task.
pub struct HostilePeer {
    key: SigningKey,
    control: libp2p_stream::Control,
    incoming: libp2p_stream::IncomingStreams,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostilePeer {
    /// A fresh identity; must be called inside a tokio runtime.
    pub fn new() -> Result<Self> {
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let secret: [u8; 32] = keypair
            .clone()
            .try_into_ed25519()?
            .secret()
            .as_ref()
            .try_into()?;
        let key = SigningKey::from_bytes(&secret);
        let swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
            .build();
        let mut control = swarm.behaviour().new_control();
        let incoming = control.accept(SYNC_PROTOCOL)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(swarm, rx));
        Ok(Self {
            key,
            control,
            incoming,
            commands,
            task,
        })
    }

    /// This identity's signing key (the node key a membership entry names).
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// This identity as a node id.
    pub fn id(&self) -> NodeId {
        NodeId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Dials `addr` (ending in `/p2p/<id>`), opens our sync stream and
    /// accepts the node's, without saying anything yet.
    pub async fn connect(&mut self, addr: &Multiaddr) -> Result<Conn> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Dial(addr.clone(), tx))
            .map_err(|_| anyhow!("swarm task stopped"))?;
        let peer = tokio::time::timeout(IO_TIMEOUT, rx)
            .await
            .context("dial timed out")??
            .map_err(|e| anyhow!("dial failed: {e}"))?;
        let node: NodeId = peer.to_string().parse()?;
        let mut control = self.control.clone();
        let out = tokio::time::timeout(IO_TIMEOUT, control.open_stream(peer, SYNC_PROTOCOL))
            .await
            .context("opening our sync stream timed out")??;
        let inbound = loop {
            let (from, stream) = tokio::time::timeout(IO_TIMEOUT, self.incoming.next())
                .await
                .context("the node opened no sync stream")?
                .context("stream listener ended")?;
            if from == peer {
                break stream;
            }
        };
        Ok(Conn {
            node,
            peer,
            key: self.key.clone(),
            control,
            commands: self.commands.clone(),
            tx: out,
            rx: Some(inbound),
            drained: None,
        })
    }
}

async fn drive(
    mut swarm: Swarm<libp2p_stream::Behaviour>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, String>>> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Dial(addr, reply)) => {
                    let opts = match addr.iter().last() {
                        Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .condition(PeerCondition::Always)
                            .build(),
                        _ => DialOpts::unknown_peer_id().address(addr).build(),
                    };
                    let id = opts.connection_id();
                    match swarm.dial(opts) {
                        Ok(()) => { dials.insert(id, reply); }
                        Err(e) => { let _ = reply.send(Err(e.to_string())); }
                    }
                }
                Some(Command::Disconnect(peer, reply)) => {
                    let _ = swarm.disconnect_peer_id(peer);
                    let _ = reply.send(());
                }
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
                    if let Some(reply) = dials.remove(&connection_id) {
                        let _ = reply.send(Ok(peer_id));
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                    if let Some(reply) = dials.remove(&connection_id) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                _ => {}
            },
        }
    }
}

/// What a drained stream has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Frames read.
    pub frames: u64,
    /// Bytes read, headers included.
    pub bytes: u64,
    /// The node ended the stream (or the connection broke).
    pub closed: bool,
}

/// A connection to the target node: our outbound sync stream (`tx`) and the
/// node's (`rx`). Not reading `rx` withholds our yamux receive window.
pub struct Conn {
    /// The target's node id.
    pub node: NodeId,
    peer: PeerId,
    key: SigningKey,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedSender<Command>,
    tx: Stream,
    rx: Option<Stream>,
    /// The tally of the drain task, once the node's stream is drained.
    drained: Option<watch::Receiver<Tally>>,
}

impl Conn {
    /// Our node id.
    pub fn me(&self) -> NodeId {
        NodeId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Writes raw bytes on our sync stream.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        write_timed(&mut self.tx, bytes).await
    }

    /// Writes one frame (4-byte big-endian length, then the body), any body.
    pub async fn send_frame(&mut self, body: &[u8]) -> Result<()> {
        let len = u32::try_from(body.len())?;
        write_timed(&mut self.tx, &len.to_be_bytes()).await?;
        write_timed(&mut self.tx, body).await
    }

    /// Encodes and sends one message.
    pub async fn send(&mut self, message: &Message) -> Result<()> {
        self.send_frame(&wire::encode(message)).await
    }

    /// [`partial_frame`] on our sync stream.
    pub async fn send_partial(&mut self, announced: u32, body: usize) -> Result<usize> {
        partial_frame(&mut self.tx, announced, body).await
    }

    /// Opens one more sync stream to the node on this connection.
    pub async fn open_stream(&mut self) -> Result<Stream> {
        Ok(tokio::time::timeout(
            IO_TIMEOUT,
            self.control.open_stream(self.peer, SYNC_PROTOCOL),
        )
        .await
        .context("opening a sync stream timed out")??)
    }

    /// The node's next frame body; `None` when it ended its stream.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let rx = self
            .rx
            .as_mut()
            .context("the node's stream is being drained")?;
        tokio::time::timeout(IO_TIMEOUT, read_frame(rx))
            .await
            .context("no frame from the node in time")?
    }

    /// The node's next message.
    pub async fn recv(&mut self) -> Result<Message> {
        let body = self
            .recv_frame()
            .await?
            .context("the node ended its stream")?;
        Ok(wire::decode(&body)?)
    }

    /// Reads messages until `pick` takes one (others are dropped).
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(Message) -> Option<T>) -> Result<T> {
        let search = async {
            loop {
                if let Some(found) = pick(self.recv().await?) {
                    return Ok(found);
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, search)
            .await
            .context("the node never sent the awaited message")?
    }

    /// Breaks the protocol (a second `Hello`) and waits until the node ends
    /// the connection for it. The node handles a peer's frames in order, so
    /// once it does, everything sent before has been handled: a barrier
    /// that needs no reading while the attack runs. Returns whether the
    /// connection ended within `limit`.
    pub async fn barrier(&mut self, limit: Duration) -> bool {
        let me = self.me();
        // A node that already cut us off cannot take it: it is closed anyway.
        let _ = self
            .send(&Message::Hello {
                node: me,
                challenge: [8; 32],
            })
            .await;
        self.closed_within(limit).await
    }

    /// The session handshake (wire version 4): `Hello` both ways, our
    /// `Proof` of the node's challenge, then our `Offer` of `claims` (empty
    /// for a stranger), which completes the handshake on the node's side.
    /// The node's own `Offer`, sent once our proof verified, completes it on
    /// ours.
    pub async fn handshake(&mut self, claims: Vec<Claim>) -> Result<()> {
        let me = self.me();
        self.send(&Message::Hello {
            node: me,
            challenge: [7; 32],
        })
        .await?;
        let (node, challenge) = self
            .recv_until(|m| match m {
                Message::Hello { node, challenge } => Some((node, challenge)),
                _ => None,
            })
            .await?;
        if node != self.node {
            bail!("the node's hello names {node}, not {}", self.node);
        }
        let signature = self
            .key
            .sign(&wire::proof_bytes(&challenge, me, self.node))
            .to_bytes();
        self.send(&Message::Proof { signature }).await?;
        self.send(&Message::Offer { spaces: claims }).await?;
        self.recv_until(|m| matches!(m, Message::Offer { .. }).then_some(()))
            .await
    }

    /// Reads and drops the node's frames in the background from now on, so
    /// the node is never held up by our window; the tally is published.
    pub fn drain(&mut self) -> watch::Receiver<Tally> {
        let (tx, rx) = watch::channel(Tally::default());
        if let Some(mut stream) = self.rx.take() {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    match read_frame(&mut stream).await {
                        Ok(Some(body)) => {
                            tally.frames += 1;
                            tally.bytes += body.len() as u64 + 4;
                        }
                        Ok(None) | Err(_) => {
                            tally.closed = true;
                            let _ = tx.send(tally);
                            return;
                        }
                    }
                    if tx.send(tally).is_err() {
                        return;
                    }
                }
            });
        } else {
            tx.send_modify(|t| t.closed = true);
        }
        self.drained = Some(rx.clone());
        rx
    }

    /// Waits (at most `limit`) until the node ends its stream or the
    /// connection breaks, dropping whatever it sends meanwhile. Returns
    /// whether that happened in time.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        if let Some(rx) = self.rx.as_mut() {
            let until_closed = async { while let Ok(Some(_)) = read_frame(rx).await {} };
            return tokio::time::timeout(limit, until_closed).await.is_ok();
        }
        match self.drained.as_mut() {
            Some(tally) => tokio::time::timeout(limit, tally.wait_for(|t| t.closed))
                .await
                .is_ok_and(|r| r.is_ok()),
            None => false,
        }
    }

    /// Closes every connection of ours to the node.
    pub async fn disconnect(self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Disconnect(self.peer, tx))
            .map_err(|_| anyhow!("swarm task stopped"))?;
        tokio::time::timeout(IO_TIMEOUT, rx).await??;
        Ok(())
    }
}

/// Writes a frame header announcing `announced` bytes and then only
/// `body` bytes of it (zeros), as a peer trickling a large frame would; stops
/// early, without error, if the node stops taking bytes or closes.
pub async fn partial_frame(stream: &mut Stream, announced: u32, body: usize) -> Result<usize> {
    write_timed(stream, &announced.to_be_bytes()).await?;
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < body {
        let n = chunk.len().min(body - sent);
        if write_timed(stream, &chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    Ok(sent)
}

async fn write_timed(stream: &mut Stream, bytes: &[u8]) -> Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    tokio::time::timeout(IO_TIMEOUT, write)
        .await
        .context("the node withheld its window: write timed out")??;
    Ok(())
}

/// Reads one frame, refusing bodies over the wire's limit.
async fn read_frame(stream: &mut Stream) -> Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = stream.read(&mut head[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(anyhow!("stream ended inside a header"))
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(head) as usize;
    if len > wire::MAX_FRAME {
        bail!("the node sent a {len}-byte frame");
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}
