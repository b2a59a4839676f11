//! The selection vector of a chunk: which of its rows are still alive after the filter.
//!
//! A pass writes every position it reads and advances the count only for a row that passes,
//! so the loop has no branch that depends on the data (a filter that keeps a quarter of the
//! rows would otherwise mispredict on most of them). Later passes read the positions and
//! compact the vector in place the same way.
//!
//! Invariants: positions are strictly increasing (rows keep their order, so the aggregation
//! sees them in arrival order as the row path does); `len() <= CHUNK`.

use crate::event::Event;
use crate::operators::columnar::CHUNK;
use crate::pipeline::Predicate;

/// Positions of a chunk's rows that passed so far.
#[derive(Debug)]
pub struct Selection {
    rows: Box<[u32; CHUNK]>,
    len: usize,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            rows: Box::new([0; CHUNK]),
            len: 0,
        }
    }
}

impl Selection {
    /// Selects the rows of `events` (at most [`CHUNK`]) whose kind is in `kind_mask` (bit `k`:
    /// kind index `k`). Reads the kind of each event of `ahead` (the next chunk) on the way, so
    /// its cache lines arrive while this chunk's later passes run; returns what it read,
    /// folded, for the caller to keep.
    #[inline]
    pub fn of_kinds(&mut self, events: &[Event], kind_mask: u8, ahead: &[Event]) -> u8 {
        debug_assert!(events.len() <= CHUNK);
        let mut n = 0;
        let mut touched = 0u8;
        for (i, e) in events.iter().enumerate() {
            self.rows[n] = i as u32;
            n += ((kind_mask >> e.kind.index()) & 1) as usize;
            if let Some(a) = ahead.get(i) {
                touched ^= a.kind.index() as u8;
            }
        }
        self.len = n;
        touched
    }

    /// Selects the rows whose kind (`kinds[i]`: the [`crate::event::EventKind::index`] of row
    /// `i`, at most [`CHUNK`] rows) is in `kind_mask`.
    #[inline]
    pub fn of_kind_column(&mut self, kinds: &[u8], kind_mask: u8) {
        debug_assert!(kinds.len() <= CHUNK);
        let mut n = 0;
        for (i, &k) in kinds.iter().enumerate().take(CHUNK) {
            self.rows[n] = i as u32;
            n += ((kind_mask >> (k & 7)) & 1) as usize;
        }
        self.len = n;
    }

    /// Keeps the selected rows that pass `predicate`.
    pub fn retain(&mut self, events: &[Event], predicate: &Predicate) {
        let mut n = 0;
        for k in 0..self.len {
            let i = self.rows[k];
            self.rows[n] = i;
            n += predicate.test(&events[i as usize]) as usize;
        }
        self.len = n;
    }

    /// The selected positions, in order.
    #[inline]
    pub fn rows(&self) -> &[u32] {
        &self.rows[..self.len]
    }

    /// The positions and room to compact them in place: `(rows, len)`; a pass that drops rows
    /// writes the survivors to the front and calls [`Selection::truncate`].
    #[inline]
    pub(super) fn rows_mut(&mut self) -> (&mut [u32; CHUNK], usize) {
        (&mut self.rows, self.len)
    }

    /// Keeps the first `n` positions.
    #[inline]
    pub(super) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Number of rows selected.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no row is selected.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
