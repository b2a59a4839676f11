//! The live driver of the per-record engine: one OS thread per subtask, bounded crossbeam
//! channels between them (a full channel blocks the sender: backpressure), the wall clock.
//!
//! Topology, as Flink would chain it: the filter and join are chained into each source
//! subtask; a key-by is always a network exchange; the sink has parallelism 1, so it is chained
//! when the operator before it has parallelism 1 and reached through an exchange otherwise.
//!
//! Subtasks are numbered as in the simulated driver: sources `0..p`, window subtasks `p..2p`,
//! then the sink subtask (when it is not chained).
//!
//! Task slots as Flink's slot sharing fills them: source subtask k and window subtask k run in
//! slot k, an unchained sink in slot 0. With `pin_slots` each slot's threads are pinned to one
//! core (slot k on core k mod cores); on two cores, the scheduler otherwise now and then puts
//! both sources on one core, and the parallelism-2 YSB figure swings between 47 and 66 M
//! events/s where pinned it holds at 68 to 70 M.
//!
//! With `checkpoint_interval` set, the calling thread is the checkpoint coordinator: every
//! interval (on the live clock) it asks each source subtask to inject barrier `id` (a
//! "requested checkpoint" per source, looked at before each of its steps); window subtasks
//! align the barriers, snapshot their state and write it themselves; the sink pre-commits its
//! transaction. Each acknowledges over a channel; when all have, the coordinator writes
//! `chk-<id>/_metadata` (the simulated driver's format) and the subtask holding the sink
//! commits up to `id`. A run can start from a completed checkpoint in a directory
//! ([`run_live_with_checkpoints`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::cost::Slowdown;
use crate::dataflow::checkpoint::{
    incremental_error, incremental_root, manifest_json, read_checkpoint, write_file, ListedSubtask,
};
use crate::dataflow::config::{DataflowConfig, DataflowConfigError};
use crate::dataflow::network::{BufferPool, Message, OutputGate};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{
    CommitHook, ResultOutput, RowOutput, SinkItem, SinkOperator, SinkTask, SourceStats, SourceTask, Step, TaskSnapshot,
    WindowTask,
};
use crate::dimension::CampaignTable;
use crate::fault::CheckpointPhase;
use crate::microbatch::checkpoint::{frame, CheckpointError};
use crate::operators::stateless::StatelessChain;
use crate::operators::window::StateDelta;
use crate::operators::{Row, WindowResult};
use crate::pipeline::PipelineSpec;
use crate::run::EngineRun;
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::{as_ms, EventTime, Nanos};

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
    /// Subtask `k` aligned barrier `id`, snapshotted and stored its state.
    Snapshot {
        k: usize,
        id: u64,
        alignment: Nanos,
        sync: Nanos,
        asynchronous: Nanos,
        bytes: u64,
        /// What its state takes in all (more than `bytes` for an incremental checkpoint).
        state_bytes: u64,
        /// Its watermark and whether its state is an incremental checkpoint, when the manifest
        /// lists it (state or a watermark to restore).
        listed: Option<(EventTime, bool)>,
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
    dir: Option<PathBuf>,
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
    /// taken by the subtask itself at alignment (flush and upload of new runs, all synchronous
    /// here); only its figures are passed on.
    fn snapshot_taken(&self, k: usize, snapshot: TaskSnapshot, clock: &LiveClock, acks: &Sender<Ack>) {
        let start = clock.now();
        let alignment = start.saturating_sub(snapshot.alignment_started);
        let listed =
            (!snapshot.windows.is_empty() || snapshot.incremental.is_some() || snapshot.watermark != EventTime::MIN)
                .then_some((snapshot.watermark, snapshot.incremental.is_some()));
        if let Some(inc) = &snapshot.incremental {
            let _ = acks.send(Ack::Snapshot {
                k,
                id: snapshot.id,
                alignment,
                sync: inc.sync_ns,
                asynchronous: 0,
                bytes: inc.bytes_written,
                state_bytes: inc.state_bytes,
                listed,
                error: incremental_error(k, inc),
            });
            return;
        }
        let encoded = StateDelta {
            upserts: snapshot.windows,
            deletes: Vec::new(),
        }
        .encode();
        let framed = frame(&encoded);
        let serialized = clock.now();
        let error = self.dir.as_ref().and_then(|dir| {
            let path = dir
                .join(format!("chk-{}", snapshot.id))
                .join(format!("subtask-{k}.state"));
            write_file(&path, &framed).err()
        });
        let written = clock.now();
        let _ = acks.send(Ack::Snapshot {
            k,
            id: snapshot.id,
            alignment,
            sync: serialized - start,
            asynchronous: written - serialized,
            bytes: encoded.len() as u64,
            state_bytes: encoded.len() as u64,
            listed,
            error,
        });
    }
}

/// A sink subtask behind an exchange: delivers until every input has finished; pre-commits
/// on aligned barriers and commits completed checkpoints, even while no data arrives.
fn sink_loop<T: SinkItem>(
    rx: Receiver<Message<T>>,
    mut task: SinkTask<T>,
    pool: BufferPool<T>,
    clock: LiveClock,
    k: usize,
    ctl: &Control,
    acks: Sender<Ack>,
) -> SinkOperator {
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

#[allow(clippy::too_many_arguments)]
fn source_loop(
    mut task: SourceTask,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
    ctl: &Control,
    acks: Sender<Ack>,
) -> (Option<SinkOperator>, SourceStats) {
    let k = task.index;
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

#[allow(clippy::too_many_arguments)]
fn window_loop(
    mut task: WindowTask,
    rx: Receiver<Message<Row>>,
    pool: BufferPool<Row>,
    clock: LiveClock,
    k: usize,
    ctl: &Control,
    acks: Sender<Ack>,
) -> WindowTask {
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

/// A checkpoint in progress.
struct Pending {
    trigger: Nanos,
    /// Subtasks that have not acknowledged yet.
    waiting: BTreeSet<usize>,
    sources: Vec<(usize, usize)>,
    /// Window subtasks listed in the manifest, with their watermarks.
    windows: Vec<ListedSubtask>,
    start_delay: Nanos,
    alignment: Nanos,
    sync: Nanos,
    asynchronous: Nanos,
    bytes: u64,
    state_bytes: u64,
}

/// The checkpoint coordinator, run by the calling thread while the subtasks run.
struct Coordinator<'a> {
    name: &'a str,
    ctl: &'a Control,
    clock: LiveClock,
    until: Nanos,
    sources: usize,
    alive: BTreeSet<usize>,
    /// Final positions of sources that finished (behind an exchange).
    finished_positions: Vec<(usize, usize)>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    progress: Vec<serde_json::Value>,
    error: Option<CheckpointError>,
    /// Crashes still planned inside checkpoint phases.
    phase_crashes: Vec<(u64, CheckpointPhase)>,
    /// The phase crash that struck, and when.
    crashed: Option<(Nanos, (u64, CheckpointPhase))>,
    /// The completed checkpoint whose pre-committed transaction the restarted sink commits.
    recover_commit: Option<u64>,
}

impl Coordinator<'_> {
    /// Tears the job down now if a crash is planned for checkpoint `id` reaching `phase`.
    fn crash_in(&mut self, id: u64, phase: CheckpointPhase) -> bool {
        let Some(i) = self.phase_crashes.iter().position(|&c| c == (id, phase)) else {
            return false;
        };
        self.phase_crashes.swap_remove(i);
        let now = self.clock.now();
        self.ctl.stop.fetch_min(now, Ordering::AcqRel);
        self.crashed = Some((now, (id, phase)));
        true
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
                next_trigger = (now / interval + 1) * interval;
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
        if live_sources.is_empty() || now >= self.ctl.until(self.until) || self.error.is_some() {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                trigger: now,
                waiting: self.alive.clone(),
                sources: self.finished_positions.clone(),
                windows: Vec::new(),
                start_delay: 0,
                alignment: 0,
                sync: 0,
                asynchronous: 0,
                bytes: 0,
                state_bytes: 0,
            },
        );
        for k in live_sources {
            self.ctl.inject[k].fetch_max(id, Ordering::AcqRel);
        }
        self.crash_in(id, CheckpointPhase::Trigger);
    }

    fn on_ack(&mut self, ack: Ack) {
        match ack {
            Ack::Barrier { k, id, at, positions } => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.start_delay = p.start_delay.max(at.saturating_sub(p.trigger));
                    p.sources.extend(positions);
                    p.waiting.remove(&k);
                }
            }
            Ack::Snapshot {
                k,
                id,
                alignment,
                sync,
                asynchronous,
                bytes,
                state_bytes,
                listed,
                error,
            } => {
                if let Some(e) = error {
                    // The checkpoint is declined; the run reports the error at its end.
                    self.pending.remove(&id);
                    self.error.get_or_insert(e);
                }
                if let Some(p) = self.pending.get_mut(&id) {
                    p.alignment = p.alignment.max(alignment);
                    p.sync = p.sync.max(sync);
                    p.asynchronous = p.asynchronous.max(asynchronous);
                    p.bytes += bytes;
                    p.state_bytes += state_bytes;
                    if let Some((wm, incremental)) = listed {
                        p.windows.push((k, wm, incremental));
                    }
                    p.waiting.remove(&k);
                    if self.crashed.is_none() {
                        self.crash_in(id, CheckpointPhase::Snapshot);
                    }
                }
            }
            Ack::Finished { k, covers } => {
                self.alive.remove(&k);
                if let Some(positions) = &covers {
                    self.finished_positions.extend(positions.iter().copied());
                }
                self.pending.retain(|_, p| {
                    if !p.waiting.remove(&k) {
                        return true;
                    }
                    match &covers {
                        Some(positions) => {
                            p.sources.extend(positions.iter().copied());
                            true
                        }
                        None => false, // it finished without its part: abandoned
                    }
                });
            }
        }
        self.complete_ready();
    }

    /// Completes every checkpoint all subtasks acknowledged: manifest, progress, commit.
    fn complete_ready(&mut self) {
        // A torn-down job completes nothing more.
        while let Some(id) = self
            .pending
            .iter()
            .find(|(_, p)| p.waiting.is_empty())
            .map(|(&id, _)| id)
            .filter(|_| self.crashed.is_none())
        {
            let Some(mut p) = self.pending.remove(&id) else { return };
            // Older checkpoints still pending are subsumed by this one.
            self.pending.retain(|&i, _| i > id);
            p.sources.sort_unstable();
            p.windows.sort_unstable_by_key(|&(k, _, _)| k);
            if let Some(dir) = &self.ctl.dir {
                let manifest = manifest_json(id, &p.sources, &p.windows);
                let path = dir.join(format!("chk-{id}")).join("_metadata");
                if let Err(e) = write_file(&path, manifest.to_string().as_bytes()) {
                    self.error.get_or_insert(e);
                    self.pending.clear();
                    return;
                }
            }
            let now = self.clock.now();
            self.progress.push(serde_json::json!({
                "run": self.name, "type": "checkpoint", "id": id,
                "triggerTimeMs": as_ms(p.trigger), "completedTimeMs": as_ms(now),
                "startDelayMs": as_ms(p.start_delay), "alignmentMs": as_ms(p.alignment),
                "syncMs": as_ms(p.sync), "asyncMs": as_ms(p.asynchronous),
                "durationMs": as_ms(now - p.trigger), "bytes": p.bytes, "stateBytes": p.state_bytes,
            }));
            if self.crash_in(id, CheckpointPhase::Notify) {
                // Complete, but the sink was not told: the restarted sink commits it.
                self.recover_commit = Some(id);
                return;
            }
            self.ctl.commit_to.fetch_max(id, Ordering::AcqRel);
        }
    }
}

/// Runs the per-record engine on OS threads and the wall clock until `until`. `bounded`: the
/// sources finish when their input is consumed and emit a final `MAX` watermark (Flink's
/// behaviour at the end of bounded input), so every window fires. With `checkpoint_interval`
/// set, checkpoints are taken (kept in memory only; see [`run_live_with_checkpoints`]).
#[allow(clippy::too_many_arguments)]
pub fn run_live(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    match run_live_with_checkpoints(name, cfg, pipeline, table, source, clock, until, bounded, None, None) {
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
#[allow(clippy::too_many_arguments)]
pub fn run_live_with_checkpoints(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
    checkpoint_dir: Option<PathBuf>,
    restore_from: Option<u64>,
) -> Result<EngineRun, LiveRunError> {
    run_live_durable(
        name,
        cfg,
        pipeline,
        table,
        source,
        clock,
        until,
        bounded,
        checkpoint_dir,
        restore_from,
        None,
        &LiveFaults::default(),
    )
    .map(|i| i.run)
}

/// [`run_live_with_checkpoints`] whose sink also hands every committed transaction to
/// `on_commit` (a durable sink: outputs survive the process), under injected `faults`: one
/// incarnation of a job that may be torn down inside a checkpoint phase.
#[allow(clippy::too_many_arguments)]
pub fn run_live_durable(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
    checkpoint_dir: Option<PathBuf>,
    restore_from: Option<u64>,
    on_commit: Option<CommitHook>,
    faults: &LiveFaults,
) -> Result<Incarnation, LiveRunError> {
    let mut on_commit = on_commit;
    let mut new_sink = || {
        let mut sink = SinkOperator::new(cfg.sink);
        sink.on_commit = on_commit.take();
        sink
    };
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
        dir: checkpoint_dir,
        inject: (0..p).map(|_| AtomicU64::new(0)).collect(),
        commit_to: AtomicU64::new(restore_from.unwrap_or(0)),
        base: restore_from.unwrap_or(0),
        stop: AtomicU64::new(Nanos::MAX),
        slowdowns: faults.slowdowns.clone(),
        slots: p,
    };
    let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<Ack>();
    let chain = StatelessChain::new(pipeline, table);
    let capacity = cfg.buffer_rows();
    let flush_each = cfg.buffer_timeout.nanos() == 0;
    let channel_capacity = cfg.buffers_per_channel * p;
    let pin = cfg.pin_slots;
    let row_pool = BufferPool::<Row>::new();
    let result_pool = BufferPool::<WindowResult>::new();

    let mut sinks: Vec<SinkOperator> = Vec::new();
    let mut sources: Vec<SourceStats> = Vec::new();
    let mut windows: Vec<WindowOutcome> = Vec::new();
    let mut coordinator = Coordinator {
        name,
        ctl: &ctl,
        clock,
        until,
        sources: p,
        alive: BTreeSet::new(),
        finished_positions: Vec::new(),
        next_id: ctl.base + 1,
        pending: BTreeMap::new(),
        progress: Vec::new(),
        error: None,
        phase_crashes: faults.phase_crashes.clone(),
        crashed: None,
        recover_commit: None,
    };

    let mut restore_error: Option<CheckpointError> = None;
    std::thread::scope(|s| {
        let ctl = &ctl;
        let mut source_handles = Vec::new();
        let mut window_handles = Vec::new();
        let mut sink_handle = None;
        let mut result_sink_handle = None;
        let make_source = |i: usize, out: RowOutput| {
            let mut task = SourceTask::new(i, p, source.partitions(), chain.clone(), cfg, out);
            if let Some((positions, _)) = &restored {
                task.restore_positions(positions);
            }
            task
        };
        let make_window = |j: usize, out: ResultOutput| -> Result<WindowTask, CheckpointError> {
            let mut task = WindowTask::new(j, p, *pipeline.aggregate.as_ref().expect("stateful"), cfg, out);
            task.measure_state_time();
            if let Some(dir) = &ctl.dir {
                task.checkpoint_incrementally(dir.join(incremental_root(p + j)));
            }
            if let Some((_, snapshots)) = &restored {
                if let Some((_, snapshot)) = snapshots.iter().find(|(k, _)| *k == p + j) {
                    task.restore(snapshot)?;
                }
            }
            Ok(task)
        };
        let mut spawn_source = |task: SourceTask| {
            let acks = ack_tx.clone();
            source_handles.push(s.spawn(move || {
                enter_slot(pin, task.index);
                source_loop(task, source, clock, until, bounded, ctl, acks)
            }));
        };
        let mut subtasks = p;
        match &pipeline.aggregate {
            None if p == 1 => {
                spawn_source(make_source(0, RowOutput::Chained(Box::new(new_sink()))));
            }
            None => {
                let (tx, rx) = crossbeam_channel::bounded(channel_capacity);
                let pool = row_pool.clone();
                let acks = ack_tx.clone();
                let task = SinkTask::new(new_sink(), p);
                sink_handle = Some(s.spawn(move || {
                    enter_slot(pin, 0);
                    sink_loop(rx, task, pool, clock, p, ctl, acks)
                }));
                subtasks += 1;
                for i in 0..p {
                    let gate = OutputGate::new(i, vec![tx.clone()], capacity, flush_each, row_pool.clone());
                    spawn_source(make_source(i, RowOutput::ToSink(gate)));
                }
            }
            Some(agg) => {
                let (window_txs, window_rxs): (Vec<Sender<_>>, Vec<Receiver<_>>) = (0..p)
                    .map(|_| crossbeam_channel::bounded::<Message<Row>>(channel_capacity))
                    .unzip();
                let result_tx = if p == 1 {
                    None
                } else {
                    let (tx, rx) = crossbeam_channel::bounded(channel_capacity);
                    let pool = result_pool.clone();
                    let acks = ack_tx.clone();
                    let task = SinkTask::new(new_sink(), p);
                    result_sink_handle = Some(s.spawn(move || {
                        enter_slot(pin, 0);
                        sink_loop(rx, task, pool, clock, 2 * p, ctl, acks)
                    }));
                    subtasks = 2 * p + 1;
                    Some(tx)
                };
                subtasks = subtasks.max(2 * p);
                // Every window subtask is restored before any runs: a checkpoint that cannot be
                // restored stops the job before it starts.
                let mut tasks = Vec::new();
                for (j, rx) in window_rxs.into_iter().enumerate() {
                    let out = match &result_tx {
                        None => ResultOutput::Chained(Box::new(new_sink())),
                        Some(tx) => ResultOutput::Gate(OutputGate::new(
                            j,
                            vec![tx.clone()],
                            capacity,
                            flush_each,
                            result_pool.clone(),
                        )),
                    };
                    match make_window(j, out) {
                        Ok(task) => tasks.push((j, task, rx)),
                        Err(e) => {
                            restore_error.get_or_insert(e);
                        }
                    }
                }
                drop(result_tx);
                if restore_error.is_some() {
                    return;
                }
                for (j, task, rx) in tasks {
                    let pool = row_pool.clone();
                    let acks = ack_tx.clone();
                    window_handles.push(s.spawn(move || {
                        enter_slot(pin, j);
                        window_loop(task, rx, pool, clock, p + j, ctl, acks)
                    }));
                }
                for i in 0..p {
                    let gate = OutputGate::new(i, window_txs.clone(), capacity, flush_each, row_pool.clone());
                    let out = RowOutput::Keyed {
                        gate,
                        key_by: agg.key_by,
                    };
                    spawn_source(make_source(i, out));
                }
            }
        }
        drop(ack_tx);
        // The calling thread coordinates checkpoints until every subtask has finished.
        coordinator.alive = (0..subtasks).collect();
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
        sinks.extend(sink_handle.map(|h| h.join().expect("sink subtask panicked")));
        sinks.extend(result_sink_handle.map(|h| h.join().expect("sink subtask panicked")));
    });

    if let Some(e) = restore_error.or(coordinator.error.take()) {
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
    let mut run = assemble(name, sink, sources, windows, Vec::new());
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
