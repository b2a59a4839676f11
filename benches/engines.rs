//! Criterion benchmarks: events per second of each engine on the quickstart pipeline
//! (filter clicks → campaign lookup → 2 s tumbling count per campaign), over 200,000
//! in-memory events that have all arrived, so the figure is processing speed, not the rate.
//!
//! The simulator's speed (target 4) is measured in `benches/targets.rs` (`-- simulator`).
//!
//! Run with `cargo bench --bench engines`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamlab_engines::dataflow::{live::run_live, DataflowConfig, JobContext};
use streamlab_engines::event::Event;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::runtime::{LiveClock, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig, RateProfile};

mod pipelines;
use pipelines::quickstart_pipeline;

const EVENTS: usize = 200_000;

fn engines(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: EVENTS as f64,
        },
        ..Default::default()
    };
    let events = generate(&cfg, 42, NANOS_PER_SEC);
    let table = campaign_table(&cfg, 42);
    let partitions = cfg.partitions as usize;
    // Everything has arrived at time 0: the engines run flat out.
    let log = SourceLog::from_events(partitions, events.iter().map(|e| Event { arrival: 0, ..*e }));
    let pipeline = quickstart_pipeline();

    let mut group = c.benchmark_group("quickstart_pipeline");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.sample_size(10);
    group.bench_function("micro_batch_one_core", |b| {
        let mb = MicroBatchConfig {
            trigger: Trigger::ProcessingTime {
                interval: Span::from_ms(1000),
            },
            shuffle_partitions: 1,
            workers: 1,
            ..Default::default()
        };
        b.iter_batched(
            || MicroBatchEngine::new("mb", mb, &pipeline, &table, partitions).unwrap(),
            |mut engine| engine.run(&mut SimRuntime::free(1), &log, NANOS_PER_SEC),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("per_record_parallelism_1", |b| {
        let pr = DataflowConfig {
            parallelism: 1,
            ..Default::default()
        };
        b.iter(|| {
            run_live(
                &JobContext::new("pr", &pr, &pipeline, &table, log.partitions()),
                &log,
                LiveClock::start(),
                60 * NANOS_PER_SEC,
                true,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
