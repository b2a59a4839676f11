//! The global stage over an aggregation's window results: a second aggregation per window
//! (Nexmark q5: the maximum count per window), or, with `keep_matching`, the first stage's
//! results that attain it (q5's hot items — the `max` joined back to the counts).
//!
//! It runs once for the whole job, at parallelism 1, behind the keyed stage: all of a window's
//! first-stage results must be in before it can answer. The engine says when they are:
//! the micro-batch engine after each batch (in append mode a window's results all leave in one
//! batch, as Spark's chained stateful operators require), the per-record engine when the
//! watermark over all its inputs closes the window's end.
//!
//! Invariant: each window's result is emitted exactly once, from all of its first-stage results.

use std::collections::BTreeMap;

use crate::operators::graph::closed;
use crate::operators::graph::codec::{Reader, StageTag, Writer};
use crate::operators::{Output, WindowResult};
use crate::pipeline::{AggFunc, ThenSpec};
use crate::time::{EventTime, Nanos};

/// The second-stage operator.
#[derive(Debug)]
pub struct ThenStage {
    spec: ThenSpec,
    /// First-stage results by window, until the window is complete.
    pending: BTreeMap<(EventTime, EventTime), Vec<WindowResult>>,
}

impl ThenStage {
    /// An empty stage for `spec`.
    pub fn new(spec: ThenSpec) -> Self {
        Self {
            spec,
            pending: BTreeMap::new(),
        }
    }

    /// Results held for windows not yet complete.
    pub fn state_rows(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Takes one first-stage result.
    pub fn on_result(&mut self, r: WindowResult) {
        self.pending.entry((r.start, r.end)).or_default().push(r);
    }

    /// Every window held is complete (a micro-batch's results are all in): answers them all.
    pub fn release_all(&mut self, now: Nanos, out: &mut Vec<Output>) {
        for ((start, end), results) in std::mem::take(&mut self.pending) {
            self.answer(start, end, results, now, out);
        }
    }

    /// The watermark over every input is `watermark`: answers each window it closed.
    pub fn release_closed(&mut self, watermark: EventTime, fire_lag: i64, now: Nanos, out: &mut Vec<Output>) {
        while let Some((&(start, end), _)) = self.pending.first_key_value() {
            if !closed(watermark, end - 1, fire_lag) {
                break;
            }
            let (_, results) = self.pending.pop_first().expect("non-empty");
            self.answer(start, end, results, now, out);
        }
    }

    /// The stage's state (see `codec.rs`): per pending window, in window order, the
    /// first-stage results held for it in arrival order. The stage holds no watermark of its
    /// own (its driver does); the header's is `EventTime::MIN`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer(&mut out);
        w.header(StageTag::Then, EventTime::MIN);
        w.len(self.pending.len());
        for ((start, end), results) in &self.pending {
            w.i64(*start);
            w.i64(*end);
            w.len(results.len());
            results.iter().for_each(|r| w.window(r));
        }
        out
    }

    /// Replaces the state with what [`ThenStage::encode`] wrote; `None` (state unchanged) if
    /// `bytes` are not a second aggregation's state.
    pub fn restore(&mut self, bytes: &[u8]) -> Option<()> {
        let mut r = Reader(bytes);
        r.header(StageTag::Then)?;
        let mut pending = BTreeMap::new();
        for _ in 0..r.len()? {
            let window = (r.i64()?, r.i64()?);
            let results = (0..r.len()?).map(|_| r.window()).collect::<Option<Vec<_>>>()?;
            pending.insert(window, results);
        }
        r.done()?;
        self.pending = pending;
        Some(())
    }

    fn answer(&self, start: EventTime, end: EventTime, results: Vec<WindowResult>, now: Nanos, out: &mut Vec<Output>) {
        let values = results.iter().map(|r| r.value);
        let value = match self.spec.function {
            AggFunc::Max => values.fold(f64::MIN, f64::max),
            AggFunc::Min => values.fold(f64::MAX, f64::min),
            AggFunc::Sum => values.sum(),
            AggFunc::Count => results.len() as f64,
            AggFunc::Avg => values.sum::<f64>() / results.len() as f64,
            AggFunc::DistinctCount => {
                let mut v: Vec<u64> = values.map(f64::to_bits).collect();
                v.sort_unstable();
                v.dedup();
                v.len() as f64
            }
        };
        let mut origin = results[0].origin;
        for r in &results {
            origin.keep_latest(r.origin);
        }
        if self.spec.keep_matching {
            out.extend(results.iter().filter(|r| r.value == value).map(|r| {
                Output::Window(WindowResult {
                    origin,
                    fired_at: now,
                    ..*r
                })
            }));
        } else {
            out.push(Output::Window(WindowResult {
                key: 0,
                start,
                end,
                count: results.len() as u64,
                value,
                origin,
                fired_at: now,
                handoff: 0,
                recv: 0,
                is_update: false,
            }));
        }
    }
}
