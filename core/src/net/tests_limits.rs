//! The bounds a peer meets on loopback: pre-handshake frames, inbound
//! streams, connections, and the send queue of a peer that does not read.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

use super::tests::{
    addr_of, big_frame, connected, disconnected, frames_from, start, until, within,
};
use super::*;

/// How long "nothing arrives" is watched: an absence has no event to await.
const QUIET: Duration = Duration::from_millis(500);

/// Two nodes, `peer` connected to `victim`, both sessions up.
async fn pair() -> ((Net, Receiver<NetEvent>), (Net, Receiver<NetEvent>)) {
    let (victim, mut v_rx) = start(NetConfig::local());
    let (peer, mut p_rx) = start(NetConfig::local());
    let v_addr = addr_of(&victim, "/tcp/").await;
    within("connect", peer.connect(v_addr))
        .await
        .expect("connects");
    connected(&mut v_rx, peer.local_id()).await;
    connected(&mut p_rx, victim.local_id()).await;
    ((victim, v_rx), (peer, p_rx))
}

/// The next event from `peer` is its `Disconnected`, with no frame before it.
async fn next_is_disconnect(rx: &mut Receiver<NetEvent>, peer: NodeId) {
    until(rx, "Disconnected", |e| match e {
        NetEvent::Disconnected(p) if p == peer => Some(()),
        NetEvent::Frame(p, body) if p == peer => {
            panic!("a {}-byte frame was delivered", body.len())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_pre_auth_frame_closes_the_session() {
    let ((victim, mut v_rx), (peer, mut p_rx)) = pair().await;
    let (iv, ip) = (victim.local_id(), peer.local_id());
    peer.send(iv, vec![1u8; PRE_AUTH_FRAME_MAX]);
    assert_eq!(
        frames_from(&mut v_rx, ip, 1).await,
        vec![vec![1u8; PRE_AUTH_FRAME_MAX]],
        "a frame at the limit is read"
    );
    peer.send(iv, vec![2u8; PRE_AUTH_FRAME_MAX + 1]);
    next_is_disconnect(&mut v_rx, ip).await;
    disconnected(&mut p_rx, iv).await;
    victim.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_past_the_pre_auth_allowance_wait_for_proven() {
    let ((victim, mut v_rx), (peer, _p_rx)) = pair().await;
    let (iv, ip) = (victim.local_id(), peer.local_id());
    let early: Vec<Vec<u8>> = (0..PRE_AUTH_FRAMES).map(|i| vec![i as u8; 8]).collect();
    for f in &early {
        peer.send(iv, f.clone());
    }
    peer.send(iv, b"after the proof".to_vec());
    assert_eq!(frames_from(&mut v_rx, ip, PRE_AUTH_FRAMES).await, early);
    let next = timeout(QUIET, v_rx.recv()).await;
    assert!(next.is_err(), "read past the allowance: {next:?}");
    assert_eq!(
        victim.stats().await.frames_received,
        PRE_AUTH_FRAMES as u64,
        "the frame stays unread in the transport"
    );

    victim.proven(ip);
    assert_eq!(
        frames_from(&mut v_rx, ip, 1).await,
        vec![b"after the proof".to_vec()]
    );
    // Proven, the peer may send full-size frames.
    peer.send(iv, big_frame());
    assert!(frames_from(&mut v_rx, ip, 1).await == vec![big_frame()]);
    victim.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_inbound_stream_is_refused() {
    let ((victim, mut v_rx), (peer, _p_rx)) = pair().await;
    let (iv, ip) = (victim.local_id(), peer.local_id());
    peer.send(iv, b"first stream".to_vec());
    frames_from(&mut v_rx, ip, 1).await;

    let mut control = peer.control_for_test().await.expect("control");
    let mut extra = within(
        "extra stream",
        control.open_stream(ids::peer_id(&iv), StreamProtocol::new(SYNC_PROTOCOL)),
    )
    .await
    .expect("protocol negotiated");
    // The victim drops the stream: writing to it or reading from it fails or
    // ends, depending on how far the write got before the reset.
    let refused = async {
        if framing::write_frame(&mut extra, b"second stream")
            .await
            .is_err()
            || extra.flush().await.is_err()
        {
            return true;
        }
        let mut buf = [0u8; 16];
        matches!(extra.read(&mut buf).await, Ok(0) | Err(_))
    };
    assert!(within("extra stream refused", refused).await);

    peer.send(iv, b"first stream again".to_vec());
    assert_eq!(
        frames_from(&mut v_rx, ip, 1).await,
        vec![b"first stream again".to_vec()],
        "the session goes on; the refused stream's frame never arrives"
    );
    assert_eq!(victim.stats().await.frames_received, 2);
    victim.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_connections_past_the_limit_are_refused() {
    let (victim, mut v_rx) = start(NetConfig::local());
    let v_addr = addr_of(&victim, "/tcp/").await;
    let mut dialers = Vec::new();
    for _ in 0..MAX_INCOMING_CONNECTIONS {
        let (net, rx) = start(NetConfig::local());
        within("connect", net.connect(v_addr.clone()))
            .await
            .expect("within the limit");
        dialers.push((net, rx));
    }
    let (extra, _extra_rx) = start(NetConfig::local());
    let refused = within("refusal", extra.connect(v_addr.clone())).await;
    assert!(refused.is_err(), "{refused:?}");
    let up = victim.peers().await.iter().filter(|p| p.connected).count();
    assert_eq!(up, MAX_INCOMING_CONNECTIONS as usize);
    assert!(
        !victim
            .peers()
            .await
            .iter()
            .any(|p| p.id == extra.local_id() && p.connected)
    );

    // A freed slot can be taken.
    let (first, _) = dialers.remove(0);
    first.shutdown().await;
    disconnected(&mut v_rx, first.local_id()).await;
    within("connect after a slot freed", extra.connect(v_addr))
        .await
        .expect("a slot is free");
    for (net, _) in dialers {
        net.shutdown().await;
    }
    extra.shutdown().await;
    victim.shutdown().await;
}

/// A pair where `victim` proved the peer but the peer never calls `proven`:
/// it has read two small frames (its pre-auth allowance) and reads no more.
async fn stalled_reader() -> (Net, Receiver<NetEvent>, Net, Receiver<NetEvent>, NodeId) {
    let ((victim, v_rx), (peer, mut p_rx)) = pair().await;
    let (iv, ip) = (victim.local_id(), peer.local_id());
    victim.proven(ip);
    victim.send(ip, b"one".to_vec());
    victim.send(ip, b"two".to_vec());
    frames_from(&mut p_rx, iv, 2).await;
    (victim, v_rx, peer, p_rx, ip)
}

/// A peer that stops reading: our queue for it never passes the cap, and the
/// session ends when a frame would pass it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_at_the_queue_cap() {
    let (victim, mut v_rx, peer, _p_rx, ip) = stalled_reader().await;

    let frame = vec![7u8; MAX_FRAME];
    // Well past the cap plus the transport's window of a few hundred KiB.
    let rounds = 2 * SEND_QUEUE_MAX / MAX_FRAME;
    let mut peak = 0;
    for _ in 0..rounds {
        victim.send(ip, frame.clone());
        let queued = victim.queued(ip);
        assert!(queued <= SEND_QUEUE_MAX, "{queued} bytes queued");
        peak = peak.max(queued);
    }
    assert!(peak > SEND_HIGH_WATER, "the queue filled ({peak} bytes)");
    disconnected(&mut v_rx, ip).await;
    // Reports are handled before later commands: the link is gone with the session.
    victim.peers().await;
    assert_eq!(victim.queued(ip), 0);
    victim.shutdown().await;
    peer.shutdown().await;
}

/// While our replies to a peer pile up past the high-water mark, its frames
/// are not read; once it reads again, they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_congested_peer_is_not_read_until_it_catches_up() {
    let (victim, mut v_rx, peer, mut p_rx, ip) = stalled_reader().await;
    let iv = victim.local_id();
    let chunk = vec![3u8; 1 << 20];
    let mut chunks = 0;
    while victim.queued(ip) <= SEND_HIGH_WATER {
        victim.send(ip, chunk.clone());
        chunks += 1;
    }
    assert!(victim.queued(ip) <= SEND_QUEUE_MAX);

    peer.send(iv, b"first".to_vec());
    peer.send(iv, b"second".to_vec());
    // A read granted before the congestion began may complete; none after it.
    let mut got = Vec::new();
    let _ = timeout(QUIET, async {
        while let Some(event) = v_rx.recv().await {
            if let NetEvent::Frame(p, body) = event
                && p == ip
            {
                got.push(body);
            }
        }
    })
    .await;
    assert!(got.len() <= 1, "{} frames read while congested", got.len());

    // The peer reads again: the queue drains, and its frames are read.
    peer.proven(iv);
    assert_eq!(frames_from(&mut p_rx, iv, chunks).await.len(), chunks);
    got.extend(frames_from(&mut v_rx, ip, 2 - got.len()).await);
    assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
    victim.shutdown().await;
    peer.shutdown().await;
}
