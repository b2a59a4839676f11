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

use crate::cost::Work;
use crate::microbatch::continuous::partition_task;
use crate::microbatch::log::{BatchLogs, OffsetEntry};
use crate::microbatch::progress::{BatchProgress, DurationMs, EventTimeStats, StateOperatorProgress};
use crate::operators::fxhash::partition_of;
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{EmitPolicy, StateCounters, TimeSemantics, WindowedAggregation};
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
    /// Rows of a stateful pipeline, by shuffle partition.
    buckets: Vec<Vec<Row>>,
    min_et: Option<EventTime>,
    max_et: Option<EventTime>,
    sum_et: i128,
    count: u64,
}

/// What one reduce task (one shuffle partition) produced.
struct ReduceOutput {
    work: Work,
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
                .map(|_| WindowedAggregation::new(*agg, TimeSemantics::SPARK, policy))
                .collect(),
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
        })
    }

    /// The offset and commit logs written so far.
    pub fn logs(&self) -> &BatchLogs {
        &self.logs
    }

    /// Runs the query until `until` (processing time) or until its trigger says stop.
    pub fn run<R: Runtime>(&mut self, rt: &mut R, source: &SourceLog, until: Nanos) -> EngineRun {
        self.advance(rt, source, until);
        self.finish()
    }

    /// Runs the query up to `until`: a `ProcessingTime` query starts every batch due before
    /// then and can be advanced again later (the simulator runs long scenarios in segments);
    /// the other triggers run to completion on their first call.
    pub fn advance<R: Runtime>(&mut self, rt: &mut R, source: &SourceLog, until: Nanos) {
        let mut run = std::mem::replace(&mut self.run, RunState::new(&COMPONENTS));
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
                    let ran = self.run_batch(rt, source, next_trigger, None, &mut run);
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
                    let ran = self.run_batch(rt, source, nominal, Some((&target, cap)), &mut run);
                    let once = matches!(self.cfg.trigger, Trigger::Once);
                    if !ran || once || rt.now() >= until {
                        break;
                    }
                }
            }
            Trigger::Continuous { checkpoint_interval } => {
                self.next_trigger = Some(start_at.unwrap_or(0));
                rt.wait_until(start_at.unwrap_or(0));
                self.run_continuous(rt, source, until, checkpoint_interval.nanos(), &mut run);
            }
        }
        self.run = run;
    }

    /// Takes the outputs delivered so far (the run keeps counting them).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        std::mem::take(&mut self.run.delivered)
    }

    /// Per partition, the offset up to which the query has committed its input.
    pub fn committed_offsets(&self) -> &[usize] {
        &self.committed
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
    ) -> bool {
        // latestOffset
        let start = rt.now();
        let latest = self.next_offsets(source, start, bounded);
        rt.charge(&Work {
            partitions_polled: latest.len() as u64,
            ..Default::default()
        });
        let t_latest = rt.now();
        let has_data = latest != self.committed;
        let stateful = self.pipeline.is_stateful();
        let watermark_moved =
            stateful && self.cfg.output_mode != OutputMode::Complete && self.next_watermark > self.watermark;
        if !has_data && !watermark_moved {
            return false;
        }
        let batch_id = self.next_batch_id;
        self.next_batch_id += 1;
        self.watermark = self.next_watermark;

        // walCommit: the offsets (and the watermark this batch runs with) before processing.
        let bytes = self.logs.write_offsets(&OffsetEntry {
            batch_id,
            offsets: latest.clone(),
            watermark: self.watermark,
        });
        rt.charge(&Work {
            log_writes: 1,
            logged_bytes: bytes as u64,
            ..Default::default()
        });
        let t_wal = rt.now();

        // getBatch: the offset ranges of each partition.
        let ranges: Vec<(usize, usize)> = self.committed.iter().copied().zip(latest.iter().copied()).collect();
        let num_input_rows: u64 = ranges.iter().map(|(a, b)| (b - a) as u64).sum();
        let t_get = rt.now();

        // queryPlanning: the cost of planning and submitting the job is paid here, once per
        // group of `group_size` batches (Drizzle group scheduling; 1 is Spark's behaviour).
        let per_task = self.cfg.scheduling.per_task.nanos();
        if batch_id % self.cfg.group_size as u64 == 0 {
            rt.charge(&Work {
                batch_jobs: 1,
                modelled: self.cfg.scheduling.per_batch.nanos(),
                ..Default::default()
            });
        }
        let t_plan = rt.now();

        // addBatch: map tasks per source partition, reduce tasks per shuffle partition, sink.
        let shuffle = self.state.len();
        let chain = &self.chain;
        let record_cost = self.cfg.modelled_cost_per_record.nanos();
        let map_tasks: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(p, &(from, to))| {
                let events = source.read(p, from, to);
                let state = &self.state;
                move |ctx: &TaskContext| {
                    let out = map_task(chain, events, start, nominal, state, shuffle, record_cost);
                    ctx.charge(&out.work);
                    out
                }
            })
            .collect();
        let n_map = map_tasks.len();
        let mut map_out = rt.run_tasks(map_tasks, per_task);
        let mut outputs: Vec<Output> = Vec::new();
        let mut state_progress = Vec::new();
        let mut waves = n_map.div_ceil(rt.workers()) as u64;
        if stateful {
            let watermark = self.watermark;
            let mode = self.cfg.output_mode;
            let buckets: Vec<Vec<Vec<Row>>> = map_out.iter_mut().map(|m| std::mem::take(&mut m.buckets)).collect();
            let buckets = &buckets;
            let reduce_tasks: Vec<_> = self
                .state
                .iter_mut()
                .enumerate()
                .map(|(s, op)| {
                    move |ctx: &TaskContext| {
                        let out = reduce_task(
                            op,
                            buckets.iter().map(move |b| b[s].as_slice()),
                            watermark,
                            mode,
                            t_plan,
                        );
                        ctx.charge(&out.work);
                        out
                    }
                })
                .collect();
            waves += reduce_tasks.len().div_ceil(rt.workers()) as u64;
            let reduced = rt.run_tasks(reduce_tasks, per_task);
            let mut total = ReduceOutput {
                work: Work::default(),
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
                outputs.extend(r.results.into_iter().map(Output::Window));
            }
            run.counts.late_dropped += total.counters.late_dropped;
            state_progress.push(StateOperatorProgress {
                operator_name: "stateStoreSave".into(),
                num_rows_total: total.rows_total as u64,
                num_rows_updated: total.counters.rows_updated,
                num_rows_removed: total.counters.rows_removed,
                num_rows_dropped_by_watermark: total.counters.late_dropped,
                memory_used_bytes: total.bytes as u64,
            });
        } else {
            for m in &mut map_out {
                outputs.extend(m.rows.drain(..).map(Output::Row));
            }
        }
        rt.charge(&Work {
            sink_records: outputs.len() as u64,
            ..Default::default()
        });
        let t_add = rt.now();

        // The watermark for the next batch, from this batch's event times.
        let min_et = map_out.iter().filter_map(|m| m.min_et).min();
        let max_et = map_out.iter().filter_map(|m| m.max_et).max();
        let count: u64 = map_out.iter().map(|m| m.count).sum();
        let sum_et: i128 = map_out.iter().map(|m| m.sum_et).sum();
        if let Some(max) = max_et {
            self.next_watermark = self.next_watermark.max(max - self.cfg.watermark_delay.whole_ms());
        }

        // commitOffsets
        let bytes = self.logs.write_commit(batch_id, self.next_watermark);
        rt.charge(&Work {
            log_writes: 1,
            logged_bytes: bytes as u64,
            ..Default::default()
        });
        self.committed = latest;
        let end = rt.now();

        let scheduling = (t_plan - t_get) + (per_task + rt.modelled_task_launch()) * waves;
        let timing = BatchTiming {
            start,
            scheduling,
            commit: end - t_add,
            end,
        };
        let final_results = self.cfg.output_mode == OutputMode::Append;
        for output in &outputs {
            let origin = match output {
                Output::Row(r) => &r.lineage,
                Output::Window(w) => &w.origin,
            };
            run.latency.record(end, &decompose(origin, &timing));
            if let Output::Window(w) = output {
                if final_results && !w.is_update {
                    run.latency
                        .record_event_time(end.saturating_sub(event_time_as_nanos(w.end)));
                }
            }
        }
        let num_output_rows = outputs.len() as u64;
        run.counts.outputs += num_output_rows;
        run.delivered
            .extend(outputs.into_iter().map(|output| Delivered { at: end, output }));
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
        });
        true
    }
}

/// One map task: the stateless chain over one partition's slice; for a stateful pipeline the
/// rows are routed to their shuffle partition by key.
fn map_task(
    chain: &StatelessChain,
    events: &[crate::event::Event],
    batch_start: Nanos,
    nominal: Nanos,
    state: &[WindowedAggregation],
    shuffle: usize,
    record_cost: Nanos,
) -> MapOutput {
    let mut out = MapOutput {
        buckets: vec![Vec::new(); shuffle],
        ..Default::default()
    };
    let stateful = shuffle > 0;
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
        if stateful {
            let key = state[0].key_of(&row);
            out.buckets[partition_of(key, shuffle)].push(row);
        } else {
            out.rows.push(row);
        }
    }
    let n = events.len() as u64;
    let routed: u64 = out.buckets.iter().map(|b| b.len() as u64).sum();
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
    watermark: EventTime,
    mode: OutputMode,
    now: Nanos,
) -> ReduceOutput {
    let mut results = Vec::new();
    let mut inserted = 0u64;
    // Rows of windows the watermark has already closed are dropped as late by `insert`, so
    // apply the batch's watermark first (Spark filters late input and evicts with the same one).
    op.advance_watermark(watermark, now, &mut results);
    for rows in inputs {
        for row in rows {
            op.insert(row, now, &mut results);
        }
        inserted += rows.len() as u64;
    }
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
        results,
        counters: op.take_counters(),
        rows_total: op.state_rows(),
        bytes: op.state_bytes(),
    }
}

/// Accumulates a run's outputs while batches run.
#[derive(Debug)]
struct RunState {
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
        }
    }
}
