//! How a window's state is written down: in checkpoints (full snapshots and [`StateDelta`]s)
//! and as the values of the LSM store.
//!
//! One encoding serves both, so a window read back from a checkpoint and one read from the
//! store are decoded by the same (tested) code. Little-endian throughout:
//!
//! ```text
//! window := end: i64 | lineage: 4 × i64 (arrival, ingest, handoff, recv) | flags: u8 (1 fired, 2 dirty) | AggState
//! entry  := key: i64 | start: i64 | window
//! delta  := upsert count: u64 | entry* | delete count: u64 | (key: i64, start: i64)*
//! ```
//!
//! Invariant: these bytes are part of the checkpoint format; `decode(encode(x)) == x`, and a
//! decoder refuses (returns `None` for) anything it did not consume exactly.

use crate::operators::aggregate::AggState;
use crate::operators::Lineage;
use crate::pipeline::AggFunc;
use crate::time::{EventTime, Nanos};

/// The state of one keyed window, whichever backend holds it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct WindowState {
    /// The window's end (exclusive).
    pub(super) end: EventTime,
    /// The aggregate so far.
    pub(super) agg: AggState,
    /// The lineage of the latest record in the window.
    pub(super) last: Lineage,
    /// The window has fired (at least once).
    pub(super) fired: bool,
    /// The window changed since it was last emitted.
    pub(super) dirty: bool,
}

impl WindowState {
    /// An empty window ending at `end`.
    pub(super) fn new(end: EventTime) -> Self {
        Self {
            end,
            agg: AggState::default(),
            last: Lineage::default(),
            fired: false,
            dirty: false,
        }
    }

    /// Adds one record's value and lineage.
    #[inline]
    pub(super) fn add(&mut self, func: AggFunc, value: i64, lineage: Lineage) {
        self.agg.add(func, value);
        self.last.keep_latest(lineage);
        self.dirty = true;
    }

    /// Folds a partial aggregate whose latest record had lineage `last` (as if its records
    /// had been added one by one, in order).
    #[inline]
    pub(super) fn merge(&mut self, func: AggFunc, agg: &AggState, last: Lineage) {
        self.agg.merge(func, agg.clone());
        self.last.keep_latest(last);
        self.dirty = true;
    }

    /// Appends the window's part of the [`WindowEntry`] encoding (all but key and start).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let l = &self.last;
        for v in [
            self.end,
            l.arrival as i64,
            l.ingest as i64,
            l.handoff as i64,
            l.recv as i64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.fired) | (u8::from(self.dirty) << 1));
        self.agg.encode(out);
    }

    /// Reads a window written by [`WindowState::encode`] from the front of `input`.
    pub(super) fn decode(input: &mut &[u8]) -> Option<Self> {
        let end = read_i64(input)?;
        let last = Lineage {
            arrival: read_i64(input)? as Nanos,
            ingest: read_i64(input)? as Nanos,
            handoff: read_i64(input)? as Nanos,
            recv: read_i64(input)? as Nanos,
        };
        let (flags, rest) = input.split_first()?;
        *input = rest;
        let agg = AggState::decode(input)?;
        Some(Self {
            end,
            agg,
            last,
            fired: flags & 1 != 0,
            dirty: flags & 2 != 0,
        })
    }
}

/// One window of state as a checkpoint stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowEntry {
    /// Grouping key.
    pub key: i64,
    /// Window start.
    pub start: EventTime,
    pub(super) state: WindowState,
}

impl WindowEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        self.state.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let key = read_i64(input)?;
        let start = read_i64(input)?;
        let state = WindowState::decode(input)?;
        Some(Self { key, start, state })
    }
}

/// What changed in an operator's state since the previous checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDelta {
    /// Windows created or changed, with their new contents.
    pub upserts: Vec<WindowEntry>,
    /// Windows removed: (key, start).
    pub deletes: Vec<(i64, EventTime)>,
}

impl StateDelta {
    /// Binary encoding: upsert count, entries, delete count, (key, start) pairs; little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.upserts.len() * 96 + self.deletes.len() * 16);
        out.extend_from_slice(&(self.upserts.len() as u64).to_le_bytes());
        for e in &self.upserts {
            e.encode(&mut out);
        }
        out.extend_from_slice(&(self.deletes.len() as u64).to_le_bytes());
        for (k, s) in &self.deletes {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads a delta written by [`StateDelta::encode`]; `None` if the bytes are not one.
    pub fn decode(mut input: &[u8]) -> Option<Self> {
        let input = &mut input;
        let n = read_i64(input)? as usize;
        let mut upserts = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            upserts.push(WindowEntry::decode(input)?);
        }
        let m = read_i64(input)? as usize;
        let mut deletes = Vec::with_capacity(m.min(1 << 20));
        for _ in 0..m {
            deletes.push((read_i64(input)?, read_i64(input)?));
        }
        input.is_empty().then_some(Self { upserts, deletes })
    }
}

/// Reads a little-endian `i64` from the front of `input`.
pub(super) fn read_i64(input: &mut &[u8]) -> Option<i64> {
    let (head, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(i64::from_le_bytes(*head))
}
