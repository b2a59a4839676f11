//! The per-record supervisor: a job that survives crashes, as Flink's restart strategies keep
//! one running. At a crash every subtask's memory and the sink's open transactions are lost;
//! after the restart strategy's delay a new incarnation restores the latest completed
//! checkpoint and goes on, on the same clock. On both clocks the same [`Restarts`] count the
//! delay, the events read again and the failure records.
//!
//! * [`SimulatedJob`] — on virtual time: the engine stops at the crash event, is torn down and
//!   restarted in place, and the event loop goes on where it stopped (so a run stays
//!   deterministic).
//! * [`LiveJob`] — on the wall clock: each incarnation is a set of threads torn down at the
//!   crash; the next restores from the checkpoint directory. With `resume`, the first
//!   incarnation restores too (a killed process).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::dataflow::checkpoint::read_checkpoint;
use crate::dataflow::graph::JobContext;
use crate::dataflow::live::{run_live_durable, IncarnationPlan, LiveFaults, LiveRunError};
use crate::dataflow::sim::{SimulatedDataflow, SimulatedStop};
use crate::dataflow::tasks::CommitHook;
use crate::recovery::restart::{replayed, Restarts};
use crate::recovery::{RecoveryError, Supervisor};
use crate::run::{Delivered, EngineRun, OutputHook, OutputStream};
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::Nanos;

/// A per-record job on virtual time, restarted after every crash.
pub struct SimulatedJob {
    engine: SimulatedDataflow,
    restarts: Restarts,
    until: Nanos,
    /// Where the previous step ended: the sources wake there for the events appended since.
    advanced_to: Nanos,
}

impl SimulatedJob {
    /// Supervises `engine`, built to run until `until`.
    pub fn new(engine: SimulatedDataflow, until: Nanos) -> Self {
        let restarts = Restarts::new(engine.job().cfg.restart);
        Self {
            engine,
            restarts,
            until,
            advanced_to: 0,
        }
    }
}

impl Supervisor for SimulatedJob {
    fn advance(&mut self, log: &SourceLog, to: Nanos) -> Result<(), RecoveryError> {
        self.engine.resume_sources(self.advanced_to);
        self.advanced_to = to;
        // The last step drains what is still in flight after the sources stop.
        let to = if to >= self.until { Nanos::MAX } else { to };
        loop {
            match self.engine.advance(log, to) {
                Ok(()) => return Ok(()),
                Err(SimulatedStop::Checkpoint(e)) => return Err(e.into()),
                Err(SimulatedStop::Crashed(at)) => {
                    let read = self.engine.tear_down();
                    let restart = self.restarts.restart_after(at);
                    let from = self.engine.latest_completed();
                    let restored = self.engine.restart(restart, from)?;
                    self.restarts.record(at, restart, replayed(&read, &restored));
                }
            }
        }
    }

    fn take_delivered(&mut self) -> Vec<Delivered> {
        self.engine.take_delivered()
    }

    fn consumed_offsets(&self) -> Vec<usize> {
        self.engine.consumed_offsets(self.engine.job().partitions)
    }

    fn finish(self: Box<Self>) -> EngineRun {
        let mut run = self.engine.finish();
        self.restarts.report(&mut run);
        run
    }

    fn publish(&self, pulse: &crate::pulse::RunPulse) {
        pulse.checkpoints_total(self.engine.checkpoints_completed());
    }
}

/// A sink whose committed transactions are written durably: the writer, and the directory of
/// its transaction files (`<id:010>.csv`, one per committed checkpoint).
pub struct DurableSink {
    /// Writes a committed transaction.
    pub writer: Box<OutputHook>,
    /// Where the transaction files are.
    pub parts: PathBuf,
}

/// A live per-record job that survives crashes. At each crash instant its threads are torn
/// down (the incarnation stops there, open transactions aborted), and after the restart
/// strategy's delay a new incarnation restores the latest completed checkpoint from the
/// directory and goes on, on the same clock. It runs in one step to the end it was built for.
pub struct LiveJob {
    job: JobContext,
    until: Nanos,
    checkpoint_dir: Option<PathBuf>,
    resume: bool,
    crashes: Vec<Nanos>,
    faults: LiveFaults,
    bounded: bool,
    /// The durable sink's writer, shared by every incarnation's sink.
    writer: Option<Arc<Mutex<Box<OutputHook>>>>,
    /// Where the durable sink's transaction files are.
    parts: Option<PathBuf>,
    /// Where every incarnation's sink hands its delivered outputs, if anywhere.
    stream: Option<OutputStream>,
    run: Option<EngineRun>,
}

impl LiveJob {
    /// `job`, to run until `until`, without checkpoint directory, crashes or durable sink.
    pub fn new(job: JobContext, until: Nanos) -> Self {
        Self {
            job,
            until,
            checkpoint_dir: None,
            resume: false,
            crashes: Vec::new(),
            faults: LiveFaults::default(),
            bounded: false,
            writer: None,
            parts: None,
            stream: None,
            run: None,
        }
    }

    /// Keeps checkpoints (and the run's clock) in `dir`; with `resume`, starts from the latest
    /// completed checkpoint there and continues the clock.
    pub fn with_checkpoint_dir(mut self, dir: Option<PathBuf>, resume: bool) -> Self {
        self.checkpoint_dir = dir;
        self.resume = resume;
        self
    }

    /// Crashes the job at each of `at` and injects `faults` into its incarnations.
    pub fn with_faults(mut self, at: Vec<Nanos>, faults: LiveFaults) -> Self {
        self.crashes = at;
        self.faults = faults;
        self
    }

    /// The input is a backlog, bounded: the sources finish when it is consumed (the final
    /// watermark fires every window), as a Flink job over a bounded source does.
    pub fn bounded(mut self, bounded: bool) -> Self {
        self.bounded = bounded;
        self
    }

    /// Writes every committed transaction through `sink`.
    pub fn with_durable_sink(mut self, sink: Option<DurableSink>) -> Self {
        if let Some(sink) = sink {
            self.writer = Some(Arc::new(Mutex::new(sink.writer)));
            self.parts = Some(sink.parts);
        }
        self
    }

    /// Hands every delivered output to `stream` instead of keeping it in the run.
    pub fn with_output_stream(mut self, stream: Option<OutputStream>) -> Self {
        self.stream = stream;
        self
    }

    /// The latest completed checkpoint to restart from, if the job keeps a directory.
    fn latest(&self) -> Option<u64> {
        let parts = self.parts.as_deref();
        self.checkpoint_dir.as_deref().and_then(|d| latest_checkpoint(d, parts))
    }

    /// How far the sources of checkpoint `id` had read, in all.
    fn position(&self, id: Option<u64>, partitions: usize) -> usize {
        match (id, self.checkpoint_dir.as_deref()) {
            (Some(id), Some(d)) => checkpoint_position(d, id, self.job.parallelism(), partitions),
            _ => 0,
        }
    }

    fn run(&mut self, log: &SourceLog) -> Result<EngineRun, RecoveryError> {
        let until = self.until;
        let partitions = log.partitions();
        let clock = live_clock(self.checkpoint_dir.as_deref(), self.resume)?;
        let mut restore = if self.resume { self.latest() } else { None };
        let mut started_at = self.position(restore, partitions);
        let mut restarts = Restarts::new(self.job.cfg.restart);
        let mut total: Option<EngineRun> = None;
        let mut pending = std::mem::take(&mut self.crashes)
            .into_iter()
            .filter(|&t| t < until)
            .peekable();
        loop {
            let stop = pending.peek().copied().unwrap_or(until);
            // Every incarnation's sink writes through the same durable writer.
            let on_commit = self.writer.clone().map(|w| {
                CommitHook(Box::new(move |id, d: &[Delivered]| {
                    (w.lock().expect("sink writer").as_mut())(id, d)
                }))
            });
            self.faults.restart_delay = restarts.next_delay();
            let plan = IncarnationPlan {
                until: stop,
                // A backlog is bounded input: the sources finish when it is consumed.
                bounded: self.bounded && stop >= until,
                checkpoint_dir: self.checkpoint_dir.clone(),
                restore_from: restore,
                on_commit,
                stream: self.stream.clone(),
            };
            let incarnation = run_live_durable(&self.job, log, clock, plan, &self.faults).map_err(|e| match e {
                LiveRunError::Config(e) => RecoveryError::Config(e),
                LiveRunError::Checkpoint(e) => RecoveryError::Checkpoint(e),
            })?;
            let run = incarnation.run;
            let read_to = started_at + run.counts.events as usize;
            // A crash inside a checkpoint phase ends the incarnation before the next planned one.
            let stop = match incarnation.crashed {
                Some((at, struck)) => {
                    self.faults.phase_crashes.retain(|&c| c != struck);
                    at
                }
                None => {
                    if stop < until {
                        pending.next();
                    }
                    stop
                }
            };
            match &mut total {
                None => total = Some(run),
                Some(t) => t.append(run),
            }
            if stop >= until {
                break;
            }
            clock.wait_until(restarts.restart_after(stop));
            restore = self.latest();
            started_at = self.position(restore, partitions);
            restarts.record(stop, clock.now(), read_to.saturating_sub(started_at) as u64);
        }
        let mut total = total.expect("at least one incarnation ran");
        restarts.report(&mut total);
        Ok(total)
    }
}

impl Supervisor for LiveJob {
    fn advance(&mut self, log: &SourceLog, _to: Nanos) -> Result<(), RecoveryError> {
        let run = self.run(log)?;
        self.run = Some(run);
        Ok(())
    }

    fn take_delivered(&mut self) -> Vec<Delivered> {
        self.run
            .as_mut()
            .map(|r| std::mem::take(&mut r.delivered))
            .unwrap_or_default()
    }

    fn consumed_offsets(&self) -> Vec<usize> {
        vec![0; self.job.partitions]
    }

    fn finish(self: Box<Self>) -> EngineRun {
        self.run.expect("a live job finishes after it ran")
    }
}

/// The wall clock of a live engine run. A run keeps the instant it started in its checkpoint
/// directory (`started`, Unix ms); a resumed run continues that clock, so the open-loop source
/// schedule goes on where it was and the time the process was down shows as backlog.
pub fn live_clock(checkpoint: Option<&Path>, resume: bool) -> std::io::Result<LiveClock> {
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

/// The latest completed checkpoint in a per-record checkpoint directory (one with a manifest)
/// whose sink transaction is committed, when the sink writes its transactions to `parts`.
///
/// A process killed between writing a checkpoint's manifest and the sink's commit of that
/// checkpoint's transaction would lose the transaction if it restarted from that checkpoint
/// (Flink commits it on recovery from the transaction handle kept in the sink's state; this
/// sink keeps its transaction in memory). Restarting from the checkpoint before it replays
/// those outputs instead, so the committed output stays exactly once.
pub fn latest_checkpoint(dir: &Path, parts: Option<&Path>) -> Option<u64> {
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

/// Sum of the source positions checkpoint `id` holds (how far its sources had read), for a
/// job of parallelism `p` over `partitions` partitions; 0 if it cannot be read. (Only the
/// sources are read: any layout of keyed subtasks, up to a chain's two layers, is accepted.)
pub fn checkpoint_position(dir: &Path, id: u64, p: usize, partitions: usize) -> usize {
    read_checkpoint(dir, id, (p, 2), partitions).map_or(0, |(sources, _)| sources.iter().map(|(_, o)| o).sum())
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
