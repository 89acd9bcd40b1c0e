//! One task per connected peer: opens the outbound sync stream, writes queued
//! frames in order, reads the peer's inbound stream, and is the only emitter
//! of that peer's events, so the app always sees Connected, Frames, Disconnected
//! in that order.
//!
//! Reading is credit-based: the reader reads one frame per grant, and the
//! session grants the next only when the previous one reached the app and
//! the peer may send more: before [`super::Net::proven`] at most
//! [`PRE_AUTH_FRAMES`] frames of [`PRE_AUTH_FRAME_MAX`] bytes, and never while
//! more than [`super::SEND_HIGH_WATER`] bytes wait to be written to the peer
//! (a read granted just before counts: at most one frame more).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::framing::{self, FrameError, HEADER_LEN};
use super::link::{Link, LinkState, Links};
use super::{MAX_FRAME, NetEvent, NetStats, PRE_AUTH_FRAME_MAX, PRE_AUTH_FRAMES, SYNC_PROTOCOL};
use crate::identity::NodeId;

/// How long opening the outbound sync stream may take before the session fails.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Inbound sync streams from the peer (one is read; more are refused).
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

/// Starts a session task on the current runtime, its link registered in
/// `links` first: the task may announce `Connected` at once (on another
/// thread), and the app's first frame must find the link.
pub fn start(params: SessionParams, links: &Links) -> SessionHandle {
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    let (inbound, inbound_rx) = mpsc::unbounded_channel();
    let (close, close_rx) = oneshot::channel();
    let generation = params.generation;
    let state = Arc::new(LinkState::default());
    let link = Link {
        generation,
        outgoing,
        state: state.clone(),
    };
    links.insert(params.node, link.clone());
    let done = tokio::spawn(run(params, state, outgoing_rx, inbound_rx, close_rx));
    SessionHandle {
        generation,
        inbound,
        _close: close,
        done,
    }
}

/// What the reader of the inbound stream hands the session.
enum Read {
    Frame(Vec<u8>),
    /// The peer broke the framing or sent more than it was allowed.
    Violation(FrameError),
    /// The stream ended (cleanly, or the link failed): another may be opened.
    Ended,
}

/// The inbound stream being read, and whether it holds a grant.
struct Reader {
    grants: mpsc::Sender<usize>,
    task: JoinHandle<()>,
    granted: bool,
}

async fn run(
    p: SessionParams,
    state: Arc<LinkState>,
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

    let mut writer = tokio::spawn(write_loop(
        stream,
        outgoing,
        p.counters.clone(),
        state.clone(),
    ));
    let mut reader: Option<Reader> = None;
    // One frame in flight between the reader and the session.
    let (frames_tx, mut frames) = mpsc::channel(1);
    let mut frames_read = 0usize;
    loop {
        if let Some(r) = reader.as_mut().filter(|r| !r.granted)
            && let Some(max) = allowance(&state, frames_read)
        {
            // The reader waits for each grant, so the one-slot channel has room.
            r.granted = r.grants.try_send(max).is_ok();
        }
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
            () = state.changed() => {
                if state.overflowed() {
                    fail(format!(
                        "more than {} bytes queued for a peer that does not read",
                        super::SEND_QUEUE_MAX
                    ));
                    break;
                }
            }
            Some(stream) = inbound.recv() => {
                if reader.is_some() {
                    // One reader per session: more streams would multiply what the
                    // peer can make us buffer. Dropping the stream resets it.
                    tracing::debug!(peer = %p.node, "refusing a second inbound sync stream");
                    drop(stream);
                } else {
                    let (grants, grants_rx) = mpsc::channel(1);
                    let task = tokio::spawn(read_loop(
                        stream,
                        grants_rx,
                        frames_tx.clone(),
                        p.counters.clone(),
                    ));
                    reader = Some(Reader { grants, task, granted: false });
                }
            }
            Some(read) = frames.recv() => match read {
                Read::Frame(body) => {
                    if let Some(r) = reader.as_mut() {
                        r.granted = false;
                    }
                    frames_read += 1;
                    let _ = p.events.send(NetEvent::Frame(p.node, body)).await;
                }
                Read::Violation(e) => {
                    // The swarm task logs the reason when it drops the peer.
                    fail(format!("bad frame on the sync stream: {e}"));
                    break;
                }
                Read::Ended => reader = None,
            },
        }
    }
    writer.abort();
    if let Some(r) = reader {
        r.task.abort();
    }
    let _ = p.events.send(NetEvent::Disconnected(p.node)).await;
}

/// The largest frame the peer may send next, or `None` while it must wait:
/// before its proof only a few small frames, after it none while our replies
/// to it pile up.
fn allowance(state: &LinkState, frames_read: usize) -> Option<usize> {
    if !state.proven() {
        (frames_read < PRE_AUTH_FRAMES).then_some(PRE_AUTH_FRAME_MAX)
    } else {
        (!state.congested()).then_some(MAX_FRAME)
    }
}

/// Writes queued frames in order; ends cleanly when the queue closes.
async fn write_loop(
    mut stream: Stream,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    counters: Arc<Counters>,
    state: Arc<LinkState>,
) -> std::io::Result<()> {
    while let Some(item) = queue.recv().await {
        match item {
            Outgoing::Frame(body) => {
                // Counted before writing, so a peer holding the frame sees it counted.
                counters.sent(body.len() + HEADER_LEN);
                framing::write_frame(&mut stream, &body).await?;
                state.written(body.len() + HEADER_LEN);
            }
            #[cfg(test)]
            Outgoing::Raw(bytes) => {
                stream.write_all(&bytes).await?;
                state.written(bytes.len());
            }
            #[cfg(test)]
            Outgoing::Close => break,
        }
        if queue.is_empty() {
            stream.flush().await?;
        }
    }
    stream.close().await
}

/// Reads one frame per grant (the grant is its size limit). Link failures end
/// it quietly (the connection is going away); protocol violations are passed on.
async fn read_loop(
    mut stream: Stream,
    mut grants: mpsc::Receiver<usize>,
    frames: mpsc::Sender<Read>,
    counters: Arc<Counters>,
) {
    while let Some(max) = grants.recv().await {
        let read = match framing::read_frame(&mut stream, max).await {
            Ok(Some(body)) => {
                counters.received(body.len() + HEADER_LEN);
                Read::Frame(body)
            }
            Ok(None) => Read::Ended,
            Err(e) if e.is_violation() => Read::Violation(e),
            Err(e) => {
                tracing::debug!(error = %e, "inbound sync stream ended");
                Read::Ended
            }
        };
        let last = !matches!(read, Read::Frame(_));
        if frames.send(read).await.is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::SEND_HIGH_WATER;

    #[test]
    fn reading_waits_for_the_proof_and_for_a_congested_peer() {
        let state = LinkState::default();
        assert_eq!(allowance(&state, 0), Some(PRE_AUTH_FRAME_MAX));
        assert_eq!(
            allowance(&state, PRE_AUTH_FRAMES - 1),
            Some(PRE_AUTH_FRAME_MAX)
        );
        assert_eq!(allowance(&state, PRE_AUTH_FRAMES), None);
        state.prove();
        assert_eq!(allowance(&state, 1000), Some(MAX_FRAME));
        assert!(state.charge(SEND_HIGH_WATER + 1));
        assert_eq!(allowance(&state, 1000), None, "congested: stop reading");
        state.written(1);
        assert_eq!(allowance(&state, 1000), Some(MAX_FRAME));
    }
}
