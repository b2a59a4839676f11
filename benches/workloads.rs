//! Criterion benchmark of the clickstream generator (temporary: one-shot `generate` only).
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamlab_engines::time::NANOS_PER_SEC;
use streamlab_workloads::{generate, ClickstreamConfig, RateProfile};

fn generator(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..ClickstreamConfig::default()
    };
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(1_000_000));
    group.sample_size(10);
    group.bench_function("clickstream_1m_events_one_shot", |b| {
        b.iter(|| generate(&cfg, 42, 10 * NANOS_PER_SEC).len())
    });
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
