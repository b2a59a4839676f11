//! The pool of active sessions, ordered by due time: a monotone calendar queue.
//!
//! The generator always takes the earliest-due session (ties to the lower slot) and puts it back
//! with a due time no earlier than the one it had, so the queue is *monotone*: nothing is ever
//! inserted before the last minimum. That allows an O(1) structure instead of a binary heap
//! (whose sift over ~10^5 entries dominated the old generator):
//!
//! - a ring of `M` buckets (a power of two), each `2^shift` ns wide, covering the absolute
//!   buckets `[cursor, cursor + M)`; a bucket is an intrusive singly linked list through the
//!   session nodes, and a bitmap of non-empty buckets finds the next one in a few word reads;
//! - entries due beyond the ring's horizon wait in an overflow binary heap and move into the
//!   ring as the cursor advances.
//!
//! The bucket width is chosen so a bucket holds about one session near the cursor and the ring
//! spans about four mean think times, so only the exponential tail (≈ 2 %) takes the heap path.
//! The order is exact: the minimum is found by scanning the (short) cursor bucket for the least
//! `(due, slot)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use streamlab_engines::time::Nanos;

/// "No slot": the end of a bucket list.
const NIL: u32 = u32::MAX;

/// An active session and its place in the queue (one cache-friendly record per slot).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// When the session's next event is due (ns, on the pool's clock).
    pub due: Nanos,
    /// Session id, unique over the stream.
    pub id: u64,
    /// The session's user.
    pub user: u32,
    /// `partition_of(user)`, computed once per session.
    pub partition: u32,
    /// Events left in the session, at least 1 while it is in the pool.
    pub remaining: u32,
    /// The think time that preceded the session's next event, ms.
    pub dwell_ms: u32,
    /// Next slot in the same bucket, or `NIL`.
    next: u32,
}

impl Node {
    /// A node not yet linked into the queue.
    pub fn new(due: Nanos, id: u64, user: u32, partition: u32, remaining: u32, dwell_ms: u32) -> Self {
        Self {
            due,
            id,
            user,
            partition,
            remaining,
            dwell_ms,
            next: NIL,
        }
    }
}

/// The session pool (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    nodes: Vec<Node>,
    /// First slot of each ring bucket, or `NIL`.
    heads: Vec<u32>,
    /// Bit `i` set iff ring bucket `i` is non-empty.
    occupied: Vec<u64>,
    shift: u32,
    /// `M − 1`.
    mask: u64,
    /// The absolute bucket (`due >> shift`) of the last minimum. Invariant: every ring entry's
    /// absolute bucket is in `[cursor, cursor + M)`, every overflow entry's is `>= cursor + M`.
    cursor: u64,
    in_ring: usize,
    overflow: BinaryHeap<Reverse<(Nanos, u32)>>,
}

impl Pool {
    /// A pool of `nodes` (at least one, fewer than `u32::MAX`), where sessions are spaced by
    /// think times of mean `mean_think_ns`.
    pub fn new(nodes: Vec<Node>, mean_think_ns: f64) -> Self {
        assert!(
            !nodes.is_empty() && nodes.len() < NIL as usize,
            "pool of {} sessions",
            nodes.len()
        );
        let n = nodes.len();
        let buckets = (4 * n).next_power_of_two().clamp(64, 1 << 22);
        // Width so that the ring spans ~4 mean think times: 2^shift >= 4 T / M.
        let wanted = (4.0 * mean_think_ns / buckets as f64).max(1.0);
        let mut shift = 0;
        while shift < 62 && ((1u64 << shift) as f64) < wanted {
            shift += 1;
        }
        let mut pool = Self {
            nodes: Vec::with_capacity(n),
            heads: vec![NIL; buckets],
            occupied: vec![0; buckets / 64],
            shift,
            mask: buckets as u64 - 1,
            cursor: nodes.iter().map(|n| n.due).min().unwrap_or(0) >> shift,
            in_ring: 0,
            overflow: BinaryHeap::new(),
        };
        for (slot, node) in nodes.into_iter().enumerate() {
            pool.nodes.push(node);
            pool.insert(slot as u32);
        }
        pool
    }

    /// The node in `slot`.
    #[inline]
    pub fn node_mut(&mut self, slot: u32) -> &mut Node {
        &mut self.nodes[slot as usize]
    }

    fn ring_len(&self) -> u64 {
        self.mask + 1
    }

    /// (Re)inserts `slot` at its node's due time, which must not be before the last minimum.
    #[inline]
    pub fn insert(&mut self, slot: u32) {
        let due = self.nodes[slot as usize].due;
        let abs = due >> self.shift;
        debug_assert!(abs >= self.cursor, "the pool is monotone");
        if abs.saturating_sub(self.cursor) >= self.ring_len() {
            self.overflow.push(Reverse((due, slot)));
        } else {
            self.link(slot, abs);
        }
    }

    #[inline]
    fn link(&mut self, slot: u32, abs: u64) {
        let i = (abs & self.mask) as usize;
        self.nodes[slot as usize].next = self.heads[i];
        self.heads[i] = slot;
        self.occupied[i >> 6] |= 1 << (i & 63);
        self.in_ring += 1;
    }

    /// Moves overflow entries that now fall inside the ring's window into the ring.
    fn migrate(&mut self) {
        while let Some(&Reverse((due, slot))) = self.overflow.peek() {
            let abs = due >> self.shift;
            if abs - self.cursor >= self.ring_len() {
                break;
            }
            self.overflow.pop();
            self.link(slot, abs);
        }
    }

    /// The first non-empty ring bucket at or after ring index `start`, circularly. The ring must
    /// not be empty.
    #[inline]
    fn next_occupied(&self, start: usize) -> usize {
        let words = self.occupied.len();
        let mut w = start >> 6;
        let bits = self.occupied[w] & (!0u64 << (start & 63));
        if bits != 0 {
            return (w << 6) | bits.trailing_zeros() as usize;
        }
        loop {
            w = (w + 1) & (words - 1);
            let bits = self.occupied[w];
            if bits != 0 {
                return (w << 6) | bits.trailing_zeros() as usize;
            }
        }
    }

    /// Removes and returns the slot with the least `(due, slot)`.
    #[inline]
    pub fn pop_min(&mut self) -> u32 {
        if self.in_ring == 0 {
            let &Reverse((due, _)) = self.overflow.peek().expect("the pool is never empty");
            self.cursor = due >> self.shift;
            self.migrate();
        }
        let start = (self.cursor & self.mask) as usize;
        let i = self.next_occupied(start);
        if i != start {
            // Entries migrated now have absolute buckets >= old cursor + M > bucket `i`.
            self.cursor += (i.wrapping_sub(start) as u64) & self.mask;
            self.migrate();
        }
        // Every entry of bucket `i` has absolute bucket == cursor: its least (due, slot) is the
        // global minimum.
        let mut best = self.heads[i];
        let mut best_prev = NIL;
        let mut prev = best;
        let mut cur = self.nodes[best as usize].next;
        while cur != NIL {
            let (c, b) = (&self.nodes[cur as usize], &self.nodes[best as usize]);
            if (c.due, cur) < (b.due, best) {
                best = cur;
                best_prev = prev;
            }
            prev = cur;
            cur = c.next;
        }
        let after = self.nodes[best as usize].next;
        if best_prev == NIL {
            self.heads[i] = after;
            if after == NIL {
                self.occupied[i >> 6] &= !(1 << (i & 63));
            }
        } else {
            self.nodes[best_prev as usize].next = after;
        }
        self.in_ring -= 1;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool against a sorted reference over a long monotone run with a heavy tail.
    #[test]
    fn pops_in_exact_due_then_slot_order() {
        let mut state = 7u64;
        let mut rand = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let n = 300;
        let mean = 1_000_000.0;
        let nodes: Vec<Node> = (0..n).map(|i| Node::new(rand() % 3_000_000, i, 0, 0, 1, 0)).collect();
        let mut reference: BinaryHeap<Reverse<(Nanos, u32)>> = nodes
            .iter()
            .enumerate()
            .map(|(s, n)| Reverse((n.due, s as u32)))
            .collect();
        let mut pool = Pool::new(nodes, mean);
        for step in 0..200_000u64 {
            let slot = pool.pop_min();
            let Reverse((due, expect)) = reference.pop().unwrap();
            assert_eq!((pool.node_mut(slot).due, slot), (due, expect), "step {step}");
            // Mostly near, sometimes equal (ties), sometimes far past the horizon.
            let gap = match rand() % 10 {
                0 => 0,
                1 => rand() % 100_000_000,
                _ => rand() % 2_000_000,
            };
            pool.node_mut(slot).due = due + gap;
            pool.insert(slot);
            reference.push(Reverse((due + gap, slot)));
        }
    }
}
