//! The LSM backend of the window operator: its windows in an [`LsmStore`], RocksDB-style,
//! behind the same [`WindowStore`] seam as the heap.
//!
//! Only the windows themselves are kept in the store; timers, dirty lists and counters are
//! small and stay in memory (the operator's [`WindowContext`]), as in Flink's RocksDB backend
//! with heap timers. Every window on the store has its own timer.
//!
//! # Layout in the store
//!
//! * Tumbling and sliding windows: one entry per window, key = `key ‖ start` (16 bytes), each
//!   an `i64` with its sign bit flipped, big-endian, so byte order is `(key, start)` order.
//! * Session windows: one entry per grouping key (8 bytes, same encoding) holding the key's
//!   session list in the operator's order (the order decides merge tie-breaks, so it is kept).
//! * Values: the window's part of the [`WindowEntry`] encoding (end, lineage, flags,
//!   [`AggState`](crate::operators::aggregate::AggState), see `codec.rs`); a session list is a
//!   count followed by `(start, window)` pairs. Little-endian, like the checkpoint format.
//!
//! An update is get + decode + modify + encode + put (the RocksDB cost model); a removal is a
//! tombstone. Entries carry an expiry at their cleanup point (event-time TTL) when the operator
//! is certain to have removed them by then, so compaction can drop them; the store's watermark
//! is advanced after the operator's timers have run. Compaction runs in bounded steps every
//! [`COMPACT_EVERY_WRITES`] writes and after every watermark advance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::codec::{read_i64, WindowEntry, WindowState};
use super::context::{SessionRecord, WindowContext, WindowUpdate};
use super::semantics::{result, Rules};
use super::store::{Fate, StateBackendKind, WindowStore};
use crate::operators::{Collector, WindowResult};
use crate::state::{CheckpointStats, LsmOptions, LsmStore, Result, StateStats};
use crate::time::{EventTime, Nanos};

/// Writes between two bounded compaction steps.
pub const COMPACT_EVERY_WRITES: u64 = 1024;
/// Input bytes one compaction step may merge.
pub const COMPACT_STEP_BYTES: u64 = 256 << 10;

/// Distinguishes the scratch directories of operators in one process.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh, unique scratch directory path under the system temp directory.
pub(crate) fn temp_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("streamlab-window-state-{}-{n}", std::process::id()))
}

/// An `i64` as 8 bytes whose byte order is the integers' order.
#[inline]
fn ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// The window operator's state in an [`LsmStore`].
#[derive(Debug)]
pub(super) struct LsmWindows {
    store: LsmStore,
    /// Options, to reopen the store on restore.
    options: LsmOptions,
    /// Remove the working directory on drop (it was created for this operator).
    owns_dir: bool,
    /// Windows held (the store does not count its keys).
    pub(super) rows: usize,
    writes_since_compact: u64,
    /// Reused value buffer.
    value: Vec<u8>,
}

impl LsmWindows {
    /// A store working in `dir` (cleared of stale files); `owns_dir`: remove `dir` on drop.
    pub(super) fn open(dir: &Path, options: LsmOptions, owns_dir: bool) -> Result<Self> {
        let store = LsmStore::open(dir, options.clone())?;
        Ok(Self {
            store,
            options,
            owns_dir,
            rows: 0,
            writes_since_compact: 0,
            value: Vec::new(),
        })
    }

    /// Empties the store (restore): reopens it in its directory, which drops every run.
    pub(super) fn clear(&mut self) {
        let dir = self.store.dir().to_path_buf();
        self.store = check(LsmStore::open(&dir, self.options.clone()));
        self.rows = 0;
        self.writes_since_compact = 0;
    }

    /// Takes incremental checkpoint `id` of the store into `root`: runs already in the root
    /// are listed by reference, only new ones are written. A `chk-<id>` left in the root by an
    /// attempt that never completed (the job restarted from an earlier checkpoint and took
    /// this id again) is replaced.
    pub(super) fn checkpoint(&mut self, id: u64, root: &Path) -> Result<CheckpointStats> {
        let attempt = root.join(format!("chk-{id}"));
        if attempt.exists() {
            std::fs::remove_dir_all(&attempt).map_err(crate::state::io_at(&attempt))?;
        }
        self.store.checkpoint(id, root)
    }

    /// Replaces the store with checkpoint `id` of `root`, restored in the same working
    /// directory (every run verified); later checkpoints into `root` stay incremental.
    pub(super) fn restore_from(&mut self, root: &Path, id: u64) -> Result<()> {
        let dir = self.store.dir().to_path_buf();
        self.store = LsmStore::restore(root, id, &dir, self.options.clone())?;
        self.rows = 0;
        self.writes_since_compact = 0;
        Ok(())
    }

    /// Whether the store runs in changelog mode.
    pub(super) fn changelog(&self) -> bool {
        self.options.changelog
    }

    /// The store's counters and sizes.
    pub(super) fn stats(&self) -> StateStats {
        self.store.stats()
    }

    /// Makes entries expiring at or before `wm` invisible, then does a compaction step.
    pub(super) fn set_watermark(&mut self, wm: EventTime) {
        self.store.set_watermark(wm);
        self.compact();
    }

    fn compact(&mut self) {
        self.writes_since_compact = 0;
        check(self.store.compact_step(COMPACT_STEP_BYTES));
    }

    fn wrote(&mut self) {
        self.writes_since_compact += 1;
        if self.writes_since_compact >= COMPACT_EVERY_WRITES {
            self.compact();
        }
    }

    fn put(&mut self, key: &[u8], expiry: Option<EventTime>) {
        match expiry {
            Some(e) => check(self.store.put_expiring(key, &self.value, e)),
            None => check(self.store.put(key, &self.value)),
        }
        self.wrote();
    }

    fn delete(&mut self, key: &[u8]) {
        check(self.store.delete(key));
        self.wrote();
    }

    // --- tumbling and sliding windows -------------------------------------------------------

    fn window_key(key: i64, start: EventTime) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&ordered(key));
        k[8..].copy_from_slice(&ordered(start));
        k
    }

    /// The window `(key, start)`, if in state.
    pub(super) fn get_window(&self, key: i64, start: EventTime) -> Option<WindowState> {
        let bytes = check(self.store.get(&Self::window_key(key, start)))?;
        Some(decode_window(&bytes))
    }

    /// Writes the window `(key, start)`, visible until the watermark reaches `expiry`.
    pub(super) fn put_window(&mut self, key: i64, start: EventTime, w: &WindowState, expiry: Option<EventTime>) {
        self.value.clear();
        w.encode(&mut self.value);
        self.put(&Self::window_key(key, start), expiry);
    }

    /// Removes the window `(key, start)`.
    pub(super) fn delete_window(&mut self, key: i64, start: EventTime) {
        self.delete(&Self::window_key(key, start));
    }

    /// Every window, ordered by `(key, start)`.
    pub(super) fn all_windows(&self) -> Vec<(i64, EventTime, WindowState)> {
        check(self.store.scan())
            .into_iter()
            .map(|(k, v)| {
                let (key, start) = (unordered(&k[..8]), unordered(&k[8..16]));
                (key, start, decode_window(&v))
            })
            .collect()
    }

    // --- session windows --------------------------------------------------------------------

    /// The session list of `key` (empty if none).
    pub(super) fn get_sessions(&self, key: i64) -> Vec<(EventTime, WindowState)> {
        check(self.store.get(&ordered(key))).map_or_else(Vec::new, |bytes| decode_sessions(&bytes))
    }

    /// Writes the session list of `key` (a tombstone when it is empty).
    pub(super) fn put_sessions(&mut self, key: i64, list: &[(EventTime, WindowState)], expiry: Option<EventTime>) {
        if list.is_empty() {
            self.delete(&ordered(key));
            return;
        }
        self.value.clear();
        self.value.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for (start, w) in list {
            self.value.extend_from_slice(&start.to_le_bytes());
            w.encode(&mut self.value);
        }
        self.put(&ordered(key), expiry);
    }

    /// Every key's session list, ordered by key (each list in the operator's order).
    pub(super) fn all_sessions(&self) -> Vec<(i64, Vec<(EventTime, WindowState)>)> {
        check(self.store.scan())
            .into_iter()
            .map(|(k, v)| (unordered(&k[..8]), decode_sessions(&v)))
            .collect()
    }
}

impl LsmWindows {
    /// Every window the store holds, ordered by `(key, start)`.
    pub(super) fn entries(&self, session: bool) -> Vec<WindowEntry> {
        if !session {
            return self
                .all_windows()
                .into_iter()
                .map(|(key, start, state)| WindowEntry { key, start, state })
                .collect();
        }
        let mut all: Vec<WindowEntry> = self
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
}

impl Drop for LsmWindows {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(self.store.dir());
        }
    }
}

fn unordered(bytes: &[u8]) -> i64 {
    let b: [u8; 8] = bytes.try_into().expect("state key of 8 or 16 bytes");
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn decode_window(mut bytes: &[u8]) -> WindowState {
    let w = WindowState::decode(&mut bytes);
    match w {
        Some(w) if bytes.is_empty() => w,
        _ => panic!(
            "window state backend: undecodable window value ({} bytes left)",
            bytes.len()
        ),
    }
}

fn decode_sessions(mut bytes: &[u8]) -> Vec<(EventTime, WindowState)> {
    let input = &mut bytes;
    let list = (|| {
        let n = read_i64(input)? as usize;
        let mut list = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let start = read_i64(input)?;
            list.push((start, WindowState::decode(input)?));
        }
        input.is_empty().then_some(list)
    })();
    list.unwrap_or_else(|| panic!("window state backend: undecodable session list"))
}

/// The store works in a local scratch directory written by this process only: an error there
/// is a failed disk or a bug, and fails the task, as a RocksDB error fails a Flink task.
#[track_caller]
fn check<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("window state backend (LSM): {e}"))
}

/// A window loaded from the store, to be modified and written back.
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

/// The operator's windows on the LSM store: the [`WindowStore`] of the LSM backend. (The
/// mutex only makes the operator `Sync` — the store counts reads in `Cell`s; `&mut self`
/// paths take no lock.)
#[derive(Debug)]
pub(super) struct LsmWindowStore {
    store: Box<Mutex<LsmWindows>>,
    /// Session windows (one value per key) rather than one value per window.
    session: bool,
}

impl LsmWindowStore {
    /// A store of session (`session`) or other windows working in `dir`; see [`LsmWindows::open`].
    pub(super) fn open(dir: &Path, options: LsmOptions, owns_dir: bool, session: bool) -> Result<Self> {
        Ok(Self {
            store: Box::new(Mutex::new(LsmWindows::open(dir, options, owns_dir)?)),
            session,
        })
    }

    /// The store, without a lock.
    #[inline]
    fn get_mut(&mut self) -> &mut LsmWindows {
        self.store.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store, locked (for `&self` readers).
    fn lock(&self) -> std::sync::MutexGuard<'_, LsmWindows> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The window `(key, start)`, loaded for modification.
    fn load_window(&mut self, key: i64, start: EventTime) -> Option<Loaded> {
        let session = self.session;
        let lsm = self.get_mut();
        if session {
            let list = lsm.get_sessions(key);
            let at = list.iter().position(|(s, _)| *s == start)?;
            Some(Loaded::Session(list, at))
        } else {
            lsm.get_window(key, start).map(Loaded::Window)
        }
    }
}

impl WindowStore for LsmWindowStore {
    /// A get, modify and put; a window new to the store gets its timer.
    #[inline]
    fn update_window(&mut self, cx: &mut WindowContext, u: WindowUpdate<'_>, out: &mut impl Collector<WindowResult>) {
        let lsm = self.get_mut();
        let mut w = match lsm.get_window(u.key, u.start) {
            Some(w) => w,
            None => {
                lsm.rows += 1;
                cx.set_first_timer(u.key, u.start, u.end, u.fired);
                WindowState::new(u.end)
            }
        };
        let was_dirty = w.dirty;
        u.change.apply(cx.rules.func, &mut w);
        cx.note_update(u.key, u.start, was_dirty);
        if u.fired {
            cx.fire_on_arrival(u.key, u.start, &mut w, u.now, out);
        }
        lsm.put_window(u.key, u.start, &w, cx.rules.window_expiry(u.end));
    }

    /// Get the key's sessions, merge, put.
    fn add_to_session(&mut self, cx: &mut WindowContext, r: SessionRecord, out: &mut impl Collector<WindowResult>) {
        let lsm = self.get_mut();
        let mut list = lsm.get_sessions(r.key);
        let before = list.len();
        let (start, merged) = cx.merge_record(&mut list, r, out);
        list.push((start, merged));
        let expiry = cx.rules.sessions_expiry(&list);
        lsm.rows = lsm.rows + list.len() - before;
        lsm.put_sessions(r.key, &list, expiry);
        cx.note_session_merge(r.key, start);
    }

    /// Runs the due timers, then moves the store's TTL watermark: every window whose cleanup
    /// point the watermark reached is deleted by then, so the store may hide and drop whatever
    /// still carries such an expiry.
    fn advance_watermark(
        &mut self,
        cx: &mut WindowContext,
        watermark: EventTime,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) {
        cx.run_timers(self, watermark, now, out);
        self.get_mut().set_watermark(watermark);
    }

    fn with_window<R>(
        &mut self,
        rules: Rules,
        key: i64,
        start: EventTime,
        f: impl FnOnce(&mut WindowState) -> (R, Fate),
    ) -> Option<R> {
        let mut loaded = self.load_window(key, start)?;
        let (r, fate) = f(loaded.window());
        let lsm = self.get_mut();
        match (fate, loaded) {
            (Fate::Unchanged, _) => {}
            (Fate::Changed, Loaded::Window(w)) => lsm.put_window(key, start, &w, rules.window_expiry(w.end)),
            (Fate::Changed, Loaded::Session(list, _)) => lsm.put_sessions(key, &list, rules.sessions_expiry(&list)),
            (Fate::Removed, loaded) => {
                match loaded {
                    Loaded::Window(_) => lsm.delete_window(key, start),
                    Loaded::Session(mut list, at) => {
                        list.remove(at);
                        lsm.put_sessions(key, &list, rules.sessions_expiry(&list));
                    }
                }
                lsm.rows -= 1;
            }
        }
        Some(r)
    }

    /// One ordered scan; windows that were dirty are written back clean.
    fn emit_all(&mut self, rules: Rules, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let (func, session) = (rules.func, self.session);
        let lsm = self.get_mut();
        if !session {
            for (key, start, mut w) in lsm.all_windows() {
                let was_dirty = std::mem::replace(&mut w.dirty, false);
                out.collect(result(key, start, &w, func, now, true));
                if was_dirty {
                    lsm.put_window(key, start, &w, rules.window_expiry(w.end));
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
                lsm.put_sessions(key, &list, rules.sessions_expiry(&list));
            }
        }
    }

    fn snapshot(&self) -> Vec<WindowEntry> {
        self.lock().entries(self.session)
    }

    fn load(&mut self, cx: &mut WindowContext, entries: impl IntoIterator<Item = WindowEntry>, into_store: bool) {
        let (session, rules) = (self.session, cx.rules);
        let lsm = self.get_mut();
        if into_store {
            lsm.clear();
        }
        // Session lists gathered per key (in entry order, as the heap does).
        let mut lists: BTreeMap<i64, Vec<(EventTime, WindowState)>> = BTreeMap::new();
        for e in entries {
            cx.restored(&e, true);
            if session {
                lists.entry(e.key).or_default().push((e.start, e.state));
            } else {
                if into_store {
                    lsm.put_window(e.key, e.start, &e.state, rules.window_expiry(e.state.end));
                }
                lsm.rows += 1;
            }
        }
        for (key, list) in lists {
            lsm.rows += list.len();
            if into_store {
                lsm.put_sessions(key, &list, rules.sessions_expiry(&list));
            }
        }
    }

    fn rows(&self) -> usize {
        self.lock().rows
    }

    fn bytes(&self) -> usize {
        self.lock().stats().live_bytes as usize
    }

    fn kind(&self) -> StateBackendKind {
        if self.lock().changelog() {
            StateBackendKind::LsmChangelog
        } else {
            StateBackendKind::Lsm
        }
    }

    fn stats(&self) -> Option<StateStats> {
        Some(self.lock().stats())
    }

    fn checkpoint_incremental(&mut self, id: u64, root: &Path) -> Option<Result<CheckpointStats>> {
        Some(self.get_mut().checkpoint(id, root))
    }

    /// Adopts the restored store (so its next checkpoint stays incremental) and re-registers
    /// timers from its windows.
    fn restore_incremental(
        &mut self,
        cx: &mut WindowContext,
        root: &Path,
        id: u64,
        watermark: EventTime,
    ) -> Result<()> {
        self.get_mut().restore_from(root, id)?;
        let entries = self.snapshot();
        cx.reset(watermark);
        self.load(cx, entries, false);
        Ok(())
    }
}
