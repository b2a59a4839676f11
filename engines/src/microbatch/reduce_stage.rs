//! The exchange and the reduce stage of `addBatch`: one task per shuffle partition, each
//! updating its partition of the `StateStore`.
//!
//! The exchange hands every reduce task the rows (session windows) and partial aggregates
//! (other windows) the map tasks routed to its shuffle partition. A reduce task first applies
//! the batch's watermark to its state (so late input is dropped and closed windows evicted with
//! the same watermark, as Spark does), merges its input, and emits what the output mode says.
//! Each state partition then commits its new version to the checkpoint — a delta, and now and
//! then a snapshot — as Spark's `StateStore.commit` does: inside its reduce task, as Spark's
//! task commits its store on the executor, so the partitions' files are written in parallel
//! (on the live clock one file creation costs 0.03–1 ms on this machine's disk, and on the
//! driver they were a serial step of every batch); where attempts can fail, after the stage
//! (a failed attempt's version would land before the retry restores the one before it). The
//! charge for the writes is the same either way, at the same point. The stage reports Spark's
//! `stateStoreSave` operator progress.
//!
//! Invariants: a retried reduce task starts from the state version the batch began with (read
//! back from the checkpoint, or from a copy taken before the stage when attempts can fail), so
//! a task attempt is repeatable; state version `b + 1` is the state after batch `b`.

use crate::checkpoint::CheckpointError;
use crate::cost::Work;
use crate::fault::EngineStop;
use crate::microbatch::batch::BatchContext;
use crate::microbatch::checkpoint::CheckpointDir;
use crate::microbatch::config::OutputMode;
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::keyed_stage::StageResults;
use crate::microbatch::map_stage::MapOutput;
use crate::microbatch::progress::StateOperatorProgress;
use crate::microbatch::run_state::RunState;
use crate::operators::window::partial::Partial;
use crate::operators::window::{StateCounters, WindowEntry, WindowedAggregation};
use crate::operators::{Output, Row, WindowResult};
use crate::runtime::{Runtime, TaskContext};
use crate::time::{as_ms, EventTime, Nanos};
use std::sync::Mutex;

/// What one reduce task (one shuffle partition) produced.
struct ReduceOutput {
    work: Work,
    /// Time spent updating state (measured live, priced on virtual time).
    state_ns: Nanos,
    results: Vec<WindowResult>,
    counters: StateCounters,
    rows_total: usize,
    bytes: usize,
    /// Bytes of the state version the task committed itself (none: committed after the stage).
    committed: Option<usize>,
}

/// The map stage's output, by map task and shuffle partition: what the reduce tasks fetch.
struct Exchange {
    /// Rows by map task, then shuffle partition (session windows).
    buckets: Vec<Vec<Vec<Row>>>,
    /// Partial aggregates by map task, then shuffle partition (other windows).
    partials: Vec<Vec<Vec<Partial>>>,
    /// Rows the map tasks dropped as late before the exchange.
    late_rows: u64,
}

impl Exchange {
    /// Takes the routed output of every map task.
    fn take(map_out: &mut [MapOutput]) -> Self {
        let buckets = map_out.iter_mut().map(|m| std::mem::take(&mut m.buckets)).collect();
        let partials = map_out.iter_mut().map(|m| std::mem::take(&mut m.partials)).collect();
        let late_rows = map_out.iter().map(|m| m.late_rows).sum();
        Self {
            buckets,
            partials,
            late_rows,
        }
    }
}

/// The state version a reduce task starts from when its first attempt failed.
struct StateBefore {
    /// The state's watermark when the batch began.
    watermark: EventTime,
    /// A copy of its entries, where there is no checkpoint to read them back from and
    /// attempts can fail.
    copy: Option<Vec<WindowEntry>>,
}

/// What every reduce task of a batch shares.
struct ReduceStage<'a> {
    exchange: &'a Exchange,
    before: &'a [StateBefore],
    checkpoint: &'a Option<CheckpointDir>,
    batch_id: u64,
    /// The watermark the batch runs with (closed windows are emitted and evicted with it).
    watermark: EventTime,
    /// The watermark input is found late by: the batch's own, or in a chain the previous
    /// batch's (Spark's `eventTimeWatermarkForLateEvents` with several stateful operators).
    late_watermark: EventTime,
    mode: OutputMode,
    /// The processing time the state sees (the end of `queryPlanning`).
    now: Nanos,
    /// Whether each task commits its state partition's new version itself, as a Spark task
    /// commits its `StateStore` on the executor: the partitions' files are then written in
    /// parallel instead of one after another on the driver. Only where no attempt can fail: a
    /// failed attempt's version would be written before the retry restores the one before it.
    commits_in_task: bool,
}

impl ReduceStage<'_> {
    /// The task of shuffle partition `s`, updating its state partition `op`.
    fn task(
        &self,
        s: usize,
        op: &Mutex<&mut WindowedAggregation>,
        ctx: &TaskContext,
    ) -> Result<ReduceOutput, CheckpointError> {
        let mut op = op.lock().expect("one attempt at a time");
        if ctx.attempt() > 1 {
            let StateBefore { watermark, copy } = &self.before[s];
            match (self.checkpoint, copy) {
                (Some(dir), _) => dir.restore_state(s, self.batch_id, &mut op, *watermark)?,
                (None, Some(copy)) => {
                    op.restore(copy.iter().cloned(), *watermark);
                    op.take_delta();
                }
                (None, None) => unreachable!("attempts fail only where a copy was kept"),
            }
        }
        let mut out = self.reduce(&mut op, s, ctx.is_live());
        if let (true, Some(dir)) = (self.commits_in_task, self.checkpoint) {
            out.committed = Some(dir.commit_state(s, self.batch_id + 1, &mut op)?);
        }
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

    /// A shuffle partition's rows and partials into its state, then the output mode's emission
    /// with the batch's watermark. `measure`: time the state updates on the wall clock.
    fn reduce(&self, op: &mut WindowedAggregation, s: usize, measure: bool) -> ReduceOutput {
        let inputs = self
            .exchange
            .buckets
            .iter()
            .filter_map(move |b| b.get(s))
            .map(Vec::as_slice);
        let partials = self
            .exchange
            .partials
            .iter()
            .filter_map(move |b| b.get(s))
            .map(Vec::as_slice);
        let now = self.now;
        let mut results = Vec::new();
        let mut inserted = 0u64;
        // Rows of windows the watermark has already closed are dropped as late by `insert`, so
        // apply the watermark for late input first (Spark filters late input and evicts with
        // the same one; in a chain, with the previous batch's and then this batch's).
        op.advance_watermark(self.late_watermark, now, &mut results);
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
        if self.watermark > self.late_watermark {
            op.advance_watermark(self.watermark, now, &mut results);
        }
        match self.mode {
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
            committed: None,
        }
    }
}

impl MicroBatchEngine {
    /// The exchange and the reduce tasks of a stateful batch, then the state store's commit.
    /// Returns the windows the output mode emits, in shuffle-partition order. In a chain, the
    /// keyed stage's reduce stage first, then the aggregation's behind the second exchange.
    pub(super) fn reduce_stage<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch: &mut BatchContext,
        map_out: &mut [MapOutput],
        run: &mut RunState,
    ) -> Result<Vec<Output>, EngineStop> {
        if !self.stages.is_empty() {
            let StageResults { outputs, routed } = self.keyed_stage_reduce(rt, batch, map_out, run)?;
            if self.state.is_empty() {
                return Ok(outputs);
            }
            let exchange = Exchange {
                buckets: routed,
                partials: Vec::new(),
                late_rows: 0,
            };
            return self.aggregate_reduce(rt, batch, exchange, self.previous_watermark, run);
        }
        let exchange = Exchange::take(map_out);
        let watermark = self.watermark;
        self.aggregate_reduce(rt, batch, exchange, watermark, run)
    }

    /// The aggregation's reduce tasks over `exchange`, input found late by `late_watermark`.
    fn aggregate_reduce<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch: &mut BatchContext,
        exchange: Exchange,
        late_watermark: EventTime,
        run: &mut RunState,
    ) -> Result<Vec<Output>, EngineStop> {
        // A retried reduce task starts from the state version the batch began with: read
        // back from the checkpoint (as a Spark task on another executor loads the store),
        // or, without one, from a copy taken before the stage when attempts can fail.
        let before: Vec<StateBefore> = self
            .state
            .iter()
            .map(|op| {
                let copy = (self.checkpoint.is_none() && rt.attempts_can_fail()).then(|| op.snapshot());
                StateBefore {
                    watermark: op.watermark(),
                    copy,
                }
            })
            .collect();
        let stage = ReduceStage {
            exchange: &exchange,
            before: &before,
            checkpoint: &self.checkpoint,
            batch_id: batch.id,
            watermark: self.watermark,
            late_watermark: late_watermark.min(self.watermark),
            mode: self.cfg.output_mode,
            now: batch.marks.query_planning,
            commits_in_task: !rt.attempts_can_fail(),
        };
        let stage = &stage;
        let reduce_tasks: Vec<_> = self
            .state
            .iter_mut()
            .map(Mutex::new)
            .enumerate()
            .map(|(s, op)| move |ctx: &TaskContext| stage.task(s, &op, ctx))
            .collect();
        batch.waves += reduce_tasks.len().div_ceil(rt.workers()) as u64;
        let reduced = rt
            .run_tasks(reduce_tasks, self.cfg.scheduling.per_task.nanos())
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let mut outputs: Vec<Output> = Vec::new();
        let mut total = ReduceOutput {
            work: Work::default(),
            state_ns: 0,
            results: Vec::new(),
            counters: StateCounters::default(),
            rows_total: 0,
            bytes: 0,
            committed: None,
        };
        for r in reduced {
            // The bytes of the versions the tasks committed (all of them or none).
            if let Some(bytes) = r.committed {
                *total.committed.get_or_insert(0) += bytes;
            }
            total.counters.late_dropped += r.counters.late_dropped;
            total.counters.rows_updated += r.counters.rows_updated;
            total.counters.rows_removed += r.counters.rows_removed;
            total.rows_total += r.rows_total;
            total.bytes += r.bytes;
            total.state_ns += r.state_ns;
            total.work.state_updates += r.work.state_updates;
            outputs.extend(r.results.into_iter().map(Output::Window));
        }
        total.counters.late_dropped += exchange.late_rows;
        run.counts.late_dropped += total.counters.late_dropped;
        run.counts.state_accesses += total.work.state_updates;
        run.counts.state_access_ns += total.state_ns;
        match total.committed {
            // Charged as the driver's commit would be, at the same point of the batch.
            Some(written) => charge_versions(rt, batch, self.state.len(), written),
            None => self.commit_state_store(rt, batch)?,
        }
        batch.state_operators.push(StateOperatorProgress {
            operator_name: "stateStoreSave".into(),
            num_rows_total: total.rows_total as u64,
            num_rows_updated: total.counters.rows_updated,
            num_rows_removed: total.counters.rows_removed,
            num_rows_dropped_by_watermark: total.counters.late_dropped,
            memory_used_bytes: total.bytes as u64,
            all_updates_time_ms: as_ms(total.state_ns),
        });
        Ok(outputs)
    }

    /// Each state partition commits its new version: a delta, and now and then a snapshot.
    fn commit_state_store<R: Runtime>(&mut self, rt: &mut R, batch: &mut BatchContext) -> Result<(), EngineStop> {
        if let Some(dir) = &self.checkpoint {
            let state = &mut self.state;
            commit_versions(rt, batch, state.len(), |p, v| dir.commit_state(p, v, &mut state[p]))?;
        }
        Ok(())
    }
}

/// Commits version `batch.id + 1` of each of `partitions` state partitions through `write`
/// (partition, version → bytes written), and charges the writes to the batch.
pub(super) fn commit_versions<R: Runtime>(
    rt: &mut R,
    batch: &mut BatchContext,
    partitions: usize,
    mut write: impl FnMut(usize, u64) -> Result<usize, CheckpointError>,
) -> Result<(), EngineStop> {
    let mut written = 0;
    for p in 0..partitions {
        written += write(p, batch.id + 1)?;
    }
    charge_versions(rt, batch, partitions, written);
    Ok(())
}

/// Charges the commit of `partitions` state versions, `written` bytes in all, to the batch.
fn charge_versions<R: Runtime>(rt: &mut R, batch: &mut BatchContext, partitions: usize, written: usize) {
    rt.charge(&Work {
        log_writes: partitions as u64,
        logged_bytes: written as u64,
        ..Default::default()
    });
    batch.checkpoint_bytes += written as u64;
}
