//! What commands print. With `--json`, one compact JSON value per result
//! (the API's shapes, so scripts can use either); otherwise text for people.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{
    AutomergeUrl, Change, Connected, Event, Identity, Invite, Joined, Listed, Peer, Space,
    SpaceRef, Status, Written,
};
use crate::table;

pub struct Printer {
    pub json: bool,
}

/// Writes one line; an error means the reader is gone (a closed pipe),
/// which only `watch` acts on: for one-shot output there is nothing to do.
fn line(s: impl std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    out.flush()
}

/// A name or other peer-supplied text made safe for a terminal (JSON output
/// stays exact; this is for text meant for people).
pub use weft_core::printable as clean;

fn compact(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("output serializes")
}

impl Printer {
    fn emit_json(&self, v: &impl Serialize) -> bool {
        if self.json {
            let _ = line(compact(v));
        }
        self.json
    }

    pub fn identity(&self, id: &Identity, embedded: bool) {
        if self.emit_json(id) {
            return;
        }
        let _ = line(format!("node id: {}", id.node_id));
        if id.listen_addrs.is_empty() {
            let why = if embedded { " (no daemon running)" } else { "" };
            let _ = line(format!("not listening{why}"));
        } else {
            let _ = line("listening on:");
            for a in &id.listen_addrs {
                let _ = line(format!("  {a}"));
            }
        }
    }

    pub fn space_ref(&self, s: &SpaceRef) {
        if !self.emit_json(s) {
            let _ = line(&s.id);
        }
    }

    /// A join prints the id alone for people, as `space create` does; its
    /// state is in the JSON (a refusal or a timeout is an error instead).
    pub fn joined(&self, j: &Joined) {
        if !self.emit_json(j) {
            let _ = line(&j.id);
        }
    }

    pub fn spaces(&self, spaces: &[Space]) {
        if self.emit_json(&spaces) {
            return;
        }
        if table::stdout_is_terminal() {
            let rows: Vec<Vec<String>> = spaces.iter().map(space_row).collect();
            return table_out(&["ID", "NAME", "STATE", "DEFAULT", "MEMBERS"], &rows);
        }
        for s in spaces {
            let _ = line(space_line(s));
        }
    }

    pub fn invite(&self, i: &Invite) {
        if !self.emit_json(i) {
            let _ = line(&i.token);
        }
    }

    /// Writes print nothing for people (as `cp` does); scripts get the heads.
    pub fn written(&self, w: &Written) {
        self.emit_json(w);
    }

    pub fn done(&self) {
        self.emit_json(&serde_json::json!({ "ok": true }));
    }

    pub fn document(&self, doc: &Value) {
        if !self.emit_json(doc) {
            let _ = line(serde_json::to_string_pretty(doc).expect("output serializes"));
        }
    }

    pub fn listed(&self, docs: &[Listed]) {
        if self.emit_json(&docs) {
            return;
        }
        if table::stdout_is_terminal() {
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| vec![cleaned(&d.id), cleaned(&compact(&d.doc))])
                .collect();
            return table_out(&["ID", "DOCUMENT"], &rows);
        }
        for d in docs {
            let _ = line(format!("{}\t{}", clean(&d.id), compact(&d.doc)));
        }
    }

    pub fn rows(&self, rows: &[Map<String, Value>]) {
        if self.emit_json(&rows) {
            return;
        }
        if table::stdout_is_terminal() {
            let (headers, cells) = sql_table(rows);
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            return table_out(&headers, &cells);
        }
        for r in rows {
            let _ = line(compact(r));
        }
    }

    pub fn history(&self, changes: &[Change]) {
        if self.emit_json(&changes) {
            return;
        }
        for c in changes {
            let _ = line(format!(
                "{}  {}  {}  {}",
                &c.hash[..c.hash.len().min(12)],
                weft_core::format_utc(c.time),
                clean(c.author.as_deref().unwrap_or(&c.actor)),
                clean(c.message.as_deref().unwrap_or(""))
            ));
        }
    }

    pub fn peers(&self, peers: &[Peer]) {
        if self.emit_json(&peers) {
            return;
        }
        if table::stdout_is_terminal() {
            let rows: Vec<Vec<String>> = peers
                .iter()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        peer_state(p).into(),
                        p.pending.values().sum::<usize>().to_string(),
                        cleaned(&p.addrs.join(" ")),
                    ]
                })
                .collect();
            return table_out(&["NODE ID", "STATE", "PENDING", "ADDRESSES"], &rows);
        }
        for p in peers {
            let pending: usize = p.pending.values().sum();
            let _ = line(format!(
                "{}  {}  {} pending  {}",
                p.id,
                if p.connected {
                    "connected"
                } else {
                    "disconnected"
                },
                pending,
                clean(&p.addrs.join(" "))
            ));
        }
    }

    pub fn url(&self, u: &AutomergeUrl) {
        if !self.emit_json(u) {
            let _ = line(&u.url);
        }
    }

    pub fn connected(&self, c: &Connected) {
        if !self.emit_json(c) {
            let _ = line(format!("connected to {}", c.node_id));
        }
    }

    pub fn status(&self, s: &Status) {
        if self.emit_json(s) {
            return;
        }
        let _ = line(format!("version:    {}", s.version));
        let _ = line(format!(
            "api:        {}",
            s.api
                .as_deref()
                .map_or("none (no daemon running)".into(), cleaned)
        ));
        let _ = line(format!("data dir:   {}", clean(&s.data_dir)));
        let _ = line(format!("uptime:     {}", uptime(s.uptime_secs)));
        let _ = line(format!("node id:    {}", s.node_id));
        let _ = line(format!(
            "mode:       {}",
            if s.online {
                "daemon (online)"
            } else {
                "embedded (offline: no daemon running)"
            }
        ));
        let _ = line(format!("documents:  {}", s.documents));
        let _ = line(format!("spaces:     {}", s.spaces));
        let _ = line(format!("peers:      {} connected", s.peers_connected));
        let _ = line(format!(
            "sync:       {} ({} documents pending)",
            if s.sync.idle { "idle" } else { "in progress" },
            s.sync.pending
        ));
        let _ = line(format!(
            "traffic:    {} bytes sent, {} received",
            s.traffic.bytes_sent, s.traffic.bytes_received
        ));
    }

    /// `weft daemon stop`: which process ended.
    pub fn stopped(&self, pid: u32) {
        if !self.emit_json(&serde_json::json!({ "stopped": true, "pid": pid })) {
            let _ = line(format!("daemon stopped (pid {pid})"));
        }
    }

    pub fn event(&self, e: &Event) -> std::io::Result<()> {
        if self.json {
            return line(compact(e));
        }
        let doc = match &e.doc {
            Some(d) => format!(" {}", clean(&compact(d))),
            None => String::new(),
        };
        line(format!(
            "{} {:<6} {}/{}/{}{}{doc}",
            e.seq,
            e.origin,
            clean(&e.space),
            clean(&e.collection),
            clean(&e.id),
            if e.deleted { " (deleted)" } else { "" }
        ))
    }
}

fn cleaned(s: &str) -> String {
    clean(s).into_owned()
}

/// A table on stdout; an empty listing prints nothing, as the plain form.
fn table_out(headers: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    for l in table::render(headers, rows) {
        let _ = line(l);
    }
}

fn peer_state(p: &Peer) -> &'static str {
    if p.connected {
        "connected"
    } else {
        "disconnected"
    }
}

/// `3d 4h 5m 6s`, leading zero units left out.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 || !out.is_empty() {
            out.push_str(&format!("{n}{unit} "));
        }
    }
    format!("{out}{s}s")
}

/// SQL rows as a table: every column any row has, in the rows' key order;
/// strings as they are (escaped), other values as JSON.
fn sql_table(rows: &[Map<String, Value>]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut headers: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !headers.contains(k) {
                headers.push(k.clone());
            }
        }
    }
    let cells = rows
        .iter()
        .map(|r| {
            headers
                .iter()
                .map(|h| match r.get(h) {
                    Some(Value::String(s)) => cleaned(s),
                    Some(v) => cleaned(&compact(v)),
                    None => String::new(),
                })
                .collect()
        })
        .collect();
    (headers.iter().map(|h| cleaned(h)).collect(), cells)
}

/// One space as a table row (see [`space_line`]).
fn space_row(s: &Space) -> Vec<String> {
    let state = match &s.reason {
        Some(reason) => format!("{}: {}", s.state, clean(reason)),
        None => s.state.clone(),
    };
    vec![
        s.id.clone(),
        cleaned(&s.name),
        state,
        if s.default { "yes" } else { "" }.into(),
        s.members.len().to_string(),
    ]
}

/// One space as `weft space list` prints it; its name may come from a peer
/// (the space's creator), and so does a refusal's reason: both are cleaned.
fn space_line(s: &Space) -> String {
    let state = match &s.reason {
        Some(reason) => format!("{}: {}", s.state, clean(reason)),
        None => s.state.clone(),
    };
    format!(
        "{}  {}  {}{}  {} members",
        s.id,
        clean(&s.name),
        state,
        if s.default { "  (default)" } else { "" },
        s.members.len()
    )
}

/// Splits a Server-Sent Events byte stream into `(event, data)` pairs.
/// Bytes are buffered until a whole line arrives, so a character split
/// across chunks is decoded intact.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(bytes);
        let mut done = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw);
            let l = text.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                if !self.data.is_empty() {
                    let kind = std::mem::take(&mut self.event);
                    let kind = if kind.is_empty() {
                        "message".to_owned()
                    } else {
                        kind
                    };
                    done.push((kind, self.data.join("\n")));
                    self.data.clear();
                }
                self.event.clear();
            } else if let Some(v) = l.strip_prefix("event:") {
                self.event = v.trim_start().to_owned();
            } else if let Some(v) = l.strip_prefix("data:") {
                self.data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_with_control_characters_escaped() {
        assert_eq!(clean("team-1 é"), "team-1 é");
        assert_eq!(clean("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(clean("a\nb\u{202e}c\u{9b}"), "a\\u{a}b\\u{202e}c\\u{9b}");
        let space = Space {
            id: "sp1".into(),
            name: "\x1b[31mred\x1b[0m".into(),
            role: Some("admin".into()),
            state: "admin".into(),
            reason: None,
            default: false,
            members: Default::default(),
        };
        let printed = space_line(&space);
        assert!(!printed.contains('\x1b'), "{printed:?}");
        assert!(printed.contains("\\u{1b}[31mred\\u{1b}[0m"), "{printed}");
        assert!(printed.contains("  admin  "), "{printed}");
        // JSON output keeps the name exactly.
        let json: Value = serde_json::from_str(&compact(&space)).unwrap();
        assert_eq!(json["name"], "\x1b[31mred\x1b[0m");
    }

    #[test]
    fn spaces_print_their_state_and_a_refusal_its_escaped_reason() {
        let space = |state: &str, reason: Option<&str>| Space {
            id: "sp1".into(),
            name: "team".into(),
            role: None,
            state: state.into(),
            reason: reason.map(str::to_owned),
            default: false,
            members: Default::default(),
        };
        assert_eq!(
            space_line(&space("pending", None)),
            "sp1  team  pending  0 members"
        );
        let refused = space("refused", Some("invite already used\x1b[2J"));
        assert_eq!(
            space_line(&refused),
            "sp1  team  refused: invite already used\\u{1b}[2J  0 members"
        );
        let json: Value = serde_json::from_str(&compact(&refused)).unwrap();
        assert_eq!(
            (&json["state"], &json["reason"], &json["role"]),
            (
                &Value::from("refused"),
                &Value::from("invite already used\x1b[2J"),
                &Value::Null
            )
        );
        let json: Value = serde_json::from_str(&compact(&space("writer", None))).unwrap();
        assert_eq!(json["reason"], Value::Null, "reason is always present");
    }

    #[test]
    fn uptimes_and_sql_tables_read_well() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(61), "1m 1s");
        assert_eq!(uptime(3600), "1h 0m 0s");
        assert_eq!(uptime(90_061), "1d 1h 1m 1s");
        let rows: Vec<Map<String, Value>> = vec![
            serde_json::from_str(r#"{"id": "a\u001b", "n": 1}"#).unwrap(),
            serde_json::from_str(r#"{"id": "b", "j": {"x": null}}"#).unwrap(),
        ];
        let (headers, cells) = sql_table(&rows);
        assert_eq!(headers, ["id", "n", "j"]);
        assert_eq!(
            cells,
            [
                vec!["a\\u{1b}".to_owned(), "1".into(), String::new()],
                vec!["b".to_owned(), String::new(), r#"{"x":null}"#.into()],
            ]
        );
    }

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(
            p.push(b": keep-alive\n\nevent: change\ndata: {\"a\"")
                .is_empty()
        );
        let got = p.push(b":1}\n\ndata: x\r\n\r\n");
        assert_eq!(
            got,
            [
                ("change".to_owned(), "{\"a\":1}".to_owned()),
                ("message".to_owned(), "x".to_owned())
            ]
        );
        // "é" is two bytes; split between chunks it still arrives whole.
        let bytes = "data: é\n\n".as_bytes();
        assert!(p.push(&bytes[..7]).is_empty());
        assert_eq!(
            p.push(&bytes[7..]),
            [("message".to_owned(), "é".to_owned())]
        );
    }
}
