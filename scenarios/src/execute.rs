//! Running one engine configuration on a scenario's workload, on either clock.
//!
//! Live runs hold the whole workload in memory and run on real threads. Simulated runs of
//! triggered micro-batch queries and of the per-record engine advance in segments of
//! [`SEGMENT`] virtual time: the next segment's events are appended to the source log, the
//! engine runs up to the segment's end, what it delivered is handed to the caller, and the
//! events every reader is past are released. An hour of a high-rate clickstream therefore needs
//! only a few seconds of it in memory, and the results are the same as in one piece.

use std::path::Path;

use streamlab_engines::cluster::Cluster;
use streamlab_engines::cost::Slowdown;
use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::LiveFaults;
use streamlab_engines::dataflow::sim::SimulatedDataflow;
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::fault::{CheckpointPhase, CrashPoint};
use streamlab_engines::microbatch::checkpoint::CheckpointDir;
use streamlab_engines::microbatch::Trigger;
use streamlab_engines::recovery::micro_batch::{RecoveringQuery, SupervisedQuery};
use streamlab_engines::recovery::per_record::{live_clock, DurableSink, LiveJob, SimulatedJob};
use streamlab_engines::recovery::Supervisor;
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::runtime::{LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, NANOS_PER_SEC};

use crate::error_run::{Result, RunError};
use crate::profile::{load_profile, Profile};
use crate::results::{batch_file_writer, part_writer, parts_dir, slug};
use crate::spec::{ClockKind, EngineKind, EngineSpec, FailureSpec, Scenario, WorkloadSpec};
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
    /// [`crate::results::batch_file_writer`]).
    pub sink_dir: Option<std::path::PathBuf>,
}

/// A per-record engine whose sink output is durable per checkpoint: exactly-once with
/// checkpoints (its committed transactions are written as they commit).
pub fn durable_per_record(cfg: &DataflowConfig) -> bool {
    cfg.sink == SinkGuarantee::ExactlyOnce && cfg.checkpoint_interval.is_some()
}

/// Identifies a query for its checkpoint directory: the scenario's name, the engine run's name
/// and configuration, the pipeline. A directory written for anything else is refused.
pub fn fingerprint(scenario: &Scenario, engine: &EngineSpec) -> String {
    let config = match &engine.kind {
        EngineKind::MicroBatch(c) => serde_json::to_string(c),
        EngineKind::PerRecord(c) => serde_json::to_string(c),
    }
    .expect("configs serialize");
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

/// Virtual time a simulated run advances at once, at most.
pub const SEGMENT: Nanos = 5 * NANOS_PER_SEC;

/// Events a segment holds, at most (about 130 MB of them).
pub const SEGMENT_EVENTS: f64 = 2e6;

/// How the engine runs of a scenario are clocked.
#[derive(Clone, Debug)]
pub enum ClockSetup {
    /// Real threads and the wall clock, on this machine.
    Live,
    /// Virtual time, work priced by `profile`, on `cluster`.
    Simulated {
        /// The cost profile.
        profile: Profile,
        /// The simulated cluster.
        cluster: Cluster,
    },
}

impl ClockSetup {
    /// `"live"` or `"simulated"`.
    pub fn name(&self) -> &'static str {
        match self {
            ClockSetup::Live => "live",
            ClockSetup::Simulated { .. } => "simulated",
        }
    }
}

/// Prepares `clock` for `scenario`: loads its cost profile for the simulated clock, refuses a
/// multi-node cluster on the live one.
pub fn clock_setup(scenario: &Scenario, clock: ClockKind) -> Result<ClockSetup> {
    let pinned = scenario.engines.iter().enumerate().find(|(_, e)| pins_slots(e));
    match clock {
        ClockKind::Live if scenario.cluster.nodes > 1 => Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: format!(
                "key `cluster.nodes`: the live clock runs on this machine (1 node), not {}; use `clock = \"simulated\"` \
                 (or --clock simulated) to simulate a cluster",
                scenario.cluster.nodes
            ),
        }),
        ClockKind::Live => Ok(ClockSetup::Live),
        ClockKind::Simulated if matches!(&scenario.workload, WorkloadSpec::Clickstream(c) if c.backlog) => {
            Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: "key `workload.backlog`: a backlog measures how fast the engines run on this machine; \
                          use `clock = \"live\"` (on virtual time `streamlab capacity` finds the sustainable rate)"
                    .into(),
            })
        }
        ClockKind::Simulated if pinned.is_some() => {
            let (i, e) = pinned.expect("an engine pins its slots");
            Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: format!(
                    "key `engine[{i}].pin_slots` (engine `{}`): pinning task slots to cores pins this machine's threads; \
                     use `clock = \"live\"`, or drop the key on the simulated clock (it has no threads to pin)",
                    e.name
                ),
            })
        }
        ClockKind::Simulated => {
            let base = scenario.path.parent().unwrap_or(Path::new(""));
            let profile = load_profile(&scenario.profile, base)?;
            Ok(ClockSetup::Simulated { profile, cluster: scenario.cluster })
        }
    }
}

/// Whether `engine` is a per-record job with its task slots pinned to cores (live clock only).
fn pins_slots(engine: &EngineSpec) -> bool {
    matches!(&engine.kind, EngineKind::PerRecord(c) if c.pin_slots)
}

/// Runs one engine configuration of `scenario` on `workload` until `until`, handing its
/// outputs to `on_output` as they are produced (the returned run's `delivered` is empty).
pub fn run_engine(
    scenario: &Scenario,
    engine: &EngineSpec,
    workload: &Workload,
    until: Nanos,
    clock: &ClockSetup,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
) -> Result<EngineRun> {
    let durability = Durability::default();
    let mut runs = run_engines(
        scenario,
        &[engine],
        workload,
        until,
        clock,
        &durability,
        &mut |_| {},
        &mut |_, d| on_output(d),
    )?;
    Ok(runs.pop().expect("one run per engine"))
}

/// Runs several engine configurations of `scenario` on `workload` until `until`. Live runs go
/// one after another (so they do not compete for cores); simulated runs of triggered
/// micro-batch queries and per-record engines advance together, segment by segment, over one
/// source log generated once. `on_start` hears when each engine starts, `on_output` gets each
/// engine's outputs (by index) as they are produced.
#[allow(clippy::too_many_arguments)]
pub fn run_engines(
    scenario: &Scenario,
    engines: &[&EngineSpec],
    workload: &Workload,
    until: Nanos,
    clock: &ClockSetup,
    durability: &Durability,
    on_start: &mut dyn FnMut(&EngineSpec),
    on_output: &mut dyn FnMut(usize, Vec<Delivered>) -> Result<()>,
) -> Result<Vec<EngineRun>> {
    let mut runs: Vec<Option<EngineRun>> = engines.iter().map(|_| None).collect();
    let mut segmented: Vec<(usize, Segmented)> = Vec::new();
    let mut full_log: Option<SourceLog> = None;
    for (i, engine) in engines.iter().enumerate() {
        let refuse = |message: String| RunError::Engine {
            path: scenario.path.clone(),
            engine: engine.name.clone(),
            message,
        };
        match prepare(scenario, engine, workload, until, clock, durability).map_err(refuse)? {
            Prepared::Segmented(s) => {
                on_start(engine);
                segmented.push((i, s));
            }
            Prepared::Whole(run_whole) => {
                on_start(engine);
                let log = full_log.get_or_insert_with(|| workload.full_log());
                crate::rss::reset_peak();
                let start = crate::rss::resident();
                let mut run = run_whole(log).map_err(refuse)?;
                if let (ClockSetup::Live, Some((_, at_start)), Some((peak, at_end))) =
                    (clock, start, crate::rss::resident())
                {
                    run.resident = Some((at_start, peak, at_end));
                }
                on_output(i, std::mem::take(&mut run.delivered))?;
                runs[i] = Some(run);
            }
        }
    }
    drop(full_log);
    if !segmented.is_empty() {
        let partitions = workload.partitions;
        let mut log = SourceLog::from_events(partitions, []);
        log.set_outages(workload.outages.clone());
        let mut feed = workload.feed();
        let mut buf = Vec::new();
        let mut t = 0;
        while t < until {
            let to = workload.segment_end(t, SEGMENT, SEGMENT_EVENTS).min(until);
            buf.clear();
            feed.fill_until(to, &mut buf);
            log.append(buf.drain(..));
            let mut consumed = vec![usize::MAX; partitions];
            for (i, engine) in &mut segmented {
                let (delivered, read) =
                    engine
                        .advance(&log, t, to, until, partitions)
                        .map_err(|message| RunError::Engine {
                            path: scenario.path.clone(),
                            engine: engines[*i].name.clone(),
                            message,
                        })?;
                on_output(*i, delivered)?;
                for (c, r) in consumed.iter_mut().zip(read) {
                    *c = (*c).min(r);
                }
            }
            log.release_before(&consumed);
            t = to;
        }
        for (i, engine) in segmented {
            let mut run = engine.finish();
            on_output(i, std::mem::take(&mut run.delivered))?;
            runs[i] = Some(run);
        }
    }
    Ok(runs.into_iter().map(|r| r.expect("every engine ran")).collect())
}

/// A run over the whole log, in one go; an error is the engine's message.
type WholeRun<'a> = Box<dyn FnOnce(&SourceLog) -> std::result::Result<EngineRun, String> + 'a>;

/// An engine ready to run.
enum Prepared<'a> {
    /// Advances segment by segment on virtual time.
    Segmented(Segmented),
    /// Runs in one go over the whole log.
    Whole(WholeRun<'a>),
}

/// A simulated engine that runs in segments, under its supervisor.
struct Segmented(Box<dyn Supervisor>);

impl Segmented {
    /// Runs the segment `[from, to)`; returns what was delivered and, per partition, how far
    /// the engine has read.
    fn advance(
        &mut self,
        log: &SourceLog,
        _from: Nanos,
        to: Nanos,
        _until: Nanos,
        _partitions: usize,
    ) -> std::result::Result<(Vec<Delivered>, Vec<usize>), String> {
        self.0.advance(log, to).map_err(|e| e.to_string())?;
        Ok((self.0.take_delivered(), self.0.consumed_offsets()))
    }

    fn finish(self) -> EngineRun {
        self.0.finish()
    }
}

/// Refuses a failure naming a worker `engine` does not have on `clock`: a micro-batch
/// query's workers (executor task slots); a per-record job's task slots on the live clock (slot
/// `i` holds subtask `i` of every operator) or the simulated cluster's cores.
pub fn check_failure_workers(
    scenario: &Scenario,
    engine: &EngineSpec,
    clock: &ClockSetup,
) -> std::result::Result<(), String> {
    let (count, what) = match (&engine.kind, clock) {
        (EngineKind::MicroBatch(cfg), _) => (cfg.workers, "workers"),
        (EngineKind::PerRecord(cfg), ClockSetup::Live) => (cfg.parallelism, "task slots"),
        (EngineKind::PerRecord(_), ClockSetup::Simulated { cluster, .. }) => (cluster.cores(), "cores"),
    };
    let named = scenario.failures.iter().filter(|f| f.strikes(&engine.name));
    match named.filter_map(|f| f.worker).find(|&w| w >= count) {
        Some(w) => Err(format!(
            "key `failure.worker`: worker {w} does not exist; engine `{}` has {what} 0..{count}",
            engine.name
        )),
        None => Ok(()),
    }
}

/// A per-record job's crashes: the instants, and the `(checkpoint, phase)` placements (which
/// need an engine that takes checkpoints). A batch phase is refused: there are no batches.
#[allow(clippy::type_complexity)]
fn per_record_crashes(
    crashes: &[CrashPoint],
    engine: &EngineSpec,
    cfg: &DataflowConfig,
) -> std::result::Result<(Vec<Nanos>, Vec<(u64, CheckpointPhase)>), String> {
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

/// What the scenario's failures do to an engine, by `effect` (nothing in a failure-free
/// baseline run).
fn injected<T>(scenario: &Scenario, durability: &Durability, effect: impl Fn(&FailureSpec) -> Option<T>) -> Vec<T> {
    match durability.inject_failures {
        true => scenario.failures.iter().filter_map(effect).collect(),
        false => Vec::new(),
    }
}

/// Builds the engine for its clock; an error is the engine's message about its configuration.
fn prepare<'a>(
    scenario: &'a Scenario,
    engine: &'a EngineSpec,
    workload: &'a Workload,
    until: Nanos,
    clock: &'a ClockSetup,
    durability: &Durability,
) -> std::result::Result<Prepared<'a>, String> {
    check_failure_workers(scenario, engine, clock)?;
    let pipeline = &scenario.pipeline;
    let table = &workload.table;
    let partitions = workload.partitions;
    let crashes: Vec<CrashPoint> = injected(scenario, durability, |f| f.crash_point(engine));
    let slowdowns: Vec<Slowdown> = injected(scenario, durability, |f| f.slowdown(&engine.name));
    match (&engine.kind, clock) {
        (EngineKind::MicroBatch(cfg), _) => {
            let checkpoint = match (&durability.checkpoint_root, crashes.is_empty()) {
                (Some(root), _) => Some(
                    CheckpointDir::open(&root.join(slug(&engine.name)), &fingerprint(scenario, engine))
                        .map_err(|e| e.to_string())?,
                ),
                (None, true) => None,
                (None, false) => return Err("injected crashes need a checkpoint directory to recover from".into()),
            };
            let checkpoint_path = checkpoint.as_ref().map(|c| c.path().to_path_buf());
            let mut query = match &durability.resume {
                true => RecoveringQuery::resume(
                    &engine.name,
                    *cfg,
                    pipeline,
                    table,
                    partitions,
                    checkpoint.ok_or("--resume needs a checkpoint directory")?,
                )?,
                false => RecoveringQuery::new(&engine.name, *cfg, pipeline, table, partitions, checkpoint, crashes)?,
            };
            if let Some(dir) = &durability.sink_dir {
                query
                    .engine()
                    .set_sink_writer(Some(batch_file_writer(dir, &engine.name, pipeline)));
            }
            let resume = durability.resume;
            let task_failures = injected(scenario, durability, |f| f.task_failure(engine));
            let worker_losses = injected(scenario, durability, |f| f.worker_loss(engine));
            match clock {
                ClockSetup::Live => {
                    let slowdowns = slowdowns.clone();
                    Ok(Prepared::Whole(Box::new(move |log| {
                        let clock = live_clock(checkpoint_path.as_deref(), resume).map_err(|e| e.to_string())?;
                        let rt = LiveRuntime::with_clock(clock, cfg.workers)
                            .with_slowdowns(slowdowns)
                            .with_task_failures(task_failures)
                            .with_worker_losses(worker_losses);
                        let mut query = Box::new(SupervisedQuery::new(query, rt));
                        query.advance(log, until).map_err(|e| e.to_string())?;
                        Ok(query.finish())
                    })))
                }
                ClockSetup::Simulated { profile, cluster } => {
                    if cfg.workers > cluster.cores() {
                        return Err(format!(
                            "key `workers`: {} task slots do not fit on the cluster's {} cores",
                            cfg.workers,
                            cluster.cores()
                        ));
                    }
                    let rt = SimRuntime::new(cfg.workers, profile.costs)
                        .with_slowdowns(slowdowns)
                        .with_task_failures(task_failures)
                        .with_worker_losses(worker_losses);
                    let mut query = Box::new(SupervisedQuery::new(query, rt));
                    if matches!(cfg.trigger, Trigger::ProcessingTime { .. }) {
                        Ok(Prepared::Segmented(Segmented(query)))
                    } else {
                        Ok(Prepared::Whole(Box::new(move |log| {
                            query.advance(log, until).map_err(|e| e.to_string())?;
                            Ok(query.finish())
                        })))
                    }
                }
            }
        }
        (EngineKind::PerRecord(cfg), ClockSetup::Live) => {
            cfg.validate().map_err(|e| e.to_string())?;
            let checkpoint_dir = match (&durability.checkpoint_root, cfg.checkpoint_interval) {
                (Some(root), Some(_)) => Some(root.join(slug(&engine.name))),
                _ => None,
            };
            if !crashes.is_empty() && checkpoint_dir.is_none() && cfg.sink == SinkGuarantee::ExactlyOnce {
                return Err("an exactly-once sink needs checkpoints".into());
            }
            let (times, phase_crashes) = per_record_crashes(&crashes, engine, cfg)?;
            let faults = LiveFaults {
                slowdowns,
                phase_crashes,
                ..Default::default()
            };
            let resume = durability.resume;
            let backlog = workload.backlog();
            // An exactly-once sink writes each committed transaction durably.
            let sink = match (&durability.sink_dir, durable_per_record(cfg)) {
                (Some(dir), true) => Some(DurableSink {
                    writer: Box::new(part_writer(dir, &engine.name, pipeline)),
                    parts: parts_dir(dir, &engine.name),
                }),
                _ => None,
            };
            Ok(Prepared::Whole(Box::new(move |log| {
                let job = JobContext::new(&engine.name, cfg, pipeline, table, log.partitions());
                let mut job = Box::new(
                    LiveJob::new(job, until)
                        .with_checkpoint_dir(checkpoint_dir, resume)
                        .with_faults(times, faults)
                        .bounded(backlog)
                        .with_durable_sink(sink),
                );
                job.advance(log, until).map_err(|e| e.to_string())?;
                Ok(job.finish())
            })))
        }
        (EngineKind::PerRecord(cfg), ClockSetup::Simulated { profile, cluster }) => {
            let job = JobContext::new(&engine.name, cfg, pipeline, table, partitions);
            let pr = SimulatedDataflow::new(&job, &profile.costs, *cluster, until, false).map_err(|e| e.to_string())?;
            let pr = pr.with_slowdowns(slowdowns);
            let mut pr = match (&durability.checkpoint_root, cfg.checkpoint_interval) {
                (Some(root), Some(_)) => pr.with_checkpoint_dir(root.join(slug(&engine.name))),
                _ => pr,
            };
            let (times, in_checkpoints) = per_record_crashes(&crashes, engine, cfg)?;
            pr.crash_at(times);
            pr.crash_in_checkpoints(in_checkpoints);
            Ok(Prepared::Segmented(Segmented(Box::new(SimulatedJob::new(pr, until)))))
        }
    }
}
