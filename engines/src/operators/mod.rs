//! The shared operator set: both engines (and any future driver) run this very code.
//!
//! Operators never know who drives them. They take records and watermarks, and push what they
//! produce into a [`Collector`] they are handed (the shape Arroyo's operator trait has), so the
//! micro-batch engine can call them once per batch task and the dataflow engine once per
//! record, on the wall clock or on virtual time.
//!
//! * [`stateless`] — filter on the event kind and the stream–table lookup join;
//! * [`aggregate`] — the aggregate functions' state;
//! * [`window`] — window assignment and the keyed, windowed aggregation with its state on the
//!   heap or an LSM store (behind one seam), event-time timers and lateness rules, and its
//!   map-side half ([`window::partial`], partial aggregation before a micro-batch exchange);
//! * [`columnar`] — a micro-batch map task's filter, join and partial aggregation run a
//!   column at a time over chunks of the batch (selection vectors, no row built);
//! * [`fxhash`] — the fast, deterministic hasher used for keyed state and exchanges.

pub mod aggregate;
pub mod columnar;
pub mod fxhash;
pub mod graph;
pub mod stateless;
pub mod window;

use crate::event::Event;
use crate::time::{EventTime, Nanos};

/// Receives what an operator produces.
pub trait Collector<T> {
    /// Takes one output item.
    fn collect(&mut self, item: T);
}

impl<T> Collector<T> for Vec<T> {
    #[inline]
    fn collect(&mut self, item: T) {
        self.push(item);
    }
}

/// The processing-time instants a record passed through, from which its latency is decomposed.
///
/// `arrival` is the open-loop schedule (latency origin). The others are set by the engine:
/// * micro-batch: `ingest` = start of the batch that read it, `handoff` = that batch's nominal
///   trigger time, `recv` unused;
/// * per-record: `ingest` = when the source task read it, `handoff` = when it was written into
///   a network buffer, `recv` = when the downstream task took it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// Scheduled arrival at the source.
    pub arrival: Nanos,
    /// Taken by the engine.
    pub ingest: Nanos,
    /// Handed to the next stage (buffer write / nominal trigger).
    pub handoff: Nanos,
    /// Received by the downstream task.
    pub recv: Nanos,
}

impl Lineage {
    /// Keeps `other` if it arrived no earlier than `self`: an aggregate's latency origin is its
    /// latest-arriving record (the later of two on a tie).
    #[inline]
    pub fn keep_latest(&mut self, other: Lineage) {
        if other.arrival >= self.arrival {
            *self = other;
        }
    }
}

/// A record inside an engine: the event, its join result and its lineage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The source event.
    pub event: Event,
    /// The campaign from the lookup join (0 when the pipeline has no join).
    pub campaign: u32,
    /// Timing of the record's trip through the engine.
    pub lineage: Lineage,
}

/// One result of a windowed aggregation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowResult {
    /// The grouping key's value.
    pub key: i64,
    /// Window start (inclusive), event time ms.
    pub start: EventTime,
    /// Window end (exclusive), event time ms.
    pub end: EventTime,
    /// Number of records in the window.
    pub count: u64,
    /// The aggregate's value (for `count`, the count).
    pub value: f64,
    /// Lineage of the last contributing record (by arrival): the latency origin.
    pub origin: Lineage,
    /// Processing time at which the window operator emitted this result.
    pub fired_at: Nanos,
    /// When the result was handed to the next stage (per-record: network buffer write).
    pub handoff: Nanos,
    /// When the next stage received it (per-record: the sink task).
    pub recv: Nanos,
    /// True for an emission that updates an earlier one (update/complete mode, late firing).
    pub is_update: bool,
}

/// What a record result is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// A matched pair of a join: `left` and `right`.
    Pair,
    /// A left row that found no match (a left outer join): `left` only.
    LeftOnly,
    /// A right row that found no match (a right outer join): `right` only.
    RightOnly,
    /// One record ranked in its window (top-N): `left`, with the window.
    Ranked,
}

/// A result made of input records rather than aggregated from them: a join's pair or unmatched
/// row, or a record in its window's top-N. The records are carried whole (they are `Copy` and
/// fixed-size), so no result allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecordResult {
    /// What the result is made of.
    pub shape: Shape,
    /// The left record (a join's left side, or the ranked record); for `RightOnly`, a copy of
    /// the right record with `seq = u64::MAX` (read nothing from it).
    pub left: Event,
    /// The right record, for `Pair` and `RightOnly`; otherwise a copy of the left record (with
    /// `seq = u64::MAX` for `LeftOnly`): read nothing from it.
    pub right: Event,
    /// The window (a window join's or a top-N's), else `(0, 0)`.
    pub start: EventTime,
    /// Window end (exclusive).
    pub end: EventTime,
    /// Lineage of the later-arriving record: the latency origin.
    pub origin: Lineage,
    /// When the operator emitted it.
    pub fired_at: Nanos,
    /// When it was handed to the next stage.
    pub handoff: Nanos,
    /// When the next stage received it.
    pub recv: Nanos,
}

impl Shape {
    /// The name in sink files.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Pair => "pair",
            Shape::LeftOnly => "left_only",
            Shape::RightOnly => "right_only",
            Shape::Ranked => "ranked",
        }
    }
}

impl RecordResult {
    /// The result's identity, for comparing runs: shape, the records' sequence numbers (`u64::MAX`
    /// for an absent side) and the window start.
    pub fn identity(&self) -> (Shape, u64, u64, EventTime) {
        let left = if self.shape == Shape::RightOnly {
            u64::MAX
        } else {
            self.left.seq
        };
        let right = if matches!(self.shape, Shape::Pair | Shape::RightOnly) {
            self.right.seq
        } else {
            u64::MAX
        };
        (self.shape, left, right, self.start)
    }
}

/// What reaches a sink.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Output {
    /// A record of a stateless pipeline, or one kept by a deduplication (the sink writes its
    /// projected columns).
    Row(Row),
    /// A window result of an aggregation.
    Window(WindowResult),
    /// A join's or a top-N's result.
    Record(RecordResult),
}

impl Output {
    /// The lineage latency is measured from: the row's own, or the latest-arriving contributor's.
    #[inline]
    pub fn origin(&self) -> &Lineage {
        match self {
            Output::Row(r) => &r.lineage,
            Output::Window(w) => &w.origin,
            Output::Record(r) => &r.origin,
        }
    }
}
