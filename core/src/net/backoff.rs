//! Redial delays for peers we keep connected to: 1 s doubling to 60 s, reset
//! once a session comes up, so a flapping peer is not hammered.

use std::time::Duration;

/// First redial delay.
pub const MIN_DELAY: Duration = Duration::from_secs(1);
/// Longest redial delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// Exponential backoff state of one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: MIN_DELAY }
    }
}

impl Backoff {
    /// The delay to wait now; the following one doubles (up to [`MAX_DELAY`]).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }

    /// Back to [`MIN_DELAY`] after a success.
    pub fn reset(&mut self) {
        self.next = MIN_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let secs: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay(), MIN_DELAY);
    }
}
