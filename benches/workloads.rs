//! Criterion benchmarks of the clickstream generator: simulated events per second it produces,
//! single-threaded, for the default workload at 100,000 events/s (one million events = ten
//! simulated seconds).
//!
//! - `clickstream_1m_events`: a fresh [`ClickstreamGenerator`] driven 10 ms of simulated time
//!   at a time into one reused buffer, as the simulator consumes it (bounded memory);
//! - `clickstream_1m_events_one_shot`: the same events from [`generate`] into one `Vec`
//!   (includes allocating and faulting in 64 MB).
//!
//! Run with `cargo bench --bench workloads`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamlab_engines::time::{NANOS_PER_MS, NANOS_PER_SEC};
use streamlab_workloads::{generate, ClickstreamConfig, ClickstreamGenerator, RateProfile};

const EVENTS: u64 = 1_000_000;
const RATE: u64 = 100_000;

fn generator(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: RATE as f64,
        },
        ..ClickstreamConfig::default()
    };
    let duration = EVENTS * NANOS_PER_SEC / RATE;
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("clickstream_1m_events", |b| {
        let mut chunk = Vec::with_capacity(2 * 10 * RATE as usize / 1_000);
        b.iter(|| {
            let mut g = ClickstreamGenerator::new(&cfg, 42);
            let mut checksum = 0u64;
            let mut until = 0;
            while until < duration {
                until += 10 * NANOS_PER_MS;
                chunk.clear();
                g.fill_until(until, &mut chunk);
                checksum = checksum.wrapping_add(chunk.last().map_or(0, |e| e.session));
            }
            assert_eq!(g.produced(), EVENTS);
            checksum
        })
    });
    group.bench_function("clickstream_1m_events_one_shot", |b| {
        b.iter(|| generate(&cfg, 42, duration).len())
    });
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
