//! Top-N per window: in each window, the records with the `n` largest values of a field,
//! ties at the boundary all kept (SQL's `RANK() <= n`; Nexmark q7's bids at the highest
//! price), emitted when the window closes — Flink's window Top-N; Spark runs `n = 1` as a
//! `max` per window joined back to the records, which emits at the same point.
//!
//! The state per window holds only candidates: a record leaves as soon as `n` records rank
//! strictly above it, so a window keeps about `n` records (more with ties), not all of them.
//! A record whose windows have all closed on arrival is dropped as late and counted.
//!
//! The candidates stay on the heap under every `state_backend` (unlike the join's and the
//! deduplication's keyed state, see `keyed_lists.rs`): they are about `n` records per open
//! window in one group, and the watermark visits them in window order.
//!
//! Invariant: a window's emitted records are exactly those with fewer than `n` records of the
//! window ranking strictly above them.

use std::collections::BTreeMap;

use crate::operators::graph::closed;
use crate::operators::graph::codec::{Reader, StageTag, Writer};
use crate::operators::{Lineage, Output, RecordResult, Row, Shape};
use crate::pipeline::{field_value, TopNSpec, WindowSpec};
use crate::time::{EventTime, Nanos};

/// A window's latest-arriving lineage and its candidate records with their ranked values.
type Candidates = (Lineage, Vec<(i64, Row)>);

/// A top-N-per-window operator instance.
#[derive(Debug)]
pub struct WindowTopN {
    spec: TopNSpec,
    fire_lag: i64,
    /// Per window `(start, end)`: the lineage of its latest-arriving record (the results'
    /// latency origin, as for an aggregate) and its candidates.
    windows: BTreeMap<(EventTime, EventTime), Candidates>,
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
            windows: BTreeMap::new(),
            watermark: EventTime::MIN,
            late_dropped: 0,
        }
    }

    /// Candidate records in state.
    pub fn state_rows(&self) -> usize {
        self.windows.values().map(|(_, c)| c.len()).sum()
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
            let (latest, list) = self.windows.entry((start, end)).or_default();
            latest.keep_latest(row.lineage);
            if list.iter().filter(|(x, _)| *x > v).count() >= n {
                continue;
            }
            list.push((v, row));
            // Drop what `n` records now outrank.
            list.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
            let mut i = n;
            while i < list.len() && list[i].0 == list[n - 1].0 {
                i += 1;
            }
            list.truncate(i.max(n.min(list.len())));
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
        while let Some((&(start, end), _)) = self.windows.first_key_value() {
            if !closed(watermark, end - 1, self.fire_lag) {
                break;
            }
            let (_, (origin, list)) = self.windows.pop_first().expect("non-empty");
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
    }

    /// Appends the state (see `codec.rs`): the watermark, then per open window (in window
    /// order) its latest lineage and its candidates in rank order.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.header(StageTag::TopN, self.watermark);
        w.len(self.windows.len());
        for ((start, end), (latest, list)) in &self.windows {
            w.i64(*start);
            w.i64(*end);
            w.lineage(latest);
            w.len(list.len());
            for (v, row) in list {
                w.i64(*v);
                w.row(row);
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
            let latest = r.lineage()?;
            let n = r.len()?;
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                list.push((r.i64()?, r.row()?));
            }
            windows.insert((start, end), (latest, list));
        }
        r.done()?;
        self.windows = windows;
        self.watermark = watermark;
        Some(())
    }
}
