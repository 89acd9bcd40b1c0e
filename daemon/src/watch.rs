//! `weft watch`: prints the change feed, and when the daemon stops or
//! restarts, finds it again through the data dir and resumes after the last
//! change it printed.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use http_body_util::BodyDataStream;
use weft_core::ErrorKind;

use crate::client::Client;
use crate::error::CliError;
use crate::model::Event;
use crate::output::{self, Printer};

/// First wait before looking for the daemon again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between looks: how late a restarted daemon is noticed.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What to watch.
#[derive(Clone, Debug)]
pub struct Args<'a> {
    /// One space, or every space.
    pub space: Option<&'a str>,
    /// One collection, or every one.
    pub collection: Option<&'a str>,
    /// Replay what changed after this sequence number first.
    pub since: Option<u64>,
    /// Put each change's document in its line.
    pub include_docs: bool,
}

/// Why one connection's stream ended.
enum End {
    /// Standard output is gone (`weft watch | head -1`): done.
    ReaderGone,
    /// The daemon went away.
    Lost(String),
}

/// Prints change events until standard output closes (or Ctrl-C). A first
/// connection that fails is an error; after that, a lost daemon is waited
/// for, with growing pauses, and the stream resumes where it stopped.
pub async fn watch(
    data_dir: &Path,
    first: &Client,
    args: &Args<'_>,
    out: &Printer,
) -> Result<(), CliError> {
    // The last sequence number printed (or where live events began): what
    // a new connection resumes after.
    let mut since = args.since;
    let mut client = first.clone();
    let mut reconnecting = false;
    loop {
        let body = match client
            .events(args.space, args.collection, since, args.include_docs)
            .await
        {
            Ok(body) => body,
            // Gone again between being found and answering: keep looking.
            Err(e) if reconnecting && e.kind == ErrorKind::Closed => {
                client = rediscover(data_dir, &e.message).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if reconnecting {
            eprintln!("reconnected to the daemon; resuming the event stream");
        }
        match print_stream(body, &mut since, out).await {
            End::ReaderGone => return Ok(()),
            End::Lost(why) => {
                let after = since.map_or(String::new(), |n| format!(" after change {n}"));
                eprintln!(
                    "the daemon stopped ({why}); waiting for it to come back to resume{after} (Ctrl-C to stop)"
                );
                reconnecting = true;
                client = rediscover(data_dir, &why).await;
            }
        }
    }
}

/// Looks for a daemon serving `data_dir` until one answers.
async fn rediscover(data_dir: &Path, why: &str) -> Client {
    tracing::debug!(reason = why, "looking for the daemon again");
    let mut pause = RETRY_FIRST;
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
        match Client::discover(data_dir).await {
            Ok(Some(client)) => return client,
            Ok(None) => {}
            // A daemon.json being rewritten, say: look again.
            Err(e) => tracing::debug!(error = %e.message, "no daemon yet"),
        }
    }
}

/// Prints one connection's events, moving `since` along.
async fn print_stream(body: axum::body::Body, since: &mut Option<u64>, out: &Printer) -> End {
    let mut chunks = BodyDataStream::new(body);
    let mut parser = output::SseParser::default();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return End::Lost(format!("the event stream broke: {e}")),
        };
        for (kind, data) in parser.push(&chunk) {
            match kind.as_str() {
                "change" => match serde_json::from_str::<Event>(&data) {
                    Ok(e) => {
                        if out.event(&e).is_err() {
                            return End::ReaderGone;
                        }
                        *since = Some(e.seq);
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable event"),
                },
                // Where live events begin: a watcher that has printed
                // nothing yet resumes from here, so it misses nothing.
                "ready" => {
                    let seq = serde_json::from_str::<serde_json::Value>(&data)
                        .ok()
                        .and_then(|v| v["seq"].as_u64());
                    if let (None, Some(n)) = (*since, seq) {
                        *since = Some(n);
                    }
                }
                "lagged" => eprintln!(
                    "warning: fell behind; some events were dropped ({})",
                    output::clean(&data)
                ),
                _ => {}
            }
        }
    }
    End::Lost("the event stream ended".into())
}
