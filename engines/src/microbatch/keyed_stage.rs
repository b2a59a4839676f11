//! The reduce stage of a query whose keyed stage is a join, a deduplication or a top-N: one
//! task per shuffle partition, each running its partition's operator over the rows the
//! exchange routed to it — first told the batch's watermark, as Spark applies it before the
//! batch's input (so late input is dropped, expired state evicted and an outer join's
//! unmatched rows emitted with the watermark of the previous batch: one trigger late).
//!
//! In a chain (a join or a deduplication, then an aggregation keyed its own way) each task
//! also writes its results, as the aggregation's rows, to the second exchange: routed by the
//! aggregation's key to its shuffle partitions, for the reduce stage after it
//! (`reduce_stage.rs`) in the same batch.
//!
//! And the second aggregation (`then`) over a batch's window results: in append mode a window's
//! results all leave in the batch whose watermark closed it, so the batch's results are the
//! window's complete set (Spark allows chained stateful operators in append mode only).
//!
//! After the stage each partition commits its new state version to the checkpoint (the whole
//! partition, see `checkpoint.rs`), and a retried task starts from the version the batch began
//! with — read back from the checkpoint as a Spark task on another executor loads the store, or,
//! without one, from a copy taken before the stage when attempts can fail.
//!
//! Invariants: a shuffle partition's rows are processed in map-task order, each map task's in
//! source order, so a key whose records come from one source partition is seen in arrival order;
//! a task attempt is repeatable; state version `b + 1` is the state after batch `b`.

use std::sync::Mutex;

use crate::checkpoint::CheckpointError;
use crate::cost::Work;
use crate::fault::EngineStop;
use crate::microbatch::batch::BatchContext;
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::map_stage::MapOutput;
use crate::microbatch::progress::StateOperatorProgress;
use crate::microbatch::reduce_stage::commit_versions;
use crate::microbatch::run_state::RunState;
use crate::operators::fxhash::partition_of;
use crate::operators::graph::{ChainLink, ExchangeKey, KeyedStage};
use crate::operators::{Output, Row};
use crate::runtime::{Runtime, TaskContext};
use crate::time::{as_ms, EventTime, Nanos};

/// What one reduce task produced.
struct StageOutput {
    work: Work,
    state_ns: Nanos,
    outputs: Vec<Output>,
    /// In a chain: the rows for the aggregation, by its shuffle partition (the task's shuffle
    /// write for the next stage), instead of `outputs`.
    routed: Vec<Vec<Row>>,
    late_dropped: u64,
    rows_total: usize,
}

/// What a keyed stage's reduce tasks hand on.
pub(super) struct StageResults {
    /// The stage's outputs, for the sink (none in a chain).
    pub(super) outputs: Vec<Output>,
    /// In a chain: the rows for the aggregation, by stage task, then by the aggregation's
    /// shuffle partition (the second exchange).
    pub(super) routed: Vec<Vec<Vec<Row>>>,
}

/// Where a chain's first stage sends its results: the aggregation's exchange over its shuffle
/// partitions.
#[derive(Clone, Copy)]
struct NextStage<'a> {
    link: &'a ChainLink,
    key: &'a ExchangeKey,
    partitions: usize,
}

impl NextStage<'_> {
    /// Routes `outputs` to the aggregation's shuffle partitions (Spark's shuffle write of the
    /// stage before the second exchange).
    fn route(&self, outputs: &mut Vec<Output>) -> Vec<Vec<Row>> {
        let mut routed = vec![Vec::new(); self.partitions];
        for o in outputs.drain(..) {
            if let Some(row) = self.link.row_of(&o) {
                routed[partition_of(self.key.of(&row), self.partitions)].push(row);
            }
        }
        routed
    }
}

/// A shuffle partition's rows through its operator, after the batch's watermark.
///
/// `rows_total` is the state after the batch's input, before the next batch's watermark
/// cleans it: the partition's state at its largest.
fn reduce(
    stage: &mut KeyedStage,
    inputs: &[&[Row]],
    watermark: EventTime,
    now: Nanos,
    measure: bool,
    next: Option<NextStage<'_>>,
) -> StageOutput {
    let mut outputs = Vec::new();
    let late_before = stage.late_dropped();
    stage.on_watermark(watermark, now, &mut outputs);
    let started = measure.then(std::time::Instant::now);
    let mut inserted = 0u64;
    for rows in inputs {
        for row in *rows {
            stage.on_row(*row, now, &mut outputs);
        }
        inserted += rows.len() as u64;
    }
    let state_ns = started.map_or(0, |s| s.elapsed().as_nanos() as Nanos);
    let results = outputs.len() as u64;
    let routed = next.map_or_else(Vec::new, |n| n.route(&mut outputs));
    StageOutput {
        work: Work {
            state_updates: inserted,
            results,
            shuffle_rows: routed.iter().map(|r| r.len() as u64).sum(),
            ..Default::default()
        },
        state_ns,
        outputs,
        routed,
        late_dropped: stage.late_dropped() - late_before,
        rows_total: stage.state_rows(),
    }
}

impl MicroBatchEngine {
    /// The exchange and the reduce tasks of a batch whose keyed stage is not an aggregation.
    /// Returns the stage's outputs; in a chain, none, and the rows for the aggregation.
    pub(super) fn keyed_stage_reduce<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch: &mut BatchContext,
        map_out: &mut [MapOutput],
        run: &mut RunState,
    ) -> Result<StageResults, EngineStop> {
        let buckets: Vec<Vec<Vec<Row>>> = map_out.iter_mut().map(|m| std::mem::take(&mut m.buckets)).collect();
        let buckets = &buckets;
        let watermark = self.watermark;
        let now = batch.marks.query_planning;
        let (batch_id, checkpoint) = (batch.id, &self.checkpoint);
        // The version the batch began with, for a retried attempt: read back from the
        // checkpoint (version `batch_id`), or a copy where there is none to read.
        let copies: Vec<Option<Vec<u8>>> = self
            .stages
            .iter()
            .map(|stage| {
                let from_dir = checkpoint.is_some() && batch_id > 0;
                (rt.attempts_can_fail() && !from_dir).then(|| stage.encode())
            })
            .collect();
        let copies = &copies;
        let link = ChainLink::for_pipeline(&self.pipeline);
        let key = link.as_ref().map(ChainLink::exchange);
        let next = link.as_ref().zip(key.as_ref()).map(|(link, key)| NextStage {
            link,
            key,
            partitions: self.state.len(),
        });
        let tasks: Vec<_> = self
            .stages
            .iter_mut()
            .map(Mutex::new)
            .enumerate()
            .map(|(s, stage)| {
                move |ctx: &TaskContext| -> Result<StageOutput, CheckpointError> {
                    let inputs: Vec<&[Row]> = buckets.iter().filter_map(|b| b.get(s)).map(Vec::as_slice).collect();
                    let mut stage = stage.lock().expect("one attempt at a time");
                    if ctx.attempt() > 1 {
                        match (&copies[s], checkpoint) {
                            (Some(copy), _) => {
                                stage.restore(copy).expect("a copy this process encoded");
                            }
                            (None, Some(dir)) => dir.restore_stage(s, batch_id, &mut stage)?,
                            (None, None) => unreachable!("attempts fail only where a copy was kept"),
                        }
                    }
                    let mut out = reduce(&mut stage, &inputs, watermark, now, ctx.is_live(), next);
                    out.state_ns = if ctx.is_live() {
                        ctx.stretch_state(out.state_ns)
                    } else {
                        ctx.price(&Work {
                            state_updates: out.work.state_updates,
                            ..Default::default()
                        })
                    };
                    ctx.charge(&out.work);
                    Ok(out)
                }
            })
            .collect();
        batch.waves += tasks.len().div_ceil(rt.workers()) as u64;
        let reduced = rt
            .run_tasks(tasks, self.cfg.scheduling.per_task.nanos())
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let mut outputs = Vec::new();
        let mut routed = Vec::new();
        let (mut late, mut rows_total, mut state_ns, mut updates) = (0, 0, 0, 0);
        for r in reduced {
            late += r.late_dropped;
            rows_total += r.rows_total;
            state_ns += r.state_ns;
            updates += r.work.state_updates;
            outputs.extend(r.outputs);
            routed.push(r.routed);
        }
        run.counts.late_dropped += late;
        run.counts.peak_state_rows = run.counts.peak_state_rows.max(rows_total as u64);
        run.counts.state_accesses += updates;
        run.counts.state_access_ns += state_ns;
        self.commit_stages(rt, batch)?;
        batch.state_operators.push(StateOperatorProgress {
            operator_name: self.stage_operator_name().into(),
            num_rows_total: rows_total as u64,
            num_rows_updated: updates,
            num_rows_removed: 0,
            num_rows_dropped_by_watermark: late,
            memory_used_bytes: 0,
            all_updates_time_ms: as_ms(state_ns),
        });
        Ok(StageResults { outputs, routed })
    }

    /// Each keyed-stage partition commits its new version (its whole state).
    fn commit_stages<R: Runtime>(&mut self, rt: &mut R, batch: &mut BatchContext) -> Result<(), EngineStop> {
        if let Some(dir) = &self.checkpoint {
            let stages = &self.stages;
            commit_versions(rt, batch, stages.len(), |p, v| dir.commit_stage(p, v, &stages[p]))?;
        }
        Ok(())
    }

    /// The name Spark's progress gives the stage's state operator.
    fn stage_operator_name(&self) -> &'static str {
        match self.stages.first() {
            Some(KeyedStage::Join(_)) => "symmetricHashJoin",
            Some(KeyedStage::Dedup(_)) => "dedupeWithinWatermark",
            _ => "stateStoreSave",
        }
    }

    /// The second aggregation over the batch's window results (append mode: complete per window,
    /// so the stage is empty again after every batch and has no state to checkpoint).
    pub(super) fn then_stage(&mut self, outputs: Vec<Output>, now: Nanos) -> Vec<Output> {
        let Some(then) = &mut self.then else {
            return outputs;
        };
        let mut out = Vec::new();
        for o in outputs {
            match o {
                Output::Window(w) => then.on_result(w),
                other => out.push(other),
            }
        }
        then.release_all(now, &mut out);
        out
    }
}
