//! The micro-batch supervisor: a query that survives crashes, as a supervised Spark query does.
//! On a crash it waits the restart delay and starts the query again from its checkpoint
//! directory (offset log, commit log, state store); the new incarnation takes over the sink
//! writer and what the old one delivered.

use crate::dimension::CampaignTable;
use crate::fault::{CrashPoint, EngineStop};
use crate::microbatch::checkpoint::CheckpointDir;
use crate::microbatch::{MicroBatchConfig, MicroBatchEngine};
use crate::pipeline::PipelineSpec;
use crate::pulse::RunPulse;
use crate::recovery::{RecoveryError, Supervisor};
use crate::run::{Delivered, EngineRun};
use crate::runtime::Runtime;
use crate::source::SourceLog;
use crate::time::Nanos;

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

/// A supervised query with the runtime it runs on: the [`Supervisor`] of a micro-batch query.
pub struct SupervisedQuery<R> {
    query: RecoveringQuery,
    rt: R,
}

impl<R: Runtime> SupervisedQuery<R> {
    /// `query` running on `rt`.
    pub fn new(query: RecoveringQuery, rt: R) -> Self {
        Self { query, rt }
    }

    /// The supervised query.
    pub fn query(&mut self) -> &mut RecoveringQuery {
        &mut self.query
    }
}

impl<R: Runtime> Supervisor for SupervisedQuery<R> {
    fn advance(&mut self, log: &SourceLog, to: Nanos) -> Result<(), RecoveryError> {
        self.query.advance(&mut self.rt, log, to).map_err(RecoveryError::Engine)
    }

    fn take_delivered(&mut self) -> Vec<Delivered> {
        self.query.engine().take_delivered()
    }

    fn consumed_offsets(&self) -> Vec<usize> {
        self.query.engine.committed_offsets().to_vec()
    }

    /// The query's run, with the task retries its runtime made.
    fn finish(mut self: Box<Self>) -> EngineRun {
        let mut run = self.query.engine().finish();
        run.counts.task_retries += self.rt.task_retries();
        run
    }

    fn publish(&self, pulse: &RunPulse) {
        pulse.falling_behind_total(self.query.engine.falling_behind());
    }

    fn settle(&mut self) -> Result<(), RecoveryError> {
        Ok(self.query.engine.settle_checkpoint()?)
    }
}
