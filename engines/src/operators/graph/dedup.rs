//! Deduplication within a watermark: Spark's `dropDuplicatesWithinWatermark`, Flink SQL's
//! keep-first-row deduplication (`ROW_NUMBER() ... = 1`) with its state kept by event time.
//!
//! The first record of a key is kept and emitted at once (both engines emit it in the batch or
//! on the record that brings it); a later record of the key whose event time lies within
//! `within` of a kept one's is a duplicate and dropped. A kept record stays in state until the
//! watermark closes `time + within − 1`: after that no record within reach of it can arrive
//! (it would be late), so the key may be kept again. A record late on arrival is dropped and
//! counted.
//!
//! Invariant: given the records of a key in their arrival order and none late, the kept ones
//! are exactly the reference evaluator's. Which record is "first" is arrival order, so an
//! engine agrees with the reference when a key's records reach its subtask in that order —
//! true when the key includes the field the source is partitioned by (the clickstream's
//! `user`).
//!
//! State: per key, the kept times, on the heap or in the LSM store (`keyed_lists.rs`). Each
//! kept record registers a cleanup timer (on the heap, by event time) at `time + within − 1`,
//! and a watermark visits only the keys of due timers, never the whole state.

use std::collections::BTreeMap;

use crate::operators::graph::closed;
use crate::operators::graph::codec::{Reader, StageTag, Writer};
use crate::operators::graph::keyed_lists::KeyedLists;
use crate::operators::window::StateBackendKind;
use crate::operators::{Output, Row};
use crate::pipeline::DedupSpec;
use crate::time::{EventTime, Nanos};

/// A deduplication operator instance.
#[derive(Debug)]
pub struct Deduplicate {
    spec: DedupSpec,
    fire_lag: i64,
    /// Per key, the event times of its kept records still in state.
    kept: KeyedLists<EventTime>,
    /// Cleanup timers: by the event time whose closing expires them, keys to look at.
    timers: BTreeMap<EventTime, Vec<i64>>,
    rows: usize,
    watermark: EventTime,
    /// Records dropped as late.
    pub late_dropped: u64,
    /// Records dropped as duplicates.
    pub duplicates: u64,
}

impl Deduplicate {
    /// An empty deduplication for `spec`, with the engine's watermark `fire_lag`.
    pub fn new(spec: &DedupSpec, fire_lag: i64) -> Self {
        Self {
            spec: spec.clone(),
            fire_lag,
            kept: KeyedLists::Heap(Default::default()),
            timers: BTreeMap::new(),
            rows: 0,
            watermark: EventTime::MIN,
            late_dropped: 0,
            duplicates: 0,
        }
    }

    /// The same deduplication with its kept times on `kind`; fails when an LSM store cannot
    /// be opened.
    pub fn with_backend(mut self, kind: StateBackendKind) -> crate::state::Result<Self> {
        let lists = self.kept.sorted();
        self.kept = KeyedLists::new(kind)?;
        self.load(lists);
        Ok(self)
    }

    /// Kept records in state.
    pub fn state_rows(&self) -> usize {
        self.rows
    }

    /// Takes one row: emits it if it is the first of its key within reach.
    #[inline]
    pub fn on_row(&mut self, row: Row, now: Nanos, out: &mut Vec<Output>) {
        let t = row.event.event_time;
        if closed(self.watermark, t, self.fire_lag) {
            self.late_dropped += 1;
            return;
        }
        let within = self.spec.within.whole_ms();
        let key = self.spec.key_of(&row.event, row.campaign);
        let kept = self.kept.update(key, true, |list| {
            if list.iter().any(|&k| (t - k).abs() < within) {
                return (false, false);
            }
            list.push(t);
            (true, true)
        });
        if kept != Some(true) {
            self.duplicates += 1;
            return;
        }
        self.rows += 1;
        self.timers.entry(t + within - 1).or_default().push(key);
        let _ = now; // the record leaves as it came: its lineage carries the times
        out.push(Output::Row(row));
    }

    /// The watermark advanced: kept records out of reach leave the state.
    pub fn on_watermark(&mut self, watermark: EventTime) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let within = self.spec.within.whole_ms();
        let lag = self.fire_lag;
        let rows = &mut self.rows;
        let mut sweep = |list: &mut Vec<EventTime>| {
            let before = list.len();
            list.retain(|&k| !closed(watermark, k + within - 1, lag));
            *rows -= before - list.len();
            ((), list.len() != before)
        };
        while let Some((&bound, _)) = self.timers.first_key_value() {
            if !closed(watermark, bound, lag) {
                break;
            }
            let (_, keys) = self.timers.pop_first().expect("non-empty");
            for key in keys {
                // Absent: emptied by an earlier timer of the key.
                self.kept.update(key, false, &mut sweep);
            }
        }
        self.kept.after_watermark();
    }

    /// Replaces the kept times with `lists`, and their cleanup timers.
    fn load(&mut self, lists: Vec<(i64, Vec<EventTime>)>) {
        self.timers.clear();
        let within = self.spec.within.whole_ms();
        for (key, list) in &lists {
            for &t in list {
                self.timers.entry(t + within - 1).or_default().push(*key);
            }
        }
        self.kept.replace(lists);
    }

    /// Appends the state (see `codec.rs`): the watermark, then per key (in key order) the
    /// event times of its kept records.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.header(StageTag::Dedup, self.watermark);
        let lists = self.kept.sorted();
        w.len(lists.len());
        for (k, list) in &lists {
            w.i64(*k);
            w.len(list.len());
            list.iter().for_each(|&t| w.i64(t));
        }
    }

    /// Replaces the state with what [`Deduplicate::encode`] wrote; `None` (state unchanged)
    /// if `bytes` are not a deduplication's state.
    pub(super) fn decode(&mut self, bytes: &[u8]) -> Option<()> {
        let mut r = Reader(bytes);
        let watermark = r.header(StageTag::Dedup)?;
        let mut kept = Vec::new();
        let mut rows = 0;
        for _ in 0..r.len()? {
            let key = r.i64()?;
            let list = (0..r.len()?).map(|_| r.i64()).collect::<Option<Vec<_>>>()?;
            rows += list.len();
            kept.push((key, list));
        }
        r.done()?;
        self.load(kept);
        self.rows = rows;
        self.watermark = watermark;
        Some(())
    }
}
