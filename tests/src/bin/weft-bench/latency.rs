//! Change-to-event latency between two connected nodes, against the round
//! trip of libp2p's own ping over the same transport (TCP, noise, yamux on
//! loopback) in the same run.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, SwarmBuilder, noise, ping, tcp, yamux};
use serde_json::json;
use weft_core::{Query, SubscribeFilter};

use crate::{Case, Scale};
use weft_tests::bench::{join, key, open};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len());
    samples[i - 1]
}

fn ping_swarm() -> anyhow::Result<Swarm<ping::Behaviour>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(5)))
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// `samples` libp2p ping round trips between two swarms on loopback.
async fn ping_rtts(samples: usize) -> anyhow::Result<Vec<Duration>> {
    let (mut a, mut b) = (ping_swarm()?, ping_swarm()?);
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
            break address;
        }
    };
    b.dial(addr)?;
    let mut rtts = Vec::with_capacity(samples);
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    while rtts.len() < samples {
        let event = tokio::select! {
            e = a.select_next_some() => e,
            e = b.select_next_some() => e,
            () = &mut deadline => anyhow::bail!("libp2p ping gave only {} samples", rtts.len()),
        };
        if let SwarmEvent::Behaviour(ping::Event {
            result: Ok(rtt), ..
        }) = event
        {
            rtts.push(rtt);
        }
    }
    Ok(rtts)
}

/// Put on `a`, time until `b`'s change feed reports it, one at a time.
async fn event_latencies(samples: usize) -> anyhow::Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let a = open(&dir.path().join("a")).await?;
    let b = open(&dir.path().join("b")).await?;
    let space = join(&a, &b, "latency").await?;
    let mut feed = b.subscribe(SubscribeFilter {
        space: Some(space.clone()),
        collection: Some(weft_tests::bench::COLLECTION.into()),
    });
    let mut out = Vec::with_capacity(samples);
    // The first few warm up both nodes' caches and connections.
    for i in 0..samples + 10 {
        let k = key(&space, i % 50)?;
        let started = Instant::now();
        a.put(&k, json!({ "seq": i })).await?;
        loop {
            let e = tokio::time::timeout(Duration::from_secs(30), feed.recv())
                .await
                .map_err(|_| anyhow::anyhow!("no event for write {i} within 30 s"))??;
            if e.key == k && e.origin != weft_core::node::Origin::Local {
                break;
            }
        }
        if i >= 10 {
            out.push(started.elapsed());
        }
    }
    a.close().await?;
    b.close().await?;
    Ok(out)
}

/// Put on `a`, time until a live query on `b` shows it, with `others`
/// more observers registered on `b`, each on a collection of its own (an
/// app's other screens): they must cost the measured one nothing.
async fn observer_latencies(samples: usize, others: usize) -> anyhow::Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let a = open(&dir.path().join("a")).await?;
    let b = open(&dir.path().join("b")).await?;
    let space = join(&a, &b, "observe").await?;
    let mut kept = Vec::with_capacity(others);
    for i in 0..others {
        kept.push(
            b.observe(Query::new(format!("screen{i}")).space(space.clone()))
                .await?,
        );
    }
    let query = Query::new(weft_tests::bench::COLLECTION).space(space.clone());
    let mut observed = b.observe(query).await?;
    observed.next().await.transpose()?;
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let k = key(&space, i % 50)?;
        // Changes further apart than the coalescing window: each is a lone
        // change, answered at once (a burst is throttled by design).
        tokio::time::sleep(weft_core::OBSERVE_COALESCE).await;
        let started = Instant::now();
        a.put(&k, json!({ "seq": i })).await?;
        loop {
            let rows = tokio::time::timeout(Duration::from_secs(30), observed.next())
                .await
                .map_err(|_| anyhow::anyhow!("no result for write {i} within 30 s"))?
                .ok_or_else(|| anyhow::anyhow!("the observer ended"))??;
            if rows.iter().any(|r| r.id == k.id() && r.json["seq"] == i) {
                break;
            }
        }
        if i >= 10 {
            out.push(started.elapsed());
        }
    }
    drop(kept);
    a.close().await?;
    b.close().await?;
    Ok(out)
}

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Case>> {
    let mut weft = event_latencies(scale.latency_samples).await?;
    let mut ping = ping_rtts(scale.latency_samples).await?;
    let (w50, w99) = (percentile(&mut weft, 0.5), percentile(&mut weft, 0.99));
    let (p50, p99) = (percentile(&mut ping, 0.5), percentile(&mut ping, 0.99));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let samples = scale.latency_samples / 2;
    let mut one = observer_latencies(samples, 0).await?;
    let mut many = observer_latencies(samples, 99).await?;
    let (one50, many50) = (percentile(&mut one, 0.5), percentile(&mut many, 0.5));
    let observe = Case {
        name: "remote change -> live query result, 100 observers (p50)".into(),
        ratio: us(many50) / us(one50).max(1e-3),
        target: Some(2.0),
        unit: "p50 latency with 99 more observers (other collections) vs with none".into(),
        details: json!({
            "samples": many.len(),
            "one_p50_us": us(one50), "one_p99_us": us(percentile(&mut one, 0.99)),
            "hundred_p50_us": us(many50), "hundred_p99_us": us(percentile(&mut many, 0.99)),
        }),
    };
    Ok(vec![
        observe,
        Case {
            name: "change -> event on a connected peer (p99)".into(),
            ratio: us(w99) / us(p99).max(1e-3),
            target: Some(5.0),
            unit: "p99 latency vs p99 libp2p ping round trip".into(),
            details: json!({
                "samples": weft.len(),
                "weft_p50_us": us(w50), "weft_p99_us": us(w99),
                "ping_p50_us": us(p50), "ping_p99_us": us(p99),
            }),
        },
    ])
}
