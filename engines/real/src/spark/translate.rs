//! A streamlab pipeline and micro-batch configuration, written out as a PySpark script.
//!
//! The script has three parts, in this order, so a reader meets what this scenario asks for
//! before the plumbing: the translated configuration (Spark settings, trigger, output mode,
//! watermark, source options), the translated pipeline (one `pipeline(events, campaigns)`
//! function of DataFrame calls, one line per streamlab step), and the runtime that is the same
//! in every script (`runtime.py`: the feeder source, the receiver sink, the progress log and
//! `main`). Run-specific details — addresses, token, partitions, the campaign table's file, the
//! progress file and the checkpoint directory — are command-line arguments ([`ScriptArgs`]), so
//! the script kept in a run's directory is the same for every run of the scenario, reads as the
//! scenario, and can be rerun against another feeder; the token never lands in a file.
//!
//! Invariant: the text depends only on the pipeline and the configuration (no time, no path,
//! no hash-map order), so golden files can pin it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use streamlab_engines::event::EventKind;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::operators::window::StateBackendKind;
use streamlab_engines::pipeline::{
    AggFunc, Aggregation, Convert, Field, OutputShape, PipelineSpec, Predicate, WindowSpec,
};

use streamlab_engines::time::Span;

use super::refusal::{check, check_conf, interval, RefusedTable, SparkRefusal};
use crate::job::{convert_may_wrap, describe_pipeline, feeder_column, number_list, PredicateTest, SLOT_MODULUS};

/// The runtime every script ends with.
const RUNTIME: &str = include_str!("runtime.py");

/// What a script for `transport = "kafka"` runs instead of the feeder's `main`.
const KAFKA_RUNTIME: &str = include_str!("kafka_runtime.py");

/// The feeder runtime's last lines, which a Kafka script replaces with [`KAFKA_RUNTIME`]'s.
const FEEDER_MAIN: &str = "\n\nif __name__ == \"__main__\":\n    main()\n";

/// The lifeline every generated job starts (see `crate::groups`).
const LIFELINE: &str = include_str!("../lifeline.py");

/// The Spark class of the RocksDB state store, what streamlab's LSM state backends stand for.
const ROCKSDB_PROVIDER: &str = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider";

/// What is translated: a scenario's pipeline and one micro-batch engine of it.
#[derive(Clone, Copy, Debug)]
pub struct SparkJob<'a> {
    /// The pipeline.
    pub pipeline: &'a PipelineSpec,
    /// The engine configuration.
    pub engine: &'a MicroBatchConfig,
    /// Spark settings passed through as they are (the engine table's `conf`), after the
    /// translated ones; [`check`] refuses a key the translation sets itself.
    pub conf: &'a BTreeMap<String, String>,
}

/// A generated PySpark script, ready to be written into a run's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PySparkScript {
    text: String,
}

impl PySparkScript {
    /// The script's file name in a run's directory.
    pub const FILE_NAME: &'static str = "streamlab_spark.py";

    /// Translates `job` for the loopback feeder, or refuses it (naming the key) if Spark cannot
    /// run it as described.
    pub fn translate(job: SparkJob<'_>) -> Result<Self, SparkRefusal> {
        if let Trigger::RealTime { .. } = job.engine.trigger {
            return Err(SparkRefusal::engine(
                "trigger",
                "Spark's Real-Time Mode reads Kafka only (STREAMING_REAL_TIME_MODE.INPUT_STREAM_NOT_SUPPORTED: the \
                 feeder's Python data source \"is not supported in Real-time Mode\"); set `transport = \"kafka\"` in \
                 [workload], or use a `processing_time` trigger",
            ));
        }
        Self::translate_any(job)
    }

    /// Translates `job` for `transport = "kafka"`: Spark's Kafka source reads the input topic and
    /// the results go to the output topic (see `kafka_runtime.py`); Real-Time Mode is allowed.
    pub fn translate_for_kafka(job: SparkJob<'_>) -> Result<Self, SparkRefusal> {
        let mut script = Self::translate_any(job)?;
        let len = script.text.len();
        debug_assert!(script.text.ends_with(FEEDER_MAIN));
        script.text.truncate(len - FEEDER_MAIN.len());
        script.text.push('\n');
        script.text.push_str(KAFKA_RUNTIME);
        Ok(script)
    }

    fn translate_any(job: SparkJob<'_>) -> Result<Self, SparkRefusal> {
        check(job.pipeline, job.engine)?;
        check_conf(job.conf)?;
        let mut text = String::new();
        header(&mut text, job);
        configuration(&mut text, job)?;
        pipeline(&mut text, job.pipeline)?;
        text.push_str("\n\n");
        text.push_str(LIFELINE);
        text.push_str("\n\n");
        text.push_str(RUNTIME);
        Ok(Self { text })
    }

    /// The script's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Python's `repr` of a string with no quote or backslash in it (every string we write is a
/// name or an interval we made).
pub(super) fn py_str(s: &str) -> String {
    debug_assert!(!s.contains(['"', '\\', '\n']));
    format!("\"{s}\"")
}

/// Any string as a Python string literal (a user's `conf` key or value).
fn py_literal(s: &str) -> String {
    let mut lit = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => lit.push_str("\\\""),
            '\\' => lit.push_str("\\\\"),
            '\n' => lit.push_str("\\n"),
            c => lit.push(c),
        }
    }
    lit.push('"');
    lit
}

fn describe_trigger(t: Trigger) -> String {
    match t {
        Trigger::ProcessingTime { interval } if interval.nanos() == 0 => {
            "Spark's default (next batch when the last ends)".into()
        }
        Trigger::ProcessingTime { interval } => format!("processing time {interval}"),
        Trigger::Once => "once".into(),
        Trigger::AvailableNow {
            max_records_per_batch: None,
        } => "available now".into(),
        Trigger::AvailableNow {
            max_records_per_batch: Some(n),
        } => format!("available now, at most {n} records a batch"),
        Trigger::Continuous { checkpoint_interval } => format!("continuous, epochs every {checkpoint_interval}"),
        Trigger::RealTime { checkpoint_interval } => {
            format!("Real-Time Mode, a checkpoint every {checkpoint_interval}")
        }
    }
}

fn output_mode(m: OutputMode) -> &'static str {
    match m {
        OutputMode::Append => "append",
        OutputMode::Update => "update",
        OutputMode::Complete => "complete",
    }
}

/// The module docstring and the imports.
fn header(out: &mut String, job: SparkJob<'_>) {
    let e = job.engine;
    let mut doc =
        String::from("\"\"\"A streamlab pipeline on Apache Spark Structured Streaming (generated by streamlab).\n\n");
    doc.push_str("Pipeline:\n");
    for step in describe_pipeline(job.pipeline, "broadcast") {
        let _ = writeln!(doc, "  {step}");
    }
    doc.push_str("Engine:\n");
    let _ = writeln!(doc, "  trigger: {}", describe_trigger(e.trigger));
    let _ = writeln!(doc, "  output mode: {}", output_mode(e.output_mode));
    if job.pipeline.is_stateful() {
        let _ = writeln!(doc, "  watermark delay: {}", e.watermark_delay);
    }
    let _ = writeln!(
        doc,
        "  master: local[{}], {} shuffle partitions",
        e.workers, e.shuffle_partitions
    );
    doc.push_str(
        "\nEvents come from streamlab's feeder (one connection per source partition, each opened with\n\
         `STREAMLAB <token> <partition>`, then one trace row per line until `END`); every output row goes\n\
         back to streamlab's receiver (`STREAMLAB <token> sink`, then one CSV row per line), which stamps\n\
         it on receipt. Each query progress is appended to the progress file as one JSON line.\n\n\
         Not translated (they model costs or machinery the real Spark has of its own): restart_delay,\n\
         external_shuffle_service (a local master has no shuffle service; a cluster's comes from its\n\
         own configuration).\n\n\
         Run with the venv's spark-submit (or its python):\n\
         \x20 spark-submit streamlab_spark.py --feeder HOST:PORT --receiver HOST:PORT --token TOKEN \\\n\
         \x20     --partitions N --campaigns campaigns.csv --progress progress.jsonl --checkpoint DIR\n\"\"\"\n\n",
    );
    out.push_str("#!/usr/bin/env python3\n");
    out.push_str(&doc);
    out.push_str(
        "import argparse\n\
         import json\n\
         import socket\n\
         import threading\n\
         import time\n\
         \n\
         from pyspark.sql import SparkSession\n\
         from pyspark.sql import functions as F\n\
         from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition\n\
         from pyspark.sql.streaming import StreamingQueryListener\n\
         from pyspark.sql.streaming.datasource import (\n\
         \x20   ReadAllAvailable,\n\
         \x20   ReadMaxRows,\n\
         \x20   SupportsTriggerAvailableNow,\n\
         )\n\
         from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType\n\n",
    );
}

/// The translated engine configuration, as module constants.
fn configuration(out: &mut String, job: SparkJob<'_>) -> Result<(), SparkRefusal> {
    let e = job.engine;
    let engine_interval = |key: &str, span| {
        interval(span).map_err(|reason| SparkRefusal {
            table: RefusedTable::Engine,
            key: key.into(),
            reason,
        })
    };
    out.push_str("# ---------------------------------------------------------------------------------------------\n");
    out.push_str("# The engine configuration, translated.\n");
    out.push_str("# ---------------------------------------------------------------------------------------------\n\n");
    out.push_str("APP_NAME = \"streamlab\"\n");
    let _ = writeln!(out, "MASTER = \"local[{}]\"  # workers = {}", e.workers, e.workers);
    out.push_str("SPARK_CONF = {\n");
    let _ = writeln!(
        out,
        "    \"spark.sql.shuffle.partitions\": \"{}\",  # shuffle_partitions",
        e.shuffle_partitions
    );
    let _ = writeln!(
        out,
        "    \"spark.sql.streaming.pollingDelay\": {},  # polling_delay",
        py_str(&conf_duration(&engine_interval("polling_delay", e.polling_delay)?))
    );
    match e.state_backend {
        StateBackendKind::Heap => {}
        StateBackendKind::Lsm | StateBackendKind::LsmChangelog => {
            let _ = writeln!(
                out,
                "    \"spark.sql.streaming.stateStore.providerClass\": {},  # state_backend",
                py_str(ROCKSDB_PROVIDER)
            );
        }
    }
    if matches!(e.trigger, Trigger::RealTime { .. }) && job.pipeline.is_stateful() {
        // STREAMING_REAL_TIME_MODE.CHECKPOINT_FORMAT_V1_NOT_SUPPORTED: a re-executed batch could
        // reuse a failed batch's state file names; v2 is RocksDB's store's.
        out.push_str("    \"spark.sql.streaming.stateStore.checkpointFormatVersion\": \"2\",  # Real-Time Mode\n");
        if e.state_backend == StateBackendKind::Heap {
            let _ = writeln!(
                out,
                "    \"spark.sql.streaming.stateStore.providerClass\": {},  # Real-Time Mode (checkpoint format v2)",
                py_str(ROCKSDB_PROVIDER)
            );
        }
    }
    if e.state_backend == StateBackendKind::LsmChangelog {
        out.push_str(
            "    \"spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled\": \"true\",  # state_backend\n",
        );
    }
    out.push_str("    \"spark.ui.enabled\": \"false\",\n");
    for (key, value) in job.conf {
        let _ = writeln!(out, "    {}: {},  # conf", py_literal(key), py_literal(value));
    }
    out.push_str("}\n");
    let trigger = match e.trigger {
        Trigger::ProcessingTime { interval } if interval.nanos() == 0 => "{}  # Spark's default trigger".into(),
        Trigger::ProcessingTime { interval } => format!(
            "{{\"processingTime\": {}}}",
            py_str(&engine_interval("trigger.interval", interval)?)
        ),
        Trigger::Once => "{\"once\": True}".into(),
        Trigger::AvailableNow { .. } => "{\"availableNow\": True}".into(),
        Trigger::Continuous { .. } => unreachable!("refused by check"),
        Trigger::RealTime { checkpoint_interval } => format!(
            "{{\"realTime\": {}}}  # Real-Time Mode: Kafka source and sink only",
            py_str(&engine_interval("trigger.checkpoint_interval", checkpoint_interval)?)
        ),
    };
    let _ = writeln!(out, "TRIGGER = {trigger}");
    let _ = writeln!(out, "OUTPUT_MODE = {}", py_str(output_mode(e.output_mode)));
    let _ = writeln!(
        out,
        "WATERMARK_DELAY = {}",
        py_str(&engine_interval("watermark_delay", e.watermark_delay)?)
    );
    let py_bool = |b: bool| if b { "True" } else { "False" };
    let _ = writeln!(
        out,
        "WINDOWED = {}",
        py_bool(job.pipeline.output_shape() == OutputShape::Windows)
    );
    let _ = writeln!(out, "STATEFUL = {}", py_bool(job.pipeline.is_stateful()));
    let mut options = String::new();
    if let Trigger::Once | Trigger::AvailableNow { .. } = e.trigger {
        options.push_str("    \"wait_for_end\": \"true\",  # the query starts after the last event has arrived\n");
    }
    if let Trigger::AvailableNow {
        max_records_per_batch: Some(n),
    } = e.trigger
    {
        let _ = writeln!(
            options,
            "    \"max_rows_per_batch\": \"{n}\",  # trigger.max_records_per_batch"
        );
    }
    if options.is_empty() {
        out.push_str("SOURCE_OPTIONS = {}\n\n");
    } else {
        let _ = write!(out, "SOURCE_OPTIONS = {{\n{options}}}\n\n");
    }
    Ok(())
}

/// A Spark interval (`"10 milliseconds"`) as a time configuration value (`"10ms"`).
fn conf_duration(interval: &str) -> String {
    interval.replace(" milliseconds", "ms").replace(" microseconds", "us")
}

/// A field as a column expression of the (joined) event stream: its column of the feeder's
/// row ([`feeder_column`]: a Nexmark field's slot); `numeric` asks for the event kind as its
/// index (a key, an aggregated or a tested value), not its name.
pub(super) fn column(f: Field, numeric: bool) -> String {
    match f {
        Field::Kind if numeric => {
            let mut case = String::from("F.expr(\"CASE kind");
            for k in EventKind::ALL {
                let _ = write!(case, " WHEN '{}' THEN {}", k.name(), k.index());
            }
            case.push_str(" END\")");
            case
        }
        other => format!("F.col(\"{}\")", feeder_column(other)),
    }
}

/// A `where` entry as a column condition. `modulo` is Euclidean (`pmod`), as the reference's
/// `rem_euclid`.
pub(super) fn condition(p: &Predicate) -> String {
    let c = column(p.field, true);
    match PredicateTest::of(p) {
        PredicateTest::Modulo { modulo, equals } => format!("F.pmod({c}, F.lit({modulo})) == {equals}"),
        PredicateTest::Equals(x) => format!("{c} == {x}"),
        PredicateTest::NotEquals(x) => format!("{c} != {x}"),
        PredicateTest::OneOf(xs) => format!("{c}.isin({})", number_list(xs)),
        PredicateTest::AtLeast(x) => format!("{c} >= {x}"),
        PredicateTest::Below(x) => format!("{c} < {x}"),
    }
}

/// A `convert` as the new value of its slot column: integer arithmetic rounding toward zero
/// (`div`), wrapped to the 32-bit slot only where it may leave it ([`convert_may_wrap`]).
fn converted(c: &Convert) -> String {
    let col = feeder_column(c.field);
    let value = format!("{col} * {} div {}", c.multiply, c.divide);
    if convert_may_wrap(c) {
        format!("F.expr(\"pmod({value}, {SLOT_MODULUS})\")")
    } else {
        format!("F.expr(\"{value}\")")
    }
}

/// The aggregate's value column.
fn aggregate_value(a: &Aggregation) -> String {
    let field = a.field.map(|f| column(f, true));
    match (a.function, field) {
        (AggFunc::Count, _) | (_, None) => "F.count(F.lit(1))".into(),
        (AggFunc::Sum, Some(c)) => format!("F.sum({c})"),
        (AggFunc::Min, Some(c)) => format!("F.min({c})"),
        (AggFunc::Max, Some(c)) => format!("F.max({c})"),
        (AggFunc::Avg, Some(c)) => format!("F.avg({c})"),
        // Spark refuses distinct aggregates on streams; the size of the set is the exact count.
        (AggFunc::DistinctCount, Some(c)) => format!("F.size(F.collect_set({c}))"),
    }
}

/// The lines that make `name` the rows of `from` of `kinds` (all: `None`) passing every
/// `where` entry of `predicates`, one `where` call each.
pub(super) fn selection(
    out: &mut String,
    name: &str,
    from: &str,
    kinds: Option<&[EventKind]>,
    predicates: &[Predicate],
) {
    let mut from = from;
    if let Some(kinds) = kinds {
        let names: Vec<String> = kinds.iter().map(|k| py_str(k.name())).collect();
        let _ = writeln!(
            out,
            "    {name} = {from}.where(F.col(\"kind\").isin({}))",
            names.join(", ")
        );
        from = name;
    }
    for pred in predicates {
        let _ = writeln!(out, "    {name} = {from}.where({})", condition(pred));
        from = name;
    }
}

/// A duration of the pipeline as a Spark interval, refused by `key` when Spark cannot write it.
pub(super) fn pipeline_interval(key: &str, span: Span) -> Result<String, SparkRefusal> {
    interval(span).map_err(|reason| SparkRefusal {
        table: RefusedTable::Pipeline,
        key: key.into(),
        reason,
    })
}

/// The window column of `w` over the timestamp column `ts` (`key`: the window's pipeline key,
/// named by a refusal).
pub(super) fn window_column(ts: &str, w: WindowSpec, key: &str) -> Result<String, SparkRefusal> {
    Ok(match w {
        WindowSpec::Tumbling { size } => format!(
            "F.window(\"{ts}\", {})",
            py_str(&pipeline_interval(&format!("{key}.size"), size)?)
        ),
        WindowSpec::Sliding { size, slide } => format!(
            "F.window(\"{ts}\", {}, {})",
            py_str(&pipeline_interval(&format!("{key}.size"), size)?),
            py_str(&pipeline_interval(&format!("{key}.slide"), slide)?)
        ),
        WindowSpec::Session { gap } => format!(
            "F.session_window(\"{ts}\", {})",
            py_str(&pipeline_interval(&format!("{key}.gap"), gap)?)
        ),
    })
}

/// The translated pipeline: one `pipeline(events, campaigns)` function.
fn pipeline(out: &mut String, p: &PipelineSpec) -> Result<(), SparkRefusal> {
    out.push_str("# ---------------------------------------------------------------------------------------------\n");
    out.push_str("# The pipeline, translated: one line per streamlab step.\n");
    out.push_str(
        "# ---------------------------------------------------------------------------------------------\n\n\n",
    );
    out.push_str("def pipeline(events, campaigns):\n");
    out.push_str("    \"\"\"The pipeline, step by step:\n\n");
    for step in describe_pipeline(p, "broadcast") {
        let _ = writeln!(out, "    {step}");
    }
    out.push('\n');
    if p.join.is_some() {
        out.push_str(
            "    Rows: shape (pair, left_only, right_only), left_seq, right_seq (-1: absent), window_start_ms\n\
             \x20   (a window join's pair, else 0), origin_arrival_ns (the later-arriving record's arrival).\n",
        );
    } else if p.is_stateful() {
        out.push_str(
            "    Rows: key, window_start_ms, window_end_ms, count, value, origin_arrival_ns (the latest\n\
             \x20   arrival of a contributing event: streamlab's latency origin for a window).\n",
        );
    } else {
        out.push_str(
            "    Rows: seq (the event's position in the stream), the projected columns, then\n\
             \x20   origin_arrival_ns (the event's scheduled arrival: streamlab's latency origin).\n",
        );
    }
    out.push_str("    \"\"\"\n");
    if let Some(j) = &p.join {
        return super::join::translate(out, j);
    }
    selection(out, "events", "events", p.filter_kinds.as_deref(), &p.predicates);
    if let Some(c) = &p.convert {
        let _ = writeln!(
            out,
            "    events = events.withColumn(\"{}\", {})  # {}",
            feeder_column(c.field),
            converted(c),
            c.field.name()
        );
    }
    if p.lookup_join {
        out.push_str("    events = events.join(F.broadcast(campaigns), \"ad\", \"inner\")\n");
    }
    let Some(a) = &p.aggregate else {
        out.push_str("    return events.select(\n");
        out.push_str("        F.col(\"seq\"),\n");
        for &f in p.project.iter().filter(|&&f| f != Field::Seq) {
            let _ = writeln!(out, "        {}.alias(\"{}\"),", column(f, false), f.name());
        }
        out.push_str("        F.col(\"arrival_ns\").alias(\"origin_arrival_ns\"),\n    )\n");
        return Ok(());
    };
    let window = window_column("event_ts", a.window, "aggregate.window")?;
    out.push_str("    events = events.withColumn(\"event_ts\", F.timestamp_millis(\"event_time_ms\"))\n");
    out.push_str("    events = events.withWatermark(\"event_ts\", WATERMARK_DELAY)\n");
    out.push_str("    windows = events.groupBy(\n");
    let _ = writeln!(out, "        {window}.alias(\"w\"),");
    let _ = writeln!(out, "        {}.alias(\"key\"),", column(a.key_by, true));
    out.push_str("    ).agg(\n");
    out.push_str("        F.count(F.lit(1)).alias(\"count\"),\n");
    let _ = writeln!(out, "        {}.alias(\"value\"),", aggregate_value(a));
    out.push_str("        F.max(\"arrival_ns\").alias(\"origin_arrival_ns\"),\n");
    out.push_str("    )\n");
    out.push_str(
        "    return windows.select(\n\
         \x20       \"key\",\n\
         \x20       F.unix_millis(\"w.start\").alias(\"window_start_ms\"),\n\
         \x20       F.unix_millis(\"w.end\").alias(\"window_end_ms\"),\n\
         \x20       \"count\",\n\
         \x20       \"value\",\n\
         \x20       \"origin_arrival_ns\",\n\
         \x20   )\n",
    );
    Ok(())
}
