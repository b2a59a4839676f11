//! The generator's output pinned bit for bit: a digest of every field of the first events for
//! a few configurations that take every sampling path (the default mix and its priced kinds,
//! exponential and late delays, a page table with a continuous tail, one-event sessions, a
//! step profile). Why: the generator is optimised for speed from time to time, and every such
//! change must leave a seed's events exactly as they were — the simulated scenarios' digests
//! (`tests/simulated_outputs.rs`) depend on them. The digests were recorded before the fourth
//! round of optimisation and must never be re-blessed. Costs about a second (debug build).

use streamlab_engines::event::Event;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_workloads::{generate, ClickstreamConfig, DelayDistribution, Disorder, RateProfile};

/// FNV-1a over every field of every event, in order.
fn digest(events: &[Event]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    for e in events {
        eat(e.seq);
        eat(e.event_time as u64);
        eat(e.arrival);
        eat(u64::from(e.partition));
        eat(u64::from(e.user));
        eat(e.session);
        eat(u64::from(e.page));
        eat(u64::from(e.ad));
        eat(e.kind.index() as u64);
        eat(u64::from(e.dwell_ms));
        eat(u64::from(e.price_cents));
    }
    h
}

fn configs() -> Vec<(&'static str, ClickstreamConfig, u64)> {
    let base = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..ClickstreamConfig::default()
    };
    vec![
        ("default", base.clone(), 3 * NANOS_PER_SEC),
        (
            "exponential and late delays",
            ClickstreamConfig {
                disorder: Disorder {
                    delay: DelayDistribution::Exponential,
                    late_fraction: 0.05,
                    ..Disorder::default()
                },
                ..base.clone()
            },
            2 * NANOS_PER_SEC,
        ),
        (
            "a page tail past the table, short sessions, a step",
            ClickstreamConfig {
                pages: 3_000_000,
                page_zipf_exponent: 1.0,
                mean_session_events: 1.0,
                users: 5_000,
                mean_think_time: Span::from_ms(300),
                rate: RateProfile::Step {
                    before: 50_000.0,
                    after: 200_000.0,
                    at: Span::from_ms(700),
                },
                ..base
            },
            2 * NANOS_PER_SEC,
        ),
    ]
}

#[test]
fn a_seed_gives_the_same_events_as_before() {
    let expected: [u64; 3] = [0x68f6_f437_67aa_aa46, 0xc1b2_d8fd_5e13_9c81, 0x7c6c_b6e8_e388_ab63];
    let got: Vec<u64> = configs()
        .iter()
        .map(|(_, cfg, duration)| digest(&generate(cfg, 42, *duration)))
        .collect();
    for ((name, _, _), (g, e)) in configs().iter().zip(got.iter().zip(expected)) {
        assert_eq!(*g, e, "{name}: the events changed ({g:#018x})");
    }
}
