//! What a real engine's run measured, whichever way its events came and its results went: the
//! loopback feeder and receiver, or Kafka topics. [`crate::real_engine`] turns it into an
//! `EngineRun` the same way for both.
//!
//! On Kafka the broker's share of the latency is said beside it ([`broker_share`], as for Kafka
//! Streams), and a run may also have been killed and restarted from its checkpoint; the restart
//! becomes a [`FailureEvent`] (so `recovery.rs` reports downtime and catch-up as for the native
//! engines) and `replayed` counts what the restarted job read again: for Spark the input records
//! of the batch it re-ran (the one the killed query had logged but not committed: its offset
//! range in the offset log), for Flink the input records past the offsets committed with the
//! checkpoint it was restored from.

use std::time::Duration;

use streamlab_engines::run::FailureEvent;
use streamlab_engines::time::Nanos;
use streamlab_real_engines::driver::{JobOutcome, StampedLine};
use streamlab_real_engines::flink::FlinkKafkaOutcome;
use streamlab_real_engines::kafka::producer::ProducerReport;
use streamlab_real_engines::kafka::KafkaJobOutcome;
use streamlab_real_engines::spark::kafka_run::RerunBatch;
use streamlab_real_engines::spark::SparkKafkaOutcome;

/// A real engine's run, from either transport.
#[derive(Debug)]
pub struct Measured {
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

    /// Spark's run on Kafka topics; after a kill, what it read again is the batch it re-ran.
    pub(crate) fn of_spark_kafka(outcome: SparkKafkaOutcome) -> Self {
        let restart = outcome.run.restart.is_some().then(|| match outcome.rerun_batch {
            Some(RerunBatch { id, records: Some(n) }) => Restored {
                from: "its checkpoint".into(),
                replayed: n,
                what: format!("input records read again (batch {id}, in its offset log but not its commit log, re-run with the same offsets)"),
            },
            Some(RerunBatch { id, records: None }) => Restored {
                from: "its checkpoint".into(),
                replayed: 0,
                what: format!("input records read again: not measured (batch {id} re-run, its offset log not readable)"),
            },
            None => Restored {
                from: "its checkpoint".into(),
                replayed: 0,
                what: "input records read again (killed between batches: its newest logged batch was committed)".into(),
            },
        });
        Self::of_kafka(outcome.run, outcome.progress, restart)
    }

    /// Flink's run on Kafka topics; after a kill, what it read again is the input past the
    /// offsets committed with the checkpoint it was restored from.
    pub(crate) fn of_flink_kafka(outcome: FlinkKafkaOutcome) -> Self {
        let restart = outcome.restored.map(|r| Restored {
            from: match r.id {
                Some(n) => format!("its retained checkpoint chk-{n}"),
                None => "scratch (no checkpoint had completed)".into(),
            },
            replayed: r.replayed,
            what: "input records read again (past the offsets committed with that checkpoint, up to the input's end at the kill)".into(),
        });
        Self::of_kafka(outcome.run, outcome.progress, restart)
    }

    /// A run on Kafka topics, with the broker's share of its latency and its restart.
    fn of_kafka(run: KafkaJobOutcome, progress: Vec<serde_json::Value>, restored: Option<Restored>) -> Self {
        let lag = &run.producer.lag;
        let mut notes = vec![
            run.cluster.clone(),
            match run.interrupted {
                Some(_) => "producer sending lag not measured: the run was stopped early".to_string(),
                None => format!(
                    "producer sending lag (acknowledged − scheduled): mean {:.3} ms, max {:.3} ms over {} events",
                    lag.mean / 1e6,
                    lag.max as f64 / 1e6,
                    lag.events
                ),
            },
            broker_share(&run.output_hop_ns, &run.producer),
        ];
        let mut failures = Vec::new();
        if let (Some(r), Some(how)) = (&run.restart, restored) {
            notes.push(format!(
                "killed (SIGKILL to its process group) at {:.1} s; restarted from {}, running again at {:.1} s \
                 (downtime {:.1} s), first result after the restart at {}; {} {}",
                r.killed_at as f64 / 1e9,
                how.from,
                r.restarted_at as f64 / 1e9,
                (r.restarted_at - r.killed_at) as f64 / 1e9,
                r.first_result_at
                    .map_or("none".to_string(), |t| format!("{:.1} s", t as f64 / 1e9)),
                how.replayed,
                how.what,
            ));
            failures.push(FailureEvent {
                at: r.killed_at,
                restarted_at: r.restarted_at,
                replayed: how.replayed,
            });
        }
        if run.aborted > 0 {
            notes.push(format!(
                "{} output records of aborted transactions dropped by streamlab's read_committed consumer",
                run.aborted
            ));
        }
        Measured {
            lines: run.lines,
            events_sent: run.producer.events_sent,
            max_send_lag: lag.max,
            progress,
            startup: run.startup,
            notes,
            failures,
            interrupted: run.interrupted,
        }
    }
}

/// How a killed job came back, in words and figures.
struct Restored {
    /// What it was restarted from.
    from: String,
    /// Input records or rows it read again.
    replayed: u64,
    /// What `replayed` counts.
    what: String,
}

/// The broker's share of a result's latency, in words: the output hop measured per result
/// (readable in the log → fetched by streamlab, from the output topic's `LogAppendTime`, or its
/// transaction's COMMIT marker's; wall clock on one host, millisecond resolution; it is also the
/// run's `broker` latency component) and the input hop measured per event by the producer
/// (scheduled → acknowledged: the produce request and the leader's append). What lies between —
/// the engine's fetch of the input, its processing, its caching and commit — is the rest.
pub(crate) fn broker_share(output_hop_ns: &[u64], producer: &ProducerReport) -> String {
    let mut hops = output_hop_ns.to_vec();
    hops.sort_unstable();
    let at = |q: f64| {
        hops.get(((hops.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |&n| n as f64 / 1e6)
    };
    let mean = hops.iter().sum::<u64>() as f64 / hops.len().max(1) as f64 / 1e6;
    format!(
        "broker's share: output hop (readable in the log → fetched by streamlab; the `broker` component) p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms over {} results (measured: LogAppendTime, a transaction's at its COMMIT marker, 1 ms resolution); input hop (scheduled → produce acknowledged) mean {:.3} ms (measured by the producer); the rest is the engine's",
        at(0.5),
        at(0.99),
        mean,
        hops.len(),
        producer.lag.mean / 1e6
    )
}
