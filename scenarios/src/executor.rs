//! One interface for every engine kind: what the run loop ([`crate::drive`]), the summary,
//! the capacity search and the crash sweep need to know about an execution model, answered by
//! one [`EngineExecutor`] implementation per kind (micro-batch in [`crate::micro_batch`],
//! per-record in [`crate::per_record`]; a real Spark or Flink driver would be a third). Adding
//! an engine kind is a variant of [`EngineKind`], its configuration's implementation of this
//! trait, and the arm of [`executor`] — nothing else matches on the kind.
//!
//! An executor builds its engine for a clock ([`EngineExecutor::prepare`]) into a
//! [`Prepared`] engine: one that runs over the whole log in one go, or a [`Segmented`] one
//! that the driver advances segment by segment on virtual time.

use streamlab_engines::cost::Slowdown;
use streamlab_engines::fault::CrashPoint;
use streamlab_engines::recovery::Supervisor;
use streamlab_engines::run::{Delivered, EngineRun, OutputStream};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::Nanos;

use crate::clock::ClockSetup;
use crate::engine::{EngineKind, EngineSpec};
use crate::failures::{self, FailureSpec};
use crate::spec::Scenario;
use crate::workload::Workload;

/// Where engines keep durable checkpoints, and whether the scenario's failures are injected.
#[derive(Clone, Debug, Default)]
pub struct Durability {
    /// Checkpoint directories go under here, one per engine run (`<root>/<run slug>`).
    pub checkpoint_root: Option<std::path::PathBuf>,
    /// Inject the scenario's `[[failure]]`s.
    pub inject_failures: bool,
    /// Resume from the checkpoints under `checkpoint_root` instead of starting afresh.
    pub resume: bool,
    /// Micro-batch queries write each batch's output durably under here (see
    /// [`crate::sink::batch_file_writer`]).
    pub sink_dir: Option<std::path::PathBuf>,
    /// The sinks discard their outputs (scenario `sink = "discard"`): a live run hands none
    /// back, only its counts and latency.
    pub discard: bool,
}

/// What every engine run of one scenario run shares: the scenario, its workload, how long the
/// engines run, the clock and where they keep what must survive a crash.
#[derive(Clone, Copy, Debug)]
pub struct RunContext<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Its workload for this run's seed and duration.
    pub workload: &'a Workload,
    /// The engines run until this instant (the workload's duration and the drain).
    pub until: Nanos,
    /// The clock.
    pub clock: &'a ClockSetup,
    /// Checkpoints, resuming, durable sinks and failure injection.
    pub durability: &'a Durability,
}

/// One engine run within a [`RunContext`].
#[derive(Clone, Copy, Debug)]
pub struct EngineRunContext<'a> {
    /// What the engine runs share.
    pub run: RunContext<'a>,
    /// The engine run.
    pub engine: &'a EngineSpec,
}

impl EngineRunContext<'_> {
    /// What the scenario's failures do to this engine, by `effect` (nothing in a failure-free
    /// baseline run).
    pub fn injected<T>(&self, effect: impl Fn(&FailureSpec) -> Option<T>) -> Vec<T> {
        failures::injected(&self.run.scenario.failures, self.run.durability.inject_failures, effect)
    }

    /// The crashes injected into this engine.
    pub fn crashes(&self) -> Vec<CrashPoint> {
        self.injected(|f| f.crash_point(self.engine))
    }

    /// The slowdowns (stragglers, slow state) injected into this engine.
    pub fn slowdowns(&self) -> Vec<Slowdown> {
        self.injected(|f| f.slowdown(&self.engine.name))
    }
}

/// An execution model, as the scenario runner drives it.
pub trait EngineExecutor {
    /// Builds the engine for its clock; an error is the engine's message about its
    /// configuration.
    fn prepare<'a>(&'a self, ctx: EngineRunContext<'a>) -> std::result::Result<Prepared<'a>, String>;

    /// The configuration as `summary.json` shows it.
    fn config_json(&self) -> serde_json::Value;

    /// The configuration as the checkpoint fingerprint spells it.
    fn config_text(&self) -> String;

    /// The task slots it is configured with (micro-batch workers, per-record parallelism).
    fn slots(&self) -> usize;

    /// How many workers a failure may name on `clock`, and what they are called.
    fn failure_workers(&self, clock: &ClockSetup) -> (usize, &'static str);

    /// Whether its sink writes a durable file per batch or transaction (joined at the end)
    /// rather than streaming into the sink's CSV; `live`: on the live clock.
    fn writes_sink_parts(&self, live: bool) -> bool;

    /// Whether its sink is an upsert sink (the final value of every window is what counts).
    fn upserts(&self) -> bool;

    /// The interval on which its latency behaviour repeats, in seconds.
    fn characteristic_interval_s(&self) -> f64;

    /// Whether its latency has a cache wait (outputs held until a commit).
    fn has_cache_wait(&self) -> bool;

    /// What a reader must know about whether its run kept up, beyond what every kind shares.
    fn stability_notes(&self, run: &EngineRun) -> Vec<String>;

    /// Why a run produced no output, or why its watermark stopped advancing, in the user's
    /// terms and with the remedies, when the kind can tell from the run (`partitions`: the
    /// source's partition count, if known). Empty when there is nothing to explain or the kind
    /// cannot say; the summary then adds a general note for a run without output.
    fn stalled_notes(&self, _run: &EngineRun, _partitions: Option<usize>) -> Vec<String> {
        Vec::new()
    }

    /// Every point of its work a crash sweep crashes it at, labelled, from a failure-free
    /// `base` run, before `until` (the end of the input); `instants` crashes at evenly spread
    /// instants where the kind places crashes in time.
    fn crash_points(&self, engine: &str, base: &EngineRun, until: Nanos, instants: usize)
        -> Vec<(String, FailureSpec)>;
}

/// The executor of an engine kind.
pub fn executor(kind: &EngineKind) -> &dyn EngineExecutor {
    match kind {
        EngineKind::MicroBatch(c) => c,
        EngineKind::PerRecord(c) => c,
        EngineKind::Spark(e) => e,
        EngineKind::Flink(e) => e,
        EngineKind::KafkaStreams(e) => e,
    }
}

/// Refuses a failure naming a worker `engine` does not have on `clock`.
pub fn check_failure_workers(
    scenario: &Scenario,
    engine: &EngineSpec,
    clock: &ClockSetup,
) -> std::result::Result<(), String> {
    failures::check_workers(
        &scenario.failures,
        engine,
        executor(&engine.kind).failure_workers(clock),
    )
}

/// Identifies a query for its checkpoint directory: the scenario's name, the engine run's name
/// and configuration, the pipeline. A directory written for anything else is refused.
pub fn fingerprint(scenario: &Scenario, engine: &EngineSpec) -> String {
    let config = executor(&engine.kind).config_text();
    let text = format!(
        "{}|{}|{}|{}",
        scenario.name,
        engine.name,
        config,
        serde_json::to_string(&scenario.pipeline).expect("pipeline serializes")
    );
    // FNV-1a, printed in hex: stable across runs and machines.
    let h = streamlab_engines::checkpoint::fnv1a(text.as_bytes());
    format!("{}/{}/{h:016x}", scenario.name, engine.name)
}

/// A run over the whole log, in one go, handing what its sink delivers to the stream when it is
/// given one (then its `delivered` stays empty); an error is the engine's message. It is `Send`:
/// a live run streams from its own thread while the caller takes the outputs.
pub type WholeRun<'a> =
    Box<dyn FnOnce(&SourceLog, Option<OutputStream>) -> std::result::Result<EngineRun, String> + Send + 'a>;

/// An engine ready to run.
pub enum Prepared<'a> {
    /// Advances segment by segment on virtual time.
    Segmented(Segmented),
    /// Runs in one go over the whole log.
    Whole(WholeRun<'a>),
}

/// A simulated engine that runs in segments, under its supervisor.
pub struct Segmented(pub Box<dyn Supervisor>);

impl Segmented {
    /// Runs until `to`; returns what was delivered and, per partition, how far the engine has
    /// read.
    pub fn advance(&mut self, log: &SourceLog, to: Nanos) -> std::result::Result<(Vec<Delivered>, Vec<usize>), String> {
        self.0.advance(log, to).map_err(|e| e.to_string())?;
        Ok((self.0.take_delivered(), self.0.consumed_offsets()))
    }

    /// Waits until the files the engine writes behind it are on disk; fails if one could not
    /// be written.
    pub fn settle(&mut self) -> std::result::Result<(), String> {
        self.0.settle().map_err(|e| e.to_string())
    }

    /// The finished run.
    pub fn finish(self) -> EngineRun {
        self.0.finish()
    }

    /// Publishes what the engine counts itself (batches falling behind, checkpoints) to `pulse`.
    pub fn publish(&self, pulse: &streamlab_engines::pulse::RunPulse) {
        self.0.publish(pulse);
    }
}
