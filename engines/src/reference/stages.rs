//! The reference evaluator's part for the stages beyond the one-shape pipeline: predicates and
//! conversion, deduplication, the second aggregation, the joins and top-N, and the points a
//! join hands to an aggregation chained behind it, each computed
//! from its definition over the whole input at once — every pair tested, every window ranked —
//! with no state, no watermark and no code shared with the operators.

use std::collections::BTreeMap;

use crate::dimension::CampaignTable;
use crate::event::Event;
use crate::operators::Shape;
use crate::pipeline::{
    field_value, AggFunc, Aggregation, Convert, DedupSpec, Field, JoinInput, JoinKind, JoinSpec, JoinType,
    PipelineSpec, Predicate, Side, ThenSpec, WindowSpec,
};
use crate::reference::WindowId;
use crate::time::EventTime;

/// Whether `e` passes `p`.
pub(super) fn passes(p: &Predicate, e: &Event) -> bool {
    let v = field_value(e, 0, p.field);
    match (p.modulo, p.equals, p.not_equals, &p.one_of, p.at_least, p.below) {
        (Some(m), Some(x), ..) => v.rem_euclid(m) == x,
        (None, Some(x), ..) => v == x,
        (_, _, Some(x), ..) => v != x,
        (_, _, _, Some(xs), ..) => xs.contains(&v),
        (_, _, _, _, Some(x), _) => v >= x,
        (_, _, _, _, _, Some(x)) => v < x,
        _ => true,
    }
}

/// `e` with `c` applied.
pub(super) fn convert(c: &Convert, e: &Event) -> Event {
    let mut out = *e;
    let v = field_value(e, 0, c.field);
    crate::nexmark::set_field(&mut out, c.field, v.wrapping_mul(c.multiply) / c.divide);
    out
}

/// Whether `e` is kept by deduplication `d`, given the kept records so far (arrival order).
pub(super) fn first_within(
    d: &DedupSpec,
    e: &Event,
    campaign: u32,
    kept: &mut BTreeMap<Vec<i64>, Vec<EventTime>>,
) -> bool {
    let key: Vec<i64> = d.key.iter().map(|&f| field_value(e, campaign, f)).collect();
    let times = kept.entry(key).or_default();
    let within = d.within.whole_ms();
    if times.iter().any(|&k| (e.event_time - k).abs() < within) {
        return false;
    }
    times.push(e.event_time);
    true
}

/// The second aggregation over the first's windows.
pub(super) fn then(t: &ThenSpec, first: &BTreeMap<WindowId, (u64, f64)>) -> BTreeMap<WindowId, (u64, f64)> {
    type Members = Vec<(i64, u64, f64)>;
    let mut by_window: BTreeMap<(EventTime, EventTime), Members> = BTreeMap::new();
    for (&(key, start, end), &(count, value)) in first {
        by_window.entry((start, end)).or_default().push((key, count, value));
    }
    let mut out = BTreeMap::new();
    for ((start, end), members) in by_window {
        let values: Vec<f64> = members.iter().map(|m| m.2).collect();
        let answer = match t.function {
            AggFunc::Max => values.iter().cloned().fold(f64::MIN, f64::max),
            AggFunc::Min => values.iter().cloned().fold(f64::MAX, f64::min),
            AggFunc::Sum => values.iter().sum(),
            AggFunc::Count => values.len() as f64,
            AggFunc::Avg => values.iter().sum::<f64>() / values.len() as f64,
            AggFunc::DistinctCount => {
                let mut bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
                bits.sort_unstable();
                bits.dedup();
                bits.len() as f64
            }
        };
        if t.keep_matching {
            for (key, count, value) in members {
                if value == answer {
                    out.insert((key, start, end), (count, value));
                }
            }
        } else {
            out.insert((0, start, end), (values.len() as u64, answer));
        }
    }
    out
}

/// The result records of a join or a top-N over `events`.
pub(super) fn records<'a>(
    p: &PipelineSpec,
    table: &CampaignTable,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<(Shape, u64, u64, EventTime)> {
    let events: Vec<&Event> = events.into_iter().collect();
    let mut out = Vec::new();
    if let Some(j) = &p.join {
        let admits = |input: &JoinInput, e: &Event| {
            input.kinds.contains(&e.kind) && input.predicates.iter().all(|q| passes(q, e))
        };
        let left: Vec<&Event> = events.iter().copied().filter(|e| admits(&j.left, e)).collect();
        // A record passing both inputs' tests goes to the left one.
        let right: Vec<&Event> = events
            .iter()
            .copied()
            .filter(|e| !admits(&j.left, e) && admits(&j.right, e))
            .collect();
        let mut right_by_key: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
        for r in &right {
            right_by_key.entry(field_value(r, 0, j.right.key)).or_default().push(r);
        }
        let mut right_matched = std::collections::BTreeSet::new();
        for l in &left {
            let mut matched = false;
            for r in right_by_key.get(&field_value(l, 0, j.left.key)).into_iter().flatten() {
                let (lt, rt) = (l.event_time, r.event_time);
                let windows: Vec<EventTime> = match j.kind {
                    JoinKind::Unbounded => vec![0],
                    JoinKind::Interval => {
                        let (lo, hi) = j.bounds();
                        if lt + lo <= rt && rt <= lt + hi {
                            vec![0]
                        } else {
                            vec![]
                        }
                    }
                    JoinKind::Window => window_starts(j.window.expect("validated"), lt)
                        .into_iter()
                        .filter(|s| window_starts(j.window.expect("validated"), rt).contains(s))
                        .collect(),
                };
                for start in windows {
                    matched = true;
                    right_matched.insert(r.seq);
                    out.push((Shape::Pair, l.seq, r.seq, start));
                }
            }
            if !matched && j.join_type == JoinType::LeftOuter {
                out.push((Shape::LeftOnly, l.seq, u64::MAX, 0));
            }
        }
        if j.join_type == JoinType::RightOuter {
            for r in right.iter().filter(|r| !right_matched.contains(&r.seq)) {
                out.push((Shape::RightOnly, u64::MAX, r.seq, 0));
            }
        }
    }
    if let Some(t) = &p.top_n {
        let mut windows: BTreeMap<EventTime, Vec<(i64, u64)>> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| p.filter_kinds.as_ref().is_none_or(|k| k.contains(&e.kind)))
        {
            if !p.predicates.iter().all(|q| passes(q, e)) {
                continue;
            }
            let e = &p.convert.as_ref().map_or(**e, |c| convert(c, e));
            let campaign = match p.lookup_join {
                false => 0,
                true => match table.campaign(e.ad) {
                    Some(c) => c,
                    None => continue,
                },
            };
            let v = field_value(e, campaign, t.by);
            for s in window_starts(t.window, e.event_time) {
                windows.entry(s).or_default().push((v, e.seq));
            }
        }
        for (start, mut members) in windows {
            // Largest first: a record's rank is the number of records strictly above it, the
            // position of the first record with its value.
            members.sort_unstable_by_key(|m| std::cmp::Reverse(m.0));
            let mut first_of_value = 0;
            for (i, &(v, seq)) in members.iter().enumerate() {
                if i > 0 && members[i - 1].0 != v {
                    first_of_value = i;
                }
                if first_of_value < t.n as usize {
                    out.push((Shape::Ranked, seq, u64::MAX, start));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// A chain's aggregation points: for every pair of an inner interval join `j`, the
/// `(key, value, time)` the aggregation `agg` reads — the time of the `row_time` input's record,
/// each field from the record whose kind carries it (the `row_time` one when both do).
pub(super) fn joined_points<'a>(
    j: &JoinSpec,
    agg: &Aggregation,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<(i64, i64, EventTime)> {
    let admits =
        |input: &JoinInput, e: &Event| input.kinds.contains(&e.kind) && input.predicates.iter().all(|q| passes(q, e));
    let events: Vec<&Event> = events.into_iter().collect();
    let (lo, hi) = j.bounds();
    let mut right_by_key: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
    for r in events.iter().filter(|e| !admits(&j.left, e) && admits(&j.right, e)) {
        right_by_key.entry(field_value(r, 0, j.right.key)).or_default().push(r);
    }
    let mut points = Vec::new();
    for l in events.iter().filter(|e| admits(&j.left, e)) {
        for r in right_by_key.get(&field_value(l, 0, j.left.key)).into_iter().flatten() {
            if !(l.event_time + lo <= r.event_time && r.event_time <= l.event_time + hi) {
                continue;
            }
            let (timed, other) = match j.row_time {
                Some(Side::Left) => (*l, *r),
                _ => (*r, *l),
            };
            let read = |f: Field| {
                let from = match f.kinds() {
                    Some(carried) if !carried.contains(&timed.kind) && carried.contains(&other.kind) => other,
                    _ => timed,
                };
                field_value(from, 0, f)
            };
            points.push((read(agg.key_by), agg.field.map_or(0, read), timed.event_time));
        }
    }
    points
}

/// The starts of the windows holding `t`.
fn window_starts(w: WindowSpec, t: EventTime) -> Vec<EventTime> {
    let (size, slide) = match w {
        WindowSpec::Tumbling { size } => (size.whole_ms(), size.whole_ms()),
        WindowSpec::Sliding { size, slide } => (size.whole_ms(), slide.whole_ms()),
        WindowSpec::Session { .. } => return vec![],
    };
    let mut starts = Vec::new();
    let mut s = t - t.rem_euclid(slide);
    while s > t - size {
        starts.push(s);
        s -= slide;
    }
    starts
}
