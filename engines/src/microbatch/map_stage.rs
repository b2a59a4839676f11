//! The map stage of `addBatch`: one task per source partition, with partial aggregation.
//!
//! Each map task runs the query's stateless operators over its partition's offset range. For a
//! stateless query its rows are the batch's output; for a stateful one they are routed to
//! their shuffle partition by key — aggregated partially first where the windows allow it
//! (Spark's partial `HashAggregate` before the exchange), shipped as rows for session windows.
//! The tasks also gather the event-time statistics from which the next batch's watermark and
//! the progress record's `eventTime` are computed.
//!
//! Without an external shuffle service, map output lives on the executor that wrote it: a
//! worker lost before the reduce stage takes it along, and the reduce tasks' fetch failure
//! makes the scheduler run those map tasks again first (and their records count as re-read).
//!
//! Invariants: this is the hot path (tens of millions of events per second on one core) —
//! nothing is allocated or dispatched dynamically per record; a task's output depends only on
//! its partition's events and the [`MapTask`] (so an attempt can be re-run).

use crate::cost::Work;
use crate::event::Event;
use crate::microbatch::batch::BatchContext;
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::run_state::RunState;
use crate::operators::columnar::{ColumnarScan, ColumnarSelect, EventColumns};
use crate::operators::fxhash::partition_of;
use crate::operators::graph::ExchangeKey;
use crate::operators::stateless::StatelessChain;
use crate::operators::window::partial::{Partial, PartialAggregator};
use crate::operators::window::WindowedAggregation;
use crate::operators::{Lineage, Row};
use crate::runtime::{Runtime, TaskContext};
use crate::source::SourceLog;
use crate::time::{EventTime, Nanos};

/// What one map task (one source partition) produced.
#[derive(Default)]
pub(super) struct MapOutput {
    /// The work the task did (charged to its task clock).
    pub(super) work: Work,
    /// A stateless pipeline's rows, as a selection of the task's events (materialized when
    /// the sink delivers them, [`StatelessRows`]).
    pub(super) selected: Vec<Selected>,
    /// Rows of a stateful pipeline, by shuffle partition (session windows).
    pub(super) buckets: Vec<Vec<Row>>,
    /// Partial aggregates of a stateful pipeline, by shuffle partition (other windows).
    pub(super) partials: Vec<Vec<Partial>>,
    /// Rows dropped before the exchange because every window they fall in is late.
    pub(super) late_rows: u64,
    min_et: Option<EventTime>,
    max_et: Option<EventTime>,
    sum_et: i128,
    count: u64,
    /// Events this attempt read again because an earlier attempt of the task failed.
    reread: u64,
}

/// What every map task of a batch shares: the operators, the batch's watermark and times.
#[derive(Clone, Copy)]
struct MapTask<'a> {
    chain: &'a StatelessChain,
    /// The state store partitions (their key and window definition route and pre-aggregate).
    state: &'a [WindowedAggregation],
    /// The exchange of a join, deduplication or top-N (none: an aggregation's, or stateless).
    exchange: Option<&'a ExchangeKey>,
    /// The watermark the batch runs with (partial aggregation drops rows it has closed).
    watermark: EventTime,
    /// Shuffle partitions (0 for a stateless query).
    shuffle: usize,
    /// The modelled cost of one record.
    record_cost: Nanos,
    /// When the batch started: every record's ingest time.
    batch_start: Nanos,
    /// The batch's trigger instant: every record's handoff time.
    nominal: Nanos,
    /// Emptied selection buffers of earlier batches, taken by a stateless task.
    buffers: &'a SelectionBuffers,
}

impl MapTask<'_> {
    /// One map task: the stateless chain over one partition's slice (`columns`: its scanned
    /// fields, if the source log holds them); for a stateful pipeline the rows are routed to
    /// their shuffle partition by key.
    fn run(&self, events: &[Event], columns: Option<&EventColumns<'_>>) -> MapOutput {
        let shuffle = self.shuffle;
        // Windows that can be combined are aggregated partially here (Spark's partial
        // HashAggregate before the exchange); session windows ship rows.
        let mut partial = self
            .state
            .first()
            .and_then(|op| PartialAggregator::new(op, self.watermark));
        let mut out = MapOutput {
            buckets: vec![Vec::new(); if partial.is_some() { 0 } else { shuffle }],
            ..Default::default()
        };
        let stateful = shuffle > 0;
        if !stateful {
            match (columns, ColumnarSelect::new(self.chain)) {
                (Some(columns), Some(select)) => self.select_columns(select, events, columns, &mut out),
                _ => self.select(events, &mut out),
            }
            return out;
        }
        if self.exchange.is_none() {
            if let Some(scan) = self
                .state
                .first()
                .and_then(|op| ColumnarScan::new(self.chain, op, self.watermark))
            {
                self.scan(scan, events, columns, &mut out);
                return out;
            }
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
                ingest: self.batch_start,
                handoff: self.nominal,
                recv: self.batch_start,
            };
            let Some(row) = self.chain.apply(e, lineage) else {
                continue;
            };
            match &mut partial {
                Some(p) => p.add(&row),
                None if stateful => {
                    let key = match self.exchange {
                        Some(k) => k.of(&row),
                        None => self.state[0].key_of(&row),
                    };
                    out.buckets[partition_of(key, shuffle)].push(row);
                }
                None => unreachable!("a stateless task selects its rows"),
            }
        }
        if let Some(p) = partial {
            (out.partials, out.late_rows) = p.finish(shuffle);
        }
        out.work = self.work(events.len(), &out);
        out
    }

    /// A windowed aggregation's task, a column at a time (`operators/columnar`): the same
    /// partials, late rows and statistics as the row loop of [`MapTask::run`], without a row
    /// built or a hash probed per event.
    fn scan(
        &self,
        mut scan: ColumnarScan<'_>,
        events: &[Event],
        columns: Option<&EventColumns<'_>>,
        out: &mut MapOutput,
    ) {
        match columns {
            Some(columns) => scan.scan_columns(events, columns),
            None => scan.scan(events),
        }
        let lineage = Lineage {
            arrival: 0,
            ingest: self.batch_start,
            handoff: self.nominal,
            recv: self.batch_start,
        };
        let s = scan.finish(self.shuffle, lineage);
        (out.partials, out.late_rows) = (s.partials, s.late_rows);
        (out.min_et, out.max_et, out.sum_et, out.count) = (s.min_et, s.max_et, s.sum_et, s.count);
        out.work = self.work(events.len(), out);
    }

    /// A stateless task: which of its events reach the sink, and the event-time statistics —
    /// 8 bytes per selected event rather than a 104-byte row (the rows are materialized once,
    /// where the sink delivers them; writing them here and reading them back there was the
    /// map stage's largest cost in the profile).
    fn select(&self, events: &[Event], out: &mut MapOutput) {
        out.selected = self.buffers.take(events.len());
        let (mut min, mut max, mut sum) = (EventTime::MAX, EventTime::MIN, 0i128);
        for (offset, e) in events.iter().enumerate() {
            min = min.min(e.event_time);
            max = max.max(e.event_time);
            sum += e.event_time as i128;
            if let Some(campaign) = self.chain.select(e) {
                out.selected.push(Selected {
                    offset: offset as u32,
                    campaign,
                });
            }
        }
        if !events.is_empty() {
            (out.min_et, out.max_et) = (Some(min), Some(max));
        }
        out.sum_et = sum;
        out.count = events.len() as u64;
        out.work = self.work(events.len(), out);
    }

    /// [`MapTask::select`] a column at a time, over the scanned fields the source log holds
    /// (`operators/columnar/selected.rs`): the same selection and statistics, reading 13 bytes
    /// per event rather than 64.
    fn select_columns(
        &self,
        mut select: ColumnarSelect<'_>,
        events: &[Event],
        columns: &EventColumns<'_>,
        out: &mut MapOutput,
    ) {
        out.selected = self.buffers.take(events.len());
        select.select(events, columns, |offset, campaign| {
            out.selected.push(Selected { offset, campaign });
        });
        let t = select.times();
        if t.count > 0 {
            (out.min_et, out.max_et) = (Some(t.min), Some(t.max));
        }
        out.sum_et = t.sum;
        out.count = t.count;
        out.work = self.work(events.len(), out);
    }

    /// What a task that read `n` events did.
    fn work(&self, n: usize, out: &MapOutput) -> Work {
        let n = n as u64;
        let routed: u64 = out.buckets.iter().map(|b| b.len() as u64).sum::<u64>()
            + out.partials.iter().map(|b| b.len() as u64).sum::<u64>();
        Work {
            events_read: n,
            events_chained: n,
            shuffle_rows: routed,
            modelled: n * self.record_cost,
            ..Default::default()
        }
    }
}

impl MicroBatchEngine {
    /// Runs the batch's map tasks on the worker pool (and, after a lost worker, the ones whose
    /// output went with it); counts their waves in `batch`. Returns one output per partition.
    pub(super) fn map_stage<R: Runtime>(
        &self,
        rt: &mut R,
        source: &SourceLog,
        batch: &mut BatchContext,
        run: &mut RunState,
    ) -> Vec<MapOutput> {
        let per_task = self.cfg.scheduling.per_task.nanos();
        let exchange = if self.stages.is_empty() {
            None
        } else {
            ExchangeKey::for_pipeline(&self.pipeline)
        };
        let task = MapTask {
            chain: &self.chain,
            // A chain's map tasks route by its first stage's key: no partial aggregation.
            state: if self.stages.is_empty() { &self.state } else { &[] },
            exchange: exchange.as_ref(),
            watermark: self.watermark,
            shuffle: self.state.len().max(self.stages.len()),
            record_cost: self.cfg.modelled_cost_per_record.nanos(),
            batch_start: batch.marks.start,
            nominal: batch.nominal,
            buffers: &self.selection_buffers,
        };
        let ranges = &batch.ranges;
        // Map task for source partition `p`; `rerun`: its output was lost and it runs again.
        let make_map = |p: usize, rerun: bool| {
            let (from, to) = ranges[p];
            let events = source.read(p, from, to);
            let columns = source.scan_columns(p, from, to);
            move |ctx: &TaskContext| {
                let mut out = task.run(&events, columns.as_ref());
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
        if self.pipeline.is_stateful() && !self.cfg.external_shuffle_service {
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
        batch.waves = waves;
        map_out
    }
}

/// One event of a stateless task's partition that reaches the sink: where it is in the task's
/// offset range, and the campaign it joined.
#[derive(Clone, Copy, Debug)]
pub(super) struct Selected {
    offset: u32,
    campaign: u32,
}

/// A stateless batch's rows, materialized as the sink delivers them: each map task's selection
/// over its partition's events, in partition order, with the lineage every row of the batch
/// shares but its arrival.
pub(super) struct StatelessRows<'a> {
    /// The map tasks' outputs.
    pub(super) map_out: &'a [MapOutput],
    /// Each task's events (its partition's offset range).
    pub(super) events: Vec<&'a [Event]>,
    /// The chain that selected them (it applies `convert` again).
    pub(super) chain: &'a StatelessChain,
    /// When the batch started: every row's ingest time.
    pub(super) batch_start: Nanos,
    /// The batch's trigger instant: every row's handoff time.
    pub(super) nominal: Nanos,
}

impl StatelessRows<'_> {
    /// How many rows.
    pub(super) fn len(&self) -> usize {
        self.map_out.iter().map(|m| m.selected.len()).sum()
    }

    /// The rows split into at most `n` parts of whole map tasks, in order.
    pub(super) fn split(&self, n: usize) -> Vec<StatelessRows<'_>> {
        let tasks = self.map_out.len();
        let per_part = tasks.div_ceil(n.max(1)).max(1);
        (0..tasks)
            .step_by(per_part)
            .map(|from| {
                let to = (from + per_part).min(tasks);
                StatelessRows {
                    map_out: &self.map_out[from..to],
                    events: self.events[from..to].to_vec(),
                    chain: self.chain,
                    batch_start: self.batch_start,
                    nominal: self.nominal,
                }
            })
            .collect()
    }

    /// Calls `f` with each row, in order.
    #[inline]
    pub(super) fn for_each(&self, mut f: impl FnMut(Row)) {
        for (m, events) in self.map_out.iter().zip(&self.events) {
            for s in &m.selected {
                let e = &events[s.offset as usize];
                let lineage = Lineage {
                    arrival: e.arrival,
                    ingest: self.batch_start,
                    handoff: self.nominal,
                    recv: self.batch_start,
                };
                f(self.chain.row(e, s.campaign, lineage));
            }
        }
    }
}

/// The emptied selection buffers of a stateless query's map tasks, kept for the next batch: a
/// batch of millions of rows would otherwise fill freshly mapped memory, a page fault per 4 KiB.
/// At most [`MAX_KEPT`] buffers are kept, so what is held is bounded by the largest batch,
/// never by the run's length.
#[derive(Debug, Default)]
pub(super) struct SelectionBuffers(std::sync::Mutex<Vec<Vec<Selected>>>);

impl SelectionBuffers {
    /// An empty buffer with room for `events` selections (at most one per event): a kept one
    /// if there is one. One that is too small grows once, with a quarter to spare, so that the
    /// next batches' partitions of about the same size fit: `Vec::reserve` would grow it to
    /// just what this task needs, and the next slightly larger partition would move it to
    /// freshly mapped memory again (measured: a map task that page-faults its buffer takes
    /// 5–6 ms instead of 2.3, and two such tasks at once fault slower still).
    fn take(&self, events: usize) -> Vec<Selected> {
        let mut buffer = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        if buffer.capacity() < events {
            buffer.reserve_exact(events + events / 4);
        }
        buffer
    }

    /// Keeps the map tasks' selection buffers, emptied, for the next batch.
    pub(super) fn keep(&self, map_out: &mut [MapOutput]) {
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in map_out {
            let mut selected = std::mem::take(&mut m.selected);
            if selected.capacity() > 0 && kept.len() < MAX_KEPT {
                selected.clear();
                kept.push(selected);
            }
        }
    }
}

/// Buffers kept at most (source partitions rarely exceed this).
const MAX_KEPT: usize = 64;

/// The event times a batch's map tasks saw, and the records they read again.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct EventTimes {
    /// The earliest event time.
    pub(super) min: Option<EventTime>,
    /// The latest event time (the next watermark is computed from it).
    pub(super) max: Option<EventTime>,
    /// The sum of the event times (for their average).
    pub(super) sum: i128,
    /// Events seen.
    pub(super) count: u64,
    /// Events read again by retried or re-run map tasks.
    pub(super) reread: u64,
}

impl EventTimes {
    /// Gathers the statistics of every map task.
    pub(super) fn of(map_out: &[MapOutput]) -> Self {
        Self {
            min: map_out.iter().filter_map(|m| m.min_et).min(),
            max: map_out.iter().filter_map(|m| m.max_et).max(),
            sum: map_out.iter().map(|m| m.sum_et).sum(),
            count: map_out.iter().map(|m| m.count).sum(),
            reread: map_out.iter().map(|m| m.reread).sum(),
        }
    }
}
