//! Supervising the native engines on a scenario's behalf: a micro-batch query restarted from
//! its checkpoint after a crash ([`RecoveringQuery`]), a live per-record job restarted as a
//! new incarnation (`run_live_recovering`), the wall clock a resumed live run continues, and
//! and what makes a per-record job's sink durable.
//!
//! The executors ([`crate::executor`]) build engines with these; the restart logic is the
//! engines' own idea and is on its way into the engines crate.

use streamlab_engines::dataflow::checkpoint::read_checkpoint;
use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::{run_live_durable, LiveFaults};
use streamlab_engines::dataflow::tasks::CommitHook;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::fault::{CrashPoint, EngineStop};
use streamlab_engines::microbatch::checkpoint::CheckpointDir;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine};
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::Clock;
use streamlab_engines::runtime::LiveClock;
use streamlab_engines::runtime::Runtime;
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::Nanos;

/// The wall clock of a live engine run. A run keeps the instant it started in its checkpoint
/// directory (`started`, Unix ms); a resumed run continues that clock, so the open-loop source
/// schedule goes on where it was and the time the process was down shows as backlog.
pub(crate) fn live_clock(checkpoint: Option<&std::path::Path>, resume: bool) -> std::io::Result<LiveClock> {
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
pub(crate) fn run_live_recovering(
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

/// A micro-batch query's run, with the task retries its runtime made.
pub(crate) fn finished<R: Runtime>(engine: &mut MicroBatchEngine, rt: &R) -> EngineRun {
    let mut run = engine.finish();
    run.counts.task_retries += rt.task_retries();
    run
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
