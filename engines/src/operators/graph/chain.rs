//! The hand-off between two chained keyed stages: what a join's pair or a deduplication's kept
//! row is to the aggregation behind the second keyed exchange, and what watermark the first
//! stage passes on.
//!
//! **The joined row.** The aggregation reads one event per result: the `row_time` input's
//! event, carrying its event time, with the aggregation's `key_by` and `field` copied in from
//! the other input where only that input carries them (`pipeline::read_side`; validation
//! refuses two such fields sharing a slot). Both engines window on that one time — Spark on the
//! event-time column the query names, Flink SQL on the time attribute of the chosen side.
//! (Flink's DataStream `intervalJoin` would stamp the later of the two times instead; the
//! Flink this models is its SQL planner, as the real-engine translation is.) A deduplication's
//! kept row goes on as it came. Its lineage is the pair's later-arriving record's.
//!
//! **The watermark, where the engines differ.** A pair can carry the time of a row that
//! arrived long before its match, so it may be older than the watermark when it leaves.
//! - Flink SQL's interval join (`RowTimeIntervalJoin`) runs in an operator that holds its
//!   output watermark back by the join's largest possible output delay, `max(−lower, upper)`:
//!   downstream windows fire that much later, and no pair is ever late for them
//!   ([`ChainLink::watermark_delay`]; the per-record engine forwards `min over inputs − delay`).
//! - Spark (≥ 3.4, `statefulOperator.allowMultiple`) has one global watermark per query; each
//!   stateful operator drops input older than the *previous* batch's watermark
//!   (`eventTimeWatermarkForLateEvents`) and evicts with the current one. The micro-batch engine
//!   gives the chained aggregation exactly that, so a pair whose `row_time` is older than the
//!   previous batch's watermark is dropped as late and counted. With `row_time` on the input that
//!   cannot be the earlier one (`right` when `lower >= 0`, `left` when `upper <= 0`) no pair is
//!   ever late and both engines agree with the reference evaluator.
//!
//! Invariant: `row_of` allocates nothing; a result that is not a pair or a row (none occur in a
//! validated chain) is not passed on.

use crate::operators::graph::ExchangeKey;
use crate::operators::{Output, RecordResult, Row, Shape};
use crate::pipeline::{read_side, write_field, Field, JoinKind, PipelineSpec, Side};

/// How a chain's first keyed stage hands its results to the aggregation behind it.
#[derive(Clone, Debug)]
pub struct ChainLink {
    /// A join's hand-off (`None`: a deduplication's rows go on as they are).
    joined: Option<JoinedRow>,
    /// The aggregation's key, which the second exchange routes by.
    key_by: Field,
    /// How far the first stage holds its output watermark back (Flink SQL), ms.
    delay: i64,
}

/// Which input's event a joined row starts from, and the fields copied in from the other.
#[derive(Clone, Copy, Debug)]
struct JoinedRow {
    time: Side,
    /// Up to two fields (`key_by`, `field`) read from the other input.
    copied: [Option<Field>; 2],
}

impl ChainLink {
    /// The link of `pipeline`'s chain (`None`: it has no chain).
    pub fn for_pipeline(pipeline: &PipelineSpec) -> Option<Self> {
        if !pipeline.is_chain() {
            return None;
        }
        let agg = pipeline.aggregate.expect("a chain ends in an aggregate");
        let (joined, delay) = match &pipeline.join {
            Some(j) => {
                let time = j.row_time.expect("validated: a chained join has a row_time");
                let other = |f: Option<Field>| f.filter(|&f| read_side(f, time, &j.left.kinds, &j.right.kinds) != time);
                let (lower, upper) = j.bounds();
                let delay = match j.kind {
                    JoinKind::Interval => (-lower).max(upper).max(0),
                    _ => 0,
                };
                let copied = [other(Some(agg.key_by)), other(agg.field)];
                (Some(JoinedRow { time, copied }), delay)
            }
            None => (None, 0),
        };
        Some(Self {
            joined,
            key_by: agg.key_by,
            delay,
        })
    }

    /// The second exchange: by the aggregation's key.
    pub fn exchange(&self) -> ExchangeKey {
        ExchangeKey::Field(self.key_by)
    }

    /// How far the per-record engine holds the first stage's output watermark back, ms (Flink
    /// SQL's interval join: `max(−lower, upper)`; a deduplication: 0).
    pub fn watermark_delay(&self) -> i64 {
        self.delay
    }

    /// The watermark the first stage passes on when its inputs' is `watermark`.
    #[inline]
    pub fn forwarded(&self, watermark: crate::time::EventTime) -> crate::time::EventTime {
        use crate::time::EventTime;
        if watermark == EventTime::MAX || watermark == EventTime::MIN {
            watermark
        } else {
            watermark.saturating_sub(self.delay)
        }
    }

    /// The row the aggregation reads for one of the first stage's results.
    #[inline]
    pub fn row_of(&self, o: &Output) -> Option<Row> {
        match (o, &self.joined) {
            (Output::Row(r), None) => Some(*r),
            (Output::Record(r), Some(j)) if r.shape == Shape::Pair => Some(j.row(r)),
            _ => None,
        }
    }
}

impl JoinedRow {
    fn row(&self, pair: &RecordResult) -> Row {
        let (mut event, other) = match self.time {
            Side::Left => (pair.left, &pair.right),
            Side::Right => (pair.right, &pair.left),
        };
        for f in self.copied.iter().flatten() {
            write_field(&mut event, *f, crate::pipeline::field_value(other, 0, *f));
        }
        Row {
            event,
            campaign: 0,
            lineage: pair.origin,
        }
    }
}
