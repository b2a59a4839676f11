//! A real engine's output lines turned back into streamlab's outputs, timed and checked.
//!
//! The receiver stamps each line on receipt; this module reads it by the shared row contract
//! ([`crate::job::sink_columns`]) and rebuilds the [`Output`] a native engine would have
//! delivered — a stateless row is matched to its event by `seq`, so the sink file, the report
//! and the recovery ledger treat it like any other — with its latency measured the same way:
//! receipt stamp − the scheduled arrival the row carries (`origin_arrival_ns`). Warm-up outputs
//! are delivered and checked but left out of the latency histograms.
//!
//! A real engine's latency is measured whole: streamlab sees when a row left its schedule and
//! when it came back, not the engine's phases in between, so it is recorded as one total and
//! no component of the engine's is reported. On Kafka one share of it is measured from outside
//! per output, the broker's output hop (the result's append to the output topic → its receipt,
//! [`StampedLine::output_hop`]): it is reported as the `broker` component, as for the native
//! engines on Kafka, and the rest is the engine's (the input hop, per event, is in a note). What
//! the engine itself measured (Spark's batch durations, Flink's checkpoints) is in its progress
//! records.
//!
//! [`ReferenceCheck`] compares what the engine delivered with the reference evaluator's exact
//! result: the same set of rows (each column by column against its event), the same final
//! value of every window, or the same multiset of join and top-N records (by identity: shape,
//! the records' `seq`, window start). Where a real engine's rule differs from streamlab's
//! modelled one, the reference is taken as that engine defines it ([`real_engine_reference`]:
//! touching sessions merged, Flink's `ROW_NUMBER` top-N) and only what the engine promises by
//! the end of its input is expected ([`record_promised`]: Spark's last outer rows).

use std::collections::BTreeMap;

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::Event;
use streamlab_engines::latency::Component;
use streamlab_engines::latency::{Decomposition, LatencyRecorder};
use streamlab_engines::operators::{Lineage, Output, RecordResult, Row, Shape, WindowResult};
use streamlab_engines::pipeline::{field_value, Field, JoinKind, JoinSpec, OutputShape, PipelineSpec, WindowSpec};
use streamlab_engines::reference::{self, ReferenceResult, WindowId};
use streamlab_engines::run::Delivered;
use streamlab_engines::time::Span;
use streamlab_engines::time::{event_time_as_nanos, EventTime, Nanos};

use crate::driver::StampedLine;
use crate::job::sink_columns;

/// What the engine delivered, rebuilt and timed.
#[derive(Debug)]
pub struct ReadOutputs {
    /// Every output, in receipt order.
    pub delivered: Vec<Delivered>,
    /// Latency of every output stamped after the warm-up.
    pub latency: LatencyRecorder,
    /// Outputs stamped during the warm-up (delivered, not in the histograms).
    pub warmup_outputs: u64,
    /// Rows whose projected columns differ from their event's (after the pipeline's `convert`),
    /// one description each: the engine read a wrong column or converted wrongly.
    pub differing_rows: Vec<String>,
}

/// Reads `lines` (the engine's output for `pipeline` over `events`, which are in arrival order
/// with `seq` their position). An error names the line (1-based, in receipt order) and what is
/// wrong with it.
pub fn read_outputs(
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    events: &[Event],
    lines: &[StampedLine],
) -> Result<ReadOutputs, String> {
    let columns = sink_columns(pipeline);
    let on_kafka = lines.iter().any(|l| l.output_hop.is_some());
    let mut latency = LatencyRecorder::new(if on_kafka { &[Component::Broker] } else { &[] });
    let mut delivered = Vec::with_capacity(lines.len());
    let mut warmup_outputs = 0;
    let mut differing_rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let bad = |what: String| format!("output line {}: {what} (line: {:?})", i + 1, line.text);
        let cells: Vec<&str> = line.text.split(',').collect();
        if cells.len() != columns.len() {
            return Err(bad(format!(
                "{} fields, expected {} ({})",
                cells.len(),
                columns.len(),
                columns.join(",")
            )));
        }
        let int = |at: usize| {
            cells[at]
                .parse::<i64>()
                .map_err(|_| bad(format!("`{}` is not an integer", columns[at])))
        };
        let origin = int(columns.len() - 1)?;
        let origin = u64::try_from(origin).map_err(|_| bad("negative origin_arrival_ns".into()))?;
        let output = if pipeline.output_shape() == OutputShape::Records {
            let shape = match cells[0] {
                "pair" => Shape::Pair,
                "left_only" => Shape::LeftOnly,
                "right_only" => Shape::RightOnly,
                "ranked" => Shape::Ranked,
                other => {
                    return Err(bad(format!(
                        "`shape` is {other:?}; allowed: pair, left_only, right_only, ranked"
                    )))
                }
            };
            let side = |at: usize| -> Result<Option<Event>, String> {
                match int(at)? {
                    -1 => Ok(None),
                    seq => event_of(events, seq)
                        .copied()
                        .map(Some)
                        .ok_or_else(|| bad(format!("`{}` {seq} is not an event of this run", columns[at]))),
                }
            };
            let (left, right) = match (shape, side(1)?, side(2)?) {
                (Shape::Pair, Some(l), Some(r)) => (l, r),
                (Shape::LeftOnly, Some(l), None) => (l, Event { seq: u64::MAX, ..l }),
                (Shape::RightOnly, None, Some(r)) => (Event { seq: u64::MAX, ..r }, r),
                (Shape::Ranked, Some(l), None) => (l, Event { seq: u64::MAX, ..l }),
                _ => return Err(bad(format!("a `{}` row with these sides", cells[0]))),
            };
            let start = int(3)?;
            let window = match shape {
                Shape::Ranked => pipeline.top_n.map(|t| t.window),
                Shape::Pair => pipeline.join.as_ref().and_then(|j| j.window),
                _ => None,
            };
            let end = match window {
                Some(WindowSpec::Tumbling { size } | WindowSpec::Sliding { size, .. }) => start + size.whole_ms(),
                _ => start,
            };
            Output::Record(RecordResult {
                shape,
                left,
                right,
                start,
                end,
                origin: Lineage {
                    arrival: origin,
                    ..Lineage::default()
                },
                fired_at: line.stamp,
                handoff: line.stamp,
                recv: line.stamp,
            })
        } else if pipeline.is_stateful() {
            let value = cells[4]
                .parse::<f64>()
                .map_err(|_| bad("`value` is not a number".into()))?;
            let is_update = match cells[5] {
                "true" => true,
                "false" => false,
                _ => return Err(bad("`is_update` is not true or false".into())),
            };
            Output::Window(WindowResult {
                key: int(0)?,
                start: int(1)?,
                end: int(2)?,
                count: u64::try_from(int(3)?).map_err(|_| bad("negative count".into()))?,
                value,
                origin: Lineage {
                    arrival: origin,
                    ..Lineage::default()
                },
                fired_at: line.stamp,
                handoff: line.stamp,
                recv: line.stamp,
                is_update,
            })
        } else {
            let seq = int(0)?;
            let mut event =
                *event_of(events, seq).ok_or_else(|| bad(format!("seq {seq} is not an event of this run")))?;
            if let Some(c) = &pipeline.convert {
                c.apply(&mut event);
            }
            let campaign = if pipeline.lookup_join {
                table.campaign(event.ad).unwrap_or(0)
            } else {
                0
            };
            if let Some(differs) = differing_columns(pipeline, &event, campaign, &cells) {
                differing_rows.push(format!("row seq {seq}: {differs}"));
            }
            Output::Row(Row {
                event,
                campaign,
                lineage: Lineage {
                    arrival: origin,
                    ..Lineage::default()
                },
            })
        };
        if line.warmup {
            warmup_outputs += 1;
        } else {
            record(&mut latency, line, origin, &output);
        }
        delivered.push(Delivered { at: line.stamp, output });
    }
    Ok(ReadOutputs {
        delivered,
        latency,
        warmup_outputs,
        differing_rows,
    })
}

/// The event whose `seq` is `seq` (the events are in `seq` order, so it is usually at `seq`).
fn event_of(events: &[Event], seq: i64) -> Option<&Event> {
    usize::try_from(seq)
        .ok()
        .and_then(|s| events.get(s))
        .filter(|e| e.seq as i64 == seq)
        .or_else(|| events.iter().find(|e| e.seq as i64 == seq))
}

/// The projected cells of a stateless row (`seq` first, `origin_arrival_ns` last) that differ
/// from `event`'s values, described (`None`: every one equals). The event kind is compared by
/// name, the others as integers.
fn differing_columns(pipeline: &PipelineSpec, event: &Event, campaign: u32, cells: &[&str]) -> Option<String> {
    let projected = pipeline.project.iter().filter(|&&f| f != Field::Seq);
    let differs: Vec<String> = projected
        .zip(&cells[1..cells.len() - 1])
        .filter_map(|(&f, &cell)| {
            let equal = match f {
                Field::Kind => cell == event.kind.name(),
                _ => cell.parse::<i64>() == Ok(field_value(event, campaign, f)),
            };
            (!equal).then(|| {
                let expected = match f {
                    Field::Kind => event.kind.name().to_string(),
                    _ => field_value(event, campaign, f).to_string(),
                };
                format!("`{}` is {cell}, its event's is {expected}", f.name())
            })
        })
        .collect();
    (!differs.is_empty()).then(|| differs.join(", "))
}

/// Records one output's latency, measured whole, its broker's output hop apart when it came
/// through Kafka (see the module header).
fn record(latency: &mut LatencyRecorder, line: &StampedLine, origin: Nanos, output: &Output) {
    let stamp = line.stamp;
    let total = stamp.saturating_sub(origin);
    let broker = line.output_hop.unwrap_or(0).min(total);
    let mut d = Decomposition::default();
    d.add(Component::Broker, broker);
    d.add(Component::Processing, total - broker);
    latency.record(stamp, &d);
    if let Output::Window(w) = output {
        if !w.is_update {
            latency.record_event_time(stamp.saturating_sub(event_time_as_nanos(w.end)));
        }
    }
}

/// The reference evaluator's result as the real Spark and Flink define it, which differs from
/// streamlab's modelled rule in one place: a session window. streamlab's session is half-open,
/// `[first, last + gap)`, so a record at exactly its end starts a new session; Spark's
/// `session_window` and Flink's session windows merge two sessions whose windows touch (Flink's
/// `TimeWindow.intersects`: `start <= other.end && end >= other.start`), so that record joins
/// the session. The result is the reference's with the gap one millisecond longer (a record
/// then joins while it is at most `gap` after the last) and every window end moved back by that
/// millisecond (the end is still `last + gap`); every other pipeline's is the reference's own.
///
/// A top-N too: Flink's window Top-N numbers rows (`ROW_NUMBER`, the only function it takes)
/// and keeps exactly `n` a window, where streamlab's rule keeps every record tied at the
/// boundary; the generated job breaks ties by `seq`, so the reference's records of each window
/// are cut to the first `n` by value (largest first), then `seq`.
pub fn real_engine_reference(pipeline: &PipelineSpec, table: &CampaignTable, events: &[Event]) -> ReferenceResult {
    if let Some(t) = &pipeline.top_n {
        let mut result = reference::evaluate(pipeline, table, events);
        let value = |seq: u64| {
            let mut e = *event_of(events, seq as i64).expect("a reference record is an event");
            if let Some(c) = &pipeline.convert {
                c.apply(&mut e);
            }
            let campaign = if pipeline.lookup_join {
                table.campaign(e.ad).unwrap_or(0)
            } else {
                0
            };
            field_value(&e, campaign, t.by)
        };
        let mut by_window: BTreeMap<EventTime, Vec<(std::cmp::Reverse<i64>, u64)>> = BTreeMap::new();
        for id in &result.records {
            by_window
                .entry(id.3)
                .or_default()
                .push((std::cmp::Reverse(value(id.1)), id.1));
        }
        result.records = by_window
            .into_iter()
            .flat_map(|(start, mut ranked)| {
                ranked.sort_unstable();
                ranked
                    .into_iter()
                    .take(t.n as usize)
                    .map(move |(_, seq)| (Shape::Ranked, seq, u64::MAX, start))
            })
            .collect();
        result.records.sort_unstable();
        return result;
    }
    let Some(mut aggregate) = pipeline.aggregate else {
        return reference::evaluate(pipeline, table, events);
    };
    let WindowSpec::Session { gap } = aggregate.window else {
        return reference::evaluate(pipeline, table, events);
    };
    aggregate.window = WindowSpec::Session {
        gap: Span::from_ms(gap.whole_ms() as u64 + 1),
    };
    let touching = PipelineSpec {
        aggregate: Some(aggregate),
        ..pipeline.clone()
    };
    let mut result = reference::evaluate(&touching, table, events);
    result.windows = std::mem::take(&mut result.windows)
        .into_iter()
        .map(|((key, start, end), value)| ((key, start, end - 1), value))
        .collect();
    result
}

/// How a run's outputs compare with the reference evaluator's exact result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceCheck {
    /// Rows or windows the reference has that the engine never delivered.
    pub missing: u64,
    /// Rows or windows the engine delivered that the reference does not have.
    pub unexpected: u64,
    /// Windows whose final value differs from the reference.
    pub different: u64,
    /// Rows delivered more than once.
    pub duplicates: u64,
    /// Rows or windows in the reference.
    pub expected: u64,
    /// Up to five examples of what differs, for the summary.
    pub examples: Vec<String>,
}

impl ReferenceCheck {
    /// Compares `delivered` with `reference`. For windows the last value delivered for each
    /// window is its final value (an upsert sink's view), and only windows that end by
    /// `closed_by` (event time, ms) are expected when it is given: the windows an engine that
    /// never sees its watermark pass the last ones (Spark's append mode at the end of the input)
    /// promises to emit. A window after it that is delivered anyway is checked like any other.
    pub fn compare(
        reference: &ReferenceResult,
        delivered: &[Delivered],
        stateful: bool,
        closed_by: Option<EventTime>,
    ) -> Self {
        let mut check = ReferenceCheck::default();
        let note = |check: &mut ReferenceCheck, text: String| {
            if check.examples.len() < 5 {
                check.examples.push(text);
            }
        };
        if stateful {
            let mut last: BTreeMap<WindowId, (u64, f64)> = BTreeMap::new();
            for d in delivered {
                if let Output::Window(w) = &d.output {
                    last.insert((w.key, w.start, w.end), (w.count, w.value));
                }
            }
            let promised = |id: &WindowId| closed_by.is_none_or(|t| id.2 <= t);
            check.expected = reference.windows.keys().filter(|id| promised(id)).count() as u64;
            for (id, &(count, value)) in &reference.windows {
                match last.get(id) {
                    None if !promised(id) => {}
                    None => {
                        check.missing += 1;
                        note(&mut check, format!("window {id:?} missing (count {count})"));
                    }
                    Some(&(c, v)) if c != count || !same_value(v, value) => {
                        check.different += 1;
                        note(&mut check, format!("window {id:?}: {c}/{v}, reference {count}/{value}"));
                    }
                    Some(_) => {}
                }
            }
            for id in last.keys().filter(|id| !reference.windows.contains_key(id)) {
                check.unexpected += 1;
                note(&mut check, format!("window {id:?} not in the reference"));
            }
        } else {
            let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
            for d in delivered {
                if let Output::Row(r) = &d.output {
                    *counts.entry(r.event.seq).or_default() += 1;
                }
            }
            check.expected = reference.rows.len() as u64;
            for seq in &reference.rows {
                if !counts.contains_key(seq) {
                    check.missing += 1;
                    note(&mut check, format!("row seq {seq} missing"));
                }
            }
            let expected: std::collections::BTreeSet<u64> = reference.rows.iter().copied().collect();
            for seq in counts.keys().filter(|s| !expected.contains(s)) {
                check.unexpected += 1;
                note(&mut check, format!("row seq {seq} not in the reference"));
            }
            check.duplicates = counts.values().map(|&n| n.saturating_sub(1)).sum();
        }
        check
    }

    /// Compares the join results or ranked records `delivered` with the reference's
    /// (`reference.records`): the same multiset of identities (shape, left and right `seq`,
    /// window start). A reference record for which `promised` is false (an outer row the engine
    /// emits only once its watermark passes, which the end of the input may never bring) is not
    /// expected, and checked like any other if delivered anyway.
    pub fn compare_records(
        reference: &ReferenceResult,
        delivered: &[Delivered],
        promised: impl Fn(&RecordId) -> bool,
    ) -> Self {
        let mut check = ReferenceCheck::default();
        let mut counts: BTreeMap<RecordId, u64> = BTreeMap::new();
        for d in delivered {
            if let Output::Record(r) = &d.output {
                *counts.entry(r.identity()).or_default() += 1;
            }
        }
        let expected: std::collections::BTreeSet<RecordId> = reference.records.iter().copied().collect();
        for id in &expected {
            match counts.get(id) {
                Some(_) => check.expected += 1,
                None if promised(id) => {
                    check.expected += 1;
                    check.missing += 1;
                    check.note(format!("{} {} missing", id.0.name(), describe_record(id)));
                }
                None => {}
            }
        }
        for id in counts.keys().filter(|id| !expected.contains(id)) {
            check.unexpected += 1;
            check.note(format!("{} {} not in the reference", id.0.name(), describe_record(id)));
        }
        check.duplicates = counts.values().map(|&n| n.saturating_sub(1)).sum();
        check
    }

    fn note(&mut self, text: String) {
        if self.examples.len() < 5 {
            self.examples.push(text);
        }
    }

    /// Counts the rows whose columns differ from their events' ([`ReadOutputs::differing_rows`])
    /// as rows with another value.
    pub fn count_differing_rows(&mut self, differing_rows: &[String]) {
        self.different += differing_rows.len() as u64;
        for row in differing_rows {
            if self.examples.len() < 5 {
                self.examples.push(row.clone());
            }
        }
    }

    /// Whether the engine's outputs equal the reference's.
    pub fn matches(&self) -> bool {
        self.missing == 0 && self.unexpected == 0 && self.different == 0 && self.duplicates == 0
    }

    /// One line for the summary's notes.
    pub fn describe(&self) -> String {
        if self.matches() {
            format!("outputs equal the reference evaluator's ({} checked)", self.expected)
        } else {
            format!(
                "OUTPUTS DIFFER from the reference evaluator's: {} missing, {} unexpected, {} with another value, {} duplicated, of {} expected; e.g. {}",
                self.missing,
                self.unexpected,
                self.different,
                self.duplicates,
                self.expected,
                self.examples.join("; ")
            )
        }
    }
}

/// Whether an engine whose last watermark is `closed_by` (event time, ms; `None`: its input's
/// end fires everything) promises reference record `id` of join `join`: every pair, and an
/// outer join's unmatched row once no match can come any more — the watermark past the left
/// row's time plus the upper bound (the right row's minus the lower one), or past its window's
/// end. Strictly past: a row exactly at the bound is left to the engine (checked if delivered).
pub fn record_promised(join: Option<&JoinSpec>, events: &[Event], closed_by: Option<EventTime>, id: &RecordId) -> bool {
    let (Some(j), Some(watermark)) = (join, closed_by) else {
        return true;
    };
    let time = |seq: u64| event_of(events, seq as i64).map_or(EventTime::MAX, |e| e.event_time);
    let (lo, hi) = j.bounds();
    let settled = |t: EventTime, bound: i64| match (j.kind, j.window) {
        (JoinKind::Window, Some(WindowSpec::Tumbling { size } | WindowSpec::Sliding { size, .. })) => {
            let size = size.whole_ms();
            t.div_euclid(size) * size + size
        }
        _ => t.saturating_add(bound),
    };
    match id.0 {
        Shape::Pair | Shape::Ranked => true,
        Shape::LeftOnly => settled(time(id.1), hi) < watermark,
        Shape::RightOnly => settled(time(id.2), -lo) < watermark,
    }
}

/// A record result's identity: shape, left and right `seq` (`u64::MAX` for an absent side),
/// window start.
pub type RecordId = (Shape, u64, u64, EventTime);

fn describe_record(id: &RecordId) -> String {
    let seq = |s: u64| if s == u64::MAX { "-".to_string() } else { s.to_string() };
    format!("(left {}, right {}, window {})", seq(id.1), seq(id.2), id.3)
}

/// Aggregate values compare equal up to floating-point rounding (an average summed in another
/// order).
fn same_value(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlab_engines::event::EventKind;
    use streamlab_engines::pipeline::{AggFunc, Aggregation, Convert};

    fn windowed() -> PipelineSpec {
        PipelineSpec {
            aggregate: Some(Aggregation {
                key_by: Field::Campaign,
                window: WindowSpec::Tumbling {
                    size: Span::from_ms(1000),
                },
                function: AggFunc::Count,
                field: None,
            }),
            ..PipelineSpec::default()
        }
    }

    fn line(stamp: Nanos, text: &str) -> StampedLine {
        StampedLine {
            stamp,
            warmup: false,
            text: text.into(),
            output_hop: None,
        }
    }

    #[test]
    fn window_rows_are_read_timed_and_compared_with_the_reference() {
        let pipeline = windowed();
        let table = CampaignTable::default();
        let lines = [line(5_000_000_000, "7,0,1000,2,2,false,4000000000")];
        let read = read_outputs(&pipeline, &table, &[], &lines).unwrap();
        assert_eq!(read.delivered.len(), 1);
        assert_eq!(read.latency.outputs, 1);
        assert_eq!(
            read.latency.total.max(),
            read.latency.total.highest_equivalent(1_000_000_000)
        );
        let mut reference = ReferenceResult::default();
        reference.windows.insert((7, 0, 1000), (2, 2.0));
        reference.windows.insert((7, 1000, 2000), (1, 1.0));
        let all = ReferenceCheck::compare(&reference, &read.delivered, true, None);
        assert_eq!((all.missing, all.matches()), (1, false));
        assert!(all.describe().starts_with("OUTPUTS DIFFER"), "{}", all.describe());
        // The second window ends after the engine's last watermark: not promised.
        let promised = ReferenceCheck::compare(&reference, &read.delivered, true, Some(1000));
        assert!(promised.matches(), "{}", promised.describe());
    }

    #[test]
    fn a_result_read_from_kafka_reports_the_brokers_output_hop_as_its_broker_component() {
        let pipeline = windowed();
        let table = CampaignTable::default();
        let text = "7,0,1000,2,2,false,4000000000";
        let fed = read_outputs(&pipeline, &table, &[], &[line(5_000_000_000, text)]).unwrap();
        assert!(
            fed.latency.reported.is_empty(),
            "the loopback receiver measures the whole only"
        );
        let hop = 3_000_000;
        let kafka = StampedLine {
            output_hop: Some(hop),
            ..line(5_000_000_000, text)
        };
        let read = read_outputs(&pipeline, &table, &[], &[kafka]).unwrap();
        assert_eq!(read.latency.reported, vec![Component::Broker]);
        assert_eq!(read.latency.component_sum(Component::Broker), hop as u128);
        assert_eq!(
            read.latency.component_sum(Component::Processing),
            1_000_000_000 - hop as u128,
            "the rest is the engine's"
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let pipeline = windowed();
        let table = CampaignTable::default();
        let err = read_outputs(&pipeline, &table, &[], &[line(1, "7,0,1000,2")]).unwrap_err();
        assert!(err.starts_with("output line 1: 4 fields, expected 7"), "{err}");
        let err = read_outputs(&pipeline, &table, &[], &[line(1, "7,0,1000,2,2,maybe,5")]).unwrap_err();
        assert!(err.contains("`is_update`"), "{err}");
    }

    #[test]
    fn a_stateless_row_is_matched_to_its_event_by_seq_and_duplicates_count() {
        let pipeline = PipelineSpec {
            filter_kinds: Some(vec![EventKind::Click]),
            project: vec![Field::Seq],
            ..PipelineSpec::default()
        };
        let table = CampaignTable::default();
        let event = Event {
            seq: 0,
            event_time: 0,
            arrival: 10,
            partition: 0,
            user: 1,
            session: 1,
            page: 1,
            ad: 1,
            kind: EventKind::Click,
            dwell_ms: 0,
            price_cents: 0,
        };
        let lines = [line(20, "0,10"), line(30, "0,10")];
        let read = read_outputs(&pipeline, &table, &[event], &lines).unwrap();
        let reference = ReferenceResult {
            rows: vec![0],
            ..ReferenceResult::default()
        };
        let check = ReferenceCheck::compare(&reference, &read.delivered, false, None);
        assert_eq!((check.missing, check.unexpected, check.duplicates), (0, 0, 1));
        let err = read_outputs(&pipeline, &table, &[event], &[line(1, "9,10")]).unwrap_err();
        assert!(err.contains("seq 9 is not an event of this run"), "{err}");
    }

    /// Nexmark q1: every bid, its price converted (`auction` and `price` ride in the `session`
    /// and `price_cents` slots); and one bid, arrived at 10 ns.
    fn nexmark_q1() -> (PipelineSpec, Event) {
        let pipeline = PipelineSpec {
            filter_kinds: Some(vec![EventKind::Bid]),
            convert: Some(Convert {
                field: Field::Price,
                multiply: 908,
                divide: 1000,
            }),
            project: vec![Field::Seq, Field::Auction, Field::Price, Field::Kind],
            ..PipelineSpec::default()
        };
        let bid = streamlab_engines::nexmark::Record::Bid {
            auction: 1007,
            bidder: 3,
            price: 1999,
            channel: 0,
            url: 5,
        }
        .into_event(0, 0, 10, 0);
        (pipeline, bid)
    }

    #[test]
    fn a_native_output_written_as_its_row_reads_back_as_the_same_output() {
        let table = CampaignTable::default();
        let pipeline = windowed();
        let window = WindowResult {
            key: 7,
            start: 0,
            end: 1000,
            count: 3,
            value: 0.1 + 0.2,
            origin: Lineage {
                arrival: 4_000_000_000,
                ..Lineage::default()
            },
            fired_at: 1,
            handoff: 1,
            recv: 1,
            is_update: true,
        };
        let mut text = String::new();
        crate::job::write_output_row(&pipeline, &Output::Window(window), &mut text);
        let read = read_outputs(&pipeline, &table, &[], &[line(5_000_000_000, &text)]).unwrap();
        let Output::Window(w) = read.delivered[0].output else {
            panic!("a window")
        };
        assert_eq!(
            (w.key, w.start, w.end, w.count, w.value, w.is_update, w.origin.arrival),
            (7, 0, 1000, 3, 0.1 + 0.2, true, 4_000_000_000),
            "{text}"
        );
        let (pipeline, bid) = nexmark_q1();
        let mut converted = bid;
        pipeline.convert.unwrap().apply(&mut converted);
        let row = Row {
            event: converted,
            campaign: 0,
            lineage: Lineage {
                arrival: 10,
                ..Lineage::default()
            },
        };
        crate::job::write_output_row(&pipeline, &Output::Row(row), &mut text);
        assert_eq!(text, "0,1007,1815,bid,10");
        let read = read_outputs(&pipeline, &table, &[bid], &[line(20, &text)]).unwrap();
        assert!(read.differing_rows.is_empty(), "{:?}", read.differing_rows);
    }

    #[test]
    fn a_converted_nexmark_row_is_checked_column_by_column() {
        let (pipeline, bid) = nexmark_q1();
        let table = CampaignTable::default();
        let right = read_outputs(&pipeline, &table, &[bid], &[line(20, "0,1007,1815,bid,10")]).unwrap();
        assert!(right.differing_rows.is_empty(), "{:?}", right.differing_rows);
        let Output::Row(row) = right.delivered[0].output else {
            panic!("a row")
        };
        assert_eq!(
            row.event.price_cents, 1815,
            "the delivered row carries the converted price"
        );
        let wrong = read_outputs(&pipeline, &table, &[bid], &[line(20, "0,1007,1999,bid,10")]).unwrap();
        assert_eq!(
            wrong.differing_rows,
            vec!["row seq 0: `price` is 1999, its event's is 1815".to_string()]
        );
        let reference = ReferenceResult {
            rows: vec![0],
            ..ReferenceResult::default()
        };
        let mut check = ReferenceCheck::compare(&reference, &wrong.delivered, false, None);
        check.count_differing_rows(&wrong.differing_rows);
        assert_eq!((check.different, check.matches()), (1, false));
    }

    #[test]
    fn a_record_at_exactly_a_sessions_end_joins_it_on_the_real_engines() {
        let pipeline = PipelineSpec {
            aggregate: Some(Aggregation {
                key_by: Field::User,
                window: WindowSpec::Session {
                    gap: Span::from_ms(1000),
                },
                function: AggFunc::Count,
                field: None,
            }),
            ..PipelineSpec::default()
        };
        let at = |seq: u64, t: i64| Event {
            seq,
            event_time: t,
            arrival: seq,
            partition: 0,
            user: 1,
            session: 0,
            page: 0,
            ad: 0,
            kind: EventKind::View,
            dwell_ms: 0,
            price_cents: 0,
        };
        let events = [at(0, 0), at(1, 1000), at(2, 2001)];
        let table = CampaignTable::default();
        // streamlab: [0, 1000) ends where the second record starts a new session.
        let modelled = reference::evaluate(&pipeline, &table, &events);
        assert_eq!(
            modelled.windows.keys().copied().collect::<Vec<_>>(),
            vec![(1, 0, 1000), (1, 1000, 2000), (1, 2001, 3001)]
        );
        // Spark and Flink: the touching sessions merge; one a millisecond later does not.
        let real = real_engine_reference(&pipeline, &table, &events);
        assert_eq!(
            real.windows.into_iter().collect::<Vec<_>>(),
            vec![((1, 0, 2000), (2, 2.0)), ((1, 2001, 3001), (1, 1.0))]
        );
    }

    #[test]
    fn join_rows_are_records_and_sparks_last_outer_rows_are_not_promised() {
        let pipeline: PipelineSpec = toml::from_str(
            r#"[join]
kind = "interval"
type = "left_outer"
lower = 0
upper = 1000
left = { kinds = ["auction"], key = "id" }
right = { kinds = ["bid"], key = "auction" }"#,
        )
        .unwrap();
        let auction = |seq: u64, t: i64| {
            streamlab_engines::nexmark::Record::Auction {
                id: seq,
                item_name: 0,
                initial_bid: 0,
                reserve: 0,
                seller: 0,
                category: 0,
            }
            .into_event(seq, t, seq, 0)
        };
        let bid = streamlab_engines::nexmark::Record::Bid {
            auction: 0,
            bidder: 0,
            price: 1,
            channel: 0,
            url: 0,
        }
        .into_event(2, 500, 2, 0);
        let events = [auction(0, 0), auction(1, 9000), bid];
        let table = CampaignTable::default();
        let lines = [line(10, "pair,0,2,0,2"), line(20, "left_only,1,-1,0,1")];
        let read = read_outputs(&pipeline, &table, &events, &lines).unwrap();
        let reference = reference::evaluate(&pipeline, &table, &events);
        let all = ReferenceCheck::compare_records(&reference, &read.delivered, |_| true);
        assert!(all.matches(), "{}", all.describe());
        // Spark's watermark ended at 9 000 ms: auction 1's row (settled at 10 000) is not owed.
        let join = pipeline.join.as_ref();
        let promised = |id: &RecordId| record_promised(join, &events, Some(9000), id);
        let without = ReferenceCheck::compare_records(&reference, &read.delivered[..1], promised);
        assert!(without.matches(), "{}", without.describe());
        let owed = ReferenceCheck::compare_records(&reference, &read.delivered[..1], |_| true);
        assert_eq!((owed.missing, owed.matches()), (1, false));
        let err = read_outputs(&pipeline, &table, &events, &[line(1, "both,0,2,0,2")]).unwrap_err();
        assert!(err.contains("allowed: pair, left_only, right_only, ranked"), "{err}");
        let err = read_outputs(&pipeline, &table, &events, &[line(1, "pair,0,-1,0,2")]).unwrap_err();
        assert!(err.contains("a `pair` row with these sides"), "{err}");
    }
}
