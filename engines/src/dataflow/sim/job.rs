//! The public face of the simulated driver: a per-record job on virtual time that a
//! supervisor advances in segments, crashes, tears down and restarts.
//!
//! [`SimulatedDataflow`] builds the job graph and the driver state; [`run_simulated`] runs a
//! job without crashes from start to end. Everything here delegates to the event loop and its
//! rooms; the only logic of its own is assembling the run's report at the end and the offsets
//! below which the source log may be released.
//!
//! Invariant: [`SimulatedDataflow::consumed_offsets`] never exceeds what a restart could rewind
//! to, so releasing the source log below it loses nothing a replay needs.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;

use crate::checkpoint::CheckpointError;
use crate::cluster::Cluster;
use crate::cost::{CostModel, ReadPrices};
use crate::dataflow::checkpoint::SnapshotWriter;
use crate::dataflow::config::DataflowConfigError;
use crate::dataflow::coordinator::CheckpointCoordinator;
use crate::dataflow::graph::{BufferPools, JobContext, JobGraph};
use crate::dataflow::outcome::assemble;
use crate::dataflow::tasks::SinkOperator;
use crate::fault::CheckpointPhase;
use crate::run::{Delivered, EngineRun};
use crate::source::SourceLog;
use crate::time::Nanos;

use super::checkpoints::Checkpointing;
use super::links::SimLinks;
use super::{Sim, Subtask};

/// Runs per-record `job` on virtual time until `until`, on `cluster`, with work priced by
/// `cost`. `bounded` as in [`crate::dataflow::live::run_live`].
pub fn run_simulated(
    job: &JobContext,
    source: &SourceLog,
    cost: &CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    let mut sim = SimulatedDataflow::new(job, cost, cluster, until, bounded)?;
    if let Err(stop) = sim.advance(source, Nanos::MAX) {
        unreachable!("no checkpoint directory and no crash planned: {stop}");
    }
    Ok(sim.finish())
}

/// Why a simulated run stopped before the instant it was advanced to.
#[derive(Debug, thiserror::Error)]
pub enum SimulatedStop {
    /// The job crashed at this instant: a supervisor restarts it
    /// ([`SimulatedDataflow::tear_down`], [`SimulatedDataflow::restart`]).
    #[error("the job crashed at {0} ns")]
    Crashed(Nanos),
    /// A checkpoint could not be written, or the one to restore from could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A per-record engine on virtual time that can be advanced in segments, so a long run needs
/// only the part of the source log that is still unread (see [`SourceLog::release_before`]).
pub struct SimulatedDataflow {
    sim: Sim,
}

impl SimulatedDataflow {
    /// Builds `job`'s subtasks; nothing runs yet.
    pub fn new(
        job: &JobContext,
        cost: &CostModel,
        cluster: Cluster,
        until: Nanos,
        bounded: bool,
    ) -> Result<Self, DataflowConfigError> {
        let cfg = &job.cfg;
        cfg.validate()?;
        let mut links = SimLinks {
            rows: Rc::default(),
            results: Rc::default(),
            spare_rows: Vec::new(),
            spare_results: Vec::new(),
        };
        let pools = BufferPools::default();
        let g = JobGraph::build(job, &mut links, &pools, SinkOperator::new(cfg.sink))?;
        let n = g.subtasks.len();
        let cores = cluster.cores().max(1);
        let checkpointing = cfg.checkpoint_interval.map(|i| Checkpointing {
            coordinator: CheckpointCoordinator::new(&job.name, i.nanos(), 0),
            next_trigger: i.nanos(),
            writer: SnapshotWriter::default(),
            inject: vec![None; g.sources],
        });
        let mut sim = Sim {
            job: job.clone(),
            cost: *cost,
            read_prices: ReadPrices::new(cost),
            cluster,
            until,
            bounded,
            poll_interval: cost.source_poll_interval_ns.round() as Nanos,
            sources_count: g.sources,
            core_of: (0..n).map(|k| k % cores).collect(),
            core_free: vec![0; cores],
            inbox: (0..n).map(|_| VecDeque::new()).collect(),
            capacity: g
                .inputs
                .iter()
                .map(|&i| (cfg.buffers_per_channel * i.max(1)).max(1))
                .collect(),
            downstream: g.downstream,
            blocked: vec![Vec::new(); n],
            link_last: vec![0; n * n],
            jitter_draws: 0,
            scheduled: vec![None; n + 2],
            queue: Default::default(),
            seq: 0,
            links,
            pools,
            sinks: Vec::new(),
            sources: Vec::new(),
            windows: Vec::new(),
            subtasks: g.subtasks,
            checkpointing,
            crashes: Vec::new(),
            crashed: None,
            history: None,
            checkpoint_progress: Vec::new(),
            error: None,
            finished_flag: None,
            slowdowns: Vec::new(),
            step_at: (0, 0),
        };
        for k in 0..sim.sources_count {
            sim.schedule(k, 0);
        }
        if let Some(next) = sim.checkpointing.as_ref().map(|c| c.next_trigger) {
            let coord = sim.coord();
            sim.schedule(coord, next);
        }
        Ok(Self { sim })
    }

    /// The job this engine runs.
    pub fn job(&self) -> &JobContext {
        &self.sim.job
    }

    /// Checkpoints completed so far (every incarnation's).
    pub fn checkpoints_completed(&self) -> u64 {
        self.sim.checkpoint_progress.len() as u64
    }

    /// Writes completed checkpoints under `dir` (`chk-<id>/_metadata` and one state file per
    /// subtask) and restores from there after a crash.
    pub fn with_checkpoint_dir(mut self, dir: PathBuf) -> Self {
        if let Some(c) = &mut self.sim.checkpointing {
            c.writer = SnapshotWriter::new(Some(dir));
        }
        self.sim.checkpoint_incrementally();
        self
    }

    /// Makes work slower during the given periods (stragglers, a slow state store); a
    /// straggling worker is a core of the cluster.
    pub fn with_slowdowns(mut self, slowdowns: Vec<crate::cost::Slowdown>) -> Self {
        self.sim.slowdowns = slowdowns;
        self
    }

    /// Makes the job crash at each of `at` (virtual time).
    pub fn crash_at(&mut self, mut at: Vec<Nanos>) {
        at.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(first) = at.pop() {
            let slot = self.sim.crash_slot();
            self.sim.schedule(slot, first);
        }
        self.sim.crashes = at;
    }

    /// Makes the job crash when checkpoint `id` reaches `phase`, for each `(id, phase)`.
    pub fn crash_in_checkpoints(&mut self, points: Vec<(u64, CheckpointPhase)>) {
        if let Some(c) = self.sim.checkpointing.take() {
            self.sim.checkpointing = Some(Checkpointing {
                coordinator: c.coordinator.with_phase_crashes(points),
                ..c
            });
        }
    }

    /// Runs everything that happens before `to`, reading from `source`; stops early at a crash.
    pub fn advance(&mut self, source: &SourceLog, to: Nanos) -> Result<(), SimulatedStop> {
        self.sim.run(source, to);
        if let Some(e) = self.sim.error.take() {
            return Err(e.into());
        }
        match self.sim.crashed.take() {
            Some(at) => Err(SimulatedStop::Crashed(at)),
            None => Ok(()),
        }
    }

    /// Tears the crashed job down: every subtask's memory and the sink's open transactions
    /// are lost. Returns, per partition, how far it had read.
    pub fn tear_down(&mut self) -> Vec<usize> {
        self.sim.tear_down()
    }

    /// The latest completed checkpoint: what a restart restores.
    pub fn latest_completed(&self) -> Option<u64> {
        self.sim
            .checkpointing
            .as_ref()
            .and_then(|c| c.coordinator.completed())
            .map(|c| c.id)
    }

    /// Starts a new incarnation of the torn-down job at `at`, from completed checkpoint `from`
    /// (read back from the checkpoint directory when there is one, else from memory); the
    /// sink commits what `from` covers and aborts the rest. Returns, per partition, where the
    /// sources start reading again.
    pub fn restart(&mut self, at: Nanos, from: Option<u64>) -> Result<Vec<usize>, CheckpointError> {
        let restored = self.sim.restart(at, from)?;
        self.sim.resume(at);
        Ok(restored)
    }

    /// Wakes the source subtasks at `at`: call after appending events that arrive from `at` on.
    pub fn resume_sources(&mut self, at: Nanos) {
        for k in 0..self.sim.sources_count {
            if matches!(self.sim.subtasks[k], Subtask::Source(_)) {
                self.sim.schedule(k, at);
            }
        }
    }

    /// Per partition, the offset below which no event will be read again: what the sources have
    /// read, but no further than the latest completed checkpoint when a restart could rewind to
    /// it (and nothing at all when crashes are planned and there is no checkpoint yet).
    pub fn consumed_offsets(&self, partitions: usize) -> Vec<usize> {
        let mut out = vec![usize::MAX; partitions];
        let positions = self.sim.subtasks.iter().filter_map(|s| match s {
            Subtask::Source(t) => Some(t.positions()),
            _ => None,
        });
        for (p, o) in positions
            .flatten()
            .chain(self.sim.sources.iter().flat_map(|s| s.positions.iter().copied()))
        {
            out[p] = out[p].min(o);
        }
        let checkpointing = self.sim.checkpointing.as_ref();
        let may_crash = !self.sim.crashes.is_empty()
            || checkpointing.is_some_and(|c| c.coordinator.crashes_planned())
            || self.sim.scheduled.last().is_some_and(|s| s.is_some());
        if may_crash {
            let floor = checkpointing
                .and_then(|c| c.coordinator.completed())
                .map(|c| c.sources.clone());
            match floor {
                Some(sources) => {
                    let mut f = vec![0usize; partitions];
                    for (p, o) in sources {
                        f[p] = o;
                    }
                    for (o, f) in out.iter_mut().zip(f) {
                        *o = (*o).min(f);
                    }
                }
                None => out.iter_mut().for_each(|o| *o = 0),
            }
        }
        out.iter().map(|&o| if o == usize::MAX { 0 } else { o }).collect()
    }

    /// Takes the outputs delivered so far (they are no longer kept by the run).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        let mut out = Vec::new();
        for s in &mut self.sim.subtasks {
            if let Some(sink) = s.sink_mut() {
                out.append(&mut sink.delivered);
            }
        }
        for sink in &mut self.sim.sinks {
            out.append(&mut sink.delivered);
        }
        out
    }

    /// Ends the run and reports it. Subtasks still running (the run was cut off) are finished
    /// as they stand.
    pub fn finish(mut self) -> EngineRun {
        let bounded = self.sim.bounded;
        for s in std::mem::take(&mut self.sim.subtasks) {
            match s {
                Subtask::Source(t) => {
                    let (sink, stats) = t.finish(bounded);
                    self.sim.sinks.extend(sink);
                    self.sim.sources.push(stats);
                }
                Subtask::Window(t) => {
                    let (sink, outcome) = t.finish();
                    self.sim.sinks.extend(sink);
                    self.sim.windows.push(outcome);
                }
                Subtask::RowSink(t) => self.sim.sinks.push(t.sink),
                Subtask::ResultSink(t) => self.sim.sinks.push(t.sink),
                Subtask::Done => {}
            }
        }
        // One sink, or (`chain_sink`) one per source subtask, merged in subtask order.
        let mut sinks = std::mem::take(&mut self.sim.sinks).into_iter();
        let mut sink = sinks.next().expect("a job has a sink");
        sinks.for_each(|other| sink.absorb(other));
        let mut sources = std::mem::take(&mut self.sim.sources);
        sources.sort_by_key(|s| s.index);
        let mut windows = std::mem::take(&mut self.sim.windows);
        windows.sort_by_key(|w| w.index);
        let mut run = assemble(
            &self.sim.job.name,
            sink,
            sources,
            windows,
            vec!["all processing time: priced by the cost model".into()],
        );
        run.progress.append(&mut self.sim.checkpoint_progress);
        run
    }
}
