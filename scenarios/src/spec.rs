//! A scenario file, read into a validated [`Scenario`].
//!
//! A scenario is what a user runs: one workload, one pipeline, and the engines that run the
//! pipeline over that workload side by side. It is written by hand, so reading it is where
//! typos and out-of-range values must be caught, each with the file, the line and the dotted
//! key path (see [`crate::error`]). Nothing is silently dropped: an unknown key anywhere is an
//! error, never a fallback to a default.
//!
//! # The file format
//!
//! ```toml
//! name = "quickstart"                 # required
//! description = "what it shows"       # optional, one line
//! seed = 42                           # default 1
//! duration = "10s"                    # how long the workload runs (events arrive during it); > 0
//! drain = "3s"                        # how long engines keep running after the last arrival; default "2s"
//! clock = "live"                      # "live" (default) | "simulated"
//! profile = "local"                   # simulated clock: cost profile, built-in name or file
//!
//! [cluster]                           # simulated clock: the cluster (live: this machine)
//! nodes = 1
//! cores_per_node = 2
//!
//! [slo]                               # optional: what the decision report recommends against
//! p99 = "2s"                          # also p50, recovery, min_throughput_eps
//!
//! [[failure]]                         # optional, repeatable: an injected failure
//! kind = "crash"
//! at = "20s"                          # or: batch = 12, phase = "addBatch" (micro-batch)
//! engine = "micro-batch 1s"           # optional: only this engine run
//!
//! [workload]                          # the clickstream generator's keys (ClickstreamConfig)...
//! partitions = 4
//! rate = { profile = "constant", events_per_second = 20000 }
//! # ...or a trace file instead:  trace = "traces/day1.csv"
//! # (relative to the scenario file; then `trace` is the only key allowed in [workload])
//!
//! [pipeline]                          # PipelineSpec
//! filter_kinds = ["click"]
//! lookup_join = true
//! [pipeline.aggregate]
//! key_by = "campaign"
//! window = { kind = "tumbling", size = "10s" }
//! function = "count"
//!
//! [[engine]]                          # one or more engine runs, side by side
//! name = "micro-batch 1s"             # required, unique
//! model = "micro-batch"               # "micro-batch" | "per-record"
//! trigger = { kind = "processing_time", interval = "1s" }
//! # the remaining keys: MicroBatchConfig (micro-batch) or DataflowConfig (per-record)
//! ```
//!
//! Durations are written as [`Span`]s (`"250ms"`, `"1s"`, ...). A missing `[workload]` table
//! means the default clickstream generator, a missing `[pipeline]` the default stateless
//! pipeline; `[[engine]]` is required.
//!
//! # How errors find their line
//!
//! The file is parsed once with `toml_edit`, which keeps the byte span of every key and value.
//! Each section is deserialized with serde from its parsed (still spanned) table, so the
//! components' `deny_unknown_fields` applies and a serde error carries the span of the key or
//! value at fault; that span is mapped back to a key path by walking the document. Errors of
//! the components' own `validate()` come with a key relative to their table; the path is
//! prefixed with the table's and its line looked up in the document (falling back to the
//! nearest enclosing key that exists).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};
use streamlab_engines::cluster::Cluster;
use streamlab_engines::cost::Slowdown;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::fault::{BatchPhase, CheckpointPhase, CrashPoint};
use streamlab_engines::microbatch::MicroBatchConfig;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::time::Nanos;
use streamlab_engines::time::Span;
use streamlab_workloads::ClickstreamConfig;
use toml_edit::{DocumentMut, ImDocument, Item, Table, TableLike, Value};

use crate::error::{Result, ScenarioError};

/// Which clock a scenario runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Real threads and the wall clock: a benchmark.
    #[default]
    Live,
    /// Virtual time, single-threaded and deterministic: a simulator.
    Simulated,
}

impl ClockKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Simulated => "simulated",
        }
    }
}

/// Where a scenario's events come from (the `[workload]` table).
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadSpec {
    /// The seeded clickstream generator.
    Clickstream(ClickstreamConfig),
    /// A recorded trace file, replayed.
    Trace {
        /// The trace file, resolved against the scenario file's directory.
        path: PathBuf,
    },
}

/// An execution model and its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Spark Structured Streaming style micro-batching (`model = "micro-batch"`).
    MicroBatch(MicroBatchConfig),
    /// Flink style per-record streaming (`model = "per-record"`).
    PerRecord(DataflowConfig),
}

impl EngineKind {
    /// The values `model` may take, in scenario-file spelling.
    pub const MODELS: [&'static str; 2] = ["micro-batch", "per-record"];

    /// The model's name in scenario files: `"micro-batch"` or `"per-record"`.
    pub fn model(&self) -> &'static str {
        match self {
            Self::MicroBatch(_) => Self::MODELS[0],
            Self::PerRecord(_) => Self::MODELS[1],
        }
    }
}

/// One engine run of a scenario (an `[[engine]]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSpec {
    /// The name shown in reports; unique within the scenario.
    pub name: String,
    /// The execution model and its configuration.
    pub kind: EngineKind,
}

impl EngineSpec {
    /// The model's name in scenario files: `"micro-batch"` or `"per-record"`.
    pub fn model(&self) -> &'static str {
        self.kind.model()
    }
}

/// A validated scenario: everything needed to run it, and the text it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it was read from (as given; used in messages).
    pub path: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// A one-line description, if given.
    pub description: Option<String>,
    /// Seed of the workload generator.
    pub seed: u64,
    /// How long events arrive (> 0).
    pub duration: Span,
    /// How long engines keep running after the last arrival.
    pub drain: Span,
    /// Which clock to run on.
    pub clock: ClockKind,
    /// The cost profile the simulated clock prices work with: a built-in name or a path
    /// relative to the scenario file.
    pub profile: String,
    /// The simulated cluster (the live clock runs on this machine and refuses more than one node).
    pub cluster: Cluster,
    /// The service-level objective the decision report recommends against, if stated.
    pub slo: Option<Slo>,
    /// Injected failures, in file order.
    pub failures: Vec<FailureSpec>,
    /// Where the events come from.
    pub workload: WorkloadSpec,
    /// What every engine computes.
    pub pipeline: PipelineSpec,
    /// The engine runs, in file order; at least one, names unique.
    pub engines: Vec<EngineSpec>,
    /// The file's text, kept for reproducibility (copied into results).
    pub source_text: String,
}

/// An injected failure (`[[failure]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    /// What fails: `crash`, `straggler`, `source_outage`, `rate_spike` or `slow_state`.
    pub kind: FailureKindName,
    /// When it strikes (a crash: at the first phase boundary at or after it).
    #[serde(default)]
    pub at: Option<Span>,
    /// How long it lasts (all kinds but `crash`).
    #[serde(default)]
    pub duration: Option<Span>,
    /// How many times slower (`straggler`, `slow_state`) or faster the input comes
    /// (`rate_spike`).
    #[serde(default)]
    pub factor: Option<f64>,
    /// The straggling worker (a core of the simulated cluster).
    #[serde(default)]
    pub worker: Option<usize>,
    /// What a crash takes down: `job` (default) or `driver` — the whole query restarts from its
    /// checkpoint — or `task`: one task fails and is retried (a micro-batch query keeps running;
    /// a per-record job restarts as a whole, Flink's full failover).
    #[serde(default)]
    pub scope: Option<CrashScope>,
    /// Micro-batch: crash in this batch ...
    #[serde(default)]
    pub batch: Option<u64>,
    /// ... when it reaches this phase (latestOffset, walCommit, getBatch, queryPlanning, addBatch,
    /// sinkCommit, commitOffsets).
    #[serde(default)]
    pub phase: Option<BatchPhase>,
    /// Per-record: crash when this checkpoint (1 is the first) ...
    #[serde(default)]
    pub checkpoint: Option<u64>,
    /// ... reaches this phase (`trigger`, `snapshot` — the default — or `notify`).
    #[serde(default)]
    pub checkpoint_phase: Option<CheckpointPhase>,
    /// The engine run it strikes (by name); all engines when absent.
    #[serde(default)]
    pub engine: Option<String>,
}

/// What a crash takes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashScope {
    /// The whole job.
    Job,
    /// The driver (Spark) or job manager (Flink): the job restarts from its checkpoint.
    Driver,
    /// One task.
    Task,
    /// One worker (a Spark executor, a Flink task manager), lost at `at` and replaced after
    /// `duration`: Spark retries its running tasks on the other executors; Flink restarts the job
    /// from its last checkpoint.
    Worker,
}

/// The kinds of failure a scenario can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKindName {
    /// The whole job crashes and is restarted from its checkpoint.
    Crash,
    /// One worker runs `factor` times slower for `duration` (simulated clock).
    Straggler,
    /// The source system is down for `duration`: events queue up and are readable after.
    SourceOutage,
    /// The input rate is `factor` times higher for `duration` (constant-rate workloads).
    RateSpike,
    /// Keyed-state updates are `factor` times slower for `duration` (simulated clock).
    SlowState,
}

impl FailureSpec {
    /// Whether this failure strikes the engine run named `engine` (all do when none is named).
    pub fn strikes(&self, engine: &str) -> bool {
        self.engine.as_deref().is_none_or(|e| e == engine)
    }

    /// The slowdown this failure causes to an engine's work, if it is a straggler or a slow
    /// state store that strikes the engine.
    pub fn slowdown(&self, engine: &str) -> Option<Slowdown> {
        if !self.strikes(engine) {
            return None;
        }
        let (from, duration, factor) = (self.at?.nanos(), self.duration?.nanos(), self.factor?);
        match self.kind {
            FailureKindName::Straggler => Some(Slowdown {
                from,
                to: from + duration,
                factor,
                worker: Some(self.worker.unwrap_or(0)),
                state_only: false,
            }),
            FailureKindName::SlowState => Some(Slowdown {
                from,
                to: from + duration,
                factor,
                worker: None,
                state_only: true,
            }),
            _ => None,
        }
    }

    /// When a task of a micro-batch engine fails and is retried, if this failure is one.
    pub fn task_failure(&self, engine: &EngineSpec) -> Option<Nanos> {
        (self.strikes(&engine.name) && self.kind == FailureKindName::Crash && self.scope == Some(CrashScope::Task))
            .then_some(())
            .filter(|_| matches!(engine.kind, EngineKind::MicroBatch(_)))
            .and(self.at.map(|a| a.nanos()))
    }

    /// The worker a micro-batch engine loses, as `(worker, from, to)`, if this failure is one.
    pub fn worker_loss(&self, engine: &EngineSpec) -> Option<(usize, Nanos, Nanos)> {
        if !self.strikes(&engine.name) || self.kind != FailureKindName::Crash || self.scope != Some(CrashScope::Worker)
        {
            return None;
        }
        if !matches!(engine.kind, EngineKind::MicroBatch(_)) {
            return None;
        }
        let (from, duration) = (self.at?.nanos(), self.duration?.nanos());
        Some((self.worker.unwrap_or(0), from, from + duration))
    }

    /// The crash point for an engine, if this failure restarts it. A task failure restarts a
    /// per-record job (full failover) but not a micro-batch query (the task is retried).
    pub fn crash_point(&self, engine: &EngineSpec) -> Option<CrashPoint> {
        if !self.strikes(&engine.name) || self.kind != FailureKindName::Crash {
            return None;
        }
        if matches!(self.scope, Some(CrashScope::Task | CrashScope::Worker))
            && matches!(engine.kind, EngineKind::MicroBatch(_))
        {
            return None;
        }
        if let Some(checkpoint) = self.checkpoint {
            return Some(CrashPoint::InCheckpoint {
                checkpoint,
                phase: self.checkpoint_phase.unwrap_or(CheckpointPhase::Snapshot),
            });
        }
        match (self.at, self.batch, self.phase) {
            (Some(at), _, _) => Some(CrashPoint::At(at.nanos())),
            (None, Some(batch), phase) => Some(CrashPoint::InBatch {
                batch,
                phase: phase.unwrap_or(BatchPhase::AddBatch),
            }),
            _ => None,
        }
    }

    fn validate(&self, engines: &[EngineSpec]) -> std::result::Result<(), (&'static str, String)> {
        if self.kind != FailureKindName::Crash {
            let at = self
                .at
                .ok_or(("at", "say when it starts, e.g. `at = \"20s\"`".to_string()))?;
            let _ = at;
            match self.duration {
                Some(d) if d.nanos() > 0 => {}
                _ => {
                    return Err((
                        "duration",
                        "say how long it lasts, e.g. `duration = \"5s\"` (> 0)".into(),
                    ))
                }
            }
            if self.batch.is_some() || self.phase.is_some() {
                return Err((
                    "batch",
                    "`batch` and `phase` place a crash; this failure takes `at` and `duration`".into(),
                ));
            }
            let needs_factor = self.kind != FailureKindName::SourceOutage;
            match self.factor {
                Some(f) if needs_factor && f.is_finite() && f >= 1.0 => {}
                None if !needs_factor => {}
                Some(_) if !needs_factor => return Err(("factor", "a source outage takes no factor".into())),
                Some(f) => return Err(("factor", format!("{f} is out of range; must be a number >= 1"))),
                None => {
                    return Err((
                        "factor",
                        "say how many times slower (or faster, for a spike), e.g. `factor = 4.0`".into(),
                    ))
                }
            }
            if self.worker.is_some() && self.kind != FailureKindName::Straggler {
                return Err(("worker", "only a straggler names a worker".into()));
            }
            if self.engine.is_some() && matches!(self.kind, FailureKindName::SourceOutage | FailureKindName::RateSpike)
            {
                return Err((
                    "engine",
                    "the source and the input rate are shared by every engine run; remove `engine`".into(),
                ));
            }
        } else if self.scope == Some(CrashScope::Worker) {
            if self.at.is_none() {
                return Err(("at", "a worker loss takes `at`, the instant the worker is lost".into()));
            }
            if self.duration.is_none_or(|d| d.nanos() == 0) {
                return Err((
                    "duration",
                    "say how long until the worker is replaced, e.g. `duration = \"30s\"` (> 0)".into(),
                ));
            }
            if self.factor.is_some() || self.batch.is_some() || self.phase.is_some() {
                return Err((
                    "factor",
                    "a worker loss takes `at`, `duration` and `worker`, not `factor`, `batch` or `phase`".into(),
                ));
            }
        } else if self.scope == Some(CrashScope::Task) && self.at.is_none() {
            return Err(("at", "a task failure takes `at`, the instant it strikes".into()));
        } else if self.duration.is_some() || self.factor.is_some() || self.worker.is_some() {
            return Err((
                "duration",
                "a crash takes `at` (or `batch` and `phase`), not `duration`, `factor` or `worker`".into(),
            ));
        }
        if let Some(name) = &self.engine {
            if !engines.iter().any(|e| &e.name == name) {
                let names: Vec<String> = engines.iter().map(|e| format!("`{}`", e.name)).collect();
                return Err((
                    "engine",
                    format!(
                        "`{name}` is not an engine of this scenario; the engines are {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        if self.checkpoint_phase.is_some() && self.checkpoint.is_none() {
            return Err((
                "checkpoint_phase",
                "`checkpoint_phase` goes with `checkpoint = N`".into(),
            ));
        }
        if let Some(n) = self.checkpoint {
            if self.kind != FailureKindName::Crash || self.scope.is_some_and(|s| s != CrashScope::Job) {
                return Err(("checkpoint", "only a job crash is placed in a checkpoint".into()));
            }
            if self.at.is_some() || self.batch.is_some() || self.phase.is_some() {
                return Err((
                    "checkpoint",
                    "give either `checkpoint` (with `checkpoint_phase`), `at`, or `batch`, not several".into(),
                ));
            }
            if n == 0 {
                return Err(("checkpoint", "checkpoints are numbered from 1".into()));
            }
            let micro_batch = engines
                .iter()
                .filter(|e| self.strikes(&e.name))
                .find(|e| matches!(e.kind, EngineKind::MicroBatch(_)));
            return match micro_batch {
                Some(e) => Err((
                    "checkpoint",
                    format!(
                        "engine `{}` is micro-batch; place its crash with `batch` and `phase` (or name a per-record `engine`)",
                        e.name
                    ),
                )),
                None => Ok(()),
            };
        }
        match (self.at, self.batch) {
            (None, None) => Err((
                "at",
                "say when: `at = \"20s\"`, `batch = 12` (with an optional `phase`) for a micro-batch engine, or `checkpoint = 3` (with an optional `checkpoint_phase`) for a per-record one".into(),
            )),
            (Some(_), Some(_)) => Err(("batch", "give either `at` or `batch`, not both".into())),
            (Some(_), None) if self.phase.is_some() => {
                Err(("phase", "`phase` goes with `batch`, not with `at`".into()))
            }
            (None, Some(_)) => {
                let per_record = engines
                    .iter()
                    .filter(|e| self.strikes(&e.name))
                    .find(|e| matches!(e.kind, EngineKind::PerRecord(_)));
                match per_record {
                    Some(e) => Err((
                        "batch",
                        format!("engine `{}` is per-record and has no batches; use `at`", e.name),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// A service-level objective: what "good enough" means for the decision report. Every bound is
/// optional; a configuration meets the objective when it meets every bound stated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Largest acceptable p99 latency.
    #[serde(default)]
    pub p99: Option<Span>,
    /// Largest acceptable p50 latency.
    #[serde(default)]
    pub p50: Option<Span>,
    /// Longest acceptable recovery after a failure (downtime plus catch-up).
    #[serde(default)]
    pub recovery: Option<Span>,
    /// Smallest acceptable sustained throughput, events/s.
    #[serde(default)]
    pub min_throughput_eps: Option<f64>,
}

impl Slo {
    /// Checks the bounds; names the first bad key.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(t) = self.min_throughput_eps {
            if !(t.is_finite() && t > 0.0) {
                return Err((
                    "min_throughput_eps",
                    format!("{t} is out of range; must be a number > 0"),
                ));
            }
        }
        for (key, bound) in [("p99", self.p99), ("p50", self.p50), ("recovery", self.recovery)] {
            if bound.is_some_and(|b| b.nanos() == 0) {
                return Err((key, "must be greater than 0, e.g. \"2s\"".into()));
            }
        }
        if self.p99.is_none() && self.p50.is_none() && self.recovery.is_none() && self.min_throughput_eps.is_none() {
            return Err((
                "p99",
                "an [slo] table states at least one bound: p99, p50, recovery or min_throughput_eps".into(),
            ));
        }
        Ok(())
    }
}

/// The keys allowed at the top level of a scenario file.
const TOP_LEVEL_KEYS: [&str; 13] = [
    "slo",
    "failure",
    "name",
    "description",
    "seed",
    "duration",
    "drain",
    "clock",
    "profile",
    "cluster",
    "workload",
    "pipeline",
    "engine",
];

impl Scenario {
    /// The seed used when the file states none.
    pub const DEFAULT_SEED: u64 = 1;
    /// The cost profile used when the file states none.
    pub const DEFAULT_PROFILE: &'static str = "local";
    /// The drain used when the file states none.
    pub const DEFAULT_DRAIN: Span = Span::from_ms(2_000);

    /// Reads and validates the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates scenario `text`; `path_for_messages` is named in errors, stored as
    /// [`Scenario::path`], and is what a trace path is resolved against.
    ///
    /// # Examples
    /// ```
    /// use std::path::Path;
    /// use streamlab_scenarios::spec::Scenario;
    ///
    /// let text = r#"
    /// name = "tiny"
    /// duration = "1s"
    /// [[engine]]
    /// name = "mb"
    /// model = "micro-batch"
    /// "#;
    /// let scenario = Scenario::parse(Path::new("tiny.toml"), text).unwrap();
    /// assert_eq!(scenario.engines[0].model(), "micro-batch");
    ///
    /// let err = Scenario::parse(Path::new("tiny.toml"), "name = \"x\"\nsede = 1\n").unwrap_err();
    /// assert!(err.to_string().starts_with("tiny.toml:2: key `sede`: unknown key"));
    /// ```
    pub fn parse(path_for_messages: &Path, text: &str) -> Result<Scenario> {
        let doc = ImDocument::parse(text).map_err(|e| {
            let start = e.span().map_or(0, |s| s.start);
            let (line, column) = line_and_column(text, start);
            ScenarioError::Syntax {
                path: path_for_messages.to_path_buf(),
                line,
                column,
                message: one_line(e.message()),
            }
        })?;
        Reader {
            path: path_for_messages,
            text,
            root: doc.as_table(),
        }
        .scenario()
    }
}

/// Reads one parsed document; knows the text, so it can turn spans into lines.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    root: &'a Table,
}

impl Reader<'_> {
    fn scenario(&self) -> Result<Scenario> {
        self.check_keys("", self.root, &TOP_LEVEL_KEYS)?;

        let name: String = self.top("name")?.ok_or_else(|| {
            self.invalid(
                None,
                Some("name"),
                "missing; every scenario needs a name, e.g. name = \"quickstart\"",
            )
        })?;
        if name.trim().is_empty() {
            return Err(self.at("name", "must not be empty"));
        }
        let description: Option<String> = self.top("description")?;
        if description.as_deref().is_some_and(|d| d.contains('\n')) {
            return Err(self.at("description", "must be a single line"));
        }
        let seed = self.top("seed")?.unwrap_or(Scenario::DEFAULT_SEED);
        let duration: Span = self.top("duration")?.ok_or_else(|| {
            self.invalid(
                None,
                Some("duration"),
                "missing; say how long events arrive, e.g. duration = \"10s\"",
            )
        })?;
        if duration.nanos() == 0 {
            return Err(self.at("duration", "must be greater than 0, e.g. \"10s\""));
        }
        let drain = self.top("drain")?.unwrap_or(Scenario::DEFAULT_DRAIN);
        let clock = self.top("clock")?.unwrap_or_default();
        let profile: String = self
            .top("profile")?
            .unwrap_or_else(|| Scenario::DEFAULT_PROFILE.to_string());
        if profile.trim().is_empty() {
            return Err(self.at(
                "profile",
                "must name a built-in profile (e.g. \"local\") or a profile file",
            ));
        }
        let cluster: Cluster = self.top("cluster")?.unwrap_or_default();
        let slo: Option<Slo> = self.top("slo")?;
        if let Some(slo) = &slo {
            slo.validate()
                .map_err(|(key, message)| self.at(&format!("slo.{key}"), message))?;
        }
        cluster
            .validate()
            .map_err(|(key, message)| self.at(&format!("cluster.{key}"), message))?;
        let workload = self.workload()?;
        let pipeline = self.pipeline()?;
        let engines = self.engines(&pipeline)?;
        let failures: Vec<FailureSpec> = match self.root.get("failure") {
            None => Vec::new(),
            Some(Item::ArrayOfTables(tables)) => tables
                .iter()
                .enumerate()
                .map(|(i, t)| self.de(&format!("failure[{i}]"), &Item::Table(t.clone()), None))
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(self.at(
                    "failure",
                    "must be written as `[[failure]]` tables, one per injected failure",
                ))
            }
        };
        for (i, f) in failures.iter().enumerate() {
            f.validate(&engines)
                .map_err(|(key, message)| self.at(&format!("failure[{i}].{key}"), message))?;
        }

        Ok(Scenario {
            path: self.path.to_path_buf(),
            name,
            description,
            seed,
            duration,
            drain,
            clock,
            profile,
            cluster,
            slo,
            failures,
            workload,
            pipeline,
            engines,
            source_text: self.text.to_owned(),
        })
    }

    /// A top-level key, deserialized if present.
    fn top<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.root.get(key).map(|item| self.de(key, item, None)).transpose()
    }

    fn workload(&self) -> Result<WorkloadSpec> {
        let Some(item) = self.root.get("workload") else {
            return Ok(WorkloadSpec::Clickstream(ClickstreamConfig::default()));
        };
        let Some(table) = item.as_table_like() else {
            return Err(self.at(
                "workload",
                "must be a table: `[workload]` with the generator's keys, or `trace = \"file.csv\"`",
            ));
        };
        if let Some(trace) = table.get("trace") {
            if let Some((other, _)) = table.iter().find(|(k, _)| *k != "trace") {
                return Err(self.at(
                    &format!("workload.{other}"),
                    format!(
                        "`trace` replays a recorded trace instead of running the generator, so it \
                         must be the only key in [workload]; remove `{other}` or `trace`"
                    ),
                ));
            }
            let relative: String = self.de("workload.trace", trace, None)?;
            if relative.trim().is_empty() {
                return Err(self.at("workload.trace", "must be a file path, e.g. \"traces/day1.csv\""));
            }
            let base = self.path.parent().unwrap_or(Path::new(""));
            return Ok(WorkloadSpec::Trace {
                path: base.join(relative),
            });
        }
        let config: ClickstreamConfig = self.de("workload", item, Some("or `trace` alone, to replay a trace file"))?;
        config
            .validate()
            .map_err(|e| self.at(&format!("workload.{}", e.key), e.message))?;
        Ok(WorkloadSpec::Clickstream(config))
    }

    fn pipeline(&self) -> Result<PipelineSpec> {
        let Some(item) = self.root.get("pipeline") else {
            return Ok(PipelineSpec::default());
        };
        let pipeline: PipelineSpec = self.de("pipeline", item, None)?;
        pipeline
            .validate()
            .map_err(|e| self.at(&format!("pipeline.{}", e.key), e.message))?;
        Ok(pipeline)
    }

    fn engines(&self, pipeline: &PipelineSpec) -> Result<Vec<EngineSpec>> {
        let allowed_models = quoted_list(&EngineKind::MODELS);
        let tables = match self.root.get("engine") {
            None => {
                return Err(self.invalid(
                    None,
                    Some("engine"),
                    format!(
                        "missing; a scenario needs at least one [[engine]] table with `name` and \
                         `model` ({allowed_models})"
                    ),
                ))
            }
            Some(Item::ArrayOfTables(tables)) => tables,
            Some(_) => {
                return Err(self.at(
                    "engine",
                    "must be an array of tables: write each engine as `[[engine]]`",
                ))
            }
        };

        let mut first_use: HashMap<String, usize> = HashMap::new();
        let mut engines = Vec::with_capacity(tables.len());
        for (i, table) in tables.iter().enumerate() {
            let at = format!("engine[{i}]");
            let name: String = match table.get("name") {
                Some(item) => self.de(&format!("{at}.name"), item, None)?,
                None => {
                    return Err(self.at(
                        &at,
                        "missing `name`; every engine needs a unique name, e.g. name = \"micro-batch 1s\"",
                    ))
                }
            };
            if name.trim().is_empty() {
                return Err(self.at(&format!("{at}.name"), "must not be empty"));
            }
            if let Some(first) = first_use.get(&name) {
                return Err(self.at(
                    &format!("{at}.name"),
                    format!(
                        "duplicate engine name \"{name}\" (engine[{first}] has it too); engine names must be unique"
                    ),
                ));
            }
            first_use.insert(name.clone(), i);

            let model: String = match table.get("model") {
                Some(item) => self.de(&format!("{at}.model"), item, None)?,
                None => return Err(self.at(&at, format!("missing `model`; expected one of {allowed_models}"))),
            };
            let mut config = table.clone();
            config.remove("name");
            config.remove("model");
            let config = Item::Table(config);
            let hint = Some("plus `name` and `model`");
            let kind = match model.as_str() {
                "micro-batch" => {
                    let c: MicroBatchConfig = self.de(&at, &config, hint)?;
                    c.validate(pipeline)
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    EngineKind::MicroBatch(c)
                }
                "per-record" => {
                    let c: DataflowConfig = self.de(&at, &config, hint)?;
                    c.validate()
                        .map_err(|e| self.at(&format!("{at}.{}", e.key), e.message))?;
                    EngineKind::PerRecord(c)
                }
                other => {
                    return Err(self.at(
                        &format!("{at}.model"),
                        format!("unknown model \"{other}\"; expected one of {allowed_models}"),
                    ))
                }
            };
            engines.push(EngineSpec { name, kind });
        }
        Ok(engines)
    }

    /// Refuses any key of `table` not in `allowed`, naming the allowed ones.
    fn check_keys(&self, prefix: &str, table: &dyn TableLike, allowed: &[&str]) -> Result<()> {
        match table.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((key, _)) => Err(self.at(
                &join(prefix, key),
                format!("unknown key; expected one of {}", backticked_list(allowed)),
            )),
            None => Ok(()),
        }
    }

    /// Deserializes `item` (found at `key`) with serde, so `deny_unknown_fields` applies, and
    /// turns a serde error into one naming the key path and line. `unknown_key_hint` is added
    /// to unknown-field messages for keys the caller handles itself.
    fn de<T: DeserializeOwned>(&self, key: &str, item: &Item, unknown_key_hint: Option<&str>) -> Result<T> {
        let result = match item {
            Item::Value(value) => T::deserialize(value.clone().into_deserializer()),
            Item::Table(table) => toml_edit::de::from_document(DocumentMut::from(table.clone())),
            Item::ArrayOfTables(_) | Item::None => {
                return Err(self.at(key, "must not be an array of tables `[[...]]`"));
            }
        };
        result.map_err(|e| {
            let mut message = one_line(e.message());
            let (mut path, mut line) = match e.span() {
                Some(span) => (
                    self.locate(span.start).unwrap_or_else(|| key.to_owned()),
                    Some(self.line_at(span.start)),
                ),
                None => (key.to_owned(), self.line_of_path(key)),
            };
            if let Some(field) = quoted_after(&message, "unknown field `") {
                // An internally tagged table reports at the table; point at the key itself.
                let full = join(&path, field);
                if let (Some(span), true) = self.resolve(&full) {
                    path = full;
                    line = Some(self.line_at(span.start));
                }
                if let (Some(hint), true) = (unknown_key_hint, path == join(key, field)) {
                    message = format!("{message}, {hint}");
                }
            } else if let Some(field) = quoted_after(&message, "missing field `") {
                path = join(&path, field);
            }
            self.invalid(line, Some(&path), message)
        })
    }

    fn invalid(&self, line: Option<usize>, key: Option<&str>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An error about the key at dotted `path`, with the line of that key (or of the nearest
    /// enclosing key that exists).
    fn at(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.invalid(self.line_of_path(path), Some(path), message)
    }

    fn line_at(&self, offset: usize) -> usize {
        line_and_column(self.text, offset).0
    }

    /// The line of the deepest existing key along `path` (`engine[1].trigger.interval`).
    fn line_of_path(&self, path: &str) -> Option<usize> {
        self.resolve(path).0.map(|span| self.line_at(span.start))
    }

    /// The span of the deepest existing key along `path`, and whether that is the whole path.
    fn resolve(&self, path: &str) -> (Option<Range<usize>>, bool) {
        let mut table: Option<&dyn TableLike> = Some(self.root);
        let mut best: Option<Range<usize>> = None;
        for segment in path.split('.') {
            let (name, index) = split_index(segment);
            let Some((key, item)) = table.and_then(|t| t.get_key_value(name)) else {
                return (best, false);
            };
            best = key.span().or_else(|| item.span()).or(best);
            table = match (index, item) {
                (None, item) => item.as_table_like(),
                (Some(i), Item::ArrayOfTables(tables)) => match tables.get(i) {
                    Some(t) => {
                        best = t.span().or(best);
                        Some(t)
                    }
                    None => return (best, false),
                },
                (Some(i), Item::Value(Value::Array(values))) => match values.get(i) {
                    Some(v) => {
                        best = v.span().or(best);
                        v.as_inline_table().map(|t| t as &dyn TableLike)
                    }
                    None => return (best, false),
                },
                (Some(_), _) => return (best, false),
            };
        }
        (best, true)
    }

    /// The dotted path of the deepest key or value whose span holds byte `offset`.
    fn locate(&self, offset: usize) -> Option<String> {
        let mut path = String::new();
        locate_in_table(self.root, offset, &mut path).then_some(path)
    }
}

fn locate_in_table(table: &dyn TableLike, offset: usize, path: &mut String) -> bool {
    for (name, item) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        let key_span = table.key(name).and_then(|k| k.span());
        let found = match item {
            Item::Value(value) => locate_in_value(value, offset, path),
            Item::Table(t) => locate_in_table(t, offset, path) || holds(t.span(), offset),
            Item::ArrayOfTables(tables) => tables.iter().enumerate().any(|(i, t)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = locate_in_table(t, offset, path) || holds(t.span(), offset);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Item::None => false,
        } || holds(key_span, offset);
        if found {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn locate_in_value(value: &Value, offset: usize, path: &mut String) -> bool {
    let inside = match value {
        Value::InlineTable(t) => locate_in_table(t, offset, path),
        Value::Array(values) => values.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = locate_in_value(v, offset, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    };
    inside || holds(value.span(), offset)
}

/// True when `span` holds `offset` (an empty span holds its start).
fn holds(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// `engine[1]` → (`engine`, Some(1)); `trigger` → (`trigger`, None).
fn split_index(segment: &str) -> (&str, Option<usize>) {
    if let Some(open) = segment.find('[') {
        if let Some(index) = segment[open + 1..].strip_suffix(']').and_then(|i| i.parse().ok()) {
            return (&segment[..open], Some(index));
        }
    }
    (segment, None)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Joins a parser or serde message into one line, with Rust type names in the user's words.
fn one_line(message: &str) -> String {
    let mut message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    for (rust, words) in [
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
    ] {
        message = message.replace(rust, words);
    }
    message
}

/// The name in backticks right after `prefix` at the start of a serde message
/// (`unknown field `x`, ...` gives `x`).
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix).and_then(|rest| rest.split('`').next())
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn backticked_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}
