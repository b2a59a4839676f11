//! The clickstream generator: a seeded, open-loop stream of user sessions.
//!
//! Model, in the order the generator applies it:
//! - **When** — arrivals follow the [`crate::rate::RateProfile`] schedule ([`crate::rate::RateProfile::arrivals`]),
//!   deterministic spacing, no randomness; each arrival is a *slot*.
//! - **Who** — `max(1, round(base_rate × mean_think_time))` sessions are active at once (the
//!   number that keeps the base rate busy, by Little's law), capped at `users`
//!   ([`session_pool_size`]), each with a due time. A slot goes to the earliest-due session,
//!   which is then due again one exponential think time after the later of the slot's arrival
//!   and its own due time. (So when the rate outruns the pool, the pool's clock runs ahead of
//!   arrivals and sessions stay evenly spaced instead of being hammered in bursts; and due
//!   times never go backwards, which lets the pool be an O(1) calendar queue rather than a
//!   heap.) "Earliest" is at a resolution of 1/4096 to 1/2048 of the mean think time, ties in
//!   the order the sessions were scheduled (see the crate's `pool` module). A session lasts a
//!   geometric number of events (mean `mean_session_events`, at least 1, at most `u32::MAX`);
//!   when it is used up a new session of a uniformly random user takes its place. Session ids count up from 0, so they
//!   are unique over the stream.
//! - **What** — page ~ Zipf(`pages`, `page_zipf_exponent`) (page 0 the most popular), ad
//!   uniform in `0..campaigns × ads_per_campaign`, kind drawn from the mix, `dwell_ms` = the
//!   think time that preceded the event, `price_cents` log-normal with median 3000 and σ = 0.6
//!   for `add_to_cart` and `purchase` (0 otherwise).
//! - **Event time** — `(arrival − delay) / 1 ms`, rounded down, at least 0, with the delay
//!   drawn from the [`crate::disorder::Disorder`] settings.
//! - **Where** — partition = a fixed multiplicative hash of the user ([`partition_of`]), so a
//!   user's events stay in one partition, in order.
//!
//! The generator is resumable ([`ClickstreamGenerator::fill_until`]): memory is bounded by the
//! session pool and the sampling tables, not by the length of the run, and producing a stream
//! in any number of steps gives exactly the events of one step. [`generate`] is the one-step
//! wrapper.
//!
//! **Determinism.** Randomness comes from one `rand_pcg::Pcg64Mcg` stream (PCG MCG XSL RR
//! 128/64) seeded with `seed_from_u64(seed)` and consumed in a fixed order, one `u64` per draw
//! (`f64` uniforms are the top 53 bits). Samplers use no libm transcendental function: pages
//! come from a Walker/Vose alias table (one `u64` per draw; pages past 2^20 from the alias
//! table's tail entry and a continuous inverse-CDF), think times are `−ln u`, session lengths
//! `⌊−ln u / −ln(1 − p)⌋`, prices `exp` of a Marsaglia polar normal, with `ln`/`exp` computed by
//! the crate's `fastmath` module from IEEE basic operations only. So a seed gives bit-identical events on
//! any machine. (The one remaining libm use is the `sine` rate profile's arrival schedule,
//! which calls `sin`/`cos`.)

use rand::{Rng, RngCore, SeedableRng};
use rand_pcg::{Pcg64, Pcg64Mcg};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, NANOS_PER_MS, NANOS_PER_SEC};

use crate::config::ClickstreamConfig;
use crate::disorder::DelaySampler;
use crate::fastmath::{self, AliasTable};
use crate::pool::{Pool, Session};
use crate::rate::{Arrivals, RateProfile};

/// Mixed into the seed of the campaign table so it is independent of the event stream.
const CAMPAIGN_SEED_SALT: u64 = 0xC0FF_EE00_CA3F_A160;

/// Pages up to this many get an alias-table column each; beyond it, the tail is one column.
const ZIPF_TABLE_MAX: u32 = 1 << 20;

/// Log-normal price: median 3000 cents, σ = 0.6 (of the underlying normal).
const PRICE_MEDIAN_CENTS: f64 = 3000.0;
const PRICE_SIGMA: f64 = 0.6;

/// The partition of `user` among `partitions`: a fixed multiplicative (Fibonacci) hash, the
/// same on every machine and in every run. `partitions` must be at least 1.
#[inline]
pub fn partition_of(user: u32, partitions: u32) -> u32 {
    let h = (u64::from(user) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (h % u64::from(partitions.max(1))) as u32
}

/// Zipf(`n`, `s`) over `0..n` (0 the most popular): an alias table over the first
/// `min(n, 2^20)` ranks plus, for larger `n`, one column for the tail, which is then drawn from
/// the continuous density `x^-s` on `[K + ½, n + ½]` (relative error O(1/K²) per rank).
#[derive(Clone, Debug)]
struct ZipfSampler {
    table: AliasTable,
    /// Ranks with their own column (`K`); the column `K` (if any) is the tail.
    head: u32,
    n: u32,
    /// `1 − s` and the tail's inverse-CDF endpoints `a^(1−s)`, `b^(1−s)` (or `ln a`, `ln b` when
    /// `s = 1`).
    one_minus_s: f64,
    lo: f64,
    hi: f64,
}

impl ZipfSampler {
    fn new(n: u32, s: f64) -> Self {
        let n = n.max(1);
        let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
        let head = n.min(ZIPF_TABLE_MAX);
        let mut weights: Vec<f64> = (1..=head)
            .map(|k| fastmath::exp(-s * fastmath::ln(f64::from(k))))
            .collect();
        let one_minus_s = 1.0 - s;
        let (a, b) = (f64::from(head) + 0.5, f64::from(n) + 0.5);
        let (lo, hi) = if one_minus_s.abs() < 1e-9 {
            (fastmath::ln(a), fastmath::ln(b))
        } else {
            let pow = |x: f64| fastmath::exp(one_minus_s * fastmath::ln(x));
            (pow(a), pow(b))
        };
        if n > head {
            // ∫_a^b x^-s dx.
            let mass = if one_minus_s.abs() < 1e-9 {
                hi - lo
            } else {
                (hi - lo) / one_minus_s
            };
            weights.push(mass);
        }
        Self {
            table: AliasTable::new(&weights),
            head,
            n,
            one_minus_s,
            lo,
            hi,
        }
    }

    #[inline]
    fn sample<R: RngCore>(&self, rng: &mut R) -> u32 {
        let k = self.table.sample(rng.next_u64());
        if k < self.head {
            return k;
        }
        let v = fastmath::unit_open0(rng.next_u64());
        let t = self.lo + v * (self.hi - self.lo);
        let x = if self.one_minus_s.abs() < 1e-9 {
            fastmath::exp(t)
        } else {
            fastmath::exp(fastmath::ln(t) / self.one_minus_s)
        };
        // x is a continuous rank in [K + ½, n + ½]: round to the nearest rank, 0-based.
        ((x + 0.5) as u64).clamp(u64::from(self.head) + 1, u64::from(self.n)) as u32 - 1
    }
}

/// The samplers derived from a configuration, built once per run.
#[derive(Clone, Debug)]
struct Model {
    users: u64,
    ads: u64,
    partitions: u32,
    think_mean_ns: f64,
    /// `−1 / ln(1 − p)` of the session-length geometric (0 when every session has 1 event).
    session_scale: f64,
    page: ZipfSampler,
    /// `u64` thresholds of the cumulative kind shares, and the last kind with a positive weight.
    kind_thresholds: [u64; 4],
    last_kind: EventKind,
    price_mu: f64,
    next_session: u64,
}

impl Model {
    fn new(cfg: &ClickstreamConfig) -> Self {
        let weights = EventKind::CLICKSTREAM.map(|k| cfg.mix.weight(k).max(0.0));
        let total: f64 = weights.iter().sum();
        let mut kind_thresholds = [0u64; 4];
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            // 2^64 × cumulative share; saturates to u64::MAX at 1.
            kind_thresholds[i] = (acc / total * 18_446_744_073_709_551_616.0) as u64;
        }
        let last_kind = EventKind::CLICKSTREAM
            .into_iter()
            .rev()
            .find(|k| weights[k.index()] > 0.0)
            .unwrap_or(EventKind::View);
        let p = 1.0 / cfg.mean_session_events.max(1.0);
        let session_scale = if p >= 1.0 { 0.0 } else { -1.0 / fastmath::ln(1.0 - p) };
        Self {
            users: u64::from(cfg.users.max(1)),
            ads: cfg.ads().clamp(1, u64::from(u32::MAX)),
            partitions: cfg.partitions.max(1),
            think_mean_ns: cfg.mean_think_time.nanos() as f64,
            session_scale,
            page: ZipfSampler::new(cfg.pages, cfg.page_zipf_exponent),
            kind_thresholds,
            last_kind,
            price_mu: fastmath::ln(PRICE_MEDIAN_CENTS),
            next_session: 0,
        }
    }

    #[inline]
    fn think<R: RngCore>(&self, rng: &mut R) -> Nanos {
        // In [0, 2^62]: converting through `i64` gives the same integer as directly, in fewer
        // instructions (no case for 2^63 and above).
        (fastmath::exp1(rng.next_u64()) * self.think_mean_ns).min(u64::MAX as f64 / 4.0) as i64 as Nanos
    }

    /// A fresh session, due one think time after `base`.
    fn new_session<R: RngCore>(&mut self, rng: &mut R, base: Nanos) -> Session {
        let id = self.next_session;
        self.next_session += 1;
        let user = fastmath::below(rng.next_u64(), self.users) as u32;
        let extra = (fastmath::exp1(rng.next_u64()) * self.session_scale).min(f64::from(u32::MAX - 1));
        let think = self.think(rng);
        Session {
            due: base.saturating_add(think),
            id,
            user,
            partition: partition_of(user, self.partitions),
            remaining: extra as u32 + 1,
            dwell_ms: dwell_ms(think),
        }
    }

    /// The first kind whose cumulative threshold is above the draw (the last kind with a
    /// positive weight if none is). The thresholds never decrease, so that kind's index is the
    /// number of thresholds at or below the draw: counted without a branch, where the search
    /// it replaces mispredicted on about a third of the events.
    #[inline]
    fn kind<R: RngCore>(&self, rng: &mut R) -> EventKind {
        let u = rng.next_u64();
        let below: usize = self.kind_thresholds.iter().map(|&t| usize::from(t <= u)).sum();
        EventKind::CLICKSTREAM.get(below).copied().unwrap_or(self.last_kind)
    }

    /// The draws of a log-normal price: Marsaglia's polar method's accepted point, as
    /// `(x, r²)` (one of the pair is used). Only the draws and the acceptance test: the
    /// arithmetic that turns them into a price is [`Model::price_of`], done later in blocks
    /// (see [`PRICES_PER_BLOCK`]).
    #[inline]
    fn price_draws<R: RngCore>(rng: &mut R) -> (f64, f64) {
        loop {
            let x = 2.0 * fastmath::unit_open0(rng.next_u64()) - 1.0;
            let y = 2.0 * fastmath::unit_open0(rng.next_u64()) - 1.0;
            let r2 = x * x + y * y;
            if r2 > 0.0 && r2 < 1.0 {
                return (x, r2);
            }
        }
    }

    /// The price in cents, at least 1, of the polar method's accepted point `(x, r²)`.
    #[inline]
    fn price_of(&self, x: f64, r2: f64) -> u32 {
        let z = x * (-2.0 * fastmath::ln(r2) / r2).sqrt();
        let p = fastmath::exp(self.price_mu + PRICE_SIGMA * z);
        // p > 0: the cast truncates, so this rounds to nearest (and saturates).
        ((p + 0.5) as u32).max(1)
    }
}

/// How many sessions are active at once: `max(1, round(base_rate × mean_think_time))`, so
/// that at the base rate each session sees one event per think time (Little's law), but at
/// most one per user: more would give every user several interleaved sessions and make the
/// pool far larger than the cache for no gain in realism.
pub fn session_pool_size(cfg: &ClickstreamConfig) -> usize {
    let ideal = (cfg.rate.base_rate() * cfg.mean_think_time.nanos() as f64 / NANOS_PER_SEC as f64).round();
    ideal.clamp(1.0, f64::from(cfg.users.max(1))) as usize
}

fn dwell_ms(think: Nanos) -> u32 {
    (think / NANOS_PER_MS).min(u64::from(u32::MAX)) as u32
}

/// The clickstream as a resumable stream: [`ClickstreamGenerator::fill_until`] appends the
/// events that arrive before a given instant, continuing where the previous call stopped.
/// Memory is the session pool and the sampling tables (a few MB for 10^5 users), independent of
/// how long the stream runs. See the module docs for the model and the determinism guarantee.
///
/// ```
/// use streamlab_workloads::{generate, ClickstreamConfig, ClickstreamGenerator};
/// let cfg = ClickstreamConfig::default();
/// let mut g = ClickstreamGenerator::new(&cfg, 7);
/// let mut chunk = Vec::new();
/// let mut all = Vec::new();
/// for step in 1..=10u64 {
///     chunk.clear();
///     g.fill_until(step * 50_000_000, &mut chunk); // 50 ms at a time
///     all.extend_from_slice(&chunk);
/// }
/// assert_eq!(all, generate(&cfg, 7, 500_000_000));
/// ```
#[derive(Clone, Debug)]
pub struct ClickstreamGenerator {
    rng: Pcg64Mcg,
    model: Model,
    pool: Pool,
    delays: DelaySampler,
    rate: RateProfile,
    arrivals: Arrivals,
    /// The arrival of the next event to produce; `None` once the schedule has ended.
    pending: Option<Nanos>,
    seq: u64,
    /// Events of the current fill whose price is drawn but not yet computed: their index in
    /// the output and the polar method's accepted point (see [`PRICES_PER_BLOCK`]).
    unpriced: Vec<(usize, f64, f64)>,
}

/// Prices computed together, at most. Why not each in line: a tenth of the events have a
/// price, whose arithmetic (a logarithm, a division, a square root and a 13-term polynomial:
/// one long dependency chain) sits behind a branch that mispredicts; in line, it held up the
/// rest of the generator's loop. In a block
/// the chains of independent prices overlap, and the events they go into (about ten times as
/// many back) are still in the cache. The draws stay in line, in their order, and each price is
/// computed by the same operations, so the events are bit for bit the same.
const PRICES_PER_BLOCK: usize = 32;

impl ClickstreamGenerator {
    /// A generator at the start of the stream for `cfg` and `seed`. `cfg` should have passed
    /// [`ClickstreamConfig::validate`]; out-of-range values are clamped, not rejected, here.
    /// Builds the session pool and the page table (O(pool + min(pages, 2^20))).
    pub fn new(cfg: &ClickstreamConfig, seed: u64) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut model = Model::new(cfg);
        let concurrent = session_pool_size(cfg);
        let sessions: Vec<Session> = (0..concurrent).map(|_| model.new_session(&mut rng, 0)).collect();
        let pool = Pool::new(sessions, model.think_mean_ns);
        let mut arrivals = cfg.rate.arrivals();
        let pending = arrivals.next();
        Self {
            rng,
            model,
            pool,
            delays: cfg.disorder.sampler(),
            rate: cfg.rate,
            arrivals,
            pending,
            seq: 0,
            unpriced: Vec::with_capacity(PRICES_PER_BLOCK),
        }
    }

    /// The arrival of the next event not yet produced, or `None` if the rate profile schedules
    /// no more arrivals.
    pub fn next_arrival(&self) -> Option<Nanos> {
        self.pending
    }

    /// How many events have been produced so far (the `seq` of the next one).
    pub fn produced(&self) -> u64 {
        self.seq
    }

    /// Appends to `out`, in arrival order (ties by `seq`), every not-yet-produced event whose
    /// arrival is `< until`; `seq` continues from the previous call. Any sequence of calls with
    /// non-decreasing `until` yields exactly the events of one call with the last `until` (an
    /// `until` at or before [`Self::next_arrival`] appends nothing). `out` is only appended to,
    /// so a cleared, reused `Vec` keeps memory bounded.
    pub fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
        let Some(first) = self.pending else { return };
        if first >= until {
            return;
        }
        let expected = (self.rate.cumulative(until) - self.rate.cumulative(first)).clamp(0.0, (1 << 22) as f64);
        out.reserve(expected as usize + 1);
        while let Some(arrival) = self.pending {
            if arrival >= until {
                break;
            }
            let event = self.event_at(arrival, out.len());
            out.push(event);
            self.pending = self.arrivals.next();
            if self.unpriced.len() == PRICES_PER_BLOCK {
                self.set_prices(out);
            }
        }
        self.set_prices(out);
    }

    /// Computes the prices drawn since the last call into their events in `out`.
    fn set_prices(&mut self, out: &mut [Event]) {
        for &(i, x, r2) in &self.unpriced {
            out[i].price_cents = self.model.price_of(x, r2);
        }
        self.unpriced.clear();
    }

    /// The event for the slot at `arrival`, to be stored at index `at` of the output (where
    /// [`Self::set_prices`] finds it if it has a price to compute).
    #[inline]
    fn event_at(&mut self, arrival: Nanos, at: usize) -> Event {
        let rng = &mut self.rng;
        let s = self.pool.pop_min();
        let base = s.due.max(arrival);
        let next = if s.remaining > 1 {
            let think = self.model.think(rng);
            Session {
                due: base.saturating_add(think),
                remaining: s.remaining - 1,
                dwell_ms: dwell_ms(think),
                ..s
            }
        } else {
            self.model.new_session(rng, base)
        };
        self.pool.insert(next);

        let page = self.model.page.sample(rng);
        let ad = fastmath::below(rng.next_u64(), self.model.ads) as u32;
        let kind = self.model.kind(rng);
        if let EventKind::AddToCart | EventKind::Purchase = kind {
            let (x, r2) = Model::price_draws(rng);
            self.unpriced.push((at, x, r2));
        }
        let delay = self.delays.sample(rng);
        let seq = self.seq;
        self.seq += 1;
        Event {
            seq,
            event_time: (arrival.saturating_sub(delay) / NANOS_PER_MS) as i64,
            arrival,
            partition: s.partition,
            user: s.user,
            session: s.id,
            page,
            ad,
            kind,
            dwell_ms: s.dwell_ms,
            // Set by `set_prices` for the kinds that have one.
            price_cents: 0,
        }
    }
}

/// Generates the clickstream: every event whose arrival is `< duration`, sorted by arrival
/// (ties by `seq`), with `seq` = the index in that order. Deterministic for `seed` (see the
/// module docs for the model and the generator). A thin wrapper over
/// [`ClickstreamGenerator::fill_until`], which produces the same events incrementally.
pub fn generate(cfg: &ClickstreamConfig, seed: u64, duration: Nanos) -> Vec<Event> {
    let expected = cfg.rate.cumulative(duration).clamp(0.0, 1e9) as usize;
    let mut events = Vec::with_capacity(expected + 16);
    ClickstreamGenerator::new(cfg, seed).fill_until(duration, &mut events);
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
    fn zipf_tail_beyond_the_table_has_the_right_mass() {
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let n = 3 * ZIPF_TABLE_MAX;
        for s in [0.0, 1.0, 1.1] {
            let z = ZipfSampler::new(n, s);
            let weight = |k: u32| f64::from(k).powf(-s);
            let total: f64 = (1..=n).map(weight).sum();
            let tail: f64 = (ZIPF_TABLE_MAX + 1..=n).map(weight).sum::<f64>() / total;
            let upper: f64 = (2 * ZIPF_TABLE_MAX + 1..=n).map(weight).sum::<f64>() / total;
            let draws = 400_000;
            let (mut in_tail, mut in_upper) = (0, 0);
            for _ in 0..draws {
                let p = z.sample(&mut rng);
                assert!(p < n);
                in_tail += usize::from(p >= ZIPF_TABLE_MAX);
                in_upper += usize::from(p >= 2 * ZIPF_TABLE_MAX);
            }
            let share = |c: usize| c as f64 / f64::from(draws);
            assert!(
                (share(in_tail) - tail).abs() < 0.005,
                "s = {s}: {} vs {tail}",
                share(in_tail)
            );
            assert!(
                (share(in_upper) - upper).abs() < 0.005,
                "s = {s}: {} vs {upper}",
                share(in_upper)
            );
        }
        // A small table: exactly the Zipf probabilities, page 0 first.
        let z = ZipfSampler::new(3, 1.0);
        let mut counts = [0u32; 3];
        for _ in 0..110_000 {
            counts[z.sample(&mut rng) as usize] += 1;
        }
        for (c, expect) in counts.iter().zip([60_000.0, 30_000.0, 20_000.0]) {
            assert!((f64::from(*c) - expect).abs() < 1_000.0, "{counts:?}");
        }
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
