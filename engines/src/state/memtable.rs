//! The mutable memtable: the newest versions, in key order, until it is flushed as a run.
//!
//! A `BTreeMap` keeps keys sorted so a flush writes them out in order with no sort. Its size
//! is tracked as the bytes the entries will take in a run (their encoded length), so the
//! `memtable_bytes` limit bounds the size of a freshly flushed run, not heap overhead.

use std::collections::BTreeMap;

use super::format::{encoded_len, Slot};

/// Sorted, mutable newest versions of keys.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    map: BTreeMap<Vec<u8>, Slot>,
    bytes: usize,
}

impl Memtable {
    /// Records `slot` as the newest version of `key` (replacing an older memtable version).
    pub(crate) fn insert(&mut self, key: &[u8], slot: Slot) {
        self.bytes += encoded_len(key, &slot);
        if let Some(existing) = self.map.get_mut(key) {
            self.bytes -= encoded_len(key, existing);
            *existing = slot;
        } else {
            self.map.insert(key.to_vec(), slot);
        }
    }

    /// The memtable's version of `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Slot> {
        self.map.get(key)
    }

    /// The encoded size of the entries.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is nothing to flush.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Slot)> {
        self.map.iter()
    }

    /// Empties the memtable (after a successful flush).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }
}
