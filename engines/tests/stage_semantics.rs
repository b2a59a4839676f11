//! The rules in which Spark and Flink differ on the keyed stages, one scenario each, on
//! hand-written records: when an outer join emits a row that found no match (Flink on the timer
//! as the watermark passes its bound; Spark in the batch after the one that moved the
//! watermark, one trigger late), when a window join emits its pairs, how state is cleaned, and
//! what happens to a late row.

mod common;

use streamlab_engines::cost::CostModel;
use streamlab_engines::dataflow::{sim::run_simulated, DataflowConfig, JobContext};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, OutputMode, Trigger};
use streamlab_engines::operators::graph::{JoinRules, StreamJoin, WindowTopN};
use streamlab_engines::operators::{Lineage, Output, Row, Shape};
use streamlab_engines::pipeline::{
    Field, JoinInput, JoinKind, JoinSpec, JoinType, PipelineSpec, SignedSpan, TopNSpec, WindowSpec,
};
use streamlab_engines::runtime::SimRuntime;
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_MS, NANOS_PER_SEC};

const FLINK: JoinRules = JoinRules {
    window_results_on_close: true,
    fire_lag: 1,
};
const SPARK: JoinRules = JoinRules {
    window_results_on_close: false,
    fire_lag: 0,
};

/// An event of `kind` in `session` at event time `t` ms, arriving at `t` ms.
fn event(seq: u64, kind: EventKind, session: u64, t: i64) -> Event {
    Event {
        seq,
        event_time: t,
        arrival: t as u64 * NANOS_PER_MS,
        partition: 0,
        user: 1,
        session,
        page: 1,
        ad: 1,
        kind,
        dwell_ms: 0,
        price_cents: 0,
    }
}

fn row(e: Event) -> Row {
    Row {
        event: e,
        campaign: 0,
        lineage: Lineage {
            arrival: e.arrival,
            ..Default::default()
        },
    }
}

fn join(kind: JoinKind, join_type: JoinType) -> JoinSpec {
    JoinSpec {
        kind,
        join_type,
        left: JoinInput {
            kinds: vec![EventKind::View],
            predicates: vec![],
            key: Field::Session,
        },
        right: JoinInput {
            kinds: vec![EventKind::Click],
            predicates: vec![],
            key: Field::Session,
        },
        lower: (kind == JoinKind::Interval).then_some(SignedSpan { ms: 0 }),
        upper: (kind == JoinKind::Interval).then_some(SignedSpan { ms: 500 }),
        row_time: None,
        window: (kind == JoinKind::Window).then_some(WindowSpec::Tumbling {
            size: Span::from_ms(1_000),
        }),
    }
}

#[test]
fn an_interval_join_keeps_a_row_until_its_bound_closes_then_emits_it_unmatched() {
    for (rules, closes_at) in [(FLINK, 1_500), (SPARK, 1_501)] {
        let mut op = StreamJoin::new(&join(JoinKind::Interval, JoinType::LeftOuter), rules);
        let mut out = Vec::new();
        op.on_row(row(event(0, EventKind::View, 7, 1_000)), 0, &mut out);
        assert_eq!(op.state_rows(), 1);
        op.on_watermark(closes_at - 1, 1, &mut out);
        assert!(out.is_empty(), "a click at 1500 could still come: {rules:?}");
        op.on_watermark(closes_at, 2, &mut out);
        let [Output::Record(r)] = out.as_slice() else {
            panic!("one unmatched row: {out:?}")
        };
        assert_eq!((r.shape, r.left.seq, r.fired_at), (Shape::LeftOnly, 0, 2));
        assert_eq!(op.state_rows(), 0, "the row left the state");
    }
}

#[test]
fn a_matched_row_is_not_emitted_again_when_it_expires_and_a_late_row_is_dropped() {
    let mut op = StreamJoin::new(&join(JoinKind::Interval, JoinType::LeftOuter), FLINK);
    let mut out = Vec::new();
    op.on_row(row(event(0, EventKind::View, 7, 1_000)), 0, &mut out);
    op.on_row(row(event(1, EventKind::Click, 7, 1_200)), 0, &mut out);
    assert_eq!(out.len(), 1, "the pair, at once");
    op.on_watermark(10_000, 1, &mut out);
    assert_eq!(out.len(), 1, "no unmatched row for a matched one");
    assert_eq!(op.state_rows(), 0);
    op.on_row(row(event(2, EventKind::View, 8, 9_000)), 2, &mut out);
    assert_eq!(
        op.late_dropped, 1,
        "at or before the watermark: late (Flink's convention)"
    );
    assert_eq!(op.state_rows(), 0);
}

#[test]
fn flink_emits_a_window_joins_pairs_when_the_window_fires_and_spark_as_they_match() {
    for (rules, at_once) in [(FLINK, false), (SPARK, true)] {
        let mut op = StreamJoin::new(&join(JoinKind::Window, JoinType::Inner), rules);
        let mut out = Vec::new();
        op.on_row(row(event(0, EventKind::View, 7, 100)), 0, &mut out);
        op.on_row(row(event(1, EventKind::Click, 7, 900)), 5, &mut out);
        assert_eq!(out.len() == 1, at_once, "{rules:?}");
        op.on_watermark(1_000, 9, &mut out);
        let [Output::Record(r)] = out.as_slice() else {
            panic!("one pair: {out:?}")
        };
        assert_eq!((r.start, r.end), (0, 1_000));
        assert_eq!(r.fired_at, if at_once { 5 } else { 9 });
        assert_eq!(op.state_rows(), 0, "both rows left with their window");
    }
}

#[test]
fn top_n_keeps_only_candidates_and_emits_ties_at_the_boundary() {
    let spec = TopNSpec {
        window: WindowSpec::Tumbling {
            size: Span::from_ms(1_000),
        },
        n: 2,
        by: Field::DwellMs,
    };
    let mut op = WindowTopN::new(spec, 1);
    for (seq, dwell) in [(0, 5), (1, 9), (2, 1), (3, 7), (4, 7), (5, 3)] {
        let mut e = event(seq, EventKind::View, 1, 100 + seq as i64);
        e.dwell_ms = dwell;
        op.on_row(row(e));
    }
    assert_eq!(op.state_rows(), 3, "9, 7 and 7: the rest is outranked by two");
    let mut out = Vec::new();
    op.on_watermark(998, 1, &mut out);
    assert!(out.is_empty());
    op.on_watermark(999, 2, &mut out);
    let mut seqs: Vec<u64> = out
        .iter()
        .map(|o| match o {
            Output::Record(r) => r.left.seq,
            _ => panic!(),
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 3, 4], "rank 1 and the two tied at rank 2");
}

/// One unmatched view, then clicks of other sessions that move the watermark on.
fn unmatched_then_traffic() -> SourceLog {
    let mut events = vec![event(0, EventKind::View, 1, 1_000)];
    for i in 1..40 {
        events.push(event(i, EventKind::Click, 100 + i, 1_000 + 100 * i as i64));
    }
    SourceLog::from_events(1, events)
}

fn pipeline() -> PipelineSpec {
    PipelineSpec {
        join: Some(join(JoinKind::Interval, JoinType::LeftOuter)),
        ..Default::default()
    }
}

fn unmatched_delivery(delivered: &[streamlab_engines::run::Delivered]) -> u64 {
    delivered
        .iter()
        .find_map(|d| match d.output {
            Output::Record(r) if r.shape == Shape::LeftOnly => Some(d.at),
            _ => None,
        })
        .expect("the unmatched view is emitted")
}

/// A 1 s-trigger Spark query over `shuffle_partitions` and a Flink job at parallelism 1,
/// neither with a watermark delay or a buffer timeout.
fn engines_without_delays(shuffle_partitions: usize) -> (MicroBatchConfig, DataflowConfig) {
    let mb = MicroBatchConfig {
        trigger: Trigger::ProcessingTime {
            interval: Span::from_ms(1_000),
        },
        output_mode: OutputMode::Append,
        watermark_delay: Span::from_ms(0),
        shuffle_partitions,
        workers: 1,
        ..Default::default()
    };
    let pr = DataflowConfig {
        parallelism: 1,
        buffer_timeout: Span::from_ms(0),
        auto_watermark_interval: Span::from_ms(1),
        out_of_orderness: Span::from_ms(0),
        ..Default::default()
    };
    (mb, pr)
}

#[test]
fn spark_emits_an_unmatched_row_one_trigger_after_flink() {
    let log = unmatched_then_traffic();
    let table = CampaignTable::default();
    let (mb, pr) = engines_without_delays(1);
    let mut engine = MicroBatchEngine::new("mb", mb, &pipeline(), &table, 1).unwrap();
    let spark = engine.run(&mut SimRuntime::free(1), &log, 10 * NANOS_PER_SEC);
    let job = JobContext::new("pr", &pr, &pipeline(), &table, 1);
    let flink = run_simulated(
        &job,
        &log,
        &CostModel::FREE,
        Default::default(),
        10 * NANOS_PER_SEC,
        false,
    )
    .unwrap();
    let (spark_at, flink_at) = (
        unmatched_delivery(&spark.delivered),
        unmatched_delivery(&flink.delivered),
    );
    // Flink: the click at 1600 ms moves the watermark to 1599 >= 1500 (`max - 0 - 1`), and the
    // timer fires at once. Spark: the batch at 2 s reads up to 2000 and sets the watermark to
    // 2000 for the next batch, at 3 s, which emits it.
    assert_eq!(flink_at / NANOS_PER_MS, 1_600, "Flink, on the timer");
    assert_eq!(
        spark_at / NANOS_PER_MS,
        3_000,
        "Spark, one trigger later than the batch that moved the watermark"
    );
}

#[test]
fn a_join_a_dedup_and_a_top_n_on_the_lsm_store_behave_as_on_the_heap_and_checkpoint_the_same_bytes() {
    use streamlab_engines::operators::graph::{KeyedStage, StageRules};
    use streamlab_engines::operators::window::StateBackendKind;
    use streamlab_engines::pipeline::DedupSpec;
    let joined = PipelineSpec {
        join: Some(join(JoinKind::Interval, JoinType::LeftOuter)),
        ..Default::default()
    };
    let deduplicated = PipelineSpec {
        dedup: Some(DedupSpec {
            key: vec![Field::Session],
            within: Span::from_ms(300),
        }),
        ..Default::default()
    };
    let rows: Vec<Row> = (0..400u64)
        .map(|i| {
            let kind = if i % 3 == 0 { EventKind::Click } else { EventKind::View };
            row(event(i, kind, i % 17, 1_000 + (i as i64 * 37) % 900 + i as i64 * 5))
        })
        .collect();
    let ranked = PipelineSpec {
        top_n: Some(TopNSpec {
            window: WindowSpec::Sliding {
                size: Span::from_ms(400),
                slide: Span::from_ms(200),
            },
            n: 2,
            by: Field::Session,
        }),
        ..Default::default()
    };
    for pipeline in [joined, deduplicated, ranked] {
        for rules in [StageRules::Flink, StageRules::Spark] {
            let before = common::lsm_scratch_dirs();
            let stage = |backend| KeyedStage::for_pipeline(&pipeline, rules, backend).unwrap().unwrap();
            let (mut heap, mut lsm) = (stage(StateBackendKind::Heap), stage(StateBackendKind::Lsm));
            let created: Vec<_> = common::lsm_scratch_dirs()
                .into_iter()
                .filter(|d| !before.contains(d))
                .collect();
            assert!(!created.is_empty(), "{rules:?}: the LSM stage opened a store");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for (i, r) in rows.iter().enumerate() {
                heap.on_row(*r, i as u64, &mut a);
                lsm.on_row(*r, i as u64, &mut b);
                if i % 25 == 24 {
                    let wm = r.event.event_time - 200;
                    heap.on_watermark(wm, i as u64, &mut a);
                    lsm.on_watermark(wm, i as u64, &mut b);
                    assert_eq!(heap.encode(), lsm.encode(), "{rules:?}: checkpoint bytes at row {i}");
                }
            }
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{rules:?}: outputs");
            assert!(!a.is_empty(), "{rules:?}: some outputs");
            assert_eq!(heap.state_rows(), lsm.state_rows());
            assert_eq!(heap.late_dropped(), lsm.late_dropped());
            assert!(heap.state_rows() > 0, "{rules:?}: some state left to checkpoint");
            // A heap checkpoint restores into an LSM stage and the other way round.
            let (bytes, mut other) = (heap.encode(), stage(StateBackendKind::LsmChangelog));
            other.restore(&bytes).unwrap();
            assert_eq!(other.encode(), bytes);
            assert!(
                other.restore(&bytes[..bytes.len() - 1]).is_none(),
                "damaged bytes refused"
            );
            assert_eq!(other.encode(), bytes, "a refused restore leaves the state as it was");
            let mut back = stage(StateBackendKind::Heap);
            back.restore(&lsm.encode()).unwrap();
            assert_eq!(back.encode(), bytes);
            drop((lsm, other));
            assert!(
                created.iter().all(|d| !d.exists()),
                "{rules:?}: scratch directories removed on drop"
            );
        }
    }
}

/// A view of session 1 at 1 s, its click at 6 s, and clicks of other sessions up to 15 s that
/// move the watermark on.
fn matched_late_then_traffic() -> SourceLog {
    let mut events = vec![event(0, EventKind::View, 1, 1_000)];
    for i in 1..141 {
        events.push(event(i, EventKind::Click, 100 + i, 1_000 + 100 * i as i64));
    }
    events.push(event(141, EventKind::Click, 1, 6_000));
    events.sort_by_key(|e| (e.arrival, e.seq));
    SourceLog::from_events(1, events)
}

/// The views joined with their clicks within 10 s, the pairs counted per page per second of
/// the `row_time` input's event time.
fn chain(row_time: streamlab_engines::pipeline::Side) -> PipelineSpec {
    let mut j = join(JoinKind::Interval, JoinType::Inner);
    j.upper = Some(SignedSpan { ms: 10_000 });
    j.row_time = Some(row_time);
    PipelineSpec {
        join: Some(j),
        aggregate: Some(streamlab_engines::pipeline::Aggregation {
            key_by: Field::Page,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(1_000),
            },
            function: streamlab_engines::pipeline::AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    }
}

/// The window results delivered: (window start, count, delivered at ms).
fn windows(delivered: &[streamlab_engines::run::Delivered]) -> Vec<(i64, u64, u64)> {
    delivered
        .iter()
        .filter_map(|d| match d.output {
            Output::Window(w) => Some((w.start, w.count, d.at / NANOS_PER_MS)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pair_older_than_the_watermark_is_late_for_sparks_chained_aggregation_but_flink_holds_the_watermark_back() {
    use streamlab_engines::pipeline::Side;
    let log = matched_late_then_traffic();
    let table = CampaignTable::default();
    // One source partition: one source subtask (a second would hold the watermark back forever,
    // having nothing to read), and the second exchange between one join and one aggregation.
    let (mb, pr) = engines_without_delays(2);
    let spark = |row_time| {
        let mut engine = MicroBatchEngine::new("mb", mb, &chain(row_time), &table, 1).unwrap();
        engine.run(&mut SimRuntime::free(1), &log, 20 * NANOS_PER_SEC)
    };
    let flink = |row_time| {
        let job = JobContext::new("pr", &pr, &chain(row_time), &table, 1);
        run_simulated(
            &job,
            &log,
            &CostModel::FREE,
            Default::default(),
            20 * NANOS_PER_SEC,
            false,
        )
        .unwrap()
    };

    // The pair carries the view's time (1 s). Spark: the click arrives in the batch at 6 s,
    // whose chained aggregation drops input older than the previous batch's watermark (4 s):
    // the pair is late, counted, and its window never comes.
    let run = spark(Side::Left);
    assert_eq!(windows(&run.delivered), [], "Spark drops the pair as late");
    assert_eq!(run.counts.late_dropped, 1);
    // Flink SQL: the join holds its output watermark back by its largest output delay (10 s),
    // so the pair is on time and its window fires once the clicks reach 12 s (watermark
    // 11 999, passed on as 1 999).
    let run = flink(Side::Left);
    assert_eq!(
        windows(&run.delivered),
        [(1_000, 1, 12_000)],
        "Flink keeps it, 10 s later"
    );
    assert_eq!(run.counts.late_dropped, 0);

    // With the click's time (the input that cannot be the earlier one) no pair is late: both
    // engines count it in the window of 6 s.
    let spark_windows: Vec<(i64, u64)> = windows(&spark(Side::Right).delivered)
        .into_iter()
        .map(|(s, c, _)| (s, c))
        .collect();
    assert_eq!(spark_windows, [(6_000, 1)]);
    let flink_windows = windows(&flink(Side::Right).delivered);
    assert_eq!(
        flink_windows.len(),
        0,
        "Flink's held-back watermark has not passed 7 s by 15 s"
    );
}
