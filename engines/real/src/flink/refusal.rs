//! What a scenario asks of Flink that the generated job cannot do, refused before anything
//! starts.
//!
//! As for Spark, the translation never approximates: a per-record engine key that Flink (2.3,
//! as PyFlink bundles it) or the job's SQL cannot express as described is refused, naming the
//! key (relative to its table) and what is allowed instead. [`check`] runs the engines' own
//! validation first, so a refusal here is always about Flink. Keys that only model machinery
//! the real Flink has of its own are not refused but listed in the script as not translated
//! ([`NOT_TRANSLATED`]).

use std::collections::BTreeMap;

use streamlab_engines::dataflow::config::{DataflowConfig, DataflowConfigError, SinkGuarantee};
use streamlab_engines::pipeline::{PipelineError, PipelineSpec};
use streamlab_engines::time::Span;

pub use crate::spark::RefusedTable;

/// The per-record engine keys the script does not translate, and why: each line of the
/// script's "Not translated" paragraph.
pub const NOT_TRANSLATED: &[&str] = &[
    "buffers_per_channel (Flink 2.3 has no per-channel buffer count; its network buffers come from",
    "  taskmanager.memory.network.*, left at Flink's defaults),",
    "restart (the feeder's stream cannot be replayed, so a restarted job could not read its events",
    "  again: the job runs with restart-strategy none and a failure ends it).",
];

/// A pipeline or engine key the generated Flink job cannot express, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}key `{key}`: {reason}", match .table { RefusedTable::Pipeline => "pipeline ", RefusedTable::Engine => "" })]
pub struct FlinkRefusal {
    /// The table the key is in.
    pub table: RefusedTable,
    /// Dotted key path inside that table.
    pub key: String,
    /// Why Flink cannot run it, and what is allowed.
    pub reason: String,
}

impl FlinkRefusal {
    pub(super) fn engine(key: &str, reason: impl Into<String>) -> Self {
        Self {
            table: RefusedTable::Engine,
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(super) fn pipeline(key: &str, reason: impl Into<String>) -> Self {
        Self {
            table: RefusedTable::Pipeline,
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl From<PipelineError> for FlinkRefusal {
    fn from(e: PipelineError) -> Self {
        Self::pipeline(&e.key, e.message)
    }
}

impl From<DataflowConfigError> for FlinkRefusal {
    fn from(e: DataflowConfigError) -> Self {
        Self::engine(&e.key, e.message)
    }
}

/// The Flink settings the script sets from an engine key, with that key.
pub const TRANSLATED_CONF: &[(&str, &str)] = &[
    ("parallelism.default", "parallelism"),
    ("execution.buffer-timeout.interval", "buffer_timeout"),
    ("execution.buffer-timeout.enabled", "buffer_timeout"),
    ("execution.buffer-timeout", "buffer_timeout"),
    ("pipeline.auto-watermark-interval", "auto_watermark_interval"),
    ("taskmanager.memory.segment-size", "buffer_size"),
    ("table.exec.source.idle-timeout", "idle_timeout"),
    ("execution.checkpointing.interval", "checkpoint_interval"),
    ("state.backend.type", "state_backend"),
    ("execution.checkpointing.incremental", "state_backend"),
    ("state.changelog.enabled", "state_backend"),
    ("state.changelog.storage", "state_backend"),
];

/// The Flink settings the script's runtime sets from its arguments (the run's cluster, jar and
/// directories).
pub const RUNTIME_CONF: &[&str] = &[
    "pipeline.jars",
    "execution.target",
    "execution.checkpointing.dir",
    "state.changelog.dstl.dfs.base-path",
    "io.tmp.dirs",
    "rest.address",
    "rest.port",
    "rest.bind-address",
    "rest.bind-port",
    "restart-strategy.type",
];

/// Refuses a `conf` entry the script sets itself (two values for one setting would leave the
/// run's configuration to whichever Flink reads last).
pub fn check_conf(conf: &BTreeMap<String, String>) -> Result<(), FlinkRefusal> {
    for key in conf.keys() {
        if let Some((_, engine_key)) = TRANSLATED_CONF.iter().find(|(k, _)| k == key) {
            return Err(FlinkRefusal::engine(
                &format!("conf.{key}"),
                format!("streamlab sets `{key}` from the engine key `{engine_key}`; set that key instead"),
            ));
        }
        if RUNTIME_CONF.contains(&key.as_str()) {
            return Err(FlinkRefusal::engine(
                &format!("conf.{key}"),
                format!(
                    "the job sets `{key}` itself from the run (its cluster, helper jar, directories, or a \
                     stream that cannot be replayed); `conf` passes other Flink settings"
                ),
            ));
        }
    }
    Ok(())
}

/// Flink's smallest memory segment (`taskmanager.memory.segment-size`).
const MIN_SEGMENT_BYTES: usize = 4096;

/// Refuses an exactly-once sink on the feeder's transport: the receiver has no transactions
/// (on Kafka, `sink` is the Kafka sink's delivery guarantee, and both are run).
pub fn check_socket_sink(engine: &DataflowConfig) -> Result<(), FlinkRefusal> {
    if engine.sink == SinkGuarantee::ExactlyOnce {
        return Err(FlinkRefusal::engine(
            "sink",
            "the receiver has no transactions for a two-phase-commit sink to commit on checkpoints; the \
             job's socket sink is at-least-once (on `transport = \"kafka\"` it is Flink's exactly-once Kafka \
             sink). Allowed: `at_least_once`",
        ));
    }
    Ok(())
}

/// Checks that `pipeline` under `engine` can be run by the generated job: the engines' own
/// validation first, then what Flink SQL or the helper jar cannot do (the sink, which depends
/// on the transport, is [`check_socket_sink`]'s).
pub fn check(pipeline: &PipelineSpec, engine: &DataflowConfig) -> Result<(), FlinkRefusal> {
    pipeline.validate()?;
    if let Some((key, reason)) = crate::job::untranslated(pipeline) {
        return Err(FlinkRefusal::pipeline(key, reason));
    }
    engine.validate()?;
    if engine.allowed_lateness != Span::default() {
        return Err(FlinkRefusal::engine(
            "allowed_lateness",
            "Flink SQL's window table functions drop late rows and emit each window once; lateness exists \
             only as the experimental `table.exec.emit.allow-lateness` of the legacy group windows, which \
             would send updates the receiver's final rows do not carry. Allowed: omit the key (0)",
        ));
    }
    if engine.commit_interval.is_some() {
        return Err(FlinkRefusal::engine(
            "commit_interval",
            "Kafka Streams-style emission (window values forwarded at every commit) has no Flink SQL \
             equivalent: a window table function emits once, when the watermark passes the window's end. \
             Allowed: omit the key (Flink's event-time trigger)",
        ));
    }
    if engine.pin_slots {
        return Err(FlinkRefusal::engine(
            "pin_slots",
            "a local Flink runs every task slot in one JVM and cannot pin a slot's threads to a core; that \
             takes one single-slot TaskManager per core under a cpuset, set up outside streamlab. Allowed: \
             false (or omit the key)",
        ));
    }
    if engine.buffer_size < MIN_SEGMENT_BYTES || !engine.buffer_size.is_power_of_two() {
        return Err(FlinkRefusal::engine(
            "buffer_size",
            format!(
                "Flink's network buffers are memory segments (`taskmanager.memory.segment-size`) of a power \
                 of two bytes, at least {MIN_SEGMENT_BYTES}; {} is not. Allowed: 4096, 8192, 16384, 32768 ...",
                engine.buffer_size
            ),
        ));
    }
    for (key, span) in spans(pipeline, engine) {
        millis(span).map_err(|reason| match key.strip_prefix("pipeline.") {
            Some(key) => FlinkRefusal::pipeline(key, reason),
            None => FlinkRefusal::engine(key, reason),
        })?;
    }
    Ok(())
}

/// Every duration the job writes (a Flink duration or a SQL interval, both in milliseconds),
/// with its key (`pipeline.` for the pipeline's).
fn spans(pipeline: &PipelineSpec, engine: &DataflowConfig) -> Vec<(&'static str, Span)> {
    let mut spans = vec![
        ("buffer_timeout", engine.buffer_timeout),
        ("auto_watermark_interval", engine.auto_watermark_interval),
        ("out_of_orderness", engine.out_of_orderness),
    ];
    if let Some(t) = engine.idle_timeout {
        spans.push(("idle_timeout", t));
    }
    if let Some(t) = engine.checkpoint_interval {
        spans.push(("checkpoint_interval", t));
    }
    spans.extend(crate::job::window_spans(pipeline));
    spans
}

/// A duration in whole milliseconds: Flink's timers, buffer timeout and SQL intervals stop at
/// the millisecond.
pub(super) fn millis(span: Span) -> Result<u64, String> {
    let nanos = span.nanos();
    if nanos % 1_000_000 == 0 {
        Ok(nanos / 1_000_000)
    } else {
        Err(format!(
            "{span} has a fraction of a millisecond, and Flink's durations and SQL intervals stop at the \
             millisecond. Allowed: a whole number of milliseconds"
        ))
    }
}
