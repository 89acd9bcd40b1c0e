//! Logs on stderr: text for people, or one JSON object per line for log
//! collectors. Colour codes only when stderr is a terminal, so journald,
//! launchd's log file and `2> file` get clean text.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{Cli, Command};

/// `--log-format` / config `log_format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event for people: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`
    /// and the event's fields, all at the top level.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether logs are JSON lines, so that the daemon reports its own failure
/// as one too instead of a plain `error:` line among them.
pub fn json_logs() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Installs the subscriber. `RUST_LOG` wins; else the config's `log`; else
/// `info` for the daemon and `warn` for one-shot commands, whose output is
/// their result. The format: `weft daemon --log-format`, else the config's
/// `log_format`, else text. A config that does not load is reported by the
/// command itself; logging then uses the defaults.
pub fn init(cli: &Cli) {
    let default = match &cli.command {
        // kad warns whenever a node has no DHT peers yet, which is the normal
        // state of a LAN-only daemon.
        Command::Daemon(args) if args.action.is_none() => "info,libp2p_kad=error",
        _ => "warn",
    };
    let file = crate::config::load(cli.config.as_deref()).unwrap_or_default();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(file.log.as_deref().unwrap_or(default)))
        .unwrap_or_else(|_| EnvFilter::new(default));
    let flag = match &cli.command {
        Command::Daemon(args) => args.log_format,
        _ => None,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match flag.or(file.log_format).unwrap_or_default() {
        // The journal stamps every line itself; a second time is noise.
        LogFormat::Text if stderr_is_journal() => builder.without_time().init(),
        LogFormat::Text => builder.init(),
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            builder.event_format(JsonLine).init();
        }
    }
}

/// Whether stderr is systemd's journal: `JOURNAL_STREAM` names its device
/// and inode (a child that redirected stderr elsewhere inherits the
/// variable, hence the comparison).
fn stderr_is_journal() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
            return false;
        };
        let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
            return false;
        };
        let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
            return false;
        };
        std::fs::File::from(fd)
            .metadata()
            .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
    }
    #[cfg(not(unix))]
    false
}

/// One event as one JSON object: `timestamp` (RFC 3339, UTC), `level`,
/// `target`, `message`, then the event's fields. tracing-subscriber's own
/// JSON omits `message` when a library logs fields only (libp2p does);
/// here it is always there (the fields as `k=v` then), so collectors can
/// rely on it.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let message = fields.message.take().unwrap_or_else(|| {
            let parts: Vec<String> = fields.map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.join(" ")
        });
        let mut line = Map::new();
        line.insert("timestamp".into(), time.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), message.into());
        for (k, v) in fields.map {
            // A field named like one of ours keeps its value under `field.k`.
            let k = if line.contains_key(&k) {
                format!("field.{k}")
            } else {
                k
            };
            line.insert(k, v);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields as JSON values; `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn every_event_is_one_json_object_with_a_message() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .event_format(JsonLine)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(path = "/tmp/x", n = 3, "opened\nthe \"replica\"");
            tracing::warn!(local_peer_id = %"12D3", ok = true);
            tracing::error!(message = 7, level = "mine");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "opened\nthe \"replica\"");
        assert_eq!(
            (&lines[0]["path"], &lines[0]["n"]),
            (&Value::from("/tmp/x"), &Value::from(3))
        );
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["message"], "local_peer_id=\"12D3\" ok=true");
        assert_eq!(lines[2]["message"], "7");
        assert_eq!(
            (&lines[2]["level"], &lines[2]["field.level"]),
            (&Value::from("ERROR"), &Value::from("mine"))
        );
    }
}
