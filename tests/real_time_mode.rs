//! Spark's Real-Time Mode on the native micro-batch engine (`trigger = { kind = "real_time" }`,
//! `engines/src/microbatch/real_time.rs`): differential against the reference evaluator on
//! both clocks, determinism on the simulated clock, where it sits on the continuum between
//! micro-batches and per-record streaming (virtual time only), and what it refuses.
//!
//! Cost: about a second (three seconds of clickstream, simulated; one live run replayed 50×
//! faster).

mod common;

use std::collections::BTreeMap;

use common::{compressed, events, micro_batch, test_costs, BOUND_MS};

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::EventKind;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, OutputMode, Trigger};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference::evaluate;
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};

fn real_time(checkpoint_ms: u64) -> MicroBatchConfig {
    MicroBatchConfig {
        trigger: Trigger::RealTime {
            checkpoint_interval: Span::from_ms(checkpoint_ms),
        },
        workers: 7, // 4 source partitions + 3 shuffle partitions, all at once
        ..micro_batch(OutputMode::Update)
    }
}

fn tumbling_count() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::Click]),
        lookup_join: true,
        aggregate: Some(Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(1000),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    }
}

fn sliding_sum() -> PipelineSpec {
    PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::User,
            window: WindowSpec::Sliding {
                size: Span::from_ms(2000),
                slide: Span::from_ms(500),
            },
            function: AggFunc::Sum,
            field: Some(Field::PriceCents),
        }),
        ..Default::default()
    }
}

fn stateless() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View, EventKind::Click]),
        lookup_join: true,
        project: vec![Field::Seq, Field::Campaign],
        ..Default::default()
    }
}

fn latest_windows(run: &EngineRun) -> BTreeMap<(i64, i64, i64), (u64, f64)> {
    let mut latest = BTreeMap::new();
    for d in &run.delivered {
        if let Output::Window(w) = d.output {
            latest.insert((w.key, w.start, w.end), (w.count, w.value));
        }
    }
    latest
}

fn run_sim(cfg: MicroBatchConfig, pipeline: &PipelineSpec, table: &CampaignTable, log: &SourceLog) -> EngineRun {
    let mut engine = MicroBatchEngine::new("rtm", cfg, pipeline, table, log.partitions()).unwrap();
    let mut rt = SimRuntime::new(cfg.workers, test_costs());
    engine.run(&mut rt, log, log.last_arrival() + NANOS_PER_SEC)
}

#[test]
fn real_time_mode_equals_the_reference_on_the_simulated_clock() {
    let (events, table, partitions) = events(5);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    for (name, pipeline) in [("tumbling count", tumbling_count()), ("sliding sum", sliding_sum())] {
        let expected = evaluate(&pipeline, &table, &events);
        let run = run_sim(real_time(1000), &pipeline, &table, &log);
        assert_eq!(latest_windows(&run), expected.windows, "{name}");
        assert_eq!(run.counts.events, events.len() as u64, "{name}");
        assert_eq!(run.counts.late_dropped, 0, "{name}");
        assert!(run.counts.batches >= 3, "{name}: a batch per checkpoint interval");
    }
    let pipeline = stateless();
    let expected = evaluate(&pipeline, &table, &events);
    let run = run_sim(real_time(1000), &pipeline, &table, &log);
    let mut seqs: Vec<u64> = run
        .delivered
        .iter()
        .map(|d| match d.output {
            Output::Row(r) => r.event.seq,
            _ => panic!("a stateless query delivers rows"),
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, expected.rows);
}

#[test]
fn real_time_mode_equals_the_reference_on_the_live_clock() {
    let (events, table, partitions) = events(6);
    let log = compressed(&events, partitions);
    let pipeline = tumbling_count();
    let expected = evaluate(&pipeline, &table, &events);
    let cfg = real_time(20);
    let mut engine = MicroBatchEngine::new("rtm", cfg, &pipeline, &table, partitions).unwrap();
    let mut rt = LiveRuntime::new(cfg.workers);
    let run = engine.run(&mut rt, &log, log.last_arrival() + Span::from_ms(200).nanos());
    assert_eq!(latest_windows(&run), expected.windows);
    assert_eq!(run.counts.events, events.len() as u64);
}

#[test]
fn a_simulated_real_time_run_is_deterministic() {
    let (events, table, partitions) = events(8);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    let pipeline = tumbling_count();
    let a = run_sim(real_time(500), &pipeline, &table, &log);
    let b = run_sim(real_time(500), &pipeline, &table, &log);
    assert_eq!(a.delivered, b.delivered);
    assert_eq!(a.progress, b.progress);
    assert_eq!(
        a.latency.total.value_at_quantile(0.99),
        b.latency.total.value_at_quantile(0.99)
    );
}

#[test]
fn real_time_mode_sits_between_micro_batches_and_per_record_on_virtual_time() {
    let (events, table, partitions) = events(9);
    let log = SourceLog::from_events(partitions, events.iter().copied());
    let pipeline = tumbling_count();
    let p50 = |cfg: MicroBatchConfig| {
        run_sim(cfg, &pipeline, &table, &log)
            .latency
            .total
            .value_at_quantile(0.5)
    };
    let mut batches = micro_batch(OutputMode::Update);
    batches.trigger = Trigger::ProcessingTime {
        interval: Span::from_ms(1000),
    };
    batches.workers = 7;
    let (rtm, one_second) = (p50(real_time(5000)), p50(batches));
    assert!(
        rtm * 20 < one_second,
        "Real-Time Mode p50 {rtm} ns should be far below a 1 s trigger's {one_second} ns"
    );
    assert!(
        rtm < 5_000_000,
        "Real-Time Mode p50 {rtm} ns is about one record's processing"
    );
}

#[test]
fn real_time_mode_refuses_what_spark_refuses_by_key() {
    let table = CampaignTable::default();
    let refused = |cfg: MicroBatchConfig, pipeline: &PipelineSpec, partitions: usize| {
        MicroBatchEngine::new("rtm", cfg, pipeline, &table, partitions).unwrap_err()
    };
    let append = MicroBatchConfig {
        output_mode: OutputMode::Append,
        ..real_time(1000)
    };
    let err = refused(append, &tumbling_count(), 4);
    assert_eq!(err.key, "output_mode");
    assert!(err.message.contains("OUTPUT_MODE_NOT_SUPPORTED"), "{}", err.message);
    let mut session = tumbling_count();
    session.aggregate.as_mut().unwrap().window = WindowSpec::Session {
        gap: Span::from_ms(BOUND_MS),
    };
    let err = refused(real_time(1000), &session, 4);
    assert_eq!(err.key, "trigger");
    assert!(err.message.contains("allowlist"), "{}", err.message);
    let zero = refused(real_time(0), &tumbling_count(), 4);
    assert_eq!(zero.key, "trigger.checkpoint_interval");
    let few = MicroBatchConfig {
        workers: 6,
        ..real_time(1000)
    };
    let err = refused(few, &tumbling_count(), 4);
    assert_eq!(err.key, "workers");
    assert!(err.message.contains("7 tasks"), "{}", err.message);
}
