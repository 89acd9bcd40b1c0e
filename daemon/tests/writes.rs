//! The writer stays fair over the HTTP API: replacing a large text does
//! not stall small writes queued behind it.

mod common;

use std::time::Duration;

use common::{TOKEN, call, serve};
use hyper::{Method, StatusCode};
use serde_json::json;

/// Longest a small write may take while a large one runs. A hang guard, not
/// a speed target (weft-bench measures latency): a quadratic text diff
/// stalls writes for minutes, while a loaded 2-core CI machine was seen to
/// take over 2 s for an honest one, so the guard sits well between.
const SMALL_WRITE_BUDGET: Duration = Duration::from_secs(20);
/// Longest the large replacement itself may take (a fresh write of it
/// takes well under a second).
const LARGE_WRITE_BUDGET: Duration = Duration::from_secs(60);
/// Characters of the replaced string: well under the 1 MiB document limit.
const LARGE_TEXT_CHARS: usize = 600_000;
/// Small writes made while the large one runs.
const SMALL_WRITES: usize = 5;

/// `n` random letters and digits, so no two strings share long runs.
fn random_text(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap();
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Replacing a large string field with a different one (finding 9) does
/// not hold up other writes: each small write made meanwhile completes
/// within [`SMALL_WRITE_BUDGET`], and the large one within its own budget.
/// The runtime is shut down without waiting, so a node stuck in a diff
/// fails the test at once instead of hanging it.
#[test]
fn a_large_replacement_does_not_stall_small_writes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(large_replacement_scenario())
    }));
    rt.shutdown_background();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn large_replacement_scenario() {
    let s = serve().await;
    let big = "/v1/spaces/default/collections/notes/docs/big";
    let (status, body) = call(
        &s,
        Method::PUT,
        big,
        Some(json!({"text": random_text(LARGE_TEXT_CHARS)})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let client = s.client.clone();
    let replacement = serde_json::to_vec(&json!({"text": random_text(LARGE_TEXT_CHARS)})).unwrap();
    let auth = format!("Bearer {TOKEN}");
    let large = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let (status, _) = client
            .raw(Method::PUT, big, Some(replacement), Some(&auth))
            .await
            .unwrap();
        (status, started.elapsed())
    });
    // Small writes go on for as long as the large one runs (at least
    // SMALL_WRITES of them), so some are queued behind it.
    let started = std::time::Instant::now();
    let mut i = 0;
    while i < SMALL_WRITES || !large.is_finished() {
        assert!(
            started.elapsed() < LARGE_WRITE_BUDGET,
            "the large replacement took over {LARGE_WRITE_BUDGET:?}"
        );
        let path = format!("/v1/spaces/default/collections/notes/docs/small-{i}");
        let put = call(&s, Method::PUT, &path, Some(json!({"n": i})));
        let (status, body) = tokio::time::timeout(SMALL_WRITE_BUDGET, put)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "small write {i} took over {SMALL_WRITE_BUDGET:?} during a large replacement"
                )
            });
        assert_eq!(status, StatusCode::CREATED, "{body}");
        i += 1;
    }
    let (status, took) = large.await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "the large replacement was stored ({took:?})"
    );
    let (_, doc) = call(&s, Method::GET, big, None).await;
    assert_eq!(doc["text"].as_str().map(str::len), Some(LARGE_TEXT_CHARS));
}
