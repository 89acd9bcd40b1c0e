//! What `weft status --wait-synced` shows while it waits: on a terminal one
//! line redrawn in place (a bar, the documents left, the rate); otherwise a
//! plain line whenever the numbers change, as logs and CI want.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::model::Status;

/// Shows sync progress on stderr.
pub struct SyncProgress {
    terminal: bool,
    started: Instant,
    /// The most documents seen pending at once: the bar's whole.
    peak: usize,
    last: Option<(usize, usize)>,
    drawn: bool,
}

impl Default for SyncProgress {
    fn default() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }
}

impl SyncProgress {
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            started: Instant::now(),
            peak: 0,
            last: None,
            drawn: false,
        }
    }

    /// Shows one status reading.
    pub fn update(&mut self, s: &Status) {
        let (pending, peers) = (s.sync.pending, s.sync.peers);
        self.peak = self.peak.max(pending);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let text = bar_line(pending, self.peak, peers, self.started.elapsed());
            // \r and clear-to-end redraw the line in place.
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            self.drawn = true;
        } else if self.last != Some((pending, peers)) {
            let _ = writeln!(err, "{}", plain_line(pending, peers));
        }
        self.last = Some((pending, peers));
    }

    /// Ends the redrawn line, so what follows starts on its own.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

impl Drop for SyncProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The line for logs: unchanged from before the bar existed.
pub fn plain_line(pending: usize, peers: usize) -> String {
    format!("syncing: {pending} documents pending with {peers} peers")
}

/// `syncing [#####-----] 40 of 80 left, 12.5 docs/s, 2 peers`.
pub fn bar_line(pending: usize, peak: usize, peers: usize, elapsed: Duration) -> String {
    const WIDTH: usize = 20;
    let done = peak.saturating_sub(pending);
    // Nothing pending at all is a full bar.
    let filled = (done * WIDTH).checked_div(peak).unwrap_or(WIDTH);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "syncing [{}{}] {pending} of {peak} left, {rate:.1} docs/s, {peers} peer{}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        if peers == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_what_is_left_and_the_rate() {
        let two_s = Duration::from_secs(2);
        assert_eq!(
            bar_line(40, 80, 2, two_s),
            "syncing [##########----------] 40 of 80 left, 20.0 docs/s, 2 peers"
        );
        assert_eq!(
            bar_line(0, 0, 1, Duration::ZERO),
            "syncing [####################] 0 of 0 left, 0.0 docs/s, 1 peer"
        );
        assert_eq!(
            bar_line(80, 80, 0, two_s),
            "syncing [--------------------] 80 of 80 left, 0.0 docs/s, 0 peers"
        );
        assert_eq!(
            plain_line(3, 1),
            "syncing: 3 documents pending with 1 peers"
        );
    }
}
