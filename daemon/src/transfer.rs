//! `weft import` and `weft export`: a space's documents as NDJSON, one
//! `{"collection", "id", "doc"}` per line. Import sends them in batches
//! (one transaction each), so 100,000 documents are 100 requests, not
//! 100,000.

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http_body_util::BodyDataStream;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use weft_core::ErrorKind;

use crate::batch::{BatchOp, IMPORT_BATCH_BYTES, IMPORT_BATCH_OPS, Record};
use crate::client::Client;
use crate::error::CliError;
use crate::output::Printer;

/// Bytes one import line may hold: a document of the largest size Weft
/// stores, plus its collection and id.
pub const MAX_LINE: usize = weft_core::MAX_DOC_BYTES + 4096;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Documents stored.
    pub imported: u64,
}

/// Imports `file` (`-` for standard input) into `space` and says how many
/// documents it stored.
pub async fn import(
    b: &Client,
    space: Option<&str>,
    file: &str,
    out: &Printer,
) -> Result<(), CliError> {
    let imported = import_file(b, space, file).await?;
    if out.json {
        println!("{}", serde_json::json!({ "imported": imported.imported }));
    } else {
        println!("imported {} documents", imported.imported);
    }
    Ok(())
}

/// Imports `file` (`-` for standard input) into `space`.
pub async fn import_file(
    b: &Client,
    space: Option<&str>,
    file: &str,
) -> Result<Imported, CliError> {
    let (reader, size): (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>) = if file == "-" {
        if std::io::stdin().is_terminal() {
            return Err(CliError::new(
                ErrorKind::InvalidInput,
                "weft import - reads NDJSON from standard input, which is a terminal; pipe a file in or pass its path",
            ));
        }
        (Box::new(BufReader::new(tokio::io::stdin())), None)
    } else {
        let f = tokio::fs::File::open(file).await.map_err(|e| {
            CliError::new(ErrorKind::InvalidInput, format!("cannot open {file}: {e}"))
        })?;
        let size = f.metadata().await.ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), size)
    };
    let mut progress = Progress::new("importing", size);
    let result = import_from(b, space, reader, &mut progress).await;
    progress.finish();
    result
}

/// Reads lines into batches and sends each; a failure names the line.
async fn import_from(
    b: &Client,
    space: Option<&str>,
    mut reader: impl AsyncBufRead + Unpin,
    progress: &mut Progress,
) -> Result<Imported, CliError> {
    let mut done = Imported { imported: 0 };
    let mut ops = Vec::new();
    // The input line of each op in `ops`, to name a failing one.
    let mut lines = Vec::new();
    let mut bytes = 0usize;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = read_line(&mut reader, &mut buf, line_no + 1).await?;
        progress.read(n as u64);
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let record: Record = serde_json::from_slice(text).map_err(|e| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!(
                    "line {line_no}: not a {{\"collection\", \"id\", \"doc\": {{...}}}} object ({e}); {}",
                    resume_hint(done.imported)
                ),
            )
        })?;
        bytes += text.len();
        ops.push(BatchOp::Put {
            collection: record.collection,
            id: record.id,
            doc: record.doc,
        });
        lines.push(line_no);
        if ops.len() >= IMPORT_BATCH_OPS || bytes >= IMPORT_BATCH_BYTES {
            send(b, space, &mut ops, &mut lines, &mut done).await?;
            bytes = 0;
            progress.documents(done.imported);
        }
    }
    send(b, space, &mut ops, &mut lines, &mut done).await?;
    progress.documents(done.imported);
    Ok(done)
}

/// Reads one line of at most [`MAX_LINE`] bytes; returns the bytes read
/// (0 at the end).
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    line_no: u64,
) -> Result<usize, CliError> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await.map_err(|e| {
            CliError::new(
                ErrorKind::InvalidInput,
                format!("cannot read line {line_no}: {e}"),
            )
        })?;
        if available.is_empty() {
            return Ok(total);
        }
        let (take, end) = match available.iter().position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            return Err(CliError::new(
                ErrorKind::InvalidInput,
                format!(
                    "line {line_no} is over {MAX_LINE} bytes, more than a document may hold; nothing from it on was imported"
                ),
            ));
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if end {
            return Ok(total);
        }
    }
}

async fn send(
    b: &Client,
    space: Option<&str>,
    ops: &mut Vec<BatchOp>,
    lines: &mut Vec<u64>,
    done: &mut Imported,
) -> Result<(), CliError> {
    if ops.is_empty() {
        return Ok(());
    }
    let n = ops.len() as u64;
    match b.batch(space, std::mem::take(ops)).await {
        Ok(_) => {
            done.imported += n;
            lines.clear();
            Ok(())
        }
        Err((mut e, index)) => {
            if let Some(line) = index.and_then(|i| lines.get(i)) {
                e.message = format!("line {line}: {}; {}", e.message, resume_hint(done.imported));
            }
            Err(e)
        }
    }
}

fn resume_hint(imported: u64) -> String {
    format!(
        "{imported} documents were imported before it; fix the line and run the import again (documents already imported stay as they are)"
    )
}

/// Writes `space`'s documents (one collection, or all) to standard output.
pub async fn export(
    b: &Client,
    space: Option<&str>,
    collection: Option<&str>,
) -> Result<(), CliError> {
    let body = b.export(space, collection).await?;
    let mut chunks = BodyDataStream::new(body);
    let mut progress = Progress::new("exporting", None);
    let mut stdout = std::io::stdout().lock();
    let mut count = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::new(
                ErrorKind::Closed,
                format!("the export was cut off ({e}); the output is incomplete, run it again"),
            )
        })?;
        count += chunk.iter().filter(|&&c| c == b'\n').count() as u64;
        if let Err(e) = stdout.write_all(&chunk) {
            // The reader went away (`weft export | head`): done.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(CliError::new(
                ErrorKind::Internal,
                format!("cannot write the export: {e}"),
            ));
        }
        progress.documents(count);
    }
    progress.finish();
    stdout
        .flush()
        .map_err(|e| CliError::new(ErrorKind::Internal, format!("cannot write the export: {e}")))
}

/// A one-line progress bar on standard error when it is a terminal;
/// nothing otherwise (the result line says what was done).
struct Progress {
    what: &'static str,
    total_bytes: Option<u64>,
    bytes: u64,
    docs: u64,
    started: Instant,
    shown: Option<Instant>,
    terminal: bool,
}

impl Progress {
    fn new(what: &'static str, total_bytes: Option<u64>) -> Self {
        Self {
            what,
            total_bytes,
            bytes: 0,
            docs: 0,
            started: Instant::now(),
            shown: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn read(&mut self, n: u64) {
        self.bytes += n;
    }

    fn documents(&mut self, docs: u64) {
        self.docs = docs;
        if self
            .shown
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.draw();
    }

    fn draw(&mut self) {
        if !self.terminal {
            return;
        }
        self.shown = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.docs as f64 / secs;
        let bar = match self.total_bytes {
            Some(total) if total > 0 => {
                let done = (self.bytes as f64 / total as f64).min(1.0);
                let filled = (done * 30.0) as usize;
                format!(
                    "[{}{}] {:>3.0}%  ",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    done * 100.0
                )
            }
            _ => String::new(),
        };
        eprint!(
            "\r{}: {bar}{} documents, {:.0}/s   ",
            self.what, self.docs, rate
        );
    }

    fn finish(&mut self) {
        if self.shown.is_some() {
            self.draw();
            eprintln!();
        }
    }
}
