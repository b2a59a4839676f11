//! Chains of keyed stages: a join or a deduplication followed by a windowed aggregation keyed
//! its own way, behind a second keyed exchange (impressions joined with clicks, then clicks
//! counted per ad per window; bids deduplicated, then counted per auction).
//!
//! What a chain may be is decided here, once, for both engines; how the joined row looks to the
//! aggregation (its event time, the fields read from each input) is `operators/graph/chain.rs`.
//!
//! The rules, and why (each names the key it refuses):
//! - two keyed stages at most, the first a `join` or a `dedup`, the second the `aggregate`
//!   (and the global `then` over it, as before);
//! - a join in a chain is an inner interval join: its pairs leave as they are matched, with the
//!   event time of the input `row_time` names. A window join's pairs leave Flink only as their
//!   window fires, an unbounded join's rows carry no trustworthy time (Flink SQL drops the time
//!   attribute after a regular join), and an outer join's unmatched rows leave when they
//!   expire, already older than the watermark: Spark's one global watermark would drop them in
//!   the aggregation as late (its `statefulOperator.checkCorrectness` check refuses the shape);
//! - the aggregation's `key_by` and `field` must be carried by one of the join's inputs, and
//!   two fields read from different inputs must not share an event slot.

use crate::event::{Event, EventKind};
use crate::pipeline::stages::check_field_kinds;
use crate::pipeline::{Field, JoinKind, JoinType, PipelineError, PipelineSpec, Side};

/// Checks the chain of keyed stages of `p`, if it has one (called from the stages' validation).
pub(crate) fn validate(p: &PipelineSpec) -> Result<(), PipelineError> {
    let keyed: Vec<&str> = [
        (p.join.is_some(), "join"),
        (p.dedup.is_some(), "dedup"),
        (p.top_n.is_some(), "top_n"),
        (p.aggregate.is_some(), "aggregate"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let chain = matches!(keyed.as_slice(), ["join" | "dedup", "aggregate"]);
    if keyed.len() > 1 && !chain {
        // Top-N never chains; otherwise the second stage is the one too many.
        let offending = keyed.iter().find(|k| **k == "top_n").unwrap_or(&keyed[1]);
        return Err(PipelineError::at(
            offending,
            format!(
                "this pipeline has {} keyed stages ({}); a chain is a `join` or a `dedup` followed by an `aggregate` (and its `then`): top-N's records leave only as its window closes, and two joins or a join and a deduplication do not chain here",
                keyed.len(),
                keyed.join(", ")
            ),
        ));
    }
    let Some(j) = &p.join else {
        return Ok(());
    };
    let Some(a) = &p.aggregate else {
        if j.row_time.is_some() {
            return Err(PipelineError::at(
                "join.row_time",
                "only a join followed by an `aggregate` has a `row_time` (the event time its rows carry into the aggregation's windows)".into(),
            ));
        }
        return Ok(());
    };
    if j.kind != JoinKind::Interval {
        return Err(PipelineError::at(
            "join.kind",
            "a join followed by an aggregation must be an `interval` join: a window join's pairs leave Flink only as their window fires, and an unbounded join's rows carry no event time the aggregation's windows can trust (Flink SQL drops the time attribute after a regular join)".into(),
        ));
    }
    if j.join_type != JoinType::Inner {
        return Err(PipelineError::at(
            "join.type",
            "a join followed by an aggregation must be `inner`: an outer join's unmatched rows leave when they expire, already behind the watermark, and Spark's one global watermark would drop them in the aggregation as late (Spark refuses the shape); use `inner`".into(),
        ));
    }
    let Some(time) = j.row_time else {
        return Err(PipelineError::at(
            "join.row_time",
            "a join followed by an aggregation needs `row_time = \"left\"` or `\"right\"`: the input whose event time the joined row carries into the aggregation's windows (Spark's event-time column, Flink SQL's time attribute)".into(),
        ));
    };
    let kinds: Vec<EventKind> = j.left.kinds.iter().chain(&j.right.kinds).copied().collect();
    let mut read = vec![("aggregate.key_by", a.key_by)];
    read.extend(a.field.map(|f| ("aggregate.field", f)));
    for &(key, f) in &read {
        if f == Field::Campaign {
            return Err(PipelineError::at(
                key,
                "`campaign` comes from the lookup join, which a stream-stream join's inputs do not run; aggregate by `ad`".into(),
            ));
        }
        check_field_kinds(f, &kinds, key)?;
    }
    let side_of = |f: Field| read_side(f, time, &j.left.kinds, &j.right.kinds);
    if let [(_, k), (key, f)] = read.as_slice() {
        if side_of(*k) != side_of(*f) && shares_slot(*k, *f) {
            return Err(PipelineError::at(
                key,
                format!(
                    "`{}` and `{}` come from different inputs of the join but share one slot of the joined row; aggregate a field of the `row_time` input, or key by one",
                    f.name(),
                    k.name()
                ),
            ));
        }
    }
    Ok(())
}

/// Which input of a join a chained aggregation reads `f` from: the other input when only its
/// kinds carry `f`, else the `time` input (its own columns, and fields both carry).
pub fn read_side(f: Field, time: Side, left: &[EventKind], right: &[EventKind]) -> Side {
    let (mine, other, other_side) = match time {
        Side::Left => (left, right, Side::Right),
        Side::Right => (right, left, Side::Left),
    };
    match f.kinds() {
        Some(carried) if !mine.iter().any(|k| carried.contains(k)) && other.iter().any(|k| carried.contains(k)) => {
            other_side
        }
        _ => time,
    }
}

/// Writes field `f` of `e` (a joined row taking a field from the other input); the stream's
/// own columns (`seq`, `event_time`, `partition`, `kind`, `campaign`) are never written.
#[inline]
pub fn write_field(e: &mut Event, f: Field, v: i64) {
    match f {
        Field::User => e.user = v as u32,
        Field::Session => e.session = v as u64,
        Field::Page => e.page = v as u32,
        Field::Ad => e.ad = v as u32,
        other => crate::nexmark::set_field(e, other, v),
    }
}

/// Whether writing `a` into an event changes what `b` reads (they share a slot).
fn shares_slot(a: Field, b: Field) -> bool {
    let mut e = Event {
        seq: 0,
        event_time: 0,
        arrival: 0,
        partition: 0,
        user: 0,
        session: 0,
        page: 0,
        ad: 0,
        kind: EventKind::Bid,
        dwell_ms: 0,
        price_cents: 0,
    };
    write_field(&mut e, a, 1);
    crate::pipeline::field_value(&e, 0, b) != 0
}
