//! The operator's bookkeeping, shared by every backend: the watermark, event-time timers, the
//! dirty list of update mode, change tracking for incremental checkpoints, and counters.
//!
//! Why it is separate from the windows: Flink keeps timers in memory even with the RocksDB
//! backend, and Spark's state operator metrics do not depend on the store provider. So a
//! backend ([`WindowStore`](super::store::WindowStore)) holds only the windows and is handed a
//! [`WindowContext`] to record what it did; the rules of what an update, a firing or a removal
//! means for the bookkeeping are written here once.
//!
//! Invariants: the watermark only moves forward; every window in state whose backend keeps
//! timers (sessions, and every window on the LSM store) has a pending timer at its fire point
//! until it fires, then at its cleanup point (none in complete mode); a window is in `changed`
//! or in `removed` as of its last change, never both.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::codec::{WindowEntry, WindowState};
use super::semantics::{result, AfterTimer, EmitPolicy, Firing, Rules};
use super::store::{Fate, WindowStore};
use super::StateCounters;
use crate::operators::fxhash::FxHashSet;
use crate::operators::window::partial::Partial;
use crate::operators::{Collector, Lineage, Row, WindowResult};
use crate::pipeline::AggFunc;
use crate::time::{EventTime, Nanos};

/// What an update adds to a window: one row, or a map-side partial aggregate of rows.
#[derive(Clone, Copy)]
pub(super) enum Contribution<'a> {
    /// One row's aggregated value and lineage.
    Row { value: i64, lineage: Lineage },
    /// A partial aggregate computed before the exchange.
    Partial(&'a Partial),
}

impl Contribution<'_> {
    /// Adds the contribution to `w`.
    #[inline]
    pub(super) fn apply(self, func: AggFunc, w: &mut WindowState) {
        match self {
            Contribution::Row { value, lineage } => w.add(func, value, lineage),
            Contribution::Partial(p) => w.merge(func, &p.agg, p.last),
        }
    }
}

/// One update of a tumbling or sliding window: which window, what it adds, and when.
#[derive(Clone, Copy)]
pub(super) struct WindowUpdate<'a> {
    /// Grouping key.
    pub(super) key: i64,
    /// Window start.
    pub(super) start: EventTime,
    /// Window end.
    pub(super) end: EventTime,
    /// Its fire point has passed: the window fires on arrival.
    pub(super) fired: bool,
    /// What it adds.
    pub(super) change: Contribution<'a>,
    /// Processing time, stamped on a firing on arrival.
    pub(super) now: Nanos,
}

/// A run of rows, in order, that all fall in one tumbling window `[start, end)` that is neither
/// late nor fired: what [`WindowStore::add_rows`](super::store::WindowStore::add_rows) adds.
/// The rows are whole rows or projected ones ([`WindowInput`](super::input::WindowInput)); `now` is also their receipt.
#[derive(Clone, Copy)]
pub(super) struct RowRun<'a, R = Row> {
    /// Window start.
    pub(super) start: EventTime,
    /// Window end.
    pub(super) end: EventTime,
    /// The rows.
    pub(super) rows: &'a [R],
    /// Processing time.
    pub(super) now: Nanos,
}

/// One record for the session windows of its key.
#[derive(Clone, Copy)]
pub(super) struct SessionRecord {
    /// Grouping key.
    pub(super) key: i64,
    /// Event time.
    pub(super) t: EventTime,
    /// Session gap (ms): the record opens `[t, t + gap)`.
    pub(super) gap: i64,
    /// Aggregated value.
    pub(super) value: i64,
    /// Lineage.
    pub(super) lineage: Lineage,
    /// Processing time, stamped on a firing on arrival.
    pub(super) now: Nanos,
}

/// The operator's bookkeeping (see the module docs).
#[derive(Debug)]
pub(super) struct WindowContext {
    /// The fixed rules.
    pub(super) rules: Rules,
    /// Pending fire and cleanup points of windows whose backend keeps timers: (watermark that
    /// triggers it, key, window start). Heap tables need none.
    pub(super) timers: BinaryHeap<Reverse<(EventTime, i64, EventTime)>>,
    /// Windows changed since the last `emit_updates`, in change order.
    pub(super) dirty: Vec<(i64, EventTime)>,
    /// The operator's watermark.
    pub(super) watermark: EventTime,
    /// Counters since they were last taken.
    pub(super) counters: StateCounters,
    /// Windows changed since the last delta, when tracking.
    pub(super) changed: Option<FxHashSet<(i64, EventTime)>>,
    /// Windows removed since the last delta, when tracking.
    pub(super) removed: Vec<(i64, EventTime)>,
    /// Session starts merged away by the current insert (reused, no allocation per record).
    pub(super) merged_scratch: Vec<EventTime>,
}

impl WindowContext {
    /// Fresh bookkeeping under `rules`.
    pub(super) fn new(rules: Rules) -> Self {
        Self {
            rules,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            watermark: EventTime::MIN,
            counters: StateCounters::default(),
            changed: None,
            removed: Vec::new(),
            merged_scratch: Vec::new(),
        }
    }

    /// Whether a window ending at `end` is late under `watermark` (or this operator's, if later).
    #[inline]
    pub(super) fn late_under(&self, end: EventTime, watermark: EventTime) -> bool {
        self.rules.policy != EmitPolicy::Complete
            && self.watermark.max(watermark) >= self.rules.semantics.cleanup_point(end)
    }

    /// Whether the watermark has passed the fire point of a window ending at `end`.
    #[inline]
    pub(super) fn fired(&self, end: EventTime) -> bool {
        self.watermark >= self.rules.semantics.fire_point(end)
    }

    /// Sets a timer at `point` for window `(key, start)`.
    #[inline]
    pub(super) fn set_timer(&mut self, point: EventTime, key: i64, start: EventTime) {
        self.timers.push(Reverse((point, key, start)));
    }

    /// Records that window `(key, start)` changed (for the next delta).
    #[inline]
    pub(super) fn mark_changed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.insert((key, start));
        }
    }

    /// Records that window `(key, start)` left the state (for the next delta).
    pub(super) fn mark_removed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.remove(&(key, start));
            self.removed.push((key, start));
        }
    }

    /// Records that one window left the state: the delta and the counter.
    pub(super) fn window_removed(&mut self, key: i64, start: EventTime) {
        self.mark_removed(key, start);
        self.counters.rows_removed += 1;
    }

    /// The bookkeeping of an update to window `(key, start)`: counters, change tracking and the
    /// dirty list.
    #[inline]
    pub(super) fn note_update(&mut self, key: i64, start: EventTime, was_dirty: bool) {
        self.counters.rows_updated += 1;
        self.mark_changed(key, start);
        if self.rules.policy == EmitPolicy::OnUpdate && !was_dirty {
            self.dirty.push((key, start));
        }
    }

    /// An update to a window whose fire point the watermark has passed (within allowed
    /// lateness) fires it at once, as Flink's `EventTimeTrigger` does: a window already fired
    /// fires again (a late firing, an update); a window new to the state fires for the first time.
    pub(super) fn fire_on_arrival(
        &self,
        key: i64,
        start: EventTime,
        w: &mut WindowState,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        let first = !std::mem::replace(&mut w.fired, true);
        if self.rules.policy == EmitPolicy::OnWatermark {
            w.dirty = false;
            out.collect(result(key, start, w, self.rules.func, now, !first));
        }
    }

    /// The timer of a window new to the LSM store: its fire point, or if that has passed (it
    /// fires on arrival) its cleanup point; complete mode keeps fired windows for good.
    pub(super) fn set_first_timer(&mut self, key: i64, start: EventTime, end: EventTime, fired: bool) {
        let Rules { semantics, policy, .. } = self.rules;
        let timer = match (fired, policy) {
            (false, _) => Some(semantics.fire_point(end)),
            (true, EmitPolicy::Complete) => None,
            (true, _) => Some(semantics.cleanup_point(end)),
        };
        if let Some(point) = timer {
            self.set_timer(point, key, start);
        }
    }

    /// Clears the bookkeeping for a restore at `watermark` (change tracking stays on if it was).
    pub(super) fn reset(&mut self, watermark: EventTime) {
        self.timers.clear();
        self.dirty.clear();
        self.removed.clear();
        if let Some(c) = &mut self.changed {
            c.clear();
        }
        self.watermark = watermark;
    }

    /// The bookkeeping of a window restored from a checkpoint: its timer (if its backend keeps
    /// timers and it will still fire or leave) and its place in the dirty list.
    pub(super) fn restored(&mut self, e: &WindowEntry, with_timer: bool) {
        let Rules { semantics, policy, .. } = self.rules;
        let point = if e.state.fired {
            semantics.cleanup_point(e.state.end)
        } else {
            semantics.fire_point(e.state.end)
        };
        if with_timer && (policy != EmitPolicy::Complete || !e.state.fired) {
            self.set_timer(point, e.key, e.start);
        }
        if e.state.dirty && policy == EmitPolicy::OnUpdate {
            self.dirty.push((e.key, e.start));
        }
    }

    /// Runs the due timers of `store` in event-time order up to `watermark`: each window is
    /// fired or cleaned up through [`WindowStore::with_window`], which writes it back or
    /// removes it as the timer decided.
    pub(super) fn run_timers<S: WindowStore>(
        &mut self,
        store: &mut S,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        self.watermark = watermark;
        let firing = Firing {
            rules: self.rules,
            watermark,
            now,
        };
        while let Some(&Reverse((point, key, start))) = self.timers.peek() {
            if point > watermark {
                break;
            }
            self.timers.pop();
            let step = store.with_window(self.rules, key, start, |w| {
                let step = firing.on_timer(point, key, start, w, out);
                let fate = match step {
                    Some(s) if matches!(s.then, AfterTimer::Remove) => Fate::Removed,
                    Some(s) if s.newly_fired => Fate::Changed,
                    _ => Fate::Unchanged,
                };
                (step, fate)
            });
            let Some(Some(step)) = step else { continue };
            if step.newly_fired {
                self.mark_changed(key, start);
            }
            match step.then {
                AfterTimer::Remove => self.window_removed(key, start),
                AfterTimer::KeepUntil(point) => self.set_timer(point, key, start),
                AfterTimer::Keep => {}
            }
        }
    }
}
