//! The pool of active sessions, ordered by due time: a monotone two-level bucket queue.
//!
//! The generator always takes the earliest-due session and puts it back with a due time no
//! earlier than the one it had, so the queue is *monotone*: nothing is ever inserted before the
//! last minimum. That allows an amortised O(1) radix bucket queue instead of a binary heap,
//! whose sift over ~10^5 sessions (a cache miss per level) dominated the old generator.
//!
//! **Order.** Due times are compared at the resolution of a *fine* bucket, `2^shift` ns, the
//! smallest power of two with `2^shift × 16384 >= 4 T` (so between `T / 4096` and `T / 2048`
//! for a mean think time `T`); sessions due in the same fine bucket come out in the order they
//! were (re)scheduled (FIFO). That is the total order `(due >> shift, insertion number)`,
//! independent of the data structure, so it is deterministic. Against think times of mean `T`
//! the quantisation is invisible, and it spares sorting anything.
//!
//! **Layout.** Sessions live *in* the queue (no side table), each bucket an unsorted `Vec` in
//! insertion order whose capacity is reused as the queue turns:
//! - the *hot* fine bucket (absolute fine bucket `cursor`), read front to back;
//! - `near`: the other 64 fine buckets of the current *coarse* bucket (`cursor >> 6`), with a
//!   bit mask of the non-empty ones;
//! - `far`: a ring of 256 coarse buckets covering the next 255 coarse buckets (≥ 4 T in all);
//!   a coarse bucket is distributed into `near` (a stable pass) when the cursor reaches it;
//! - `overflow`: sessions due beyond that, in a binary heap keyed by `(fine bucket, insertion
//!   number)` (only the exponential tail, ≤ 2 %), moved into `far` as the window advances.
//!
//! A reinsertion is therefore nearly always an append to one of 256 `far` buckets instead of a
//! random access into megabytes. `far` buckets are chains of fixed-size chunks from one slab
//! with a LIFO free list: the chunk an append opens is the one a distribution pass freed most
//! recently, still in cache, so appends rarely miss even though the pool is megabytes. A bucket
//! is always empty when older sessions move into it, so FIFO order is kept at every level.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use streamlab_engines::time::Nanos;

/// `log2` of the fine buckets per coarse bucket.
const FINE_BITS: u32 = 6;
const FINE: usize = 1 << FINE_BITS;
/// Coarse buckets in the `far` ring.
const COARSE: usize = 256;
/// Sessions per chunk of a `far` bucket (1 KiB).
const CHUNK: usize = 32;
/// "No chunk".
const NIL: u32 = u32::MAX;

/// A `far` bucket: a chain of chunks, appended at the tail.
#[derive(Clone, Copy, Debug)]
struct Chain {
    head: u32,
    tail: u32,
    /// Sessions in the tail chunk.
    tail_len: u32,
    /// Sessions in the chain.
    len: u32,
}

impl Chain {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        tail_len: 0,
        len: 0,
    };
}

/// The `far` ring: `COARSE` chains over one slab of chunks.
#[derive(Clone, Debug)]
struct Far {
    /// Fixed length, so that indexing by a masked bucket needs no bounds check.
    chains: Box<[Chain; COARSE]>,
    /// Chunk `c` is `slab[c * CHUNK..(c + 1) * CHUNK]`.
    slab: Vec<Session>,
    /// The chunk after `c` in its chain.
    next: Vec<u32>,
    /// Free chunks, the most recently freed on top.
    free: Vec<u32>,
    /// Sessions in all chains.
    len: usize,
}

impl Far {
    fn new() -> Self {
        Self {
            chains: Box::new([Chain::EMPTY; COARSE]),
            slab: Vec::new(),
            next: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, bucket: usize, s: Session) {
        let mut chain = self.chains[bucket];
        if chain.tail == NIL || chain.tail_len == CHUNK as u32 {
            let c = self.free.pop().unwrap_or_else(|| {
                let c = self.next.len() as u32;
                self.slab.resize(self.slab.len() + CHUNK, s);
                self.next.push(NIL);
                c
            });
            self.next[c as usize] = NIL;
            if chain.tail == NIL {
                chain.head = c;
            } else {
                self.next[chain.tail as usize] = c;
            }
            chain.tail = c;
            chain.tail_len = 0;
        }
        self.slab[chain.tail as usize * CHUNK + chain.tail_len as usize] = s;
        chain.tail_len += 1;
        chain.len += 1;
        self.chains[bucket] = chain;
        self.len += 1;
    }

    /// Empties chain `bucket`, handing its sessions to `f` in insertion order.
    fn drain(&mut self, bucket: usize, mut f: impl FnMut(Session)) {
        let chain = std::mem::replace(&mut self.chains[bucket], Chain::EMPTY);
        self.len -= chain.len as usize;
        let mut c = chain.head;
        while c != NIL {
            let n = if c == chain.tail {
                chain.tail_len as usize
            } else {
                CHUNK
            };
            let start = c as usize * CHUNK;
            for &s in &self.slab[start..start + n] {
                f(s);
            }
            self.free.push(c);
            c = self.next[c as usize];
        }
    }
}

/// An active session, as the pool stores it (32 bytes: two per cache line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
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
}

/// A session waiting beyond the ring, with its absolute bucket and insertion number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiting {
    bucket: u64,
    seq: u64,
    session: Session,
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.bucket, self.seq).cmp(&(other.bucket, other.seq))
    }
}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The session pool (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    /// The sessions of fine bucket `cursor`, in insertion order; `hot[..head]` are taken.
    hot: Vec<Session>,
    head: usize,
    /// `near[f & 63]`: fine bucket `f` of the current coarse bucket, for `f > cursor`.
    near: Vec<Vec<Session>>,
    /// Bit `i` set iff `near[i]` is non-empty.
    near_mask: u64,
    /// Chain `c & 255`: coarse bucket `c`, for `c` in `(cursor >> 6, (cursor >> 6) + 256)`.
    far: Far,
    shift: u32,
    /// The absolute fine bucket (`due >> shift`) of the hot bucket.
    cursor: u64,
    /// Sessions whose coarse bucket is `>= (cursor >> 6) + 256`, least `(bucket, seq)` on top.
    overflow: BinaryHeap<Reverse<Waiting>>,
    /// Insertions so far (orders the overflow heap).
    inserted: u64,
}

impl Pool {
    /// A pool of `sessions` (at least one), spaced by think times of mean `mean_think_ns`. They
    /// are inserted in the given order.
    pub fn new(sessions: Vec<Session>, mean_think_ns: f64) -> Self {
        assert!(!sessions.is_empty(), "an empty session pool");
        // The smallest power-of-two fine width with which the ring spans 4 mean think times.
        let span = 4.0 * mean_think_ns / (FINE * COARSE) as f64;
        let mut shift = 0;
        while shift < 62 && ((1u64 << shift) as f64) < span {
            shift += 1;
        }
        let first = sessions.iter().map(|s| s.due).min().unwrap_or(0) >> shift;
        let mut pool = Self {
            hot: Vec::new(),
            head: 0,
            near: vec![Vec::new(); FINE],
            near_mask: 0,
            far: Far::new(),
            shift,
            cursor: first,
            overflow: BinaryHeap::new(),
            inserted: 0,
        };
        for s in sessions {
            pool.insert(s);
        }
        pool
    }

    /// (Re)inserts a session; its due time must not be before the last minimum's fine bucket.
    #[inline]
    pub fn insert(&mut self, session: Session) {
        let fine = session.due >> self.shift;
        debug_assert!(fine >= self.cursor, "the pool is monotone");
        if fine <= self.cursor {
            self.hot.push(session);
        } else {
            let ahead = (fine >> FINE_BITS) - (self.cursor >> FINE_BITS);
            if ahead == 0 {
                let i = (fine as usize) & (FINE - 1);
                self.near[i].push(session);
                self.near_mask |= 1 << i;
            } else if ahead < COARSE as u64 {
                self.far.push(((fine >> FINE_BITS) as usize) & (COARSE - 1), session);
            } else {
                self.overflow.push(Reverse(Waiting {
                    bucket: fine,
                    seq: self.inserted,
                    session,
                }));
            }
        }
        self.inserted += 1;
    }

    /// Removes and returns the first session of the earliest non-empty fine bucket.
    #[inline]
    pub fn pop_min(&mut self) -> Session {
        if self.head == self.hot.len() {
            self.advance();
        }
        let s = self.hot[self.head];
        self.head += 1;
        s
    }

    /// Moves the cursor to the next non-empty fine bucket and makes it the hot one.
    #[cold]
    fn advance(&mut self) {
        self.hot.clear();
        self.head = 0;
        loop {
            // The next non-empty fine bucket of this coarse bucket (the cursor's own is empty).
            let rest = self.near_mask & (!0u64 << (self.cursor as usize & (FINE - 1)));
            if rest != 0 {
                let i = rest.trailing_zeros() as usize;
                self.cursor = (self.cursor & !(FINE as u64 - 1)) | i as u64;
                self.near_mask &= !(1 << i);
                std::mem::swap(&mut self.hot, &mut self.near[i]);
                return;
            }
            // This coarse bucket is used up: on to the next one (or jump to the overflow).
            let coarse = if self.far.len == 0 {
                self.overflow.peek().expect("the pool is never empty").0.bucket >> FINE_BITS
            } else {
                (self.cursor >> FINE_BITS) + 1
            };
            self.cursor = coarse << FINE_BITS;
            while let Some(top) = self.overflow.peek() {
                let c = top.0.bucket >> FINE_BITS;
                if c - coarse >= COARSE as u64 {
                    break;
                }
                let s = self.overflow.pop().expect("peeked").0.session;
                self.far.push((c as usize) & (COARSE - 1), s);
            }
            // Distribute the coarse bucket over the fine ones, keeping insertion order.
            let slot = (coarse as usize) & (COARSE - 1);
            let (shift, near, near_mask) = (self.shift, &mut self.near, &mut self.near_mask);
            self.far.drain(slot, |s| {
                let i = ((s.due >> shift) as usize) & (FINE - 1);
                near[i].push(s);
                *near_mask |= 1 << i;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool against a reference ordered by (bucket, insertion number) over a long monotone
    /// run with ties and a heavy tail.
    #[test]
    fn pops_in_bucket_then_insertion_order() {
        let mut state = 7u64;
        let mut rand = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        for n in [1u64, 3, 300, 50_000] {
            let mean = 1_000_000.0;
            let sessions: Vec<Session> = (0..n)
                .map(|id| Session {
                    due: rand() % 3_000_000,
                    id,
                    user: 0,
                    partition: 0,
                    remaining: 1,
                    dwell_ms: 0,
                })
                .collect();
            let mut pool = Pool::new(sessions.clone(), mean);
            let shift = pool.shift;
            let width = 1u64 << shift;
            assert!(width <= 1_000_000 / 2048 && width > 1_000_000 / 4096, "width {width}");
            let mut seq = 0;
            let mut reference: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::new();
            for s in &sessions {
                reference.push(Reverse((s.due >> shift, seq, s.id)));
                seq += 1;
            }
            for (step, next_id) in (0..200_000u64).zip(n..) {
                let s = pool.pop_min();
                let Reverse((bucket, _, id)) = reference.pop().unwrap();
                assert_eq!((s.due >> shift, s.id), (bucket, id), "n {n}, step {step}");
                // Mostly near, sometimes equal, sometimes far past the horizon.
                let gap = match rand() % 10 {
                    0 => 0,
                    1 => rand() % 100,
                    2 => rand() % 100_000_000,
                    _ => rand() % 2_000_000,
                };
                let next = Session {
                    due: s.due + gap,
                    id: next_id,
                    ..s
                };
                pool.insert(next);
                reference.push(Reverse((next.due >> shift, seq, next.id)));
                seq += 1;
            }
        }
    }
}
