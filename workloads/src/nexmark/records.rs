//! Nexmark's person, auction and bid records as a pure function of the seed and the event
//! number: the benchmark's `PersonGenerator`, `AuctionGenerator` and `BidGenerator`, with ids in
//! place of strings.
//!
//! **Type.** Event numbers run in epochs of `person + auction + bid` proportions; within an
//! epoch the first `person_proportion` are persons, the next `auction_proportion` auctions,
//! the rest bids (Nexmark: 1, 3, 46 of every 50).
//!
//! **Ids.** Persons and auctions are numbered in creation order from [`FIRST_PERSON_ID`] and
//! [`FIRST_AUCTION_ID`], so an id is arithmetic on the event number ("the last person or auction
//! created by event `n`"). An auction's seller and a bid's bidder are the *hot* person with
//! probability `1 − 1/hot_ratio` (the first, for bidders the second, of the last batch of 100
//! persons), else uniform over the last `num_active_people` persons plus [`PERSON_ID_LEAD`] not
//! yet created. A bid's auction is the hot auction (the first of the last batch of 100) with
//! probability `1 − 1/hot_auction_ratio`, else uniform over the last `num_in_flight_auctions`
//! auctions plus [`AUCTION_ID_LEAD`] not yet created. The leads are Nexmark's: they make some
//! bids and auctions refer to a person or auction that arrives just after them.
//!
//! **Values.** Prices are Nexmark's `nextPrice`, `round(10^(6u) × 100)` for `u` uniform in
//! `[0, 1)`; a reserve is the initial bid plus another price. Categories are
//! `FIRST_CATEGORY_ID + 0..5`. A person's name is one of Nexmark's 11 × 9 first/last name pairs
//! (`first × 9 + last`), city one of its 10 cities, state an index into
//! [`streamlab_engines::nexmark::US_STATES`]; email, card and item name are random 32-bit ids
//! (Nexmark's random strings). A bid's channel is one of the four named
//! [`streamlab_engines::nexmark::CHANNELS`] with probability ½, else `4 + 0..10000` (Nexmark's
//! `channel-N`); its URL id is its channel id, as each Nexmark channel has one URL.
//!
//! **Determinism.** Each record draws from its own `Pcg64Mcg` whose state is a SplitMix64 mix
//! of the seed and the event number (Nexmark likewise seeds one `Random` per event id), so a
//! record depends on nothing but `(seed, n)`; powers of 10 come from the crate's libm-free
//! `fastmath`.

use rand::RngCore;
use rand_pcg::Pcg64Mcg;
use streamlab_engines::nexmark::{Record, CHANNELS, US_STATES};

use super::config::NexmarkConfig;
use crate::fastmath;

/// The first person id (Nexmark's `FIRST_PERSON_ID`).
pub const FIRST_PERSON_ID: u64 = 1_000;
/// The first auction id (Nexmark's `FIRST_AUCTION_ID`).
pub const FIRST_AUCTION_ID: u64 = 1_000;
/// The first category id (Nexmark's `FIRST_CATEGORY_ID`).
pub const FIRST_CATEGORY_ID: u32 = 10;
/// Categories (Nexmark's `NUM_CATEGORIES`).
pub const NUM_CATEGORIES: u32 = 5;
/// Persons not yet created that a seller or bidder may be (Nexmark's `PERSON_ID_LEAD`).
pub const PERSON_ID_LEAD: u64 = 10;
/// Auctions not yet created that a bid may be for (Nexmark's `AUCTION_ID_LEAD`).
pub const AUCTION_ID_LEAD: u64 = 10;
/// Hot persons and auctions are the first of each batch of this many (Nexmark's
/// `HOT_SELLER_RATIO`, `HOT_BIDDER_RATIO`, `HOT_AUCTION_RATIO` constants).
pub const HOT_BATCH: u64 = 100;
/// Nexmark's US cities.
pub const US_CITIES: usize = 10;
/// Nexmark's first names and last names: a name id is `first × LAST_NAMES + last`.
pub const FIRST_NAMES: u32 = 11;
/// See [`FIRST_NAMES`].
pub const LAST_NAMES: u32 = 9;
/// Channels past the named ones (Nexmark's `CHANNELS_NUMBER`).
pub const OTHER_CHANNELS: u64 = 10_000;

/// `ln 10 × 6`: `10^(6u) = exp(6u ln 10)`.
const SIX_LN_10: f64 = 6.0 * std::f64::consts::LN_10;

/// SplitMix64's finalizer: a bijective 64-bit mix.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator of event `n`'s own random stream from `seed`.
#[inline]
pub(crate) fn event_rng(seed: u64, n: u64) -> Pcg64Mcg {
    let hi = mix64(seed ^ 0x6E65_786D_6172_6B21);
    let lo = mix64(n.wrapping_add(hi).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo))
}

/// Uniform `0..n`.
#[inline]
fn below<R: RngCore>(rng: &mut R, n: u64) -> u64 {
    fastmath::below(rng.next_u64(), n)
}

/// True with probability `1 − 1/ratio` (Nexmark's `random.nextInt(ratio) > 0`).
#[inline]
fn hot<R: RngCore>(rng: &mut R, ratio: u32) -> bool {
    below(rng, u64::from(ratio)) > 0
}

/// Nexmark's `nextPrice`: `round(10^(6u) × 100)`, from 100 to 10^8.
#[inline]
fn price<R: RngCore>(rng: &mut R) -> u32 {
    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    (fastmath::exp(u * SIX_LN_10) * 100.0 + 0.5) as u32
}

/// Which of Nexmark's types event `n` is, and the ids it is built around.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordModel {
    seed: u64,
    cfg: NexmarkConfig,
    total: u64,
}

impl RecordModel {
    pub(crate) fn new(cfg: &NexmarkConfig, seed: u64) -> Self {
        let mut cfg = *cfg;
        cfg.person_proportion = cfg.person_proportion.max(1);
        cfg.auction_proportion = cfg.auction_proportion.max(1);
        cfg.bid_proportion = cfg.bid_proportion.max(1);
        Self {
            seed,
            total: cfg.total_proportion(),
            cfg,
        }
    }

    /// The last person created at or before event `n`, base 0 (Nexmark's `lastBase0PersonId`).
    #[inline]
    fn last_person(&self, n: u64) -> u64 {
        let persons = u64::from(self.cfg.person_proportion);
        (n / self.total) * persons + (n % self.total).min(persons - 1)
    }

    /// The last auction created at or before event `n`, base 0 (Nexmark's
    /// `lastBase0AuctionId`); `None` before the first auction.
    #[inline]
    fn last_auction(&self, n: u64) -> Option<u64> {
        let (persons, auctions) = (
            u64::from(self.cfg.person_proportion),
            u64::from(self.cfg.auction_proportion),
        );
        let (epoch, offset) = (n / self.total, n % self.total);
        if offset < persons {
            (epoch * auctions).checked_sub(1)
        } else {
            Some(epoch * auctions + (offset - persons).min(auctions - 1))
        }
    }

    /// A seller or bidder: uniform over the active persons and the lead (Nexmark's
    /// `nextBase0PersonId`), base 0.
    #[inline]
    fn some_person<R: RngCore>(&self, rng: &mut R, n: u64) -> u64 {
        let people = self.last_person(n) + 1;
        let active = people.min(u64::from(self.cfg.num_active_people.max(1)));
        people - active + below(rng, active + PERSON_ID_LEAD)
    }

    /// A bid's auction: uniform over the in-flight auctions and the lead (Nexmark's
    /// `nextBase0AuctionId`), base 0.
    #[inline]
    fn some_auction<R: RngCore>(&self, rng: &mut R, last: u64) -> u64 {
        let min = last.saturating_sub(u64::from(self.cfg.num_in_flight_auctions));
        min + below(rng, last - min + 1 + AUCTION_ID_LEAD)
    }

    /// The record of event number `n`.
    pub(crate) fn record(&self, n: u64) -> Record {
        let mut rng = event_rng(self.seed, n);
        let rng = &mut rng;
        let offset = n % self.total;
        let persons = u64::from(self.cfg.person_proportion);
        if offset < persons {
            return Record::Person {
                id: FIRST_PERSON_ID + self.last_person(n),
                name: below(rng, u64::from(FIRST_NAMES * LAST_NAMES)) as u32,
                email: rng.next_u32(),
                credit_card: rng.next_u32(),
                city: below(rng, US_CITIES as u64) as u32,
                state: below(rng, US_STATES.len() as u64) as u32,
            };
        }
        let last_auction = self.last_auction(n).expect("an auction or bid follows an auction");
        if offset < persons + u64::from(self.cfg.auction_proportion) {
            let seller = if hot(rng, self.cfg.hot_sellers_ratio) {
                self.last_person(n) / HOT_BATCH * HOT_BATCH
            } else {
                self.some_person(rng, n)
            };
            let category = FIRST_CATEGORY_ID + below(rng, u64::from(NUM_CATEGORIES)) as u32;
            let initial_bid = price(rng);
            let item_name = rng.next_u32();
            let reserve = initial_bid + price(rng);
            return Record::Auction {
                id: FIRST_AUCTION_ID + last_auction,
                item_name,
                initial_bid,
                reserve,
                seller: person_id(seller),
                category,
            };
        }
        let auction = if hot(rng, self.cfg.hot_auction_ratio) {
            last_auction / HOT_BATCH * HOT_BATCH
        } else {
            self.some_auction(rng, last_auction)
        };
        let bidder = if hot(rng, self.cfg.hot_bidders_ratio) {
            self.last_person(n) / HOT_BATCH * HOT_BATCH + 1
        } else {
            self.some_person(rng, n)
        };
        let price = price(rng);
        let channel = if hot(rng, 2) {
            below(rng, CHANNELS.len() as u64) as u32
        } else {
            (CHANNELS.len() as u64 + below(rng, OTHER_CHANNELS)) as u32
        };
        Record::Bid {
            auction: FIRST_AUCTION_ID + auction,
            bidder: person_id(bidder),
            price,
            channel,
            url: channel,
        }
    }
}

/// A base-0 person as the event's 32-bit person id (it wraps after 2^32 − 1000 persons, some
/// 2·10^11 events at Nexmark's proportions).
#[inline]
fn person_id(base0: u64) -> u32 {
    (FIRST_PERSON_ID + base0) as u32
}
