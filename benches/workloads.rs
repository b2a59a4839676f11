//! Criterion benchmarks of the clickstream generator: simulated events per second it produces,
//! single-threaded, for the default workload at 100,000 events/s (one million events = ten
//! simulated seconds).
//!
//! - `clickstream_1m_events`: the steady state of a long run: one [`ClickstreamGenerator`]
//!   driven 10 ms of simulated time at a time into one reused buffer, as the simulator consumes
//!   it (bounded memory); each iteration is the next ten simulated seconds;
//! - `clickstream_1m_events_one_shot`: a fresh generator's first million events from
//!   [`generate`] into one `Vec` (includes building the 100,000-session pool and allocating and
//!   faulting in 64 MB).
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
    // Steady state, as in a long simulation: one generator, each iteration the next ten
    // simulated seconds (exactly one million events at this constant rate).
    group.bench_function("clickstream_1m_events", |b| {
        let mut g = ClickstreamGenerator::new(&cfg, 42);
        let mut chunk = Vec::with_capacity(2 * 10 * RATE as usize / 1_000);
        let mut until = 0;
        b.iter(|| {
            let before = g.produced();
            let mut checksum = 0u64;
            for _ in 0..duration / (10 * NANOS_PER_MS) {
                until += 10 * NANOS_PER_MS;
                chunk.clear();
                g.fill_until(until, &mut chunk);
                checksum = checksum.wrapping_add(chunk.last().map_or(0, |e| e.session));
            }
            assert_eq!(g.produced() - before, EVENTS);
            checksum
        })
    });
    // From scratch: building the generator (100,000 sessions) and 1M events into one `Vec`.
    group.bench_function("clickstream_1m_events_one_shot", |b| {
        b.iter(|| generate(&cfg, 42, duration).len())
    });
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
