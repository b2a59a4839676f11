//! The Nexmark workload's configuration: the benchmark's own knobs (`[workload.nexmark]`,
//! [`NexmarkConfig`]) and the source around them (`[workload]` with `generator = "nexmark"`,
//! [`NexmarkWorkload`]: partitions, rate profile, backlog).
//!
//! Defaults are Nexmark's (`NexmarkConfiguration` of the Beam and Flink Nexmark suites), except
//! `prob_delayed_event`, which is 0 here so an unconfigured run is in order. Unknown keys are
//! rejected; [`NexmarkWorkload::validate`] names the offending key as a dotted path relative to
//! the workload table (e.g. `nexmark.bid_proportion`), as the clickstream's validation does.

use serde::{Deserialize, Serialize};
use streamlab_engines::time::Span;

use crate::config::ConfigError;
use crate::rate::RateProfile;

/// The largest out-of-order group: the generator keeps one group's arrivals in memory.
pub const MAX_OUT_OF_ORDER_GROUP_SIZE: u32 = 1 << 20;

/// The largest sum of the three proportions (one epoch of the type pattern).
pub const MAX_TOTAL_PROPORTION: u32 = 1 << 16;

/// Nexmark's own knobs: the `[workload.nexmark]` table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NexmarkConfig {
    /// Persons per epoch of `person + auction + bid` events (Nexmark: 1).
    pub person_proportion: u32,
    /// Auctions per epoch (Nexmark: 3).
    pub auction_proportion: u32,
    /// Bids per epoch (Nexmark: 46).
    pub bid_proportion: u32,
    /// The most recent persons new auctions and bids pick sellers and bidders from (Nexmark:
    /// 1000), plus Nexmark's lead of 10 persons not yet created.
    pub num_active_people: u32,
    /// The most recent auctions bids pick from (Nexmark: 100), plus Nexmark's lead of 10
    /// auctions not yet created.
    pub num_in_flight_auctions: u32,
    /// A bid goes to the hot auction with probability `1 − 1/hot_auction_ratio` (Nexmark: 2).
    pub hot_auction_ratio: u32,
    /// An auction's seller is the hot seller with probability `1 − 1/hot_sellers_ratio`
    /// (Nexmark: 4).
    pub hot_sellers_ratio: u32,
    /// A bid's bidder is the hot bidder with probability `1 − 1/hot_bidders_ratio` (Nexmark: 4).
    pub hot_bidders_ratio: u32,
    /// Events are emitted in a deterministic pseudo-random order within groups of this many
    /// (1 = in order; Nexmark: 1).
    pub out_of_order_group_size: u32,
    /// The probability that an event is delayed: its event time is `occasional_delay` before
    /// its arrival (here 0; Nexmark: 0.1).
    pub prob_delayed_event: f64,
    /// How far a delayed event's event time lies before its arrival (Nexmark: 3 s).
    pub occasional_delay: Span,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            num_active_people: 1_000,
            num_in_flight_auctions: 100,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            out_of_order_group_size: 1,
            prob_delayed_event: 0.0,
            occasional_delay: Span::from_ms(3_000),
        }
    }
}

fn check_at_least_one(key: &str, value: u32, what: &str) -> Result<(), ConfigError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("must be an integer >= 1 ({what})")))
    }
}

impl NexmarkConfig {
    /// Events per epoch: `person_proportion + auction_proportion + bid_proportion`.
    pub fn total_proportion(&self) -> u64 {
        u64::from(self.person_proportion) + u64::from(self.auction_proportion) + u64::from(self.bid_proportion)
    }

    /// Checks every value is in range; keys are relative to the `[workload.nexmark]` table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let proportion = "every epoch holds at least one person, one auction and one bid";
        check_at_least_one("person_proportion", self.person_proportion, proportion)?;
        check_at_least_one("auction_proportion", self.auction_proportion, proportion)?;
        check_at_least_one("bid_proportion", self.bid_proportion, proportion)?;
        if self.total_proportion() > u64::from(MAX_TOTAL_PROPORTION) {
            return Err(ConfigError::new(
                "bid_proportion",
                format!(
                    "person_proportion + auction_proportion + bid_proportion = {} exceeds {MAX_TOTAL_PROPORTION}",
                    self.total_proportion()
                ),
            ));
        }
        check_at_least_one("num_active_people", self.num_active_people, "persons to pick from")?;
        check_at_least_one(
            "num_in_flight_auctions",
            self.num_in_flight_auctions,
            "auctions to pick from",
        )?;
        let hot = "1 means never hot, N means hot with probability 1 - 1/N";
        check_at_least_one("hot_auction_ratio", self.hot_auction_ratio, hot)?;
        check_at_least_one("hot_sellers_ratio", self.hot_sellers_ratio, hot)?;
        check_at_least_one("hot_bidders_ratio", self.hot_bidders_ratio, hot)?;
        if !(1..=MAX_OUT_OF_ORDER_GROUP_SIZE).contains(&self.out_of_order_group_size) {
            return Err(ConfigError::new(
                "out_of_order_group_size",
                format!("must be an integer from 1 (in order) to {MAX_OUT_OF_ORDER_GROUP_SIZE}"),
            ));
        }
        let p = self.prob_delayed_event;
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(ConfigError::new(
                "prob_delayed_event",
                format!("{p} is out of range; must be a probability from 0 to 1"),
            ));
        }
        if p > 0.0 && self.occasional_delay.nanos() == 0 {
            return Err(ConfigError::new(
                "occasional_delay",
                "must be a duration > 0, such as \"3s\", when prob_delayed_event > 0",
            ));
        }
        Ok(())
    }
}

/// The `[workload]` table of a scenario with `generator = "nexmark"`: the source (partitions,
/// rate, backlog, as for the clickstream) and Nexmark's own knobs in `nexmark`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NexmarkWorkload {
    /// Source partitions; event `n` goes to partition `n % partitions` (round robin, as
    /// Nexmark's Kafka producer spreads events).
    pub partitions: u32,
    /// Arrival rate over time.
    pub rate: RateProfile,
    /// Every event is in the source when the run starts (see the clickstream's `backlog`).
    pub backlog: bool,
    /// Nexmark's own knobs (`[workload.nexmark]`).
    pub nexmark: NexmarkConfig,
}

impl Default for NexmarkWorkload {
    fn default() -> Self {
        Self {
            partitions: 4,
            rate: RateProfile::default(),
            backlog: false,
            nexmark: NexmarkConfig::default(),
        }
    }
}

impl NexmarkWorkload {
    /// The keys of the table (besides `generator`), for messages.
    pub const KEYS: [&'static str; 4] = ["partitions", "rate", "backlog", "nexmark"];

    /// Checks every value is in range; the error names the key, dotted and relative to the
    /// workload table (`partitions`, `rate.events_per_second`, `nexmark.bid_proportion`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions == 0 {
            return Err(ConfigError::new("partitions", "must be an integer >= 1"));
        }
        self.rate.validate().map_err(|e| e.under("rate"))?;
        self.nexmark.validate().map_err(|e| e.under("nexmark"))
    }
}
