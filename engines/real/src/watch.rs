//! A real engine's run as a progress display sees it, and the stop request (Ctrl-C) it obeys.
//!
//! The drivers (`driver.rs`, `spark/kafka_run.rs`, `kafka_streams/run.rs`) poll their job every
//! 50 ms anyway; there they publish what streamlab itself knows of the run into the caller's
//! [`RunPulse`]: the run clock, the events the feeder or the producer has sent (the engine reads
//! them off its socket or topic; what it has processed only it knows) and the results received.
//! Nothing here is read back into the results.
//!
//! A run is asked to stop when the caller's pulse says so, or when the interrupt handler has
//! begun ending the engine groups ([`crate::groups::interrupted`]): the handler ends the groups
//! before it tells anyone else, so a job whose leader dies then was stopped, not failed. A
//! stopped run keeps what was received up to then (the caller marks it interrupted).

use std::sync::Arc;

use streamlab_engines::pulse::RunPulse;
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::RunClock;

/// The caller's pulse for one real-engine run, if it watches the run.
#[derive(Clone, Debug, Default)]
pub struct RunWatch(Option<Arc<RunPulse>>);

impl RunWatch {
    /// A run watched through `pulse` (`None`: nobody watches; only Ctrl-C stops it).
    pub fn new(pulse: Option<Arc<RunPulse>>) -> Self {
        Self(pulse)
    }

    /// The run clock reads `clock`, the feeder or producer has sent `sent` events and `received`
    /// results have come back.
    pub fn publish(&self, clock: &RunClock, sent: u64, received: u64) {
        if let Some(pulse) = &self.0 {
            pulse.clock_at(clock.now());
            pulse.events_total(sent);
            pulse.outputs_total(received);
        }
    }

    /// Whether the run is asked to stop (its pulse, or Ctrl-C).
    pub fn stop_requested(&self) -> bool {
        crate::groups::interrupted() || self.0.as_ref().is_some_and(|p| p.stop_requested())
    }

    /// The run stopped early at `at` on its clock.
    pub fn stopped(&self, at: Nanos) {
        if let Some(pulse) = &self.0 {
            pulse.stopped(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_run_publishes_its_counts_and_hears_a_stop() {
        let pulse = Arc::new(RunPulse::new());
        let watch = RunWatch::new(Some(Arc::clone(&pulse)));
        let clock = RunClock::new(0);
        watch.publish(&clock, 120, 7);
        let r = pulse.read();
        assert_eq!((r.clock, r.events, r.outputs), (0, 120, 7));
        assert!(!watch.stop_requested());
        pulse.request_stop();
        assert!(watch.stop_requested());
        watch.stopped(5);
        assert_eq!(pulse.stopped_at(), Some(5));
        // Unwatched: nothing to publish to, and no stop but Ctrl-C's.
        RunWatch::default().publish(&clock, 1, 1);
        assert!(!RunWatch::default().stop_requested());
    }
}
