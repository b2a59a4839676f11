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
use streamlab_engines::dataflow::checkpoint::read_checkpoint;
use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::{run_live_durable, LiveFaults};
use streamlab_engines::dataflow::sim::SimulatedDataflow;
use streamlab_engines::dataflow::tasks::CommitHook;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::fault::{CheckpointPhase, CrashPoint, EngineStop};
use streamlab_engines::microbatch::checkpoint::CheckpointDir;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::runtime::Clock;
use streamlab_engines::runtime::Runtime;
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
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

/// The wall clock of a live engine run. A run keeps the instant it started in its checkpoint
/// directory (`started`, Unix ms); a resumed run continues that clock, so the open-loop source
/// schedule goes on where it was and the time the process was down shows as backlog.
fn live_clock(checkpoint: Option<&std::path::Path>, resume: bool) -> std::io::Result<LiveClock> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let Some(dir) = checkpoint else {
        return Ok(LiveClock::start());
    };
    let file = dir.join("started");
    if resume {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(started) = text.trim().parse::<u64>() {
                return Ok(LiveClock::resumed(now_ms.saturating_sub(started) * 1_000_000));
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&file, now_ms.to_string())?;
    Ok(LiveClock::start())
}

/// A per-record engine whose sink output is durable per checkpoint: exactly-once with
/// checkpoints (its committed transactions are written as they commit).
pub fn durable_per_record(cfg: &DataflowConfig) -> bool {
    cfg.sink == SinkGuarantee::ExactlyOnce && cfg.checkpoint_interval.is_some()
}

/// The latest completed checkpoint in a per-record checkpoint directory (one with a manifest)
/// whose sink transaction is committed, when the sink writes its transactions to `parts`.
///
/// A process killed between writing a checkpoint's manifest and the sink's commit of that
/// checkpoint's transaction would lose the transaction if it restarted from that checkpoint
/// (Flink commits it on recovery from the transaction handle kept in the sink's state; this
/// sink keeps its transaction in memory). Restarting from the checkpoint before it replays
/// those outputs instead, so the committed output stays exactly once.
fn latest_checkpoint(dir: &std::path::Path, parts: Option<&std::path::Path>) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("chk-")?
                .parse::<u64>()
                .ok()
        })
        .filter(|id| dir.join(format!("chk-{id}")).join("_metadata").is_file())
        .filter(|id| parts.is_none_or(|p| p.join(format!("{id:010}.csv")).is_file()))
        .max()
}

/// Sum of the source positions a checkpoint holds (how far its sources had read).
fn checkpoint_position(dir: &std::path::Path, id: u64, cfg: &DataflowConfig, partitions: usize) -> usize {
    read_checkpoint(dir, id, cfg.parallelism, partitions).map_or(0, |(sources, _)| sources.iter().map(|(_, o)| o).sum())
}

/// A live per-record job that survives crashes: at each crash instant its threads are torn
/// down (the run stops there, open transactions aborted), and after the restart strategy's
/// delay a new incarnation restores the latest completed checkpoint from the directory and goes
/// on, on the same clock. With `resume`, the first incarnation restores too (a killed process).
#[allow(clippy::too_many_arguments)]
fn run_live_recovering(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    log: &SourceLog,
    until: Nanos,
    checkpoint_dir: Option<std::path::PathBuf>,
    crashes: Vec<Nanos>,
    mut faults: LiveFaults,
    bounded: bool,
    resume: bool,
    hook: Option<impl FnMut(u64, &[streamlab_engines::run::Delivered]) -> std::io::Result<()> + Send + 'static>,
    parts: Option<std::path::PathBuf>,
) -> std::result::Result<EngineRun, String> {
    let hook = hook.map(|h| std::sync::Arc::new(std::sync::Mutex::new(h)));
    let clock = live_clock(checkpoint_dir.as_deref(), resume).map_err(|e| e.to_string())?;
    let latest = || {
        checkpoint_dir
            .as_deref()
            .and_then(|d| latest_checkpoint(d, parts.as_deref()))
    };
    let mut restore = if resume { latest() } else { None };
    let mut started_at = restore.map_or(0, |id| {
        checkpoint_dir
            .as_deref()
            .map_or(0, |d| checkpoint_position(d, id, cfg, log.partitions()))
    });
    let mut total: Option<EngineRun> = None;
    let mut pending = crashes.into_iter().filter(|&t| t < until).peekable();
    for restart in 1u32.. {
        let stop = pending.peek().copied().unwrap_or(until);
        // Every incarnation's sink writes through the same durable hook.
        let on_commit = hook.clone().map(|h| {
            CommitHook(Box::new(move |id, d: &[streamlab_engines::run::Delivered]| {
                (h.lock().expect("sink hook"))(id, d)
            }))
        });
        faults.restart_delay = cfg.restart.delay(restart).nanos();
        let incarnation = run_live_durable(
            name,
            cfg,
            pipeline,
            table,
            log,
            clock,
            stop,
            // A backlog is bounded input: the sources finish when it is consumed (the final
            // watermark fires every window), as a Flink job over a bounded source does.
            bounded && stop >= until,
            checkpoint_dir.clone(),
            restore,
            on_commit,
            &faults,
        )
        .map_err(|e| e.to_string())?;
        let mut run = incarnation.run;
        let read_to = started_at + run.counts.events as usize;
        // A crash inside a checkpoint phase ends the incarnation before the next planned one.
        let stop = match incarnation.crashed {
            Some((at, struck)) => {
                faults.phase_crashes.retain(|&c| c != struck);
                at
            }
            None => {
                if stop < until {
                    pending.next();
                }
                stop
            }
        };
        if stop < until {
            clock.wait_until(stop + cfg.restart.delay(restart).nanos());
            restore = latest();
            started_at = restore.map_or(0, |id| {
                checkpoint_dir
                    .as_deref()
                    .map_or(0, |d| checkpoint_position(d, id, cfg, log.partitions()))
            });
            let replayed = read_to.saturating_sub(started_at) as u64;
            run.counts.replayed += replayed;
            run.failures.push(streamlab_engines::run::FailureEvent {
                at: stop,
                restarted_at: clock.now(),
                replayed,
            });
        }
        match &mut total {
            None => total = Some(run),
            Some(t) => t.append(run),
        }
        if stop >= until {
            break;
        }
    }
    Ok(total.expect("at least one incarnation ran"))
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

/// A micro-batch query that survives crashes: on a crash it waits the restart delay and
/// restarts from its checkpoint directory, as a supervised Spark query would.
pub struct RecoveringQuery {
    engine: MicroBatchEngine,
    name: String,
    cfg: MicroBatchConfig,
    pipeline: PipelineSpec,
    table: CampaignTable,
    partitions: usize,
    dir: Option<CheckpointDir>,
    /// Crashes still to come, in order.
    crashes: Vec<CrashPoint>,
}

impl RecoveringQuery {
    /// A query for `engine`; with `checkpoint` it keeps a durable checkpoint there (required
    /// when `crashes` is not empty).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        cfg: MicroBatchConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
        checkpoint: Option<CheckpointDir>,
        mut crashes: Vec<CrashPoint>,
    ) -> std::result::Result<Self, String> {
        let mut engine = MicroBatchEngine::new(name, cfg, pipeline, table, partitions).map_err(|e| e.to_string())?;
        if let Some(dir) = &checkpoint {
            engine = engine.with_checkpoint(dir.clone());
        }
        crashes.reverse();
        engine.crash_at(crashes.pop());
        Ok(Self {
            engine,
            name: name.to_string(),
            cfg,
            pipeline: pipeline.clone(),
            table: table.clone(),
            partitions,
            dir: checkpoint,
            crashes,
        })
    }

    /// Resumes a query from an existing checkpoint directory (`--resume`).
    pub fn resume(
        name: &str,
        cfg: MicroBatchConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
        dir: CheckpointDir,
    ) -> std::result::Result<Self, String> {
        let engine = MicroBatchEngine::recover(name, cfg, pipeline, table, partitions, dir.clone(), 0)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            engine,
            name: name.to_string(),
            cfg,
            pipeline: pipeline.clone(),
            table: table.clone(),
            partitions,
            dir: Some(dir),
            crashes: Vec::new(),
        })
    }

    /// Runs until `until`, restarting after every crash.
    pub fn advance<R: Runtime>(
        &mut self,
        rt: &mut R,
        log: &SourceLog,
        until: Nanos,
    ) -> std::result::Result<(), String> {
        loop {
            match self.engine.advance(rt, log, until) {
                Ok(()) => return Ok(()),
                Err(EngineStop::Checkpoint(e)) => return Err(e.to_string()),
                Err(EngineStop::Crashed { at }) => {
                    let dir = self
                        .dir
                        .clone()
                        .ok_or("a crash needs a checkpoint directory to recover from")?;
                    let restart = at + self.cfg.restart_delay.nanos();
                    rt.wait_until(restart);
                    let mut fresh = MicroBatchEngine::recover(
                        &self.name,
                        self.cfg,
                        &self.pipeline,
                        &self.table,
                        self.partitions,
                        dir,
                        rt.now(),
                    )
                    .map_err(|e| e.to_string())?;
                    fresh.crash_at(self.crashes.pop());
                    fresh.set_sink_writer(self.engine.take_sink_writer());
                    fresh.take_over(&mut self.engine, at, rt.now());
                    self.engine = fresh;
                }
            }
        }
    }

    /// The engine currently running.
    pub fn engine(&mut self) -> &mut MicroBatchEngine {
        &mut self.engine
    }
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

/// A simulated engine that runs in segments.
enum Segmented {
    MicroBatch(Box<RecoveringQuery>, Box<SimRuntime>),
    PerRecord(Box<SimulatedDataflow>),
}

impl Segmented {
    /// Runs the segment `[from, to)`; returns what was delivered and, per partition, how far
    /// the engine has read.
    fn advance(
        &mut self,
        log: &SourceLog,
        from: Nanos,
        to: Nanos,
        until: Nanos,
        partitions: usize,
    ) -> std::result::Result<(Vec<Delivered>, Vec<usize>), String> {
        Ok(match self {
            Segmented::MicroBatch(q, rt) => {
                q.advance(&mut **rt, log, to)?;
                let mb = q.engine();
                (mb.take_delivered(), mb.committed_offsets().to_vec())
            }
            Segmented::PerRecord(pr) => {
                pr.resume_sources(from);
                // The last segment drains what is still in flight after the sources stop.
                pr.advance(log, if to >= until { Nanos::MAX } else { to })
                    .map_err(|e| e.to_string())?;
                (pr.take_delivered(), pr.consumed_offsets(partitions))
            }
        })
    }

    fn finish(self) -> EngineRun {
        match self {
            Segmented::MicroBatch(mut q, rt) => finished(q.engine(), &*rt),
            Segmented::PerRecord(pr) => pr.finish(),
        }
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

/// A micro-batch query's run, with the task retries its runtime made.
fn finished<R: Runtime>(engine: &mut MicroBatchEngine, rt: &R) -> EngineRun {
    let mut run = engine.finish();
    run.counts.task_retries += rt.task_retries();
    run
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
                        let mut rt = LiveRuntime::with_clock(clock, cfg.workers)
                            .with_slowdowns(slowdowns)
                            .with_task_failures(task_failures)
                            .with_worker_losses(worker_losses);
                        query.advance(&mut rt, log, until)?;
                        Ok(finished(query.engine(), &rt))
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
                    let mut rt = SimRuntime::new(cfg.workers, profile.costs)
                        .with_slowdowns(slowdowns)
                        .with_task_failures(task_failures)
                        .with_worker_losses(worker_losses);
                    if matches!(cfg.trigger, Trigger::ProcessingTime { .. }) {
                        Ok(Prepared::Segmented(Segmented::MicroBatch(
                            Box::new(query),
                            Box::new(rt),
                        )))
                    } else {
                        Ok(Prepared::Whole(Box::new(move |log| {
                            query.advance(&mut rt, log, until)?;
                            Ok(finished(query.engine(), &rt))
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
            let hook = match (&durability.sink_dir, durable_per_record(cfg)) {
                (Some(dir), true) => Some(part_writer(dir, &engine.name, pipeline)),
                _ => None,
            };
            let parts = match (&durability.sink_dir, durable_per_record(cfg)) {
                (Some(dir), true) => Some(parts_dir(dir, &engine.name)),
                _ => None,
            };
            Ok(Prepared::Whole(Box::new(move |log| {
                run_live_recovering(
                    &engine.name,
                    cfg,
                    pipeline,
                    table,
                    log,
                    until,
                    checkpoint_dir,
                    times,
                    faults,
                    backlog,
                    resume,
                    hook,
                    parts,
                )
            })))
        }
        (EngineKind::PerRecord(cfg), ClockSetup::Simulated { profile, cluster }) => {
            let pr = SimulatedDataflow::new(
                &engine.name,
                cfg,
                pipeline,
                table,
                partitions,
                &profile.costs,
                *cluster,
                until,
                false,
            )
            .map_err(|e| e.to_string())?;
            let pr = pr.with_slowdowns(slowdowns);
            let mut pr = match (&durability.checkpoint_root, cfg.checkpoint_interval) {
                (Some(root), Some(_)) => pr.with_checkpoint_dir(root.join(slug(&engine.name))),
                _ => pr,
            };
            let (times, in_checkpoints) = per_record_crashes(&crashes, engine, cfg)?;
            pr.crash_at(times);
            pr.crash_in_checkpoints(in_checkpoints);
            Ok(Prepared::Segmented(Segmented::PerRecord(Box::new(pr))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_skips_a_completed_checkpoint_whose_transaction_the_sink_never_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let (chk, parts) = (tmp.path().join("chk"), tmp.path().join("parts"));
        for id in 1..=3 {
            std::fs::create_dir_all(chk.join(format!("chk-{id}"))).unwrap();
            std::fs::write(chk.join(format!("chk-{id}")).join("_metadata"), "{}").unwrap();
        }
        std::fs::create_dir_all(&parts).unwrap();
        for id in 1..=2u64 {
            std::fs::write(parts.join(format!("{id:010}.csv")), "").unwrap();
        }
        // Killed after checkpoint 3's manifest, before the sink committed transaction 3.
        assert_eq!(latest_checkpoint(&chk, Some(&parts)), Some(2));
        assert_eq!(latest_checkpoint(&chk, None), Some(3), "without a durable sink");
        // A manifest-less directory is not a completed checkpoint.
        std::fs::create_dir_all(chk.join("chk-4")).unwrap();
        std::fs::write(parts.join(format!("{:010}.csv", 3)), "").unwrap();
        assert_eq!(latest_checkpoint(&chk, Some(&parts)), Some(3));
    }
}
