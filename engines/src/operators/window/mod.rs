//! Keyed, windowed aggregation on heap or LSM state, with event-time timers and lateness rules.
//!
//! One operator serves both engines; what differs between Spark and Flink is captured in
//! [`TimeSemantics`] and [`EmitPolicy`] (see `semantics.rs`: fire and cleanup points, late
//! records, firing on arrival). The operator is split by idea:
//!
//! * `semantics.rs` — the time rules, and what a due timer does;
//! * `codec.rs` — how a window is written down ([`WindowEntry`], [`StateDelta`]);
//! * `context.rs` — the bookkeeping every backend updates (watermark, timers, dirty list,
//!   change tracking, counters);
//! * `store.rs` — the seam: one `WindowStore` trait, and the backend
//!   chosen when the operator is built ([`StateBackendKind`]);
//! * `heap.rs` and `table.rs` — the heap backend: one column table per window start for
//!   tumbling and sliding windows, which fires and leaves the state as a whole;
//! * `session.rs` — session windows: the merge, and the heap's lists per key;
//! * `lsm.rs` — the LSM backend: every window (or key's session list) a value in an
//!   [`LsmStore`](crate::state::LsmStore), each with its timer;
//! * [`partial`] — the aggregation's map-side half: a micro-batch map task folds its rows into
//!   partial aggregates that [`WindowedAggregation::merge_partial`] takes after the exchange.
//!
//! This file is the operator itself: record and partial-aggregate intake, watermarks,
//! emission, checkpoints and restore, all written against the seam, so it never asks which
//! backend it holds.
//!
//! Invariants: the watermark only moves forward; a window is fired exactly when the watermark
//! has passed its fire point, and is removed at its cleanup point unless the policy is
//! [`EmitPolicy::Complete`], which keeps all state as Spark's complete mode does. Both backends
//! produce identical results, snapshots and deltas.

mod codec;
mod context;
mod heap;
mod input;
mod lsm;
pub mod partial;
mod run_keys;
mod semantics;
mod session;
mod store;
mod table;

use std::path::{Path, PathBuf};

pub use codec::{StateDelta, WindowEntry};
pub use input::{ProjectedColumns, ProjectedRow, Projection, WindowInput};
pub(crate) use lsm::temp_dir;
pub use lsm::{COMPACT_EVERY_WRITES, COMPACT_STEP_BYTES};
pub use semantics::{EmitPolicy, TimeSemantics};
pub use store::StateBackendKind;

use crate::operators::window::partial::Partial;
use crate::operators::{Collector, Row, WindowResult};
use crate::pipeline::{field_value, AggFunc, Aggregation, Field, WindowSpec};
use crate::state::{CheckpointStats, LsmOptions, StateStats};
use crate::time::{EventTime, Nanos};
use context::{Contribution, RowRun, SessionRecord, WindowContext, WindowUpdate};
use heap::HeapWindows;
use lsm::LsmWindowStore;
use semantics::Rules;
use store::{Backend, Fate, WindowStore};

/// Counters a state operator reports (Spark's `stateOperators`, Flink's late-record metric).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounters {
    /// Records all of whose windows were late, dropped (and sent to the side output).
    pub late_dropped: u64,
    /// Windows created or changed since the counters were last taken.
    pub rows_updated: u64,
    /// Windows removed since the counters were last taken.
    pub rows_removed: u64,
}

/// The keyed windowed aggregation operator, with heap (default) or LSM state.
#[derive(Debug)]
pub struct WindowedAggregation {
    spec: Aggregation,
    /// The rules and the bookkeeping, shared by both backends.
    cx: WindowContext,
    /// Where the windows live.
    state: Backend,
}

impl WindowedAggregation {
    /// An empty operator for `spec` under the given time semantics and emit policy.
    pub fn new(spec: Aggregation, semantics: TimeSemantics, policy: EmitPolicy) -> Self {
        let rules = Rules {
            semantics,
            policy,
            func: spec.function,
            session: matches!(spec.window, WindowSpec::Session { .. }),
        };
        Self {
            spec,
            cx: WindowContext::new(rules),
            state: Backend::Heap(HeapWindows::default()),
        }
    }

    /// The same operator with its state on `kind`: the heap (returned as is) or an LSM store in
    /// a fresh scratch directory under [`std::env::temp_dir`], unique to this operator and
    /// removed when it is dropped.
    pub fn with_backend(self, kind: StateBackendKind) -> crate::state::Result<Self> {
        match kind {
            StateBackendKind::Heap => Ok(self),
            StateBackendKind::Lsm => self.lsm_in(lsm::temp_dir(), LsmOptions::default(), true),
            StateBackendKind::LsmChangelog => {
                let options = LsmOptions {
                    changelog: true,
                    ..LsmOptions::default()
                };
                self.lsm_in(lsm::temp_dir(), options, true)
            }
        }
    }

    /// The same operator with its state in an LSM store working in `dir` (created if missing,
    /// cleared of stale store files, left in place on drop: the caller owns it).
    pub fn with_lsm(self, dir: PathBuf) -> crate::state::Result<Self> {
        self.lsm_in(dir, LsmOptions::default(), false)
    }

    /// [`WindowedAggregation::with_lsm`] with store options (memtable and block sizes, ...).
    pub fn with_lsm_options(self, dir: PathBuf, options: LsmOptions) -> crate::state::Result<Self> {
        self.lsm_in(dir, options, false)
    }

    /// Moves the windows into a new LSM store; dirty lists, change tracking and counters are
    /// kept, timers rebuilt (the store's windows each have one).
    fn lsm_in(mut self, dir: PathBuf, options: LsmOptions, owns_dir: bool) -> crate::state::Result<Self> {
        let entries = self.snapshot();
        // An old store is dropped (and its owned directory removed) before `dir` is opened.
        self.state = Backend::Heap(HeapWindows::default());
        let store = LsmWindowStore::open(&dir, options, owns_dir, self.cx.rules.session)?;
        self.state = Backend::Lsm(store);
        let cx = &mut self.cx;
        let (dirty, changed, removed) = (
            std::mem::take(&mut cx.dirty),
            cx.changed.take(),
            std::mem::take(&mut cx.removed),
        );
        self.rebuild(entries, self.cx.watermark, true);
        let cx = &mut self.cx;
        (cx.dirty, cx.changed, cx.removed) = (dirty, changed, removed);
        Ok(self)
    }

    /// Which backend holds the state.
    pub fn backend(&self) -> StateBackendKind {
        self.state.kind()
    }

    /// The LSM store's counters and sizes (bytes written by flushes, compaction and
    /// checkpoints; gets and puts); `None` on the heap backend.
    pub fn state_stats(&self) -> Option<StateStats> {
        self.state.stats()
    }

    /// Starts tracking changes for incremental checkpoints ([`WindowedAggregation::take_delta`]).
    pub fn track_changes(&mut self) {
        self.cx.changed.get_or_insert_with(Default::default);
    }

    /// The changes since the previous call (or since tracking started), in a deterministic order.
    pub fn take_delta(&mut self) -> StateDelta {
        let Some(changed) = self.cx.changed.as_mut() else {
            return StateDelta::default();
        };
        let mut keys: Vec<(i64, EventTime)> = changed.drain().collect();
        keys.sort_unstable();
        let rules = self.cx.rules;
        let upserts = keys
            .into_iter()
            .filter_map(|(key, start)| {
                let state = self
                    .state
                    .with_window(rules, key, start, |w| (w.clone(), Fate::Unchanged))?;
                Some(WindowEntry { key, start, state })
            })
            .collect();
        let mut deletes = std::mem::take(&mut self.cx.removed);
        deletes.sort_unstable();
        deletes.dedup();
        StateDelta { upserts, deletes }
    }

    /// Every window in state, ordered by (key, start): a full snapshot.
    pub fn snapshot(&self) -> Vec<WindowEntry> {
        self.state.snapshot()
    }

    /// LSM backend: takes incremental checkpoint `id` of the store into the checkpoint root
    /// `root` (Flink's incremental RocksDB checkpoint: runs the root already holds are
    /// referenced, only new ones written). `None` on the heap backend, which snapshots in full.
    pub fn checkpoint_incremental(&mut self, id: u64, root: &Path) -> Option<crate::state::Result<CheckpointStats>> {
        self.state.checkpoint_incremental(id, root)
    }

    /// Rebuilds the state from incremental checkpoint `id` in `root` and the watermark the
    /// checkpoint ran with. The LSM backend adopts the restored store (so its next checkpoint
    /// stays incremental) and re-registers timers from its windows; the heap backend loads them.
    pub fn restore_incremental(&mut self, root: &Path, id: u64, watermark: EventTime) -> crate::state::Result<()> {
        self.state.restore_incremental(&mut self.cx, root, id, watermark)
    }

    /// Rebuilds the state from checkpointed windows and the watermark the checkpoint ran
    /// with; timers are re-registered for every window not yet past its cleanup point.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = WindowEntry>, watermark: EventTime) {
        self.rebuild(entries, watermark, true);
    }

    /// [`Self::restore`]; `into_store: false` when the LSM store already holds `entries`
    /// (restored from its own checkpoint) and only the timers and counts are rebuilt.
    fn rebuild(&mut self, entries: impl IntoIterator<Item = WindowEntry>, watermark: EventTime, into_store: bool) {
        self.cx.reset(watermark);
        self.state.load(&mut self.cx, entries, into_store);
    }

    /// The windows an event at `t` falls in: starts from `first` to `last` by `step`, each
    /// `size` ms long, as `(first, last, step, size)` (tumbling: one; sliding: `size / slide`).
    /// Session windows have none (they grow by gaps); `(0, -1, 1, 0)`.
    #[inline]
    pub fn window_range(&self, t: EventTime) -> (EventTime, EventTime, i64, i64) {
        match self.spec.window {
            WindowSpec::Tumbling { size } => {
                let size = size.whole_ms();
                let start = t.div_euclid(size) * size;
                (start, start, size, size)
            }
            WindowSpec::Sliding { size, slide } => {
                let (size, slide) = (size.whole_ms(), slide.whole_ms());
                let last = t.div_euclid(slide) * slide;
                (last - size + slide, last, slide, size)
            }
            WindowSpec::Session { .. } => (0, -1, 1, 0),
        }
    }

    /// Whether rows can be combined into partial aggregates before the state store (every
    /// window kind but sessions).
    pub fn combines_partially(&self) -> bool {
        !self.cx.rules.session
    }

    /// Whether a window ending at `end` is late once the watermark reaches `watermark` (or
    /// this operator's, if later): its rows are dropped.
    #[inline]
    pub fn late_under(&self, end: EventTime, watermark: EventTime) -> bool {
        self.cx.late_under(end, watermark)
    }

    /// The aggregate function.
    pub fn function(&self) -> AggFunc {
        self.spec.function
    }

    /// The aggregated field's value of a row (0 for `count`).
    #[inline]
    pub fn value_of(&self, row: &Row) -> i64 {
        self.spec
            .field
            .map_or(0, |f: Field| field_value(&row.event, row.campaign, f))
    }

    /// The grouping key of a row.
    #[inline]
    pub fn key_of(&self, row: &Row) -> i64 {
        field_value(&row.event, row.campaign, self.spec.key_by)
    }

    /// The field rows are grouped by (a columnar map task reads it as a column).
    pub fn key_field(&self) -> Field {
        self.spec.key_by
    }

    /// The aggregated field (`None` for `count`).
    pub fn value_field(&self) -> Option<Field> {
        self.spec.field
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> EventTime {
        self.cx.watermark
    }

    /// Number of windows held in state.
    pub fn state_rows(&self) -> usize {
        self.state.rows()
    }

    /// Approximate bytes of the state: on the heap, the window tables' allocations and an
    /// estimate of the session lists; on the LSM backend, the store's live bytes (memtable and
    /// run files). Timers (in memory either way) are added at 24 bytes each.
    pub fn state_bytes(&self) -> usize {
        self.state.bytes() + self.cx.timers.len() * 24
    }

    /// Takes and resets the counters.
    pub fn take_counters(&mut self) -> StateCounters {
        std::mem::take(&mut self.cx.counters)
    }

    /// Adds a row to all its windows. Returns `false` when every window was late and the row
    /// was dropped (the caller routes it to the side output). A late firing (Flink allowed
    /// lateness) emits into `out` at once, stamped `now`.
    #[inline]
    pub fn insert(&mut self, row: &Row, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        self.insert_one(row, now, out)
    }

    /// [`Self::insert`] for a whole or a projected row.
    #[inline]
    fn insert_one<R: WindowInput>(&mut self, row: &R, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        let (key, value) = row.fields(self.spec.key_by, self.spec.field);
        let t = row.event_time();
        let lineage = row.lineage(now);
        let accepted = match self.spec.window {
            WindowSpec::Session { gap } => self.add_to_session(
                SessionRecord {
                    key,
                    t,
                    gap: gap.whole_ms(),
                    value,
                    lineage,
                    now,
                },
                out,
            ),
            _ => {
                let (first, last, step, size) = self.window_range(t);
                let change = Contribution::Row { value, lineage };
                let mut any = false;
                let mut start = first;
                while start <= last {
                    any |= self.update_window(key, start, start + size, now, out, change);
                    start += step;
                }
                any
            }
        };
        if !accepted {
            self.cx.counters.late_dropped += 1;
        }
        accepted
    }

    /// Adds a network buffer's rows to their windows, in order: what [`Self::insert`] does for
    /// each, with every row dropped as late pushed to `late`. Tumbling windows are assigned once
    /// per run of rows in the same window (not a division per row), and a run that is neither
    /// late nor fired goes to the state in one call, which finds the run's table once
    /// ([`WindowStore::add_rows`]). Sliding and session windows go a row at a time. The rows
    /// are whole rows (their lineage stamped on receipt) or rows projected for this
    /// aggregation, received at `now` ([`ProjectedRow`]).
    pub fn insert_all<R: WindowInput>(
        &mut self,
        rows: &[R],
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
        late: &mut Vec<Row>,
    ) {
        let WindowSpec::Tumbling { size } = self.spec.window else {
            for row in rows {
                if !self.insert_one(row, now, out) {
                    late.push(row.late_row(now));
                }
            }
            return;
        };
        let size = size.whole_ms();
        let mut rest = rows;
        while let Some(first) = rest.first() {
            let start = first.event_time().div_euclid(size) * size;
            let end = start + size;
            let n = rest
                .iter()
                .position(|r| !(start..end).contains(&r.event_time()))
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(n);
            self.insert_run(
                RowRun {
                    start,
                    end,
                    rows: run,
                    now,
                },
                out,
                late,
            );
            rest = tail;
        }
    }

    /// [`Self::insert_all`] for a run of rows in one tumbling window.
    #[inline]
    fn insert_run<R: WindowInput>(
        &mut self,
        run: RowRun<'_, R>,
        out: &mut impl Collector<WindowResult>,
        late: &mut Vec<Row>,
    ) {
        let (key_by, field) = (self.spec.key_by, self.spec.field);
        let fields = |row: &R| row.fields(key_by, field);
        if self.cx.late_under(run.end, self.cx.watermark) {
            self.cx.counters.late_dropped += run.rows.len() as u64;
            late.extend(run.rows.iter().map(|r| r.late_row(run.now)));
        } else if self.cx.fired(run.end) {
            // Each row fires its window on arrival.
            for row in run.rows {
                let (key, value) = fields(row);
                let change = Contribution::Row {
                    value,
                    lineage: row.lineage(run.now),
                };
                self.update_window(key, run.start, run.end, run.now, out, change);
            }
        } else {
            self.state.add_rows(&mut self.cx, run, fields, out);
        }
    }

    /// Folds a map-side partial aggregate into its window (the final aggregation after the
    /// exchange). Returns `false` when the window was late and the partial dropped.
    #[inline]
    pub fn merge_partial(&mut self, p: &Partial, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        let accepted = self.update_window(p.key, p.start, p.end, now, out, Contribution::Partial(p));
        if !accepted {
            self.cx.counters.late_dropped += p.agg.count;
        }
        accepted
    }

    /// Adds `change` to window `(key, start)`, creating it if needed: the one update path of
    /// rows and partial aggregates. `false` if the window is late.
    #[inline]
    fn update_window(
        &mut self,
        key: i64,
        start: EventTime,
        end: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
        change: Contribution<'_>,
    ) -> bool {
        if self.cx.late_under(end, self.cx.watermark) {
            return false;
        }
        let update = WindowUpdate {
            key,
            start,
            end,
            fired: self.cx.fired(end),
            change,
            now,
        };
        self.state.update_window(&mut self.cx, update, out);
        true
    }

    /// Adds a record to its key's sessions, merging those it overlaps. `false` if late.
    fn add_to_session(&mut self, r: SessionRecord, out: &mut impl Collector<WindowResult>) -> bool {
        if self.cx.late_under(r.t + r.gap, self.cx.watermark) {
            return false;
        }
        self.state.add_to_session(&mut self.cx, r, out);
        true
    }

    /// Advances the watermark to `watermark` (never backwards) and fires, in event-time order,
    /// every window it passes; state past its cleanup point is dropped.
    pub fn advance_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut impl Collector<WindowResult>) {
        if watermark <= self.cx.watermark {
            return;
        }
        self.state.advance_watermark(&mut self.cx, watermark, now, out);
    }

    /// Emits each window changed since the last call, in change order (update mode).
    pub fn emit_updates(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let rules = self.cx.rules;
        let dirty = std::mem::take(&mut self.cx.dirty);
        for &(key, start) in &dirty {
            self.state.with_window(rules, key, start, |w| {
                let was_dirty = std::mem::replace(&mut w.dirty, false);
                if was_dirty {
                    out.collect(semantics::result(key, start, w, rules.func, now, true));
                }
                ((), if was_dirty { Fate::Changed } else { Fate::Unchanged })
            });
        }
        self.cx.dirty = dirty;
        self.cx.dirty.clear();
    }

    /// Emits every window in state, ordered by (key, start) (complete mode).
    pub fn emit_all(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        self.state.emit_all(self.cx.rules, now, out);
    }
}
