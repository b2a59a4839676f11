//! Properties of the clickstream generator: determinism, rate, mix, skew, disorder, partitions.

use std::collections::HashMap;

use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::time::{Span, NANOS_PER_MS, NANOS_PER_SEC};
use streamlab_workloads::{
    generate, source_log, ClickstreamConfig, ClickstreamGenerator, DelayDistribution, Disorder, RateProfile,
};

fn constant(eps: f64) -> ClickstreamConfig {
    ClickstreamConfig {
        rate: RateProfile::Constant { events_per_second: eps },
        ..ClickstreamConfig::default()
    }
}

fn delay_ns(e: &Event) -> u64 {
    e.arrival - e.event_time as u64 * NANOS_PER_MS
}

#[test]
fn same_seed_same_events_different_seed_different_events() {
    let cfg = constant(5_000.0);
    let a = generate(&cfg, 42, 2 * NANOS_PER_SEC);
    let b = generate(&cfg, 42, 2 * NANOS_PER_SEC);
    let c = generate(&cfg, 43, 2 * NANOS_PER_SEC);
    assert_eq!(a, b);
    assert_eq!(a.len(), c.len(), "the schedule does not depend on the seed");
    assert_ne!(a, c);
}

#[test]
fn events_are_in_arrival_order_with_dense_seq() {
    let events = generate(&constant(10_000.0), 1, NANOS_PER_SEC);
    assert!(events.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    assert!(events.iter().all(|e| e.arrival < NANOS_PER_SEC));
}

#[test]
fn constant_rate_is_honoured() {
    let events = generate(&constant(1_000.0), 7, 10 * NANOS_PER_SEC);
    assert_eq!(events.len(), 10_000);
}

#[test]
fn step_profile_doubles_the_count_after_the_step() {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Step {
            before: 1_000.0,
            after: 2_000.0,
            at: Span::from_ms(5_000),
        },
        ..ClickstreamConfig::default()
    };
    let events = generate(&cfg, 7, 10 * NANOS_PER_SEC);
    let before = events.iter().filter(|e| e.arrival < 5 * NANOS_PER_SEC).count();
    let after = events.len() - before;
    assert_eq!(before, 5_000);
    assert_eq!(after, 10_000);
}

#[test]
fn kind_mix_is_honoured_and_prices_only_for_carts_and_purchases() {
    let cfg = constant(100_000.0);
    let events = generate(&cfg, 3, NANOS_PER_SEC);
    assert_eq!(events.len(), 100_000);
    for kind in EventKind::CLICKSTREAM {
        let share = events.iter().filter(|e| e.kind == kind).count() as f64 / events.len() as f64;
        assert!((share - cfg.mix.share(kind)).abs() < 0.01, "{kind:?}: {share}");
    }
    for e in &events {
        let priced = matches!(e.kind, EventKind::AddToCart | EventKind::Purchase);
        assert_eq!(e.price_cents > 0, priced, "{e:?}");
    }
    let mut prices: Vec<u32> = events
        .iter()
        .filter(|e| e.price_cents > 0)
        .map(|e| e.price_cents)
        .collect();
    prices.sort_unstable();
    let median = prices[prices.len() / 2];
    assert!((2_500..3_500).contains(&median), "median price {median}");
}

#[test]
fn pages_are_zipf_skewed_and_ids_in_range() {
    let cfg = constant(100_000.0);
    let events = generate(&cfg, 5, NANOS_PER_SEC);
    let mut per_page = vec![0u32; cfg.pages as usize];
    for e in &events {
        per_page[e.page as usize] += 1;
        assert!(e.ad < cfg.campaigns * cfg.ads_per_campaign);
        assert!(e.user < cfg.users);
    }
    assert!(
        per_page[0] > 50 * per_page[999].max(1),
        "page 0: {}, page 999: {}",
        per_page[0],
        per_page[999]
    );
    assert!(per_page[0] > per_page[1] && per_page[1] > per_page[10]);
}

#[test]
fn event_time_never_after_arrival_and_in_bound_without_late_events() {
    for delay in [DelayDistribution::Uniform, DelayDistribution::Exponential] {
        let cfg = ClickstreamConfig {
            disorder: Disorder {
                delay,
                ..Disorder::default()
            },
            ..constant(20_000.0)
        };
        let bound = cfg.disorder.bound.nanos();
        let events = generate(&cfg, 11, 5 * NANOS_PER_SEC);
        for e in &events {
            assert!(e.event_time >= 0);
            assert!(e.event_time as u64 * NANOS_PER_MS <= e.arrival);
            // Flooring to whole ms adds < 1 ms on top of the delay itself.
            assert!(delay_ns(e) < bound + NANOS_PER_MS, "{e:?}");
        }
        // Out of order for real: some event has an earlier event time than its predecessor.
        assert!(events.windows(2).any(|w| w[1].event_time < w[0].event_time));
        // A watermark of max event time - bound never declares an in-bound event late.
        let mut max = 0;
        for e in &events {
            assert!(e.event_time >= max - (bound / NANOS_PER_MS) as i64);
            max = max.max(e.event_time);
        }
    }
}

#[test]
fn zero_bound_is_in_order() {
    let cfg = ClickstreamConfig {
        disorder: Disorder {
            bound: Span(0),
            ..Disorder::default()
        },
        ..constant(10_000.0)
    };
    let events = generate(&cfg, 2, NANOS_PER_SEC);
    assert!(events.iter().all(|e| e.event_time as u64 == e.arrival / NANOS_PER_MS));
}

#[test]
fn late_fraction_delays_that_share_beyond_the_bound() {
    let cfg = ClickstreamConfig {
        disorder: Disorder {
            late_fraction: 0.1,
            ..Disorder::default()
        },
        ..constant(20_000.0)
    };
    let bound = cfg.disorder.bound.nanos();
    let extra = cfg.disorder.late_extra.nanos();
    let events = generate(&cfg, 13, 5 * NANOS_PER_SEC);
    // Only events that arrive after bound + late_extra can show their full delay (clamp at 0).
    let settled: Vec<&Event> = events
        .iter()
        .filter(|e| e.arrival > bound + extra + NANOS_PER_MS)
        .collect();
    let late = settled.iter().filter(|e| delay_ns(e) >= bound + NANOS_PER_MS).count() as f64;
    let share = late / settled.len() as f64;
    assert!((share - 0.1).abs() < 0.01, "{share}");
    assert!(settled.iter().all(|e| delay_ns(e) < bound + extra + NANOS_PER_MS));
}

#[test]
fn partition_is_stable_per_user_and_sessions_are_unique() {
    // Short think times so sessions finish within the run.
    let cfg = ClickstreamConfig {
        mean_think_time: Span::from_ms(10),
        ..constant(20_000.0)
    };
    let events = generate(&cfg, 17, 3 * NANOS_PER_SEC);
    let mut partition_of_user = HashMap::new();
    let mut user_of_session = HashMap::new();
    for e in &events {
        assert!(e.partition < cfg.partitions);
        assert_eq!(*partition_of_user.entry(e.user).or_insert(e.partition), e.partition);
        assert_eq!(
            *user_of_session.entry(e.session).or_insert(e.user),
            e.user,
            "a session belongs to one user"
        );
    }
    // Sessions average `mean_session_events`: far fewer sessions than events.
    assert!(user_of_session.len() < events.len() / 5);
    let log = source_log(&cfg, 17, 3 * NANOS_PER_SEC);
    assert_eq!(log.len(), events.len());
    assert_eq!(log.partitions(), cfg.partitions as usize);
}

#[test]
fn session_length_and_dwell_follow_the_config() {
    let cfg = ClickstreamConfig {
        mean_session_events: 5.0,
        mean_think_time: Span::from_ms(100),
        ..constant(10_000.0)
    };
    let events = generate(&cfg, 19, 20 * NANOS_PER_SEC);
    let mut per_session: HashMap<u64, u32> = HashMap::new();
    for e in &events {
        *per_session.entry(e.session).or_default() += 1;
    }
    // Sessions cut off by the end of the run are shorter; the mean is still close.
    let mean = events.len() as f64 / per_session.len() as f64;
    assert!((mean - 5.0).abs() < 0.5, "{mean}");
    let dwell = events.iter().map(|e| f64::from(e.dwell_ms)).sum::<f64>() / events.len() as f64;
    // dwell_ms is the think time rounded down to whole ms: mean ≈ 100 ms - 0.5 ms.
    assert!((dwell - 99.5).abs() < 3.0, "{dwell}");
}

#[test]
fn a_million_events_per_second_yields_a_million_events_in_one_second() {
    // Speed is measured by the criterion bench, never asserted on the wall clock here.
    let events = generate(&constant(1_000_000.0), 23, NANOS_PER_SEC);
    assert_eq!(events.len(), 1_000_000);
    assert!(events.windows(2).all(|w| w[0].arrival <= w[1].arrival));
}

/// Concatenates the chunks of a generator driven to each `until` in turn, each into a cleared Vec.
fn in_steps(cfg: &ClickstreamConfig, seed: u64, steps: &[u64]) -> Vec<Event> {
    let mut g = ClickstreamGenerator::new(cfg, seed);
    let mut chunk = Vec::new();
    let mut all = Vec::new();
    for &until in steps {
        chunk.clear();
        g.fill_until(until, &mut chunk);
        assert!(chunk.iter().all(|e| e.arrival < until));
        if let Some(next) = g.next_arrival() {
            assert!(next >= until, "everything before {until} was produced, next is {next}");
        }
        assert_eq!(g.produced(), (all.len() + chunk.len()) as u64);
        all.extend_from_slice(&chunk);
    }
    all
}

#[test]
fn incremental_fill_equals_one_shot_generate() {
    let cfg = ClickstreamConfig {
        mean_think_time: Span::from_ms(50),
        mean_session_events: 4.0,
        disorder: Disorder {
            late_fraction: 0.05,
            ..Disorder::default()
        },
        ..constant(10_000.0)
    };
    let end = 2 * NANOS_PER_SEC;
    let one_shot = generate(&cfg, 31, end);
    assert_eq!(one_shot.len(), 20_000);
    // At 10,000 events/s arrivals are exactly every 100 µs: 300_000 ns is an arrival instant,
    // so that step must stop just before it and the next step must start with it.
    let mut steps = vec![0, 1, 300_000, 300_000, 300_001, 300_002, 700_000];
    steps.extend([5_000_000, 5_000_050, 5_000_100]); // a step with no arrival in it
    steps.extend((1..=200).map(|i| 5_000_100 + i * 1_000)); // tiny steps, mostly empty
    steps.extend([NANOS_PER_SEC, NANOS_PER_SEC + 100_000, 1_700_000_003, end]);
    assert_eq!(in_steps(&cfg, 31, &steps), one_shot);
    // Every arrival instant as its own boundary, for the first 500 events.
    let mut exact: Vec<u64> = one_shot[..500].iter().map(|e| e.arrival).collect();
    exact.push(end);
    assert_eq!(in_steps(&cfg, 31, &exact), one_shot);
}

#[test]
fn incremental_fill_equals_one_shot_for_every_rate_profile() {
    let profiles = [
        RateProfile::Step {
            before: 2_000.0,
            after: 20_000.0,
            at: Span::from_ms(500),
        },
        RateProfile::Spike {
            base: 5_000.0,
            peak: 50_000.0,
            at: Span::from_ms(300),
            duration: Span::from_ms(200),
        },
        RateProfile::Sine {
            mean: 10_000.0,
            amplitude: 10_000.0,
            period: Span::from_ms(400),
        },
    ];
    for rate in profiles {
        let cfg = ClickstreamConfig {
            rate,
            mean_think_time: Span::from_ms(100),
            ..ClickstreamConfig::default()
        };
        let end = NANOS_PER_SEC;
        let steps: Vec<u64> = (1..=97).map(|i| i * end / 97).collect();
        assert_eq!(in_steps(&cfg, 5, &steps), generate(&cfg, 5, end), "{rate:?}");
    }
}

#[test]
fn next_arrival_and_empty_or_past_steps() {
    let cfg = constant(1_000.0);
    let mut g = ClickstreamGenerator::new(&cfg, 3);
    assert_eq!(g.next_arrival(), Some(0));
    let mut out = Vec::new();
    g.fill_until(0, &mut out);
    assert!(out.is_empty());
    g.fill_until(2_500_000, &mut out);
    assert_eq!(
        out.iter().map(|e| e.arrival).collect::<Vec<_>>(),
        vec![0, 1_000_000, 2_000_000]
    );
    assert_eq!(g.next_arrival(), Some(3_000_000));
    // An `until` in the past or equal to the next arrival produces nothing and changes nothing.
    g.fill_until(1_000, &mut out);
    g.fill_until(3_000_000, &mut out);
    assert_eq!(out.len(), 3);
    g.fill_until(3_000_001, &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].seq, 3);
    // A profile that stops for good: the generator runs dry.
    let off = ClickstreamConfig {
        rate: RateProfile::Step {
            before: 10.0,
            after: 0.0,
            at: Span::from_ms(1_000),
        },
        ..ClickstreamConfig::default()
    };
    let mut g = ClickstreamGenerator::new(&off, 1);
    let mut out = Vec::new();
    g.fill_until(u64::MAX, &mut out);
    assert_eq!(out.len(), 10);
    assert_eq!(g.next_arrival(), None);
    g.fill_until(u64::MAX, &mut out);
    assert_eq!(out.len(), 10);
}

#[test]
fn bounded_memory_chunks_into_a_reused_vec() {
    // Ten simulated seconds at 100,000 events/s, 10 ms at a time, through one reused buffer:
    // the buffer never grows past one chunk and the stream matches the one-shot prefix.
    let cfg = constant(100_000.0);
    let mut g = ClickstreamGenerator::new(&cfg, 8);
    let mut chunk = Vec::with_capacity(1_000);
    let mut count = 0u64;
    let mut last_arrival = 0;
    let mut first_second = Vec::new();
    for step in 1..=1_000u64 {
        chunk.clear();
        g.fill_until(step * 10 * NANOS_PER_MS, &mut chunk);
        assert_eq!(chunk.len(), 1_000);
        assert!(chunk.capacity() <= 2_000, "capacity {}", chunk.capacity());
        for e in &chunk {
            assert_eq!(e.seq, count);
            assert!(e.arrival >= last_arrival);
            last_arrival = e.arrival;
            count += 1;
        }
        if step <= 100 {
            first_second.extend_from_slice(&chunk);
        }
    }
    assert_eq!(count, 1_000_000);
    assert_eq!(first_second, generate(&cfg, 8, NANOS_PER_SEC));
}

#[test]
fn generators_are_deterministic_and_cloneable() {
    let cfg = constant(20_000.0);
    let mut a = ClickstreamGenerator::new(&cfg, 77);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    a.fill_until(NANOS_PER_SEC / 2, &mut x);
    let mut b = a.clone();
    let mut tail_a = Vec::new();
    a.fill_until(NANOS_PER_SEC, &mut tail_a);
    b.fill_until(NANOS_PER_SEC, &mut y);
    assert_eq!(tail_a, y, "a clone continues identically");
    x.extend(tail_a);
    assert_eq!(x, generate(&cfg, 77, NANOS_PER_SEC));
    // A fixed fingerprint of seed 1: catches any platform- or libm-dependent sampling.
    let fp = generate(&cfg, 1, NANOS_PER_SEC / 10).iter().fold(0u64, |h, e| {
        let v = [
            e.event_time as u64,
            e.user.into(),
            e.session,
            e.page.into(),
            e.ad.into(),
            e.kind.index() as u64,
            e.dwell_ms.into(),
            e.price_cents.into(),
            e.partition.into(),
        ];
        v.iter().fold(h, |h, x| (h ^ x).wrapping_mul(0x100_0000_01B3))
    });
    assert_eq!(fp, FINGERPRINT_SEED_1, "fingerprint {fp:#x}");
}

/// The fingerprint of `generate(constant(20_000), seed 1, 100 ms)`.
const FINGERPRINT_SEED_1: u64 = 0x476f_94b9_258a_8166;
