//! Top-N per window: in each window, the records with the `n` largest values of a field,
//! ties at the boundary all kept (SQL's `RANK() <= n`; Nexmark q7's bids at the highest
//! price), emitted when the window closes — Flink's window Top-N; Spark runs `n = 1` as a
//! `max` per window joined back to the records, which emits at the same point.
//!
//! The state per window holds only candidates: a record leaves as soon as `n` records rank
//! strictly above it, so a window keeps about `n` records (more with ties), not all of them.
//! A record whose windows have all closed on arrival is dropped as late and counted.
//!
//! State: per open window, its candidates, on the heap (a `BTreeMap` in window order) or, under
//! `state_backend = "lsm"` / `"lsm_changelog"`, in the LSM store (`keyed_lists.rs`), one entry
//! per window keyed by its start (the window size is fixed, so the start names the window) and
//! holding its latest lineage and candidates; the set of open windows, which the watermark
//! walks in order, stays on the heap as the store's timers.
//!
//! Invariant: a window's emitted records are exactly those with fewer than `n` records of the
//! window ranking strictly above them.

use std::collections::{BTreeMap, BTreeSet};

use crate::operators::graph::closed;
use crate::operators::graph::codec::{Reader, StageTag, Writer};
use crate::operators::graph::keyed_lists::{LsmLists, StateValue};
use crate::operators::window::StateBackendKind;
use crate::operators::{Lineage, Output, RecordResult, Row, Shape};
use crate::pipeline::{field_value, TopNSpec, WindowSpec};
use crate::time::{EventTime, Nanos};

/// A window's latest-arriving lineage and its candidate records with their ranked values.
type Candidates = (Lineage, Vec<(i64, Row)>);

impl StateValue for Candidates {
    fn write(&self, w: &mut Writer<'_>) {
        let (latest, list) = self;
        w.lineage(latest);
        w.len(list.len());
        for (v, row) in list {
            w.i64(*v);
            w.row(row);
        }
    }

    fn read_into(&mut self, r: &mut Reader<'_>) -> Option<()> {
        self.0 = r.lineage()?;
        self.1.clear();
        for _ in 0..r.len()? {
            self.1.push((r.i64()?, r.row()?));
        }
        Some(())
    }

    fn is_empty(&self) -> bool {
        self.1.is_empty()
    }

    fn clear(&mut self) {
        self.0 = Lineage::default();
        self.1.clear();
    }
}

/// Where the windows' candidates live.
#[derive(Debug)]
enum Windows {
    /// On the heap, in window order.
    Heap(BTreeMap<(EventTime, EventTime), Candidates>),
    /// In the LSM store, by window start.
    Lsm {
        store: Box<LsmLists<Candidates>>,
        /// The windows in the store, in window order (their timers).
        open: BTreeSet<(EventTime, EventTime)>,
        /// Candidates in the store.
        rows: usize,
    },
}

/// A top-N-per-window operator instance.
#[derive(Debug)]
pub struct WindowTopN {
    spec: TopNSpec,
    fire_lag: i64,
    /// Per window `(start, end)`: the lineage of its latest-arriving record (the results'
    /// latency origin, as for an aggregate) and its candidates.
    windows: Windows,
    watermark: EventTime,
    /// Records dropped as late.
    pub late_dropped: u64,
}

impl WindowTopN {
    /// An empty operator for `spec`, with the engine's watermark `fire_lag`.
    pub fn new(spec: TopNSpec, fire_lag: i64) -> Self {
        Self {
            spec,
            fire_lag,
            windows: Windows::Heap(BTreeMap::new()),
            watermark: EventTime::MIN,
            late_dropped: 0,
        }
    }

    /// The same operator with its windows on `kind`; fails when an LSM store cannot be
    /// opened.
    pub fn with_backend(mut self, kind: StateBackendKind) -> crate::state::Result<Self> {
        if let Some(store) = LsmLists::for_backend(kind)? {
            let Windows::Heap(map) = std::mem::replace(&mut self.windows, Windows::Heap(BTreeMap::new())) else {
                unreachable!("a new operator's windows are on the heap")
            };
            self.windows = Windows::Lsm {
                store: Box::new(store),
                open: BTreeSet::new(),
                rows: 0,
            };
            self.load(map.into_iter().collect());
        }
        Ok(self)
    }

    /// Candidate records in state.
    pub fn state_rows(&self) -> usize {
        match &self.windows {
            Windows::Heap(map) => map.values().map(|(_, c)| c.len()).sum(),
            Windows::Lsm { rows, .. } => *rows,
        }
    }

    /// Takes one row into each of its open windows.
    pub fn on_row(&mut self, row: Row) {
        let t = row.event.event_time;
        let v = field_value(&row.event, row.campaign, self.spec.by);
        let (size, slide) = match self.spec.window {
            WindowSpec::Tumbling { size } => (size.whole_ms(), size.whole_ms()),
            WindowSpec::Sliding { size, slide } => (size.whole_ms(), slide.whole_ms()),
            WindowSpec::Session { .. } => unreachable!("validated: tumbling or sliding"),
        };
        let n = self.spec.n as usize;
        let mut any = false;
        let mut k = (t - size).div_euclid(slide) + 1;
        while k * slide <= t {
            let (start, end) = (k * slide, k * slide + size);
            k += 1;
            if closed(self.watermark, end - 1, self.fire_lag) {
                continue;
            }
            any = true;
            match &mut self.windows {
                Windows::Heap(map) => admit(map.entry((start, end)).or_default(), v, row, n),
                Windows::Lsm { store, open, rows } => {
                    open.insert((start, end));
                    store.update(start, true, |c| {
                        *rows -= c.1.len();
                        admit(c, v, row, n);
                        *rows += c.1.len();
                        ((), true)
                    });
                }
            }
        }
        if !any {
            self.late_dropped += 1;
        }
    }

    /// The watermark advanced at `now`: closed windows emit their top records.
    pub fn on_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut Vec<Output>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let lag = self.fire_lag;
        loop {
            let ((start, end), (origin, list)) = match &mut self.windows {
                Windows::Heap(map) => match map.first_key_value() {
                    Some((&(_, end), _)) if closed(watermark, end - 1, lag) => map.pop_first().expect("non-empty"),
                    _ => break,
                },
                Windows::Lsm { store, open, rows } => match open.first() {
                    Some(&(start, end)) if closed(watermark, end - 1, lag) => {
                        open.pop_first();
                        let c = store
                            .update(start, false, |c| (std::mem::take(c), true))
                            .expect("an open window is in the store");
                        *rows -= c.1.len();
                        ((start, end), c)
                    }
                    _ => break,
                },
            };
            out.extend(list.into_iter().map(|(_, row)| {
                Output::Record(RecordResult {
                    shape: Shape::Ranked,
                    left: row.event,
                    right: row.event,
                    start,
                    end,
                    origin,
                    fired_at: now,
                    handoff: 0,
                    recv: 0,
                })
            }));
        }
        if let Windows::Lsm { store, .. } = &mut self.windows {
            store.compact();
        }
    }

    /// Appends the state (see `codec.rs`): the watermark, then per open window (in window
    /// order) its latest lineage and its candidates in rank order.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.header(StageTag::TopN, self.watermark);
        match &self.windows {
            Windows::Heap(map) => {
                w.len(map.len());
                for ((start, end), candidates) in map {
                    w.i64(*start);
                    w.i64(*end);
                    candidates.write(&mut w);
                }
            }
            Windows::Lsm { store, open, .. } => {
                let all = store.sorted();
                assert_eq!(
                    all.len(),
                    open.len(),
                    "top-N state backend (LSM): one entry per open window"
                );
                w.len(all.len());
                for ((start, end), (_, candidates)) in open.iter().zip(&all) {
                    w.i64(*start);
                    w.i64(*end);
                    candidates.write(&mut w);
                }
            }
        }
    }

    /// Replaces the windows with `windows` (in window order).
    fn load(&mut self, windows: Vec<((EventTime, EventTime), Candidates)>) {
        match &mut self.windows {
            Windows::Heap(map) => *map = windows.into_iter().collect(),
            Windows::Lsm { store, open, rows } => {
                *open = windows.iter().map(|(w, _)| *w).collect();
                *rows = windows.iter().map(|(_, c)| c.1.len()).sum();
                store.replace(windows.into_iter().map(|((start, _), c)| (start, c)).collect());
            }
        }
    }

    /// Replaces the state with what [`WindowTopN::encode`] wrote; `None` (state unchanged) if
    /// `bytes` are not a top-N's state.
    pub(super) fn decode(&mut self, bytes: &[u8]) -> Option<()> {
        let mut r = Reader(bytes);
        let watermark = r.header(StageTag::TopN)?;
        let mut windows = BTreeMap::new();
        for _ in 0..r.len()? {
            let (start, end) = (r.i64()?, r.i64()?);
            let mut candidates = Candidates::default();
            candidates.read_into(&mut r)?;
            windows.insert((start, end), candidates);
        }
        r.done()?;
        self.load(windows.into_iter().collect());
        self.watermark = watermark;
        Some(())
    }
}

/// Takes the record valued `v` into a window's candidates (its lineage always): kept unless
/// `n` candidates outrank it, then whatever `n` candidates now outrank leaves.
#[inline]
fn admit((latest, list): &mut Candidates, v: i64, row: Row, n: usize) {
    latest.keep_latest(row.lineage);
    if list.iter().filter(|(x, _)| *x > v).count() >= n {
        return;
    }
    list.push((v, row));
    list.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    let mut i = n;
    while i < list.len() && list[i].0 == list[n - 1].0 {
        i += 1;
    }
    list.truncate(i.max(n.min(list.len())));
}
