//! The run clock: the one zero that both the feeder's schedule and the receiver's stamps are
//! measured from, so a latency (stamp − scheduled arrival) subtracts two readings of one clock.
//!
//! Invariants: the zero is set once (the first `start` wins, later ones return it); a reading
//! before the zero is 0; readings are monotonic (`Instant`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use streamlab_engines::time::Nanos;

/// Nanoseconds since the feeder started its schedule, shared by the feeder and the receiver.
/// Cloning shares the clock.
#[derive(Clone, Debug)]
pub struct RunClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    zero: OnceLock<Instant>,
    warmup: Nanos,
}

impl RunClock {
    /// A clock not yet started, whose first `warmup` nanoseconds are the warm-up period.
    pub fn new(warmup: Nanos) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                zero: OnceLock::new(),
                warmup,
            }),
        }
    }

    /// Starts the clock now, unless it has started already; returns its zero. The feeder calls
    /// this when every partition has connected; a driver without a feeder may call it itself.
    pub fn start(&self) -> Instant {
        *self.inner.zero.get_or_init(Instant::now)
    }

    /// The instant of the clock's zero, once started.
    pub fn zero(&self) -> Option<Instant> {
        self.inner.zero.get().copied()
    }

    /// Whether the schedule has started.
    pub fn is_started(&self) -> bool {
        self.inner.zero.get().is_some()
    }

    /// The warm-up period, nanoseconds from the zero.
    pub fn warmup(&self) -> Nanos {
        self.inner.warmup
    }

    /// Nanoseconds since the zero (0 before the clock has started).
    pub fn now(&self) -> Nanos {
        self.reading_at(Instant::now())
    }

    /// The clock's reading at `instant` (0 before the zero or before the clock has started).
    pub fn reading_at(&self, instant: Instant) -> Nanos {
        match self.zero() {
            Some(zero) => instant
                .saturating_duration_since(zero)
                .as_nanos()
                .min(u128::from(u64::MAX)) as Nanos,
            None => 0,
        }
    }

    /// The reading now and whether it falls in the warm-up, from one look at the zero.
    pub(crate) fn stamp_now(&self) -> (Nanos, bool) {
        match self.zero() {
            Some(_) => {
                let stamp = self.now();
                (stamp, stamp < self.inner.warmup)
            }
            None => (0, true),
        }
    }

    /// Whether an output stamped `stamp` now falls in the warm-up: before the warm-up's end, or
    /// before the clock has started at all.
    pub fn in_warmup(&self, stamp: Nanos) -> bool {
        !self.is_started() || stamp < self.inner.warmup
    }
}
