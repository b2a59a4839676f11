//! Where the join's and the deduplication's keyed state lives: per key, a list of items (a
//! join side's stored rows, a deduplication's kept event times), on the heap or in an
//! [`LsmStore`], chosen once when the stage is built from the engine's `state_backend`. Top-N
//! keeps its per-window candidates in the same [`LsmLists`] (one [`StateValue`] per window,
//! keyed by its start; `top_n.rs`).
//!
//! Why one seam: the stages' rules (matching, expiry, outer rows, duplicates) are the same on
//! either backend; only how a key's list is found, changed and written back differs. On the
//! heap it is an `FxHashMap<i64, Vec<T>>` changed in place; on the LSM store an update is a get,
//! decode, change, encode and put (the RocksDB cost model, as the window operator's LSM backend
//! in `operators/window/lsm.rs`), and a list left empty is a tombstone.
//!
//! # Layout in the store
//!
//! One entry per key: key = the `i64` with its sign bit flipped, big-endian (byte order is key
//! order, so a scan is in key order); value = a `u64` count and the items (top-N: the window's
//! latest lineage first), each written with the checkpoint codec's [`Writer`] (`codec.rs`), so
//! a value is exactly its part of the stage's checkpoint body. Entries carry no TTL: every
//! entry is deleted by the stage's own cleanup timers (top-N: its set of open windows), which
//! stay on the heap, as with Flink's RocksDB backend and heap timers. Compaction runs in bounded
//! steps every [`COMPACT_EVERY_WRITES`] writes and after each watermark, with the window
//! operator's budgets.
//!
//! Invariants: both backends hold the same lists in the same item order for the same input (so
//! results, counters and checkpoint bytes are identical); no key maps to an empty list; the
//! heap path allocates nothing beyond what the lists themselves need.

use std::path::PathBuf;

use crate::operators::fxhash::FxHashMap;
use crate::operators::graph::codec::{Reader, Writer};
use crate::operators::window::{StateBackendKind, COMPACT_EVERY_WRITES, COMPACT_STEP_BYTES};
use crate::state::{LsmOptions, LsmStore, Result};
use crate::time::EventTime;

/// An item of a key's list, written with the checkpoint codec.
pub(super) trait ListItem: Copy {
    /// Appends the item's encoding.
    fn write(&self, w: &mut Writer<'_>);
    /// Reads back what [`ListItem::write`] wrote.
    fn read(r: &mut Reader<'_>) -> Option<Self>;
}

impl ListItem for EventTime {
    fn write(&self, w: &mut Writer<'_>) {
        w.i64(*self);
    }

    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.i64()
    }
}

/// A value the LSM store holds per key: a key's list, or a top-N window's candidates.
pub(super) trait StateValue: Default {
    /// Appends the value's encoding.
    fn write(&self, w: &mut Writer<'_>);
    /// Replaces `self` with what [`StateValue::write`] wrote (reusing its allocation).
    fn read_into(&mut self, r: &mut Reader<'_>) -> Option<()>;
    /// Nothing left: the key leaves the store.
    fn is_empty(&self) -> bool;
    /// Empties the value, keeping its allocation.
    fn clear(&mut self);
}

impl<T: ListItem> StateValue for Vec<T> {
    fn write(&self, w: &mut Writer<'_>) {
        w.len(self.len());
        self.iter().for_each(|item| item.write(w));
    }

    fn read_into(&mut self, r: &mut Reader<'_>) -> Option<()> {
        Vec::clear(self);
        for _ in 0..r.len()? {
            self.push(T::read(r)?);
        }
        Some(())
    }

    fn is_empty(&self) -> bool {
        <[T]>::is_empty(self)
    }

    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// Per key, a list of `T`: on the heap or in an LSM store.
#[derive(Debug)]
pub(super) enum KeyedLists<T> {
    /// A hash map on the heap.
    Heap(FxHashMap<i64, Vec<T>>),
    /// The LSM store.
    Lsm(Box<LsmLists<Vec<T>>>),
}

impl<T: ListItem> KeyedLists<T> {
    /// Empty lists on `kind`; an LSM store works in a fresh scratch directory under the
    /// system temp directory, removed on drop.
    pub(super) fn new(kind: StateBackendKind) -> Result<Self> {
        Ok(match LsmLists::for_backend(kind)? {
            None => Self::Heap(FxHashMap::default()),
            Some(store) => Self::Lsm(Box::new(store)),
        })
    }

    /// Applies `f` to `key`'s list (an empty one when absent and `create`; `None` without
    /// calling `f` when absent and not `create`). `f` returns its result and whether it changed
    /// the list; a changed list is written back, or removed when left empty.
    #[inline]
    pub(super) fn update<R>(&mut self, key: i64, create: bool, f: impl FnOnce(&mut Vec<T>) -> (R, bool)) -> Option<R> {
        match self {
            Self::Heap(map) => {
                let list = if create {
                    map.entry(key).or_default()
                } else {
                    map.get_mut(&key)?
                };
                let (r, _) = f(list);
                if list.is_empty() {
                    map.remove(&key);
                }
                Some(r)
            }
            Self::Lsm(store) => store.update(key, create, f),
        }
    }

    /// Every key's list, in key order.
    pub(super) fn sorted(&self) -> Vec<(i64, Vec<T>)> {
        match self {
            Self::Heap(map) => {
                let mut all: Vec<(i64, Vec<T>)> = map.iter().map(|(k, l)| (*k, l.clone())).collect();
                all.sort_unstable_by_key(|(k, _)| *k);
                all
            }
            Self::Lsm(store) => store.sorted(),
        }
    }

    /// Replaces every list with `lists` (restore); empty lists are not kept.
    pub(super) fn replace(&mut self, lists: Vec<(i64, Vec<T>)>) {
        match self {
            Self::Heap(map) => *map = lists.into_iter().filter(|(_, l)| !l.is_empty()).collect(),
            Self::Lsm(store) => store.replace(lists),
        }
    }

    /// The watermark advanced and the stage's timers ran: a bounded compaction step.
    pub(super) fn after_watermark(&mut self) {
        if let Self::Lsm(store) = self {
            store.compact();
        }
    }
}

/// An `i64` as 8 bytes whose byte order is the integers' order.
#[inline]
fn ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unordered(bytes: &[u8]) -> i64 {
    let b: [u8; 8] = bytes.try_into().expect("stage state key of 8 bytes");
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// The store works in a local scratch directory written by this process only: an error there
/// is a failed disk or a bug, and fails the task, as a RocksDB error fails a Flink task.
#[track_caller]
fn check<V>(r: Result<V>) -> V {
    r.unwrap_or_else(|e| panic!("keyed stage state backend (LSM): {e}"))
}

/// Values by key in an [`LsmStore`] (see the module docs for the layout).
#[derive(Debug)]
pub(super) struct LsmLists<V> {
    store: LsmStore,
    options: LsmOptions,
    writes_since_compact: u64,
    /// Reused value buffer.
    value: Vec<u8>,
    /// Reused decoded value.
    list: V,
}

impl<V: StateValue> LsmLists<V> {
    /// A store for `kind` in a fresh scratch directory under the system temp directory,
    /// removed on drop; `None` for the heap.
    pub(super) fn for_backend(kind: StateBackendKind) -> Result<Option<Self>> {
        let changelog = match kind {
            StateBackendKind::Heap => return Ok(None),
            StateBackendKind::Lsm => false,
            StateBackendKind::LsmChangelog => true,
        };
        let options = LsmOptions {
            changelog,
            ..LsmOptions::default()
        };
        Self::open(crate::operators::window::temp_dir(), options).map(Some)
    }

    fn open(dir: PathBuf, options: LsmOptions) -> Result<Self> {
        Ok(Self {
            store: LsmStore::open(&dir, options.clone())?,
            options,
            writes_since_compact: 0,
            value: Vec::new(),
            list: V::default(),
        })
    }

    /// See [`KeyedLists::update`].
    pub(super) fn update<R>(&mut self, key: i64, create: bool, f: impl FnOnce(&mut V) -> (R, bool)) -> Option<R> {
        let k = ordered(key);
        let found = check(self.store.get(&k));
        if found.is_none() && !create {
            return None;
        }
        let mut list = std::mem::take(&mut self.list);
        list.clear();
        if let Some(bytes) = found {
            decode_into(&bytes, &mut list)
                .unwrap_or_else(|| panic!("keyed stage state backend (LSM): undecodable list of key {key}"));
        }
        let (r, changed) = f(&mut list);
        if changed {
            if list.is_empty() {
                check(self.store.delete(&k));
            } else {
                self.value.clear();
                encode(&list, &mut self.value);
                check(self.store.put(&k, &self.value));
            }
            self.wrote();
        }
        self.list = list;
        Some(r)
    }

    /// Every key's value, in key order.
    pub(super) fn sorted(&self) -> Vec<(i64, V)> {
        check(self.store.scan())
            .into_iter()
            .map(|(k, v)| {
                let mut list = V::default();
                decode_into(&v, &mut list)
                    .unwrap_or_else(|| panic!("keyed stage state backend (LSM): undecodable list"));
                (unordered(&k), list)
            })
            .collect()
    }

    /// Reopens the store in its directory (which drops every run) and writes `lists`.
    pub(super) fn replace(&mut self, lists: Vec<(i64, V)>) {
        let dir = self.store.dir().to_path_buf();
        self.store = check(LsmStore::open(&dir, self.options.clone()));
        self.writes_since_compact = 0;
        for (key, list) in lists.into_iter().filter(|(_, l)| !l.is_empty()) {
            self.value.clear();
            encode(&list, &mut self.value);
            check(self.store.put(&ordered(key), &self.value));
            self.wrote();
        }
    }

    fn wrote(&mut self) {
        self.writes_since_compact += 1;
        if self.writes_since_compact >= COMPACT_EVERY_WRITES {
            self.compact();
        }
    }

    /// A bounded compaction step.
    pub(super) fn compact(&mut self) {
        self.writes_since_compact = 0;
        check(self.store.compact_step(COMPACT_STEP_BYTES));
    }
}

impl<V> Drop for LsmLists<V> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.store.dir());
    }
}

fn encode<V: StateValue>(value: &V, out: &mut Vec<u8>) {
    value.write(&mut Writer(out));
}

fn decode_into<V: StateValue>(bytes: &[u8], value: &mut V) -> Option<()> {
    let mut r = Reader(bytes);
    value.read_into(&mut r)?;
    r.done()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same updates on the heap and on a store small enough to flush and compact often
    /// leave the same lists and give the same answers.
    #[test]
    fn the_lsm_lists_follow_the_heap_through_flushes_and_compaction() {
        let options = LsmOptions {
            memtable_bytes: 256,
            block_bytes: 64,
            ..LsmOptions::default()
        };
        let dir = crate::operators::window::temp_dir();
        let mut lsm = KeyedLists::<EventTime>::Lsm(Box::new(LsmLists::open(dir.clone(), options).unwrap()));
        let mut heap = KeyedLists::<EventTime>::new(StateBackendKind::Heap).unwrap();
        let mut x: u64 = 7;
        for step in 0..5_000i64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let key = (x >> 33) as i64 % 50 - 25;
            let create = x & 1 == 0;
            // Push a time, or drop the times below a bound (sometimes emptying the list).
            let f = |list: &mut Vec<EventTime>| {
                if create {
                    list.push(step);
                    (list.len(), true)
                } else {
                    let before = list.len();
                    list.retain(|&t| t > step - 200);
                    (list.len(), list.len() != before)
                }
            };
            assert_eq!(lsm.update(key, create, f), heap.update(key, create, f), "step {step}");
            if step % 500 == 0 {
                lsm.after_watermark();
                assert_eq!(lsm.sorted(), heap.sorted(), "step {step}");
            }
        }
        let KeyedLists::Lsm(store) = &lsm else { unreachable!() };
        assert!(store.store.stats().flushes > 0, "the memtable flushed");
        assert!(store.store.stats().compactions > 0, "runs were merged");
        assert_eq!(lsm.sorted(), heap.sorted());
        let lists = heap.sorted();
        lsm.replace(lists.clone());
        assert_eq!(lsm.sorted(), lists);
        drop(lsm);
        assert!(!dir.exists(), "the scratch directory is removed on drop");
    }
}
