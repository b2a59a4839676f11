//! What a real engine's run measured, whichever way its events came and its results went: the
//! loopback feeder and receiver, or Kafka topics. [`crate::real_engine`] turns it into an
//! `EngineRun` the same way for both.
//!
//! On Kafka a run may also have been killed and restarted from its checkpoint; the restart
//! becomes a [`FailureEvent`] (so `recovery.rs` reports downtime and catch-up as for the native
//! engines) and `replayed` counts the rows Spark's restarted query read again: those of the
//! batch it re-ran, the one the killed query had logged but not committed.

use std::time::Duration;

use streamlab_engines::run::FailureEvent;
use streamlab_engines::time::Nanos;
use streamlab_real_engines::driver::{JobOutcome, StampedLine};
use streamlab_real_engines::spark::SparkKafkaOutcome;

/// A real engine's run, from either transport.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Every result, stamped.
    pub lines: Vec<StampedLine>,
    /// Events the feeder or the producer sent.
    pub events_sent: u64,
    /// The largest sending lag (sent or acknowledged − scheduled), ns: the last event was read
    /// no earlier than its arrival plus this.
    pub max_send_lag: u64,
    /// The engine's own progress records.
    pub progress: Vec<serde_json::Value>,
    /// The engine's start-up, excluded.
    pub startup: Duration,
    /// What the transport's side says: sending lag, cluster, restart.
    pub notes: Vec<String>,
    /// A kill and restart, if there was one.
    pub failures: Vec<FailureEvent>,
    /// When the run was stopped early (Ctrl-C), on the run clock.
    pub interrupted: Option<Nanos>,
}

impl Measured {
    /// A run between the feeder and the receiver.
    pub(crate) fn of_feeder(outcome: JobOutcome) -> Self {
        let lag = &outcome.feeder.lag;
        let lag_note = match outcome.interrupted {
            Some(_) => "feeder sending lag not measured: the run was stopped early".to_string(),
            None => format!(
                "feeder sending lag: mean {:.3} ms, max {:.3} ms over {} events",
                lag.mean / 1e6,
                lag.max as f64 / 1e6,
                lag.events
            ),
        };
        Measured {
            notes: vec![lag_note],
            interrupted: outcome.interrupted,
            lines: outcome.lines,
            events_sent: outcome.feeder.events_sent,
            max_send_lag: lag.max,
            progress: outcome.progress,
            startup: outcome.startup,
            failures: Vec::new(),
        }
    }

    /// A run on Kafka topics.
    pub(crate) fn of_kafka(outcome: SparkKafkaOutcome) -> Self {
        let lag = &outcome.producer.lag;
        let mut notes = vec![
            outcome.cluster.clone(),
            match outcome.interrupted {
                Some(_) => "producer sending lag not measured: the run was stopped early".to_string(),
                None => format!(
                    "producer sending lag (acknowledged − scheduled): mean {:.3} ms, max {:.3} ms over {} events",
                    lag.mean / 1e6,
                    lag.max as f64 / 1e6,
                    lag.events
                ),
            },
        ];
        let mut failures = Vec::new();
        if let Some(r) = outcome.restart {
            let replayed = r.rerun_batch.map_or(0, |b| replayed_rows(&outcome.progress, b));
            notes.push(format!(
                "killed (SIGKILL to its process group) at {:.1} s; restarted from its checkpoint, its query running \
                 again at {:.1} s (downtime {:.1} s), first result after the restart at {}; {replayed} input rows \
                 read again (the batches it re-ran)",
                r.killed_at as f64 / 1e9,
                r.restarted_at as f64 / 1e9,
                (r.restarted_at - r.killed_at) as f64 / 1e9,
                r.first_result_at
                    .map_or("none".to_string(), |t| format!("{:.1} s", t as f64 / 1e9)),
            ));
            failures.push(FailureEvent {
                at: r.killed_at,
                restarted_at: r.restarted_at,
                replayed,
            });
        }
        Measured {
            lines: outcome.lines,
            events_sent: outcome.producer.events_sent,
            max_send_lag: lag.max,
            progress: outcome.progress,
            startup: outcome.startup,
            notes,
            failures,
            interrupted: outcome.interrupted,
        }
    }
}

/// Rows a restarted query read again: the input rows of `batch`, the one the killed query had
/// logged but not committed, as the restarted query (its progress records carry a new `runId`)
/// ran it.
fn replayed_rows(progress: &[serde_json::Value], batch: u64) -> u64 {
    let Some(first_run) = progress.first().and_then(|p| p["runId"].as_str()) else {
        return 0;
    };
    progress
        .iter()
        .filter(|p| p["runId"].as_str() != Some(first_run) && p["batchId"].as_u64() == Some(batch))
        .filter_map(|p| p["numInputRows"].as_u64())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replayed_rows_are_the_rerun_batchs_as_the_restarted_run_read_it() {
        let p = |run: &str, batch: u64, rows: u64| serde_json::json!({"runId": run, "batchId": batch, "numInputRows": rows});
        let progress = [p("a", 0, 5), p("b", 1, 7), p("b", 2, 9)];
        assert_eq!(replayed_rows(&progress, 1), 7);
        assert_eq!(replayed_rows(&progress[..1], 1), 0);
    }
}
