//! The Nexmark generator: a seeded, open-loop stream of persons, auctions and bids.
//!
//! - **When** — arrivals follow the rate profile's schedule ([`RateProfile::arrivals`]), the
//!   same open-loop slots as the clickstream's; the `n`-th slot (0-based) is *event number* `n`.
//!   A backlog (`backlog = true`) is the scenario's business: it sets every arrival to 0.
//! - **What** — slot `n` carries event `m = adjusted(n)` (below): its record (type and ids
//!   from `m`, see the `records` module) and its event time.
//! - **Event time** — event `m`'s time is its own slot's arrival in ms (rounded down), i.e.
//!   `m × inter-event delay` of the rate profile (exactly that for a constant rate), from 0 at
//!   the start of the run. So time follows the rate, as Nexmark's `timestampForEvent` does.
//! - **Out of order** — after Nexmark's `nextAdjustedEventNumber`: within each group of
//!   `g = out_of_order_group_size` slots, slot `n` carries event `base + (i × k + ⌊g/2⌋) mod g`
//!   with `base = n − i`, `i = n mod g` and `k` = 953 (Nexmark's multiplier; the next odd number
//!   coprime to `g` if 953 shares a factor with it), a permutation of the group. Nexmark's
//!   formula has no offset, which makes it the identity whenever `953 ≡ 1 (mod g)` (g = 2, 4,
//!   7, 8, 14, 17, ...); the offset reorders every group of two or more. An event's time and record travel
//!   together, so within a group event times are a permutation of the in-order ones and an
//!   event's time can lie up to `g − 1` inter-event gaps after its arrival. A last group cut
//!   short by the end of the schedule is in order. `g = 1` (the default) is in order.
//! - **Delays** — with probability `prob_delayed_event` (decided per event from its own
//!   stream, independent of the record) an event is delayed: its event time is
//!   `(arrival − occasional_delay) / 1 ms`, at least 0, the lag of an event held back in
//!   transit (Nexmark's Beam source holds such events back by up to the delay; here the lag is
//!   exactly the delay, so a test can see it).
//! - **Where** — partition `n mod partitions`: Nexmark's Kafka producer spreads events round
//!   robin over the topic's partitions.
//!
//! Like [`crate::ClickstreamGenerator`] the generator is resumable ([`NexmarkGenerator::fill_until`])
//! and holds one group's arrivals in memory, nothing that grows with the run; after the first
//! group it allocates nothing per event. Every event is a pure function of `(seed, config,
//! n)` and the rate profile, so the same seed and configuration give bit-identical events.

use streamlab_engines::event::Event;
use streamlab_engines::time::{Nanos, NANOS_PER_MS};

use super::config::NexmarkWorkload;
use super::records::{event_rng, mix64, RecordModel};
use crate::rate::{Arrivals, RateProfile};
use rand::RngCore;

/// Nexmark's out-of-order multiplier (`nextAdjustedEventNumber`).
const OUT_OF_ORDER_MULTIPLIER: u64 = 953;

/// Mixed into the seed of the delay decisions, so they are independent of the records.
const DELAY_SEED_SALT: u64 = 0xDE1A_7ED0_E7E4_7500;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The Nexmark stream as a resumable source: [`NexmarkGenerator::fill_until`] appends the
/// events that arrive before a given instant, continuing where the previous call stopped. See
/// the module docs for the model and the determinism guarantee.
///
/// ```
/// use streamlab_workloads::nexmark::{NexmarkGenerator, NexmarkWorkload};
/// let cfg = NexmarkWorkload::default();
/// let (mut once, mut steps) = (Vec::new(), Vec::new());
/// NexmarkGenerator::new(&cfg, 7).fill_until(100_000_000, &mut once);
/// let mut g = NexmarkGenerator::new(&cfg, 7);
/// for step in 1..=4u64 {
///     g.fill_until(step * 25_000_000, &mut steps); // 25 ms at a time
/// }
/// assert_eq!(once, steps);
/// assert_eq!(once.len(), 2_000); // 100 ms at 20 000 events/s
/// ```
#[derive(Clone, Debug)]
pub struct NexmarkGenerator {
    records: RecordModel,
    partitions: u64,
    rate: RateProfile,
    arrivals: Arrivals,
    /// The out-of-order group size `g` and its multiplier `k`.
    group_size: u64,
    multiplier: u64,
    /// The arrivals of the current group's slots; shorter than `g` only at the end.
    group: Vec<Nanos>,
    /// The event number of `group[0]`.
    group_start: u64,
    /// The next event number (slot) to produce.
    next: u64,
    /// `prob_delayed_event` as a threshold on 64 random bits, and the delay.
    delay_threshold: u64,
    delay: Nanos,
    delay_seed: u64,
}

impl NexmarkGenerator {
    /// A generator at the start of the stream for `cfg` and `seed`. `cfg` should have passed
    /// [`NexmarkWorkload::validate`]; out-of-range values are clamped here, not rejected.
    pub fn new(cfg: &NexmarkWorkload, seed: u64) -> Self {
        let nexmark = &cfg.nexmark;
        let group_size = u64::from(nexmark.out_of_order_group_size.max(1));
        let mut multiplier = OUT_OF_ORDER_MULTIPLIER;
        while gcd(multiplier, group_size) != 1 {
            multiplier += 2;
        }
        let p = nexmark.prob_delayed_event.clamp(0.0, 1.0);
        // 2^64 × p, saturating to u64::MAX at 1 (the draw is then compared with `<=`).
        let delay_threshold = if p > 0.0 {
            (p * 18_446_744_073_709_551_616.0) as u64
        } else {
            0
        };
        let mut g = Self {
            records: RecordModel::new(nexmark, seed),
            partitions: u64::from(cfg.partitions.max(1)),
            rate: cfg.rate,
            arrivals: cfg.rate.arrivals(),
            group_size,
            multiplier,
            group: Vec::with_capacity(group_size as usize),
            group_start: 0,
            next: 0,
            delay_threshold,
            delay: nexmark.occasional_delay.nanos(),
            delay_seed: mix64(seed ^ DELAY_SEED_SALT),
        };
        g.load_group();
        g
    }

    /// Reads the next group's arrivals from the schedule (fewer than `g` at its end).
    fn load_group(&mut self) {
        self.group_start = self.next;
        self.group.clear();
        while (self.group.len() as u64) < self.group_size {
            match self.arrivals.next() {
                Some(a) => self.group.push(a),
                None => break,
            }
        }
    }

    /// The arrival of the next event not yet produced, or `None` if the rate profile schedules
    /// no more arrivals.
    pub fn next_arrival(&self) -> Option<Nanos> {
        self.group.get((self.next - self.group_start) as usize).copied()
    }

    /// How many events have been produced so far (the `seq` of the next one).
    pub fn produced(&self) -> u64 {
        self.next
    }

    /// Appends to `out`, in arrival order, every not-yet-produced event whose arrival is
    /// `< until`; `seq` continues from the previous call. Any sequence of calls with
    /// non-decreasing `until` yields exactly the events of one call with the last `until`.
    /// `out` is only appended to, so a cleared, reused `Vec` keeps memory bounded.
    pub fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
        let Some(first) = self.next_arrival() else { return };
        if first >= until {
            return;
        }
        let expected = (self.rate.cumulative(until) - self.rate.cumulative(first)).clamp(0.0, (1 << 22) as f64);
        out.reserve(expected as usize + 1);
        while let Some(arrival) = self.next_arrival() {
            if arrival >= until {
                break;
            }
            out.push(self.event_at(arrival));
            self.next += 1;
            if self.next - self.group_start == self.group.len() as u64 {
                self.load_group();
            }
        }
    }

    /// The event in slot `self.next`, arriving at `arrival`.
    #[inline]
    fn event_at(&self, arrival: Nanos) -> Event {
        let n = self.next;
        let i = n - self.group_start;
        let len = self.group.len() as u64;
        // A full group is permuted; a last, partial one is in order.
        let j = if len == self.group_size {
            (i * self.multiplier + len / 2) % len
        } else {
            i
        };
        let m = self.group_start + j;
        let mut event_time = self.group[j as usize] / NANOS_PER_MS;
        if self.delay_threshold > 0 && event_rng(self.delay_seed, m).next_u64() <= self.delay_threshold {
            event_time = arrival.saturating_sub(self.delay) / NANOS_PER_MS;
        }
        let partition = (n % self.partitions) as u32;
        self.records
            .record(m)
            .into_event(n, event_time as i64, arrival, partition)
    }
}

/// Generates the Nexmark stream: every event whose arrival is `< duration`, in arrival order,
/// with `seq` = the event number. A thin wrapper over [`NexmarkGenerator::fill_until`].
pub fn generate_nexmark(cfg: &NexmarkWorkload, seed: u64, duration: Nanos) -> Vec<Event> {
    let expected = cfg.rate.cumulative(duration).clamp(0.0, 1e9) as usize;
    let mut events = Vec::with_capacity(expected + 16);
    NexmarkGenerator::new(cfg, seed).fill_until(duration, &mut events);
    events
}
