//! When a run on Kafka is over. An engine reading a topic never sees the end of its input, so
//! streamlab ends its run once the producer has finished and no result has come for a quiet
//! period (the longest the engine may hold a result back, plus a margin) — and only then, so
//! that no result the engine was still going to deliver is cut off.
//!
//! Invariants:
//! * the quiet period is counted from the **later** of the last new result, the producer's end
//!   and the job's (re)start — never from an instant before the producer finished: a job whose
//!   first results come after the producer's last event (Spark's first micro-batches on a cold
//!   JVM take seconds; append mode emits a window only once the watermark passes it) would
//!   otherwise be ended the moment the producer finishes, with nothing delivered (what a
//!   failure-free Spark baseline once showed: 0 outputs in append mode, every window "lost" in
//!   update mode);
//! * a job started or restarted that has delivered nothing yet waits `first_result_grace`
//!   longer: it first plans (and, restarted, restores and re-runs) on a new JVM.

use std::time::{Duration, Instant};

/// The rule that ends a run on Kafka, fed the consumer's count of results as the run goes.
#[derive(Clone, Debug)]
pub(crate) struct QuietEnd {
    /// No result for this long (after the producer's end) ends the run.
    quiet: Duration,
    /// Added while the job (re)started last has delivered nothing.
    first_result_grace: Duration,
    /// The later of the last new result, the producer's end and the last (re)start.
    last_change: Instant,
    /// Results received so far.
    last_count: u64,
    /// Results received when the job was (re)started last.
    count_at_start: u64,
    /// Whether the producer had finished at the last observation.
    producer_done: bool,
}

impl QuietEnd {
    /// The rule for a job started at `now`, `count` results received so far.
    pub(crate) fn new(quiet: Duration, first_result_grace: Duration, count: u64, now: Instant) -> Self {
        QuietEnd {
            quiet,
            first_result_grace,
            last_change: now,
            last_count: count,
            count_at_start: count,
            producer_done: false,
        }
    }

    /// The job was started again (after a kill) at `now`, `count` results received by then;
    /// from then on no result for `quiet` ends the run.
    pub(crate) fn restarted(&mut self, count: u64, quiet: Duration, now: Instant) {
        self.quiet = quiet;
        self.count_at_start = count;
        self.last_count = count;
        self.last_change = now;
    }

    /// Whether the job (re)started last has delivered a result.
    pub(crate) fn resumed(&self) -> bool {
        self.last_count > self.count_at_start
    }

    /// Notes the results received so far and whether the producer has finished; returns
    /// whether the run is over (the caller also waits for open transactions).
    pub(crate) fn observe(&mut self, count: u64, producer_finished: bool, now: Instant) -> bool {
        if count != self.last_count {
            (self.last_count, self.last_change) = (count, now);
        }
        if producer_finished && !self.producer_done {
            self.producer_done = true;
            self.last_change = self.last_change.max(now);
        }
        self.producer_done && now.saturating_duration_since(self.last_change) >= self.period()
    }

    /// The quiet period that applies now.
    pub(crate) fn period(&self) -> Duration {
        if self.resumed() {
            self.quiet
        } else {
            self.quiet + self.first_result_grace
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_quiet_period_starts_at_the_producers_end_when_no_result_came_before() {
        let start = Instant::now();
        let mut q = QuietEnd::new(4 * S, 30 * S, 0, start);
        // The producer finishes 6 s in, before any result: the run is not over then.
        assert!(!q.observe(0, true, start + 6 * S));
        // Without a result it waits the grace too; the first result comes at 8 s.
        assert!(!q.observe(0, true, start + 20 * S));
        assert!(!q.observe(5, true, start + 21 * S));
        assert!(
            !q.observe(5, true, start + 24 * S),
            "4 s after the last result is the end, not before"
        );
        assert!(q.observe(5, true, start + 25 * S));
    }

    #[test]
    fn a_job_that_never_delivers_ends_after_the_quiet_period_and_the_grace() {
        let start = Instant::now();
        let mut q = QuietEnd::new(4 * S, 30 * S, 0, start);
        assert!(!q.observe(0, false, start + 10 * S), "the producer has not finished");
        assert!(!q.observe(0, true, start + 10 * S));
        assert!(!q.observe(0, true, start + 43 * S));
        assert!(q.observe(0, true, start + 44 * S));
    }

    #[test]
    fn a_restart_waits_for_its_first_result_with_the_grace() {
        let start = Instant::now();
        let mut q = QuietEnd::new(4 * S, 30 * S, 0, start);
        assert!(!q.observe(10, false, start + 3 * S));
        q.restarted(10, 5 * S, start + 3 * S);
        assert!(!q.resumed());
        assert!(
            !q.observe(10, true, start + 30 * S),
            "no result since the restart: quiet + grace"
        );
        assert!(!q.observe(12, true, start + 31 * S));
        assert!(q.resumed());
        assert!(!q.observe(12, true, start + 35 * S));
        assert!(q.observe(12, true, start + 36 * S));
    }
}
