//! The keys of a `model = "kafka-streams"` engine table: the Kafka Streams settings the
//! comparison is about, in the scenario's units, and what they become in `StreamsConfig`.
//!
//! Kafka Streams has no trigger and no watermark: a record goes through the topology as soon as
//! it is polled, a windowed aggregate sits in the record cache (`statestore.cache.max.bytes`)
//! until it is evicted or the task commits (`commit.interval.ms`), and a window is final once
//! stream time — the largest record timestamp the task has seen — has passed its end plus the
//! grace period. `suppress(untilWindowCloses)` turns the stream of updates into one final result
//! per window, as Flink's event-time trigger and Spark's append mode deliver. Defaults are Kafka
//! Streams' own (commit interval 30 s under at-least-once, 100 ms under exactly-once v2).

use serde::{Deserialize, Serialize};
use streamlab_engines::time::Span;

/// `processing.guarantee`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// `at_least_once` (Kafka Streams' default).
    #[default]
    AtLeastOnce,
    /// `exactly_once_v2`: every commit is a Kafka transaction spanning the output records, the
    /// changelogs and the input offsets.
    ExactlyOnceV2,
}

impl ProcessingGuarantee {
    /// The `processing.guarantee` value.
    pub fn value(self) -> &'static str {
        match self {
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
            ProcessingGuarantee::ExactlyOnceV2 => "exactly_once_v2",
        }
    }

    /// Kafka Streams' default `commit.interval.ms` under this guarantee.
    pub fn default_commit_interval(self) -> Span {
        match self {
            ProcessingGuarantee::AtLeastOnce => Span::from_ms(30_000),
            ProcessingGuarantee::ExactlyOnceV2 => Span::from_ms(100),
        }
    }
}

/// A Kafka Streams engine's configuration (`model = "kafka-streams"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaStreamsConfig {
    /// `processing.guarantee`.
    pub processing_guarantee: ProcessingGuarantee,
    /// `commit.interval.ms`; unset: Kafka Streams' default for the guarantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_interval: Option<Span>,
    /// `statestore.cache.max.bytes`: the record cache over all threads (0: every update is
    /// forwarded at once). Kafka Streams' default is 10 MiB.
    pub cache_max_bytes: u64,
    /// `num.stream.threads`.
    pub threads: usize,
    /// The windows' grace period (`TimeWindows.ofSizeAndGrace`): how long after its end a
    /// window still takes late records; a window is final (and `suppress` emits it) once stream
    /// time passes end + grace.
    pub grace: Span,
    /// `suppress(untilWindowCloses)`: one final result per window (default); off, every cache
    /// flush forwards the window's latest value as an update.
    pub suppress: bool,
}

impl Default for KafkaStreamsConfig {
    fn default() -> Self {
        KafkaStreamsConfig {
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval: None,
            cache_max_bytes: 10 * 1024 * 1024,
            threads: 1,
            grace: Span::from_ms(0),
            suppress: true,
        }
    }
}

/// A key of a Kafka Streams engine table that cannot be run as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct KafkaStreamsConfigError {
    /// The key, relative to the engine table.
    pub key: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl KafkaStreamsConfig {
    /// The commit interval in force (the key, or the guarantee's default).
    pub fn commit_interval(&self) -> Span {
        self.commit_interval
            .unwrap_or_else(|| self.processing_guarantee.default_commit_interval())
    }

    /// Checks value ranges.
    pub fn validate(&self) -> Result<(), KafkaStreamsConfigError> {
        let whole_ms = |key: &'static str, span: Span| {
            if span.nanos() % 1_000_000 == 0 {
                Ok(())
            } else {
                Err(KafkaStreamsConfigError {
                    key,
                    message: format!("{span} has a fraction of a millisecond; Kafka Streams counts whole milliseconds"),
                })
            }
        };
        if let Some(c) = self.commit_interval {
            whole_ms("commit_interval", c)?;
            if c.nanos() == 0 {
                return Err(KafkaStreamsConfigError {
                    key: "commit_interval",
                    message: "must be at least 1ms".into(),
                });
            }
        }
        whole_ms("grace", self.grace)?;
        if self.threads == 0 {
            return Err(KafkaStreamsConfigError {
                key: "threads",
                message: "must be at least 1 (`num.stream.threads`)".into(),
            });
        }
        Ok(())
    }

    /// The `StreamsConfig` properties these keys set (besides the run's own: application id,
    /// bootstrap servers, state directory), as `key=value` pairs.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("processing.guarantee", self.processing_guarantee.value().to_string()),
            (
                "commit.interval.ms",
                (self.commit_interval().nanos() / 1_000_000).to_string(),
            ),
            ("statestore.cache.max.bytes", self.cache_max_bytes.to_string()),
            ("num.stream.threads", self.threads.to_string()),
        ]
    }

    /// Whether results are updates of a window's value (no `suppress`) rather than final.
    pub fn upserts(&self) -> bool {
        !self.suppress
    }
}

/// The length of `window` in ms (a session's gap): how far behind the last event the last
/// window that stream time closes may end.
pub fn window_span_ms(window: &streamlab_engines::pipeline::WindowSpec) -> i64 {
    use streamlab_engines::pipeline::WindowSpec;
    match *window {
        WindowSpec::Tumbling { size } | WindowSpec::Sliding { size, .. } => size.whole_ms(),
        WindowSpec::Session { gap } => gap.whole_ms(),
    }
}

/// The last window end (event time, ms) a run over events whose largest event time is
/// `max_event_time` promises to deliver: with `suppress`, a window is emitted once stream time
/// passes its end plus the grace period, and stream time stops at the last record a task saw
/// (a task whose keys missed the very last records stops earlier, hence one window of slack);
/// without `suppress` every window's latest value is flushed at the next commit (`None`: all).
pub fn closed_by(
    config: &KafkaStreamsConfig,
    pipeline: &streamlab_engines::pipeline::PipelineSpec,
    max_event_time: i64,
) -> Option<i64> {
    let a = pipeline.aggregate.as_ref()?;
    config
        .suppress
        .then(|| max_event_time - config.grace.whole_ms() - window_span_ms(&a.window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_interval_defaults_to_kafka_streams_own_per_guarantee() {
        let alos = KafkaStreamsConfig::default();
        assert_eq!(alos.commit_interval(), Span::from_ms(30_000));
        let eos = KafkaStreamsConfig {
            processing_guarantee: ProcessingGuarantee::ExactlyOnceV2,
            ..alos
        };
        assert_eq!(eos.commit_interval(), Span::from_ms(100));
        assert!(eos
            .properties()
            .contains(&("processing.guarantee", "exactly_once_v2".into())));
        assert!(eos.properties().contains(&("commit.interval.ms", "100".into())));
    }

    #[test]
    fn a_fraction_of_a_millisecond_or_no_thread_is_refused_by_key() {
        let c = KafkaStreamsConfig {
            grace: Span::parse("1500us").unwrap(),
            ..KafkaStreamsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "grace");
        let c = KafkaStreamsConfig {
            threads: 0,
            ..KafkaStreamsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "threads");
        let c = KafkaStreamsConfig {
            commit_interval: Some(Span::from_ms(0)),
            ..KafkaStreamsConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "commit_interval");
    }
}
