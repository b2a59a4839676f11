//! What a scenario asks of Spark that the generated script cannot do, refused before anything
//! starts.
//!
//! A real-engine run is worth something only if Spark runs the very pipeline and configuration
//! the scenario describes. So the translation never approximates: a key it cannot express in
//! Spark — a modelled cost, a trigger the feeder's source cannot serve, an output mode Spark
//! rejects for that window — is refused, naming the key (relative to its table, as the
//! pipeline's and the micro-batch engine's own errors do) and saying what is allowed instead.
//! [`check`] runs the engines' own validation first, so a refusal here is always about Spark.

use std::collections::BTreeMap;

use streamlab_engines::microbatch::config::MicroBatchConfigError;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::pipeline::{PipelineError, PipelineSpec, WindowSpec};
use streamlab_engines::time::Span;

/// Which table of the scenario a refused key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedTable {
    /// The `[pipeline]` table.
    Pipeline,
    /// The engine's `[[engine]]` table.
    Engine,
}

/// A pipeline or engine key the generated PySpark script cannot express, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}key `{key}`: {reason}", match .table { RefusedTable::Pipeline => "pipeline ", RefusedTable::Engine => "" })]
pub struct SparkRefusal {
    /// The table the key is in.
    pub table: RefusedTable,
    /// Dotted key path inside that table.
    pub key: String,
    /// Why Spark cannot run it, and what is allowed.
    pub reason: String,
}

impl SparkRefusal {
    pub(super) fn engine(key: &str, reason: impl Into<String>) -> Self {
        Self {
            table: RefusedTable::Engine,
            key: key.into(),
            reason: reason.into(),
        }
    }

    fn pipeline(key: &str, reason: impl Into<String>) -> Self {
        Self {
            table: RefusedTable::Pipeline,
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl From<PipelineError> for SparkRefusal {
    fn from(e: PipelineError) -> Self {
        Self::pipeline(&e.key, e.message)
    }
}

impl From<MicroBatchConfigError> for SparkRefusal {
    fn from(e: MicroBatchConfigError) -> Self {
        Self::engine(&e.key, e.message)
    }
}

/// Checks that `pipeline` under `engine` can be run by the generated script: the engines' own
/// validation first, then what Spark or the feeder's source cannot do.
pub fn check(pipeline: &PipelineSpec, engine: &MicroBatchConfig) -> Result<(), SparkRefusal> {
    pipeline.validate()?;
    if let Some((key, reason)) = crate::job::untranslated(pipeline) {
        return Err(SparkRefusal::pipeline(key, reason));
    }
    engine.validate(pipeline)?;
    if pipeline.top_n.is_some() {
        return Err(SparkRefusal::pipeline(
            "top_n",
            "Spark refuses a rank over a window of a stream (\"Non-time-based windows are not supported on \
             streaming DataFrames\"), and a maximum per window joined back to its records is a stream-stream join \
             after an aggregation, which one Spark query cannot run in append mode. streamlab's micro-batch engine \
             models it (`model = \"micro-batch\"`); the real Flink runs it as its window Top-N",
        ));
    }
    if pipeline.then.is_some() {
        return Err(SparkRefusal::pipeline(
            "then",
            "the generated Spark job does not translate a second aggregation yet (Spark 4 would chain a second \
             window aggregation on the first's `window_time` in append mode, and q5's results that attain the \
             maximum are a join after an aggregation); streamlab's micro-batch engine models it \
             (`model = \"micro-batch\"`); the real Flink runs it",
        ));
    }
    let modelled = |what: &str| {
        format!("{what} is a cost the simulated engine models; the real Spark pays its own. Allowed: omit the key (0)")
    };
    if let Trigger::Continuous { .. } = engine.trigger {
        return Err(SparkRefusal::engine(
            "trigger",
            "Spark's continuous processing needs a source with a ContinuousStream (Kafka, rate); the feeder's \
             source is a Python data source, which Spark runs in micro-batches only. Allowed: `processing_time`, \
             `once`, `available_now`",
        ));
    }
    if engine.group_size != 1 {
        return Err(SparkRefusal::engine(
            "group_size",
            "Spark plans every micro-batch on its own; group scheduling (Drizzle) exists only in the model. \
             Allowed: 1 (or omit the key)",
        ));
    }
    if engine.pin_workers {
        return Err(SparkRefusal::engine(
            "pin_workers",
            "a local Spark runs its task threads in one JVM and cannot pin them to cores; that takes one \
             single-core executor per core under a cpuset, set up outside streamlab. Allowed: false (or omit \
             the key)",
        ));
    }
    if engine.scheduling.per_batch != Span::default() {
        return Err(SparkRefusal::engine(
            "scheduling.per_batch",
            modelled("a per-batch scheduling overhead"),
        ));
    }
    if engine.scheduling.per_task != Span::default() {
        return Err(SparkRefusal::engine(
            "scheduling.per_task",
            modelled("a per-task scheduling overhead"),
        ));
    }
    if engine.modelled_cost_per_record != Span::default() {
        return Err(SparkRefusal::engine(
            "modelled_cost_per_record",
            modelled("a per-record processing cost"),
        ));
    }
    if engine.start_at.is_some() {
        return Err(SparkRefusal::engine(
            "start_at",
            "the feeder's clock starts when the query's source connects, so a real query cannot start later \
             than its events; `once` and `available_now` queries read every event before their first batch. \
             Allowed: omit the key",
        ));
    }
    if let Some(aggregate) = &pipeline.aggregate {
        if matches!(aggregate.window, WindowSpec::Session { .. }) && engine.output_mode == OutputMode::Update {
            return Err(SparkRefusal::engine(
                "output_mode",
                "Spark refuses the update output mode for session window aggregations. Allowed with a session \
                 window: `append`, `complete`",
            ));
        }
    }
    for (key, span) in spans(pipeline, engine) {
        interval(span).map_err(|reason| match key.strip_prefix("pipeline.") {
            Some(key) => SparkRefusal::pipeline(key, reason),
            None => SparkRefusal::engine(key, reason),
        })?;
    }
    Ok(())
}

/// Spark settings the translation writes itself, with the engine key that sets each.
const TRANSLATED_CONF: [(&str, &str); 5] = [
    ("spark.master", "master"),
    ("spark.sql.shuffle.partitions", "shuffle_partitions"),
    ("spark.sql.streaming.pollingDelay", "polling_delay"),
    ("spark.sql.streaming.stateStore.providerClass", "state_backend"),
    (
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled",
        "state_backend",
    ),
];

/// Refuses a `conf` entry the translation sets from an engine key (two values for one setting
/// would leave the run's configuration to whichever Spark reads last).
pub fn check_conf(conf: &BTreeMap<String, String>) -> Result<(), SparkRefusal> {
    for key in conf.keys() {
        if let Some((_, engine_key)) = TRANSLATED_CONF.iter().find(|(k, _)| k == key) {
            return Err(SparkRefusal::engine(
                &format!("conf.{key}"),
                format!("streamlab sets `{key}` from the engine key `{engine_key}`; set that key instead"),
            ));
        }
        if !key.starts_with("spark.") {
            return Err(SparkRefusal::engine(
                &format!("conf.{key}"),
                "not a Spark setting; `conf` passes `spark.*` settings to the session as they are",
            ));
        }
    }
    Ok(())
}

/// Every duration the script writes as a Spark interval, with its key (`pipeline.` for the
/// pipeline's).
fn spans(pipeline: &PipelineSpec, engine: &MicroBatchConfig) -> Vec<(&'static str, Span)> {
    let mut spans = vec![
        ("watermark_delay", engine.watermark_delay),
        ("polling_delay", engine.polling_delay),
    ];
    if let Some(interval) = engine.interval() {
        spans.push(("trigger.interval", interval));
    }
    spans.extend(crate::job::window_spans(pipeline));
    spans
}

/// A duration as a Spark interval string (`"200 milliseconds"`); Spark's intervals stop at the
/// microsecond.
pub(super) fn interval(span: Span) -> Result<String, String> {
    let nanos = span.nanos();
    if nanos % 1_000_000 == 0 {
        Ok(format!("{} milliseconds", nanos / 1_000_000))
    } else if nanos % 1_000 == 0 {
        Ok(format!("{} microseconds", nanos / 1_000))
    } else {
        Err(format!(
            "{span} has a fraction of a microsecond, and Spark's intervals stop at the microsecond. Allowed: a \
             whole number of microseconds"
        ))
    }
}
