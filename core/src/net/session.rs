//! One task per connected peer: opens the outbound sync stream, writes queued
//! frames in order, reads the peer's inbound streams, and is the only emitter
//! of that peer's events, so the app always sees Connected, Frames, Disconnected
//! in that order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::framing::{self, FrameError, HEADER_LEN};
use super::{NetEvent, NetStats, SYNC_PROTOCOL};
use crate::identity::NodeId;

/// How long opening the outbound sync stream may take before the session fails.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames read ahead of the app per peer.
const READ_AHEAD: usize = 16;

/// Something to write on the peer's outbound stream.
#[derive(Debug)]
pub enum Outgoing {
    /// A frame body; the writer adds the header.
    Frame(Vec<u8>),
    /// Bytes written as they are, so tests can play a hostile peer.
    #[cfg(test)]
    Raw(Vec<u8>),
    /// Ends the stream, so tests can cut a frame short.
    #[cfg(test)]
    Close,
}

/// Totals shared by every session and read by [`super::Net::stats`].
#[derive(Debug, Default)]
pub struct Counters {
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

impl Counters {
    fn sent(&self, bytes: usize) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn received(&self, bytes: usize) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A snapshot of the totals.
    pub fn snapshot(&self) -> NetStats {
        NetStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }
}

/// What a session tells the swarm task.
#[derive(Debug)]
pub enum Report {
    /// The outbound stream is open and `Connected` was emitted.
    Ready { peer: PeerId, generation: u64 },
    /// The session cannot go on (stream failure or protocol violation); the
    /// swarm task closes the peer's connections so both sides start afresh.
    Failed {
        peer: PeerId,
        generation: u64,
        reason: String,
    },
}

/// The swarm task's end of a running session; dropping it ends the session.
pub struct SessionHandle {
    /// Distinguishes this session from earlier ones of the same peer.
    pub generation: u64,
    /// Frames to send, in order.
    pub outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Inbound sync streams from the peer.
    pub inbound: mpsc::UnboundedSender<Stream>,
    _close: oneshot::Sender<()>,
    /// Finishes after `Disconnected` was emitted.
    pub done: JoinHandle<()>,
}

/// Everything a session needs from its surroundings.
pub struct SessionParams {
    pub peer: PeerId,
    pub node: NodeId,
    pub generation: u64,
    pub control: libp2p_stream::Control,
    pub events: mpsc::Sender<NetEvent>,
    pub reports: mpsc::UnboundedSender<Report>,
    pub counters: Arc<Counters>,
    /// The previous session of this peer: its `Disconnected` goes out first.
    pub previous: Option<JoinHandle<()>>,
}

/// Starts a session task on the current runtime.
pub fn start(params: SessionParams) -> SessionHandle {
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    let (inbound, inbound_rx) = mpsc::unbounded_channel();
    let (close, close_rx) = oneshot::channel();
    let generation = params.generation;
    let done = tokio::spawn(run(params, outgoing_rx, inbound_rx, close_rx));
    SessionHandle {
        generation,
        outgoing,
        inbound,
        _close: close,
        done,
    }
}

async fn run(
    p: SessionParams,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    mut inbound: mpsc::UnboundedReceiver<Stream>,
    mut close: oneshot::Receiver<()>,
) {
    if let Some(previous) = p.previous {
        let _ = previous.await;
    }
    let fail = |reason: String| {
        let _ = p.reports.send(Report::Failed {
            peer: p.peer,
            generation: p.generation,
            reason,
        });
    };
    let mut control = p.control;
    let open = tokio::time::timeout(
        OPEN_TIMEOUT,
        control.open_stream(p.peer, StreamProtocol::new(SYNC_PROTOCOL)),
    );
    let stream = tokio::select! {
        _ = &mut close => return,
        opened = open => match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return fail(format!("cannot open {SYNC_PROTOCOL} stream: {e}")),
            Err(_) => return fail(format!("opening {SYNC_PROTOCOL} stream timed out")),
        },
    };
    // Reported before the event, so the swarm task knows by the time the app does.
    let _ = p.reports.send(Report::Ready {
        peer: p.peer,
        generation: p.generation,
    });
    // If the app dropped its receiver there is nobody to tell; keep serving.
    let _ = p.events.send(NetEvent::Connected(p.node)).await;

    let mut writer = tokio::spawn(write_loop(stream, outgoing, p.counters.clone()));
    let mut readers = JoinSet::new();
    let (frames_tx, mut frames) = mpsc::channel(READ_AHEAD);
    loop {
        tokio::select! {
            biased;
            _ = &mut close => break,
            written = &mut writer => {
                match written {
                    Ok(Ok(())) => {} // queue closed: the swarm task is ending us
                    Ok(Err(e)) => fail(format!("writing to the sync stream failed: {e}")),
                    Err(e) => fail(format!("sync writer stopped: {e}")),
                }
                break;
            }
            Some(stream) = inbound.recv() => {
                readers.spawn(read_loop(stream, frames_tx.clone(), p.counters.clone()));
            }
            Some(read) = frames.recv() => match read {
                Ok(body) => {
                    let _ = p.events.send(NetEvent::Frame(p.node, body)).await;
                }
                Err(e) => {
                    // The swarm task logs the reason when it drops the peer.
                    fail(format!("bad frame on the sync stream: {e}"));
                    break;
                }
            },
        }
    }
    writer.abort();
    readers.abort_all();
    let _ = p.events.send(NetEvent::Disconnected(p.node)).await;
}

/// Writes queued frames in order; ends cleanly when the queue closes.
async fn write_loop(
    mut stream: Stream,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    counters: Arc<Counters>,
) -> std::io::Result<()> {
    while let Some(item) = queue.recv().await {
        match item {
            Outgoing::Frame(body) => {
                // Counted before writing, so a peer holding the frame sees it counted.
                counters.sent(body.len() + HEADER_LEN);
                framing::write_frame(&mut stream, &body).await?;
            }
            #[cfg(test)]
            Outgoing::Raw(bytes) => stream.write_all(&bytes).await?,
            #[cfg(test)]
            Outgoing::Close => break,
        }
        if queue.is_empty() {
            stream.flush().await?;
        }
    }
    stream.close().await
}

/// Reads frames from one inbound stream. Link failures end it quietly (the
/// connection is going away); protocol violations are passed on.
async fn read_loop(
    mut stream: Stream,
    frames: mpsc::Sender<Result<Vec<u8>, FrameError>>,
    counters: Arc<Counters>,
) {
    loop {
        match framing::read_frame(&mut stream).await {
            Ok(Some(body)) => {
                counters.received(body.len() + HEADER_LEN);
                if frames.send(Ok(body)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) if e.is_violation() => {
                let _ = frames.send(Err(e)).await;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "inbound sync stream ended");
                return;
            }
        }
    }
}
