//! Differential tests: the micro-batch engine, the per-record engine and the reference
//! evaluator, on the same seeded clickstreams, must produce the same results — within each
//! engine's documented semantics (Spark's append mode emits only windows the final watermark
//! has closed; a bounded Flink source ends with a `MAX` watermark that closes them all).

mod common;

use std::collections::BTreeMap;

use common::{compressed, events, micro_batch, per_record_config, test_costs};

use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::{live::run_live, sim::run_simulated, DataflowConfig, JobContext};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::EventKind;
use streamlab_engines::microbatch::{MicroBatchEngine, OutputMode, Trigger};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference::{evaluate, WindowId};
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};

fn aggregation(key_by: Field, window: WindowSpec, function: AggFunc, field: Option<Field>) -> Aggregation {
    Aggregation {
        key_by,
        window,
        function,
        field,
    }
}

/// The pipelines under test: every window kind and every aggregate, with and without the join.
fn pipelines() -> Vec<(&'static str, PipelineSpec)> {
    let tumbling = WindowSpec::Tumbling {
        size: Span::from_ms(1000),
    };
    let stateful = |filter: Option<Vec<EventKind>>, join: bool, agg: Aggregation| PipelineSpec {
        filter_kinds: filter,
        lookup_join: join,
        project: vec![],
        aggregate: Some(agg),
        ..Default::default()
    };
    vec![
        (
            "clicks per campaign, tumbling count, lookup join",
            stateful(
                Some(vec![EventKind::Click]),
                true,
                aggregation(Field::Campaign, tumbling, AggFunc::Count, None),
            ),
        ),
        (
            "spend per user, sliding sum",
            stateful(
                Some(vec![EventKind::AddToCart, EventKind::Purchase]),
                false,
                aggregation(
                    Field::User,
                    WindowSpec::Sliding {
                        size: Span::from_ms(2000),
                        slide: Span::from_ms(500),
                    },
                    AggFunc::Sum,
                    Some(Field::PriceCents),
                ),
            ),
        ),
        (
            "events per user session",
            stateful(
                None,
                false,
                aggregation(
                    Field::User,
                    WindowSpec::Session {
                        gap: Span::from_ms(400),
                    },
                    AggFunc::Count,
                    None,
                ),
            ),
        ),
        (
            "min dwell per page",
            stateful(
                None,
                false,
                aggregation(Field::Page, tumbling, AggFunc::Min, Some(Field::DwellMs)),
            ),
        ),
        (
            "max price per campaign",
            stateful(
                None,
                true,
                aggregation(Field::Campaign, tumbling, AggFunc::Max, Some(Field::PriceCents)),
            ),
        ),
        (
            "avg dwell per kind",
            stateful(
                None,
                false,
                aggregation(Field::Kind, tumbling, AggFunc::Avg, Some(Field::DwellMs)),
            ),
        ),
        (
            "distinct users per campaign",
            stateful(
                None,
                true,
                aggregation(Field::Campaign, tumbling, AggFunc::DistinctCount, Some(Field::User)),
            ),
        ),
    ]
}

fn stateless() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View, EventKind::Click]),
        lookup_join: true,
        project: vec![Field::Seq, Field::Campaign],
        aggregate: None,
        ..Default::default()
    }
}

/// Final window results of a run; a window emitted twice as final is a bug.
fn final_windows(run: &EngineRun) -> BTreeMap<WindowId, (u64, f64)> {
    let mut out = BTreeMap::new();
    for d in &run.delivered {
        if let Output::Window(w) = d.output {
            let previous = out.insert((w.key, w.start, w.end), (w.count, w.value));
            assert!(
                previous.is_none() || w.is_update,
                "window {:?} emitted twice as final",
                (w.key, w.start, w.end)
            );
        }
    }
    out
}

fn delivered_seqs(run: &EngineRun) -> Vec<u64> {
    let mut seqs: Vec<u64> = run
        .delivered
        .iter()
        .map(|d| match d.output {
            Output::Row(r) => r.event.seq,
            Output::Window(_) | Output::Record(_) => panic!("stateless pipeline emitted a window or record"),
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

fn run_micro_batch(pipeline: &PipelineSpec, table: &CampaignTable, log: &SourceLog, mode: OutputMode) -> EngineRun {
    let mut engine = MicroBatchEngine::new("mb", micro_batch(mode), pipeline, table, log.partitions()).unwrap();
    let mut rt = SimRuntime::free(2);
    engine.run(&mut rt, log, log.last_arrival() + NANOS_PER_SEC)
}

fn run_per_record(pipeline: &PipelineSpec, table: &CampaignTable, log: &SourceLog, parallelism: usize) -> EngineRun {
    let cfg = per_record_config(parallelism);
    run_live(
        &JobContext::new("pr", &cfg, pipeline, table, log.partitions()),
        log,
        LiveClock::start(),
        log.last_arrival() + 30 * NANOS_PER_SEC,
        true,
    )
    .unwrap()
}

#[test]
fn micro_batch_append_mode_equals_reference_for_every_window_the_watermark_closed() {
    for seed in 1..=3 {
        let (events, table, partitions) = events(seed);
        let mut log = SourceLog::from_events(partitions, events.iter().copied());
        if seed == 2 {
            // The map tasks scan the columns the log holds (a backlog's), not copies of them.
            log.hold_scan_columns();
        }
        for (name, pipeline) in pipelines() {
            let expected = evaluate(&pipeline, &table, &events);
            let run = run_micro_batch(&pipeline, &table, &log, OutputMode::Append);
            let closed: BTreeMap<_, _> = expected
                .windows
                .iter()
                .filter(|((_, _, end), _)| *end <= run.final_watermark)
                .map(|(k, v)| (*k, *v))
                .collect();
            assert!(!closed.is_empty(), "{name}: nothing closed");
            assert_eq!(final_windows(&run), closed, "{name}, seed {seed}");
            assert_eq!(run.counts.late_dropped, 0, "{name}: in-bound disorder must not drop");
            assert_eq!(run.counts.events, events.len() as u64);
        }
    }
}

#[test]
fn micro_batch_complete_mode_final_table_equals_reference() {
    let (events, table, partitions) = events(7);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    for (name, pipeline) in pipelines() {
        let expected = evaluate(&pipeline, &table, &events);
        let run = run_micro_batch(&pipeline, &table, &log, OutputMode::Complete);
        assert_eq!(run.final_table(), expected.windows, "{name}");
    }
}

#[test]
fn micro_batch_update_mode_latest_values_equal_reference() {
    let (events, table, partitions) = events(11);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    // Sessions excluded: update mode legitimately emits sessions that later merge.
    for (name, pipeline) in pipelines().into_iter().filter(|(n, _)| !n.contains("session")) {
        let expected = evaluate(&pipeline, &table, &events);
        let run = run_micro_batch(&pipeline, &table, &log, OutputMode::Update);
        let mut latest = BTreeMap::new();
        for d in &run.delivered {
            if let Output::Window(w) = d.output {
                latest.insert((w.key, w.start, w.end), (w.count, w.value));
            }
        }
        assert_eq!(latest, expected.windows, "{name}");
    }
}

#[test]
fn per_record_engine_equals_reference_with_parallelism_one_and_two() {
    for seed in 1..=2 {
        let (events, table, partitions) = events(seed);
        let log = compressed(&events, partitions);
        for (name, pipeline) in pipelines() {
            let expected = evaluate(&pipeline, &table, &events);
            assert!(expected.windows.len() > 10, "{name}: too few windows to test anything");
            for parallelism in [1, 2] {
                let run = run_per_record(&pipeline, &table, &log, parallelism);
                assert_eq!(
                    final_windows(&run),
                    expected.windows,
                    "{name}, seed {seed}, parallelism {parallelism}"
                );
                assert!(run.side_output.is_empty(), "{name}: in-bound disorder must not be late");
                assert_eq!(run.counts.events, events.len() as u64);
            }
        }
    }
}

#[test]
fn stateless_pipeline_delivers_exactly_the_reference_rows_in_both_engines() {
    let (events, table, partitions) = events(5);
    let pipeline = stateless();
    let expected = evaluate(&pipeline, &table, &events);
    assert!(!expected.rows.is_empty());
    let mut log = SourceLog::from_events(partitions, events.iter().copied());
    let mb = run_micro_batch(&pipeline, &table, &log, OutputMode::Append);
    assert_eq!(delivered_seqs(&mb), expected.rows);
    // Selected over the columns the log holds (a backlog's).
    log.hold_scan_columns();
    let mb = run_micro_batch(&pipeline, &table, &log, OutputMode::Append);
    assert_eq!(delivered_seqs(&mb), expected.rows, "over held columns");
    for parallelism in [1, 2] {
        let pr = run_per_record(&pipeline, &table, &compressed(&events, partitions), parallelism);
        assert_eq!(delivered_seqs(&pr), expected.rows, "parallelism {parallelism}");
    }
}

#[test]
fn micro_batch_on_live_threads_computes_the_same_as_on_the_manual_clock() {
    let (events, table, partitions) = events(3);
    let log = compressed(&events, partitions);
    let (name, pipeline) = &pipelines()[0];
    let expected = evaluate(pipeline, &table, &events);
    let mut cfg = micro_batch(OutputMode::Complete);
    cfg.trigger = Trigger::ProcessingTime {
        interval: Span::from_ms(5),
    };
    // A thread per worker per stage, and pinned worker threads kept for the run (`pin_workers`).
    for pin in [false, true] {
        let mut engine = MicroBatchEngine::new("mb", cfg, pipeline, &table, partitions).unwrap();
        let mut rt = LiveRuntime::new(2).with_pinned_workers(pin).unwrap();
        let run = engine.run(&mut rt, &log, log.last_arrival() + Span::from_ms(500).nanos());
        assert_eq!(run.final_table(), expected.windows, "{name}, pinned workers: {pin}");
    }
    // A stateless query's map tasks and sink parts on pinned workers.
    let stateless = stateless();
    let expected = evaluate(&stateless, &table, &events);
    cfg.output_mode = OutputMode::Append;
    let mut engine = MicroBatchEngine::new("mb", cfg, &stateless, &table, partitions).unwrap();
    let mut rt = LiveRuntime::new(2).with_pinned_workers(true).unwrap();
    let run = engine.run(&mut rt, &log, log.last_arrival() + Span::from_ms(500).nanos());
    assert_eq!(delivered_seqs(&run), expected.rows, "stateless, pinned workers");
}

#[test]
fn per_record_engine_on_virtual_time_equals_reference_on_one_and_several_nodes() {
    let (events, table, partitions) = events(2);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    for (name, pipeline) in pipelines() {
        let expected = evaluate(&pipeline, &table, &events);
        for (parallelism, cluster) in [
            (1, Cluster::default()),
            (2, Cluster::default()),
            (
                3,
                Cluster {
                    nodes: 3,
                    cores_per_node: 1,
                },
            ),
        ] {
            let cfg = DataflowConfig {
                parallelism,
                ..per_record_config(parallelism)
            };
            let run = run_simulated(
                &JobContext::new("pr", &cfg, &pipeline, &table, log.partitions()),
                &log,
                &test_costs(),
                cluster,
                3_600 * NANOS_PER_SEC,
                true,
            )
            .unwrap();
            assert_eq!(
                final_windows(&run),
                expected.windows,
                "{name}, parallelism {parallelism}, {cluster:?}"
            );
            assert!(run.side_output.is_empty());
            assert_eq!(run.counts.events, events.len() as u64);
        }
    }
    let pipeline = stateless();
    let expected = evaluate(&pipeline, &table, &events);
    for parallelism in [1, 2] {
        let cfg = per_record_config(parallelism);
        let run = run_simulated(
            &JobContext::new("pr", &cfg, &pipeline, &table, log.partitions()),
            &log,
            &test_costs(),
            Cluster::default(),
            3_600 * NANOS_PER_SEC,
            true,
        )
        .unwrap();
        assert_eq!(delivered_seqs(&run), expected.rows);
    }
}

#[test]
fn micro_batch_with_a_cost_model_still_equals_reference() {
    let (events, table, partitions) = events(4);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    for (name, pipeline) in pipelines() {
        let expected = evaluate(&pipeline, &table, &events);
        let mut engine =
            MicroBatchEngine::new("mb", micro_batch(OutputMode::Complete), &pipeline, &table, partitions).unwrap();
        let run = engine.run(
            &mut SimRuntime::new(2, test_costs()),
            &log,
            log.last_arrival() + NANOS_PER_SEC,
        );
        assert_eq!(run.final_table(), expected.windows, "{name}");
    }
}
