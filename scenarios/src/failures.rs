//! Injected failures: the one place that knows what a `[[failure]]` table means, from the
//! table as written to what is injected into an engine run and to the marks in the results.
//!
//! * reading: [`FailureSpec`] and its checks (`validate`, called by the scenario reader with
//!   the key paths it reports);
//! * injection: what a failure does to an engine — a [`CrashPoint`], a [`Slowdown`], a task
//!   failure or a lost worker — ([`FailureSpec::crash_point`] and friends, [`injected`],
//!   [`per_record_crashes`]) and to the workload ([`source_outages`], [`rate_spikes`]);
//! * results: the failures that struck a run, as `summary.json` marks them ([`struck`],
//!   [`marks`]).
//!
//! Adding a failure kind is a variant of [`FailureKindName`] and its arms here.

use serde::{Deserialize, Serialize};
use streamlab_engines::cost::Slowdown;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::fault::{BatchPhase, CheckpointPhase, CrashPoint};
use streamlab_engines::run::{EngineRun, FailureEvent};
use streamlab_engines::time::{as_ms, Nanos, Span};
use streamlab_reports::summary::FailureMark;

use crate::engine::EngineSpec;
use crate::executor::EngineRunContext;

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
            .filter(|_| engine.kind.has_batches())
            .and(self.at.map(|a| a.nanos()))
    }

    /// The worker a micro-batch engine loses, as `(worker, from, to)`, if this failure is one.
    pub fn worker_loss(&self, engine: &EngineSpec) -> Option<(usize, Nanos, Nanos)> {
        if !self.strikes(&engine.name) || self.kind != FailureKindName::Crash || self.scope != Some(CrashScope::Worker)
        {
            return None;
        }
        if !engine.kind.has_batches() {
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
        if matches!(self.scope, Some(CrashScope::Task | CrashScope::Worker)) && engine.kind.has_batches() {
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

    /// Checks the failure against the scenario's `engines`; an error names the key at fault
    /// (relative to the `[[failure]]` table) and what is allowed.
    pub fn validate(&self, engines: &[EngineSpec]) -> std::result::Result<(), (&'static str, String)> {
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
                .find(|e| e.kind.has_batches());
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
                    .find(|e| !e.kind.has_batches());
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

impl FailureSpec {
    /// A job crash of the engine run `engine`, not yet placed (`at`, `batch` or `checkpoint`
    /// say where).
    pub fn crash(engine: &str) -> Self {
        FailureSpec {
            kind: FailureKindName::Crash,
            at: None,
            duration: None,
            factor: None,
            worker: None,
            scope: None,
            batch: None,
            phase: None,
            checkpoint: None,
            checkpoint_phase: None,
            engine: Some(engine.to_string()),
        }
    }
}

/// Source outages `[from, to)` of the `source_outage` failures: the source log holds their
/// events back until they end.
pub fn source_outages(failures: &[FailureSpec]) -> Vec<(Nanos, Nanos)> {
    failures
        .iter()
        .filter(|f| f.kind == FailureKindName::SourceOutage)
        .filter_map(|f| Some((f.at?.nanos(), f.at?.nanos() + f.duration?.nanos())))
        .collect()
}

/// The `rate_spike` failures: the workload's generator rides them on its constant rate.
pub fn rate_spikes(failures: &[FailureSpec]) -> Vec<&FailureSpec> {
    failures
        .iter()
        .filter(|f| f.kind == FailureKindName::RateSpike)
        .collect()
}

/// What `failures` do to an engine, by `effect`; nothing when they are not injected (a
/// failure-free baseline run).
pub fn injected<T>(failures: &[FailureSpec], inject: bool, effect: impl Fn(&FailureSpec) -> Option<T>) -> Vec<T> {
    match inject {
        true => failures.iter().filter_map(effect).collect(),
        false => Vec::new(),
    }
}

/// Refuses a failure naming a worker `engine` does not have: it has `count` of them, called
/// `what` (a micro-batch query's workers, a per-record job's task slots or the simulated
/// cluster's cores; see [`crate::executor::EngineExecutor::failure_workers`]).
pub fn check_workers(
    failures: &[FailureSpec],
    engine: &EngineSpec,
    (count, what): (usize, &str),
) -> std::result::Result<(), String> {
    let named = failures.iter().filter(|f| f.strikes(&engine.name));
    match named.filter_map(|f| f.worker).find(|&w| w >= count) {
        Some(w) => Err(format!(
            "key `failure.worker`: worker {w} does not exist; engine `{}` has {what} 0..{count}",
            engine.name
        )),
        None => Ok(()),
    }
}

/// Crashes placed in checkpoints: `(checkpoint, phase)`.
pub type CheckpointCrashes = Vec<(u64, CheckpointPhase)>;

/// A per-record job's crashes: the instants, and the `(checkpoint, phase)` placements (which
/// need an engine that takes checkpoints). A batch phase is refused: there are no batches.
pub fn per_record_crashes(
    crashes: &[CrashPoint],
    engine: &EngineSpec,
    cfg: &DataflowConfig,
) -> std::result::Result<(Vec<Nanos>, CheckpointCrashes), String> {
    let (mut times, mut in_checkpoints) = (Vec::new(), Vec::new());
    for c in crashes {
        match *c {
            CrashPoint::At(t) => times.push(t),
            CrashPoint::InBatch { .. } => {
                return Err("a per-record engine has no batches; crash it `at` an instant".into())
            }
            CrashPoint::InCheckpoint { checkpoint, phase } => {
                if cfg.checkpoint_interval.is_none() {
                    return Err(format!(
                        "key `failure.checkpoint`: engine `{}` takes no checkpoints; set `checkpoint_interval`",
                        engine.name
                    ));
                }
                in_checkpoints.push((checkpoint, phase));
            }
        }
    }
    Ok((times, in_checkpoints))
}

/// The instant a `[[failure]]` crash kills the real engine's job (`ctx.engine`, run clock), if
/// one strikes it: every failure that strikes it must be a job crash placed with `at` — what a
/// real engine's process group can be given (no batches, no checkpoint numbers of ours, no
/// workers) — and one at most. `None` also when failures are not injected (the failure-free
/// baseline runs it uninterrupted). `who` names the engine in an error, `from` what it restarts
/// from.
pub fn real_job_crash(ctx: &EngineRunContext<'_>, who: &str, from: &str) -> Result<Option<Nanos>, String> {
    let (failures, engine, inject) = (
        &ctx.run.scenario.failures,
        ctx.engine,
        ctx.run.durability.inject_failures,
    );
    let mut at = None;
    for f in failures.iter().filter(|f| f.strikes(&engine.name)) {
        let placed = f.kind == FailureKindName::Crash
            && f.scope.is_none_or(|s| s == CrashScope::Job)
            && matches!(f.crash_point(engine), Some(CrashPoint::At(_)));
        if !placed {
            return Err(format!(
                "engine `{}` ({who}) takes a `[[failure]]` of kind = \"crash\" placed with `at` only (its process group is killed then and restarted from {from}); name another `engine` for this failure",
                engine.name
            ));
        }
        if at.is_some() {
            return Err(format!("engine `{}` ({who}) takes one crash per run", engine.name));
        }
        at = f.at.map(|a| a.nanos());
    }
    Ok(at.filter(|_| inject))
}

/// The failures that struck engine run `spec`, by kind, in time order: the crashes as the
/// engine met them, and the other failures as declared.
pub fn struck(failures: &[FailureSpec], spec: &EngineSpec, run: &EngineRun) -> Vec<(String, FailureEvent)> {
    let mut events: Vec<(String, FailureEvent)> = run.failures.iter().map(|f| ("crash".to_string(), *f)).collect();
    for f in failures.iter() {
        if !f.strikes(&spec.name) {
            continue;
        }
        if let Some(at) = f.task_failure(spec) {
            events.push((
                "task_failure".into(),
                FailureEvent {
                    at,
                    restarted_at: at,
                    replayed: 0,
                },
            ));
            continue;
        }
        if let Some((_, from, to)) = f.worker_loss(spec) {
            events.push((
                "worker_loss".into(),
                FailureEvent {
                    at: from,
                    restarted_at: to,
                    replayed: 0,
                },
            ));
            continue;
        }
        if f.kind == FailureKindName::Crash {
            continue;
        }
        let (Some(at), Some(d)) = (f.at, f.duration) else {
            continue;
        };
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        events.push((
            kind,
            FailureEvent {
                at: at.nanos(),
                restarted_at: at.nanos() + d.nanos(),
                replayed: 0,
            },
        ));
    }
    events.sort_by_key(|(_, e)| e.at);
    events
}

/// The marks of `events` (from [`struck`]) in `summary.json`.
pub fn marks(events: &[(String, FailureEvent)]) -> Vec<FailureMark> {
    events
        .iter()
        .map(|(kind, f)| FailureMark {
            kind: kind.clone(),
            at_ms: as_ms(f.at),
            recovered_ms: Some(as_ms(f.restarted_at)),
        })
        .collect()
}
