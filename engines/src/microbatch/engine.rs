//! The trigger loop and the phases of a batch.
//!
//! The loop follows Spark's `ProcessingTimeExecutor` and `MicroBatchExecution`: at each trigger
//! instant the engine asks the source for new offsets; with none (and no watermark change that
//! a stateful query must act on) it sleeps the polling delay and waits for the next multiple of
//! the interval. A batch that overruns the interval is followed at once by the next one and is
//! counted as falling behind. Everything time-related goes through the [`Runtime`].

use crate::dimension::CampaignTable;
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::microbatch::config::{MicroBatchConfig, MicroBatchConfigError, OutputMode, Trigger};
use std::collections::BTreeMap;

use crate::checkpoint::CheckpointError;
use crate::cost::Work;
use crate::fault::{BatchPhase, CrashPoint, EngineStop};
use crate::microbatch::checkpoint::CheckpointDir;
use crate::microbatch::continuous::partition_task;
use crate::microbatch::log::{BatchLogs, OffsetEntry};
use crate::microbatch::progress::{BatchProgress, DurationMs, EventTimeStats, StateOperatorProgress};
use crate::operators::fxhash::partition_of;
use crate::operators::partial::{Partial, PartialAggregator};
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{EmitPolicy, StateCounters, TimeSemantics, WindowEntry, WindowedAggregation};
use crate::operators::{Lineage, Output, Row, WindowResult};
use crate::pipeline::PipelineSpec;
use crate::run::{Delivered, EngineRun, RunCounts};
use crate::runtime::{Runtime, TaskContext};
use crate::source::SourceLog;
use crate::time::{as_ms, event_time_as_nanos, EventTime, Nanos};

/// The components a micro-batch output's latency is split into.
pub const COMPONENTS: [Component; 6] = [
    Component::TriggerWait,
    Component::Queueing,
    Component::Scheduling,
    Component::Processing,
    Component::Commit,
    Component::WatermarkWait,
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

/// When a batch ran, for decomposing the latency of what it delivered.
#[derive(Clone, Copy, Debug)]
struct BatchTiming {
    start: Nanos,
    scheduling: Nanos,
    commit: Nanos,
    end: Nanos,
}

/// Splits the latency of an output delivered by a batch into its components. The origin's
/// `ingest` is the start of the batch that read the record, `handoff` its nominal trigger time.
fn decompose(origin: &Lineage, batch: &BatchTiming) -> Decomposition {
    let a = origin.arrival;
    let nominal = origin.handoff;
    let mut d = Decomposition::default();
    d.add(Component::TriggerWait, nominal.saturating_sub(a));
    d.add(Component::Queueing, origin.ingest.saturating_sub(a.max(nominal)));
    d.add(Component::WatermarkWait, batch.start.saturating_sub(origin.ingest));
    d.add(Component::Scheduling, batch.scheduling);
    d.add(Component::Commit, batch.commit);
    let busy = batch.end.saturating_sub(batch.start);
    d.add(
        Component::Processing,
        busy.saturating_sub(batch.scheduling + batch.commit),
    );
    d
}

/// What one map task (one source partition) produced.
#[derive(Default)]
struct MapOutput {
    work: Work,
    /// Rows of a stateless pipeline.
    rows: Vec<Row>,
    /// Rows of a stateful pipeline, by shuffle partition (session windows).
    buckets: Vec<Vec<Row>>,
    /// Partial aggregates of a stateful pipeline, by shuffle partition (other windows).
    partials: Vec<Vec<Partial>>,
    /// Rows dropped before the exchange because every window they fall in is late.
    late_rows: u64,
    min_et: Option<EventTime>,
    max_et: Option<EventTime>,
    sum_et: i128,
    count: u64,
    /// Events this attempt read again because an earlier attempt of the task failed.
    reread: u64,
}

/// What one reduce task (one shuffle partition) produced.
struct ReduceOutput {
    work: Work,
    /// Time spent updating state (measured live, priced on virtual time).
    state_ns: Nanos,
    results: Vec<WindowResult>,
    counters: StateCounters,
    rows_total: usize,
    bytes: usize,
}

/// A micro-batch streaming query over the source log.
#[derive(Debug)]
pub struct MicroBatchEngine {
    name: String,
    cfg: MicroBatchConfig,
    pipeline: PipelineSpec,
    chain: StatelessChain,
    state: Vec<WindowedAggregation>,
    logs: BatchLogs,
    committed: Vec<usize>,
    next_batch_id: u64,
    /// The watermark the current batch runs with.
    watermark: EventTime,
    /// The watermark computed at the end of the last batch, applied from the next one.
    next_watermark: EventTime,
    last_trigger_start: Option<Nanos>,
    /// The next trigger instant (`None`: the query has not started).
    next_trigger: Option<Nanos>,
    /// What the run has produced so far.
    run: RunState,
    /// The durable checkpoint, if the query keeps one.
    checkpoint: Option<CheckpointDir>,
    /// Batches the (idempotent) sink already holds.
    sink_batches: std::collections::BTreeSet<u64>,
    /// An uncommitted batch to re-run first, after recovery.
    replay: Option<OffsetEntry>,
    /// Where the failure plan makes this query crash, if anywhere.
    crash: Option<CrashPoint>,
    /// Per partition, how far the query has read (committed or in flight).
    read_up_to: Vec<usize>,
    /// A durable sink that writes each batch's output, if the run has one.
    sink_writer: Option<SinkWriter>,
}

/// Writes a batch's output durably. Called before the sink marker.
pub struct SinkWriter(pub Box<crate::run::OutputHook>);

impl std::fmt::Debug for SinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkWriter")
    }
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
        Ok(Self {
            name: name.to_string(),
            cfg,
            pipeline: pipeline.clone(),
            chain: StatelessChain::new(pipeline, table),
            state,
            logs: BatchLogs::default(),
            committed: vec![0; partitions],
            next_batch_id: 0,
            watermark: 0,
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

    /// Writes each batch's output with `writer` (before the sink marker) — a durable sink.
    pub fn set_sink_writer(&mut self, writer: Option<SinkWriter>) {
        self.sink_writer = writer;
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
                // Validation refuses a zero interval.
                let interval = interval.nanos().max(1);
                let mut next_trigger = *self.next_trigger.get_or_insert_with(|| start_at.unwrap_or(0));
                rt.wait_until(next_trigger);
                loop {
                    let trigger_start = rt.now();
                    if trigger_start >= until {
                        break;
                    }
                    let ran = self.run_batch(rt, source, next_trigger, None, run)?;
                    if !ran {
                        rt.wait_until(rt.now() + self.cfg.polling_delay.nanos());
                    }
                    let elapsed = rt.now() - trigger_start;
                    if ran && elapsed > interval {
                        run.counts.falling_behind += 1;
                        if let Some(p) = run.progress.last_mut() {
                            p.falling_behind = true;
                        }
                    }
                    next_trigger = trigger_start / interval * interval + interval;
                    self.next_trigger = Some(next_trigger);
                    if let Some(CrashPoint::At(t)) = self.crash {
                        if t < next_trigger.min(until) {
                            rt.wait_until(t);
                            return Err(EngineStop::Crashed { at: rt.now().max(t) });
                        }
                    }
                    rt.wait_until(next_trigger);
                }
            }
            _ if self.next_trigger.is_some() => {}
            Trigger::Once | Trigger::AvailableNow { .. } => {
                let begin = start_at.unwrap_or_else(|| source.last_arrival());
                self.next_trigger = Some(begin);
                rt.wait_until(begin);
                let target: Vec<usize> = (0..source.partitions())
                    .map(|p| source.available(p, rt.now()))
                    .collect();
                let cap = match self.cfg.trigger {
                    Trigger::AvailableNow { max_records_per_batch } => max_records_per_batch,
                    _ => None,
                };
                loop {
                    let nominal = rt.now();
                    let ran = self.run_batch(rt, source, nominal, Some((&target, cap)), run)?;
                    let once = matches!(self.cfg.trigger, Trigger::Once);
                    if !ran || once || rt.now() >= until {
                        break;
                    }
                }
            }
            Trigger::Continuous { checkpoint_interval } => {
                self.next_trigger = Some(start_at.unwrap_or(0));
                rt.wait_until(start_at.unwrap_or(0));
                self.run_continuous(rt, source, until, checkpoint_interval.nanos(), run);
            }
        }
        Ok(())
    }

    /// Takes the outputs delivered so far (the run keeps counting them).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        std::mem::take(&mut self.run.delivered)
    }

    /// Per partition, the offset up to which the query has committed its input.
    pub fn committed_offsets(&self) -> &[usize] {
        &self.committed
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

    /// Continuous processing: one long-running task per partition, epochs committed by the
    /// coordinator once every partition has reported them.
    fn run_continuous<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        checkpoint_interval: Nanos,
        run: &mut RunState,
    ) {
        let chain = &self.chain;
        let record_cost = self.cfg.modelled_cost_per_record.nanos();
        let tasks: Vec<_> = self
            .committed
            .iter()
            .enumerate()
            .map(|(p, &from)| {
                move |ctx: &TaskContext| {
                    let poll = ctx.poll_interval();
                    partition_task(
                        ctx,
                        chain,
                        source,
                        p,
                        from,
                        checkpoint_interval,
                        until,
                        record_cost,
                        poll,
                    )
                }
            })
            .collect();
        let outs = rt.run_tasks(tasks, self.cfg.scheduling.per_task.nanos());
        // The epoch coordinator: epoch e commits when the last partition reports it.
        let mut epochs: BTreeMap<u64, (Nanos, Vec<usize>)> = BTreeMap::new();
        for (p, out) in outs.iter().enumerate() {
            for &(epoch, at, offset) in &out.epochs {
                let e = epochs.entry(epoch).or_insert_with(|| (0, self.committed.clone()));
                e.0 = e.0.max(at);
                e.1[p] = offset;
            }
        }
        let partitions = outs.len();
        for (epoch, (at, offsets)) in epochs {
            let reported = outs.iter().filter(|o| o.epochs.iter().any(|e| e.0 == epoch)).count();
            if reported < partitions {
                continue; // not every partition reached it before the end of the run
            }
            let batch_id = self.next_batch_id;
            self.next_batch_id += 1;
            self.logs.write_offsets(&OffsetEntry {
                batch_id,
                offsets: offsets.clone(),
                watermark: 0,
            });
            self.logs.write_commit(batch_id, 0);
            run.epochs.push(serde_json::json!({
                "run": self.name, "epoch": epoch, "timeMs": as_ms(at),
                "numInputRows": offsets.iter().zip(&self.committed).map(|(o, c)| o - c).sum::<usize>(),
            }));
            self.committed = offsets;
        }
        let mut delivered: Vec<(Nanos, usize, usize, Delivered)> = Vec::new();
        for (p, out) in outs.into_iter().enumerate() {
            run.latency.merge(&out.latency);
            run.counts.events += out.events;
            run.last_data_batch_end = run.last_data_batch_end.max(out.last_read_at);
            delivered.extend(out.delivered.into_iter().enumerate().map(|(i, d)| (d.at, p, i, d)));
        }
        delivered.sort_unstable_by_key(|(at, p, i, _)| (*at, *p, *i));
        run.counts.outputs += delivered.len() as u64;
        run.delivered.extend(delivered.into_iter().map(|(_, _, _, d)| d));
    }

    /// The end offsets of the next batch: everything available now, or for a bounded trigger
    /// the target, capped at `cap` records split over partitions in proportion to their lag.
    fn next_offsets(&self, source: &SourceLog, now: Nanos, bounded: Option<(&[usize], Option<u64>)>) -> Vec<usize> {
        let Some((target, cap)) = bounded else {
            return (0..source.partitions()).map(|p| source.available(p, now)).collect();
        };
        let lag: Vec<u64> = target
            .iter()
            .zip(&self.committed)
            .map(|(t, c)| (t - c) as u64)
            .collect();
        let total: u64 = lag.iter().sum();
        let Some(cap) = cap.filter(|&c| c < total) else {
            return target.to_vec();
        };
        let mut take: Vec<u64> = lag
            .iter()
            .map(|l| (*l as u128 * cap as u128 / total as u128) as u64)
            .collect();
        let mut left = cap - take.iter().sum::<u64>();
        for (t, l) in take.iter_mut().zip(&lag) {
            let extra = (l - *t).min(left);
            *t += extra;
            left -= extra;
        }
        self.committed.iter().zip(take).map(|(c, t)| c + t as usize).collect()
    }

    /// Runs one batch if there is new data or a watermark change to act on; returns whether it ran.
    fn run_batch<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        nominal: Nanos,
        bounded: Option<(&[usize], Option<u64>)>,
        run: &mut RunState,
    ) -> Result<bool, EngineStop> {
        // latestOffset (a recovered query first replays its uncommitted batch, same offsets)
        let start = rt.now();
        self.crash_check(self.next_batch_id, BatchPhase::LatestOffset, start)?;
        let replay = self.replay.take();
        let latest = match &replay {
            Some(entry) => entry.offsets.clone(),
            None => self.next_offsets(source, start, bounded),
        };
        rt.charge(&Work {
            partitions_polled: latest.len() as u64,
            ..Default::default()
        });
        let t_latest = rt.now();
        for (r, l) in self.read_up_to.iter_mut().zip(&latest) {
            *r = (*r).max(*l);
        }
        let has_data = latest != self.committed;
        let stateful = self.pipeline.is_stateful();
        let watermark_moved =
            stateful && self.cfg.output_mode != OutputMode::Complete && self.next_watermark > self.watermark;
        if !has_data && !watermark_moved && replay.is_none() {
            return Ok(false);
        }
        let batch_id = self.next_batch_id;
        self.next_batch_id += 1;
        self.watermark = replay.as_ref().map_or(self.next_watermark, |e| e.watermark);
        self.crash_check(batch_id, BatchPhase::WalCommit, rt.now())?;

        // walCommit: the offsets (and the watermark this batch runs with) before processing.
        let entry = OffsetEntry {
            batch_id,
            offsets: latest.clone(),
            watermark: self.watermark,
        };
        let mut bytes = self.logs.write_offsets(&entry);
        if let Some(dir) = &self.checkpoint {
            bytes = dir.write_offsets(&entry)?;
        }
        rt.charge(&Work {
            log_writes: 1,
            logged_bytes: bytes as u64,
            ..Default::default()
        });
        let t_wal = rt.now();
        let mut checkpoint_bytes = 0u64;

        // getBatch: the offset ranges of each partition.
        self.crash_check(batch_id, BatchPhase::GetBatch, rt.now())?;
        let ranges: Vec<(usize, usize)> = self.committed.iter().copied().zip(latest.iter().copied()).collect();
        let num_input_rows: u64 = ranges.iter().map(|(a, b)| (b - a) as u64).sum();
        let t_get = rt.now();

        // queryPlanning: the cost of planning and submitting the job is paid here, once per
        // group of `group_size` batches (Drizzle group scheduling; 1 is Spark's behaviour).
        let per_task = self.cfg.scheduling.per_task.nanos();
        self.crash_check(batch_id, BatchPhase::QueryPlanning, rt.now())?;
        if batch_id % self.cfg.group_size as u64 == 0 {
            rt.charge(&Work {
                batch_jobs: 1,
                modelled: self.cfg.scheduling.per_batch.nanos(),
                ..Default::default()
            });
        }
        let t_plan = rt.now();

        // addBatch: map tasks per source partition, reduce tasks per shuffle partition, sink.
        self.crash_check(batch_id, BatchPhase::AddBatch, rt.now())?;
        let shuffle = self.state.len();
        let chain = &self.chain;
        let record_cost = self.cfg.modelled_cost_per_record.nanos();
        let batch_watermark = self.watermark;
        // Map task for source partition `p`; `rerun`: its output was lost and it runs again.
        let make_map = |p: usize, rerun: bool| {
            let (from, to) = ranges[p];
            let events = source.read(p, from, to);
            let state = &self.state;
            move |ctx: &TaskContext| {
                let mut out = map_task(
                    chain,
                    events,
                    start,
                    nominal,
                    state,
                    batch_watermark,
                    shuffle,
                    record_cost,
                );
                if rerun || ctx.attempt() > 1 {
                    // A retried task reads its partition's offset range again.
                    out.reread = events.len() as u64;
                }
                ctx.charge(&out.work);
                out
            }
        };
        let map_tasks: Vec<_> = (0..ranges.len()).map(|p| make_map(p, false)).collect();
        let n_map = map_tasks.len();
        let mut map_out = rt.run_tasks(map_tasks, per_task);
        let mut waves = n_map.div_ceil(rt.workers()) as u64;
        if stateful && !self.cfg.external_shuffle_service {
            // Without an external shuffle service, map output lives on the executor that wrote
            // it: a worker lost before the reduce stage takes it along, and the reduce tasks'
            // fetch failure makes the scheduler run those map tasks again first.
            let now = rt.now();
            let lost: Vec<usize> = rt
                .last_placements()
                .iter()
                .enumerate()
                .filter(|&(_, &(w, end))| rt.lost_between(w, end, now))
                .map(|(p, _)| p)
                .collect();
            if !lost.is_empty() {
                let reruns = rt.run_tasks(lost.iter().map(|&p| make_map(p, true)).collect(), per_task);
                for (&p, out) in lost.iter().zip(reruns) {
                    map_out[p] = out;
                }
                run.counts.task_retries += lost.len() as u64;
                waves += lost.len().div_ceil(rt.workers()) as u64;
            }
        }
        let mut outputs: Vec<Output> = Vec::new();
        let mut state_progress = Vec::new();
        if stateful {
            let watermark = self.watermark;
            let mode = self.cfg.output_mode;
            let buckets: Vec<Vec<Vec<Row>>> = map_out.iter_mut().map(|m| std::mem::take(&mut m.buckets)).collect();
            let partials: Vec<Vec<Vec<Partial>>> =
                map_out.iter_mut().map(|m| std::mem::take(&mut m.partials)).collect();
            let late_before_exchange: u64 = map_out.iter().map(|m| m.late_rows).sum();
            let partials = &partials;
            let buckets = &buckets;
            // A retried reduce task starts from the state version the batch began with: read
            // back from the checkpoint (as a Spark task on another executor loads the store),
            // or, without one, from a copy taken before the stage when attempts can fail.
            let before: Vec<(EventTime, Option<Vec<WindowEntry>>)> = self
                .state
                .iter()
                .map(|op| {
                    let copy = (self.checkpoint.is_none() && rt.attempts_can_fail()).then(|| op.snapshot());
                    (op.watermark(), copy)
                })
                .collect();
            let (before, checkpoint) = (&before, &self.checkpoint);
            let reduce_tasks: Vec<_> = self
                .state
                .iter_mut()
                .map(std::sync::Mutex::new)
                .enumerate()
                .map(|(s, op)| {
                    move |ctx: &TaskContext| -> Result<ReduceOutput, CheckpointError> {
                        let mut op = op.lock().expect("one attempt at a time");
                        if ctx.attempt() > 1 {
                            let (watermark, copy) = &before[s];
                            match (checkpoint, copy) {
                                (Some(dir), _) => dir.restore_state(s, batch_id, &mut op, *watermark)?,
                                (None, Some(copy)) => {
                                    op.restore(copy.iter().cloned(), *watermark);
                                    op.take_delta();
                                }
                                (None, None) => unreachable!("attempts fail only where a copy was kept"),
                            }
                        }
                        let mut out = reduce_task(
                            &mut op,
                            buckets.iter().filter_map(move |b| b.get(s)).map(Vec::as_slice),
                            partials.iter().filter_map(move |b| b.get(s)).map(Vec::as_slice),
                            watermark,
                            mode,
                            t_plan,
                            ctx.is_live(),
                        );
                        if ctx.is_live() {
                            out.state_ns = ctx.stretch_state(out.state_ns);
                        } else {
                            out.state_ns = ctx.price(&Work {
                                state_updates: out.work.state_updates,
                                ..Default::default()
                            });
                        }
                        ctx.charge(&out.work);
                        Ok(out)
                    }
                })
                .collect();
            waves += reduce_tasks.len().div_ceil(rt.workers()) as u64;
            let reduced = rt
                .run_tasks(reduce_tasks, per_task)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            let mut total = ReduceOutput {
                work: Work::default(),
                state_ns: 0,
                results: Vec::new(),
                counters: StateCounters::default(),
                rows_total: 0,
                bytes: 0,
            };
            for r in reduced {
                total.counters.late_dropped += r.counters.late_dropped;
                total.counters.rows_updated += r.counters.rows_updated;
                total.counters.rows_removed += r.counters.rows_removed;
                total.rows_total += r.rows_total;
                total.bytes += r.bytes;
                total.state_ns += r.state_ns;
                total.work.state_updates += r.work.state_updates;
                outputs.extend(r.results.into_iter().map(Output::Window));
            }
            total.counters.late_dropped += late_before_exchange;
            run.counts.late_dropped += total.counters.late_dropped;
            run.counts.state_accesses += total.work.state_updates;
            run.counts.state_access_ns += total.state_ns;
            // Each state partition commits its new version: a delta, and now and then a snapshot.
            if let Some(dir) = &self.checkpoint {
                let mut written = 0;
                for (p, op) in self.state.iter_mut().enumerate() {
                    written += dir.commit_state(p, batch_id + 1, op)?;
                }
                rt.charge(&Work {
                    log_writes: self.state.len() as u64,
                    logged_bytes: written as u64,
                    ..Default::default()
                });
                checkpoint_bytes += written as u64;
            }
            state_progress.push(StateOperatorProgress {
                operator_name: "stateStoreSave".into(),
                num_rows_total: total.rows_total as u64,
                num_rows_updated: total.counters.rows_updated,
                num_rows_removed: total.counters.rows_removed,
                num_rows_dropped_by_watermark: total.counters.late_dropped,
                memory_used_bytes: total.bytes as u64,
                all_updates_time_ms: as_ms(total.state_ns),
            });
        } else {
            outputs.reserve(map_out.iter().map(|m| m.rows.len()).sum());
            for m in &mut map_out {
                outputs.extend(m.rows.drain(..).map(Output::Row));
            }
        }
        // The sink, idempotent by batch id: a replayed batch it already holds is not written
        // again. Its output is visible once the sink has committed it.
        let t_tasks = rt.now();
        self.crash_check(batch_id, BatchPhase::SinkCommit, t_tasks)?;
        let already_in_sink = self.sink_batches.contains(&batch_id);
        if !already_in_sink {
            rt.charge(&Work {
                sink_records: outputs.len() as u64,
                ..Default::default()
            });
            if let Some(writer) = &mut self.sink_writer {
                // A durable sink writes the batch (atomically, keyed by batch id) before the
                // marker that says it holds it: a crash in between makes the replay write it again.
                let visible_at = rt.now();
                let batch: Vec<Delivered> = outputs
                    .iter()
                    .map(|&output| Delivered { at: visible_at, output })
                    .collect();
                (writer.0)(batch_id, &batch).map_err(|source| CheckpointError::Io {
                    path: std::path::PathBuf::from(format!("sink batch {batch_id}")),
                    source,
                })?;
            }
            if let Some(dir) = &self.checkpoint {
                let bytes = dir.write_sink_marker(batch_id, outputs.len())?;
                rt.charge(&Work {
                    log_writes: 1,
                    logged_bytes: bytes as u64,
                    ..Default::default()
                });
            }
            self.sink_batches.insert(batch_id);
        }
        let t_add = rt.now();
        let scheduling = (t_plan - t_get) + (per_task + rt.modelled_task_launch()) * waves;
        // Output is visible when the sink has committed it (end of addBatch); `commit` is the
        // sink's commit, the commit log comes after visibility.
        let timing = BatchTiming {
            start,
            scheduling,
            commit: t_add - t_tasks,
            end: t_add,
        };
        let final_results = self.cfg.output_mode == OutputMode::Append;
        let outputs = if already_in_sink { Vec::new() } else { outputs };
        for output in &outputs {
            let origin = match output {
                Output::Row(r) => &r.lineage,
                Output::Window(w) => &w.origin,
            };
            run.latency.record(t_add, &decompose(origin, &timing));
            if let Output::Window(w) = output {
                if final_results && !w.is_update {
                    run.latency
                        .record_event_time(t_add.saturating_sub(event_time_as_nanos(w.end)));
                }
            }
        }
        let num_output_rows = outputs.len() as u64;
        run.counts.outputs += num_output_rows;
        run.delivered
            .extend(outputs.into_iter().map(|output| Delivered { at: t_add, output }));

        // The watermark for the next batch, from this batch's event times.
        let min_et = map_out.iter().filter_map(|m| m.min_et).min();
        let max_et = map_out.iter().filter_map(|m| m.max_et).max();
        let count: u64 = map_out.iter().map(|m| m.count).sum();
        let reread: u64 = map_out.iter().map(|m| m.reread).sum();
        run.counts.replayed += reread;
        run.counts.events += reread;
        let sum_et: i128 = map_out.iter().map(|m| m.sum_et).sum();
        if let Some(max) = max_et {
            self.next_watermark = self.next_watermark.max(max - self.cfg.watermark_delay.whole_ms());
        }

        // commitOffsets
        self.crash_check(batch_id, BatchPhase::CommitOffsets, rt.now())?;
        let mut bytes = self.logs.write_commit(batch_id, self.next_watermark);
        if let Some(dir) = &self.checkpoint {
            bytes = dir.write_commit(batch_id, self.next_watermark)?;
        }
        rt.charge(&Work {
            log_writes: 1,
            logged_bytes: bytes as u64,
            ..Default::default()
        });
        self.committed = latest;
        let end = rt.now();

        run.counts.events += num_input_rows;
        run.counts.batches += 1;
        if has_data {
            run.last_data_batch_end = end;
        }

        let exec = (end - start) as f64 / 1e9;
        let since_last = self.last_trigger_start.map(|t| (start - t) as f64 / 1e9);
        self.last_trigger_start = Some(start);
        run.progress.push(BatchProgress {
            run: self.name.clone(),
            batch_id,
            timestamp: as_ms(start),
            trigger_time_ms: as_ms(nominal),
            num_input_rows,
            input_rows_per_second: since_last
                .filter(|s| *s > 0.0)
                .map_or(0.0, |s| num_input_rows as f64 / s),
            processed_rows_per_second: if exec > 0.0 { num_input_rows as f64 / exec } else { 0.0 },
            duration_ms: DurationMs {
                latest_offset: as_ms(t_latest - start),
                wal_commit: as_ms(t_wal - t_latest),
                get_batch: as_ms(t_get - t_wal),
                query_planning: as_ms(t_plan - t_get),
                add_batch: as_ms(t_add - t_plan),
                commit_offsets: as_ms(end - t_add),
                trigger_execution: as_ms(end - start),
            },
            event_time: EventTimeStats {
                min: min_et,
                max: max_et,
                avg: (count > 0).then(|| sum_et as f64 / count as f64),
                watermark: self.watermark,
            },
            state_operators: state_progress,
            num_output_rows,
            falling_behind: false,
            modelled_scheduling_ms: as_ms(scheduling),
            checkpoint_bytes,
            replayed: replay.is_some(),
        });
        Ok(true)
    }

    /// Stops the run here if the failure plan says this query crashes at this point.
    fn crash_check(&self, batch: u64, phase: BatchPhase, now: Nanos) -> Result<(), EngineStop> {
        match self.crash {
            Some(CrashPoint::At(t)) if now >= t => Err(EngineStop::Crashed { at: now }),
            Some(CrashPoint::InBatch { batch: b, phase: p }) if b == batch && p == phase => {
                Err(EngineStop::Crashed { at: now })
            }
            _ => Ok(()),
        }
    }
}

/// One map task: the stateless chain over one partition's slice; for a stateful pipeline the
/// rows are routed to their shuffle partition by key.
#[allow(clippy::too_many_arguments)]
fn map_task(
    chain: &StatelessChain,
    events: &[crate::event::Event],
    batch_start: Nanos,
    nominal: Nanos,
    state: &[WindowedAggregation],
    watermark: EventTime,
    shuffle: usize,
    record_cost: Nanos,
) -> MapOutput {
    // Windows that can be combined are aggregated partially here (Spark's partial
    // HashAggregate before the exchange); session windows ship rows.
    let mut partial = state.first().and_then(|op| PartialAggregator::new(op, watermark));
    let mut out = MapOutput {
        buckets: vec![Vec::new(); if partial.is_some() { 0 } else { shuffle }],
        ..Default::default()
    };
    let stateful = shuffle > 0;
    if !stateful {
        // At most one row per event: reserved once (untouched capacity costs no memory), so
        // the rows are never copied by growth.
        out.rows.reserve(events.len());
    }
    for e in events {
        let (min, max) = (
            out.min_et.map_or(e.event_time, |m| m.min(e.event_time)),
            out.max_et.map_or(e.event_time, |m| m.max(e.event_time)),
        );
        out.min_et = Some(min);
        out.max_et = Some(max);
        out.sum_et += e.event_time as i128;
        out.count += 1;
        let lineage = Lineage {
            arrival: e.arrival,
            ingest: batch_start,
            handoff: nominal,
            recv: batch_start,
        };
        let Some(row) = chain.apply(e, lineage) else { continue };
        match &mut partial {
            Some(p) => p.add(&row),
            None if stateful => {
                let key = state[0].key_of(&row);
                out.buckets[partition_of(key, shuffle)].push(row);
            }
            None => out.rows.push(row),
        }
    }
    if let Some(p) = partial {
        (out.partials, out.late_rows) = p.finish(shuffle);
    }
    let n = events.len() as u64;
    let routed: u64 = out.buckets.iter().map(|b| b.len() as u64).sum::<u64>()
        + out.partials.iter().map(|b| b.len() as u64).sum::<u64>();
    out.work = Work {
        events_read: n,
        events_chained: n,
        shuffle_rows: routed,
        modelled: n * record_cost,
        ..Default::default()
    };
    out
}

/// One reduce task: a shuffle partition's rows into its state, then the output mode's emission
/// with the batch's watermark.
fn reduce_task<'a>(
    op: &mut WindowedAggregation,
    inputs: impl Iterator<Item = &'a [Row]>,
    partials: impl Iterator<Item = &'a [Partial]>,
    watermark: EventTime,
    mode: OutputMode,
    now: Nanos,
    measure: bool,
) -> ReduceOutput {
    let mut results = Vec::new();
    let mut inserted = 0u64;
    // Rows of windows the watermark has already closed are dropped as late by `insert`, so
    // apply the batch's watermark first (Spark filters late input and evicts with the same one).
    op.advance_watermark(watermark, now, &mut results);
    let started = measure.then(std::time::Instant::now);
    for rows in inputs {
        for row in rows {
            op.insert(row, now, &mut results);
        }
        inserted += rows.len() as u64;
    }
    for list in partials {
        for p in list {
            op.merge_partial(p, now, &mut results);
        }
        inserted += list.len() as u64;
    }
    let state_ns = started.map_or(0, |s| s.elapsed().as_nanos() as Nanos);
    match mode {
        OutputMode::Append => {}
        OutputMode::Update => op.emit_updates(now, &mut results),
        OutputMode::Complete => op.emit_all(now, &mut results),
    }
    let work = Work {
        state_updates: inserted,
        results: results.len() as u64,
        ..Default::default()
    };
    ReduceOutput {
        work,
        state_ns,
        results,
        counters: op.take_counters(),
        rows_total: op.state_rows(),
        bytes: op.state_bytes(),
    }
}

/// Accumulates a run's outputs while batches run.
#[derive(Debug)]
struct RunState {
    failures: Vec<crate::run::FailureEvent>,
    delivered: Vec<Delivered>,
    epochs: Vec<serde_json::Value>,
    latency: LatencyRecorder,
    progress: Vec<BatchProgress>,
    counts: RunCounts,
    last_data_batch_end: Nanos,
}

impl RunState {
    fn new(components: &[Component]) -> Self {
        Self {
            failures: Vec::new(),
            delivered: Vec::new(),
            epochs: Vec::new(),
            latency: LatencyRecorder::new(components),
            progress: Vec::new(),
            counts: RunCounts::default(),
            last_data_batch_end: 0,
        }
    }

    fn finish(self, engine: &MicroBatchEngine) -> EngineRun {
        let mut modelled = Vec::new();
        if engine.cfg.scheduling != Default::default() {
            modelled.push(format!(
                "scheduling overhead: {} per batch, {} per task (charged as waiting time)",
                engine.cfg.scheduling.per_batch, engine.cfg.scheduling.per_task
            ));
        }
        EngineRun {
            delivered: self.delivered,
            side_output: Vec::new(),
            latency: self.latency,
            progress: self
                .progress
                .iter()
                .map(|p| serde_json::to_value(p).expect("progress serializes"))
                .chain(self.epochs)
                .collect(),
            counts: self.counts,
            active_span: (0, self.last_data_batch_end),
            final_watermark: engine.next_watermark,
            modelled,
            failures: self.failures,
            resident: None,
        }
    }
}
