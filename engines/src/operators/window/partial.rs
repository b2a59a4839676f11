//! Map-side partial aggregation, as Spark plans a stateful windowed aggregation:
//! `HashAggregate(partial)` → `Exchange` → `HashAggregate(final)` → `StateStoreSave`.
//!
//! A micro-batch map task folds its rows into one [`Partial`] per (key, window) and ships those
//! through the exchange instead of the rows; the reduce task merges them into the state store
//! ([`WindowedAggregation::merge_partial`]). The shuffle then carries a handful of rows per key
//! and window instead of every record, which is why Spark's aggregations do it (the
//! per-record engine has no batch to combine over and ships records, as Flink does).
//!
//! The result is the same as adding the rows one by one: aggregates merge exactly, the origin
//! of a window's result is the lineage of its latest-arriving record either way, and rows of
//! windows the batch's watermark has already closed are counted as late here (every window
//! they fall in is late) instead of at the state store. Session windows merge by gaps, which a
//! partial cannot know; they keep shipping rows.

use crate::operators::aggregate::AggState;
use crate::operators::fxhash::{partition_of, FxHashMap};
use crate::operators::window::WindowedAggregation;
use crate::operators::{Lineage, Row};
use crate::time::EventTime;

/// One map task's aggregate of one key in one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    /// The grouping key's value.
    pub key: i64,
    /// Window start (inclusive), event time ms.
    pub start: EventTime,
    /// Window end (exclusive), event time ms.
    pub end: EventTime,
    /// The aggregate of the task's rows in the window.
    pub agg: AggState,
    /// The lineage of the latest-arriving of those rows (the result's latency origin).
    pub last: Lineage,
}

/// Folds one map task's rows into partials, dropping rows whose windows are all late.
#[derive(Debug)]
pub struct PartialAggregator<'a> {
    op: &'a WindowedAggregation,
    watermark: EventTime,
    index: FxHashMap<(i64, EventTime), usize>,
    partials: Vec<Partial>,
    late_rows: u64,
}

impl<'a> PartialAggregator<'a> {
    /// Partials for the windows of `op` (the reduce side's operator, read for its window
    /// assignment and lateness rule) in a batch run with `watermark`; `None` for session
    /// windows, which cannot be combined before the state store.
    pub fn new(op: &'a WindowedAggregation, watermark: EventTime) -> Option<Self> {
        op.combines_partially().then(|| Self {
            op,
            watermark,
            index: FxHashMap::default(),
            partials: Vec::new(),
            late_rows: 0,
        })
    }

    /// Folds `row` into the partial of each of its windows that is not late.
    #[inline]
    pub fn add(&mut self, row: &Row) {
        let op = self.op;
        let (key, value, func) = (op.key_of(row), op.value_of(row), op.function());
        let (first, last, step, size) = op.window_range(row.event.event_time);
        let mut accepted = false;
        let mut start = first;
        while start <= last {
            let end = start + size;
            start += step;
            if op.late_under(end, self.watermark) {
                continue;
            }
            accepted = true;
            let partials = &mut self.partials;
            let i = *self.index.entry((key, end - size)).or_insert_with(|| {
                partials.push(Partial {
                    key,
                    start: end - size,
                    end,
                    agg: AggState::default(),
                    last: Lineage::default(),
                });
                partials.len() - 1
            });
            let p = &mut partials[i];
            p.agg.add(func, value);
            p.last.keep_latest(row.lineage);
        }
        if !accepted {
            self.late_rows += 1;
        }
    }

    /// The partials by shuffle partition (of `shuffle`), each list ordered by (key, start), and
    /// how many rows were dropped as late.
    pub fn finish(self, shuffle: usize) -> (Vec<Vec<Partial>>, u64) {
        (by_shuffle_partition(self.partials, shuffle), self.late_rows)
    }
}

/// A map task's partials by shuffle partition (of `shuffle`), each list ordered by (key,
/// start): the one order both the row-at-a-time and the columnar aggregators hand on, so the
/// exchange carries the same partials in the same order whichever made them.
pub fn by_shuffle_partition(mut partials: Vec<Partial>, shuffle: usize) -> Vec<Vec<Partial>> {
    partials.sort_unstable_by_key(|p| (p.key, p.start));
    let mut buckets = vec![Vec::new(); shuffle];
    for p in partials {
        buckets[partition_of(p.key, shuffle)].push(p);
    }
    buckets
}
