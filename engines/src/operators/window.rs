//! Keyed, windowed aggregation on heap or LSM state, with event-time timers and lateness rules.
//!
//! One operator serves both engines; what differs between Spark and Flink is captured in
//! [`TimeSemantics`] and [`EmitPolicy`]:
//!
//! * A window `[start, end)` **fires** when the watermark reaches `end - fire_lag`. Spark's
//!   watermark is `max − delay` and a window is final once `end <= watermark` (`fire_lag = 0`);
//!   Flink's is `max − bound − 1` and a window fires when `watermark >= end − 1`, its max
//!   timestamp (`fire_lag = 1`). With the same bound both fire at the same event.
//! * A window is **late** — it accepts no more records and its state is gone — once the
//!   watermark reaches its fire point plus `allowed_lateness` (Flink's `isWindowLate`; Spark has
//!   no allowed lateness, its `LessThanOrEqual(window.end, watermark)` eviction predicate).
//!   A record all of whose windows are late is dropped and counted; the caller sends it to a
//!   side output. Between the fire point and the cleanup point (Flink allowed lateness) a record
//!   still lands and the window fires again at once (a late firing).
//! * Session windows merge per key when a record's `[t, t + gap)` overlaps an existing session
//!   (half-open intervals: a record exactly `gap` after the last starts a new session).
//!
//! Invariant: the watermark only moves forward; every window in state has a pending fire point
//! (its own timer, or its table's) until it fires, and is removed at its cleanup point unless
//! the policy is [`EmitPolicy::Complete`], which keeps all state as Spark's complete mode does.
//! A window is fired exactly when the watermark has passed its fire point.
//!
//! The windows live on the heap (the default) or, with [`WindowedAggregation::with_backend`] /
//! [`WindowedAggregation::with_lsm`], in an LSM store (see `state/backend.rs`). On the heap,
//! tumbling and sliding windows sit in one column table per window start (see
//! `window/table.rs`), which fires and leaves the state as a whole, and session windows in a
//! list per key with a timer each; on the LSM store every window has its timer. Timers, dirty
//! lists and counters stay in memory either way, and both backends produce identical results,
//! snapshots and deltas.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::operators::aggregate::AggState;
use crate::operators::fxhash::{FxHashMap, FxHashSet};
use crate::operators::{Collector, Lineage, Row, WindowResult};
use crate::pipeline::{field_value, AggFunc, Aggregation, Field, WindowSpec};
use crate::state::{CheckpointStats, LsmOptions, StateStats};
use crate::time::{EventTime, Nanos};

// The LSM side of the state lives with the other state code but is a child of this module, so
// it can encode the private `WindowState`.
#[path = "../state/backend.rs"]
mod backend;

mod table;

use crate::operators::partial::Partial;
use backend::LsmWindows;
pub use backend::{StateBackendKind, COMPACT_EVERY_WRITES, COMPACT_STEP_BYTES};
use table::WindowTable;

/// Every window an LSM store holds, ordered by `(key, start)`.
fn lsm_entries(lsm: &LsmWindows, session: bool) -> Vec<WindowEntry> {
    if !session {
        return lsm
            .all_windows()
            .into_iter()
            .map(|(key, start, state)| WindowEntry { key, start, state })
            .collect();
    }
    let mut all: Vec<WindowEntry> = lsm
        .all_sessions()
        .into_iter()
        .flat_map(|(key, l)| {
            l.into_iter()
                .map(move |(start, state)| WindowEntry { key, start, state })
        })
        .collect();
    all.sort_unstable_by_key(|e| (e.key, e.start));
    all
}

/// Where a watermark puts a window's fire and cleanup points (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSemantics {
    /// A window fires when `watermark >= end - fire_lag`.
    pub fire_lag: i64,
    /// How long after firing a window still accepts records (ms).
    pub allowed_lateness: i64,
}

impl TimeSemantics {
    /// Spark Structured Streaming: final when `end <= watermark`, no allowed lateness.
    pub const SPARK: Self = Self {
        fire_lag: 0,
        allowed_lateness: 0,
    };

    /// Flink: fires at `end - 1` (the window's max timestamp), with `allowed_lateness` ms.
    pub fn flink(allowed_lateness: i64) -> Self {
        Self {
            fire_lag: 1,
            allowed_lateness,
        }
    }

    #[inline]
    fn fire_point(&self, end: EventTime) -> EventTime {
        end - self.fire_lag
    }

    #[inline]
    fn cleanup_point(&self, end: EventTime) -> EventTime {
        self.fire_point(end) + self.allowed_lateness
    }

    /// The TTL of a tumbling or sliding window in the LSM store: its cleanup point, where the
    /// operator's timers delete it anyway; none in complete mode, which never evicts.
    fn window_expiry(&self, policy: EmitPolicy, end: EventTime) -> Option<EventTime> {
        (policy != EmitPolicy::Complete).then(|| self.cleanup_point(end))
    }

    /// The TTL of a key's session list: the latest cleanup point in it. Only in update mode:
    /// with the event-time trigger a session that fires as it is created gets no timer and
    /// stays in state (heap behaviour, kept identical), so its list must not expire.
    fn sessions_expiry(&self, policy: EmitPolicy, list: &[(EventTime, WindowState)]) -> Option<EventTime> {
        if policy != EmitPolicy::OnUpdate {
            return None;
        }
        list.iter().map(|(_, w)| self.cleanup_point(w.end)).max()
    }
}

/// When results leave the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitPolicy {
    /// Once, when the watermark passes the window (Spark append mode, Flink's event-time
    /// trigger); late firings re-emit within allowed lateness.
    OnWatermark,
    /// Each window changed since the last [`WindowedAggregation::emit_updates`] (Spark update
    /// mode); windows are evicted silently when the watermark passes them.
    OnUpdate,
    /// Every window on each [`WindowedAggregation::emit_all`] (Spark complete mode); nothing is
    /// evicted and no record is late.
    Complete,
}

#[derive(Clone, Debug, PartialEq)]
struct WindowState {
    end: EventTime,
    agg: AggState,
    last: Lineage,
    fired: bool,
    dirty: bool,
}

impl WindowState {
    fn new(end: EventTime) -> Self {
        Self {
            end,
            agg: AggState::default(),
            last: Lineage::default(),
            fired: false,
            dirty: false,
        }
    }

    #[inline]
    fn add(&mut self, func: AggFunc, value: i64, lineage: Lineage) {
        self.agg.add(func, value);
        self.last.keep_latest(lineage);
        self.dirty = true;
    }

    /// Folds a partial aggregate whose latest record had lineage `last` (as if its records
    /// had been added one by one, in order).
    #[inline]
    fn merge(&mut self, func: AggFunc, agg: &AggState, last: Lineage) {
        self.agg.merge(func, agg.clone());
        self.last.keep_latest(last);
        self.dirty = true;
    }

    /// Appends the window's part of the [`WindowEntry`] encoding (all but key and start).
    fn encode(&self, out: &mut Vec<u8>) {
        let l = &self.last;
        for v in [
            self.end,
            l.arrival as i64,
            l.ingest as i64,
            l.handoff as i64,
            l.recv as i64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.fired) | (u8::from(self.dirty) << 1));
        self.agg.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let end = read_i64(input)?;
        let last = Lineage {
            arrival: read_i64(input)? as Nanos,
            ingest: read_i64(input)? as Nanos,
            handoff: read_i64(input)? as Nanos,
            recv: read_i64(input)? as Nanos,
        };
        let (flags, rest) = input.split_first()?;
        *input = rest;
        let agg = AggState::decode(input)?;
        Some(Self {
            end,
            agg,
            last,
            fired: flags & 1 != 0,
            dirty: flags & 2 != 0,
        })
    }
}

/// What an update adds to a window: one row, or a map-side partial aggregate of rows.
#[derive(Clone, Copy)]
enum Contribution<'a> {
    Row { value: i64, lineage: Lineage },
    Partial(&'a Partial),
}

impl Contribution<'_> {
    #[inline]
    fn apply(self, func: AggFunc, w: &mut WindowState) {
        match self {
            Contribution::Row { value, lineage } => w.add(func, value, lineage),
            Contribution::Partial(p) => w.merge(func, &p.agg, p.last),
        }
    }
}

/// A window loaded from the LSM store, to be modified and written back.
enum Loaded {
    Window(WindowState),
    /// A key's session list and the position of the session.
    Session(Vec<(EventTime, WindowState)>, usize),
}

impl Loaded {
    #[inline]
    fn window(&mut self) -> &mut WindowState {
        match self {
            Loaded::Window(w) => w,
            Loaded::Session(list, at) => &mut list[*at].1,
        }
    }
}

/// The LSM store of an operator's state, if it has one. A free function over the field, so
/// callers keep borrowing the other fields; `get_mut` takes no lock.
#[inline]
fn lsm_of(lsm: &mut Option<Box<Mutex<LsmWindows>>>) -> Option<&mut LsmWindows> {
    lsm.as_deref_mut()
        .map(|m| m.get_mut().unwrap_or_else(PoisonError::into_inner))
}

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
    semantics: TimeSemantics,
    policy: EmitPolicy,
    /// Heap backend: tumbling and sliding windows, one table per start, ordered by start (so
    /// also by fire and cleanup point). Empty with the LSM backend.
    tables: VecDeque<WindowTable>,
    /// Heap backend: session windows per key, unordered. Empty with the LSM backend.
    sessions: FxHashMap<i64, Vec<(EventTime, WindowState)>>,
    /// LSM backend: the windows, instead of `windows` and `sessions`. (The mutex only makes the
    /// operator `Sync` — the store counts reads in `Cell`s; `&mut self` paths take no lock.)
    lsm: Option<Box<Mutex<LsmWindows>>>,
    /// Pending fire and cleanup points of session windows and of windows on the LSM store:
    /// (watermark that triggers it, key, window start). Heap tables need none.
    timers: BinaryHeap<Reverse<(EventTime, i64, EventTime)>>,
    /// Windows changed since the last `emit_updates`, in change order.
    dirty: Vec<(i64, EventTime)>,
    watermark: EventTime,
    counters: StateCounters,
    /// Windows changed since the last [`WindowedAggregation::take_delta`], when tracking.
    changed: Option<FxHashSet<(i64, EventTime)>>,
    /// Windows removed since the last delta, when tracking.
    removed: Vec<(i64, EventTime)>,
    /// Session starts merged away by the current insert (reused, no allocation per record).
    merged_scratch: Vec<EventTime>,
    /// Slots of a table in emission order (reused).
    order: Vec<u32>,
    /// Heap tables' fire and cleanup points the watermark passed: (point, is cleanup, start)
    /// (reused).
    due: Vec<(EventTime, bool, EventTime)>,
}

/// One window of state as a checkpoint stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowEntry {
    /// Grouping key.
    pub key: i64,
    /// Window start.
    pub start: EventTime,
    state: WindowState,
}

/// What changed in an operator's state since the previous checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDelta {
    /// Windows created or changed, with their new contents.
    pub upserts: Vec<WindowEntry>,
    /// Windows removed: (key, start).
    pub deletes: Vec<(i64, EventTime)>,
}

impl StateDelta {
    /// Binary encoding: upsert count, entries, delete count, (key, start) pairs; little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.upserts.len() * 96 + self.deletes.len() * 16);
        out.extend_from_slice(&(self.upserts.len() as u64).to_le_bytes());
        for e in &self.upserts {
            e.encode(&mut out);
        }
        out.extend_from_slice(&(self.deletes.len() as u64).to_le_bytes());
        for (k, s) in &self.deletes {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads a delta written by [`StateDelta::encode`]; `None` if the bytes are not one.
    pub fn decode(mut input: &[u8]) -> Option<Self> {
        let input = &mut input;
        let n = read_i64(input)? as usize;
        let mut upserts = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            upserts.push(WindowEntry::decode(input)?);
        }
        let m = read_i64(input)? as usize;
        let mut deletes = Vec::with_capacity(m.min(1 << 20));
        for _ in 0..m {
            deletes.push((read_i64(input)?, read_i64(input)?));
        }
        input.is_empty().then_some(Self { upserts, deletes })
    }
}

fn read_i64(input: &mut &[u8]) -> Option<i64> {
    let (head, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(i64::from_le_bytes(*head))
}

impl WindowEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        self.state.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let key = read_i64(input)?;
        let start = read_i64(input)?;
        let state = WindowState::decode(input)?;
        Some(Self { key, start, state })
    }
}

impl WindowedAggregation {
    /// An empty operator for `spec` under the given time semantics and emit policy.
    pub fn new(spec: Aggregation, semantics: TimeSemantics, policy: EmitPolicy) -> Self {
        Self {
            spec,
            semantics,
            policy,
            tables: VecDeque::new(),
            sessions: FxHashMap::default(),
            lsm: None,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            watermark: EventTime::MIN,
            counters: StateCounters::default(),
            changed: None,
            removed: Vec::new(),
            merged_scratch: Vec::new(),
            order: Vec::new(),
            due: Vec::new(),
        }
    }

    /// The same operator with its state on `kind`: the heap (returned as is) or an LSM store in
    /// a fresh scratch directory under [`std::env::temp_dir`], unique to this operator and
    /// removed when it is dropped.
    pub fn with_backend(self, kind: StateBackendKind) -> crate::state::Result<Self> {
        match kind {
            StateBackendKind::Heap => Ok(self),
            StateBackendKind::Lsm => self.lsm_in(backend::temp_dir(), LsmOptions::default(), true),
            StateBackendKind::LsmChangelog => {
                let options = LsmOptions {
                    changelog: true,
                    ..LsmOptions::default()
                };
                self.lsm_in(backend::temp_dir(), options, true)
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
        drop(self.lsm.take());
        self.lsm = Some(Box::new(Mutex::new(LsmWindows::open(&dir, options, owns_dir)?)));
        let (dirty, changed, removed) = (
            std::mem::take(&mut self.dirty),
            self.changed.take(),
            std::mem::take(&mut self.removed),
        );
        self.rebuild(entries, self.watermark, true);
        (self.dirty, self.changed, self.removed) = (dirty, changed, removed);
        Ok(self)
    }

    /// Which backend holds the state.
    pub fn backend(&self) -> StateBackendKind {
        match self.lsm.as_deref() {
            Some(m) if m.lock().unwrap_or_else(PoisonError::into_inner).changelog() => StateBackendKind::LsmChangelog,
            Some(_) => StateBackendKind::Lsm,
            None => StateBackendKind::Heap,
        }
    }

    /// The LSM store's counters and sizes (bytes written by flushes, compaction and
    /// checkpoints; gets and puts); `None` on the heap backend.
    pub fn state_stats(&self) -> Option<StateStats> {
        self.lsm
            .as_deref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).stats())
    }

    #[inline]
    fn is_session(&self) -> bool {
        matches!(self.spec.window, WindowSpec::Session { .. })
    }

    /// LSM backend: the window `(key, start)`, loaded for modification.
    fn lsm_load(&mut self, key: i64, start: EventTime) -> Option<Loaded> {
        let is_session = self.is_session();
        let lsm = lsm_of(&mut self.lsm)?;
        if is_session {
            let list = lsm.get_sessions(key);
            let at = list.iter().position(|(s, _)| *s == start)?;
            Some(Loaded::Session(list, at))
        } else {
            lsm.get_window(key, start).map(Loaded::Window)
        }
    }

    /// LSM backend: writes back a window loaded with [`Self::lsm_load`].
    fn lsm_store(&mut self, key: i64, start: EventTime, loaded: Loaded) {
        let (semantics, policy) = (self.semantics, self.policy);
        let Some(lsm) = lsm_of(&mut self.lsm) else { return };
        match loaded {
            Loaded::Window(w) => lsm.put_window(key, start, &w, semantics.window_expiry(policy, w.end)),
            Loaded::Session(list, _) => lsm.put_sessions(key, &list, semantics.sessions_expiry(policy, &list)),
        }
    }

    /// LSM backend: removes a window loaded with [`Self::lsm_load`] (as `remove_session` does
    /// on the heap).
    fn lsm_remove(&mut self, key: i64, start: EventTime, loaded: Loaded) {
        self.mark_removed(key, start);
        let (semantics, policy) = (self.semantics, self.policy);
        if let Some(lsm) = lsm_of(&mut self.lsm) {
            match loaded {
                Loaded::Window(_) => lsm.delete_window(key, start),
                Loaded::Session(mut list, at) => {
                    list.remove(at);
                    lsm.put_sessions(key, &list, semantics.sessions_expiry(policy, &list));
                }
            }
            lsm.rows -= 1;
        }
        self.counters.rows_removed += 1;
    }

    /// A copy of the window `(key, start)`, from either backend.
    fn window_owned(&mut self, key: i64, start: EventTime) -> Option<WindowState> {
        if self.lsm.is_some() {
            return self
                .lsm_load(key, start)
                .map(|mut l| std::mem::replace(l.window(), WindowState::new(0)));
        }
        if self.is_session() {
            return self
                .sessions
                .get(&key)?
                .iter()
                .find(|(s, _)| *s == start)
                .map(|(_, w)| w.clone());
        }
        let t = self.table(start)?;
        t.find(key).map(|slot| t.get(slot))
    }

    /// Heap backend: the table of windows starting at `start`, if any.
    fn table(&self, start: EventTime) -> Option<&WindowTable> {
        self.table_index(start).map(|at| &self.tables[at])
    }

    /// Heap backend: the position of the table of windows starting at `start`, if any.
    fn table_index(&self, start: EventTime) -> Option<usize> {
        let at = self.tables.partition_point(|t| t.start < start);
        (self.tables.get(at)?.start == start).then_some(at)
    }

    /// Heap backend: the position of the table of windows `[start, end)`, created (fired if
    /// `fired`) if missing.
    #[inline]
    fn table_at(&mut self, start: EventTime, end: EventTime, fired: bool) -> usize {
        // Most rows fall in the newest windows.
        let last = self.tables.len().wrapping_sub(1);
        if self.tables.back().is_some_and(|t| t.start == start) {
            return last;
        }
        let at = self.tables.partition_point(|t| t.start < start);
        if self.tables.get(at).is_none_or(|t| t.start != start) {
            self.tables
                .insert(at, WindowTable::new(start, end, self.spec.function, fired));
        }
        at
    }

    /// Applies `f` to the window `(key, start)` on either backend, if it is in state; `f`
    /// returns whether it changed the window (the LSM store writes back only then).
    fn modify_window(&mut self, key: i64, start: EventTime, f: impl FnOnce(&mut WindowState) -> bool) {
        if self.lsm.is_some() {
            if let Some(mut loaded) = self.lsm_load(key, start) {
                if f(loaded.window()) {
                    self.lsm_store(key, start, loaded);
                }
            }
        } else if self.is_session() {
            if let Some(w) = self.session_mut(key, start) {
                f(w);
            }
        } else if let Some(at) = self.table_index(start) {
            let t = &mut self.tables[at];
            if let Some(slot) = t.find(key) {
                let mut w = t.load(slot);
                f(&mut w);
                t.store(slot, w);
            }
        }
    }

    /// Starts tracking changes for incremental checkpoints ([`WindowedAggregation::take_delta`]).
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Default::default);
    }

    #[inline]
    fn mark_changed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.insert((key, start));
        }
    }

    fn mark_removed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.remove(&(key, start));
            self.removed.push((key, start));
        }
    }

    /// The changes since the previous call (or since tracking started), in a deterministic order.
    pub fn take_delta(&mut self) -> StateDelta {
        let Some(changed) = self.changed.as_mut() else {
            return StateDelta::default();
        };
        let mut keys: Vec<(i64, EventTime)> = changed.drain().collect();
        keys.sort_unstable();
        let upserts = keys
            .into_iter()
            .filter_map(|(key, start)| {
                let state = self.window_owned(key, start)?;
                Some(WindowEntry { key, start, state })
            })
            .collect();
        let mut deletes = std::mem::take(&mut self.removed);
        deletes.sort_unstable();
        deletes.dedup();
        StateDelta { upserts, deletes }
    }

    /// Every window in state, ordered by (key, start): a full snapshot.
    pub fn snapshot(&self) -> Vec<WindowEntry> {
        if let Some(m) = self.lsm.as_deref() {
            let lsm = m.lock().unwrap_or_else(PoisonError::into_inner);
            return lsm_entries(&lsm, self.is_session());
        }
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
            .chain(self.sessions.iter().flat_map(|(&key, l)| {
                l.iter().map(move |(start, w)| WindowEntry {
                    key,
                    start: *start,
                    state: w.clone(),
                })
            }))
            .collect();
        all.sort_unstable_by_key(|e| (e.key, e.start));
        all
    }

    /// LSM backend: takes incremental checkpoint `id` of the store into the checkpoint root
    /// `root` (Flink's incremental RocksDB checkpoint: runs the root already holds are
    /// referenced, only new ones written). `None` on the heap backend, which snapshots in full.
    pub fn checkpoint_incremental(&mut self, id: u64, root: &Path) -> Option<crate::state::Result<CheckpointStats>> {
        lsm_of(&mut self.lsm).map(|lsm| lsm.checkpoint(id, root))
    }

    /// Rebuilds the state from incremental checkpoint `id` in `root` and the watermark the
    /// checkpoint ran with. The LSM backend adopts the restored store (so its next checkpoint
    /// stays incremental) and re-registers timers from its windows; the heap backend loads them.
    pub fn restore_incremental(&mut self, root: &Path, id: u64, watermark: EventTime) -> crate::state::Result<()> {
        match lsm_of(&mut self.lsm) {
            Some(lsm) => {
                lsm.restore_from(root, id)?;
                let entries = self.snapshot();
                self.rebuild(entries, watermark, false);
            }
            None => {
                let mut scratch = LsmWindows::open(&backend::temp_dir(), LsmOptions::default(), true)?;
                scratch.restore_from(root, id)?;
                let entries = lsm_entries(&scratch, self.is_session());
                self.restore(entries, watermark);
            }
        }
        Ok(())
    }

    /// Rebuilds the state from checkpointed windows and the watermark the checkpoint ran
    /// with; timers are re-registered for every window not yet past its cleanup point.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = WindowEntry>, watermark: EventTime) {
        self.rebuild(entries, watermark, true);
    }

    /// [`Self::restore`]; `into_store: false` when the LSM store already holds `entries`
    /// (restored from its own checkpoint) and only the timers and counts are rebuilt.
    fn rebuild(&mut self, entries: impl IntoIterator<Item = WindowEntry>, watermark: EventTime, into_store: bool) {
        self.tables.clear();
        self.sessions.clear();
        if into_store {
            if let Some(lsm) = lsm_of(&mut self.lsm) {
                lsm.clear();
            }
        }
        self.timers.clear();
        self.dirty.clear();
        self.removed.clear();
        if let Some(c) = &mut self.changed {
            c.clear();
        }
        self.watermark = watermark;
        let is_session = self.is_session();
        let has_timers = is_session || self.lsm.is_some();
        let (semantics, policy) = (self.semantics, self.policy);
        // LSM backend: session lists gathered per key (in entry order, as the heap does).
        let mut lists: BTreeMap<i64, Vec<(EventTime, WindowState)>> = BTreeMap::new();
        for e in entries {
            let point = if e.state.fired {
                self.semantics.cleanup_point(e.state.end)
            } else {
                self.semantics.fire_point(e.state.end)
            };
            if has_timers && (self.policy != EmitPolicy::Complete || !e.state.fired) {
                self.timers.push(Reverse((point, e.key, e.start)));
            }
            if e.state.dirty && self.policy == EmitPolicy::OnUpdate {
                self.dirty.push((e.key, e.start));
            }
            if let Some(lsm) = lsm_of(&mut self.lsm) {
                if is_session {
                    lists.entry(e.key).or_default().push((e.start, e.state));
                } else {
                    if into_store {
                        lsm.put_window(e.key, e.start, &e.state, semantics.window_expiry(policy, e.state.end));
                    }
                    lsm.rows += 1;
                }
            } else if is_session {
                self.sessions.entry(e.key).or_default().push((e.start, e.state));
            } else {
                // A table has fired once all its windows have.
                let at = self.table_at(e.start, e.state.end, true);
                let table = &mut self.tables[at];
                table.fired &= e.state.fired;
                let (slot, _) = table.slot(e.key);
                table.store(slot, e.state);
            }
        }
        if let Some(lsm) = lsm_of(&mut self.lsm) {
            for (key, list) in lists {
                lsm.rows += list.len();
                if into_store {
                    lsm.put_sessions(key, &list, semantics.sessions_expiry(policy, &list));
                }
            }
        }
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
        !self.is_session()
    }

    /// Whether a window ending at `end` is late once the watermark reaches `watermark` (or
    /// this operator's, if later): its rows are dropped.
    #[inline]
    pub fn late_under(&self, end: EventTime, watermark: EventTime) -> bool {
        self.policy != EmitPolicy::Complete && self.watermark.max(watermark) >= self.semantics.cleanup_point(end)
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

    /// The operator's current watermark.
    pub fn watermark(&self) -> EventTime {
        self.watermark
    }

    /// Number of windows held in state.
    pub fn state_rows(&self) -> usize {
        if let Some(m) = self.lsm.as_deref() {
            return m.lock().unwrap_or_else(PoisonError::into_inner).rows;
        }
        self.tables.iter().map(WindowTable::len).sum::<usize>() + self.sessions.values().map(Vec::len).sum::<usize>()
    }

    /// Approximate bytes of the state: on the heap, the window tables' allocations and an
    /// estimate of the session lists; on the LSM backend, the store's live bytes (memtable and
    /// run files). Timers (in memory either way) are added at 24 bytes each.
    pub fn state_bytes(&self) -> usize {
        if let Some(stats) = self.state_stats() {
            return stats.live_bytes as usize + self.timers.len() * 24;
        }
        let per_session = std::mem::size_of::<(EventTime, WindowState)>();
        let sessions: usize = self
            .sessions
            .values()
            .map(|l| 8 + l.capacity() * per_session + l.iter().map(|(_, w)| w.agg.heap_bytes()).sum::<usize>())
            .sum();
        self.tables.iter().map(WindowTable::heap_bytes).sum::<usize>() + sessions + self.timers.len() * 24
    }

    /// Takes and resets the counters.
    pub fn take_counters(&mut self) -> StateCounters {
        std::mem::take(&mut self.counters)
    }

    fn late(&self, end: EventTime) -> bool {
        self.late_under(end, self.watermark)
    }

    fn fired(&self, end: EventTime) -> bool {
        self.watermark >= self.semantics.fire_point(end)
    }

    /// Adds a row to all its windows. Returns `false` when every window was late and the row
    /// was dropped (the caller routes it to the side output). A late firing (Flink allowed
    /// lateness) emits into `out` at once, stamped `now`.
    #[inline]
    pub fn insert(&mut self, row: &Row, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        let key = self.key_of(row);
        let value = self.value_of(row);
        let t = row.event.event_time;
        let accepted = match self.spec.window {
            WindowSpec::Session { gap } => self.add_to_session(key, t, gap.whole_ms(), value, row.lineage, now, out),
            _ => {
                let (first, last, step, size) = self.window_range(t);
                let mut any = false;
                let mut start = first;
                while start <= last {
                    any |= self.add_to_window(key, start, start + size, value, row.lineage, now, out);
                    start += step;
                }
                any
            }
        };
        if !accepted {
            self.counters.late_dropped += 1;
        }
        accepted
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn add_to_window(
        &mut self,
        key: i64,
        start: EventTime,
        end: EventTime,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) -> bool {
        self.update_window(key, start, end, now, out, Contribution::Row { value, lineage })
    }

    /// Folds a map-side partial aggregate into its window (the final aggregation after the
    /// exchange). Returns `false` when the window was late and the partial dropped.
    #[inline]
    pub fn merge_partial(&mut self, p: &Partial, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        let accepted = self.update_window(p.key, p.start, p.end, now, out, Contribution::Partial(p));
        if !accepted {
            self.counters.late_dropped += p.agg.count;
        }
        accepted
    }

    /// Adds `change` to window `(key, start)`, creating it if needed: the one update path of
    /// rows and partial aggregates, on either backend (on the LSM store a get, modify and put;
    /// on the heap an update in the start's table).
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
        if self.late(end) {
            return false;
        }
        let fired = self.fired(end);
        let (semantics, policy) = (self.semantics, self.policy);
        if let Some(lsm) = lsm_of(&mut self.lsm) {
            let mut w = match lsm.get_window(key, start) {
                Some(w) => w,
                None => {
                    lsm.rows += 1;
                    // Its fire point, or if that has passed (it fires on arrival below) its
                    // cleanup point; complete mode keeps fired windows for good.
                    let timer = match (fired, policy) {
                        (false, _) => Some(semantics.fire_point(end)),
                        (true, EmitPolicy::Complete) => None,
                        (true, _) => Some(semantics.cleanup_point(end)),
                    };
                    if let Some(point) = timer {
                        self.timers.push(Reverse((point, key, start)));
                    }
                    WindowState::new(end)
                }
            };
            let was_dirty = w.dirty;
            change.apply(self.spec.function, &mut w);
            self.note_update(key, start, was_dirty);
            if fired {
                self.fire_on_arrival(key, start, &mut w, now, out);
            }
            if let Some(lsm) = lsm_of(&mut self.lsm) {
                lsm.put_window(key, start, &w, semantics.window_expiry(policy, end));
            }
            return true;
        }
        let at = self.table_at(start, end, fired);
        let table = &mut self.tables[at];
        let (slot, _) = table.slot(key);
        let was_dirty = table.is_dirty(slot);
        match change {
            Contribution::Row { value, lineage } => table.add(slot, value, lineage),
            Contribution::Partial(_) => {
                let mut w = table.load(slot);
                change.apply(self.spec.function, &mut w);
                table.store(slot, w);
            }
        }
        self.note_update(key, start, was_dirty);
        if fired {
            let mut w = self.tables[at].load(slot);
            self.fire_on_arrival(key, start, &mut w, now, out);
            self.tables[at].store(slot, w);
        }
        true
    }

    /// The bookkeeping of an update to window `(key, start)`: counters, change tracking and the
    /// dirty list.
    #[inline]
    fn note_update(&mut self, key: i64, start: EventTime, was_dirty: bool) {
        self.counters.rows_updated += 1;
        self.mark_changed(key, start);
        if self.policy == EmitPolicy::OnUpdate && !was_dirty {
            self.dirty.push((key, start));
        }
    }

    /// An update to a window whose fire point the watermark has passed (within allowed
    /// lateness) fires it at once, as Flink's `EventTimeTrigger` does: a window already fired
    /// fires again (a late firing, an update); a window new to the state fires for the first time.
    fn fire_on_arrival(
        &mut self,
        key: i64,
        start: EventTime,
        w: &mut WindowState,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        let first = !std::mem::replace(&mut w.fired, true);
        if self.policy == EmitPolicy::OnWatermark {
            w.dirty = false;
            out.collect(result(key, start, w, self.spec.function, now, !first));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_to_session(
        &mut self,
        key: i64,
        t: EventTime,
        gap: i64,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) -> bool {
        if self.late(t + gap) {
            return false;
        }
        if self.lsm.is_some() {
            return self.add_to_session_lsm(key, t, gap, value, lineage, now, out);
        }
        let list = self.sessions.entry(key).or_default();
        let (start, mut merged) = merge_sessions(list, &mut self.merged_scratch, self.spec.function, t, gap);
        self.settle_session(key, start, &mut merged, value, lineage, now, out);
        self.sessions
            .get_mut(&key)
            .expect("the key's sessions were just merged")
            .push((start, merged));
        self.note_session_merge(key, start);
        true
    }

    /// [`Self::add_to_session`] on the LSM backend: get the key's sessions, merge, put.
    #[allow(clippy::too_many_arguments)]
    fn add_to_session_lsm(
        &mut self,
        key: i64,
        t: EventTime,
        gap: i64,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) -> bool {
        let Some(lsm) = lsm_of(&mut self.lsm) else { return false };
        let mut list = lsm.get_sessions(key);
        let before = list.len();
        let (start, mut merged) = merge_sessions(&mut list, &mut self.merged_scratch, self.spec.function, t, gap);
        self.settle_session(key, start, &mut merged, value, lineage, now, out);
        list.push((start, merged));
        let expiry = self.semantics.sessions_expiry(self.policy, &list);
        let Some(lsm) = lsm_of(&mut self.lsm) else { return false };
        lsm.rows = lsm.rows + list.len() - before;
        lsm.put_sessions(key, &list, expiry);
        self.note_session_merge(key, start);
        true
    }

    /// A row added to session `start` of `key` (just merged, on either backend): counts the
    /// update, fires the session at once if the watermark has already passed its end (within
    /// allowed lateness) and sets its timer.
    #[allow(clippy::too_many_arguments)]
    fn settle_session(
        &mut self,
        key: i64,
        start: EventTime,
        merged: &mut WindowState,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        let func = self.spec.function;
        let (end, was_fired) = (merged.end, merged.fired);
        merged.add(func, value, lineage);
        self.counters.rows_updated += 1;
        let fired = self.watermark >= self.semantics.fire_point(end);
        if fired && self.policy == EmitPolicy::OnWatermark {
            merged.dirty = false;
            merged.fired = true;
            out.collect(result(key, start, merged, func, now, was_fired));
            // Fired on arrival (within allowed lateness): it still leaves state at its cleanup point.
            self.timers
                .push(Reverse((self.semantics.cleanup_point(end), key, start)));
        } else {
            self.timers.push(Reverse((self.semantics.fire_point(end), key, start)));
        }
        if self.policy == EmitPolicy::OnUpdate {
            self.dirty.push((key, start));
        }
    }

    /// After a merge into session `start` of `key`: the changelog records the sessions merged
    /// away as removed and the merged one as changed.
    fn note_session_merge(&mut self, key: i64, start: EventTime) {
        if self.changed.is_some() {
            let merged_away = std::mem::take(&mut self.merged_scratch);
            for &s in merged_away.iter().filter(|&&s| s != start) {
                self.mark_removed(key, s);
            }
            self.mark_changed(key, start);
            self.merged_scratch = merged_away;
        }
        self.merged_scratch.clear();
    }

    /// Advances the watermark to `watermark` (never backwards) and fires, in event-time order,
    /// every window it passes; state past its cleanup point is dropped.
    pub fn advance_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut impl Collector<WindowResult>) {
        if watermark <= self.watermark {
            return;
        }
        if !self.is_session() && self.lsm.is_none() {
            return self.advance_tables(watermark, now, out);
        }
        self.advance_timers(watermark, now, out);
    }

    /// [`Self::advance_watermark`] for windows with timers of their own (heap sessions, and
    /// every window on the LSM store): due timers are taken in event-time order; each window
    /// is loaded, fired or cleaned up, and written back or removed. Then the LSM store's TTL
    /// watermark moves.
    fn advance_timers(&mut self, watermark: EventTime, now: Nanos, out: &mut impl Collector<WindowResult>) {
        self.watermark = watermark;
        let firing = Firing {
            semantics: self.semantics,
            policy: self.policy,
            func: self.spec.function,
            watermark,
            now,
        };
        while let Some(&Reverse((point, key, start))) = self.timers.peek() {
            if point > watermark {
                break;
            }
            self.timers.pop();
            let mut loaded = None;
            let step = if self.lsm.is_some() {
                let Some(l) = self.lsm_load(key, start) else { continue };
                firing.on_timer(point, key, start, loaded.insert(l).window(), out)
            } else {
                let Some(w) = self.session_mut(key, start) else {
                    continue;
                };
                firing.on_timer(point, key, start, w, out)
            };
            let Some(step) = step else { continue };
            if step.newly_fired {
                self.mark_changed(key, start);
            }
            match (step.then, loaded) {
                (AfterTimer::Remove, Some(l)) => self.lsm_remove(key, start, l),
                (AfterTimer::Remove, None) => self.remove_session(key, start),
                (_, Some(l)) if step.newly_fired => self.lsm_store(key, start, l),
                _ => {}
            }
            if let AfterTimer::KeepUntil(point) = step.then {
                self.timers.push(Reverse((point, key, start)));
            }
        }
        // Every window whose cleanup point the watermark reached is deleted by now, so the
        // store may hide and drop whatever still carries such an expiry.
        if let Some(lsm) = lsm_of(&mut self.lsm) {
            lsm.set_watermark(watermark);
        }
    }

    /// [`Self::advance_watermark`] on heap tables. Each table has two points: at its fire point
    /// its windows fire (those not fired on arrival), in key order; at its cleanup point (never,
    /// in complete mode) it leaves the state, in update mode with its pending updates. The
    /// points the watermark passed are taken in event-time order, as a timer service would
    /// (a fire before a cleanup at the same point).
    fn advance_tables(&mut self, watermark: EventTime, now: Nanos, out: &mut impl Collector<WindowResult>) {
        self.watermark = watermark;
        let (semantics, policy) = (self.semantics, self.policy);
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
                self.clean_up_table(table, now, out);
            } else {
                self.fire_table(at, now, out);
            }
        }
        self.due = due;
    }

    /// Fires the windows of table `at` that have not fired yet, in key order.
    fn fire_table(&mut self, at: usize, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let (func, policy) = (self.spec.function, self.policy);
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
            if let Some(c) = &mut self.changed {
                c.insert((key, table.start));
            }
        }
    }

    /// A table past its cleanup point leaves the state; in update mode its windows' pending
    /// updates leave with it, in key order, never silently.
    fn clean_up_table(&mut self, mut table: WindowTable, now: Nanos, out: &mut impl Collector<WindowResult>) {
        if self.policy == EmitPolicy::OnUpdate {
            table.slots_by_key(&mut self.order, WindowTable::is_dirty);
            for &slot in &self.order {
                let mut w = table.load(slot);
                w.dirty = false;
                out.collect(result(table.key(slot), table.start, &w, self.spec.function, now, true));
            }
        }
        for slot in 0..table.len() as u32 {
            self.mark_removed(table.key(slot), table.start);
        }
        self.counters.rows_removed += table.len() as u64;
    }

    /// Heap backend: session `start` of `key`.
    fn session_mut(&mut self, key: i64, start: EventTime) -> Option<&mut WindowState> {
        self.sessions
            .get_mut(&key)?
            .iter_mut()
            .find(|(s, _)| *s == start)
            .map(|(_, w)| w)
    }

    /// Heap backend: removes session `start` of `key`.
    fn remove_session(&mut self, key: i64, start: EventTime) {
        self.mark_removed(key, start);
        if let Some(list) = self.sessions.get_mut(&key) {
            list.retain(|(s, _)| *s != start);
            if list.is_empty() {
                self.sessions.remove(&key);
            }
        }
        self.counters.rows_removed += 1;
    }

    /// Emits each window changed since the last call, in change order (update mode).
    pub fn emit_updates(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let func = self.spec.function;
        let dirty = std::mem::take(&mut self.dirty);
        for &(key, start) in &dirty {
            self.modify_window(key, start, |w| {
                let was_dirty = std::mem::replace(&mut w.dirty, false);
                if was_dirty {
                    out.collect(result(key, start, w, func, now, true));
                }
                was_dirty
            });
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Emits every window in state, ordered by (key, start) (complete mode).
    pub fn emit_all(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let func = self.spec.function;
        if self.lsm.is_some() {
            return self.emit_all_lsm(now, out);
        }
        if self.is_session() {
            let mut all: Vec<(i64, EventTime, &mut WindowState)> = self
                .sessions
                .iter_mut()
                .flat_map(|(&k, l)| l.iter_mut().map(move |(s, w)| (k, *s, w)))
                .collect();
            all.sort_unstable_by_key(|(k, s, _)| (*k, *s));
            for (k, s, w) in all {
                w.dirty = false;
                out.collect(result(k, s, w, func, now, true));
            }
            return;
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
}

impl WindowedAggregation {
    /// [`Self::emit_all`] on the LSM backend: one ordered scan; windows that were dirty are
    /// written back clean.
    fn emit_all_lsm(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let (func, semantics, policy) = (self.spec.function, self.semantics, self.policy);
        let is_session = self.is_session();
        let Some(lsm) = lsm_of(&mut self.lsm) else { return };
        if !is_session {
            for (key, start, mut w) in lsm.all_windows() {
                let was_dirty = std::mem::replace(&mut w.dirty, false);
                out.collect(result(key, start, &w, func, now, true));
                if was_dirty {
                    lsm.put_window(key, start, &w, semantics.window_expiry(policy, w.end));
                }
            }
            return;
        }
        let mut order: Vec<usize> = Vec::new();
        for (key, mut list) in lsm.all_sessions() {
            order.clear();
            order.extend(0..list.len());
            order.sort_unstable_by_key(|&i| list[i].0);
            let mut any_dirty = false;
            for &i in &order {
                let (start, w) = &mut list[i];
                any_dirty |= std::mem::replace(&mut w.dirty, false);
                out.collect(result(key, *start, w, func, now, true));
            }
            if any_dirty {
                lsm.put_sessions(key, &list, semantics.sessions_expiry(policy, &list));
            }
        }
    }
}

/// What a due timer needs to know: the rules, the watermark it runs under, the time it is.
struct Firing {
    semantics: TimeSemantics,
    policy: EmitPolicy,
    func: AggFunc,
    watermark: EventTime,
    now: Nanos,
}

/// What a due timer did to its window.
struct TimerStep {
    /// The window fired for the first time.
    newly_fired: bool,
    /// What becomes of the window.
    then: AfterTimer,
}

/// Where a window goes after its timer ran.
#[derive(Clone, Copy)]
enum AfterTimer {
    /// It leaves the state (its cleanup point).
    Remove,
    /// It stays for good (complete mode keeps fired windows).
    Keep,
    /// It stays until its cleanup timer at this point, to be set.
    KeepUntil(EventTime),
}

impl Firing {
    /// Runs the timer at `point` of window `(key, start)`: fires it if the watermark passed its
    /// fire point and it has not fired; removes it at its cleanup point (with its pending
    /// update in update mode, never silently), else asks for its cleanup timer. `None` for a
    /// stale timer (a session that grew after it was set; a newer timer exists).
    fn on_timer(
        &self,
        point: EventTime,
        key: i64,
        start: EventTime,
        w: &mut WindowState,
        out: &mut impl Collector<WindowResult>,
    ) -> Option<TimerStep> {
        let (fire_point, cleanup_point) = (self.semantics.fire_point(w.end), self.semantics.cleanup_point(w.end));
        if fire_point > self.watermark {
            return None;
        }
        let newly_fired = !w.fired;
        if newly_fired {
            w.fired = true;
            if self.policy == EmitPolicy::OnWatermark {
                w.dirty = false;
                out.collect(result(key, start, w, self.func, self.now, false));
            }
        }
        let then = match self.policy {
            EmitPolicy::Complete => AfterTimer::Keep,
            _ if cleanup_point <= point => {
                if self.policy == EmitPolicy::OnUpdate && w.dirty {
                    w.dirty = false;
                    out.collect(result(key, start, w, self.func, self.now, true));
                }
                AfterTimer::Remove
            }
            // Taken later in this walk if the watermark passed it too.
            _ => AfterTimer::KeepUntil(cleanup_point),
        };
        Some(TimerStep { newly_fired, then })
    }
}

/// Removes from `list` every session that `[t, t + gap)` overlaps (recording their starts in
/// `merged_away`) and returns the merged session's start and state (not yet holding `t`'s
/// record; `fired` if any merged session had fired).
#[inline]
fn merge_sessions(
    list: &mut Vec<(EventTime, WindowState)>,
    merged_away: &mut Vec<EventTime>,
    func: AggFunc,
    t: EventTime,
    gap: i64,
) -> (EventTime, WindowState) {
    let (mut start, mut end) = (t, t + gap);
    let mut merged = WindowState::new(end);
    let mut was_fired = false;
    let mut i = 0;
    while i < list.len() {
        let (s, w) = &list[i];
        if *s < end && t < w.end {
            let (s, w) = list.swap_remove(i);
            merged_away.push(s);
            start = start.min(s);
            end = end.max(w.end);
            was_fired |= w.fired;
            merged.last.keep_latest(w.last);
            merged.agg.merge(func, w.agg);
        } else {
            i += 1;
        }
    }
    merged.end = end;
    merged.fired = was_fired;
    (start, merged)
}

fn result(key: i64, start: EventTime, w: &WindowState, func: AggFunc, now: Nanos, is_update: bool) -> WindowResult {
    WindowResult {
        key,
        start,
        end: w.end,
        count: w.agg.count,
        value: w.agg.value(func),
        origin: w.last,
        fired_at: now,
        handoff: now,
        recv: now,
        is_update,
    }
}
