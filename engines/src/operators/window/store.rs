//! The seam between the window operator and where its windows live: one small trait,
//! [`WindowStore`], implemented by the heap ([`HeapWindows`]) and the LSM store
//! ([`LsmWindowStore`]), and chosen once, when the operator is built ([`Backend`]).
//!
//! Why: the operator's rules (late records, firing on arrival, timers, the dirty list, change
//! tracking) are the same on either backend; only how a window is found, changed and written
//! back differs. As in differential-dataflow's trace/spine seam, the operator never asks which
//! backend it holds: it calls the trait, and the backend records what it did in the
//! [`WindowContext`] it is handed.
//!
//! Invariants: both backends produce identical results, snapshots, deltas and counters for the
//! same input. Dispatch is static (an enum, `match`ed once per call, as the former
//! `Option<lsm>` test was): no dynamic dispatch and no allocation per record on the heap path.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::codec::{WindowEntry, WindowState};
use super::context::{Contribution, RowRun, SessionRecord, WindowContext, WindowUpdate};
use super::heap::HeapWindows;
use super::input::WindowInput;
use super::lsm::LsmWindowStore;
use super::semantics::Rules;
use crate::operators::{Collector, WindowResult};
use crate::state::{CheckpointStats, StateStats};
use crate::time::{EventTime, Nanos};

/// Which backend holds an operator's keyed window state (config key `state_backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackendKind {
    /// In-memory tables on the heap (Flink's `HashMapStateBackend`, Spark's default state store).
    #[default]
    Heap,
    /// The LSM store in a scratch directory (Flink's `EmbeddedRocksDBStateBackend`, Spark's
    /// RocksDB state store provider).
    Lsm,
    /// The LSM store in changelog mode (Flink's changelog state backend, Spark's RocksDB
    /// changelog checkpointing): a checkpoint uploads the changelog written since the last one,
    /// and runs only now and then (materialization).
    LsmChangelog,
}

/// What became of a window a closure was given by [`WindowStore::with_window`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Left as it was (a store that copies windows out need not write it back).
    Unchanged,
    /// Changed: to be written back.
    Changed,
    /// To be removed from the state (sessions and LSM windows only; heap tables leave whole).
    Removed,
}

/// Where the windows live. Every method that records something takes the operator's
/// [`WindowContext`]; the rules alone are enough for the others.
pub(super) trait WindowStore {
    /// Adds `u.change` to tumbling or sliding window `(u.key, u.start)`, creating it if needed,
    /// and fires it on arrival if `u.fired` (the window is known not to be late).
    fn update_window(&mut self, cx: &mut WindowContext, u: WindowUpdate<'_>, out: &mut impl Collector<WindowResult>);

    /// Adds each row of `run` to its key's window, in order: what [`WindowStore::update_window`]
    /// with each row (not fired) does. `fields` gives a row's key and aggregated value. A
    /// backend that can find the run's windows faster than one by one overrides it.
    #[inline]
    fn add_rows<R: WindowInput>(
        &mut self,
        cx: &mut WindowContext,
        run: RowRun<'_, R>,
        fields: impl Fn(&R) -> (i64, i64),
        out: &mut impl Collector<WindowResult>,
    ) {
        for row in run.rows {
            let (key, value) = fields(row);
            let update = WindowUpdate {
                key,
                start: run.start,
                end: run.end,
                fired: false,
                change: Contribution::Row {
                    value,
                    lineage: row.lineage(run.now),
                },
                now: run.now,
            };
            self.update_window(cx, update, out);
        }
    }

    /// Adds a record to its key's sessions, merging those it overlaps (not late).
    fn add_to_session(&mut self, cx: &mut WindowContext, r: SessionRecord, out: &mut impl Collector<WindowResult>);

    /// Advances to `watermark` (past the operator's): fires, in event-time order, every window
    /// it passes, and drops state past its cleanup point.
    fn advance_watermark(
        &mut self,
        cx: &mut WindowContext,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    );

    /// Applies `f` to window `(key, start)` if it is in state, and then writes it back or
    /// removes it as `f` says. `None` if the window is not in state.
    fn with_window<R>(
        &mut self,
        rules: Rules,
        key: i64,
        start: EventTime,
        f: impl FnOnce(&mut WindowState) -> (R, Fate),
    ) -> Option<R>;

    /// Emits every window, ordered by (key, start), and marks each clean (complete mode).
    fn emit_all(&mut self, rules: Rules, now: Nanos, out: &mut impl Collector<WindowResult>);

    /// Every window in state, ordered by (key, start).
    fn snapshot(&self) -> Vec<WindowEntry>;

    /// Replaces the state with `entries` (restore), registering their bookkeeping in `cx`;
    /// `into_store: false` when the store already holds them (an LSM store restored from its
    /// own checkpoint) and only the bookkeeping and counts are rebuilt.
    fn load(&mut self, cx: &mut WindowContext, entries: impl IntoIterator<Item = WindowEntry>, into_store: bool);

    /// Number of windows held.
    fn rows(&self) -> usize;

    /// Approximate bytes the windows take (timers not included).
    fn bytes(&self) -> usize;

    /// Which backend this is.
    fn kind(&self) -> StateBackendKind;

    /// The LSM store's counters and sizes; `None` on the heap.
    fn stats(&self) -> Option<StateStats>;

    /// Takes incremental checkpoint `id` into `root`; `None` on the heap, which snapshots in full.
    fn checkpoint_incremental(&mut self, id: u64, root: &Path) -> Option<crate::state::Result<CheckpointStats>>;

    /// Rebuilds the state from incremental checkpoint `id` in `root`, run with `watermark`.
    fn restore_incremental(
        &mut self,
        cx: &mut WindowContext,
        root: &Path,
        id: u64,
        watermark: EventTime,
    ) -> crate::state::Result<()>;
}

/// The backend an operator holds, chosen when it is built.
#[derive(Debug)]
pub(super) enum Backend {
    /// Column tables and session lists on the heap.
    Heap(HeapWindows),
    /// The LSM store.
    Lsm(LsmWindowStore),
}

/// Forwards a call to the backend held.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Backend::Heap($s) => $call,
            Backend::Lsm($s) => $call,
        }
    };
}

impl WindowStore for Backend {
    #[inline]
    fn update_window(&mut self, cx: &mut WindowContext, u: WindowUpdate<'_>, out: &mut impl Collector<WindowResult>) {
        forward!(self, s => s.update_window(cx, u, out))
    }

    #[inline]
    fn add_rows<R: WindowInput>(
        &mut self,
        cx: &mut WindowContext,
        run: RowRun<'_, R>,
        fields: impl Fn(&R) -> (i64, i64),
        out: &mut impl Collector<WindowResult>,
    ) {
        forward!(self, s => s.add_rows(cx, run, fields, out))
    }

    #[inline]
    fn add_to_session(&mut self, cx: &mut WindowContext, r: SessionRecord, out: &mut impl Collector<WindowResult>) {
        forward!(self, s => s.add_to_session(cx, r, out))
    }

    fn advance_watermark(
        &mut self,
        cx: &mut WindowContext,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        forward!(self, s => s.advance_watermark(cx, watermark, now, out))
    }

    fn with_window<R>(
        &mut self,
        rules: Rules,
        key: i64,
        start: EventTime,
        f: impl FnOnce(&mut WindowState) -> (R, Fate),
    ) -> Option<R> {
        forward!(self, s => s.with_window(rules, key, start, f))
    }

    fn emit_all(&mut self, rules: Rules, now: Nanos, out: &mut impl Collector<WindowResult>) {
        forward!(self, s => s.emit_all(rules, now, out))
    }

    fn snapshot(&self) -> Vec<WindowEntry> {
        forward!(self, s => s.snapshot())
    }

    fn load(&mut self, cx: &mut WindowContext, entries: impl IntoIterator<Item = WindowEntry>, into_store: bool) {
        forward!(self, s => s.load(cx, entries, into_store))
    }

    fn rows(&self) -> usize {
        forward!(self, s => s.rows())
    }

    fn bytes(&self) -> usize {
        forward!(self, s => s.bytes())
    }

    fn kind(&self) -> StateBackendKind {
        forward!(self, s => s.kind())
    }

    fn stats(&self) -> Option<StateStats> {
        forward!(self, s => s.stats())
    }

    fn checkpoint_incremental(&mut self, id: u64, root: &Path) -> Option<crate::state::Result<CheckpointStats>> {
        forward!(self, s => s.checkpoint_incremental(id, root))
    }

    fn restore_incremental(
        &mut self,
        cx: &mut WindowContext,
        root: &Path,
        id: u64,
        watermark: EventTime,
    ) -> crate::state::Result<()> {
        forward!(self, s => s.restore_incremental(cx, root, id, watermark))
    }
}
