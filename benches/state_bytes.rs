//! Target 4 of the performance issue: heap state per key of a windowed count.
//!
//! 1 M keys, one 10 s tumbling window each, inserted into the heap backend. Before criterion
//! times the inserts, it prints the bytes per key two ways: the operator's own account of its
//! allocations (column and index capacities, [`WindowedAggregation::state_bytes`]) and the
//! process's resident memory grown while the state was filled. This is a binary of its own so
//! that the resident figure is a fresh process's: after other benches, the allocator keeps
//! freed memory resident and a growing column's old buffers stay counted.
//!
//! Run with `cargo bench --bench state_bytes`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::operators::window::{EmitPolicy, TimeSemantics, WindowedAggregation};
use streamlab_engines::operators::{Lineage, Row};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, WindowSpec};
use streamlab_engines::time::Span;

const KEYS: u64 = 1_000_000;

/// A windowed count over `KEYS` users, every one with a record in the window `[0, 10 s)`.
fn fill() -> WindowedAggregation {
    let spec = Aggregation {
        key_by: Field::User,
        window: WindowSpec::Tumbling {
            size: Span::from_ms(10_000),
        },
        function: AggFunc::Count,
        field: None,
    };
    let mut op = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark);
    let mut out = Vec::new();
    for user in 0..KEYS {
        let row = Row {
            event: Event {
                seq: user,
                event_time: 1_000,
                arrival: user * 1_000,
                partition: 0,
                user: user as u32,
                session: 1,
                page: 1,
                ad: 1,
                kind: EventKind::View,
                dwell_ms: 0,
                price_cents: 0,
            },
            campaign: 0,
            lineage: Lineage {
                arrival: user * 1_000,
                ingest: user * 1_000 + 10,
                handoff: user * 1_000 + 20,
                recv: user * 1_000 + 30,
            },
        };
        op.insert(&row, 0, &mut out);
    }
    assert!(out.is_empty(), "no window fires before the watermark moves");
    op
}

/// Resident memory of the process, bytes (Linux; 0 elsewhere).
fn rss() -> u64 {
    streamlab_scenarios::rss::resident().map_or(0, |(_, now)| now)
}

fn state_bytes(c: &mut Criterion) {
    let before = rss();
    let op = fill();
    let grown = rss().saturating_sub(before);
    assert_eq!(op.state_rows(), KEYS as usize);
    eprintln!(
        "state_bytes: {KEYS} keys; the operator's allocations {:.1} bytes/key; resident memory grew {:.1} bytes/key",
        op.state_bytes() as f64 / KEYS as f64,
        grown as f64 / KEYS as f64,
    );
    drop(op);
    let mut group = c.benchmark_group("state_bytes");
    group.throughput(Throughput::Elements(KEYS));
    group.sample_size(10);
    group.bench_function("heap_window_count_1m_keys", |b| b.iter(fill));
    group.finish();
}

criterion_group!(benches, state_bytes);
criterion_main!(benches);
