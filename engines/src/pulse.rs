//! A run's pulse: what a progress display reads while an engine runs, and the one way to ask a
//! live run to stop early.
//!
//! The drivers publish a handful of figures — the run's clock, events read, outputs delivered,
//! the latest latency p99, micro-batches that fell behind, checkpoints completed — into
//! relaxed atomics, and a display thread reads them whenever it likes. Nothing here is read
//! back by the engines' results: the pulse is an observation only, so a run with or without
//! one produces the same bytes.
//!
//! Invariants: updates happen per batch, per source step or chunk of outputs, per checkpoint —
//! never per record — so a pulse costs a few uncontended atomic operations per unit of work;
//! counts only move forward (`fetch_add`, `fetch_max`), so a reader never sees one go back.
//! A stop request is a flag the drivers look at where they already decide whether to go on
//! (before a trigger, at a source step, at a segment's end): the run then ends as it would at
//! its `until`, with its outputs, latency and checkpoints intact.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::time::Nanos;

/// The figures of one engine run, shared between the driver that publishes them and whoever
/// displays them.
#[derive(Debug, Default)]
pub struct RunPulse {
    clock: AtomicU64,
    events: AtomicU64,
    outputs: AtomicU64,
    p99: AtomicU64,
    falling_behind: AtomicU64,
    checkpoints: AtomicU64,
    stop: AtomicBool,
    stopped_at: AtomicU64,
}

/// A reading of a [`RunPulse`], all figures at about the same moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PulseReading {
    /// How far the run's clock has got (virtual on the simulated clock, wall since the run's
    /// start on the live one).
    pub clock: Nanos,
    /// Events read from the source.
    pub events: u64,
    /// Outputs delivered by the sink.
    pub outputs: u64,
    /// The latency p99 of the outputs delivered most recently (`None` before the first).
    pub p99: Option<Nanos>,
    /// Micro-batches that took longer than the trigger interval.
    pub falling_behind: u64,
    /// Checkpoints completed (per-record).
    pub checkpoints: u64,
}

impl RunPulse {
    /// A pulse at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The run's clock has reached `now`.
    #[inline]
    pub fn clock_at(&self, now: Nanos) {
        self.clock.fetch_max(now, Ordering::Relaxed);
    }

    /// `n` more events were read.
    #[inline]
    pub fn add_events(&self, n: u64) {
        if n > 0 {
            self.events.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The run has read `total` events in all (a driver that keeps its own count).
    #[inline]
    pub fn events_total(&self, total: u64) {
        self.events.fetch_max(total, Ordering::Relaxed);
    }

    /// `n` more outputs were delivered.
    #[inline]
    pub fn add_outputs(&self, n: u64) {
        if n > 0 {
            self.outputs.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The latency p99 of the outputs delivered most recently.
    #[inline]
    pub fn latest_p99(&self, p99: Nanos) {
        // Stored plus one, so that zero means "no output yet".
        self.p99.store(p99.saturating_add(1), Ordering::Relaxed);
    }

    /// The run has had `total` batches falling behind in all.
    #[inline]
    pub fn falling_behind_total(&self, total: u64) {
        self.falling_behind.fetch_max(total, Ordering::Relaxed);
    }

    /// One more checkpoint completed.
    #[inline]
    pub fn checkpoint_completed(&self) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    /// The run has completed `total` checkpoints in all (a driver that keeps its own count).
    #[inline]
    pub fn checkpoints_total(&self, total: u64) {
        self.checkpoints.fetch_max(total, Ordering::Relaxed);
    }

    /// The run has delivered `total` outputs in all (a driver that keeps its own count).
    #[inline]
    pub fn outputs_total(&self, total: u64) {
        self.outputs.fetch_max(total, Ordering::Relaxed);
    }

    /// Asks the run to stop early (Ctrl-C): it ends as at its `until`, keeping what it made.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether the run was asked to stop.
    #[inline]
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// A driver stopped early at `now` on the run's clock (the earliest such instant is kept).
    pub fn stopped(&self, now: Nanos) {
        // Stored plus one, so that zero means "did not stop early".
        self.stopped_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s == 0 || now + 1 < s).then_some(now + 1)
            })
            .ok();
    }

    /// When the run stopped early on its clock, if it did.
    pub fn stopped_at(&self) -> Option<Nanos> {
        self.stopped_at.load(Ordering::Acquire).checked_sub(1)
    }

    /// The figures now.
    pub fn read(&self) -> PulseReading {
        PulseReading {
            clock: self.clock.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            outputs: self.outputs.load(Ordering::Relaxed),
            p99: self.p99.load(Ordering::Relaxed).checked_sub(1),
            falling_behind: self.falling_behind.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_only_move_forward_and_a_p99_of_zero_is_still_a_p99() {
        let p = RunPulse::new();
        assert_eq!(p.read().p99, None);
        p.clock_at(5);
        p.clock_at(3);
        p.events_total(10);
        p.events_total(7);
        p.add_events(2);
        p.latest_p99(0);
        p.falling_behind_total(2);
        p.checkpoint_completed();
        let r = p.read();
        assert_eq!(
            (r.clock, r.events, r.p99, r.falling_behind, r.checkpoints),
            (5, 12, Some(0), 2, 1)
        );
    }

    #[test]
    fn the_earliest_stop_instant_is_kept() {
        let p = RunPulse::new();
        assert_eq!(p.stopped_at(), None);
        assert!(!p.stop_requested());
        p.request_stop();
        assert!(p.stop_requested());
        p.stopped(9);
        p.stopped(4);
        p.stopped(6);
        assert_eq!(p.stopped_at(), Some(4));
    }
}
