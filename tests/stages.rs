//! Differential tests of the keyed stages beyond the aggregation — stream–stream joins (interval,
//! window, unbounded; inner and outer), deduplication, top-N per window and a second aggregation
//! — and chains of two keyed stages (a join or a deduplication, then an aggregation behind a
//! second keyed exchange) on both engines and both clocks, several seeds and parallelism above
//! one, both state backends, against the reference evaluator.
//!
//! Each run must end having emitted everything: the per-record engine's bounded source ends
//! with Flink's final `MAX` watermark; the micro-batch engine's log gets one last record of a
//! kind no stage reads, an hour later in event time, whose watermark closes every window and
//! expires every join row (Spark needs new input to move its watermark).

mod common;

use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::{live::run_live, sim::run_simulated, JobContext};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, OutputMode, Trigger};
use streamlab_engines::operators::window::StateBackendKind;
use streamlab_engines::pipeline::{
    AggFunc, Aggregation, DedupSpec, Field, JoinInput, JoinKind, JoinSpec, JoinType, PipelineSpec, Side, SignedSpan,
    ThenSpec, TopNSpec, WindowSpec,
};
use streamlab_engines::reference::evaluate;
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_scenarios::validate::CanonicalOutput;

use common::{compressed, events, micro_batch, per_record_config, test_costs};

fn input(kind: EventKind, key: Field) -> JoinInput {
    JoinInput {
        kinds: vec![kind],
        predicates: vec![],
        key,
    }
}

fn join(kind: JoinKind, join_type: JoinType, bounds: Option<(i64, i64)>, window: Option<WindowSpec>) -> PipelineSpec {
    PipelineSpec {
        join: Some(JoinSpec {
            kind,
            join_type,
            left: input(EventKind::View, Field::Session),
            right: input(EventKind::Click, Field::Session),
            lower: bounds.map(|(lo, _)| SignedSpan { ms: lo }),
            upper: bounds.map(|(_, hi)| SignedSpan { ms: hi }),
            window,
            row_time: None,
        }),
        ..Default::default()
    }
}

/// A chain: views joined with the clicks of their session within `(lower, upper)` ms, the
/// pairs carrying the `row_time` input's event time into `agg`.
fn join_then(bounds: (i64, i64), row_time: Side, agg: Aggregation) -> PipelineSpec {
    let mut p = join(JoinKind::Interval, JoinType::Inner, Some(bounds), None);
    p.join.as_mut().expect("a join").row_time = Some(row_time);
    p.aggregate = Some(agg);
    p
}

fn tumbling(ms: i64) -> WindowSpec {
    WindowSpec::Tumbling {
        size: Span::from_ms(ms as u64),
    }
}

/// A count per page per 1 s window, then `function` over each window's counts.
fn per_window(function: AggFunc, keep_matching: bool) -> PipelineSpec {
    PipelineSpec {
        // Not `purchase`: the closing record must not open a window of its own.
        filter_kinds: Some(vec![EventKind::View, EventKind::Click, EventKind::AddToCart]),
        aggregate: Some(Aggregation {
            key_by: Field::Page,
            window: tumbling(1_000),
            function: AggFunc::Count,
            field: None,
        }),
        then: Some(ThenSpec {
            function,
            keep_matching,
        }),
        ..Default::default()
    }
}

/// Every stage under test, with whether the micro-batch engine can run it.
fn pipelines() -> Vec<(&'static str, PipelineSpec, bool)> {
    let sliding = WindowSpec::Sliding {
        size: Span::from_ms(1_000),
        slide: Span::from_ms(500),
    };
    vec![
        (
            "interval inner",
            join(JoinKind::Interval, JoinType::Inner, Some((0, 2_000)), None),
            true,
        ),
        (
            "interval left outer",
            join(JoinKind::Interval, JoinType::LeftOuter, Some((-1_000, 1_000)), None),
            true,
        ),
        (
            "interval right outer",
            join(JoinKind::Interval, JoinType::RightOuter, Some((0, 500)), None),
            true,
        ),
        (
            "window join tumbling, left outer",
            join(JoinKind::Window, JoinType::LeftOuter, None, Some(tumbling(1_000))),
            true,
        ),
        (
            "window join sliding",
            join(JoinKind::Window, JoinType::Inner, None, Some(sliding)),
            true,
        ),
        (
            "unbounded join",
            join(JoinKind::Unbounded, JoinType::Inner, None, None),
            true,
        ),
        (
            "dedup",
            PipelineSpec {
                dedup: Some(DedupSpec {
                    key: vec![Field::User, Field::Page],
                    within: Span::from_ms(1_000),
                }),
                project: vec![Field::Seq],
                ..Default::default()
            },
            true,
        ),
        (
            "top-1 per window",
            PipelineSpec {
                filter_kinds: Some(vec![EventKind::View]),
                top_n: Some(TopNSpec {
                    window: tumbling(500),
                    n: 1,
                    by: Field::DwellMs,
                }),
                ..Default::default()
            },
            true,
        ),
        (
            "top-3 per sliding window",
            PipelineSpec {
                top_n: Some(TopNSpec {
                    window: sliding,
                    n: 3,
                    by: Field::Page,
                }),
                ..Default::default()
            },
            false,
        ),
        (
            "hot pages (max count per window, kept)",
            per_window(AggFunc::Max, true),
            true,
        ),
        ("sum of counts per window", per_window(AggFunc::Sum, false), true),
        (
            "chain: interval join, then count per page (click time)",
            join_then(
                (0, 2_000),
                Side::Right,
                Aggregation {
                    key_by: Field::Page,
                    window: tumbling(1_000),
                    function: AggFunc::Count,
                    field: None,
                },
            ),
            true,
        ),
        (
            "chain: interval join, then sum of dwell per ad over sliding windows (view time)",
            join_then(
                (-1_000, 0),
                Side::Left,
                Aggregation {
                    key_by: Field::Ad,
                    window: sliding,
                    function: AggFunc::Sum,
                    field: Some(Field::DwellMs),
                },
            ),
            true,
        ),
        (
            "chain: interval join, count per page, then the hottest pages per window",
            PipelineSpec {
                then: Some(ThenSpec {
                    function: AggFunc::Max,
                    keep_matching: true,
                }),
                ..join_then(
                    (0, 1_000),
                    Side::Right,
                    Aggregation {
                        key_by: Field::Page,
                        window: tumbling(500),
                        function: AggFunc::Count,
                        field: None,
                    },
                )
            },
            true,
        ),
        (
            "chain: dedup, then count per page",
            PipelineSpec {
                // Not `purchase`: the closing record must not open a window of its own.
                filter_kinds: Some(vec![EventKind::View, EventKind::Click, EventKind::AddToCart]),
                dedup: Some(DedupSpec {
                    key: vec![Field::User, Field::Page],
                    within: Span::from_ms(1_000),
                }),
                aggregate: Some(Aggregation {
                    key_by: Field::Page,
                    window: tumbling(1_000),
                    function: AggFunc::Count,
                    field: None,
                }),
                ..Default::default()
            },
            true,
        ),
    ]
}

/// The note comparing a run's outputs with the reference; it must say they agree, all emitted.
fn check(name: &str, engine: &str, run: &EngineRun, pipeline: &PipelineSpec, table: &CampaignTable, events: &[Event]) {
    let mut out = CanonicalOutput::default();
    out.add(&run.delivered);
    let note = out.against_reference(&evaluate(pipeline, table, events), run.counts.late_dropped);
    assert!(
        note.starts_with("outputs agree") && !note.contains("not yet") && !note.contains("not closed"),
        "{name} on {engine}: {note}"
    );
    assert!(out.len_all() > 0, "{name} on {engine}: no outputs at all");
}

/// `events` and one last record no stage reads, an hour later in event time.
fn with_closing_record(events: &[Event]) -> Vec<Event> {
    let last = *events.last().expect("events");
    let mut all = events.to_vec();
    all.push(Event {
        seq: last.seq + 1,
        event_time: last.event_time + 3_600_000,
        arrival: last.arrival + 1,
        kind: EventKind::Purchase,
        page: u32::MAX,
        ..last
    });
    all
}

/// The micro-batch query `cfg` over `all` (events with their closing record) on the simulated
/// clock, until two seconds after the last arrival.
fn micro_batch_simulated(
    cfg: MicroBatchConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    all: &[Event],
    partitions: usize,
) -> EngineRun {
    let log = SourceLog::from_events(partitions, all.iter().copied());
    let mut engine = MicroBatchEngine::new("mb", cfg, pipeline, table, partitions).expect("a valid query");
    engine.run(
        &mut SimRuntime::new(2, test_costs()),
        &log,
        log.last_arrival() + 2 * NANOS_PER_SEC,
    )
}

/// The same on live threads: the schedule compressed, a 5 ms trigger.
fn micro_batch_live(
    mut cfg: MicroBatchConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    all: &[Event],
    partitions: usize,
) -> EngineRun {
    cfg.trigger = Trigger::ProcessingTime {
        interval: Span::from_ms(5),
    };
    let log = compressed(all, partitions);
    let mut engine = MicroBatchEngine::new("mb", cfg, pipeline, table, partitions).expect("a valid query");
    engine.run(
        &mut LiveRuntime::new(2),
        &log,
        log.last_arrival() + Span::from_ms(500).nanos(),
    )
}

/// The per-record `job` over `events` on live threads, the schedule compressed, its bounded
/// source ending with the final watermark.
fn per_record_live(job: &JobContext, events: &[Event], partitions: usize) -> EngineRun {
    let log = compressed(events, partitions);
    run_live(
        job,
        &log,
        LiveClock::start(),
        log.last_arrival() + 30 * NANOS_PER_SEC,
        true,
    )
    .expect("the job runs")
}

/// The same on virtual time, on `cluster`.
fn per_record_simulated(job: &JobContext, events: &[Event], partitions: usize, cluster: Cluster) -> EngineRun {
    let log = SourceLog::from_events(partitions, events.iter().copied());
    run_simulated(job, &log, &test_costs(), cluster, 3_600 * NANOS_PER_SEC, true).expect("the job runs")
}

#[test]
fn every_stage_on_the_micro_batch_engine_equals_the_reference_on_both_clocks() {
    for seed in [1, 2] {
        let (events, table, partitions) = events(seed);
        let all = with_closing_record(&events);
        for (name, pipeline, spark_runs_it) in pipelines() {
            if !spark_runs_it {
                continue;
            }
            let cfg = micro_batch(OutputMode::Append);
            let run = micro_batch_simulated(cfg, &pipeline, &table, &all, partitions);
            check(
                name,
                &format!("micro-batch simulated, seed {seed}"),
                &run,
                &pipeline,
                &table,
                &all,
            );
            let run = micro_batch_live(cfg, &pipeline, &table, &all, partitions);
            check(
                name,
                &format!("micro-batch live, seed {seed}"),
                &run,
                &pipeline,
                &table,
                &all,
            );
        }
    }
}

#[test]
fn every_stage_on_the_per_record_engine_equals_the_reference_on_both_clocks() {
    for seed in [1, 3] {
        let (events, table, partitions) = events(seed);
        for (name, pipeline, _) in pipelines() {
            for parallelism in [1, 2] {
                let cfg = per_record_config(parallelism);
                let job = JobContext::new("pr", &cfg, &pipeline, &table, partitions);
                let run = per_record_live(&job, &events, partitions);
                let engine = format!("per-record live, parallelism {parallelism}, seed {seed}");
                check(name, &engine, &run, &pipeline, &table, &events);

                let cluster = Cluster {
                    nodes: parallelism,
                    cores_per_node: 1,
                };
                let run = per_record_simulated(&job, &events, partitions, cluster);
                let engine = format!("per-record simulated, parallelism {parallelism}, seed {seed}");
                check(name, &engine, &run, &pipeline, &table, &events);
            }
        }
    }
}

/// The stages whose keyed state an LSM backend holds: the joins, the deduplication and top-N.
fn lsm_pipelines() -> Vec<(&'static str, PipelineSpec, bool)> {
    pipelines()
        .into_iter()
        .filter(|(_, p, _)| p.join.is_some() || p.dedup.is_some() || p.top_n.is_some())
        .collect()
}

#[test]
fn joins_dedup_and_top_n_on_the_lsm_backends_deliver_what_the_heap_delivers_on_both_engines() {
    let (mut events, table, partitions) = events(1);
    events.truncate(events.len() / 2); // debug builds: keeps this test near 20 s
    let all = with_closing_record(&events);
    for (name, pipeline, spark_runs_it) in lsm_pipelines() {
        // Micro-batch, simulated: identical deliveries to the heap's, and the reference's outputs.
        let mut delivered = Vec::new();
        for backend in [StateBackendKind::Heap, StateBackendKind::Lsm]
            .into_iter()
            .filter(|_| spark_runs_it)
        {
            let cfg = MicroBatchConfig {
                state_backend: backend,
                ..micro_batch(OutputMode::Append)
            };
            let run = micro_batch_simulated(cfg, &pipeline, &table, &all, partitions);
            check(
                name,
                &format!("micro-batch simulated, {backend:?}"),
                &run,
                &pipeline,
                &table,
                &all,
            );
            delivered.push(run.delivered);
        }
        if spark_runs_it {
            assert_eq!(delivered[0], delivered[1], "{name}: micro-batch lsm differs from heap");
        }

        // Per-record, simulated at parallelism 2 in changelog mode (identical to the heap), and
        // live at parallelism 1.
        let cluster = Cluster {
            nodes: 2,
            cores_per_node: 1,
        };
        let mut delivered = Vec::new();
        for backend in [StateBackendKind::Heap, StateBackendKind::LsmChangelog] {
            let cfg = streamlab_engines::dataflow::DataflowConfig {
                state_backend: backend,
                ..per_record_config(2)
            };
            let job = JobContext::new("pr", &cfg, &pipeline, &table, partitions);
            let run = per_record_simulated(&job, &events, partitions, cluster);
            check(
                name,
                &format!("per-record simulated, {backend:?}"),
                &run,
                &pipeline,
                &table,
                &events,
            );
            delivered.push(run.delivered);
        }
        assert_eq!(
            delivered[0], delivered[1],
            "{name}: per-record lsm_changelog differs from heap"
        );
        let cfg = streamlab_engines::dataflow::DataflowConfig {
            state_backend: StateBackendKind::Lsm,
            ..per_record_config(1)
        };
        let job = JobContext::new("pr", &cfg, &pipeline, &table, partitions);
        let run = per_record_live(&job, &events, partitions);
        check(name, "per-record live, Lsm", &run, &pipeline, &table, &events);
    }
}

/// The Nexmark queries as shipped (`scenarios/nexmark/qN.toml`), their pipelines read from the
/// files, over 12 s of Nexmark events at 5 000 events/s: in order, and out of order within the
/// watermark's 4 s (groups of 40 reordered, 5 % of events 3 s late).
fn nexmark_cases() -> Vec<(String, PipelineSpec, Vec<Event>, usize)> {
    use streamlab_scenarios::spec::WorkloadSpec;
    use streamlab_workloads::nexmark::{generate_nexmark, NexmarkWorkload};
    let mut cases = Vec::new();
    for q in ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11"] {
        let path = std::path::PathBuf::from(format!("scenarios/nexmark/{q}.toml"));
        let scenario = streamlab_scenarios::Scenario::load(&path).unwrap_or_else(|e| panic!("{q}: {e}"));
        let WorkloadSpec::Nexmark(shipped) = &scenario.workload else {
            panic!("{q}: not a Nexmark workload");
        };
        for (seed, disordered) in [(1, false), (2, true)] {
            let mut cfg = NexmarkWorkload {
                backlog: false,
                rate: streamlab_workloads::RateProfile::Constant {
                    events_per_second: 5_000.0,
                },
                ..shipped.clone()
            };
            if disordered {
                cfg.nexmark.out_of_order_group_size = 40;
                cfg.nexmark.prob_delayed_event = 0.05;
                cfg.nexmark.occasional_delay = Span::from_ms(3_000);
            }
            let events = generate_nexmark(&cfg, seed, 12 * NANOS_PER_SEC);
            let name = format!(
                "nexmark {q}, seed {seed}{}",
                if disordered { ", disordered" } else { "" }
            );
            cases.push((name, scenario.pipeline.clone(), events, cfg.partitions as usize));
        }
    }
    cases
}

fn nexmark_micro_batch() -> MicroBatchConfig {
    MicroBatchConfig {
        watermark_delay: Span::from_ms(4_000),
        ..micro_batch(OutputMode::Append)
    }
}

#[test]
fn nexmark_queries_on_the_micro_batch_engine_equal_the_reference_on_both_clocks() {
    let table = CampaignTable::default();
    for (name, pipeline, events, partitions) in nexmark_cases() {
        let all = with_closing_record(&events);
        let run = micro_batch_simulated(nexmark_micro_batch(), &pipeline, &table, &all, partitions);
        check(&name, "micro-batch simulated", &run, &pipeline, &table, &all);
        let run = micro_batch_live(nexmark_micro_batch(), &pipeline, &table, &all, partitions);
        check(&name, "micro-batch live", &run, &pipeline, &table, &all);
    }
}

#[test]
fn nexmark_queries_on_the_per_record_engine_equal_the_reference_on_both_clocks() {
    let table = CampaignTable::default();
    for (name, pipeline, events, partitions) in nexmark_cases() {
        for parallelism in [1, 3] {
            let cfg = streamlab_engines::dataflow::DataflowConfig {
                out_of_orderness: Span::from_ms(4_000),
                ..per_record_config(parallelism)
            };
            let job = JobContext::new("pr", &cfg, &pipeline, &table, partitions);
            let run = per_record_live(&job, &events, partitions);
            check(
                &name,
                &format!("per-record live, parallelism {parallelism}"),
                &run,
                &pipeline,
                &table,
                &events,
            );

            let run = per_record_simulated(&job, &events, partitions, Cluster::default());
            check(
                &name,
                &format!("per-record simulated, parallelism {parallelism}"),
                &run,
                &pipeline,
                &table,
                &events,
            );
        }
    }
}
