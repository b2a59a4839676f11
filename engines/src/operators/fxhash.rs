//! A small multiplicative hasher (the one rustc uses, "FxHash").
//!
//! Keyed state and keyed exchanges hash integers on the hot path; std's SipHash is built to
//! resist flooding attacks we do not face and costs several times more. FxHash is also
//! deterministic across runs and machines, which keeps key-to-partition routing reproducible.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The hasher state.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// The partition (0..n) a key is routed to, stable across runs and machines.
#[inline]
pub fn partition_of(key: i64, n: usize) -> usize {
    // Mix the high bits down so that small sequential keys spread evenly.
    let h = ((key as u64).wrapping_mul(SEED) >> 32) as usize;
    let n = n.max(1);
    // The same partition either way; a mask where it can (no division per record).
    if n.is_power_of_two() {
        h & (n - 1)
    } else {
        h % n
    }
}
