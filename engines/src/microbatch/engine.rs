//! The query: Spark's `StreamExecution` and its trigger loop.
//!
//! [`MicroBatchEngine`] is one streaming query over the source log. It owns what survives from
//! batch to batch — the offset and commit logs, the committed offsets, the watermark pair, the
//! state store partitions, the checkpoint directory and the run's accumulated results — and
//! the trigger loop that decides when a batch runs. What one batch does is in `batch`
//! (`MicroBatchExecution`'s phases); continuous processing is in [`super::continuous`].
//!
//! The loop follows Spark's `ProcessingTimeExecutor` and `MicroBatchExecution`: at each trigger
//! instant the engine asks the source for new offsets; with none (and no watermark change that
//! a stateful query must act on) it sleeps the polling delay and waits for the next multiple of
//! the interval. A batch that overruns the interval is followed at once by the next one and is
//! counted as falling behind. Spark's default trigger, `ProcessingTime(0)`, has no interval:
//! the next batch starts as soon as the previous one ends, or after one polling delay when a
//! trigger found nothing to do, and it never falls behind. Everything time-related goes through
//! the [`Runtime`].
//!
//! Invariants: `committed` only moves in `commitOffsets`, after the batch's output is in the
//! sink; the watermark computed by batch N (`next_watermark`) is applied from batch N+1
//! (`watermark`); a crash (an [`EngineStop`]) leaves the run's results in the engine so that a
//! recovered query can [`take_over`](MicroBatchEngine::take_over) them.

use crate::dimension::CampaignTable;
use crate::latency::Component;
use crate::microbatch::config::{MicroBatchConfig, MicroBatchConfigError, OutputMode, Trigger};

use crate::checkpoint::CheckpointError;
use crate::fault::{BatchPhase, CrashPoint, EngineStop};
use crate::microbatch::batch::ReadLimit;
use crate::microbatch::checkpoint::CheckpointDir;
use crate::microbatch::log::{BatchLogs, OffsetEntry};
use crate::microbatch::map_stage::SelectionBuffers;
use crate::microbatch::run_state::RunState;
pub use crate::microbatch::sink::SinkWriter;
use crate::operators::graph::{KeyedStage, StageRules, ThenStage};
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{EmitPolicy, TimeSemantics, WindowedAggregation};
use crate::pipeline::PipelineSpec;
use crate::run::{Delivered, EngineRun, OutputStream};
use crate::runtime::Runtime;
use crate::source::SourceLog;
use crate::time::{EventTime, Nanos};

/// The components a micro-batch output's latency is split into.
pub const COMPONENTS: [Component; 7] = [
    Component::TriggerWait,
    Component::Queueing,
    Component::Scheduling,
    Component::Processing,
    Component::Commit,
    Component::WatermarkWait,
    Component::JoinWait,
];

/// Why a query could not be restarted from its checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The configuration is refused.
    #[error(transparent)]
    Config(#[from] MicroBatchConfigError),
    /// The checkpoint directory is refused or unreadable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A micro-batch streaming query over the source log.
#[derive(Debug)]
pub struct MicroBatchEngine {
    /// The query's name (the `run` of its progress records).
    pub(super) name: String,
    pub(super) cfg: MicroBatchConfig,
    pub(super) pipeline: PipelineSpec,
    /// The map-like operators every map task applies (the query's stateless part).
    pub(super) chain: StatelessChain,
    /// One state store partition per shuffle partition (empty for a stateless query).
    pub(super) state: Vec<WindowedAggregation>,
    /// Or, for a join, a deduplication or a top-N, its operator per shuffle partition.
    pub(super) stages: Vec<KeyedStage>,
    /// The second aggregation over the window results, if the query has one.
    pub(super) then: Option<ThenStage>,
    pub(super) logs: BatchLogs,
    /// Per partition, the end offset of the last committed batch.
    pub(super) committed: Vec<usize>,
    pub(super) next_batch_id: u64,
    /// The watermark the current batch runs with.
    pub(super) watermark: EventTime,
    /// The watermark the batch before it ran with: a chained aggregation drops input older
    /// than it (Spark's `eventTimeWatermarkForLateEvents`, see `operators/graph/chain.rs`).
    pub(super) previous_watermark: EventTime,
    /// The watermark computed at the end of the last batch, applied from the next one.
    pub(super) next_watermark: EventTime,
    /// When the last batch started (for `inputRowsPerSecond`).
    pub(super) last_trigger_start: Option<Nanos>,
    /// The next trigger instant (`None`: the query has not started).
    pub(super) next_trigger: Option<Nanos>,
    /// What the run has produced so far.
    pub(super) run: RunState,
    /// The durable checkpoint, if the query keeps one.
    pub(super) checkpoint: Option<CheckpointDir>,
    /// Batches the (idempotent) sink already holds.
    pub(super) sink_batches: std::collections::BTreeSet<u64>,
    /// An uncommitted batch to re-run first, after recovery.
    pub(super) replay: Option<OffsetEntry>,
    /// Where the failure plan makes this query crash, if anywhere.
    pub(super) crash: Option<CrashPoint>,
    /// Per partition, how far the query has read (committed or in flight).
    pub(super) read_up_to: Vec<usize>,
    /// A durable sink that writes each batch's output, if the run has one.
    pub(super) sink_writer: Option<SinkWriter>,
    /// A stateless query's selection buffers, reused from batch to batch.
    pub(super) selection_buffers: SelectionBuffers,
}

impl MicroBatchEngine {
    /// A query named `name` running `pipeline` over a source of `partitions` partitions.
    pub fn new(
        name: &str,
        cfg: MicroBatchConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
    ) -> Result<Self, MicroBatchConfigError> {
        cfg.validate(pipeline)?;
        let policy = match cfg.output_mode {
            OutputMode::Append => EmitPolicy::OnWatermark,
            OutputMode::Update => EmitPolicy::OnUpdate,
            OutputMode::Complete => EmitPolicy::Complete,
        };
        if matches!(cfg.trigger, Trigger::Continuous { .. }) && cfg.workers < partitions {
            return Err(MicroBatchConfigError {
                key: "workers".into(),
                message: format!(
                    "continuous processing runs one long-running task per source partition and needs a core for each: \
                     {partitions} partitions but {} workers",
                    cfg.workers
                ),
            });
        }
        let real_time_tasks = super::real_time::concurrent_tasks(&cfg, pipeline, partitions);
        if matches!(cfg.trigger, Trigger::RealTime { .. }) && cfg.workers < real_time_tasks {
            return Err(MicroBatchConfigError {
                key: "workers".into(),
                message: format!(
                    "Real-Time Mode runs every task of every stage at once (one per source partition, one per shuffle \
                     partition of an aggregation) and needs a core for each: {real_time_tasks} tasks but {} workers",
                    cfg.workers
                ),
            });
        }
        let state = match &pipeline.aggregate {
            Some(agg) => (0..cfg.shuffle_partitions)
                .map(|_| WindowedAggregation::new(*agg, TimeSemantics::SPARK, policy).with_backend(cfg.state_backend))
                .collect::<Result<_, _>>()
                .map_err(|e| MicroBatchConfigError {
                    key: "state_backend".into(),
                    message: format!("cannot open the state store: {e}"),
                })?,
            None => Vec::new(),
        };
        let mut stages = Vec::new();
        for _ in 0..cfg.shuffle_partitions {
            let stage = KeyedStage::for_pipeline(pipeline, StageRules::Spark, cfg.state_backend).map_err(|e| {
                MicroBatchConfigError {
                    key: "state_backend".into(),
                    message: format!("cannot open a keyed stage's state store: {e}"),
                }
            })?;
            match stage {
                Some(stage) => stages.push(stage),
                None => break,
            }
        }
        Ok(Self {
            name: name.to_string(),
            cfg,
            pipeline: pipeline.clone(),
            chain: StatelessChain::new(pipeline, table),
            state,
            stages,
            then: pipeline.then.map(ThenStage::new),
            logs: BatchLogs::default(),
            committed: vec![0; partitions],
            next_batch_id: 0,
            watermark: 0,
            previous_watermark: 0,
            next_watermark: 0,
            last_trigger_start: None,
            next_trigger: None,
            run: RunState::new(&COMPONENTS),
            checkpoint: None,
            sink_batches: Default::default(),
            replay: None,
            crash: None,
            read_up_to: vec![0; partitions],
            sink_writer: None,
            selection_buffers: SelectionBuffers::default(),
        })
    }

    /// Keeps a durable checkpoint in `dir` (offsets, commits, sink markers, state versions).
    pub fn with_checkpoint(mut self, dir: CheckpointDir) -> Self {
        for op in &mut self.state {
            op.track_changes();
        }
        self.checkpoint = Some(dir);
        self
    }

    /// Waits until the checkpoint's files written behind the query are on disk (at once if
    /// it has none, or writes them in line): see [`CheckpointDir::written_behind`].
    pub fn settle_checkpoint(&self) -> Result<(), CheckpointError> {
        self.checkpoint.as_ref().map_or(Ok(()), CheckpointDir::settle)
    }

    /// Writes each batch's output with `writer` (before the sink marker) — a durable sink.
    pub fn set_sink_writer(&mut self, writer: Option<SinkWriter>) {
        self.sink_writer = writer;
    }

    /// Hands every delivered output to `stream` instead of keeping it (a recovered query takes
    /// the stream over with the rest of the run).
    pub fn set_output_stream(&mut self, stream: Option<OutputStream>) {
        self.run.stream = stream;
    }

    /// Takes the durable sink writer (to hand it to a recovered query).
    pub fn take_sink_writer(&mut self) -> Option<SinkWriter> {
        self.sink_writer.take()
    }

    /// Makes the query crash at `point`.
    pub fn crash_at(&mut self, point: Option<CrashPoint>) {
        self.crash = point;
    }

    /// Restarts a query from its checkpoint directory, as Spark does: resume after the last
    /// committed batch with its state version and watermark, and first re-run the batch that
    /// has offsets but no commit, with exactly those offsets. The run starts at `now`.
    pub fn recover(
        name: &str,
        cfg: MicroBatchConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
        dir: CheckpointDir,
        now: Nanos,
    ) -> Result<Self, RecoverError> {
        let mut engine = Self::new(name, cfg, pipeline, table, partitions)?.with_checkpoint(dir.clone());
        let recovered = dir.recover()?;
        if let Some((batch, offsets, batch_watermark, next_watermark)) = &recovered.last_commit {
            if offsets.len() != partitions {
                return Err(RecoverError::Checkpoint(CheckpointError::Refused {
                    path: dir.path().join(format!("offsets/{batch}")),
                    message: format!("has {} partitions, the source has {partitions}", offsets.len()),
                }));
            }
            engine.committed = offsets.clone();
            engine.read_up_to = offsets.clone();
            engine.next_batch_id = batch + 1;
            engine.next_watermark = *next_watermark;
            engine.watermark = *batch_watermark;
            for (p, op) in engine.state.iter_mut().enumerate() {
                // The state is as the committed batch left it: advanced to that batch's watermark.
                dir.restore_state(p, batch + 1, op, *batch_watermark)?;
            }
            for (p, stage) in engine.stages.iter_mut().enumerate() {
                // A keyed stage's version holds its own watermark, that same batch's.
                dir.restore_stage(p, batch + 1, stage)?;
            }
        }
        engine.replay = recovered.uncommitted;
        engine.sink_batches = recovered.sink_batches.into_iter().collect();
        engine.next_trigger = Some(now);
        Ok(engine)
    }

    /// The offset and commit logs written so far.
    pub fn logs(&self) -> &BatchLogs {
        &self.logs
    }

    /// Runs the query until `until` (processing time) or until its trigger says stop.
    pub fn run<R: Runtime>(&mut self, rt: &mut R, source: &SourceLog, until: Nanos) -> EngineRun {
        // Without a failure plan or checkpoint the run cannot stop early; with one, the caller
        // uses `advance` to see the stop.
        let _ = self.advance(rt, source, until);
        self.finish()
    }

    /// Runs the query up to `until`: a `ProcessingTime` query starts every batch due before
    /// then and can be advanced again later (the simulator runs long scenarios in segments);
    /// the other triggers run to completion on their first call.
    pub fn advance<R: Runtime>(&mut self, rt: &mut R, source: &SourceLog, until: Nanos) -> Result<(), EngineStop> {
        let mut run = std::mem::replace(&mut self.run, RunState::new(&COMPONENTS));
        let result = self.advance_inner(rt, source, until, &mut run);
        self.run = run;
        result
    }

    fn advance_inner<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        let start_at = self.cfg.start_at.map(|s| s.nanos());
        match self.cfg.trigger {
            Trigger::ProcessingTime { interval } => {
                let first = *self.next_trigger.get_or_insert_with(|| start_at.unwrap_or(0));
                self.processing_time_loop(rt, source, until, interval.nanos(), first, run)?;
            }
            _ if self.next_trigger.is_some() => {}
            Trigger::Once | Trigger::AvailableNow { .. } => {
                let begin = start_at.unwrap_or_else(|| source.last_arrival());
                self.next_trigger = Some(begin);
                self.available_now_loop(rt, source, until, begin, run)?;
            }
            Trigger::Continuous { checkpoint_interval } => {
                self.next_trigger = Some(start_at.unwrap_or(0));
                rt.wait_until(start_at.unwrap_or(0));
                self.run_continuous(rt, source, until, checkpoint_interval.nanos(), run);
            }
            Trigger::RealTime { checkpoint_interval } => {
                self.next_trigger = Some(start_at.unwrap_or(0));
                rt.wait_until(start_at.unwrap_or(0));
                self.run_real_time(rt, source, until, checkpoint_interval.nanos(), run)?;
            }
        }
        Ok(())
    }

    /// `ProcessingTime(interval)` (Spark's `ProcessingTimeExecutor`): a batch at every multiple
    /// of the interval from `next_trigger` that has data (or a watermark change) to act on,
    /// polling when there is none; a batch that overruns the interval is followed at once by the
    /// next and counted as falling behind.
    ///
    /// A zero interval is Spark's default trigger: the next trigger is the instant the previous
    /// batch (or poll) ended, so no batch waits for a trigger and none falls behind. Its batches'
    /// trigger instant is their start: a record's trigger wait is everything from its arrival
    /// to the start of the batch that takes it (the rest of a poll, the previous batch's run).
    fn processing_time_loop<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        interval: Nanos,
        mut next_trigger: Nanos,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        rt.wait_until(next_trigger);
        loop {
            let trigger_start = rt.now();
            if trigger_start >= until {
                return Ok(());
            }
            // The default trigger fires when the runtime gets to it; a timed one at its instant.
            let nominal = if interval == 0 { trigger_start } else { next_trigger };
            let ran = self.run_batch(rt, source, nominal, None, run)?;
            if !ran {
                rt.wait_until(rt.now() + self.cfg.polling_delay.nanos());
            }
            if interval == 0 {
                next_trigger = rt.now();
            } else {
                let elapsed = rt.now() - trigger_start;
                if ran && elapsed > interval {
                    run.counts.falling_behind += 1;
                    if let Some(p) = run.progress.last_mut() {
                        p.falling_behind = true;
                    }
                }
                next_trigger = trigger_start / interval * interval + interval;
            }
            self.next_trigger = Some(next_trigger);
            if run.beat(rt.now()) {
                return Ok(());
            }
            if let Some(CrashPoint::At(t)) = self.crash {
                if t < next_trigger.min(until) {
                    rt.wait_until(t);
                    return Err(EngineStop::Crashed { at: rt.now().max(t) });
                }
            }
            rt.wait_until(next_trigger);
        }
    }

    /// `Once` and `AvailableNow`: from `begin`, everything available then — in one batch, or for
    /// `AvailableNow` in batches of at most `max_records_per_batch` — then stop.
    fn available_now_loop<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        begin: Nanos,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        rt.wait_until(begin);
        let target: Vec<usize> = (0..source.partitions())
            .map(|p| source.available(p, rt.now()))
            .collect();
        let max_records = match self.cfg.trigger {
            Trigger::AvailableNow { max_records_per_batch } => max_records_per_batch,
            _ => None,
        };
        let once = matches!(self.cfg.trigger, Trigger::Once);
        loop {
            let nominal = rt.now();
            let limit = ReadLimit {
                target: &target,
                max_records,
            };
            let ran = self.run_batch(rt, source, nominal, Some(limit), run)?;
            if !ran || once || rt.now() >= until || run.beat(rt.now()) {
                return Ok(());
            }
        }
    }

    /// Takes the outputs delivered so far (the run keeps counting them).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        std::mem::take(&mut self.run.delivered)
    }

    /// Per partition, the offset up to which the query has committed its input.
    pub fn committed_offsets(&self) -> &[usize] {
        &self.committed
    }

    /// Batches that took longer than the trigger interval so far (every incarnation's).
    pub fn falling_behind(&self) -> u64 {
        self.run.counts.falling_behind
    }

    /// Continues the run of `crashed` (its outputs, latency, progress and counts so far) in this
    /// recovered query, noting the failure: it crashed at `at` and this query runs from `now`.
    pub fn take_over(&mut self, crashed: &mut MicroBatchEngine, at: Nanos, now: Nanos) {
        let mut run = std::mem::replace(&mut crashed.run, RunState::new(&COMPONENTS));
        let replayed: u64 = crashed
            .read_up_to
            .iter()
            .zip(&self.committed)
            .map(|(r, c)| r.saturating_sub(*c) as u64)
            .sum();
        run.counts.replayed += replayed;
        run.failures.push(crate::run::FailureEvent {
            at,
            restarted_at: now,
            replayed,
        });
        self.run = run;
        self.last_trigger_start = crashed.last_trigger_start;
    }

    /// Ends the run and reports it.
    pub fn finish(&mut self) -> EngineRun {
        let run = std::mem::replace(&mut self.run, RunState::new(&COMPONENTS));
        run.finish(self)
    }

    /// Stops the run here if the failure plan says this query crashes at this point.
    pub(super) fn crash_check(&self, batch: u64, phase: BatchPhase, now: Nanos) -> Result<(), EngineStop> {
        match self.crash {
            Some(CrashPoint::At(t)) if now >= t => Err(EngineStop::Crashed { at: now }),
            Some(CrashPoint::InBatch { batch: b, phase: p }) if b == batch && p == phase => {
                Err(EngineStop::Crashed { at: now })
            }
            _ => Ok(()),
        }
    }
}
