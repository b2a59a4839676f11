//! One batch: Spark's `MicroBatchExecution.runBatch`, one method per phase.
//!
//! A batch runs the phases Spark reports in `StreamingQueryProgress.durationMs`, in this order:
//!
//! 1. `latestOffset` — fix the batch's end offsets (a recovered query first replays its
//!    uncommitted batch with exactly the offsets of its offset-log entry), or find that there is
//!    nothing to do;
//! 2. `walCommit` — write the offsets and the watermark the batch runs with to the offset log,
//!    *before* any processing;
//! 3. `getBatch` — slice the source: one offset range per partition;
//! 4. `queryPlanning` — Spark's `IncrementalExecution`: plan and submit the job, where the
//!    modelled per-batch scheduling cost is paid (once per group under Drizzle-style group
//!    scheduling);
//! 5. `addBatch` — the map stage ([`super::map_stage`]), the exchange and the reduce stage with
//!    its `StateStore` ([`super::reduce_stage`]), then the idempotent sink ([`super::sink`]);
//! 6. `commitOffsets` — write the commit log; only now do the committed offsets move.
//!
//! The phases share one [`BatchContext`]: the batch id, its offset ranges and when each phase
//! ended, from which the progress record is built at the end.
//!
//! Invariants: every phase begins with its crash check (a failure plan's `InBatch` point stops
//! the batch before the phase does anything); the runtime is called — clock reads, charges,
//! task runs — in exactly the order of the phases above, since the simulated clock prices them
//! in that order; a batch that crashes leaves the run's counts as they were at the crash.

use crate::cost::Work;
use crate::fault::{BatchPhase, EngineStop};
use crate::microbatch::config::OutputMode;
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::log::OffsetEntry;
use crate::microbatch::map_stage::{EventTimes, StatelessRows};
use crate::microbatch::progress::{BatchProgress, DurationMs, EventTimeStats, StateOperatorProgress};
use crate::microbatch::run_state::RunState;
use crate::microbatch::sink::BatchOutputs;
use crate::runtime::Runtime;
use crate::source::SourceLog;
use crate::time::{as_ms, Nanos};

/// How far a bounded trigger (`Once`, `AvailableNow`) reads: the offsets available when it
/// started, at most `max_records` per batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReadLimit<'a> {
    /// Per partition, the end offset of all the data the trigger processes.
    pub(super) target: &'a [usize],
    /// `maxRecordsPerBatch`, split over partitions in proportion to their lag.
    pub(super) max_records: Option<u64>,
}

/// When each phase of a batch ended (`StreamingQueryProgress.durationMs` is their differences).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PhaseMarks {
    /// When the batch started (its `latestOffset` began).
    pub(super) start: Nanos,
    /// End of `latestOffset`.
    pub(super) latest_offset: Nanos,
    /// End of `walCommit`.
    pub(super) wal_commit: Nanos,
    /// End of `getBatch`.
    pub(super) get_batch: Nanos,
    /// End of `queryPlanning`.
    pub(super) query_planning: Nanos,
    /// When the tasks of `addBatch` were done and the sink began.
    pub(super) tasks_done: Nanos,
    /// End of `addBatch`: the batch's output is visible.
    pub(super) add_batch: Nanos,
    /// End of `commitOffsets`: the batch is over.
    pub(super) end: Nanos,
}

/// What the phases of one batch share: which batch, what it reads, when each phase ended and
/// what the progress record will report.
#[derive(Debug)]
pub(super) struct BatchContext {
    /// The batch id (offset log, commit log and sink are keyed by it).
    pub(super) id: u64,
    /// The trigger instant the batch was due at.
    pub(super) nominal: Nanos,
    /// Whether the batch re-runs an uncommitted batch of a crashed query.
    pub(super) replayed: bool,
    /// Per partition, the end offset the batch reads up to.
    pub(super) end_offsets: Vec<usize>,
    /// Whether the batch reads new data (otherwise it only acts on a watermark change).
    pub(super) has_data: bool,
    /// Per partition, the offset range `[from, to)` the batch reads (set by `getBatch`).
    pub(super) ranges: Vec<(usize, usize)>,
    /// Records the batch reads.
    pub(super) num_input_rows: u64,
    /// When each phase ended.
    pub(super) marks: PhaseMarks,
    /// Waves of tasks the batch ran on the worker pool (each pays the per-task launch cost).
    pub(super) waves: u64,
    /// The modelled scheduling time of the batch (planning plus task launches).
    pub(super) scheduling: Nanos,
    /// Bytes of state the batch wrote to the checkpoint.
    pub(super) checkpoint_bytes: u64,
    /// The state operators' progress (`stateOperators`).
    pub(super) state_operators: Vec<StateOperatorProgress>,
    /// Outputs the batch delivered (`numOutputRows`).
    pub(super) num_output_rows: u64,
    /// Event times the map tasks saw (`eventTime`).
    pub(super) event_times: EventTimes,
}

impl MicroBatchEngine {
    /// Runs one batch if there is new data or a watermark change to act on; returns whether it ran.
    pub(super) fn run_batch<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        nominal: Nanos,
        limit: Option<ReadLimit<'_>>,
        run: &mut RunState,
    ) -> Result<bool, EngineStop> {
        let Some(mut batch) = self.latest_offset(rt, source, nominal, limit)? else {
            return Ok(false);
        };
        self.wal_commit(rt, &mut batch)?;
        self.get_batch(rt, &mut batch)?;
        self.query_planning(rt, &mut batch)?;
        self.add_batch(rt, source, &mut batch, run)?;
        self.commit_offsets(rt, &mut batch, run)?;
        let progress = self.progress(batch);
        run.progress.push(progress);
        Ok(true)
    }

    /// `latestOffset`: the batch's end offsets, or `None` when there is neither new data nor a
    /// watermark change a stateful query must act on. Fixes the batch id and its watermark.
    fn latest_offset<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        nominal: Nanos,
        limit: Option<ReadLimit<'_>>,
    ) -> Result<Option<BatchContext>, EngineStop> {
        // A recovered query first replays its uncommitted batch, same offsets.
        let start = rt.now();
        self.crash_check(self.next_batch_id, BatchPhase::LatestOffset, start)?;
        let replay = self.replay.take();
        let end_offsets = match &replay {
            Some(entry) => entry.offsets.clone(),
            None => self.next_offsets(source, start, limit),
        };
        rt.charge(&Work {
            partitions_polled: end_offsets.len() as u64,
            ..Default::default()
        });
        let latest_offset = rt.now();
        for (r, l) in self.read_up_to.iter_mut().zip(&end_offsets) {
            *r = (*r).max(*l);
        }
        let has_data = end_offsets != self.committed;
        let watermark_moved = self.pipeline.is_stateful()
            && self.cfg.output_mode != OutputMode::Complete
            && self.next_watermark > self.watermark;
        if !has_data && !watermark_moved && replay.is_none() {
            return Ok(None);
        }
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.previous_watermark = self.watermark;
        self.watermark = replay.as_ref().map_or(self.next_watermark, |e| e.watermark);
        Ok(Some(BatchContext {
            id,
            nominal,
            replayed: replay.is_some(),
            end_offsets,
            has_data,
            ranges: Vec::new(),
            num_input_rows: 0,
            marks: PhaseMarks {
                start,
                latest_offset,
                ..Default::default()
            },
            waves: 0,
            scheduling: 0,
            checkpoint_bytes: 0,
            state_operators: Vec::new(),
            num_output_rows: 0,
            event_times: EventTimes::default(),
        }))
    }

    /// The end offsets of the next batch: everything available now, or for a bounded trigger
    /// the target, capped at `max_records` split over partitions in proportion to their lag.
    fn next_offsets(&self, source: &SourceLog, now: Nanos, limit: Option<ReadLimit<'_>>) -> Vec<usize> {
        let Some(ReadLimit { target, max_records }) = limit else {
            return (0..source.partitions()).map(|p| source.available(p, now)).collect();
        };
        let lag: Vec<u64> = target
            .iter()
            .zip(&self.committed)
            .map(|(t, c)| (t - c) as u64)
            .collect();
        let total: u64 = lag.iter().sum();
        let Some(cap) = max_records.filter(|&c| c < total) else {
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

    /// `walCommit`: the offsets (and the watermark this batch runs with) before processing.
    fn wal_commit<R: Runtime>(&mut self, rt: &mut R, batch: &mut BatchContext) -> Result<(), EngineStop> {
        self.crash_check(batch.id, BatchPhase::WalCommit, rt.now())?;
        let entry = OffsetEntry {
            batch_id: batch.id,
            offsets: batch.end_offsets.clone(),
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
        batch.marks.wal_commit = rt.now();
        Ok(())
    }

    /// `getBatch`: the offset range of each partition.
    fn get_batch<R: Runtime>(&mut self, rt: &mut R, batch: &mut BatchContext) -> Result<(), EngineStop> {
        self.crash_check(batch.id, BatchPhase::GetBatch, rt.now())?;
        batch.ranges = self
            .committed
            .iter()
            .copied()
            .zip(batch.end_offsets.iter().copied())
            .collect();
        batch.num_input_rows = batch.ranges.iter().map(|(a, b)| (b - a) as u64).sum();
        batch.marks.get_batch = rt.now();
        Ok(())
    }

    /// `queryPlanning`: the cost of planning and submitting the job is paid here, once per
    /// group of `group_size` batches (Drizzle group scheduling; 1 is Spark's behaviour).
    fn query_planning<R: Runtime>(&mut self, rt: &mut R, batch: &mut BatchContext) -> Result<(), EngineStop> {
        self.crash_check(batch.id, BatchPhase::QueryPlanning, rt.now())?;
        if batch.id % self.cfg.group_size as u64 == 0 {
            rt.charge(&Work {
                batch_jobs: 1,
                modelled: self.cfg.scheduling.per_batch.nanos(),
                ..Default::default()
            });
        }
        batch.marks.query_planning = rt.now();
        Ok(())
    }

    /// `addBatch`: map tasks per source partition, the exchange and reduce tasks per shuffle
    /// partition (a stateful query), then the sink; last, the watermark for the next batch.
    fn add_batch<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        batch: &mut BatchContext,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        self.crash_check(batch.id, BatchPhase::AddBatch, rt.now())?;
        let mut map_out = self.map_stage(rt, source, batch, run);
        if self.pipeline.is_stateful() {
            let results = self.reduce_stage(rt, batch, &mut map_out, run)?;
            let outputs = self.then_stage(results, rt.now());
            self.deliver(rt, batch, BatchOutputs::Results(&outputs), run)?;
        } else {
            // A stateless query's output is its map tasks' rows, in partition order, delivered
            // from where the tasks left them (never gathered into a copy).
            // The sink needs the engine mutably; the chain materializes the rows meanwhile (a
            // clone per batch: the filter's predicates and the dimension table).
            let chain = self.chain.clone();
            // Held while the sink delivers (a live source's read guards).
            let read: Vec<_> = (batch.ranges.iter().enumerate())
                .map(|(p, &(from, to))| source.read(p, from, to))
                .collect();
            let rows = StatelessRows {
                map_out: &map_out,
                events: read.iter().map(|events| &**events).collect(),
                chain: &chain,
                batch_start: batch.marks.start,
                nominal: batch.nominal,
            };
            self.deliver(rt, batch, BatchOutputs::Rows(rows), run)?;
            self.selection_buffers.keep(&mut map_out);
        }

        // The watermark for the next batch, from this batch's event times.
        let event_times = EventTimes::of(&map_out);
        run.counts.replayed += event_times.reread;
        run.counts.events += event_times.reread;
        if let Some(max) = event_times.max {
            self.next_watermark = self.next_watermark.max(max - self.cfg.watermark_delay.whole_ms());
        }
        batch.event_times = event_times;
        Ok(())
    }

    /// `commitOffsets`: the commit log records the batch (and the watermark the next batch
    /// runs with); the committed offsets move to the batch's end offsets.
    fn commit_offsets<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch: &mut BatchContext,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        self.crash_check(batch.id, BatchPhase::CommitOffsets, rt.now())?;
        let mut bytes = self.logs.write_commit(batch.id, self.next_watermark);
        if let Some(dir) = &self.checkpoint {
            bytes = dir.write_commit(batch.id, self.next_watermark)?;
        }
        rt.charge(&Work {
            log_writes: 1,
            logged_bytes: bytes as u64,
            ..Default::default()
        });
        self.committed = std::mem::take(&mut batch.end_offsets);
        batch.marks.end = rt.now();

        run.counts.events += batch.num_input_rows;
        run.counts.batches += 1;
        if batch.has_data {
            run.last_data_batch_end = batch.marks.end;
        }
        Ok(())
    }

    /// The batch's `StreamingQueryProgress` record.
    fn progress(&mut self, batch: BatchContext) -> BatchProgress {
        let m = batch.marks;
        let num_input_rows = batch.num_input_rows;
        let exec = (m.end - m.start) as f64 / 1e9;
        let since_last = self.last_trigger_start.map(|t| (m.start - t) as f64 / 1e9);
        self.last_trigger_start = Some(m.start);
        let seen = batch.event_times;
        BatchProgress {
            run: self.name.clone(),
            batch_id: batch.id,
            timestamp: as_ms(m.start),
            trigger_time_ms: as_ms(batch.nominal),
            num_input_rows,
            input_rows_per_second: since_last
                .filter(|s| *s > 0.0)
                .map_or(0.0, |s| num_input_rows as f64 / s),
            processed_rows_per_second: if exec > 0.0 { num_input_rows as f64 / exec } else { 0.0 },
            duration_ms: DurationMs {
                latest_offset: as_ms(m.latest_offset - m.start),
                wal_commit: as_ms(m.wal_commit - m.latest_offset),
                get_batch: as_ms(m.get_batch - m.wal_commit),
                query_planning: as_ms(m.query_planning - m.get_batch),
                add_batch: as_ms(m.add_batch - m.query_planning),
                commit_offsets: as_ms(m.end - m.add_batch),
                trigger_execution: as_ms(m.end - m.start),
            },
            event_time: EventTimeStats {
                min: seen.min,
                max: seen.max,
                avg: (seen.count > 0).then(|| seen.sum as f64 / seen.count as f64),
                watermark: self.watermark,
            },
            state_operators: batch.state_operators,
            num_output_rows: batch.num_output_rows,
            falling_behind: false,
            modelled_scheduling_ms: as_ms(batch.scheduling),
            checkpoint_bytes: batch.checkpoint_bytes,
            replayed: batch.replayed,
        }
    }
}
