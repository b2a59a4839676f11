//! The Nexmark workload: the online-auction benchmark's persons, auctions and bids, generated
//! from a seed as the Beam and Flink Nexmark suites define them, and laid into the one
//! [`streamlab_engines::event::Event`] type (see [`streamlab_engines::nexmark`] for which slot
//! holds which field).
//!
//! It is the clickstream's sibling: the same open-loop arrival schedule ([`crate::RateProfile`]),
//! the same resumable `fill_until` shape, the same bit-for-bit reproducibility for a seed. What
//! differs is the model, which is Nexmark's: the type and ids of an event are arithmetic on
//! its event number, choices draw from a stream of the event's own, and time follows the
//! event number.
//!
//! Modules, one idea each:
//! - [`config`]: the `[workload]` table with `generator = "nexmark"` and its `[workload.nexmark]`
//!   knobs, defaults and validation;
//! - `records`: the person, auction and bid of an event number (Nexmark's model generators);
//! - [`generator`]: arrivals, event times, out-of-order groups, delays and partitions.

pub mod config;
pub mod generator;
mod records;

pub use config::{NexmarkConfig, NexmarkWorkload, MAX_OUT_OF_ORDER_GROUP_SIZE, MAX_TOTAL_PROPORTION};
pub use generator::{generate_nexmark, NexmarkGenerator};
pub use records::{
    AUCTION_ID_LEAD, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_NAMES, FIRST_PERSON_ID, HOT_BATCH, LAST_NAMES,
    NUM_CATEGORIES, OTHER_CHANNELS, PERSON_ID_LEAD, US_CITIES,
};
