//! What a windowed aggregation reads of a row, and the narrow row that carries only that
//! across a per-record keyed exchange ([`ProjectedRow`]).
//!
//! **Why.** A windowed aggregation reads four things of a row: its key, the aggregated value,
//! its event time and its lineage (the latency origin of the window it lands in). A whole
//! [`Row`] is 104 bytes (the 64-byte event, the campaign, four lineage instants); a source
//! subtask wrote every selected row whole into its network buffer and the window subtask read
//! it back, about 12 of the 20 ns an event has at 50 M events/s on one core, and at
//! parallelism 2 half of those rows crossed to the other core. Flink's planner pushes the
//! projection below the exchange (only the columns the aggregate needs are serialized); here
//! the source computes the key and the value once, with the same [`field_value`] the window
//! would, and sends 56 bytes a row.
//!
//! **What it keeps.** Of the lineage, the arrival (per record) and the source's read instant,
//! which is also its buffer write (`ingest = handoff`: a source writes a row into its buffer in
//! the step that read it); the receipt (`recv`) is stamped by the window subtask as it takes
//! the buffer, as for a whole row. So the lineage a window result carries is the one the
//! whole row gave. For the side output (late records) it keeps what the late-records file
//! writes: the sequence number and the kind beside the event time and the arrival
//! ([`WindowInput::late_row`] rebuilds a row of them; the event's other fields are zero).
//!
//! **Where.** Only a job whose keyed subtasks run the windowed aggregation and nothing else
//! projects (`dataflow/graph.rs`); joins, deduplication, top-N and chains keep the whole row.
//!
//! Invariant: for the same input, the window operator's state, results, counters and late
//! rows' written fields are the same from projected rows as from whole rows.

use crate::event::{Event, EventKind};
use crate::operators::{Lineage, Row};
use crate::pipeline::{field_value, Aggregation, Field};
use crate::time::{EventTime, Nanos};

/// A row as a windowed aggregation reads it, projected by the source subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectedRow {
    /// The grouping key's value.
    pub key: i64,
    /// The aggregated field's value (0 for `count`).
    pub value: i64,
    /// The event time.
    pub event_time: EventTime,
    /// Scheduled arrival at the source (the lineage's per-record instant).
    pub arrival: Nanos,
    /// When the source subtask read it and wrote it into its network buffer.
    pub ingest: Nanos,
    /// The event's sequence number (for the side output).
    pub seq: u64,
    /// The event's kind (for the side output).
    pub kind: EventKind,
}

/// The fields a windowed aggregation groups by and aggregates: how a source subtask projects
/// its rows for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection {
    key_by: Field,
    field: Option<Field>,
}

impl Projection {
    /// The projection `agg` reads.
    pub fn for_aggregation(agg: &Aggregation) -> Self {
        Self {
            key_by: agg.key_by,
            field: agg.field,
        }
    }

    /// The projected row of `event` joined to `campaign`, with the arrival and the read
    /// instant of `lineage` (a source subtask's: its `handoff` is its `ingest`).
    #[inline]
    pub fn of(&self, event: &Event, campaign: u32, lineage: &Lineage) -> ProjectedRow {
        debug_assert_eq!(
            lineage.ingest, lineage.handoff,
            "a source writes a row in the step that read it"
        );
        ProjectedRow {
            key: field_value(event, campaign, self.key_by),
            value: self.field.map_or(0, |f| field_value(event, campaign, f)),
            event_time: event.event_time,
            arrival: lineage.arrival,
            ingest: lineage.ingest,
            seq: event.seq,
            kind: event.kind,
        }
    }
}

/// The key and value columns of a chunk's selected rows ([`Projection::columns`]): scratch,
/// reused from chunk to chunk.
#[derive(Clone, Debug, Default)]
pub struct ProjectedColumns {
    /// Each selected row's key.
    pub keys: Vec<i64>,
    /// Each selected row's aggregated value (empty for `count`: every value is 0).
    pub values: Vec<i64>,
}

impl ProjectedColumns {
    /// Selected row `k`'s key and value.
    #[inline]
    pub fn get(&self, k: usize) -> (i64, i64) {
        (self.keys[k], self.values.get(k).copied().unwrap_or(0))
    }
}

impl Projection {
    /// Fills `columns` with the key and value of the rows `rows` selects from `chunk`, joined to
    /// `campaigns`: a pass a column at a time, the field chosen once per column, so the loop
    /// that writes the projected rows into the network buffer is small enough to be inlined
    /// (built by a call, each row went through the stack: a store-forwarding stall per row).
    #[inline]
    pub fn columns(&self, chunk: &[Event], rows: &[u32], campaigns: &[u32], columns: &mut ProjectedColumns) {
        column(&mut columns.keys, self.key_by, chunk, rows, campaigns);
        match self.field {
            Some(f) => column(&mut columns.values, f, chunk, rows, campaigns),
            None => columns.values.clear(),
        }
    }
}

/// `out[k]` = field `f` of selected row `k`.
#[inline]
fn column(out: &mut Vec<i64>, f: Field, chunk: &[Event], rows: &[u32], campaigns: &[u32]) {
    out.clear();
    match f {
        Field::Campaign => out.extend(campaigns.iter().map(|&c| c as i64)),
        f => out.extend(
            rows.iter()
                .zip(campaigns)
                .map(|(&r, &c)| field_value(&chunk[r as usize], c, f)),
        ),
    }
}

/// A row a windowed aggregation takes: a whole [`Row`] or a [`ProjectedRow`].
pub trait WindowInput: Copy {
    /// The event time.
    fn event_time(&self) -> EventTime;
    /// The grouping key and the aggregated value (0 for `count`) under `key_by` and `field`
    /// (a projected row was projected for this aggregation: it carries them).
    fn fields(&self, key_by: Field, field: Option<Field>) -> (i64, i64);
    /// Scheduled arrival at the source.
    fn arrival(&self) -> Nanos;
    /// The lineage, received by the window subtask at `recv` (a whole row is stamped as the
    /// subtask takes it and carries its own).
    fn lineage(&self, recv: Nanos) -> Lineage;
    /// The row the side output keeps when it is late, received at `recv`.
    fn late_row(&self, recv: Nanos) -> Row;
}

impl WindowInput for Row {
    #[inline]
    fn event_time(&self) -> EventTime {
        self.event.event_time
    }

    #[inline]
    fn fields(&self, key_by: Field, field: Option<Field>) -> (i64, i64) {
        let key = field_value(&self.event, self.campaign, key_by);
        (key, field.map_or(0, |f| field_value(&self.event, self.campaign, f)))
    }

    #[inline]
    fn arrival(&self) -> Nanos {
        self.lineage.arrival
    }

    #[inline]
    fn lineage(&self, _recv: Nanos) -> Lineage {
        self.lineage
    }

    fn late_row(&self, _recv: Nanos) -> Row {
        *self
    }
}

impl WindowInput for ProjectedRow {
    #[inline]
    fn event_time(&self) -> EventTime {
        self.event_time
    }

    #[inline]
    fn fields(&self, _key_by: Field, _field: Option<Field>) -> (i64, i64) {
        (self.key, self.value)
    }

    #[inline]
    fn arrival(&self) -> Nanos {
        self.arrival
    }

    #[inline]
    fn lineage(&self, recv: Nanos) -> Lineage {
        Lineage {
            arrival: self.arrival,
            ingest: self.ingest,
            handoff: self.ingest,
            recv,
        }
    }

    fn late_row(&self, recv: Nanos) -> Row {
        Row {
            event: Event {
                seq: self.seq,
                event_time: self.event_time,
                arrival: self.arrival,
                partition: 0,
                user: 0,
                session: 0,
                page: 0,
                ad: 0,
                kind: self.kind,
                dwell_ms: 0,
                price_cents: 0,
            },
            campaign: 0,
            lineage: self.lineage(recv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AggFunc, WindowSpec};
    use crate::time::Span;

    #[test]
    fn a_projected_row_reads_as_the_whole_row_it_was_made_of() {
        let event = Event {
            seq: 42,
            event_time: 12_345,
            arrival: 7_000,
            partition: 1,
            user: 9,
            session: 3,
            page: 4,
            ad: 17,
            kind: EventKind::Purchase,
            dwell_ms: 250,
            price_cents: 1_999,
        };
        let agg = Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(10_000),
            },
            function: AggFunc::Sum,
            field: Some(Field::PriceCents),
        };
        let row = Row {
            event,
            campaign: 5,
            lineage: Lineage {
                arrival: 7_000,
                ingest: 8_000,
                handoff: 8_000,
                recv: 9_000,
            },
        };
        let p = Projection::for_aggregation(&agg).of(&event, 5, &row.lineage);
        assert_eq!(p.fields(agg.key_by, agg.field), row.fields(agg.key_by, agg.field));
        assert_eq!(p.fields(agg.key_by, agg.field), (5, 1_999));
        assert_eq!(p.event_time(), row.event_time());
        assert_eq!(p.arrival(), row.arrival());
        assert_eq!(p.lineage(9_000), row.lineage(9_000));
        let late = p.late_row(9_000);
        assert_eq!(
            (
                late.event.seq,
                late.event.event_time,
                late.event.arrival,
                late.event.kind
            ),
            (42, 12_345, 7_000, EventKind::Purchase)
        );
        assert_eq!(std::mem::size_of::<ProjectedRow>(), 56);
    }
}
