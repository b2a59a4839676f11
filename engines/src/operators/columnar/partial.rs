//! Partial aggregation a chunk at a time: the selected rows of a chunk folded into the map
//! task's table of partial aggregates, one per (key, window), as Spark's partial
//! `HashAggregate` does before the exchange ([`crate::operators::window::partial`] is the
//! same fold a row at a time).
//!
//! What the row path pays per row and this does not:
//!
//! * **window assignment** — a division per row (`floor(t / step)`). Rows of a chunk are
//!   close in event time, so the windows of the last row are kept with the range of event
//!   times they hold for (`[lo, hi)`, one `step` wide): a row in the range takes them as they
//!   are, which late windows drop included; only a row outside it assigns again;
//! * **the key's slot** — a hash of `(key, start)` per row. Each window has its own index of
//!   keys: a direct array for keys in `0..DENSE_KEYS` (a campaign, an ad, a page: a small
//!   integer domain, aggregated into an array as vectorized engines do), a hash map for the
//!   rest;
//! * **the row** — no `Row` is built: the key and value columns come from the scan, the
//!   event time and arrival from the chunk's columns (or its events in place);
//! * **the lineage** — every row of a batch shares its ingest, hand-off and receive instants,
//!   so a partial keeps only the latest arrival, and the lineage is made once in
//!   [`ColumnarPartials::finish`].
//!
//! Invariants: the partials equal the row path's — same keys and windows, aggregates, latest
//! lineage and late rows (a row is late when every window it falls in is late under the
//! batch's watermark) — and [`ColumnarPartials::finish`] orders them the same way
//! ([`by_shuffle_partition`]); the accumulators are columns, one entry per partial.

use crate::event::Event;
use crate::operators::aggregate::{add_to_parts, AggState};
use crate::operators::columnar::columns::EventColumns;
use crate::operators::fxhash::{FxHashMap, FxHashSet};
use crate::operators::window::partial::{by_shuffle_partition, Partial};
use crate::operators::window::WindowedAggregation;
use crate::operators::Lineage;
use crate::pipeline::AggFunc;
use crate::time::{EventTime, Nanos};

/// Keys in `0..DENSE_KEYS` are found by direct index (4 bytes per key up to the largest seen,
/// per window): 256 KiB at most per window.
pub const DENSE_KEYS: usize = 1 << 16;

/// One window's index of keys to their partial's slot.
#[derive(Debug)]
struct WindowKeys {
    start: EventTime,
    end: EventTime,
    /// `dense[key]` is the slot + 1 of `key`'s partial (0: none yet).
    dense: Vec<u32>,
    /// Keys outside `0..DENSE_KEYS`.
    sparse: FxHashMap<i64, u32>,
}

/// The partials as columns: entry `s` is one (key, window)'s aggregate.
#[derive(Debug, Default)]
struct Accumulators {
    keys: Vec<i64>,
    starts: Vec<EventTime>,
    ends: Vec<EventTime>,
    counts: Vec<u64>,
    running: Vec<i64>,
    /// Only for `distinct_count` (empty otherwise).
    distinct: Vec<Option<Box<FxHashSet<i64>>>>,
    /// The latest arrival folded in (the lineage's only varying instant).
    arrivals: Vec<Nanos>,
}

impl Accumulators {
    /// A new, empty partial of `key` in `[start, end)`: its slot.
    fn push(&mut self, func: AggFunc, key: i64, start: EventTime, end: EventTime) -> u32 {
        let slot = self.keys.len() as u32;
        self.keys.push(key);
        self.starts.push(start);
        self.ends.push(end);
        self.counts.push(0);
        self.running.push(0);
        if func == AggFunc::DistinctCount {
            self.distinct.push(None);
        }
        self.arrivals.push(0);
        slot
    }

    /// Folds a row's `value` that arrived at `arrival` into slot `s`.
    #[inline(always)]
    fn add(&mut self, s: usize, func: AggFunc, value: i64, arrival: Nanos) {
        match func {
            AggFunc::Count => self.counts[s] += 1,
            _ => add_to_parts(
                func,
                &mut self.counts[s],
                &mut self.running[s],
                self.distinct.get_mut(s),
                value,
            ),
        }
        self.arrivals[s] = self.arrivals[s].max(arrival);
    }
}

/// A map task's partial aggregates, folded a chunk at a time.
#[derive(Debug)]
pub struct ColumnarPartials<'a> {
    op: &'a WindowedAggregation,
    func: AggFunc,
    watermark: EventTime,
    /// Rows with an event time in `[lo, hi)` fall in the windows `current` (ids into
    /// `windows`, the late ones left out).
    lo: EventTime,
    hi: EventTime,
    current: Vec<u32>,
    windows: Vec<WindowKeys>,
    window_ids: FxHashMap<EventTime, u32>,
    acc: Accumulators,
    late_rows: u64,
}

impl<'a> ColumnarPartials<'a> {
    /// Partials for the windows of `op` in a batch run with `watermark`; `None` for session
    /// windows, which cannot be combined before the state store.
    pub fn new(op: &'a WindowedAggregation, watermark: EventTime) -> Option<Self> {
        op.combines_partially().then(|| Self {
            op,
            func: op.function(),
            watermark,
            lo: EventTime::MAX,
            hi: EventTime::MIN,
            current: Vec::new(),
            windows: Vec::new(),
            window_ids: FxHashMap::default(),
            acc: Accumulators::default(),
            late_rows: 0,
        })
    }

    /// Folds the selected rows of a chunk: `rows` their positions in the chunk's `cols`, `keys`
    /// and `values` (`None` when the function reads none) their columns, entry for entry.
    #[inline]
    pub fn add_chunk(&mut self, cols: &EventColumns<'_>, rows: &[u32], keys: &[i64], values: Option<&[i64]>) {
        let (times, arrivals) = (cols.event_times, cols.arrivals);
        self.add_by(|i| (times[i], arrivals[i]), rows, keys, values);
    }

    /// [`ColumnarPartials::add_chunk`] with the rows' event times and arrivals read from the
    /// chunk's events in place (a log that holds no columns).
    #[inline]
    pub fn add_events(&mut self, events: &[Event], rows: &[u32], keys: &[i64], values: Option<&[i64]>) {
        self.add_by(|i| (events[i].event_time, events[i].arrival), rows, keys, values);
    }

    /// The fold, with `at(i)` the event time and arrival of row `i` of the chunk.
    #[inline(always)]
    fn add_by(&mut self, at: impl Fn(usize) -> (EventTime, Nanos), rows: &[u32], keys: &[i64], values: Option<&[i64]>) {
        let func = self.func;
        let n = rows.len().min(keys.len());
        let mut k = 0;
        while k < n {
            // The common case in a loop of its own: one window (tumbling, or one not late),
            // the key already in its direct index. It stops at the first row that is not.
            if let [w] = self.current[..] {
                let (lo, hi) = (self.lo, self.hi);
                let dense = &self.windows[w as usize].dense;
                while k < n {
                    let i = rows[k] as usize;
                    let ((t, arrival), key) = (at(i), keys[k]);
                    let s = if (key as u64) < dense.len() as u64 {
                        dense[key as usize]
                    } else {
                        0
                    };
                    if t < lo || t >= hi || s == 0 {
                        break;
                    }
                    self.acc.add(s as usize - 1, func, values.map_or(0, |v| v[k]), arrival);
                    k += 1;
                }
                if k == n {
                    break;
                }
            }
            // Any row: assign its windows if it is outside the current ones, find or make its
            // slot in each.
            let i = rows[k] as usize;
            let (t, arrival) = at(i);
            if t < self.lo || t >= self.hi {
                self.assign(t);
            }
            if self.current.is_empty() {
                self.late_rows += 1;
            } else {
                let value = values.map_or(0, |v| v[k]);
                for w in 0..self.current.len() {
                    let s = self.slot(self.current[w] as usize, keys[k]);
                    self.acc.add(s, func, value, arrival);
                }
            }
            k += 1;
        }
    }

    /// The windows of a row at event time `t`, and the range of times that share them.
    #[cold]
    fn assign(&mut self, t: EventTime) {
        let (first, last, step, size) = self.op.window_range(t);
        self.lo = last;
        self.hi = last.saturating_add(step);
        self.current.clear();
        let mut start = first;
        while start <= last {
            let end = start + size;
            if !self.op.late_under(end, self.watermark) {
                let next = self.windows.len() as u32;
                let id = *self.window_ids.entry(start).or_insert(next);
                if id == next {
                    self.windows.push(WindowKeys {
                        start,
                        end,
                        dense: Vec::new(),
                        sparse: FxHashMap::default(),
                    });
                }
                self.current.push(id);
            }
            start += step;
        }
    }

    /// The slot of `key`'s partial in window `w`, made if it is new.
    #[inline(always)]
    fn slot(&mut self, w: usize, key: i64) -> usize {
        let window = &mut self.windows[w];
        if (key as u64) < DENSE_KEYS as u64 {
            let k = key as usize;
            if let Some(&s) = window.dense.get(k) {
                if s != 0 {
                    return s as usize - 1;
                }
            } else {
                window.dense.resize(k + 1, 0);
            }
            let s = self.acc.push(self.func, key, window.start, window.end);
            window.dense[k] = s + 1;
            s as usize
        } else {
            let (acc, func, start, end) = (&mut self.acc, self.func, window.start, window.end);
            *window
                .sparse
                .entry(key)
                .or_insert_with(|| acc.push(func, key, start, end)) as usize
        }
    }

    /// The partials by shuffle partition (of `shuffle`), each list ordered by (key, start), each
    /// with `lineage` at its latest arrival; and how many rows were dropped as late.
    pub fn finish(self, shuffle: usize, lineage: Lineage) -> (Vec<Vec<Partial>>, u64) {
        let acc = self.acc;
        let mut distinct = acc.distinct.into_iter();
        let partials = (0..acc.keys.len())
            .map(|s| Partial {
                key: acc.keys[s],
                start: acc.starts[s],
                end: acc.ends[s],
                agg: AggState {
                    count: acc.counts[s],
                    value: acc.running[s],
                    distinct: distinct.next().flatten(),
                },
                last: Lineage {
                    arrival: acc.arrivals[s],
                    ..lineage
                },
            })
            .collect();
        (by_shuffle_partition(partials, shuffle), self.late_rows)
    }
}
