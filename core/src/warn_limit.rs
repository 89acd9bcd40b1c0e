//! Rate limit for warnings a peer can cause: one line per peer and cause per
//! [`WARN_EVERY_MS`], carrying how many were held back since the last one,
//! so a misbehaving or misconfigured peer cannot fill the log. Pure: the
//! caller passes the time, so the sans-IO sync engine can use it too.

use std::collections::HashMap;

use crate::identity::NodeId;

/// One warning line per peer and cause in this long.
pub const WARN_EVERY_MS: u64 = 60_000;
/// Peers and causes remembered; past it, entries whose window ended are
/// dropped (or all, if none has), so a stream of new peer ids costs
/// bounded memory and at worst a few more lines.
pub const MAX_WARN_KEYS: usize = 1024;

/// Per (peer, cause): when the current window began and how many warnings
/// were held back in it.
#[derive(Debug, Default)]
pub struct WarnLimit {
    seen: HashMap<(NodeId, &'static str), (u64, u64)>,
}

impl WarnLimit {
    /// Whether to log this warning now; if so, how many of the same were
    /// held back since the last line (0 for the first).
    pub fn allow(&mut self, peer: NodeId, cause: &'static str, now_ms: u64) -> Option<u64> {
        if let Some((start, held)) = self.seen.get_mut(&(peer, cause)) {
            if now_ms.saturating_sub(*start) < WARN_EVERY_MS {
                *held += 1;
                return None;
            }
            let repeated = std::mem::take(held);
            *start = now_ms;
            return Some(repeated);
        }
        if self.seen.len() >= MAX_WARN_KEYS {
            self.seen
                .retain(|_, (start, _)| now_ms.saturating_sub(*start) < WARN_EVERY_MS);
            if self.seen.len() >= MAX_WARN_KEYS {
                self.seen.clear();
            }
        }
        self.seen.insert((peer, cause), (now_ms, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_peer_and_cause_per_window_with_a_count() {
        let (a, b) = (NodeId::from_bytes([1; 32]), NodeId::from_bytes([2; 32]));
        let mut limit = WarnLimit::default();
        assert_eq!(limit.allow(a, "refused", 0), Some(0));
        for t in 1..100 {
            assert_eq!(limit.allow(a, "refused", t), None);
        }
        // Another cause and another peer have windows of their own.
        assert_eq!(limit.allow(a, "closed", 5), Some(0));
        assert_eq!(limit.allow(b, "refused", 5), Some(0));
        assert_eq!(limit.allow(a, "refused", WARN_EVERY_MS), Some(99));
        assert_eq!(limit.allow(a, "refused", WARN_EVERY_MS + 1), None);
    }

    #[test]
    fn new_peers_cannot_grow_it_past_its_bound() {
        let mut limit = WarnLimit::default();
        for i in 0..(3 * MAX_WARN_KEYS as u32) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            assert_eq!(limit.allow(NodeId::from_bytes(id), "refused", 0), Some(0));
            assert!(limit.seen.len() <= MAX_WARN_KEYS);
        }
    }
}
