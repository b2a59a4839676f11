//! The run's `summary.json`: a stable, documented schema, and a side-by-side text table.
//!
//! `summary.json` is what scripts and the HTML report read, so its shape is a contract: every
//! field is documented here, field names never change meaning, and any incompatible change
//! bumps [`SCHEMA_VERSION`]. Readers should ignore fields they do not know (new fields may be
//! added without a version bump). Latencies are milliseconds (`_ms`), throughput is events
//! per second (`_eps`), durations are seconds (`_s`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::NANOS_PER_MILLI;

/// The version of the `summary.json` schema this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole of `summary.json`: one scenario run under one or more engine configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Version of this schema; [`SCHEMA_VERSION`] (1) for files written by this crate.
    pub schema_version: u32,
    /// Name of the scenario that was run (its file stem or its `name` key).
    pub scenario: String,
    /// Seed of the workload generator; the same scenario and seed reproduce the run.
    pub seed: u64,
    /// The clock the run used: `"live"` (OS threads, real cost) or `"simulated"` (virtual
    /// time driven by a calibrated cost model).
    pub clock: String,
    /// Length of the run in seconds, on the run's clock.
    pub duration_s: f64,
    /// Quantities that were measured on this machine (for example `"processing"`).
    pub measured: Vec<String>,
    /// Quantities that come from a configured or calibrated model rather than a measurement
    /// (for example `"scheduling overhead"`, or everything under the simulated clock).
    pub modelled: Vec<String>,
    /// One entry per engine configuration that ran, in the order they ran.
    pub runs: Vec<RunSummary>,
    /// Set when the run was interrupted (Ctrl-C): the runs above hold what was made until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

/// When and where a run was interrupted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interrupted {
    /// When, UTC (RFC 3339).
    pub at_utc: String,
    /// The engine run under way then (the last of `runs`), if one was.
    pub engine: Option<String>,
    /// How far that run's clock had got when it stopped, seconds.
    pub at_s: Option<f64>,
    /// The engine runs that never started.
    pub not_run: Vec<String>,
}

/// The results of one engine configuration over the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Short name of the run, unique within the summary (used as a column title and file
    /// name part, for example `"spark-1s"`).
    pub name: String,
    /// Execution model: `"micro-batch"` (Spark Structured Streaming style) or `"per-record"`
    /// (Flink style).
    pub model: String,
    /// The engine configuration as given in the scenario, verbatim.
    pub config: serde_json::Value,
    /// End-to-end latency of outputs, measured from each input's *scheduled* time (a backlog
    /// counts), in milliseconds.
    pub latency_ms: LatencySummary,
    /// Latency measured from event time instead (includes out-of-orderness and watermark
    /// delay), in milliseconds; `null` when the pipeline has no event-time semantics.
    #[serde(default)]
    pub event_time_latency_ms: Option<LatencySummary>,
    /// Mean of each latency component over all outputs, in milliseconds, keyed by component
    /// name (for example `"trigger_wait"`, `"processing"`, `"commit"`). Components differ
    /// between models; a component a run does not have is absent.
    #[serde(default)]
    pub components_ms: BTreeMap<String, f64>,
    /// Input events processed per second of run time; with measurement rounds
    /// (`throughput_runs_eps`), their median.
    pub throughput_eps: f64,
    /// Every run's throughput when the scenario repeats its native engines (`repeat`), in round
    /// order, the kept run last: `throughput_eps` is then their median and
    /// `resources.throughput_eps_per_core` the median's share per core. Empty (absent) when the
    /// engine ran once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput_runs_eps: Vec<f64>,
    /// Cores the run used, throughput per core, and resident memory.
    #[serde(default)]
    pub resources: Resources,
    /// Counters of what happened during the run.
    pub counts: Counts,
    /// Whether the run kept up with its input, judged from its measured backlog and latency
    /// trend (absent in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<Stability>,
    /// Free-text remarks for people (for example why a run did not keep up).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Injected failures, in order (absent when there were none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailureMark>,
    /// What the failures cost, against a failure-free run of the same scenario (absent when
    /// nothing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
}

/// Whether a run kept up with its input: judged from what was measured — unread events at the
/// end, the input each batch read, the latency trend — not from the trigger rule alone. A
/// micro-batch query whose batches take longer than its trigger interval runs them back to
/// back; that is [`Stability::BehindTrigger`] while the backlog and latency stay bounded, and
/// [`Stability::CannotKeepUp`] only once they grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stability {
    /// Latency and backlog bounded; batches (if any) start on their trigger.
    KeepsUp,
    /// Batches overran the trigger interval and ran back to back, but the backlog and latency
    /// stayed bounded: the interval is below the per-batch cost (Spark's "Current batch is
    /// falling behind"), and the query keeps up with the input.
    BehindTrigger,
    /// The backlog or latency grew: the input arrives faster than the engine processes it.
    CannotKeepUp,
    /// No output at all, so no latency to judge (see the run's notes for why).
    NoOutput,
}

impl Stability {
    /// A short cell for tables: `keeps up`, `behind trigger, keeps up`, `CANNOT KEEP UP`,
    /// `no output`.
    pub fn cell(self) -> &'static str {
        match self {
            Self::KeepsUp => "keeps up",
            Self::BehindTrigger => "behind trigger, keeps up",
            Self::CannotKeepUp => "CANNOT KEEP UP",
            Self::NoOutput => "no output",
        }
    }

    /// Whether the run kept up with its input (latency bounded): true for
    /// [`Stability::KeepsUp`] and [`Stability::BehindTrigger`].
    pub fn keeps_up(self) -> bool {
        matches!(self, Self::KeepsUp | Self::BehindTrigger)
    }
}

impl RunSummary {
    /// Whether the run delivered outputs, so its latency figures were measured (over zero
    /// outputs they are zeros that mean nothing, and tables show `-`).
    pub fn has_latency(&self) -> bool {
        self.counts.outputs > 0 && self.latency_ms.count > 0
    }

    /// The p99 latency for ranking runs by latency: infinite for a run with no outputs, so it
    /// never ranks as the fastest.
    pub fn p99_for_ranking(&self) -> f64 {
        if self.has_latency() {
            self.latency_ms.p99
        } else {
            f64::INFINITY
        }
    }
}

/// An injected failure on the run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureMark {
    /// What failed (for example `"crash"`).
    pub kind: String,
    /// When, ms since the run started.
    pub at_ms: f64,
    /// When the engine ran again, ms since the run started (`null`: it did not).
    pub recovered_ms: Option<f64>,
}

/// What a run used of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Cores the engine ran on: its workers (micro-batch) or parallelism (per-record), at most
    /// the machine's cores on the live clock.
    pub cores: usize,
    /// `throughput_eps / cores`.
    pub throughput_eps_per_core: f64,
    /// Resident memory of the process when the engine started, its input already in memory,
    /// bytes (live clock, Linux): growth over the run is `final - start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rss_bytes: Option<u64>,
    /// Peak resident memory of the process during the run, bytes (live clock, Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Resident memory at the end of the run, bytes (live clock, Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_rss_bytes: Option<u64>,
    /// `throughput_eps_per_core` over the fastest real engine's (Spark, Flink, Kafka Streams)
    /// of the same run, when the run has a real engine that read anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_core_vs_fastest_real: Option<f64>,
}

/// The cost of a run's failures, measured against a failure-free run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Failure → first output after the restart, ms (the longest over the run's failures;
    /// `null` when no output followed).
    pub downtime_ms: Option<f64>,
    /// Failure → latency back within 20 % of the pre-failure p99 for good, ms (the longest;
    /// `null` when it never came back).
    pub catch_up_ms: Option<f64>,
    /// Events read again after restarts.
    pub replayed: u64,
    /// Outputs delivered more often than in the failure-free run.
    pub duplicates: u64,
    /// Outputs of the failure-free run missing from this one.
    pub losses: u64,
    /// Task attempts that failed and were run again without restarting the query
    /// (micro-batch task failures and lost workers).
    #[serde(default)]
    pub task_retries: u64,
}

/// Summary statistics of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median, in milliseconds.
    pub p50: f64,
    /// 95th percentile, in milliseconds.
    pub p95: f64,
    /// 99th percentile, in milliseconds.
    pub p99: f64,
    /// 99.9th percentile, in milliseconds.
    pub p999: f64,
    /// Largest recorded value, in milliseconds.
    pub max: f64,
    /// Arithmetic mean, in milliseconds.
    pub mean: f64,
    /// Number of recorded values (outputs measured).
    pub count: u64,
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Input events consumed by the engine.
    pub events: u64,
    /// Records emitted by the sink.
    pub outputs: u64,
    /// Micro-batches executed (0 for per-record runs).
    pub batches: u64,
    /// Times the engine fell behind its schedule: a micro-batch whose processing took longer
    /// than the trigger interval, or a per-record source that could not keep its rate.
    pub falling_behind: u64,
    /// Events dropped because they arrived behind the watermark.
    pub late_dropped: u64,
    /// Keyed-state accesses (a window update is one: get, modify, put).
    #[serde(default)]
    pub state_accesses: u64,
    /// Total time in them, ns: measured on the wall clock in a live run, priced by the cost
    /// profile in a simulated one.
    #[serde(default)]
    pub state_access_time_ns: u64,
    /// The most rows a join, deduplication or top-N held in state at once (absent for other
    /// pipelines).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peak_state_rows: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    /// Mean time per state access, ns (none without state).
    pub fn state_access_ns(&self) -> Option<f64> {
        (self.state_accesses > 0).then(|| self.state_access_time_ns as f64 / self.state_accesses as f64)
    }
}

impl LatencySummary {
    /// Summarises a histogram of latencies recorded in **nanoseconds**, converting to
    /// milliseconds. An empty histogram gives all zeros.
    ///
    /// # Examples
    ///
    /// ```
    /// use hdrhistogram::Histogram;
    /// use streamlab_reports::summary::LatencySummary;
    /// let mut hist = Histogram::<u64>::new(3).unwrap();
    /// hist.record(2_000_000).unwrap();
    /// let summary = LatencySummary::from_histogram(&hist);
    /// assert_eq!(summary.count, 1);
    /// assert!((summary.p50 - 2.0).abs() < 0.01);
    /// ```
    pub fn from_histogram(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        let ms = |ns: u64| ns as f64 / NANOS_PER_MILLI;
        Self {
            p50: ms(hist.value_at_quantile(0.5)),
            p95: ms(hist.value_at_quantile(0.95)),
            p99: ms(hist.value_at_quantile(0.99)),
            p999: ms(hist.value_at_quantile(0.999)),
            max: ms(hist.max()),
            mean: hist.mean() / NANOS_PER_MILLI,
            count: hist.len(),
        }
    }
}

impl Summary {
    /// Writes the summary as pretty-printed JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let io_error = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = BufWriter::new(File::create(path).map_err(io_error)?);
        serde_json::to_writer_pretty(&mut out, self).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        out.write_all(b"\n").map_err(io_error)?;
        out.flush().map_err(io_error)
    }
}

/// Renders the runs of `summary` side by side: one column per run, one row per quantity.
///
/// Rows: model; p50, p95, p99 and max latency; the mean of every latency component that any
/// run has (`-` where a run lacks it); throughput; and the counters. Numbers are
/// right-aligned; with up to six runs of short names it fits a 100-column terminal.
pub fn side_by_side_table(summary: &Summary) -> String {
    let runs = &summary.runs;
    let ms = |x: f64| format!("{x:.3}");
    let count = |x: u64| x.to_string();

    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&RunSummary) -> String| {
        rows.push((label.to_string(), runs.iter().map(cell).collect()));
    };
    row("model", &|r| r.model.clone());
    // Over zero outputs there is no latency: `-`, never a 0.000 that reads as measured.
    let latency = |r: &RunSummary, x: f64| if r.has_latency() { ms(x) } else { "-".to_string() };
    row("mean latency (ms)", &|r| latency(r, r.latency_ms.mean));
    row("p50 latency (ms)", &|r| latency(r, r.latency_ms.p50));
    row("p95 latency (ms)", &|r| latency(r, r.latency_ms.p95));
    row("p99 latency (ms)", &|r| latency(r, r.latency_ms.p99));
    row("max latency (ms)", &|r| latency(r, r.latency_ms.max));
    let components: BTreeSet<&String> = runs.iter().flat_map(|r| r.components_ms.keys()).collect();
    for component in components {
        row(&format!("{component} (ms)"), &|r| {
            r.components_ms
                .get(component)
                .map_or_else(|| "-".to_string(), |&x| latency(r, x))
        });
    }
    row("throughput (events/s)", &|r| format!("{:.0}", r.throughput_eps));
    row("per core (events/s)", &|r| {
        format!("{:.0}", r.resources.throughput_eps_per_core)
    });
    if runs.iter().any(|r| !r.throughput_runs_eps.is_empty()) {
        // The spread behind a median: `runs: min-max` in millions.
        row("throughput runs (M/s)", &|r| {
            let runs = &r.throughput_runs_eps;
            let (min, max) = runs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
            if runs.is_empty() {
                "-".to_string()
            } else {
                format!("{}: {:.1}-{:.1}", runs.len(), min / 1e6, max / 1e6)
            }
        });
    }
    if runs.iter().any(|r| r.resources.per_core_vs_fastest_real.is_some()) {
        row("per core / fastest real", &|r| {
            r.resources
                .per_core_vs_fastest_real
                .map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"))
        });
    }
    if runs.iter().any(|r| r.resources.peak_rss_bytes.is_some()) {
        let mib = |b: Option<u64>| b.map_or_else(|| "-".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0));
        row("start RSS (MiB)", &|r| mib(r.resources.start_rss_bytes));
        row("peak RSS (MiB)", &|r| mib(r.resources.peak_rss_bytes));
        row("final RSS (MiB)", &|r| mib(r.resources.final_rss_bytes));
    }
    row("events", &|r| count(r.counts.events));
    row("outputs", &|r| count(r.counts.outputs));
    row("batches", &|r| count(r.counts.batches));
    row("falling behind", &|r| count(r.counts.falling_behind));
    if runs.iter().any(|r| r.stability.is_some()) {
        row("keeping up", &|r| r.stability.map_or("-", Stability::cell).to_string());
    }
    row("late dropped", &|r| count(r.counts.late_dropped));
    if runs.iter().any(|r| r.counts.state_accesses > 0) {
        row("state access (ns)", &|r| {
            r.counts
                .state_access_ns()
                .map_or_else(|| "-".into(), |ns| format!("{ns:.1}"))
        });
    }
    if runs.iter().any(|r| r.counts.peak_state_rows > 0) {
        row("peak state (rows)", &|r| count(r.counts.peak_state_rows));
    }
    if runs.iter().any(|r| r.recovery.is_some()) {
        let opt_ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), ms);
        row("failures", &|r| count(r.failures.len() as u64));
        row("downtime (ms)", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| opt_ms(x.downtime_ms))
        });
        row("catch-up (ms)", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| opt_ms(x.catch_up_ms))
        });
        row("replayed", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| count(x.replayed))
        });
        row("task retries", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| count(x.task_retries))
        });
        row("duplicates", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| count(x.duplicates))
        });
        row("losses", &|r| {
            r.recovery.map_or_else(|| "-".into(), |x| count(x.losses))
        });
    }

    let label_width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let widths: Vec<usize> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            rows.iter()
                .map(|(_, cells)| cells[i].len())
                .chain([run.name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut table = String::new();
    let mut line = |label: &str, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = format!("{label:<label_width$}");
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, "  {cell:>width$}");
        }
        table.push_str(text.trim_end());
        table.push('\n');
    };
    line("", &mut runs.iter().map(|r| r.name.as_str()));
    let rules: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    line(&"-".repeat(label_width), &mut rules.iter().map(String::as_str));
    for (label, cells) in &rows {
        line(label, &mut cells.iter().map(String::as_str));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, model: &str, components: &[(&str, f64)]) -> RunSummary {
        RunSummary {
            name: name.to_string(),
            model: model.to_string(),
            config: serde_json::json!({ "trigger_ms": 1000 }),
            latency_ms: LatencySummary {
                p50: 512.25,
                p95: 950.0,
                p99: 990.5,
                p999: 999.0,
                max: 1003.125,
                mean: 500.0,
                count: 10_000,
            },
            event_time_latency_ms: None,
            components_ms: components.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            throughput_eps: 10_000.4,
            throughput_runs_eps: Vec::new(),
            resources: Resources::default(),
            counts: Counts {
                events: 100_000,
                outputs: 4_200,
                batches: 10,
                falling_behind: 2,
                late_dropped: 7,
                ..Default::default()
            },
            stability: None,
            notes: vec![],
            failures: Vec::new(),
            recovery: None,
        }
    }

    fn summary() -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            scenario: "clickstream".to_string(),
            seed: 42,
            clock: "simulated".to_string(),
            duration_s: 10.0,
            measured: vec![],
            modelled: vec!["everything".to_string()],
            runs: vec![
                run(
                    "spark-1s",
                    "micro-batch",
                    &[("trigger_wait", 500.0), ("processing", 3.5)],
                ),
                run("flink", "per-record", &[("buffer_wait", 0.25), ("processing", 0.125)]),
            ],
            interrupted: None,
        }
    }

    fn cells<'t>(table: &'t str, label: &str) -> Vec<&'t str> {
        let line = table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label} in\n{table}"));
        line[label.len()..].split_whitespace().collect()
    }

    #[test]
    fn table_has_one_column_per_run_and_dashes_for_absent_components() {
        let table = side_by_side_table(&summary());
        println!("{table}");
        assert_eq!(cells(&table, ""), ["spark-1s", "flink"]);
        assert_eq!(cells(&table, "model"), ["micro-batch", "per-record"]);
        assert_eq!(cells(&table, "p50 latency (ms)"), ["512.250", "512.250"]);
        assert_eq!(cells(&table, "trigger_wait (ms)"), ["500.000", "-"]);
        assert_eq!(cells(&table, "buffer_wait (ms)"), ["-", "0.250"]);
        assert_eq!(cells(&table, "throughput (events/s)"), ["10000", "10000"]);
        assert!(!table.contains("throughput runs"), "no row without rounds: {table}");
        assert_eq!(cells(&table, "late dropped"), ["7", "7"]);
        assert!(table.lines().all(|l| l.len() <= 100));
        // Columns are aligned: every line has the same width up to trailing spaces.
        let widths: BTreeSet<usize> = table.lines().skip(1).map(str::len).collect();
        assert_eq!(widths.len(), 1, "{table}");
    }

    #[test]
    fn measurement_rounds_show_their_count_and_spread() {
        let mut summary = summary();
        summary.runs[0].throughput_runs_eps = vec![2.5e6, 1.25e6, 2e6];
        let table = side_by_side_table(&summary);
        assert_eq!(cells(&table, "throughput runs (M/s)"), ["3:", "1.2-2.5", "-"]);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["runs"][0]["throughput_runs_eps"][1], 1.25e6);
        assert!(json["runs"][1].get("throughput_runs_eps").is_none());
    }

    #[test]
    fn summary_json_round_trips_with_documented_field_names() {
        let summary = summary();
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["runs"][0]["latency_ms"]["p999"], 999.0);
        assert_eq!(json["runs"][1]["counts"]["falling_behind"], 2);
        assert!(json["runs"][0]["event_time_latency_ms"].is_null());
        let back: Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn latency_summary_converts_nanoseconds_to_milliseconds() {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for ms in 1..=1000u64 {
            hist.record(ms * 1_000_000).unwrap();
        }
        let s = LatencySummary::from_histogram(&hist);
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() < 0.5, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() < 1.0, "{s:?}");
        assert!((s.mean - 500.5).abs() < 0.5, "{s:?}");
    }

    #[test]
    fn latency_summary_of_empty_histogram_is_all_zeros() {
        let hist = Histogram::<u64>::new(3).unwrap();
        assert_eq!(LatencySummary::from_histogram(&hist), LatencySummary::default());
    }

    #[test]
    fn write_json_names_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("summary.json");
        let err = summary().write_json(&path).unwrap_err();
        assert!(err.to_string().contains("summary.json"), "{err}");
    }
}
