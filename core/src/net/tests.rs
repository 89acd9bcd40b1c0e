//! Networking tests on loopback: real TCP, QUIC and relayed connections
//! between nodes in one process. Waits are event-driven with timeouts.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

use super::*;

pub(super) const WAIT: Duration = Duration::from_secs(15);

pub(super) fn secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).expect("randomness");
    s
}

pub(super) fn start(config: NetConfig) -> (Net, Receiver<NetEvent>) {
    spawn(secret(), config).expect("spawn")
}

pub(super) fn quic_config() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
        ..NetConfig::local()
    }
}

pub(super) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Skips events until `pick` accepts one.
pub(super) async fn until<T>(
    rx: &mut Receiver<NetEvent>,
    what: &str,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            let event = rx.recv().await.expect("event channel open");
            if let Some(v) = pick(event) {
                return v;
            }
        }
    })
    .await
}

pub(super) async fn connected(rx: &mut Receiver<NetEvent>, peer: NodeId) {
    until(rx, &format!("Connected({peer})"), |e| {
        matches!(e, NetEvent::Connected(p) if p == peer).then_some(())
    })
    .await
}

pub(super) async fn disconnected(rx: &mut Receiver<NetEvent>, peer: NodeId) {
    until(rx, &format!("Disconnected({peer})"), |e| {
        matches!(e, NetEvent::Disconnected(p) if p == peer).then_some(())
    })
    .await
}

pub(super) async fn frames_from(
    rx: &mut Receiver<NetEvent>,
    peer: NodeId,
    n: usize,
) -> Vec<Vec<u8>> {
    frames_from_each(rx, &[(peer, n)]).await.remove(0)
}

/// Collects `n` frames from each listed peer, in arrival order per peer.
pub(super) async fn frames_from_each(
    rx: &mut Receiver<NetEvent>,
    want: &[(NodeId, usize)],
) -> Vec<Vec<Vec<u8>>> {
    let mut got = vec![Vec::new(); want.len()];
    let done = |got: &Vec<Vec<Vec<u8>>>| want.iter().zip(got).all(|((_, n), g)| g.len() >= *n);
    while !done(&got) {
        let (i, body) = until(rx, &format!("frames from {want:?}"), |e| match e {
            NetEvent::Frame(p, body) => want.iter().position(|(w, _)| *w == p).map(|i| (i, body)),
            _ => None,
        })
        .await;
        got[i].push(body);
    }
    got
}

/// The node's first loopback address of the given transport.
pub(super) async fn addr_of(net: &Net, transport: &str) -> Multiaddr {
    let addrs = net.listen_addrs().await;
    addrs
        .iter()
        .find(|a| {
            let s = a.to_string();
            s.starts_with("/ip4/127.0.0.1/") && s.contains(transport) && !s.contains("p2p-circuit")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no loopback {transport} address in {addrs:?}"))
}

pub(super) fn big_frame() -> Vec<u8> {
    (0..MAX_FRAME - 7).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_ordered_frames_over_tcp() {
    let (a, mut a_rx) = start(NetConfig::local());
    let (b, mut b_rx) = start(NetConfig::local());
    let (c, mut c_rx) = start(NetConfig::local());
    let (ia, ib, ic) = (a.local_id(), b.local_id(), c.local_id());

    let b_addr = addr_of(&b, "/tcp/").await;
    assert!(
        b_addr.to_string().ends_with(&format!("/p2p/{ib}")),
        "{b_addr}"
    );
    assert_eq!(within("a->b", a.connect(b_addr)).await.unwrap(), ib);
    let c_addr = addr_of(&c, "/tcp/").await;
    assert_eq!(within("b->c", b.connect(c_addr)).await.unwrap(), ic);
    connected(&mut a_rx, ib).await;
    connected(&mut b_rx, ia).await;
    connected(&mut c_rx, ib).await;
    // As the sync layer does after the handshake: full-size frames from here on.
    for (net, peer) in [(&a, ib), (&b, ia), (&b, ic), (&c, ib)] {
        net.proven(peer);
    }

    let a_to_b = vec![b"one".to_vec(), Vec::new(), big_frame(), b"last".to_vec()];
    let b_to_a = vec![b"reply".to_vec(), big_frame()];
    for f in &a_to_b {
        a.send(ib, f.clone());
    }
    for f in &b_to_a {
        b.send(ia, f.clone());
    }
    b.send(ic, b"to c".to_vec());
    c.send(ib, b"from c".to_vec());

    let at_b = frames_from_each(&mut b_rx, &[(ia, a_to_b.len()), (ic, 1)]).await;
    assert!(at_b[0] == a_to_b, "frames from a differ");
    assert_eq!(at_b[1], vec![b"from c".to_vec()]);
    assert!(frames_from(&mut a_rx, ib, b_to_a.len()).await == b_to_a);
    assert_eq!(frames_from(&mut c_rx, ib, 1).await, vec![b"to c".to_vec()]);

    let a_peers = a.peers().await;
    assert_eq!(a_peers.len(), 1, "{a_peers:?}");
    assert_eq!(a_peers[0].id, ib);
    assert!(a_peers[0].connected);
    assert!(a_peers[0].last_seen_ms.is_some());
    assert!(
        a_peers[0]
            .addrs
            .iter()
            .any(|s| s.starts_with("/ip4/127.0.0.1/tcp/")),
        "{a_peers:?}"
    );
    let b_peers = b.peers().await;
    let mut ids: Vec<NodeId> = b_peers
        .iter()
        .filter(|p| p.connected)
        .map(|p| p.id)
        .collect();
    ids.sort();
    let mut want = vec![ia, ic];
    want.sort();
    assert_eq!(ids, want, "{b_peers:?}");

    let bytes = |fs: &[Vec<u8>]| fs.iter().map(|f| (f.len() + 4) as u64).sum::<u64>();
    let sa = a.stats().await;
    assert_eq!(sa.frames_sent, a_to_b.len() as u64);
    assert_eq!(sa.bytes_sent, bytes(&a_to_b));
    assert_eq!(sa.frames_received, b_to_a.len() as u64);
    assert_eq!(sa.bytes_received, bytes(&b_to_a));
    let sb = b.stats().await;
    assert_eq!(sb.frames_received, a_to_b.len() as u64 + 1);
    assert_eq!(sb.bytes_received, bytes(&a_to_b) + 4 + 6);

    a.shutdown().await;
    disconnected(&mut b_rx, ia).await;
    assert!(matches!(
        a.connect(addr_of(&c, "/tcp/").await).await,
        Err(NetError::Closed)
    ));
    assert!(a.peers().await.is_empty());
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_frames_over_quic() {
    let (a, mut a_rx) = start(quic_config());
    let (b, mut b_rx) = start(quic_config());
    let (ia, ib) = (a.local_id(), b.local_id());
    let b_addr = addr_of(&b, "/quic-v1").await;
    assert_eq!(within("quic connect", a.connect(b_addr)).await.unwrap(), ib);
    connected(&mut b_rx, ia).await;
    a.send(ib, b"over quic".to_vec());
    assert_eq!(
        frames_from(&mut b_rx, ia, 1).await,
        vec![b"over quic".to_vec()]
    );
    b.send(ia, b"and back".to_vec());
    assert_eq!(
        frames_from(&mut a_rx, ib, 1).await,
        vec![b"and back".to_vec()]
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A peer breaking the framing is dropped; the node keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_is_disconnected_others_unaffected() {
    let (victim, mut v_rx) = start(NetConfig::local());
    let (good, mut g_rx) = start(NetConfig::local());
    let (oversize, mut o_rx) = start(NetConfig::local());
    let (truncate, mut t_rx) = start(NetConfig::local());
    let iv = victim.local_id();
    let v_addr = addr_of(&victim, "/tcp/").await;
    for (net, rx) in [
        (&good, &mut g_rx),
        (&oversize, &mut o_rx),
        (&truncate, &mut t_rx),
    ] {
        within("connect", net.connect(v_addr.clone()))
            .await
            .unwrap();
        connected(&mut v_rx, net.local_id()).await;
        connected(rx, iv).await;
    }

    // A header announcing one byte more than allowed.
    let mut evil = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    evil.extend_from_slice(&[0u8; 64]);
    oversize.send_raw(iv, evil);
    disconnected(&mut v_rx, oversize.local_id()).await;
    disconnected(&mut o_rx, iv).await;

    // A frame cut short by the end of the stream.
    truncate.send_raw(iv, [&100u32.to_be_bytes()[..], &[1u8; 10]].concat());
    truncate.close_stream_for_test(iv);
    disconnected(&mut v_rx, truncate.local_id()).await;

    good.send(iv, b"still here".to_vec());
    assert_eq!(
        frames_from(&mut v_rx, good.local_id(), 1).await,
        vec![b"still here".to_vec()]
    );
    victim.send(good.local_id(), b"yes".to_vec());
    assert_eq!(frames_from(&mut g_rx, iv, 1).await, vec![b"yes".to_vec()]);
    let peers = victim.peers().await;
    let connected_ids: Vec<NodeId> = peers.iter().filter(|p| p.connected).map(|p| p.id).collect();
    assert_eq!(connected_ids, vec![good.local_id()], "{peers:?}");
    for net in [victim, good, oversize, truncate] {
        net.shutdown().await;
    }
}

/// A static peer is redialed after its connection drops, with no manual connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peer_is_redialed() {
    let (b, mut b_rx) = start(NetConfig::local());
    let b_addr = addr_of(&b, "/tcp/").await;
    let (a, mut a_rx) = start(NetConfig {
        peers: vec![b_addr],
        ..NetConfig::local()
    });
    let (ia, ib) = (a.local_id(), b.local_id());
    connected(&mut a_rx, ib).await;
    connected(&mut b_rx, ia).await;

    a.disconnect(ib).await;
    disconnected(&mut a_rx, ib).await;
    disconnected(&mut b_rx, ia).await;
    connected(&mut a_rx, ib).await;
    connected(&mut b_rx, ia).await;
    a.send(ib, b"after redial".to_vec());
    assert_eq!(
        frames_from(&mut b_rx, ia, 1).await,
        vec![b"after redial".to_vec()]
    );

    // The remote side ending the session triggers a redial too.
    b.disconnect(ia).await;
    disconnected(&mut a_rx, ib).await;
    connected(&mut a_rx, ib).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Whether a non-loopback interface that can multicast is up.
fn has_multicast_interface() -> bool {
    const IFF_UP: u32 = 0x1;
    const IFF_LOOPBACK: u32 = 0x8;
    const IFF_MULTICAST: u32 = 0x1000;
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return false;
    };
    dir.flatten().any(|entry| {
        let flags = std::fs::read_to_string(entry.path().join("flags")).unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        flags & IFF_UP != 0 && flags & IFF_LOOPBACK == 0 && flags & IFF_MULTICAST != 0
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_discovers_and_connects() {
    // mDNS multicasts on the machine's LAN interface; this workplace allows
    // traffic to loopback only, so the test runs where it is allowed.
    if std::env::var_os("WEFT_TEST_MDNS").is_none() {
        println!("skipped: mDNS multicasts on the LAN; set WEFT_TEST_MDNS=1 where that is allowed");
        return;
    }
    // mDNS only announces addresses of the interface it runs on, so listen on all.
    let config = || NetConfig {
        listen: vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()],
        mdns: true,
        ..NetConfig::local()
    };
    let (a, mut a_rx) = start(config());
    let (b, mut b_rx) = start(config());
    let (ia, ib) = (a.local_id(), b.local_id());
    let found = timeout(WAIT, async {
        connected(&mut a_rx, ib).await;
        connected(&mut b_rx, ia).await;
    })
    .await;
    if found.is_err() {
        if has_multicast_interface() {
            panic!("mDNS peers did not connect within {WAIT:?}");
        }
        println!("skipped: no multicast interface");
        return;
    }
    a.send(ib, b"found you".to_vec());
    assert_eq!(
        frames_from(&mut b_rx, ia, 1).await,
        vec![b"found you".to_vec()]
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_through_a_relay_circuit() {
    let (r, _r_rx) = start(NetConfig {
        relay_server: true,
        ..NetConfig::local()
    });
    let r_addr = addr_of(&r, "/tcp/").await;
    let (b, mut b_rx) = start(NetConfig {
        relays: vec![r_addr.clone()],
        ..NetConfig::local()
    });
    let (a, mut a_rx) = start(NetConfig::local());
    let (ia, ib) = (a.local_id(), b.local_id());

    let b_addrs = b.listen_addrs().await;
    let circuit = b_addrs
        .iter()
        .find(|a| a.to_string().contains("/p2p-circuit/"))
        .cloned()
        .unwrap_or_else(|| panic!("no circuit address in {b_addrs:?}"));
    assert_eq!(
        circuit.to_string(),
        format!("{r_addr}/p2p-circuit/p2p/{ib}"),
        "circuit address"
    );
    assert_eq!(
        within("connect via relay", a.connect(circuit))
            .await
            .unwrap(),
        ib
    );
    connected(&mut b_rx, ia).await;
    a.send(ib, b"relayed".to_vec());
    assert_eq!(
        frames_from(&mut b_rx, ia, 1).await,
        vec![b"relayed".to_vec()]
    );
    b.send(ia, b"relayed back".to_vec());
    assert_eq!(
        frames_from(&mut a_rx, ib, 1).await,
        vec![b"relayed back".to_vec()]
    );
    for net in [a, b, r] {
        net.shutdown().await;
    }
}
