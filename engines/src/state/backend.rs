//! Where a [`WindowedAggregation`](super::WindowedAggregation)'s keyed window state lives: on
//! the heap (column tables and session lists, the default) or in the LSM store
//! ([`LsmStore`]), RocksDB-style.
//!
//! This file is the LSM side of the window operator's state. It is compiled as a child module
//! of `operators::window` (so it can encode the operator's private `WindowState`), and keeps
//! only the windows themselves in the store; timers, dirty lists and counters are small and stay
//! in memory, as in Flink's RocksDB backend with heap timers.
//!
//! # Layout in the store
//!
//! * Tumbling and sliding windows: one entry per window, key = `key ‖ start` (16 bytes), each
//!   an `i64` with its sign bit flipped, big-endian, so byte order is `(key, start)` order.
//! * Session windows: one entry per grouping key (8 bytes, same encoding) holding the key's
//!   session list in the operator's order (the order decides merge tie-breaks, so it is kept).
//! * Values: the window's part of the [`WindowEntry`](super::WindowEntry) encoding (end,
//!   lineage, flags, [`AggState`](crate::operators::aggregate::AggState)); a session list is a
//!   count followed by `(start, window)` pairs. Little-endian, like the checkpoint format.
//!
//! An update is get + decode + modify + encode + put (the RocksDB cost model); a removal is a
//! tombstone. Entries carry an expiry at their cleanup point (event-time TTL) when the operator
//! is certain to have removed them by then, so compaction can drop them; the store's watermark
//! is advanced after the operator's timers have run. Compaction runs in bounded steps every
//! [`COMPACT_EVERY_WRITES`] writes and after every watermark advance.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{read_i64, WindowState};
use crate::state::{CheckpointStats, LsmOptions, LsmStore, Result, StateStats};
use crate::time::EventTime;

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

/// Writes between two bounded compaction steps.
pub const COMPACT_EVERY_WRITES: u64 = 1024;
/// Input bytes one compaction step may merge.
pub const COMPACT_STEP_BYTES: u64 = 256 << 10;

/// Distinguishes the scratch directories of operators in one process.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh, unique scratch directory path under the system temp directory.
pub(super) fn temp_dir() -> PathBuf {
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
