//! The live driver of the per-record engine: one OS thread per subtask, bounded crossbeam
//! channels between them (a full channel blocks the sender: backpressure), the wall clock.
//!
//! The job graph is [`crate::dataflow::graph`]'s: each of its links is a bounded channel here.
//!
//! Task slots as Flink's slot sharing fills them: source subtask k and window subtask k run in
//! slot k, an unchained sink in slot 0. With `pin_slots` each slot's threads are pinned to one
//! core (slot k on core k mod cores); on two cores, the scheduler otherwise now and then puts
//! both sources on one core, and the parallelism-2 YSB figure swings between 47 and 66 M
//! events/s where pinned it holds at 68 to 70 M.
//!
//! With `checkpoint_interval` set, the calling thread runs the checkpoint coordinator
//! ([`crate::dataflow::coordinator`]): every interval (on the live clock) it asks each source
//! subtask to inject barrier `id` (a "requested checkpoint" per source, looked at before each
//! of its steps); window subtasks align the barriers, snapshot their state and write it
//! themselves through the shared [`SnapshotWriter`]; the sink pre-commits its transaction.
//! Each acknowledges over a channel; when all have, the coordinator's completion is carried
//! out (manifest, progress) and the subtask holding the sink commits up to `id`. A run can
//! start from a completed checkpoint in a directory ([`run_live_with_checkpoints`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::checkpoint::CheckpointError;
use crate::cost::Slowdown;
use crate::dataflow::checkpoint::{read_checkpoint, SnapshotWriter};
use crate::dataflow::config::DataflowConfigError;
use crate::dataflow::coordinator::{Acknowledgement, CheckpointCoordinator, SnapshotFigures};
use crate::dataflow::graph::{BufferPools, JobContext, JobGraph, Links, Subtask};
use crate::dataflow::network::{BufferPool, Message};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{
    CommitHook, SinkItem, SinkOperator, SinkTask, SourceStats, SourceTask, Step, TaskSnapshot, WindowTask,
};
use crate::fault::CheckpointPhase;
use crate::operators::{Row, WindowResult};
use crate::run::EngineRun;
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::Nanos;

/// How often a subtask holding the sink looks for a completed checkpoint to commit when no
/// message arrives.
const COMMIT_POLL: Nanos = 1_000_000;

/// A source wakes this long after each multiple of the checkpoint interval, so the
/// coordinator's request is there when it looks.
const TRIGGER_SLACK: Nanos = 500_000;

/// Why a live run failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveRunError {
    /// The configuration is refused.
    #[error(transparent)]
    Config(#[from] DataflowConfigError),
    /// A checkpoint could not be written, or the one to restore from could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Failures injected into one live incarnation of the job.
#[derive(Clone, Debug, Default)]
pub struct LiveFaults {
    /// Stragglers and slow state stores. Subtask `k` runs in task slot `k % parallelism`
    /// (Flink's slot sharing: subtask `i` of every operator shares slot `i`); a straggling
    /// worker `w` is slot `w`, whose steps take `factor` times what they measured.
    pub slowdowns: Vec<Slowdown>,
    /// Crashes placed inside a checkpoint phase, `(checkpoint id, phase)`: the job is torn
    /// down when that checkpoint reaches the phase.
    pub phase_crashes: Vec<(u64, CheckpointPhase)>,
    /// After a crash in the `notify` phase, the restarted sink commits the transaction it
    /// pre-committed for the completed checkpoint (recover-and-commit) this long after the crash.
    pub restart_delay: Nanos,
}

/// How a live incarnation ended.
#[derive(Debug)]
pub struct Incarnation {
    /// What it produced.
    pub run: EngineRun,
    /// When it crashed inside a checkpoint phase, and which phase crash that was.
    pub crashed: Option<(Nanos, (u64, CheckpointPhase))>,
}

/// What a subtask tells the checkpoint coordinator.
enum Ack {
    /// Source subtask `k` injected barrier `id` at `at`; its read positions.
    Barrier {
        k: usize,
        id: u64,
        at: Nanos,
        positions: Vec<(usize, usize)>,
    },
    /// Subtask `k` aligned barrier `id`, snapshotted and stored its state (or could not).
    Snapshot {
        k: usize,
        id: u64,
        figures: SnapshotFigures,
        error: Option<CheckpointError>,
    },
    /// Subtask `k` finished. A source behind an exchange reports its final positions: its
    /// end-of-stream went downstream after all its records, so it needs no barrier for a
    /// checkpoint it missed. `None`: a checkpoint it missed cannot complete.
    Finished {
        k: usize,
        covers: Option<Vec<(usize, usize)>>,
    },
}

/// What the coordinator and the subtasks share.
struct Control {
    interval: Option<Nanos>,
    writer: SnapshotWriter,
    /// Per source subtask, the latest checkpoint it is asked to inject a barrier for.
    inject: Vec<AtomicU64>,
    /// The latest completed checkpoint: the subtask holding the sink commits up to it.
    commit_to: AtomicU64,
    /// The checkpoint the run started from (0: none); earlier ids are never requested.
    base: u64,
    /// When the job is torn down (`Nanos::MAX` until a phase crash strikes).
    stop: AtomicU64,
    slowdowns: Vec<Slowdown>,
    /// Slots: subtask `k` runs in slot `k % slots`.
    slots: usize,
}

impl Control {
    fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// The end of this incarnation: `until`, or earlier when a phase crash struck.
    fn until(&self, until: Nanos) -> Nanos {
        until.min(self.stop.load(Ordering::Acquire))
    }

    /// A straggling slot or a slow state store: subtask `k`'s step that started at `start`
    /// and spent `state_ns` of its measured time on state takes `factor` times as long; waits
    /// out the difference and returns the extra state time (0 with no slowdown in force).
    fn slow_down(&self, clock: &LiveClock, k: usize, start: Nanos, state_ns: Nanos) -> Nanos {
        if self.slowdowns.is_empty() {
            return 0;
        }
        let slot = k % self.slots;
        let all = Slowdown::factor_at(&self.slowdowns, slot, start, false);
        let state = Slowdown::factor_at(&self.slowdowns, slot, start, true);
        let took = clock.now().saturating_sub(start);
        let other = took.saturating_sub(state_ns) as f64 * (all - 1.0);
        let extra_state = (state_ns as f64 * (state - 1.0)) as Nanos;
        if other > 0.0 || extra_state > 0 {
            clock.wait_until(clock.now() + other as Nanos + extra_state);
        }
        extra_state
    }

    /// Commits what completed checkpoints cover, if any completed since `committed`.
    fn commit(&self, sink: &mut SinkOperator, committed: &mut u64, now: Nanos) {
        let to = self.commit_to.load(Ordering::Acquire);
        if to > *committed {
            sink.commit(to, now);
            *committed = to;
        }
    }

    /// When a source waiting for `t` at `now` must look again: no later than just after the
    /// next checkpoint trigger, and soon when it holds the sink and commits are due.
    fn source_wake(&self, t: Nanos, now: Nanos, holds_sink: bool) -> Nanos {
        let Some(interval) = self.interval else { return t };
        let trigger = (now / interval + 1) * interval + TRIGGER_SLACK;
        let mut wake = t.min(trigger);
        if holds_sink {
            wake = wake.min(now + COMMIT_POLL);
        }
        wake
    }

    /// A subtask aligned checkpoint `snapshot.id`: serialize its state (synchronous part),
    /// write it (asynchronous part), acknowledge. An incremental checkpoint of an LSM store was
    /// taken by the subtask itself at alignment (all synchronous here); only its figures are
    /// passed on.
    fn snapshot_taken(&self, k: usize, mut snapshot: TaskSnapshot, clock: &LiveClock, acks: &Sender<Ack>) {
        let start = clock.now();
        let id = snapshot.id;
        let mut serialized = self.writer.serialize(k, &mut snapshot);
        // The state is in its file now: the coordinator needs only what the manifest lists.
        snapshot.windows = Vec::new();
        let serialized_at = clock.now();
        let written = self.writer.write(k, id, &serialized);
        let written_at = clock.now();
        let (sync, asynchronous) = match &snapshot.incremental {
            Some(inc) => (inc.sync_ns, 0),
            None => (serialized_at - start, written_at - serialized_at),
        };
        let error = serialized.error.take().or(written.err());
        let figures = SnapshotFigures {
            alignment: start.saturating_sub(snapshot.alignment_started),
            sync,
            asynchronous,
            bytes: serialized.bytes,
            state_bytes: serialized.state_bytes,
            listed: serialized.listed.then_some(snapshot),
        };
        let _ = acks.send(Ack::Snapshot { k, id, figures, error });
    }
}

/// What a subtask thread runs with: its number, the clock, what it shares with the
/// coordinator, and the channel it acknowledges on.
struct SubtaskContext<'a> {
    k: usize,
    clock: LiveClock,
    ctl: &'a Control,
    acks: Sender<Ack>,
}

/// A sink subtask behind an exchange: delivers until every input has finished; pre-commits
/// on aligned barriers and commits completed checkpoints, even while no data arrives.
fn sink_loop<T: SinkItem>(
    mut task: Box<SinkTask<T>>,
    rx: Receiver<Message<T>>,
    pool: BufferPool<T>,
    cx: SubtaskContext<'_>,
) -> SinkOperator {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let mut committed = ctl.base;
    loop {
        ctl.commit(&mut task.sink, &mut committed, clock.now());
        let msg = if ctl.enabled() {
            match rx.recv_timeout(Duration::from_nanos(COMMIT_POLL)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        let start = clock.now();
        let outcome = task.on_message(msg, start);
        ctl.slow_down(&clock, k, start, 0);
        for b in outcome.buffers {
            pool.recycle(b);
        }
        if let Some(snapshot) = outcome.checkpoint {
            ctl.snapshot_taken(k, snapshot, &clock, &acks);
        }
        if outcome.finished {
            break;
        }
    }
    let _ = acks.send(Ack::Finished { k, covers: None });
    task.sink
}

/// A source subtask: reads, runs its chained operators and injects the barriers the
/// coordinator asks for, until `until` (or the end of bounded input).
fn source_loop(
    mut task: Box<SourceTask>,
    source: &SourceLog,
    until: Nanos,
    bounded: bool,
    cx: SubtaskContext<'_>,
) -> (Option<SinkOperator>, SourceStats) {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let holds_sink = task.chained_sink_mut().is_some();
    let (mut injected, mut committed) = (ctl.base, ctl.base);
    loop {
        if ctl.enabled() {
            // A checkpoint barrier goes out before this step's records.
            let id = ctl.inject[k].load(Ordering::Acquire);
            if id > injected {
                injected = id;
                let positions = task.inject_barrier(id);
                let _ = acks.send(Ack::Barrier {
                    k,
                    id,
                    at: clock.now(),
                    positions,
                });
            }
            if let Some(sink) = task.chained_sink_mut() {
                ctl.commit(sink, &mut committed, clock.now());
            }
        }
        let now = clock.now();
        let step = task.step(source, now, ctl.until(until), bounded);
        ctl.slow_down(&clock, k, now, 0);
        match step {
            Step::Continue => {}
            Step::WaitUntil(t) => clock.sleep_until(ctl.source_wake(t, now, holds_sink)),
            Step::Done => break,
        }
    }
    let (sink, stats) = task.finish(bounded);
    let covers = sink.is_none().then(|| stats.positions.clone());
    let _ = acks.send(Ack::Finished { k, covers });
    (sink, stats)
}

/// A window subtask: handles messages and fires timers until every input has finished.
fn window_loop(
    mut task: Box<WindowTask>,
    rx: Receiver<Message<Row>>,
    pool: BufferPool<Row>,
    cx: SubtaskContext<'_>,
) -> Box<WindowTask> {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let poll_commits = ctl.enabled() && task.chained_sink_mut().is_some();
    let mut committed = ctl.base;
    loop {
        if poll_commits {
            if let Some(sink) = task.chained_sink_mut() {
                ctl.commit(sink, &mut committed, clock.now());
            }
        }
        let now = clock.now();
        let deadline = task.next_deadline();
        let wake = match (deadline, poll_commits) {
            (Some(d), true) => Some(d.min(now + COMMIT_POLL)),
            (d, true) => d.or(Some(now + COMMIT_POLL)),
            (d, false) => d,
        };
        let msg = match wake {
            Some(wake) => {
                if deadline.is_some_and(|d| d <= now) {
                    task.on_tick(now);
                    continue;
                }
                match rx.recv_timeout(Duration::from_nanos(wake.saturating_sub(now).max(1))) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        task.on_tick(clock.now());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let now = clock.now();
        let state_before = task.state_access_ns();
        let outcome = task.on_message(msg, now);
        let extra = ctl.slow_down(&clock, k, now, task.state_access_ns() - state_before);
        task.add_state_time(extra);
        for b in outcome.buffers {
            pool.recycle(b);
        }
        if let Some(snapshot) = outcome.checkpoint {
            ctl.snapshot_taken(k, snapshot, &clock, &acks);
        }
        task.on_tick(now);
        if outcome.finished {
            break;
        }
    }
    let _ = acks.send(Ack::Finished { k, covers: None });
    task
}

/// The coordinator's side of a live run, on the calling thread: it triggers on the live clock,
/// hears acknowledgements, and carries out what the [`CheckpointCoordinator`] decides.
struct CoordinatorThread<'a> {
    ctl: &'a Control,
    clock: LiveClock,
    until: Nanos,
    sources: usize,
    /// Subtasks that have not finished.
    alive: BTreeSet<usize>,
    coordinator: CheckpointCoordinator,
    progress: Vec<serde_json::Value>,
    error: Option<CheckpointError>,
    /// The phase crash that struck, and when.
    crashed: Option<(Nanos, (u64, CheckpointPhase))>,
    /// The completed checkpoint whose pre-committed transaction the restarted sink commits.
    recover_commit: Option<u64>,
}

impl CoordinatorThread<'_> {
    /// Tears the job down now: checkpoint `id` reached `phase`, where a crash was planned.
    fn crash(&mut self, id: u64, phase: CheckpointPhase) {
        let now = self.clock.now();
        self.ctl.stop.fetch_min(now, Ordering::AcqRel);
        self.crashed = Some((now, (id, phase)));
        self.coordinator.halt();
    }

    /// Runs until every subtask has finished (all acknowledgement senders are gone).
    fn run(&mut self, acks: &Receiver<Ack>) {
        let Some(interval) = self.ctl.interval else {
            // No checkpoints: just wait for the end.
            while acks.recv().is_ok() {}
            return;
        };
        let mut next_trigger = interval;
        loop {
            let now = self.clock.now();
            if now >= next_trigger {
                self.trigger(now);
                next_trigger = self.coordinator.next_trigger_after(now);
            }
            let wait = next_trigger.saturating_sub(self.clock.now()).max(1);
            match acks.recv_timeout(Duration::from_nanos(wait)) {
                Ok(ack) => self.on_ack(ack),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn trigger(&mut self, now: Nanos) {
        let live_sources: Vec<usize> = self.alive.iter().copied().filter(|&k| k < self.sources).collect();
        if live_sources.is_empty() || now >= self.ctl.until(self.until) {
            return;
        }
        let Some(triggered) = self.coordinator.trigger(now, self.alive.clone()) else {
            return;
        };
        for k in live_sources {
            self.ctl.inject[k].fetch_max(triggered.id, Ordering::AcqRel);
        }
        if triggered.crash {
            self.crash(triggered.id, CheckpointPhase::Trigger);
        }
    }

    fn on_ack(&mut self, ack: Ack) {
        let now = self.clock.now();
        match ack {
            Ack::Barrier { k, id, at, positions } => {
                self.coordinator
                    .acknowledge(k, id, at, Acknowledgement::Barrier { at, positions });
            }
            Ack::Snapshot { k, id, figures, error } => {
                if let Some(e) = error {
                    // The checkpoint is declined; the run reports the error at its end.
                    self.coordinator.decline(id);
                    self.error.get_or_insert(e);
                }
                if self
                    .coordinator
                    .acknowledge(k, id, now, Acknowledgement::Snapshot(figures))
                    .crash
                {
                    self.crash(id, CheckpointPhase::Snapshot);
                }
            }
            Ack::Finished { k, covers } => {
                self.alive.remove(&k);
                self.coordinator.finished(k, covers.as_deref());
            }
        }
        self.complete_ready();
    }

    /// Carries out every checkpoint completion: manifest, progress, commit.
    fn complete_ready(&mut self) {
        while let Some(done) = self.coordinator.complete(self.clock.now()) {
            if let Err(e) = self.ctl.writer.write_manifest(&done) {
                self.error.get_or_insert(e);
                self.coordinator.fail();
                return;
            }
            self.progress.push(done.progress);
            if done.crash {
                // Complete, but the sink was not told: the restarted sink commits it.
                self.crash(done.id, CheckpointPhase::Notify);
                self.recover_commit = Some(done.id);
                return;
            }
            self.ctl.commit_to.fetch_max(done.id, Ordering::AcqRel);
        }
    }
}

/// Runs per-record `job` on OS threads and the wall clock until `until`. `bounded`: the
/// sources finish when their input is consumed and emit a final `MAX` watermark (Flink's
/// behaviour at the end of bounded input), so every window fires. With `checkpoint_interval`
/// set, checkpoints are taken (kept in memory only; see [`run_live_with_checkpoints`]).
pub fn run_live(
    job: &JobContext,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    match run_live_with_checkpoints(job, source, clock, until, bounded, None, None) {
        Ok(run) => Ok(run),
        Err(LiveRunError::Config(e)) => Err(e),
        Err(LiveRunError::Checkpoint(e)) => unreachable!("no checkpoint directory, so nothing to write: {e}"),
    }
}

/// [`run_live`] with its checkpoints written under `checkpoint_dir` (`chk-<id>/_metadata` and
/// one `subtask-<k>.state` per acknowledging subtask, as the simulated driver writes them), and
/// optionally started from completed checkpoint `restore_from` in that directory: sources
/// resume at its positions, window subtasks from its state, and checkpoint ids continue after
/// it. Outputs an exactly-once sink committed before that checkpoint are not produced again.
///
/// A bounded run commits the sink's remaining transactions when its input ends (Flink's final
/// checkpoint at the end of bounded input); an unbounded one leaves uncommitted what no
/// completed checkpoint covers. Checkpoint progress (`type: checkpoint`) is reported as in the
/// simulated driver. A checkpoint that cannot be written fails the run at its end.
pub fn run_live_with_checkpoints(
    job: &JobContext,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
    checkpoint_dir: Option<PathBuf>,
    restore_from: Option<u64>,
) -> Result<EngineRun, LiveRunError> {
    let plan = IncarnationPlan {
        until,
        bounded,
        checkpoint_dir,
        restore_from,
        on_commit: None,
    };
    run_live_durable(job, source, clock, plan, &LiveFaults::default()).map(|i| i.run)
}

/// What one incarnation of a live job runs to and starts from.
pub struct IncarnationPlan {
    /// When it stops (unless a phase crash tears it down earlier).
    pub until: Nanos,
    /// The input is bounded: the sources finish when it is consumed.
    pub bounded: bool,
    /// Where checkpoints are written.
    pub checkpoint_dir: Option<PathBuf>,
    /// The completed checkpoint in `checkpoint_dir` it starts from.
    pub restore_from: Option<u64>,
    /// Told of every transaction the sink commits (a durable sink: outputs survive the process).
    pub on_commit: Option<CommitHook>,
}

/// The live driver's links: one bounded channel per receiving subtask, made when the graph
/// first links to it.
struct Channels {
    capacity: usize,
    rows: BTreeMap<usize, Channel<Row>>,
    results: BTreeMap<usize, Channel<WindowResult>>,
}

/// Both ends of a bounded channel to one subtask.
type Channel<T> = (Sender<Message<T>>, Receiver<Message<T>>);

impl Links for Channels {
    type Rows = Sender<Message<Row>>;
    type Results = Sender<Message<WindowResult>>;

    fn rows_to(&mut self, to: usize) -> Self::Rows {
        let capacity = self.capacity;
        self.rows
            .entry(to)
            .or_insert_with(|| crossbeam_channel::bounded(capacity))
            .0
            .clone()
    }

    fn results_to(&mut self, to: usize) -> Self::Results {
        let capacity = self.capacity;
        self.results
            .entry(to)
            .or_insert_with(|| crossbeam_channel::bounded(capacity))
            .0
            .clone()
    }
}

/// [`run_live_with_checkpoints`] as one incarnation of a job under `faults`, which may be
/// torn down inside a checkpoint phase; its sink hands every committed transaction to
/// `plan.on_commit`.
pub fn run_live_durable(
    job: &JobContext,
    source: &SourceLog,
    clock: LiveClock,
    plan: IncarnationPlan,
    faults: &LiveFaults,
) -> Result<Incarnation, LiveRunError> {
    let IncarnationPlan {
        until,
        bounded,
        checkpoint_dir,
        restore_from,
        on_commit,
    } = plan;
    let cfg = &job.cfg;
    cfg.validate()?;
    let p = cfg.parallelism;
    let restored = match (restore_from, &checkpoint_dir) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(DataflowConfigError {
                key: "restore_from".into(),
                message: "restoring needs the checkpoint directory the checkpoint is in".into(),
            }
            .into())
        }
        (Some(id), Some(dir)) => Some(read_checkpoint(dir, id, p, source.partitions())?),
    };
    let ctl = Control {
        interval: cfg.checkpoint_interval.map(|i| i.nanos()),
        writer: SnapshotWriter::new(checkpoint_dir),
        inject: (0..p).map(|_| AtomicU64::new(0)).collect(),
        commit_to: AtomicU64::new(restore_from.unwrap_or(0)),
        base: restore_from.unwrap_or(0),
        stop: AtomicU64::new(Nanos::MAX),
        slowdowns: faults.slowdowns.clone(),
        slots: p,
    };
    let mut sink = SinkOperator::new(cfg.sink);
    sink.on_commit = on_commit;
    let pools = BufferPools::default();
    let mut channels = Channels {
        capacity: cfg.buffers_per_channel * p,
        rows: BTreeMap::new(),
        results: BTreeMap::new(),
    };
    let mut graph = JobGraph::build(job, &mut channels, &pools, sink)?;
    // Every window subtask is restored before any runs: a checkpoint that cannot be restored
    // stops the job before it starts.
    for (k, subtask) in graph.subtasks.iter_mut().enumerate() {
        match subtask {
            Subtask::Source(task) => {
                if let Some((positions, _)) = &restored {
                    task.restore_positions(positions);
                }
            }
            Subtask::Window(task) => {
                task.measure_state_time();
                if let Some(root) = ctl.writer.incremental_root(k) {
                    task.checkpoint_incrementally(root);
                }
                if let Some((_, snapshots)) = &restored {
                    if let Some((_, snapshot)) = snapshots.iter().find(|(j, _)| *j == k) {
                        task.restore(snapshot)?;
                    }
                }
            }
            _ => {}
        }
    }
    let Channels { rows, results, .. } = channels;
    let mut row_inputs: BTreeMap<usize, Receiver<Message<Row>>> =
        rows.into_iter().map(|(k, (_, rx))| (k, rx)).collect();
    let mut result_inputs: BTreeMap<usize, Receiver<Message<WindowResult>>> =
        results.into_iter().map(|(k, (_, rx))| (k, rx)).collect();

    let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<Ack>();
    let mut coordinator = CoordinatorThread {
        ctl: &ctl,
        clock,
        until,
        sources: graph.sources,
        alive: (0..graph.subtasks.len()).collect(),
        coordinator: CheckpointCoordinator::new(&job.name, ctl.interval.unwrap_or(1), ctl.base)
            .with_phase_crashes(faults.phase_crashes.clone())
            .with_sorted_manifests(),
        progress: Vec::new(),
        error: None,
        crashed: None,
        recover_commit: None,
    };
    let pin = cfg.pin_slots;
    let mut sinks: Vec<SinkOperator> = Vec::new();
    let mut sources: Vec<SourceStats> = Vec::new();
    let mut windows: Vec<WindowOutcome> = Vec::new();
    std::thread::scope(|s| {
        let ctl = &ctl;
        let mut source_handles = Vec::new();
        let mut window_handles = Vec::new();
        let mut sink_handles = Vec::new();
        for (k, subtask) in graph.subtasks.into_iter().enumerate() {
            let cx = SubtaskContext {
                k,
                clock,
                ctl,
                acks: ack_tx.clone(),
            };
            // Task slots as Flink's slot sharing fills them: subtask i of every operator in slot i.
            match subtask {
                Subtask::Source(task) => source_handles.push(s.spawn(move || {
                    enter_slot(pin, task.index);
                    source_loop(task, source, until, bounded, cx)
                })),
                Subtask::Window(task) => {
                    let rx = row_inputs.remove(&k).expect("a window subtask has inputs");
                    let pool = pools.rows.clone();
                    window_handles.push(s.spawn(move || {
                        enter_slot(pin, task.index);
                        window_loop(task, rx, pool, cx)
                    }));
                }
                Subtask::RowSink(task) => {
                    let rx = row_inputs.remove(&k).expect("a sink subtask has inputs");
                    let pool = pools.rows.clone();
                    sink_handles.push(s.spawn(move || {
                        enter_slot(pin, 0);
                        sink_loop(task, rx, pool, cx)
                    }));
                }
                Subtask::ResultSink(task) => {
                    let rx = result_inputs.remove(&k).expect("a sink subtask has inputs");
                    let pool = pools.results.clone();
                    sink_handles.push(s.spawn(move || {
                        enter_slot(pin, 0);
                        sink_loop(task, rx, pool, cx)
                    }));
                }
                Subtask::Done => {}
            }
        }
        drop(ack_tx);
        // The calling thread coordinates checkpoints until every subtask has finished.
        coordinator.run(&ack_rx);
        for h in source_handles {
            let (sink, stats) = h.join().expect("source subtask panicked");
            sinks.extend(sink);
            sources.push(stats);
        }
        for h in window_handles {
            let (sink, outcome) = h.join().expect("window subtask panicked").finish();
            sinks.extend(sink);
            windows.push(outcome);
        }
        for h in sink_handles {
            sinks.push(h.join().expect("sink subtask panicked"));
        }
    });

    if let Some(e) = coordinator.error.take() {
        return Err(e.into());
    }
    let mut sink = sinks.pop().expect("exactly one sink");
    debug_assert!(sinks.is_empty());
    let now = clock.now();
    // A checkpoint may have completed after the subtask holding the sink ended.
    sink.commit(ctl.commit_to.load(Ordering::Acquire), now);
    if bounded && ctl.enabled() {
        // The end of bounded input: the final checkpoint commits what remains.
        sink.pre_commit(u64::MAX);
        sink.commit(u64::MAX, now);
    }
    if let (Some(id), Some((at, _))) = (coordinator.recover_commit, coordinator.crashed) {
        // Recover-and-commit: the restarted sink commits what the completed checkpoint covers.
        sink.commit(id, at + faults.restart_delay);
    }
    let mut run = assemble(&job.name, sink, sources, windows, Vec::new());
    run.progress.append(&mut coordinator.progress);
    Ok(Incarnation {
        run,
        crashed: coordinator.crashed,
    })
}

/// Enters task slot `slot` on the calling subtask thread: with `pin`, the thread is pinned to
/// the slot's core (slot k on core k mod the machine's cores); without, the OS schedules it.
fn enter_slot(pin: bool, slot: usize) {
    if !pin {
        return;
    }
    if let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) {
        core_affinity::set_for_current(cores[slot % cores.len()]);
    }
}
