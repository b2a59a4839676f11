//! The clickstream generator: a seeded, open-loop stream of user sessions.
//!
//! Model, in the order the generator applies it:
//! - **When** — arrivals follow the [`crate::rate::RateProfile`] schedule ([`crate::rate::RateProfile::arrivals`]),
//!   deterministic spacing, no randomness; each arrival is a *slot*.
//! - **Who** — `max(1, round(base_rate × mean_think_time))` sessions are active at once (the
//!   number that keeps the base rate busy, by Little's law), capped at `users`
//!   ([`session_pool_size`]), kept in a min-heap by due time.
//!   A slot goes to the earliest-due session, which is then rescheduled one exponential think
//!   time later. A session lasts a geometric number of events (mean `mean_session_events`, at
//!   least 1); when it is used up a new session of a uniformly random user takes its place.
//!   Session ids count up from 0, so they are unique over the stream.
//! - **What** — page ~ Zipf(`pages`, `page_zipf_exponent`) (page 0 the most popular), ad
//!   uniform in `0..campaigns × ads_per_campaign`, kind drawn from the mix, `dwell_ms` = the
//!   think time that preceded the event, `price_cents` log-normal with median 3000 for
//!   `add_to_cart` and `purchase` (0 otherwise).
//! - **Event time** — `(arrival − delay) / 1 ms`, rounded down, at least 0, with the delay
//!   drawn from the [`crate::disorder::Disorder`] settings.
//! - **Where** — partition = a fixed multiplicative hash of the user ([`partition_of`]), so a
//!   user's events stay in one partition, in order.
//!
//! Randomness comes from one `rand_pcg::Pcg64` (PCG XSL RR 128/64) stream seeded with
//! `seed_from_u64(seed)`, consumed in a fixed order. PCG and rand's integer/float sampling are
//! portable, so a seed gives the same events on any machine (the floating-point
//! transcendental functions behind the Zipf, exponential and log-normal samplers come from the
//! platform's libm, the only caveat).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp1, Geometric, LogNormal, Zipf};
use rand_pcg::Pcg64;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, NANOS_PER_MS, NANOS_PER_SEC};

use crate::config::ClickstreamConfig;

/// Mixed into the seed of the campaign table so it is independent of the event stream.
const CAMPAIGN_SEED_SALT: u64 = 0xC0FF_EE00_CA3F_A160;

/// The partition of `user` among `partitions`: a fixed multiplicative (Fibonacci) hash, the
/// same on every machine and in every run. `partitions` must be at least 1.
#[inline]
pub fn partition_of(user: u32, partitions: u32) -> u32 {
    let h = (u64::from(user) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (h % u64::from(partitions.max(1))) as u32
}

/// An active session's state; its due time lives in the heap (kept small for cache locality).
#[derive(Clone, Copy, Debug)]
struct Session {
    id: u64,
    remaining: u64,
    user: u32,
    /// The think time that preceded the session's next event, ms.
    dwell_ms: u32,
}

/// The samplers derived from a configuration, built once per run.
struct Model {
    users: u32,
    ads: u32,
    think_mean_ns: f64,
    session_len: Geometric,
    page: Zipf<f64>,
    price: LogNormal<f64>,
    /// Cumulative normalised kind weights and the last kind with a positive weight.
    kind_cdf: [f64; 4],
    last_kind: EventKind,
    next_session: u64,
}

impl Model {
    fn new(cfg: &ClickstreamConfig) -> Self {
        let weights = EventKind::ALL.map(|k| cfg.mix.weight(k).max(0.0));
        let total: f64 = weights.iter().sum();
        let mut kind_cdf = [0.0; 4];
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            kind_cdf[i] = acc / total;
        }
        let last_kind = EventKind::ALL
            .into_iter()
            .rev()
            .find(|k| weights[k.index()] > 0.0)
            .unwrap_or(EventKind::View);
        Self {
            users: cfg.users.max(1),
            ads: cfg.ads().clamp(1, u64::from(u32::MAX)) as u32,
            think_mean_ns: cfg.mean_think_time.nanos() as f64,
            session_len: Geometric::new(1.0 / cfg.mean_session_events.max(1.0)).expect("p in (0, 1]"),
            page: Zipf::new(f64::from(cfg.pages.max(1)), cfg.page_zipf_exponent.max(0.0)).expect("validated Zipf"),
            price: LogNormal::new(3000f64.ln(), 0.6).expect("valid log-normal"),
            kind_cdf,
            last_kind,
            next_session: 0,
        }
    }

    fn think<R: Rng>(&self, rng: &mut R) -> Nanos {
        let x: f64 = Exp1.sample(rng);
        (x * self.think_mean_ns).min(u64::MAX as f64 / 4.0) as Nanos
    }

    /// A fresh session of a random user and its due time, one think time after `now`.
    fn new_session<R: Rng>(&mut self, rng: &mut R, now: Nanos) -> (Nanos, Session) {
        let id = self.next_session;
        self.next_session += 1;
        let user = rng.random_range(0..self.users);
        let remaining = self.session_len.sample(rng).saturating_add(1);
        let think = self.think(rng);
        let session = Session {
            id,
            user,
            remaining,
            dwell_ms: dwell_ms(think),
        };
        (now.saturating_add(think), session)
    }

    fn kind<R: Rng>(&self, rng: &mut R) -> EventKind {
        let u: f64 = rng.random();
        EventKind::ALL
            .into_iter()
            .zip(self.kind_cdf)
            .find(|&(_, c)| u < c)
            .map_or(self.last_kind, |(k, _)| k)
    }
}

/// How many sessions are active at once: `max(1, round(base_rate × mean_think_time))`, so
/// that at the base rate each session sees one event per think time (Little's law), but at
/// most one per user: more would give every user several interleaved sessions and make the
/// pool (a heap) far larger than the cache for no gain in realism.
pub fn session_pool_size(cfg: &ClickstreamConfig) -> usize {
    let ideal = (cfg.rate.base_rate() * cfg.mean_think_time.nanos() as f64 / NANOS_PER_SEC as f64).round();
    ideal.clamp(1.0, f64::from(cfg.users.max(1))) as usize
}

fn dwell_ms(think: Nanos) -> u32 {
    (think / NANOS_PER_MS).min(u64::from(u32::MAX)) as u32
}

/// Generates the clickstream: every event whose arrival is `< duration`, sorted by arrival
/// (ties by `seq`), with `seq` = the index in that order. Deterministic for `seed` (see the
/// module docs for the model and the generator). `cfg` should have passed
/// [`ClickstreamConfig::validate`]; out-of-range values are clamped, not rejected, here.
pub fn generate(cfg: &ClickstreamConfig, seed: u64, duration: Nanos) -> Vec<Event> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut model = Model::new(cfg);
    let delays = cfg.disorder.sampler();
    let partitions = cfg.partitions.max(1);

    let expected = cfg.rate.cumulative(duration).clamp(0.0, 1e9) as usize;
    let mut events = Vec::with_capacity(expected + 16);

    let concurrent = session_pool_size(cfg);
    // The pool: session state by slot, and a min-heap of (due time, slot); ties go to the
    // lower slot, so the order is fully determined.
    let mut sessions: Vec<Session> = Vec::with_capacity(concurrent);
    let mut due: BinaryHeap<Reverse<(Nanos, u32)>> = BinaryHeap::with_capacity(concurrent);
    for slot in 0..concurrent as u32 {
        let (when, s) = model.new_session(&mut rng, 0);
        sessions.push(s);
        due.push(Reverse((when, slot)));
    }

    for arrival in cfg.rate.arrivals() {
        if arrival >= duration {
            break;
        }
        let (user, session, dwell) = {
            let mut top = due.peek_mut().expect("at least one session");
            let s = &mut sessions[top.0 .1 as usize];
            let picked = (s.user, s.id, s.dwell_ms);
            s.remaining -= 1;
            let when = if s.remaining == 0 {
                let (when, fresh) = model.new_session(&mut rng, arrival);
                *s = fresh;
                when
            } else {
                let think = model.think(&mut rng);
                s.dwell_ms = dwell_ms(think);
                arrival.saturating_add(think)
            };
            top.0 .0 = when;
            picked
        };
        let page = (model.page.sample(&mut rng) as u32).clamp(1, cfg.pages.max(1)) - 1;
        let ad = rng.random_range(0..model.ads);
        let kind = model.kind(&mut rng);
        let price_cents = match kind {
            EventKind::AddToCart | EventKind::Purchase => {
                model.price.sample(&mut rng).round().clamp(1.0, f64::from(u32::MAX)) as u32
            }
            EventKind::View | EventKind::Click => 0,
        };
        let delay = delays.sample(&mut rng);
        events.push(Event {
            seq: events.len() as u64,
            event_time: (arrival.saturating_sub(delay) / NANOS_PER_MS) as i64,
            arrival,
            partition: partition_of(user, partitions),
            user,
            session,
            page,
            ad,
            kind,
            dwell_ms: dwell,
            price_cents,
        });
    }
    events
}

/// [`generate`]d events placed into a [`SourceLog`] of `cfg.partitions` partitions.
pub fn source_log(cfg: &ClickstreamConfig, seed: u64, duration: Nanos) -> SourceLog {
    SourceLog::from_events(cfg.partitions.max(1) as usize, generate(cfg, seed, duration))
}

/// The ad → campaign dimension table: each campaign owns exactly `ads_per_campaign` of the
/// ads `0..campaigns × ads_per_campaign`, assigned by a seeded shuffle (Fisher–Yates over a
/// `Pcg64` seeded from `seed` and a fixed salt), so the join is a real lookup rather than
/// arithmetic on the ad id.
pub fn campaign_table(cfg: &ClickstreamConfig, seed: u64) -> CampaignTable {
    let per = cfg.ads_per_campaign.max(1);
    let ads = cfg.ads().min(u64::from(u32::MAX)) as u32;
    let mut campaign_of_ad: Vec<u32> = (0..ads).map(|ad| ad / per).collect();
    let mut rng = Pcg64::seed_from_u64(seed ^ CAMPAIGN_SEED_SALT);
    for i in (1..campaign_of_ad.len()).rev() {
        let j = rng.random_range(0..=i as u64) as usize;
        campaign_of_ad.swap(i, j);
    }
    CampaignTable::new(campaign_of_ad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_table_gives_each_campaign_its_ads() {
        let cfg = ClickstreamConfig {
            campaigns: 7,
            ads_per_campaign: 3,
            ..ClickstreamConfig::default()
        };
        let t = campaign_table(&cfg, 9);
        assert_eq!(t.len(), 21);
        let mut counts = [0; 7];
        for ad in 0..21 {
            counts[t.campaign(ad).unwrap() as usize] += 1;
        }
        assert_eq!(counts, [3; 7]);
        assert_ne!(
            (0..21).map(|a| t.campaign(a).unwrap()).collect::<Vec<_>>(),
            (0..21).map(|a| a / 3).collect::<Vec<_>>()
        );
        assert_eq!(t, campaign_table(&cfg, 9));
        assert_eq!(t.campaign(21), None);
    }

    #[test]
    fn partitions_spread_users() {
        let mut counts = [0u32; 4];
        for u in 0..10_000 {
            counts[partition_of(u, 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (2_000..3_000).contains(&c)), "{counts:?}");
    }
}
