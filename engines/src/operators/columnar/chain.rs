//! The stateless chain (kind filter, `where` predicates, lookup join) over a chunk of events, a
//! pass at a time: what both engines run before anything keyed.
//!
//! A micro-batch map task ([`super::scan`]) goes on to the key and value columns and the partial
//! aggregation; a per-record source subtask (`dataflow/tasks/source.rs`) writes a row for each
//! selected position into its network buffer. Either way the chain's passes are these: the
//! selection vector by kind (reading the next chunk's kinds on the way, so its cache lines
//! arrive early), narrowed by each predicate, then the join probe that writes each survivor's
//! campaign beside it.
//!
//! Invariants: after [`ChunkChain::select`], `rows()[k]` are the positions, in increasing
//! order, of exactly the events [`StatelessChain::select`] admits, and `campaigns()[k]` is what
//! it returns for the event at `rows()[k]`; the columns are fixed arrays reused from chunk to
//! chunk (nothing is allocated per record or per chunk).
//!
//! [`StatelessChain::select`]: crate::operators::stateless::StatelessChain::select

use crate::event::Event;
use crate::operators::columnar::columns::EventColumns;
use crate::operators::columnar::probe::{probe, probe_ads};
use crate::operators::columnar::selection::Selection;
use crate::operators::columnar::CHUNK;
use crate::operators::stateless::ChainColumns;

/// The selection and campaign columns of one chunk, reused from chunk to chunk.
#[derive(Debug)]
pub struct ChunkChain {
    selection: Selection,
    campaigns: Box<[u32; CHUNK]>,
    /// What reading the next chunk early returned (kept so the reads are not optimized away).
    touched: u8,
}

impl Default for ChunkChain {
    fn default() -> Self {
        Self {
            selection: Selection::default(),
            campaigns: Box::new([0; CHUNK]),
            touched: 0,
        }
    }
}

impl ChunkChain {
    /// Runs `chain` over `events` (at most [`CHUNK`]); `ahead` (the next chunk, possibly empty)
    /// has its kinds read on the way.
    #[inline]
    pub fn select(&mut self, chain: &ChainColumns<'_>, events: &[Event], ahead: &[Event]) {
        self.touched ^= self.selection.of_kinds(events, chain.kind_mask, ahead);
        for p in chain.predicates {
            self.selection.retain(events, p);
        }
        probe(events, &mut self.selection, chain.join, &mut self.campaigns);
    }

    /// Runs `chain` over a chunk whose scanned fields are the columns `cols` (at most
    /// [`CHUNK`] rows; `events` the same rows, read only by the `where` predicates).
    #[inline]
    pub fn select_columns(&mut self, chain: &ChainColumns<'_>, events: &[Event], cols: &EventColumns<'_>) {
        self.selection.of_kind_column(cols.kinds, chain.kind_mask);
        for p in chain.predicates {
            self.selection.retain(events, p);
        }
        probe_ads(cols.ads, &mut self.selection, chain.join, &mut self.campaigns);
    }

    /// The positions of the selected events, in order.
    #[inline]
    pub fn rows(&self) -> &[u32] {
        self.selection.rows()
    }

    /// The campaign of each selected event (`campaigns()[k]` for `rows()[k]`).
    #[inline]
    pub fn campaigns(&self) -> &[u32] {
        &self.campaigns[..self.selection.len()]
    }

    /// Number of events selected.
    #[inline]
    pub fn len(&self) -> usize {
        self.selection.len()
    }

    /// True when no event is selected.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.selection.is_empty()
    }

    /// What the early reads folded to (hand it to [`std::hint::black_box`] once, at the end).
    pub fn touched(&self) -> u8 {
        self.touched
    }
}
