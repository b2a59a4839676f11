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
//!
//! The rooms: this file holds the public entry points and assembles an incarnation (graph,
//! restore, threads, report); `channels` makes the graph's links bounded channels;
//! `control` is what the coordinator and the subtask threads share (requests, commits, the
//! stop instant, slowdowns); `threads` holds the subtask loops; `coordinator_thread`
//! carries out the coordinator's decisions on the calling thread.
//!
//! Invariants: every window subtask is restored before any subtask runs; the sink is committed
//! up to the latest completed checkpoint before the run is reported; the per-record paths are
//! the subtasks' own, with no per-record locking or allocation added by the driver.

mod channels;
mod control;
mod coordinator_thread;
mod threads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;

use crate::checkpoint::CheckpointError;
use crate::cost::Slowdown;
use crate::dataflow::checkpoint::{read_checkpoint, SnapshotWriter};
use crate::dataflow::config::DataflowConfigError;
use crate::dataflow::coordinator::CheckpointCoordinator;
use crate::dataflow::graph::{BufferPools, JobContext, JobGraph, Subtask};
use crate::dataflow::network::Message;
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{CommitHook, SinkOperator, SourceStats};
use crate::fault::CheckpointPhase;
use crate::operators::{Output, Row};
use crate::run::{EngineRun, OutputStream};
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::Nanos;

use channels::Channels;
use control::{Ack, Control};
use coordinator_thread::CoordinatorThread;
use threads::{enter_slot, sink_loop, source_loop, window_loop, SubtaskContext};

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
        stream: None,
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
    /// Where the sink's delivered outputs go instead of the run's `delivered`.
    pub stream: Option<OutputStream>,
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
        stream,
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
        (Some(id), Some(dir)) => Some(read_checkpoint(dir, id, (p, job.keyed_layers()), source.partitions())?),
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
        pulse: stream.as_ref().and_then(OutputStream::pulse).cloned(),
    };
    let mut sink = SinkOperator::new(cfg.sink);
    sink.on_commit = on_commit;
    sink.stream = stream;
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
            Subtask::ResultSink(task) => {
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
    let mut result_inputs: BTreeMap<usize, Receiver<Message<Output>>> =
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
    // One sink, or (`chain_sink`) one per source subtask, merged in subtask order.
    let mut sinks = sinks.into_iter();
    let mut sink = sinks.next().expect("a job has a sink");
    sinks.for_each(|other| sink.absorb(other));
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
    sink.flush();
    let mut run = assemble(&job.name, sink, sources, windows, Vec::new());
    run.progress.append(&mut coordinator.progress);
    Ok(Incarnation {
        run,
        crashed: coordinator.crashed,
    })
}
