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
//! sink = "file"                       # "file" (default): sink-<run>.csv | "discard": delivered, timed, dropped
//! profile = "local"                   # simulated clock: cost profile, built-in name or file
//! repeat = 5                          # live clock: run the native engines this many rounds, report the median throughput; default 1
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
//! # ...or Nexmark: generator = "nexmark" with partitions, rate, backlog and a
//! # [workload.nexmark] table of NexmarkConfig keys (bid_proportion = 46, ...)
//!
//! [pipeline]                          # PipelineSpec
//! filter_kinds = ["click"]
//! lookup_join = true
//! [pipeline.aggregate]
//! key_by = "campaign"
//! window = { kind = "tumbling", size = "10s" }
//! function = "count"
//!
//! [sweep]                             # optional: what `streamlab sweep FILE` varies (a grid)
//! "engine[0].trigger.interval" = ["100ms", "1s", "5s"]   # dotted key path = values
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
//! Reading the file, with errors that find their line, is [`crate::reader`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use streamlab_engines::cluster::Cluster;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::time::Span;
use streamlab_workloads::{ClickstreamConfig, NexmarkWorkload, RateProfile};

pub use crate::engine::{EngineKind, EngineSpec};
pub use crate::failures::{CrashScope, FailureKindName, FailureSpec};

/// What the engines' sinks do with an output once it is delivered and its latency recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Written to `sink-<run>.csv` (micro-batch: one durable file per batch, joined at the end).
    #[default]
    File,
    /// Dropped, as Spark's `noop` sink and Flink's `DiscardingSink` do in throughput benchmarks:
    /// every output is still made visible, counted and timed; nothing is formatted or kept.
    Discard,
}

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
    /// The seeded clickstream generator (`generator = "clickstream"`, the default).
    Clickstream(ClickstreamConfig),
    /// The seeded Nexmark generator (`generator = "nexmark"`).
    Nexmark(NexmarkWorkload),
    /// A recorded trace file, replayed.
    Trace {
        /// The trace file, resolved against the scenario file's directory.
        path: PathBuf,
    },
}

impl WorkloadSpec {
    /// The generators a `[workload]` table may name in `generator`.
    pub const GENERATORS: [&'static str; 2] = ["clickstream", "nexmark"];

    /// The generator's rate profile (`None` for a trace).
    pub fn rate(&self) -> Option<&RateProfile> {
        match self {
            Self::Clickstream(c) => Some(&c.rate),
            Self::Nexmark(n) => Some(&n.rate),
            Self::Trace { .. } => None,
        }
    }

    /// The same workload at another rate profile (a trace is returned unchanged).
    pub fn with_rate(&self, rate: RateProfile) -> Self {
        match self {
            Self::Clickstream(c) => Self::Clickstream(ClickstreamConfig { rate, ..c.clone() }),
            Self::Nexmark(n) => Self::Nexmark(NexmarkWorkload { rate, ..n.clone() }),
            Self::Trace { .. } => self.clone(),
        }
    }

    /// The source's partition count (`None` for a trace, whose partitions are in the file).
    pub fn partitions(&self) -> Option<usize> {
        match self {
            Self::Clickstream(c) => Some(c.partitions as usize),
            Self::Nexmark(n) => Some(n.partitions as usize),
            Self::Trace { .. } => None,
        }
    }

    /// Whether every event is in the source from the start (`workload.backlog`).
    pub fn backlog(&self) -> bool {
        match self {
            Self::Clickstream(c) => c.backlog,
            Self::Nexmark(n) => n.backlog,
            Self::Trace { .. } => false,
        }
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
    /// What the sinks do with delivered outputs.
    pub sink: SinkKind,
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
    /// How the workload reaches a real engine (`[workload] transport`): the loopback feeder
    /// or Kafka topics.
    pub transport: crate::transport::Transport,
    /// What every engine computes.
    pub pipeline: PipelineSpec,
    /// The engine runs, in file order; at least one, names unique.
    pub engines: Vec<EngineSpec>,
    /// The `[sweep]` table: what `streamlab sweep` varies when no `--param` replaces it, in
    /// file order (empty when the scenario declares no sweep).
    pub sweep: Vec<crate::sweep::SweepParam>,
    /// How many rounds a live run makes of its native engines (`repeat`, at least 1): each round
    /// runs every native engine once in file order, and each engine's throughput is reported
    /// as the median over the rounds (see [`crate::rounds`]).
    pub repeat: u32,
    /// The file's text, kept for reproducibility (copied into results).
    pub source_text: String,
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

impl Scenario {
    /// The seed used when the file states none.
    pub const DEFAULT_SEED: u64 = 1;
    /// The cost profile used when the file states none.
    pub const DEFAULT_PROFILE: &'static str = "local";
    /// The drain used when the file states none.
    pub const DEFAULT_DRAIN: Span = Span::from_ms(2_000);
    /// The most measurement rounds a scenario may ask for (`repeat`).
    pub const MAX_REPEAT: u32 = 100;

    /// How many engine runs a `streamlab run` of it makes: every engine once, plus, when
    /// `rounds` (the live clock, not resuming), each native engine's measurement rounds
    /// (`repeat`). Engines left out because their real engine is not installed are counted.
    pub fn engine_runs(&self, rounds: bool) -> usize {
        let natives = self.engines.iter().filter(|e| !e.kind.is_real()).count();
        let rounds = if rounds { self.repeat as usize - 1 } else { 0 };
        self.engines.len() + natives * rounds
    }
}
