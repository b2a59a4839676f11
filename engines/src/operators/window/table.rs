//! Heap state of tumbling and sliding windows: one column table per window start.
//!
//! Why: a keyed window held as its own hash-map entry, with its own event-time timer, costs
//! about 250 bytes resident per key (key and start, end, an aggregate with every function's
//! fields, the latency lineage, flags, a 24-byte timer, and the map's slack at its load
//! factor). But every window with the same start shares its end, and so its fire point and
//! cleanup point. So they are kept together, as Flink SQL's window aggregation slices its state
//! by window and Spark's state store keys it by window: one [`WindowTable`] per start, whose
//! columns hold only what differs per key (the key, the count, the one running value the
//! function needs, the latest record's lineage, two flag bits), found through an index of
//! 4-byte slot numbers. The table's fire and cleanup points replace the per-window timers, and
//! the whole table leaves the state at once at its cleanup point. The lineage is packed into 24
//! bytes, 48 bits per instant (78 hours of nanoseconds; an instant past that keeps its lineage
//! whole in an overflow map, so nothing is ever truncated). A windowed count then holds 41
//! bytes per key in its columns plus about 10 in the index.
//!
//! Windows are only ever added to a table (a window leaves the state with its whole table), so
//! the columns are dense and a slot number stays valid for the table's life.

use hashbrown::HashTable;

use super::codec::WindowState;
use crate::operators::aggregate::{add_to_parts, AggState};
use crate::operators::fxhash::{FxHashMap, FxHashSet, FxHasher};
use crate::operators::Lineage;
use crate::pipeline::AggFunc;
use crate::time::EventTime;
use std::hash::Hasher;

const FIRED: u8 = 1;
const DIRTY: u8 = 2;
/// The window's lineage did not pack; it is in the overflow map.
const WIDE: u8 = 4;

/// A lineage in 24 bytes: its four instants, 48 bits each, in three words.
#[derive(Clone, Copy, Debug, Default)]
struct PackedLineage([u64; 3]);

const LOW_48: u64 = (1 << 48) - 1;

impl PackedLineage {
    /// The packed form, if every instant fits in 48 bits.
    #[inline]
    fn pack(l: &Lineage) -> Option<Self> {
        let (a, b, c, d) = (l.arrival, l.ingest, l.handoff, l.recv);
        ((a | b | c | d) >> 48 == 0).then_some(Self([a | b << 48, b >> 16 | c << 32, c >> 32 | d << 16]))
    }

    #[inline]
    fn arrival(&self) -> u64 {
        self.0[0] & LOW_48
    }

    #[inline]
    fn unpack(&self) -> Lineage {
        let [w0, w1, w2] = self.0;
        Lineage {
            arrival: w0 & LOW_48,
            ingest: (w0 >> 48 | w1 << 16) & LOW_48,
            handoff: (w1 >> 32 | w2 << 32) & LOW_48,
            recv: w2 >> 16,
        }
    }
}

/// The windows of every key that share one start (so one end).
#[derive(Debug)]
pub(super) struct WindowTable {
    /// The windows' start.
    pub start: EventTime,
    /// The windows' end.
    pub end: EventTime,
    /// The table's fire point has passed: every window in it has fired (Spark: been finalized),
    /// and a window added now fires on arrival.
    pub fired: bool,
    func: AggFunc,
    keys: Vec<i64>,
    counts: Vec<u64>,
    /// The running value; empty for `count`, which needs none.
    values: Vec<i64>,
    /// The value sets; empty unless the function is `distinct_count`.
    distinct: Vec<Option<Box<FxHashSet<i64>>>>,
    last: Vec<PackedLineage>,
    /// Lineages that did not pack, by slot (flagged `WIDE`).
    wide: FxHashMap<u32, Lineage>,
    flags: Vec<u8>,
    /// Slot numbers, hashed by their key.
    index: HashTable<u32>,
}

#[inline]
fn hash(key: i64) -> u64 {
    let mut h = FxHasher::default();
    h.write_i64(key);
    h.finish()
}

impl WindowTable {
    /// An empty table of windows `[start, end)` of the aggregate `func`.
    pub fn new(start: EventTime, end: EventTime, func: AggFunc, fired: bool) -> Self {
        Self {
            start,
            end,
            fired,
            func,
            keys: Vec::new(),
            counts: Vec::new(),
            values: Vec::new(),
            distinct: Vec::new(),
            last: Vec::new(),
            wide: FxHashMap::default(),
            flags: Vec::new(),
            index: HashTable::new(),
        }
    }

    /// Number of windows (keys) in the table.
    #[inline]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key of window `slot`.
    #[inline]
    pub fn key(&self, slot: u32) -> i64 {
        self.keys[slot as usize]
    }

    /// The slot of `key`'s window, if it has one.
    #[inline]
    pub fn find(&self, key: i64) -> Option<u32> {
        let keys = &self.keys;
        self.index.find(hash(key), |&s| keys[s as usize] == key).copied()
    }

    /// The slot of `key`'s window, created empty (not fired, not dirty) if missing, and whether
    /// it was created.
    #[inline]
    pub fn slot(&mut self, key: i64) -> (u32, bool) {
        if let Some(slot) = self.find(key) {
            return (slot, false);
        }
        let slot = u32::try_from(self.keys.len()).expect("fewer than 2^32 keys per window start");
        let keys = &self.keys;
        self.index.insert_unique(hash(key), slot, |&s| hash(keys[s as usize]));
        self.keys.push(key);
        self.counts.push(0);
        if self.has_value() {
            self.values.push(0);
        }
        if self.func == AggFunc::DistinctCount {
            self.distinct.push(None);
        }
        self.last.push(PackedLineage::default());
        self.flags.push(0);
        (slot, true)
    }

    #[inline]
    fn has_value(&self) -> bool {
        !matches!(self.func, AggFunc::Count | AggFunc::DistinctCount)
    }

    /// Takes window `slot` out of its columns to be read or changed (put it back with
    /// [`WindowTable::store`]; until then its value set, if any, is left empty).
    #[inline]
    pub fn load(&mut self, slot: u32) -> WindowState {
        let distinct = self.distinct.get_mut(slot as usize).and_then(Option::take);
        self.window(slot, distinct)
    }

    /// A copy of window `slot`.
    pub fn get(&self, slot: u32) -> WindowState {
        self.window(slot, self.distinct.get(slot as usize).cloned().flatten())
    }

    /// Window `slot` from its columns, with the value set `distinct`.
    #[inline]
    fn window(&self, slot: u32, distinct: Option<Box<FxHashSet<i64>>>) -> WindowState {
        let i = slot as usize;
        let flags = self.flags[i];
        WindowState {
            end: self.end,
            agg: AggState {
                count: self.counts[i],
                value: self.values.get(i).copied().unwrap_or(0),
                distinct,
            },
            last: self.lineage(slot),
            fired: flags & FIRED != 0,
            dirty: flags & DIRTY != 0,
        }
    }

    /// The lineage of window `slot`'s latest record.
    #[inline]
    fn lineage(&self, slot: u32) -> Lineage {
        if self.flags[slot as usize] & WIDE != 0 {
            return self.wide_lineage(slot);
        }
        self.last[slot as usize].unpack()
    }

    /// The arrival of window `slot`'s latest record (unpacks only that instant).
    #[inline]
    fn latest_arrival(&self, slot: u32) -> u64 {
        if self.flags[slot as usize] & WIDE != 0 {
            return self.wide_lineage(slot).arrival;
        }
        self.last[slot as usize].arrival()
    }

    /// The lineage of window `slot` from the overflow map (it did not pack).
    #[cold]
    #[inline(never)]
    fn wide_lineage(&self, slot: u32) -> Lineage {
        self.wide[&slot]
    }

    /// Sets the lineage of window `slot`, packed if it fits and in the overflow map if not.
    #[inline]
    fn set_lineage(&mut self, slot: u32, l: Lineage) {
        let i = slot as usize;
        match PackedLineage::pack(&l) {
            Some(packed) if self.flags[i] & WIDE == 0 => self.last[i] = packed,
            _ => self.set_lineage_slow(slot, l),
        }
    }

    /// [`Self::set_lineage`] when the old or the new lineage is past 48 bits (rare: 78 hours).
    #[cold]
    #[inline(never)]
    fn set_lineage_slow(&mut self, slot: u32, l: Lineage) {
        let i = slot as usize;
        match PackedLineage::pack(&l) {
            Some(packed) => {
                self.last[i] = packed;
                self.flags[i] &= !WIDE;
                self.wide.remove(&slot);
            }
            None => {
                self.flags[i] |= WIDE;
                self.wide.insert(slot, l);
            }
        }
    }

    /// Writes window `slot` back into its columns.
    #[inline]
    pub fn store(&mut self, slot: u32, w: WindowState) {
        let i = slot as usize;
        self.counts[i] = w.agg.count;
        if let Some(v) = self.values.get_mut(i) {
            *v = w.agg.value;
        }
        if let Some(d) = self.distinct.get_mut(i) {
            *d = w.agg.distinct;
        }
        let fired = if w.fired { FIRED } else { 0 };
        let dirty = if w.dirty { DIRTY } else { 0 };
        self.flags[i] = (self.flags[i] & WIDE) | fired | dirty;
        self.set_lineage(slot, w.last);
    }

    /// Adds one row's value and lineage to window `slot` in place (the per-record hot path; no
    /// load and store), marking it changed.
    #[inline]
    pub fn add(&mut self, slot: u32, value: i64, lineage: Lineage) {
        self.add_value(slot, value);
        self.offer_lineage(slot, lineage);
    }

    /// Adds one row's value to window `slot` in place, marking it changed; its lineage is
    /// offered separately ([`WindowTable::offer_lineage`]). Always inlined: it is a window
    /// run's per-row work (`add_rows`), and as a call it was a fifth of the window thread's.
    #[inline(always)]
    pub fn add_value(&mut self, slot: u32, value: i64) {
        let i = slot as usize;
        let mut unused = 0;
        let running = self.values.get_mut(i).unwrap_or(&mut unused);
        add_to_parts(self.func, &mut self.counts[i], running, self.distinct.get_mut(i), value);
        self.flags[i] |= DIRTY;
    }

    /// Keeps `lineage` as window `slot`'s latest if it arrived no earlier than the one kept.
    #[inline]
    pub fn offer_lineage(&mut self, slot: u32, lineage: Lineage) {
        if lineage.arrival >= self.latest_arrival(slot) {
            self.set_lineage(slot, lineage);
        }
    }

    /// Whether window `slot` has fired.
    #[inline]
    pub fn is_fired(&self, slot: u32) -> bool {
        self.flags[slot as usize] & FIRED != 0
    }

    /// Whether window `slot` changed since its last emission.
    #[inline]
    pub fn is_dirty(&self, slot: u32) -> bool {
        self.flags[slot as usize] & DIRTY != 0
    }

    /// Fills `order` with the slots for which `pick` holds, ordered by key.
    pub fn slots_by_key(&self, order: &mut Vec<u32>, pick: impl Fn(&Self, u32) -> bool) {
        order.clear();
        order.extend((0..self.len() as u32).filter(|&s| pick(self, s)));
        order.sort_unstable_by_key(|&s| self.keys[s as usize]);
    }

    /// Bytes the table holds on the heap: the columns' and the index's allocations, and the
    /// value sets.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.counts.capacity() * 8
            + self.values.capacity() * 8
            + self.distinct.capacity() * 8
            + self.last.capacity() * std::mem::size_of::<PackedLineage>()
            + self.wide.capacity() * (4 + std::mem::size_of::<Lineage>() + 1)
            + self.flags.capacity()
            + self.index.allocation_size()
            + self.distinct.iter().flatten().map(|d| d.capacity() * 16).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dense_stable_and_found_by_key() {
        let mut t = WindowTable::new(0, 10_000, AggFunc::Sum, false);
        for key in (0..1_000).rev() {
            assert_eq!(t.slot(key * 7), ((999 - key) as u32, true));
        }
        assert_eq!(t.slot(7 * 500), (499, false));
        assert_eq!(t.find(3), None);
        assert_eq!(t.len(), 1_000);
        assert_eq!(t.key(0), 999 * 7);
    }

    #[test]
    fn a_window_loaded_and_stored_keeps_every_field() {
        for func in [AggFunc::Count, AggFunc::Min, AggFunc::DistinctCount] {
            let mut t = WindowTable::new(0, 10_000, func, false);
            let (slot, _) = t.slot(42);
            let mut w = t.load(slot);
            assert_eq!(w, WindowState::new(10_000));
            for v in [5, -3, 5] {
                w.add(
                    func,
                    v,
                    Lineage {
                        arrival: 9,
                        ingest: 10,
                        handoff: 11,
                        recv: 12,
                    },
                );
            }
            w.fired = true;
            t.store(slot, w.clone());
            assert_eq!(t.get(slot), w);
            assert_eq!(t.load(slot), w);
            assert!(t.is_fired(slot) && t.is_dirty(slot));
        }
    }

    #[test]
    fn a_lineage_past_48_bits_is_kept_whole() {
        let mut t = WindowTable::new(0, 10, AggFunc::Count, false);
        let (slot, _) = t.slot(1);
        let wide = Lineage {
            arrival: 1 << 50,
            ingest: 1,
            handoff: u64::MAX,
            recv: 3,
        };
        let narrow = Lineage {
            arrival: 7,
            ingest: 4,
            handoff: 5,
            recv: (1 << 48) - 1,
        };
        t.add(slot, 0, wide);
        assert_eq!(t.get(slot).last, wide);
        t.add(slot, 0, narrow); // arrived earlier: not the latest
        assert_eq!(t.get(slot).last, wide);
        t.add(
            slot,
            0,
            Lineage {
                arrival: 1 << 50,
                ..narrow
            },
        ); // a tie: the later one wins
        assert_eq!(
            t.get(slot).last,
            Lineage {
                arrival: 1 << 50,
                ..narrow
            }
        );
        let mut w = t.load(slot);
        w.last = narrow;
        t.store(slot, w);
        assert_eq!(t.get(slot).last, narrow);
        assert!(t.wide.is_empty());
        assert_eq!(t.get(slot).agg.count, 3);
    }

    #[test]
    fn packing_round_trips_every_48_bit_instant() {
        let max = (1u64 << 48) - 1;
        for l in [
            Lineage::default(),
            Lineage {
                arrival: max,
                ingest: max,
                handoff: max,
                recv: max,
            },
            Lineage {
                arrival: 1,
                ingest: max,
                handoff: 0x1234_5678_9abc,
                recv: 2,
            },
            Lineage {
                arrival: 0xdead_beef,
                ingest: 0,
                handoff: max,
                recv: 0xffff,
            },
        ] {
            let packed = PackedLineage::pack(&l).expect("fits in 48 bits");
            assert_eq!(packed.unpack(), l);
            assert_eq!(packed.arrival(), l.arrival);
        }
        assert!(PackedLineage::pack(&Lineage {
            recv: 1 << 48,
            ..Lineage::default()
        })
        .is_none());
    }

    #[test]
    fn slots_by_key_orders_the_picked_windows() {
        let mut t = WindowTable::new(0, 10, AggFunc::Count, false);
        for key in [5, 1, 9, 3] {
            let (slot, _) = t.slot(key);
            let mut w = t.load(slot);
            w.dirty = key != 9;
            t.store(slot, w);
        }
        let mut order = Vec::new();
        t.slots_by_key(&mut order, |t, s| t.is_dirty(s));
        let keys: Vec<i64> = order.iter().map(|&s| t.key(s)).collect();
        assert_eq!(keys, vec![1, 3, 5]);
    }
}
