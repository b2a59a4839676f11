//! The reference evaluator: a pipeline's exact result over a finite input, with no notion of
//! time, written as plainly as possible and sharing no windowing or aggregation code with the
//! engines (only the field accessors). Both engines are tested against it.
//!
//! For a stateful pipeline the result is the full table of windows — every `(key, start, end)`
//! with its count and aggregate value — as if every record had arrived in time. Engines that
//! drop late data or have not yet closed a window are compared against the part of this table
//! their semantics promise (see the differential tests).

mod stages;

use std::collections::{BTreeMap, BTreeSet};

use crate::dimension::CampaignTable;
use crate::event::Event;
use crate::pipeline::{field_value, AggFunc, Aggregation, PipelineSpec, WindowSpec};
use crate::time::EventTime;

/// A window's identity: key, start, end.
pub type WindowId = (i64, EventTime, EventTime);

/// The exact result of a pipeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceResult {
    /// Stateless pipeline: the sequence numbers of the events that reach the sink, ascending.
    pub rows: Vec<u64>,
    /// Stateful pipeline: every window with its (count, value).
    pub windows: BTreeMap<WindowId, (u64, f64)>,
    /// A join or a top-N: every result's identity — shape, left and right sequence numbers
    /// (`u64::MAX` for an absent side), window start — sorted.
    pub records: Vec<(crate::operators::Shape, u64, u64, EventTime)>,
}

/// Computes the exact result of `pipeline` over `events`.
pub fn evaluate<'a>(
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    events: impl IntoIterator<Item = &'a Event>,
) -> ReferenceResult {
    let mut result = ReferenceResult::default();
    if let (Some(join), Some(agg)) = (&pipeline.join, &pipeline.aggregate) {
        // A chain: the join's pairs, each a (key, value, time) point of the aggregation.
        let points = stages::joined_points(join, agg, events);
        result.windows = windows_of(agg, points);
        if let Some(then) = &pipeline.then {
            result.windows = stages::then(then, &result.windows);
        }
        return result;
    }
    if pipeline.join.is_some() || pipeline.top_n.is_some() {
        result.records = stages::records(pipeline, table, events);
        return result;
    }
    // The aggregation's (key, value, time) points.
    let mut points: Vec<(i64, i64, EventTime)> = Vec::new();
    let mut dedup_kept = BTreeMap::new();
    for e in events {
        if let Some(kinds) = &pipeline.filter_kinds {
            if !kinds.contains(&e.kind) {
                continue;
            }
        }
        if !pipeline.predicates.iter().all(|p| stages::passes(p, e)) {
            continue;
        }
        let converted;
        let e = match &pipeline.convert {
            None => e,
            Some(c) => {
                converted = stages::convert(c, e);
                &converted
            }
        };
        let campaign = if pipeline.lookup_join {
            match table.campaign(e.ad) {
                Some(c) => c,
                None => continue,
            }
        } else {
            0
        };
        if let Some(d) = &pipeline.dedup {
            if !stages::first_within(d, e, campaign, &mut dedup_kept) {
                continue;
            }
        }
        let Some(agg) = &pipeline.aggregate else {
            result.rows.push(e.seq);
            continue;
        };
        let key = field_value(e, campaign, agg.key_by);
        let value = agg.field.map_or(0, |f| field_value(e, campaign, f));
        points.push((key, value, e.event_time));
    }
    if let Some(agg) = &pipeline.aggregate {
        result.windows = windows_of(agg, points);
    }
    if let Some(then) = &pipeline.then {
        result.windows = stages::then(then, &result.windows);
    }
    result.rows.sort_unstable();
    result
}

/// Every window of `agg` over its `(key, value, time)` points, with its (count, value).
fn windows_of(agg: &Aggregation, points: Vec<(i64, i64, EventTime)>) -> BTreeMap<WindowId, (u64, f64)> {
    // Values of each window (or, for sessions, each key's (time, value) list).
    let mut groups: BTreeMap<WindowId, Vec<i64>> = BTreeMap::new();
    let mut by_key: BTreeMap<i64, Vec<(EventTime, i64)>> = BTreeMap::new();
    for (key, value, t) in points {
        match agg.window {
            WindowSpec::Tumbling { size } => {
                let size = size.whole_ms();
                let start = t.div_euclid(size) * size;
                groups.entry((key, start, start + size)).or_default().push(value);
            }
            WindowSpec::Sliding { size, slide } => {
                let (size, slide) = (size.whole_ms(), slide.whole_ms());
                // Every start s on the slide grid with s <= t < s + size.
                let mut k = (t - size).div_euclid(slide) + 1;
                while k * slide <= t {
                    let start = k * slide;
                    groups.entry((key, start, start + size)).or_default().push(value);
                    k += 1;
                }
            }
            WindowSpec::Session { .. } => by_key.entry(key).or_default().push((t, value)),
        }
    }
    if let WindowSpec::Session { gap } = agg.window {
        let gap = gap.whole_ms();
        for (key, mut points) in by_key {
            points.sort_unstable();
            let mut current: Option<(EventTime, EventTime, Vec<i64>)> = None;
            for (t, v) in points {
                match &mut current {
                    // Half-open [t, t + gap): a record at exactly `end` starts a new session.
                    Some((_, end, values)) if t < *end => {
                        *end = (*end).max(t + gap);
                        values.push(v);
                    }
                    _ => {
                        if let Some((s, e, values)) = current.take() {
                            groups.insert((key, s, e), values);
                        }
                        current = Some((t, t + gap, vec![v]));
                    }
                }
            }
            if let Some((s, e, values)) = current {
                groups.insert((key, s, e), values);
            }
        }
    }
    groups
        .into_iter()
        .map(|(id, values)| (id, (values.len() as u64, aggregate(agg.function, &values))))
        .collect()
}

fn aggregate(func: AggFunc, values: &[i64]) -> f64 {
    let sum: i64 = values.iter().fold(0i64, |a, v| a.wrapping_add(*v));
    match func {
        AggFunc::Count => values.len() as f64,
        AggFunc::Sum => sum as f64,
        AggFunc::Min => *values.iter().min().expect("non-empty window") as f64,
        AggFunc::Max => *values.iter().max().expect("non-empty window") as f64,
        AggFunc::Avg => sum as f64 / values.len() as f64,
        AggFunc::DistinctCount => values.iter().collect::<BTreeSet<_>>().len() as f64,
    }
}
