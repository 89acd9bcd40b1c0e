//! Per-peer budgets: token buckets on the engine's clock for the frames
//! that cost this node work a peer chooses. A peer that spends a bucket dry
//! is disconnected rather than slowed: dropping frames of an honest peer
//! would lose messages and cost retries, while the values below are far
//! above what honest traffic spends (the simulator's honest runs, a 10,000
//! document initial sync included, never come close), so a peer that runs
//! one dry is not honest, and a closed connection stops all its work at once
//! and makes it pay a new handshake.
//!
//! There is no cap on session frames overall: an honest sync sends `Doc` and
//! `Sync` frames as fast as this node acknowledges them, so any rate cap
//! would either throttle honest sync or never trigger. What a frame may cost
//! is bounded instead: frames that will be ignored need nothing read and
//! have their own bucket, and the expensive ones (a `Reconcile` reads and
//! hashes a whole space; a claim evaluates a membership log) have theirs.

/// `Reconcile` frames a peer may send at once: every step of an exchange
/// costs a digest read of the space, and an honest peer sends about three
/// per exchange, one exchange per shared space on connect.
pub const RECONCILE_BURST: u64 = 256;
/// `Reconcile` frames a peer may send per second after the burst: honest
/// peers begin an exchange per session at most every `RETRY_AFTER_MS`.
pub const RECONCILE_PER_SEC: u64 = 8;
/// Membership claims a peer may have evaluated at once: one per space it
/// shares, like `MAX_CLAIMS` in its first offer.
pub const CLAIM_BURST: u64 = 256;
/// Claim evaluations per second after the burst: an honest peer's proof
/// changes only when a membership entry about it is written.
pub const CLAIM_PER_SEC: u64 = 2;
/// Frames about spaces without a session (or acknowledgements of nothing) a
/// peer may send at once: they cost nothing to ignore, but honest peers send
/// them only around admission and revocation, a window's worth at most.
pub const IGNORED_BURST: u64 = 1024;
/// Such frames per second after the burst.
pub const IGNORED_PER_SEC: u64 = 64;

/// Which budget a frame spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Reconcile,
    Claim,
    Ignored,
}

impl Kind {
    fn limits(self) -> (u64, u64) {
        match self {
            Kind::Reconcile => (RECONCILE_BURST, RECONCILE_PER_SEC),
            Kind::Claim => (CLAIM_BURST, CLAIM_PER_SEC),
            Kind::Ignored => (IGNORED_BURST, IGNORED_PER_SEC),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Reconcile => "reconciliation",
            Kind::Claim => "membership claim",
            Kind::Ignored => "ignored frame",
        }
    }
}

/// One token bucket, in thousandths of a token so that slow refill rates
/// lose nothing to rounding.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    at: u64,
}

impl Bucket {
    fn full(kind: Kind, now: u64) -> Self {
        Self {
            milli: kind.limits().0 * 1000,
            at: now,
        }
    }

    /// Tokens (in thousandths) available at `now`.
    fn level(&self, kind: Kind, now: u64) -> u64 {
        let (burst, per_sec) = kind.limits();
        let refill = now.saturating_sub(self.at).saturating_mul(per_sec);
        self.milli.saturating_add(refill).min(burst * 1000)
    }
}

/// A peer's buckets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budgets {
    reconcile: Bucket,
    claim: Bucket,
    ignored: Bucket,
}

impl Default for Budgets {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Budgets {
    /// Full buckets at `now`.
    pub(super) fn new(now: u64) -> Self {
        Self {
            reconcile: Bucket::full(Kind::Reconcile, now),
            claim: Bucket::full(Kind::Claim, now),
            ignored: Bucket::full(Kind::Ignored, now),
        }
    }

    fn bucket(&self, kind: Kind) -> &Bucket {
        match kind {
            Kind::Reconcile => &self.reconcile,
            Kind::Claim => &self.claim,
            Kind::Ignored => &self.ignored,
        }
    }

    /// Whether `cost` tokens are available at `now` (what `needs` asks
    /// before requesting work for a frame).
    pub(super) fn allows(&self, kind: Kind, cost: u64, now: u64) -> bool {
        self.bucket(kind).level(kind, now) >= cost.saturating_mul(1000)
    }

    /// Takes `cost` tokens at `now`; `false` (and nothing taken) if the
    /// bucket holds fewer.
    pub(super) fn take(&mut self, kind: Kind, cost: u64, now: u64) -> bool {
        let bucket = match kind {
            Kind::Reconcile => &mut self.reconcile,
            Kind::Claim => &mut self.claim,
            Kind::Ignored => &mut self.ignored,
        };
        let level = bucket.level(kind, now);
        let cost = cost.saturating_mul(1000);
        if level < cost {
            return false;
        }
        *bucket = Bucket {
            milli: level - cost,
            at: now.max(bucket.at),
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_runs_dry_then_refills_at_its_rate() {
        let mut b = Budgets::new(1_000);
        for _ in 0..RECONCILE_BURST {
            assert!(b.take(Kind::Reconcile, 1, 1_000));
        }
        assert!(!b.allows(Kind::Reconcile, 1, 1_000));
        assert!(!b.take(Kind::Reconcile, 1, 1_000));
        // Other kinds are separate.
        assert!(b.take(Kind::Claim, 1, 1_000));
        // One second refills RECONCILE_PER_SEC tokens, no more.
        for _ in 0..RECONCILE_PER_SEC {
            assert!(b.take(Kind::Reconcile, 1, 2_000));
        }
        assert!(!b.take(Kind::Reconcile, 1, 2_000));
        // A long pause refills to the burst, not beyond.
        assert!(b.allows(Kind::Reconcile, RECONCILE_BURST, 1_000_000_000));
        assert!(!b.allows(Kind::Reconcile, RECONCILE_BURST + 1, 1_000_000_000));
        // A clock that goes back refills nothing and takes nothing extra.
        assert!(!b.take(Kind::Reconcile, 1, 0));
    }
}
