//! The Nexmark generator keeps Nexmark's definitions: the type pattern, the id ranges, the hot
//! auction, out-of-order groups and delayed events; and it is reproducible for a seed.

use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::nexmark::{CHANNELS, US_STATES};
use streamlab_engines::time::{Span, NANOS_PER_MS, NANOS_PER_SEC};
use streamlab_workloads::nexmark::{
    generate_nexmark, NexmarkConfig, NexmarkGenerator, NexmarkWorkload, AUCTION_ID_LEAD, FIRST_AUCTION_ID,
    FIRST_PERSON_ID, HOT_BATCH, PERSON_ID_LEAD,
};
use streamlab_workloads::RateProfile;

const RATE: f64 = 20_000.0;

fn workload(nexmark: NexmarkConfig) -> NexmarkWorkload {
    NexmarkWorkload {
        rate: RateProfile::Constant {
            events_per_second: RATE,
        },
        nexmark,
        ..NexmarkWorkload::default()
    }
}

/// The first `n` events at the default configuration (20 000 events/s).
fn first(cfg: &NexmarkWorkload, seed: u64, n: u64) -> Vec<Event> {
    let events = generate_nexmark(cfg, seed, n * NANOS_PER_SEC / RATE as u64);
    assert_eq!(events.len() as u64, n);
    events
}

#[test]
fn every_fifty_events_are_one_person_three_auctions_and_forty_six_bids_in_that_order() {
    let events = first(&workload(NexmarkConfig::default()), 1, 50_000);
    for (epoch, chunk) in events.chunks(50).enumerate() {
        let kinds: Vec<EventKind> = chunk.iter().map(|e| e.kind).collect();
        assert_eq!(kinds[0], EventKind::Person, "epoch {epoch}");
        assert!(kinds[1..4].iter().all(|k| *k == EventKind::Auction), "epoch {epoch}");
        assert!(kinds[4..].iter().all(|k| *k == EventKind::Bid), "epoch {epoch}");
    }
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.partition, (i % 4) as u32, "round robin");
    }
}

#[test]
fn configured_proportions_give_their_pattern() {
    let cfg = workload(NexmarkConfig {
        person_proportion: 2,
        auction_proportion: 1,
        bid_proportion: 3,
        ..NexmarkConfig::default()
    });
    let kinds: Vec<EventKind> = first(&cfg, 1, 12).iter().map(|e| e.kind).collect();
    use EventKind::{Auction as A, Bid as B, Person as P};
    assert_eq!(kinds, [P, P, A, B, B, B, P, P, A, B, B, B]);
}

#[test]
fn ids_count_up_and_references_stay_in_the_active_and_in_flight_ranges() {
    let cfg = workload(NexmarkConfig::default());
    let events = first(&cfg, 5, 200_000);
    let (mut last_person, mut last_auction) = (None::<u64>, None::<u64>);
    let (mut bids, mut hot_bids) = (0u64, 0u64);
    for e in &events {
        match e.kind {
            EventKind::Person => {
                assert_eq!(
                    e.session,
                    last_person.map_or(FIRST_PERSON_ID, |p| p + 1),
                    "persons count up"
                );
                last_person = Some(e.session);
                assert!((e.dwell_ms as usize) < US_STATES.len());
                assert!(e.ad < 10, "one of Nexmark's 10 cities");
                assert!(e.page < 99, "one of 11 x 9 names");
            }
            EventKind::Auction => {
                assert_eq!(
                    e.session,
                    last_auction.map_or(FIRST_AUCTION_ID, |a| a + 1),
                    "auctions count up"
                );
                last_auction = Some(e.session);
                let p = last_person.unwrap();
                let seller = u64::from(e.user);
                assert!(
                    seller + 1000 > p && seller <= p + PERSON_ID_LEAD,
                    "seller {seller}, last person {p}"
                );
                assert!((10..15).contains(&e.ad), "category {}", e.ad);
                assert!((100..=100_000_000).contains(&e.price_cents), "initial bid");
                assert!(e.dwell_ms > e.price_cents, "reserve = initial bid + a price");
            }
            EventKind::Bid => {
                let (p, a) = (last_person.unwrap(), last_auction.unwrap());
                let bidder = u64::from(e.user);
                assert!(
                    bidder + 1000 > p && bidder <= p + PERSON_ID_LEAD,
                    "bidder {bidder}, last person {p}"
                );
                assert!(
                    e.session + 100 >= a && e.session <= a + AUCTION_ID_LEAD,
                    "auction {}, last auction {a}",
                    e.session
                );
                assert!((100..=100_000_000).contains(&e.price_cents), "price");
                let channel = e.ad as usize;
                assert!(channel < CHANNELS.len() + 10_000);
                assert_eq!(e.page, e.ad, "the URL is the channel's");
                bids += 1;
                let hot = (a - FIRST_AUCTION_ID) / HOT_BATCH * HOT_BATCH + FIRST_AUCTION_ID;
                hot_bids += u64::from(e.session == hot);
            }
            other => panic!("a clickstream kind {other:?}"),
        }
    }
    // hot_auction_ratio = 2: half the bids go to the hot auction (plus the uniform picks that
    // happen to hit it, about 1 in 111).
    let share = hot_bids as f64 / bids as f64;
    assert!((0.48..0.53).contains(&share), "hot auction share {share}");
}

#[test]
fn a_seed_reproduces_its_events_byte_for_byte_and_another_seed_differs() {
    let cfg = workload(NexmarkConfig {
        out_of_order_group_size: 10,
        prob_delayed_event: 0.05,
        ..NexmarkConfig::default()
    });
    let bytes = |seed| serde_json::to_vec(&first(&cfg, seed, 20_000)).unwrap();
    assert_eq!(bytes(3), bytes(3));
    let (a, b) = (first(&cfg, 3, 20_000), first(&cfg, 4, 20_000));
    assert_ne!(a, b);
    // Only the draws differ: types and event times are the seed's business only through delays.
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.kind == y.kind && x.arrival == y.arrival));
}

#[test]
fn filling_in_steps_gives_the_events_of_one_step() {
    let cfg = workload(NexmarkConfig {
        out_of_order_group_size: 37,
        prob_delayed_event: 0.1,
        ..NexmarkConfig::default()
    });
    let whole = generate_nexmark(&cfg, 9, 500 * NANOS_PER_MS);
    let mut g = NexmarkGenerator::new(&cfg, 9);
    let mut steps = Vec::new();
    for until in [
        0,
        1,
        3 * NANOS_PER_MS,
        3 * NANOS_PER_MS,
        77 * NANOS_PER_MS,
        500 * NANOS_PER_MS,
    ] {
        g.fill_until(until, &mut steps);
        assert_eq!(g.produced(), steps.len() as u64);
    }
    assert_eq!(steps, whole);
    assert_eq!(g.next_arrival(), Some(500 * NANOS_PER_MS));
}

#[test]
fn out_of_order_groups_permute_events_within_their_group_only() {
    let in_order = first(&workload(NexmarkConfig::default()), 2, 10_000);
    for g in [7u32, 50, 953] {
        let cfg = workload(NexmarkConfig {
            out_of_order_group_size: g,
            ..NexmarkConfig::default()
        });
        let shuffled = first(&cfg, 2, 10_000);
        let g = g as usize;
        let full = in_order.len() / g * g;
        let mut moved = 0;
        for (a, b) in in_order[..full].chunks(g).zip(shuffled[..full].chunks(g)) {
            // Arrivals, seq and partitions stay in their slots.
            assert!(a
                .iter()
                .zip(b)
                .all(|(x, y)| (x.seq, x.arrival, x.partition) == (y.seq, y.arrival, y.partition)));
            // The records, each with its own event time, are the group's, permuted.
            let strip = |e: &Event| (e.event_time, e.kind, e.session, e.user, e.price_cents);
            let (mut xs, mut ys): (Vec<_>, Vec<_>) = (a.iter().map(strip).collect(), b.iter().map(strip).collect());
            moved += xs.iter().zip(&ys).filter(|(x, y)| x != y).count();
            xs.sort();
            ys.sort();
            assert_eq!(xs, ys, "group size {g}");
        }
        assert!(moved > full / 2, "group size {g}: only {moved} of {full} events moved");
    }
}

#[test]
fn a_group_cut_short_by_the_end_of_the_schedule_is_in_order() {
    // 10 arrivals, then the rate drops to 0 for good: groups of 4 are [0, 4), [4, 8), [8, 10).
    let rate = RateProfile::Step {
        before: 1_000.0,
        after: 0.0,
        at: Span::from_ms(10),
    };
    let cfg = |g| NexmarkWorkload {
        rate,
        nexmark: NexmarkConfig {
            out_of_order_group_size: g,
            ..NexmarkConfig::default()
        },
        ..NexmarkWorkload::default()
    };
    let times = |g| -> Vec<i64> {
        generate_nexmark(&cfg(g), 1, NANOS_PER_SEC)
            .iter()
            .map(|e| e.event_time)
            .collect()
    };
    assert_eq!(times(1), (0..10).collect::<Vec<i64>>());
    let shuffled = times(4);
    assert_ne!(shuffled[..8], times(1)[..8]);
    assert_eq!(shuffled[8..], [8, 9]);
}

#[test]
fn delayed_events_have_an_event_time_the_delay_before_their_arrival() {
    let delay = Span::from_ms(3_000);
    let cfg = NexmarkWorkload {
        rate: RateProfile::Constant {
            events_per_second: 2_000.0,
        },
        nexmark: NexmarkConfig {
            prob_delayed_event: 0.1,
            occasional_delay: delay,
            ..NexmarkConfig::default()
        },
        ..NexmarkWorkload::default()
    };
    let events = generate_nexmark(&cfg, 11, 10 * NANOS_PER_SEC);
    let mut delayed = 0;
    for e in events.iter().filter(|e| e.arrival >= delay.nanos()) {
        let on_time = (e.arrival / NANOS_PER_MS) as i64;
        if e.event_time == on_time {
            continue;
        }
        assert_eq!(
            e.event_time,
            ((e.arrival - delay.nanos()) / NANOS_PER_MS) as i64,
            "{e:?}"
        );
        delayed += 1;
    }
    let share = f64::from(delayed) / events.iter().filter(|e| e.arrival >= delay.nanos()).count() as f64;
    assert!((0.08..0.12).contains(&share), "delayed share {share}");
    // Without delays every event time is its arrival.
    let on_time = NexmarkWorkload {
        nexmark: NexmarkConfig::default(),
        ..cfg
    };
    assert!(generate_nexmark(&on_time, 11, NANOS_PER_SEC)
        .iter()
        .all(|e| e.event_time == (e.arrival / NANOS_PER_MS) as i64));
}

#[test]
fn event_times_follow_the_rate_profile() {
    let cfg = NexmarkWorkload {
        rate: RateProfile::Step {
            before: 1_000.0,
            after: 4_000.0,
            at: Span::from_ms(1_000),
        },
        ..NexmarkWorkload::default()
    };
    let events = generate_nexmark(&cfg, 1, 2 * NANOS_PER_SEC);
    assert_eq!(events.len(), 5_000);
    assert_eq!(events[1].event_time, 1, "1 ms apart before the step");
    assert_eq!(
        events[1_001].event_time - events[1_000].event_time,
        0,
        "4 per ms after it"
    );
    assert_eq!(events[1_004].event_time, 1_001);
}

#[test]
fn validation_names_the_key_and_what_is_allowed() {
    let key_of = |nexmark: NexmarkConfig| {
        let err = workload(nexmark).validate().unwrap_err();
        assert!(!err.message.is_empty());
        err.key
    };
    let d = NexmarkConfig::default;
    assert!(workload(d()).validate().is_ok());
    for (cfg, key) in [
        (
            NexmarkConfig {
                bid_proportion: 0,
                ..d()
            },
            "nexmark.bid_proportion",
        ),
        (
            NexmarkConfig {
                person_proportion: 0,
                ..d()
            },
            "nexmark.person_proportion",
        ),
        (
            NexmarkConfig {
                auction_proportion: 0,
                ..d()
            },
            "nexmark.auction_proportion",
        ),
        (
            NexmarkConfig {
                bid_proportion: 1 << 20,
                ..d()
            },
            "nexmark.bid_proportion",
        ),
        (
            NexmarkConfig {
                num_active_people: 0,
                ..d()
            },
            "nexmark.num_active_people",
        ),
        (
            NexmarkConfig {
                num_in_flight_auctions: 0,
                ..d()
            },
            "nexmark.num_in_flight_auctions",
        ),
        (
            NexmarkConfig {
                hot_auction_ratio: 0,
                ..d()
            },
            "nexmark.hot_auction_ratio",
        ),
        (
            NexmarkConfig {
                hot_sellers_ratio: 0,
                ..d()
            },
            "nexmark.hot_sellers_ratio",
        ),
        (
            NexmarkConfig {
                hot_bidders_ratio: 0,
                ..d()
            },
            "nexmark.hot_bidders_ratio",
        ),
        (
            NexmarkConfig {
                out_of_order_group_size: 0,
                ..d()
            },
            "nexmark.out_of_order_group_size",
        ),
        (
            NexmarkConfig {
                prob_delayed_event: 1.5,
                ..d()
            },
            "nexmark.prob_delayed_event",
        ),
        (
            NexmarkConfig {
                prob_delayed_event: f64::NAN,
                ..d()
            },
            "nexmark.prob_delayed_event",
        ),
        (
            NexmarkConfig {
                prob_delayed_event: 0.1,
                occasional_delay: Span(0),
                ..d()
            },
            "nexmark.occasional_delay",
        ),
    ] {
        assert_eq!(key_of(cfg), key);
    }
    let zero_partitions = NexmarkWorkload {
        partitions: 0,
        ..NexmarkWorkload::default()
    };
    assert_eq!(zero_partitions.validate().unwrap_err().key, "partitions");
}

#[test]
fn unknown_keys_are_refused() {
    let err = serde_json::from_str::<NexmarkWorkload>(r#"{"nexmark": {"bid_ratio": 3}}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `bid_ratio`"), "{err}");
    let err = serde_json::from_str::<NexmarkWorkload>(r#"{"users": 3}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `users`"), "{err}");
}
