//! The simulated driver's event queue: pending wake-ups ordered by (time, sequence number).
//!
//! Why not a `BinaryHeap`: a job has a handful of subtasks, so the queue holds a handful of
//! wake-ups, and the per-record simulator pushes and pops one per step — hundreds of thousands
//! per simulated second. The heap's sift over 24-byte tuples compared lexicographically was an
//! eighth of the simulator's time; a vector kept sorted latest-first pops by truncation and
//! pushes by a binary search and a short move.
//!
//! Invariant: the keys `(time, sequence number, subtask)` are unique (the sequence number is),
//! so every correct priority queue pops them in the same order as this one: replacing the heap
//! cannot change a simulated result. Stale wake-ups (superseded by an earlier one) stay in the
//! queue exactly as they did in the heap; the event loop skips them when they come up.

use crate::time::Nanos;

/// A wake-up: (virtual time, sequence number, subtask).
pub(super) type WakeUp = (Nanos, u64, usize);

/// Pending wake-ups, earliest `(time, seq)` first out.
#[derive(Debug, Default)]
pub(super) struct WakeUps {
    /// Sorted latest-first: the next wake-up is the last element.
    sorted: Vec<WakeUp>,
}

impl WakeUps {
    /// Adds a wake-up.
    #[inline]
    pub(super) fn push(&mut self, w: WakeUp) {
        let at = self.sorted.partition_point(|&x| x > w);
        // Moved into place by swaps: the handful of entries it passes is cheaper to move
        // than `insert`'s call to `memmove` (a tenth of the queue's time).
        self.sorted.push(w);
        for i in (at + 1..self.sorted.len()).rev() {
            self.sorted.swap(i, i - 1);
        }
    }

    /// The earliest wake-up, if any.
    #[inline]
    pub(super) fn peek(&self) -> Option<WakeUp> {
        self.sorted.last().copied()
    }

    /// Removes the earliest wake-up.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<WakeUp> {
        self.sorted.pop()
    }

    /// Drops every wake-up.
    pub(super) fn clear(&mut self) {
        self.sorted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_sequence_order_like_a_min_heap() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut q = WakeUps::default();
        let mut heap = BinaryHeap::new();
        // A fixed pseudo-random mix of pushes and pops, times with many ties.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for seq in 0..10_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let w = (x % 50, seq, (x >> 32) as usize % 7);
            q.push(w);
            heap.push(Reverse(w));
            if x % 3 == 0 {
                assert_eq!(q.pop(), heap.pop().map(|Reverse(w)| w));
            }
            assert_eq!(q.peek(), heap.peek().map(|&Reverse(w)| w));
        }
        while let Some(Reverse(w)) = heap.pop() {
            assert_eq!(q.pop(), Some(w));
        }
        assert_eq!(q.pop(), None);
    }
}
