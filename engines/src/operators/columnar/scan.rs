//! A micro-batch map task's events, chunk by chunk, through the columnar passes: the
//! event-time statistics, the selection vector (kinds, then each predicate), the join probe,
//! the key and value columns, the partial aggregation.
//!
//! Each pass runs over the whole chunk before the next begins; the chunk's columns (the
//! selection vector, campaigns, keys, values) are fixed arrays owned by the scan and reused
//! for every chunk, so a map task allocates them once.
//!
//! Invariants: [`ColumnarScan::finish`] hands back exactly what the row path
//! (`StatelessChain::apply` then `PartialAggregator::add` per event) produces for the same
//! events, watermark and lineage — checked by the tests below on pipelines that exercise every
//! pass (predicates, misses of the join, sliding windows, late windows, large and negative
//! keys, every aggregate function).

use crate::event::Event;
use crate::operators::columnar::chain::ChunkChain;
use crate::operators::columnar::columns::EventColumns;
use crate::operators::columnar::partial::ColumnarPartials;
use crate::operators::columnar::CHUNK;
use crate::operators::stateless::{ChainColumns, StatelessChain};
use crate::operators::window::partial::Partial;
use crate::operators::window::WindowedAggregation;
use crate::operators::Lineage;
use crate::pipeline::{field_value, Field};
use crate::time::EventTime;

/// One map task's scan of its events.
#[derive(Debug)]
pub struct ColumnarScan<'a> {
    passes: Passes<'a>,
}

/// The passes over a chunk, and what they fold into.
#[derive(Debug)]
struct Passes<'a> {
    chain: ChainColumns<'a>,
    key_field: Field,
    value_field: Option<Field>,
    partials: ColumnarPartials<'a>,
    selected: ChunkChain,
    keys: Box<[i64; CHUNK]>,
    values: Box<[i64; CHUNK]>,
    times: EventTimes,
}

/// The event-time statistics of every event scanned (selected or not).
#[derive(Clone, Copy, Debug)]
pub struct EventTimes {
    /// The earliest event time (`EventTime::MAX` before any).
    pub min: EventTime,
    /// The latest event time (`EventTime::MIN` before any).
    pub max: EventTime,
    /// The sum of the event times.
    pub sum: i128,
    /// Events folded in.
    pub count: u64,
}

impl Default for EventTimes {
    fn default() -> Self {
        Self {
            min: EventTime::MAX,
            max: EventTime::MIN,
            sum: 0,
            count: 0,
        }
    }
}

/// What a scan produced.
#[derive(Debug)]
pub struct ScanOutput {
    /// The partials by shuffle partition, each list ordered by (key, start).
    pub partials: Vec<Vec<Partial>>,
    /// Rows dropped because every window they fall in is late.
    pub late_rows: u64,
    /// The earliest event time scanned (`None`: no event).
    pub min_et: Option<EventTime>,
    /// The latest event time scanned.
    pub max_et: Option<EventTime>,
    /// The sum of the event times scanned.
    pub sum_et: i128,
    /// Events scanned.
    pub count: u64,
}

impl<'a> ColumnarScan<'a> {
    /// A scan for `chain` into partials of `op` under the batch's `watermark`; `None` when the
    /// chain or the windows do not run a column at a time
    /// ([`StatelessChain::columns`], session windows).
    pub fn new(chain: &'a StatelessChain, op: &'a WindowedAggregation, watermark: EventTime) -> Option<Self> {
        Some(Self {
            passes: Passes {
                chain: chain.columns()?,
                key_field: op.key_field(),
                value_field: op.value_field(),
                partials: ColumnarPartials::new(op, watermark)?,
                selected: ChunkChain::default(),
                keys: Box::new([0; CHUNK]),
                values: Box::new([0; CHUNK]),
                times: EventTimes::default(),
            },
        })
    }

    /// Scans `events` (the next events of the task's partition, in offset order), reading
    /// the scanned fields from the events in place (a log that holds no columns).
    pub fn scan(&mut self, events: &[Event]) {
        let mut chunks = events.chunks(CHUNK).peekable();
        while let Some(chunk) = chunks.next() {
            // The next chunk is read early, so its cache lines are on their way while this
            // chunk's passes run.
            let ahead = chunks.peek().copied().unwrap_or_default();
            self.passes.chunk_events(chunk, ahead);
        }
    }

    /// Scans `events` whose scanned fields are the columns `cols` (held by the source log,
    /// entry for entry): the events themselves are read only by a pass that needs another
    /// field.
    pub fn scan_columns(&mut self, events: &[Event], cols: &EventColumns<'_>) {
        assert_eq!(events.len(), cols.len(), "columns stand beside their events");
        let mut from = 0;
        while from < events.len() {
            let to = (from + CHUNK).min(events.len());
            self.passes.chunk(&events[from..to], &cols.range(from, to));
            from = to;
        }
    }

    /// The scan's partials by shuffle partition (of `shuffle`), each with `lineage` at its
    /// latest arrival, its late rows and event-time statistics.
    pub fn finish(self, shuffle: usize, lineage: Lineage) -> ScanOutput {
        let passes = self.passes;
        let (partials, late_rows) = passes.partials.finish(shuffle, lineage);
        let t = passes.times;
        std::hint::black_box(passes.selected.touched());
        ScanOutput {
            partials,
            late_rows,
            min_et: (t.count > 0).then_some(t.min),
            max_et: (t.count > 0).then_some(t.max),
            sum_et: t.sum,
            count: t.count,
        }
    }
}

impl Passes<'_> {
    /// The passes over one chunk: `events` (at most [`CHUNK`]) and their scanned fields `cols`.
    #[inline]
    fn chunk(&mut self, events: &[Event], cols: &EventColumns<'_>) {
        self.times.add(cols.event_times);
        self.selected.select_columns(&self.chain, events, cols);
        let n = self.key_values(events);
        let values = self.value_field.map(|_| &self.values[..n]);
        let rows = self.selected.rows();
        self.partials.add_chunk(cols, rows, &self.keys[..n], values);
    }

    /// The passes over one chunk of `events` (at most [`CHUNK`]) read in place; `ahead` is the
    /// next chunk, read early so its cache lines are on their way.
    #[inline]
    fn chunk_events(&mut self, events: &[Event], ahead: &[Event]) {
        self.times.add_events(events);
        self.selected.select(&self.chain, events, ahead);
        let n = self.key_values(events);
        let values = self.value_field.map(|_| &self.values[..n]);
        let rows = self.selected.rows();
        self.partials.add_events(events, rows, &self.keys[..n], values);
    }

    /// Writes the key (and value) column of the selected rows: how many.
    #[inline]
    fn key_values(&mut self, events: &[Event]) -> usize {
        let (rows, campaigns, n) = (self.selected.rows(), self.selected.campaigns(), self.selected.len());
        column(events, rows, campaigns, self.key_field, &mut self.keys[..n]);
        if let Some(f) = self.value_field {
            column(events, rows, campaigns, f, &mut self.values[..n]);
        }
        n
    }
}

impl EventTimes {
    /// Folds in the event times of `events`, read in place.
    #[inline]
    pub fn add_events(&mut self, events: &[Event]) {
        let (mut min, mut max, mut sum) = (self.min, self.max, 0i128);
        for e in events {
            min = min.min(e.event_time);
            max = max.max(e.event_time);
            sum += e.event_time as i128;
        }
        (self.min, self.max) = (min, max);
        self.sum += sum;
        self.count += events.len() as u64;
    }

    /// Folds in the event times of a chunk (one pass over the column). The sum is added in 64
    /// bits when that is exact (at most [`CHUNK`] times, each of magnitude below 2^52: the sum
    /// stays below 2^62), else in 128.
    #[inline]
    pub fn add(&mut self, times: &[EventTime]) {
        let (mut min, mut max) = (EventTime::MAX, EventTime::MIN);
        for &t in times {
            min = min.min(t);
            max = max.max(t);
        }
        const BOUND: EventTime = 1 << 52;
        let sum = if times.len() <= CHUNK && min > -BOUND && max < BOUND {
            times.iter().sum::<i64>() as i128
        } else {
            times.iter().map(|&t| t as i128).sum()
        };
        (self.min, self.max) = (self.min.min(min), self.max.max(max));
        self.sum += sum;
        self.count += times.len() as u64;
    }
}

/// Writes field `f` of each selected row (`rows` into `events`, with its campaign) to `out`.
#[inline]
fn column(events: &[Event], rows: &[u32], campaigns: &[u32], f: Field, out: &mut [i64]) {
    match f {
        Field::Campaign => {
            for (o, &c) in out.iter_mut().zip(campaigns) {
                *o = c as i64;
            }
        }
        _ => {
            for ((o, &i), &c) in out.iter_mut().zip(rows).zip(campaigns) {
                *o = field_value(&events[i as usize], c, f);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Column at a time against row at a time, over a few thousand seeded events (fast).
    use super::*;
    use crate::dimension::CampaignTable;
    use crate::event::EventKind;
    use crate::operators::columnar::HeldColumns;
    use crate::operators::window::partial::PartialAggregator;
    use crate::operators::window::{EmitPolicy, TimeSemantics};
    use crate::pipeline::{AggFunc, Aggregation, PipelineSpec, Predicate, WindowSpec};
    use crate::time::Span;

    /// `n` seeded clickstream events of every kind, mostly increasing in event time.
    pub(crate) fn events(n: usize) -> Vec<Event> {
        // A small LCG: deterministic, no dependency.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        (0..n)
            .map(|i| Event {
                seq: i as u64,
                // Mostly increasing with disorder, some far behind.
                event_time: 1_000_000 + (i as i64) * 7 - (next() % 900) as i64,
                arrival: 5_000 + i as u64 * 3 + next() % 2,
                partition: 0,
                user: (next() % 200_000) as u32,
                session: next(),
                page: (next() % 50) as u32,
                ad: (next() % 1_100) as u32,
                kind: EventKind::CLICKSTREAM[(next() % 4) as usize],
                dwell_ms: (next() % 5_000) as u32,
                price_cents: (next() % 10_000) as u32,
            })
            .collect()
    }

    fn row_path(
        chain: &StatelessChain,
        op: &WindowedAggregation,
        watermark: EventTime,
        events: &[Event],
        lineage: Lineage,
    ) -> (Vec<Vec<Partial>>, u64) {
        let mut p = PartialAggregator::new(op, watermark).unwrap();
        for e in events {
            if let Some(row) = chain.apply(
                e,
                Lineage {
                    arrival: e.arrival,
                    ..lineage
                },
            ) {
                p.add(&row);
            }
        }
        p.finish(3)
    }

    fn check(pipeline: PipelineSpec, watermark: EventTime) {
        let table = CampaignTable::new((0..1_000).map(|ad| ad / 10).collect());
        let chain = StatelessChain::new(&pipeline, &table);
        let agg = pipeline.aggregate.unwrap();
        let op = WindowedAggregation::new(agg, TimeSemantics::SPARK, EmitPolicy::OnWatermark);
        let events = events(5 * CHUNK + 17);
        let lineage = Lineage {
            arrival: 0,
            ingest: 11,
            handoff: 12,
            recv: 11,
        };
        let (partials, late) = row_path(&chain, &op, watermark, &events, lineage);
        // Read from the events in place, then from columns held beside them.
        let mut scan = ColumnarScan::new(&chain, &op, watermark).unwrap();
        // Two calls, as a task over two slices would make.
        scan.scan(&events[..1_500]);
        scan.scan(&events[1_500..]);
        let in_place = scan.finish(3, lineage);
        let held = HeldColumns::of(&events);
        let arrivals: Vec<_> = events.iter().map(|e| e.arrival).collect();
        let mut scan = ColumnarScan::new(&chain, &op, watermark).unwrap();
        scan.scan_columns(&events[..1_500], &held.range(0, 1_500, &arrivals));
        scan.scan_columns(&events[1_500..], &held.range(1_500, events.len(), &arrivals));
        let from_columns = scan.finish(3, lineage);
        for out in [in_place, from_columns] {
            check_output(&out, &partials, late, &events);
        }
    }

    fn check_output(out: &ScanOutput, partials: &[Vec<Partial>], late: u64, events: &[Event]) {
        assert_eq!(out.partials, partials);
        assert_eq!(out.late_rows, late);
        assert!(partials.iter().map(Vec::len).sum::<usize>() > 0);
        assert_eq!(out.count, events.len() as u64);
        assert_eq!(out.min_et, events.iter().map(|e| e.event_time).min());
        assert_eq!(out.max_et, events.iter().map(|e| e.event_time).max());
        assert_eq!(out.sum_et, events.iter().map(|e| e.event_time as i128).sum::<i128>());
    }

    fn pipeline(key_by: Field, window: WindowSpec, function: AggFunc, field: Option<Field>) -> PipelineSpec {
        PipelineSpec {
            filter_kinds: Some(vec![EventKind::View, EventKind::Click]),
            lookup_join: true,
            aggregate: Some(Aggregation {
                key_by,
                window,
                function,
                field,
            }),
            ..Default::default()
        }
    }

    const TUMBLING: WindowSpec = WindowSpec::Tumbling {
        size: Span(2_000_000_000),
    };

    #[test]
    fn tumbling_count_per_campaign_equals_the_row_path() {
        check(
            pipeline(Field::Campaign, TUMBLING, AggFunc::Count, None),
            EventTime::MIN,
        );
    }

    #[test]
    fn late_windows_are_dropped_as_the_row_path_drops_them() {
        // The watermark closes the first windows: some rows are late, some not.
        check(pipeline(Field::Campaign, TUMBLING, AggFunc::Count, None), 1_012_000);
    }

    #[test]
    fn sliding_windows_large_keys_and_every_function_equal_the_row_path() {
        let sliding = WindowSpec::Sliding {
            size: Span(3_000_000_000),
            slide: Span(1_000_000_000),
        };
        for (key, function, field) in [
            (Field::User, AggFunc::Sum, Some(Field::PriceCents)),
            (Field::Ad, AggFunc::Min, Some(Field::DwellMs)),
            (Field::Page, AggFunc::Max, Some(Field::DwellMs)),
            (Field::Session, AggFunc::Avg, Some(Field::PriceCents)),
            (Field::Campaign, AggFunc::DistinctCount, Some(Field::User)),
        ] {
            check(pipeline(key, sliding, function, field), 1_010_000);
            check(pipeline(key, TUMBLING, function, field), EventTime::MIN);
        }
    }

    #[test]
    fn event_time_sums_are_exact_past_64_bits() {
        let mut t = EventTimes::default();
        let big = [EventTime::MAX, EventTime::MAX - 1, 3];
        t.add(&big);
        t.add(&[-5, 7]);
        let want: i128 = big.iter().chain(&[-5, 7]).map(|&x| x as i128).sum();
        assert_eq!((t.sum, t.min, t.max, t.count), (want, -5, EventTime::MAX, 5));
    }

    /// The predicate `page >= n`.
    pub(crate) fn page_at_least(n: i64) -> Predicate {
        Predicate {
            field: Field::Page,
            equals: None,
            not_equals: None,
            one_of: None,
            at_least: Some(n),
            below: None,
            modulo: None,
        }
    }

    #[test]
    fn predicates_and_no_join_equal_the_row_path() {
        let mut p = pipeline(Field::Ad, TUMBLING, AggFunc::Count, None);
        p.lookup_join = false;
        p.filter_kinds = None;
        p.predicates = vec![page_at_least(10)];
        check(p, EventTime::MIN);
    }
}
