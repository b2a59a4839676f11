//! What a failure cost, measured against a failure-free run of the same scenario.
//!
//! * **downtime** — from the crash to the first output after the restart;
//! * **catch-up** — from the crash until latency is back within [`CATCH_UP_TOLERANCE`] of the
//!   pre-failure p99 for good (every later output within it); a crash before the run's first
//!   output (a real engine's first results take seconds on a cold JVM) is measured against the
//!   failure-free run's p99 instead. `None` when latency never came back before the run ended
//!   (a restart that is still working off its backlog when the input stops);
//! * **replayed** — events read a second time because they came after the last checkpoint;
//! * **duplicates** and **losses** — outputs delivered more often, or less often, than in the
//!   failure-free run (multiset difference). Exactly-once shows zero of both.

use std::collections::BTreeMap;

use streamlab_engines::operators::Output;
use streamlab_engines::run::{Delivered, EngineRun, FailureEvent};
use streamlab_engines::time::Nanos;
use streamlab_reports::summary::Recovery;

/// Latency counts as recovered within this factor of the pre-failure p99.
pub const CATCH_UP_TOLERANCE: f64 = 1.2;

/// An output's identity for counting duplicates and losses: a stateless row by its sequence
/// number; a window result by key, window, count, value and whether it is an update; a join's
/// or top-N's result by its records' sequence numbers, window start and shape.
pub type OutputKey = (i64, i64, i64, u64, u64, bool);

/// The identity of a delivered output.
pub fn output_key(d: &Delivered) -> OutputKey {
    match d.output {
        Output::Row(r) => (r.event.seq as i64, 0, 0, 0, 0, false),
        Output::Window(w) => (w.key, w.start, w.end, w.count, w.value.to_bits(), w.is_update),
        Output::Record(r) => {
            let (shape, left, right, start) = r.identity();
            (left as i64, right as i64, start, shape as u64, u64::MAX, false)
        }
    }
}

fn latency(d: &Delivered) -> Nanos {
    d.at.saturating_sub(d.output.origin().arrival)
}

/// Everything a run delivered, kept compactly for the comparison.
#[derive(Clone, Debug, Default)]
pub struct OutputLedger {
    /// How often each output was delivered.
    pub counts: BTreeMap<OutputKey, u32>,
    /// (delivery time, latency) of every output, in delivery order.
    pub timeline: Vec<(Nanos, Nanos)>,
    /// The last value delivered for each window: what an upsert sink holds at the end.
    pub latest: BTreeMap<(i64, i64, i64), (u64, u64)>,
}

impl OutputLedger {
    /// Notes delivered outputs.
    pub fn add(&mut self, delivered: &[Delivered]) {
        for d in delivered {
            *self.counts.entry(output_key(d)).or_default() += 1;
            self.timeline.push((d.at, latency(d)));
            if let Output::Window(w) = d.output {
                self.latest
                    .insert((w.key, w.start, w.end), (w.count, w.value.to_bits()));
            }
        }
    }

    /// (duplicates, losses) of an upsert sink (update and complete modes) against `baseline`:
    /// what counts is the final value of every window; a window missing or with another final
    /// value is a loss, and an upsert cannot duplicate.
    pub fn compare_upserts(&self, baseline: &OutputLedger) -> (u64, u64) {
        let differ = baseline
            .latest
            .iter()
            .filter(|(k, v)| self.latest.get(k) != Some(v))
            .count()
            + self.latest.keys().filter(|k| !baseline.latest.contains_key(k)).count();
        (0, differ as u64)
    }

    /// (duplicates, losses) of this run against a failure-free `baseline`.
    pub fn compare(&self, baseline: &OutputLedger) -> (u64, u64) {
        let (mut duplicates, mut losses) = (0u64, 0u64);
        for (k, &n) in &self.counts {
            let b = baseline.counts.get(k).copied().unwrap_or(0);
            duplicates += n.saturating_sub(b) as u64;
        }
        for (k, &b) in &baseline.counts {
            let n = self.counts.get(k).copied().unwrap_or(0);
            losses += b.saturating_sub(n) as u64;
        }
        (duplicates, losses)
    }
}

/// What one failure cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecoveryCost {
    /// Crash → first output after the restart, ms (`None`: no output after it).
    pub downtime_ms: Option<f64>,
    /// Crash → latency back within tolerance for good, ms (`None`: never).
    pub catch_up_ms: Option<f64>,
}

/// The p99 of `latencies` (sorted here), `None` when there are none.
fn p99_of(mut latencies: Vec<Nanos>) -> Option<Nanos> {
    latencies.sort_unstable();
    latencies
        .get(((latencies.len() as f64 * 0.99) as usize).min(latencies.len().saturating_sub(1)))
        .copied()
}

/// Downtime and catch-up of `failure` from the run's output `timeline`; catch-up is measured
/// against `fallback_p99` (the failure-free run's) when no output came before the failure.
pub fn recovery_cost(timeline: &[(Nanos, Nanos)], failure: &FailureEvent, fallback_p99: Option<Nanos>) -> RecoveryCost {
    let before: Vec<Nanos> = timeline
        .iter()
        .filter(|(at, _)| *at < failure.at)
        .map(|(_, l)| *l)
        .collect();
    let p99 = p99_of(before).or(fallback_p99);
    let after: Vec<&(Nanos, Nanos)> = timeline.iter().filter(|(at, _)| *at >= failure.restarted_at).collect();
    let ms = |t: Nanos| (t.saturating_sub(failure.at)) as f64 / 1e6;
    let downtime_ms = after.first().map(|(at, _)| ms(*at));
    let catch_up_ms = p99.and_then(|p99| {
        let bound = (p99 as f64 * CATCH_UP_TOLERANCE) as Nanos + 1_000_000;
        // The last output above the bound; latency is back for good from the next one on.
        match after.iter().rposition(|(_, l)| *l > bound) {
            None => after.first().map(|(at, _)| ms(*at)),
            Some(i) => after.get(i + 1).map(|(at, _)| ms(*at)),
        }
    });
    RecoveryCost {
        downtime_ms,
        catch_up_ms,
    }
}

/// The `recovery` of a run's summary: the worst downtime and catch-up over the failures that
/// struck it (`events`, from [`crate::failures::struck`]), and its duplicates and losses
/// against the failure-free `baseline` — the final value of every window for an `upsert`
/// sink.
pub fn recovery(
    ledger: &OutputLedger,
    baseline: &OutputLedger,
    run: &EngineRun,
    events: &[(String, FailureEvent)],
    upsert: bool,
) -> Recovery {
    let (duplicates, losses) = if upsert {
        ledger.compare_upserts(baseline)
    } else {
        ledger.compare(baseline)
    };
    let fallback_p99 = p99_of(baseline.timeline.iter().map(|(_, l)| *l).collect());
    let costs: Vec<_> = events
        .iter()
        .map(|(_, f)| recovery_cost(&ledger.timeline, f, fallback_p99))
        .collect();
    let worst = |f: fn(&RecoveryCost) -> Option<f64>| {
        if costs.iter().any(|c| f(c).is_none()) {
            None
        } else {
            costs.iter().filter_map(f).reduce(f64::max)
        }
    };
    Recovery {
        downtime_ms: worst(|c| c.downtime_ms),
        catch_up_ms: worst(|c| c.catch_up_ms),
        replayed: run.counts.replayed,
        duplicates,
        losses,
        task_retries: run.counts.task_retries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn a_crash_before_the_first_output_catches_up_against_the_failure_free_p99() {
        let crash = FailureEvent {
            at: 1_000 * MS,
            restarted_at: 3_000 * MS,
            replayed: 0,
        };
        // After the restart: a backlog at 2 s of latency, then live results at 100 ms.
        let timeline = [(4_000 * MS, 2_000 * MS), (5_000 * MS, 100 * MS), (6_000 * MS, 100 * MS)];
        let without = recovery_cost(&timeline, &crash, None);
        assert_eq!(without.downtime_ms, Some(3_000.0));
        assert_eq!(without.catch_up_ms, None, "no pre-failure output and no fallback");
        let with = recovery_cost(&timeline, &crash, Some(120 * MS));
        assert_eq!(
            with.catch_up_ms,
            Some(4_000.0),
            "back within 1.2 × 120 ms + 1 ms from the 5 s output"
        );
    }
}
