//! How a keyed stage's state is written down in checkpoints: the per-record engine's snapshot
//! of a keyed subtask (or of the sink subtask's second aggregation), and the micro-batch
//! engine's state version of a shuffle partition. The bytes go inside the one framing of state
//! files (`crate::checkpoint::frame`: magic, length, FNV-1a); this file is only the body.
//!
//! Little-endian throughout, like the window state's encoding (`operators/window/codec.rs`):
//!
//! ```text
//! stage   := tag: u8 (1 join, 2 dedup, 3 top-N, 4 second aggregation) | watermark: i64 | body
//! event   := seq u64 | event_time i64 | arrival u64 | partition u32 | user u32 | session u64
//!            | page u32 | ad u32 | kind u8 | dwell_ms u32 | price_cents u32
//! lineage := 4 × u64 (arrival, ingest, handoff, recv)
//! row     := event | campaign u32 | lineage
//! record  := shape u8 | left event | right event | start i64 | end i64 | origin lineage
//!            | fired_at u64 | handoff u64 | recv u64
//! window  := key i64 | start i64 | end i64 | count u64 | value f64 | origin lineage
//!            | fired_at u64 | handoff u64 | recv u64 | is_update u8
//! ```
//!
//! Each operator writes its own body (`join.rs`, `dedup.rs`, `top_n.rs`, `then.rs`) from these
//! pieces; a list is a `u64` count followed by its items, in the operator's own order (the
//! order decides which results leave first, so it is kept exactly).
//!
//! Invariants: these bytes are part of the checkpoint format; restoring what was encoded gives
//! back an operator that behaves exactly as the encoded one would have; a decoder refuses
//! (returns `None` for) anything it did not consume exactly, or a stage of another kind.

use crate::event::{Event, EventKind};
use crate::operators::{Lineage, RecordResult, Row, Shape, WindowResult};
use crate::time::{EventTime, Nanos};

/// Which operator a stage encoding holds (its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum StageTag {
    Join = 1,
    Dedup = 2,
    TopN = 3,
    Then = 4,
}

/// Appends the little-endian encoding of values to a state body.
pub(super) struct Writer<'a>(pub(super) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// The tag and watermark every stage encoding starts with.
    pub(super) fn header(&mut self, tag: StageTag, watermark: EventTime) {
        self.u8(tag as u8);
        self.i64(watermark);
    }

    pub(super) fn event(&mut self, e: &Event) {
        self.u64(e.seq);
        self.i64(e.event_time);
        self.u64(e.arrival);
        self.u32(e.partition);
        self.u32(e.user);
        self.u64(e.session);
        self.u32(e.page);
        self.u32(e.ad);
        self.u8(e.kind.index() as u8);
        self.u32(e.dwell_ms);
        self.u32(e.price_cents);
    }

    pub(super) fn lineage(&mut self, l: &Lineage) {
        for v in [l.arrival, l.ingest, l.handoff, l.recv] {
            self.u64(v);
        }
    }

    pub(super) fn row(&mut self, r: &Row) {
        self.event(&r.event);
        self.u32(r.campaign);
        self.lineage(&r.lineage);
    }

    pub(super) fn record(&mut self, r: &RecordResult) {
        self.u8(match r.shape {
            Shape::Pair => 0,
            Shape::LeftOnly => 1,
            Shape::RightOnly => 2,
            Shape::Ranked => 3,
        });
        self.event(&r.left);
        self.event(&r.right);
        self.i64(r.start);
        self.i64(r.end);
        self.lineage(&r.origin);
        for v in [r.fired_at, r.handoff, r.recv] {
            self.u64(v);
        }
    }

    pub(super) fn window(&mut self, w: &WindowResult) {
        self.i64(w.key);
        self.i64(w.start);
        self.i64(w.end);
        self.u64(w.count);
        self.u64(w.value.to_bits());
        self.lineage(&w.origin);
        for v in [w.fired_at, w.handoff, w.recv] {
            self.u64(v);
        }
        self.u8(u8::from(w.is_update));
    }
}

/// Reads what a [`Writer`] wrote from the front of a state body; every read is `None` past
/// the end.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(v)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*head))
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*head))
    }

    pub(super) fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }

    /// A list's length; no more than the bytes left could hold (a damaged count is refused
    /// before anything is allocated for it).
    pub(super) fn len(&mut self) -> Option<usize> {
        let n = self.u64()?;
        (n <= self.0.len() as u64).then_some(n as usize)
    }

    /// The header of a stage encoding of kind `tag`: its watermark.
    pub(super) fn header(&mut self, tag: StageTag) -> Option<EventTime> {
        (self.u8()? == tag as u8).then_some(())?;
        self.i64()
    }

    /// Everything was read: the encoding was exactly one stage.
    pub(super) fn done(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }

    pub(super) fn event(&mut self) -> Option<Event> {
        Some(Event {
            seq: self.u64()?,
            event_time: self.i64()?,
            arrival: self.u64()? as Nanos,
            partition: self.u32()?,
            user: self.u32()?,
            session: self.u64()?,
            page: self.u32()?,
            ad: self.u32()?,
            kind: *EventKind::ALL.get(self.u8()? as usize)?,
            dwell_ms: self.u32()?,
            price_cents: self.u32()?,
        })
    }

    pub(super) fn lineage(&mut self) -> Option<Lineage> {
        Some(Lineage {
            arrival: self.u64()?,
            ingest: self.u64()?,
            handoff: self.u64()?,
            recv: self.u64()?,
        })
    }

    pub(super) fn row(&mut self) -> Option<Row> {
        Some(Row {
            event: self.event()?,
            campaign: self.u32()?,
            lineage: self.lineage()?,
        })
    }

    pub(super) fn record(&mut self) -> Option<RecordResult> {
        let shape = match self.u8()? {
            0 => Shape::Pair,
            1 => Shape::LeftOnly,
            2 => Shape::RightOnly,
            3 => Shape::Ranked,
            _ => return None,
        };
        Some(RecordResult {
            shape,
            left: self.event()?,
            right: self.event()?,
            start: self.i64()?,
            end: self.i64()?,
            origin: self.lineage()?,
            fired_at: self.u64()?,
            handoff: self.u64()?,
            recv: self.u64()?,
        })
    }

    pub(super) fn window(&mut self) -> Option<WindowResult> {
        Some(WindowResult {
            key: self.i64()?,
            start: self.i64()?,
            end: self.i64()?,
            count: self.u64()?,
            value: f64::from_bits(self.u64()?),
            origin: self.lineage()?,
            fired_at: self.u64()?,
            handoff: self.u64()?,
            recv: self.u64()?,
            is_update: match self.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
        })
    }
}
