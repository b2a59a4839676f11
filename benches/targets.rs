//! Criterion benchmarks named after the performance targets (see the README's performance
//! table): each group measures one target the way the target states it.
//!
//! * `ysb` — the Yahoo-Streaming-Benchmark-like pipeline (filter views → ad → campaign lookup →
//!   10 s tumbling count per campaign) over in-memory events that have all arrived, so the
//!   figure is processing speed: each engine on one core (the process pinned to core 0, so the
//!   per-record engine's source and window threads share it) and with parallelism 2 on both
//!   cores. Throughput is in events per second.
//!
//! Run with `cargo bench --bench targets`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamlab_engines::dataflow::{live::run_live, DataflowConfig};
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::runtime::{LiveClock, LiveRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig, RateProfile};

/// Events per YSB iteration: about 40 s of event time at 100,000 events/s.
const YSB_EVENTS: usize = 4_000_000;

/// The YSB-like pipeline.
fn ysb_pipeline() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View]),
        lookup_join: true,
        project: vec![],
        aggregate: Some(Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(10_000),
            },
            function: AggFunc::Count,
            field: None,
        }),
    }
}

/// Runs `f` on `cores` cores: with one, on a thread pinned to the first core (threads it
/// spawns inherit the pin); with more, as it is.
fn on_cores<T: Send>(cores: usize, f: impl FnOnce() -> T + Send) -> T {
    let first = core_affinity::get_core_ids().and_then(|ids| ids.first().copied());
    match first.filter(|_| cores == 1) {
        Some(core) => std::thread::scope(|s| {
            s.spawn(move || {
                core_affinity::set_for_current(core);
                f()
            })
            .join()
            .expect("pinned run")
        }),
        None => f(),
    }
}

fn ysb(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..Default::default()
    };
    let events = generate(&cfg, 7, YSB_EVENTS as u64 * NANOS_PER_SEC / 100_000);
    let table = campaign_table(&cfg, 7);
    let partitions = cfg.partitions as usize;
    let log = SourceLog::from_events(partitions, events.iter().map(|e| Event { arrival: 0, ..*e }));
    drop(events);
    let sizes: Vec<usize> = (0..partitions).map(|p| log.available(p, 0)).collect();
    eprintln!("partition sizes {sizes:?}");
    let pipeline = ysb_pipeline();
    // Generous bounds: the generator's disorder never makes an event late, so every engine
    // counts every view (the outputs equal the reference evaluator's).
    let bound = Span::from_ms(5_000);
    let mb = |workers: usize| MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: None,
        },
        shuffle_partitions: workers,
        workers,
        watermark_delay: bound,
        ..Default::default()
    };
    let pr = |parallelism: usize| DataflowConfig {
        parallelism,
        out_of_orderness: bound,
        ..Default::default()
    };

    let mut group = c.benchmark_group("ysb");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.sample_size(10);
    for (name, cores) in [("one_core", 1), ("parallelism_2", 2)] {
        group.bench_function(format!("micro_batch_{name}"), |b| {
            b.iter_batched(
                || MicroBatchEngine::new("mb", mb(cores), &pipeline, &table, partitions).unwrap(),
                |mut engine| {
                    on_cores(cores, || {
                        let run = engine.run(&mut LiveRuntime::new(cores), &log, 600 * NANOS_PER_SEC);
                        assert!(run.counts.outputs > 0);
                        run
                    })
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("per_record_{name}"), |b| {
            b.iter(|| {
                on_cores(cores, || {
                    let run = run_live(
                        "pr",
                        &pr(cores),
                        &pipeline,
                        &table,
                        &log,
                        LiveClock::start(),
                        600 * NANOS_PER_SEC,
                        true,
                    )
                    .unwrap();
                    assert!(run.counts.outputs > 0);
                    run
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ysb);
criterion_main!(benches);
