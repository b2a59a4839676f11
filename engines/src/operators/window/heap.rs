//! The heap backend: tumbling and sliding windows in one column table per window start
//! ([`WindowTable`], see `table.rs`), session windows in a list per key ([`HeapSessions`]).
//!
//! Why tables: every window with the same start shares its end, and so its fire and cleanup
//! points; a table fires and leaves the state as a whole, so tumbling and sliding windows need
//! no timer each (sessions, whose ends differ, keep one).
//!
//! Invariants: tables are ordered by start (so also by fire and cleanup point), one per start;
//! a table's `fired` holds once its fire point has passed (every window in it has fired); the
//! per-record path (`update_window` with a row) touches only the newest table in the common
//! case and allocates nothing once the table has room.

use std::collections::VecDeque;
use std::path::Path;

use super::codec::{WindowEntry, WindowState};
use super::context::{Contribution, RowRun, SessionRecord, WindowContext, WindowUpdate};
use super::input::WindowInput;
use super::lsm::{temp_dir, LsmWindows};
use super::run_keys::{Lookup, RunKeys};
use super::semantics::{result, EmitPolicy, Rules};
use super::session::HeapSessions;
use super::store::{Fate, StateBackendKind, WindowStore};
use super::table::WindowTable;
use crate::operators::{Collector, WindowResult};
use crate::pipeline::AggFunc;
use crate::state::{CheckpointStats, LsmOptions, StateStats};
use crate::time::{EventTime, Nanos};

/// The windows on the heap.
#[derive(Debug, Default)]
pub(super) struct HeapWindows {
    /// Tumbling and sliding windows, one table per start, ordered by start.
    tables: VecDeque<WindowTable>,
    /// Session windows per key.
    sessions: HeapSessions,
    /// Slots of a table in emission order (reused).
    order: Vec<u32>,
    /// Tables' fire and cleanup points the watermark passed: (point, is cleanup, start) (reused).
    due: Vec<(EventTime, bool, EventTime)>,
    /// The small keys of the run being added (scratch for `add_rows`, not state).
    run_keys: RunKeys,
}

impl HeapWindows {
    /// The position of the table of windows starting at `start`, if any.
    fn table_index(&self, start: EventTime) -> Option<usize> {
        let at = self.tables.partition_point(|t| t.start < start);
        (self.tables.get(at)?.start == start).then_some(at)
    }

    /// The position of the table of windows `[start, end)`, created (fired if `fired`) if
    /// missing.
    #[inline]
    fn table_at(&mut self, start: EventTime, end: EventTime, func: AggFunc, fired: bool) -> usize {
        // Most rows fall in the newest windows.
        let last = self.tables.len().wrapping_sub(1);
        if self.tables.back().is_some_and(|t| t.start == start) {
            return last;
        }
        let at = self.tables.partition_point(|t| t.start < start);
        if self.tables.get(at).is_none_or(|t| t.start != start) {
            self.tables.insert(at, WindowTable::new(start, end, func, fired));
        }
        at
    }

    /// [`WindowStore::advance_watermark`] on tables. Each table has two points: at its fire
    /// point its windows fire (those not fired on arrival), in key order; at its cleanup point
    /// (never, in complete mode) it leaves the state, in update mode with its pending updates.
    /// The points the watermark passed are taken in event-time order, as a timer service would
    /// (a fire before a cleanup at the same point).
    fn advance_tables(
        &mut self,
        cx: &mut WindowContext,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        cx.watermark = watermark;
        let (semantics, policy) = (cx.rules.semantics, cx.rules.policy);
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        for t in &self.tables {
            let (fire, cleanup) = (semantics.fire_point(t.end), semantics.cleanup_point(t.end));
            if !t.fired && fire <= watermark {
                due.push((fire, false, t.start));
            }
            if policy != EmitPolicy::Complete && cleanup <= watermark {
                due.push((cleanup, true, t.start));
            }
        }
        due.sort_unstable();
        for &(_, cleanup, start) in &due {
            let at = self.table_index(start).expect("a due table is in state");
            if cleanup {
                let table = self.tables.remove(at).expect("the table is at `at`");
                self.clean_up_table(cx, table, now, out);
            } else {
                self.fire_table(cx, at, now, out);
            }
        }
        self.due = due;
    }

    /// Fires the windows of table `at` that have not fired yet, in key order.
    fn fire_table(&mut self, cx: &mut WindowContext, at: usize, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let (func, policy) = (cx.rules.func, cx.rules.policy);
        let table = &mut self.tables[at];
        table.fired = true;
        table.slots_by_key(&mut self.order, |t, slot| !t.is_fired(slot));
        for &slot in &self.order {
            let (key, mut w) = (table.key(slot), table.load(slot));
            w.fired = true;
            if policy == EmitPolicy::OnWatermark {
                w.dirty = false;
                out.collect(result(key, table.start, &w, func, now, false));
            }
            table.store(slot, w);
            cx.mark_changed(key, table.start);
        }
    }

    /// A table past its cleanup point leaves the state; in update mode its windows' pending
    /// updates leave with it, in key order, never silently.
    fn clean_up_table(
        &mut self,
        cx: &mut WindowContext,
        mut table: WindowTable,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        if cx.rules.policy == EmitPolicy::OnUpdate {
            table.slots_by_key(&mut self.order, WindowTable::is_dirty);
            for &slot in &self.order {
                let mut w = table.load(slot);
                w.dirty = false;
                out.collect(result(table.key(slot), table.start, &w, cx.rules.func, now, true));
            }
        }
        for slot in 0..table.len() as u32 {
            cx.mark_removed(table.key(slot), table.start);
        }
        cx.counters.rows_removed += table.len() as u64;
    }
}

impl WindowStore for HeapWindows {
    /// An update in the start's table; a row is added in place (no load and store).
    #[inline]
    fn update_window(&mut self, cx: &mut WindowContext, u: WindowUpdate<'_>, out: &mut impl Collector<WindowResult>) {
        let func = cx.rules.func;
        let at = self.table_at(u.start, u.end, func, u.fired);
        let table = &mut self.tables[at];
        let (slot, _) = table.slot(u.key);
        let was_dirty = table.is_dirty(slot);
        match u.change {
            Contribution::Row { value, lineage } => table.add(slot, value, lineage),
            Contribution::Partial(_) => {
                let mut w = table.load(slot);
                u.change.apply(func, &mut w);
                table.store(slot, w);
            }
        }
        cx.note_update(u.key, u.start, was_dirty);
        if u.fired {
            let mut w = self.tables[at].load(slot);
            cx.fire_on_arrival(u.key, u.start, &mut w, u.now, out);
            self.tables[at].store(slot, w);
        }
    }

    /// The run's table found once; then per row an in-place add, the slot of a small key
    /// found through the run's entries (the index probed once per key and run), a large key's
    /// by probing; a small key's lineage is written once, from the run's latest row
    /// (`run_keys.rs`). The bookkeeping (`note_update`) happens at a key's first row in the
    /// run, so the changed set and dirty list see the keys in the same order as row by row.
    #[inline]
    fn add_rows<R: WindowInput>(
        &mut self,
        cx: &mut WindowContext,
        run: RowRun<'_, R>,
        fields: impl Fn(&R) -> (i64, i64),
        _out: &mut impl Collector<WindowResult>,
    ) {
        let at = self.table_at(run.start, run.end, cx.rules.func, false);
        let table = &mut self.tables[at];
        let keys = &mut self.run_keys;
        keys.begin();
        let mut seen = 0;
        for (at, row) in run.rows.iter().enumerate() {
            let (key, value) = fields(row);
            let arrival = row.arrival();
            match keys.lookup(key) {
                Lookup::Seen(e) => {
                    table.add_value(e.slot, value);
                    e.offer(at as u32, arrival);
                    seen += 1;
                }
                Lookup::First(i) => {
                    let (slot, _) = table.slot(key);
                    let was_dirty = table.is_dirty(slot);
                    table.add_value(slot, value);
                    keys.first(i, slot, at as u32, arrival);
                    cx.note_update(key, run.start, was_dirty);
                }
                Lookup::Large => {
                    let (slot, _) = table.slot(key);
                    let was_dirty = table.is_dirty(slot);
                    table.add(slot, value, row.lineage(run.now));
                    cx.note_update(key, run.start, was_dirty);
                }
            }
        }
        // A key's later rows in the run change neither the changed set nor the dirty list.
        cx.counters.rows_updated += seen;
        for e in keys.met() {
            table.offer_lineage(e.slot, run.rows[e.latest as usize].lineage(run.now));
        }
    }

    fn add_to_session(&mut self, cx: &mut WindowContext, r: SessionRecord, out: &mut impl Collector<WindowResult>) {
        self.sessions.add(cx, r, out);
    }

    fn advance_watermark(
        &mut self,
        cx: &mut WindowContext,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        if cx.rules.session {
            cx.run_timers(self, watermark, now, out);
        } else {
            self.advance_tables(cx, watermark, now, out);
        }
    }

    fn with_window<R>(
        &mut self,
        rules: Rules,
        key: i64,
        start: EventTime,
        f: impl FnOnce(&mut WindowState) -> (R, Fate),
    ) -> Option<R> {
        if rules.session {
            return self.sessions.with_session(key, start, f);
        }
        let at = self.table_index(start)?;
        let t = &mut self.tables[at];
        let slot = t.find(key)?;
        let mut w = t.load(slot);
        let (r, fate) = f(&mut w);
        debug_assert!(
            fate != Fate::Removed,
            "a tumbling or sliding window leaves with its table"
        );
        t.store(slot, w);
        Some(r)
    }

    fn emit_all(&mut self, rules: Rules, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let func = rules.func;
        if rules.session {
            return self.sessions.emit_all(func, now, out);
        }
        let mut all: Vec<(i64, EventTime, usize, u32)> = self
            .tables
            .iter()
            .enumerate()
            .flat_map(|(at, t)| (0..t.len() as u32).map(move |slot| (t.key(slot), t.start, at, slot)))
            .collect();
        all.sort_unstable_by_key(|&(k, s, _, _)| (k, s));
        for (key, start, at, slot) in all {
            let table = &mut self.tables[at];
            let mut w = table.load(slot);
            w.dirty = false;
            out.collect(result(key, start, &w, func, now, true));
            table.store(slot, w);
        }
    }

    fn snapshot(&self) -> Vec<WindowEntry> {
        let mut all: Vec<WindowEntry> = self
            .tables
            .iter()
            .flat_map(|t| {
                (0..t.len() as u32).map(move |slot| WindowEntry {
                    key: t.key(slot),
                    start: t.start,
                    state: t.get(slot),
                })
            })
            .chain(self.sessions.entries())
            .collect();
        all.sort_unstable_by_key(|e| (e.key, e.start));
        all
    }

    fn load(&mut self, cx: &mut WindowContext, entries: impl IntoIterator<Item = WindowEntry>, _into_store: bool) {
        self.tables.clear();
        self.sessions.clear();
        let (session, func) = (cx.rules.session, cx.rules.func);
        for e in entries {
            cx.restored(&e, session);
            if session {
                self.sessions.push(e);
            } else {
                // A table has fired once all its windows have.
                let at = self.table_at(e.start, e.state.end, func, true);
                let table = &mut self.tables[at];
                table.fired &= e.state.fired;
                let (slot, _) = table.slot(e.key);
                table.store(slot, e.state);
            }
        }
    }

    fn rows(&self) -> usize {
        self.tables.iter().map(WindowTable::len).sum::<usize>() + self.sessions.len()
    }

    fn bytes(&self) -> usize {
        self.tables.iter().map(WindowTable::heap_bytes).sum::<usize>() + self.sessions.heap_bytes()
    }

    fn kind(&self) -> StateBackendKind {
        StateBackendKind::Heap
    }

    fn stats(&self) -> Option<StateStats> {
        None
    }

    fn checkpoint_incremental(&mut self, _id: u64, _root: &Path) -> Option<crate::state::Result<CheckpointStats>> {
        None
    }

    /// The heap loads the windows of an LSM checkpoint (taken by an operator on the LSM
    /// backend) through a scratch store.
    fn restore_incremental(
        &mut self,
        cx: &mut WindowContext,
        root: &Path,
        id: u64,
        watermark: EventTime,
    ) -> crate::state::Result<()> {
        let mut scratch = LsmWindows::open(&temp_dir(), LsmOptions::default(), true)?;
        scratch.restore_from(root, id)?;
        let entries = scratch.entries(cx.rules.session);
        cx.reset(watermark);
        self.load(cx, entries, true);
        Ok(())
    }
}
