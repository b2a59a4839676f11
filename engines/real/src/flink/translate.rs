//! A streamlab pipeline and per-record engine configuration, written out as a PyFlink script
//! that runs the pipeline as Flink SQL.
//!
//! The script has three parts, in this order, as the Spark script does: the translated
//! configuration (`FLINK_CONF`, Flink's own keys, each with the streamlab key it comes from,
//! and the watermark), the translated pipeline (`SINK_COLUMNS`, `PIPELINE` views and the
//! `INSERT`: Flink SQL, see [`super::sql`]), and the runtime that is the same in every script
//! (`runtime.py`: the source and sink tables of the helper jar, the cluster, the checkpoint
//! statistics, `main`). Run-specific details are command-line arguments
//! ([`crate::job::ScriptArgs`]), so the script kept in a run's directory is the same for every
//! run of the scenario and the token never lands in a file.
//!
//! Invariant: the text depends only on the pipeline and the configuration (no time, no path,
//! no hash-map order), so golden files can pin it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use streamlab_engines::dataflow::config::{DataflowConfig, SinkGuarantee};
use streamlab_engines::operators::window::StateBackendKind;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::time::Span;

use super::refusal::{check, check_conf, check_socket_sink, millis, FlinkRefusal, NOT_TRANSLATED};
use super::sql;
use crate::job::describe_pipeline;

/// The runtime every script ends with.
const RUNTIME: &str = include_str!("runtime.py");

/// The Kafka runtime a job for `transport = "kafka"` ends with instead of `main`.
const KAFKA_RUNTIME: &str = include_str!("kafka_runtime.py");

/// How `runtime.py` ends: the feeder's `main`, replaced on Kafka.
const FEEDER_MAIN: &str = "\n\nif __name__ == \"__main__\":\n    main()\n";

/// The lifeline every generated job starts (see `crate::groups`).
const LIFELINE: &str = include_str!("../lifeline.py");

/// What is translated: a scenario's pipeline and one per-record engine of it.
#[derive(Clone, Copy, Debug)]
pub struct FlinkJob<'a> {
    /// The pipeline.
    pub pipeline: &'a PipelineSpec,
    /// The engine configuration.
    pub engine: &'a DataflowConfig,
    /// Flink settings passed through as they are (the engine table's `conf`), after the
    /// translated ones; [`super::check_conf`] refuses a key the script sets itself.
    pub conf: &'a BTreeMap<String, String>,
}

/// A generated PyFlink script, ready to be written into a run's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyFlinkScript {
    text: String,
}

impl PyFlinkScript {
    /// The script's file name in a run's directory.
    pub const FILE_NAME: &'static str = "streamlab_flink.py";

    /// Translates `job`, or refuses it (naming the key) if Flink cannot run it as described.
    pub fn translate(job: FlinkJob<'_>) -> Result<Self, FlinkRefusal> {
        check_socket_sink(job.engine)?;
        Self::translate_any(job)
    }

    /// The script for either transport, ending with the feeder's `main`.
    fn translate_any(job: FlinkJob<'_>) -> Result<Self, FlinkRefusal> {
        check(job.pipeline, job.engine)?;
        check_conf(job.conf)?;
        let pipeline = sql::translate(job.pipeline)?;
        let mut text = String::new();
        header(&mut text, job);
        configuration(&mut text, job.engine, job.conf)?;
        pipeline_section(&mut text, job.pipeline, &pipeline);
        text.push_str("\n\n");
        text.push_str(LIFELINE);
        text.push_str("\n\n");
        text.push_str(RUNTIME);
        Ok(Self { text })
    }

    /// Translates `job` for `transport = "kafka"`: the same configuration and pipeline, the
    /// `events` and `receiver` tables on Flink's Kafka source and Kafka sink
    /// (`kafka_runtime.py`). The engine's `sink` is the Kafka sink's delivery guarantee:
    /// `exactly_once` is Flink's two-phase commit (results visible when the checkpoint that
    /// covers them completes), so it needs checkpoints (`checkpoint_interval`, refused without);
    /// `at_least_once` writes every result at once, and repeats some after a restart.
    pub fn translate_for_kafka(job: FlinkJob<'_>) -> Result<Self, FlinkRefusal> {
        let exactly_once = job.engine.sink == SinkGuarantee::ExactlyOnce;
        if exactly_once && job.engine.checkpoint_interval.is_none() {
            return Err(FlinkRefusal::engine(
                "checkpoint_interval",
                "Flink's exactly-once Kafka sink makes results visible when a checkpoint completes, so \
                 `sink = \"exactly_once\"` on Kafka needs checkpoints: set checkpoint_interval (e.g. \"1s\")",
            ));
        }
        let mut script = Self::translate_any(job)?;
        debug_assert!(script.text.ends_with(FEEDER_MAIN));
        script.text.truncate(script.text.len() - FEEDER_MAIN.len());
        let guarantee = if exactly_once { "exactly-once" } else { "at-least-once" };
        let _ = write!(
            script.text,
            "\n# sink = {}: the Kafka sink's delivery guarantee\nSINK_GUARANTEE = \"{guarantee}\"\n",
            if exactly_once { "exactly_once" } else { "at_least_once" }
        );
        script.text.push_str(KAFKA_RUNTIME);
        Ok(script)
    }

    /// The script's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A whole-millisecond duration as a Flink duration value (`"200 ms"`).
fn duration(key: &str, span: Span) -> Result<String, FlinkRefusal> {
    millis(span)
        .map(|ms| format!("{ms} ms"))
        .map_err(|reason| FlinkRefusal::engine(key, reason))
}

fn state_backend(kind: StateBackendKind) -> &'static str {
    match kind {
        StateBackendKind::Heap => "heap (Flink's hashmap state backend)",
        StateBackendKind::Lsm => "lsm (Flink's RocksDB state backend, incremental checkpoints)",
        StateBackendKind::LsmChangelog => "lsm_changelog (RocksDB with Flink's changelog state backend)",
    }
}

/// The module docstring and the imports.
fn header(out: &mut String, job: FlinkJob<'_>) {
    let e = job.engine;
    let mut doc =
        String::from("\"\"\"A streamlab pipeline on Apache Flink, as Flink SQL (generated by streamlab).\n\n");
    doc.push_str("Pipeline:\n");
    for step in describe_pipeline(job.pipeline, "table function campaign_of") {
        let _ = writeln!(doc, "  {step}");
    }
    doc.push_str("Engine:\n");
    let _ = writeln!(doc, "  parallelism: {}", e.parallelism);
    let _ = writeln!(doc, "  buffer timeout: {}", e.buffer_timeout);
    let _ = writeln!(
        doc,
        "  watermarks: every {}, out-of-orderness {}, per source partition",
        e.auto_watermark_interval, e.out_of_orderness
    );
    if let Some(idle) = e.idle_timeout {
        let _ = writeln!(doc, "  idle sources: after {idle}");
    }
    match e.checkpoint_interval {
        Some(t) => {
            let _ = writeln!(doc, "  checkpoints: every {t}, aligned");
        }
        None => doc.push_str("  checkpoints: off\n"),
    }
    let _ = writeln!(doc, "  state backend: {}", state_backend(e.state_backend));
    doc.push_str(
        "\nEvents come from streamlab's feeder through the `streamlab-feed` table (a FLIP-27 source of\n\
         streamlab's helper jar: one split, and one connection opened with `STREAMLAB <token> <partition>`,\n\
         per source partition, split p read by subtask p mod parallelism, each with its own watermark);\n\
         every output row goes back to streamlab's receiver through the `streamlab-receiver` table\n\
         (`STREAMLAB <token> sink`, then one CSV row per line, flushed at once), which stamps it on\n\
         receipt. The job is bounded: it ends by itself once every partition has sent `END`, and the\n\
         final watermark fires every window. Each completed checkpoint's statistics (Flink's REST API,\n\
         /jobs/<id>/checkpoints) are appended to the progress file as one JSON line.\n\n\
         Not translated (they model machinery the real Flink has of its own):\n",
    );
    for line in NOT_TRANSLATED {
        let _ = writeln!(doc, "{line}");
    }
    doc.push_str(
        "\nRun with the Flink venv's python (Java 17+ from JAVA_HOME or PATH):\n\
         \x20 python streamlab_flink.py --feeder HOST:PORT --receiver HOST:PORT --token TOKEN \\\n\
         \x20     --partitions N --campaigns campaigns.csv --progress progress.jsonl --checkpoint DIR \\\n\
         \x20     --jar streamlab-flink-helpers.jar [--master JOBMANAGER_HOST:REST_PORT]\n\"\"\"\n\n",
    );
    out.push_str("#!/usr/bin/env python3\n");
    out.push_str(&doc);
    out.push_str(
        "import argparse\n\
         import json\n\
         import os\n\
         import pathlib\n\
         import socket\n\
         import sys\n\
         import threading\n\
         import urllib.request\n\
         \n\
         from pyflink.common import Configuration\n\
         from pyflink.java_gateway import get_gateway\n\
         from pyflink.table import EnvironmentSettings, TableEnvironment\n\n",
    );
}

/// The translated engine configuration, as module constants.
fn configuration(out: &mut String, e: &DataflowConfig, conf: &BTreeMap<String, String>) -> Result<(), FlinkRefusal> {
    out.push_str("# ---------------------------------------------------------------------------------------------\n");
    out.push_str("# The engine configuration, translated.\n");
    out.push_str("# ---------------------------------------------------------------------------------------------\n\n");
    out.push_str("FLINK_CONF = {\n");
    entry(out, "parallelism.default", &e.parallelism.to_string(), "parallelism");
    entry(
        out,
        "execution.buffer-timeout.interval",
        &duration("buffer_timeout", e.buffer_timeout)?,
        "buffer_timeout (0 ms: flush after every record)",
    );
    entry(
        out,
        "pipeline.auto-watermark-interval",
        &duration("auto_watermark_interval", e.auto_watermark_interval)?,
        "auto_watermark_interval",
    );
    entry(
        out,
        "taskmanager.memory.segment-size",
        &format!("{} b", e.buffer_size),
        "buffer_size",
    );
    if let Some(idle) = e.idle_timeout {
        entry(
            out,
            "table.exec.source.idle-timeout",
            &duration("idle_timeout", idle)?,
            "idle_timeout",
        );
    }
    match e.checkpoint_interval {
        Some(t) => entry(
            out,
            "execution.checkpointing.interval",
            &duration("checkpoint_interval", t)?,
            "checkpoint_interval",
        ),
        None => out.push_str("    # checkpoint_interval: none, so no checkpoints\n"),
    }
    match e.state_backend {
        StateBackendKind::Heap => entry(out, "state.backend.type", "hashmap", "state_backend = heap"),
        StateBackendKind::Lsm | StateBackendKind::LsmChangelog => {
            entry(out, "state.backend.type", "rocksdb", "state_backend");
            entry(out, "execution.checkpointing.incremental", "true", "state_backend");
        }
    }
    if e.state_backend == StateBackendKind::LsmChangelog {
        entry(out, "state.changelog.enabled", "true", "state_backend = lsm_changelog");
        entry(
            out,
            "state.changelog.storage",
            "filesystem",
            "state_backend = lsm_changelog (base path: --checkpoint)",
        );
    }
    entry(
        out,
        "restart-strategy.type",
        "none",
        "the feeder's stream cannot be replayed",
    );
    entry(
        out,
        "web.checkpoints.history",
        "1000",
        "every checkpoint stays readable for the progress file",
    );
    for (key, value) in conf {
        let _ = writeln!(out, "    {}: {},  # conf", py_literal(key), py_literal(value));
    }
    out.push_str("}\n");
    let bound = millis(e.out_of_orderness).map_err(|r| FlinkRefusal::engine("out_of_orderness", r))?;
    let _ = writeln!(
        out,
        "# out_of_orderness {} + 1 ms: Flink's BoundedOutOfOrdernessWatermarks (max - bound - 1)",
        e.out_of_orderness
    );
    let _ = writeln!(
        out,
        "WATERMARK = \"event_ts - INTERVAL '{}' SECOND\"\n",
        seconds(bound + 1)
    );
    Ok(())
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

/// One `FLINK_CONF` entry, with the streamlab key it comes from.
fn entry(out: &mut String, key: &str, value: &str, from: &str) {
    let _ = writeln!(out, "    \"{key}\": \"{value}\",  # {from}");
}

/// Milliseconds as seconds with up to three decimals (`201` → `0.201`).
fn seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// The translated pipeline: the receiver's columns, the views and the `INSERT`.
fn pipeline_section(out: &mut String, p: &PipelineSpec, sql: &sql::PipelineSql) {
    out.push_str("# ---------------------------------------------------------------------------------------------\n");
    out.push_str("# The pipeline, translated: Flink SQL over the `events` and `receiver` tables.\n");
    out.push_str("#\n");
    for step in describe_pipeline(p, "table function campaign_of") {
        let _ = writeln!(out, "#   {step}");
    }
    out.push_str("#\n");
    if p.join.is_some() {
        out.push_str(
            "# Rows: shape (pair, left_only, right_only), left_seq, right_seq (-1: absent), window_start_ms\n\
             # (a window join's pair, else 0), origin_arrival_ns (the later-arriving record's arrival).\n",
        );
    } else if p.top_n.is_some() {
        out.push_str(
            "# Rows: shape (ranked), left_seq (the ranked record), right_seq (-1), window_start_ms, then\n\
             # origin_arrival_ns (the record's scheduled arrival).\n",
        );
    } else if p.is_stateful() {
        out.push_str(
            "# Rows: key, window_start_ms, window_end_ms, count, value, is_update (false: final results),\n\
             # origin_arrival_ns (the latest arrival of a contributing event: streamlab's latency origin).\n",
        );
    } else {
        out.push_str(
            "# Rows: seq (the event's position in the stream), the projected columns, then\n\
             # origin_arrival_ns (the event's scheduled arrival: streamlab's latency origin).\n",
        );
    }
    out.push_str("# ---------------------------------------------------------------------------------------------\n\n");
    out.push_str("SINK_COLUMNS = \"\"\"");
    for (i, col) in sql.sink_columns.iter().enumerate() {
        let sep = if i + 1 < sql.sink_columns.len() { "," } else { "" };
        let _ = write!(out, "\n    {col}{sep}");
    }
    out.push_str("\"\"\"\n");
    out.push_str("PIPELINE = [");
    for view in &sql.views {
        let _ = write!(out, "\n    \"\"\"{view}\"\"\",");
    }
    if !sql.views.is_empty() {
        out.push('\n');
    }
    out.push_str("]\n");
    let _ = writeln!(out, "INSERT = \"\"\"{}\"\"\"", sql.insert);
}
