//! Seeded workloads for the streamlab workbench: what the engines are fed.
//!
//! Both execution models must see the *same* input for a comparison to mean anything, so every
//! workload here is a pure function of its configuration and a seed: the clickstream generator
//! ([`generate`], or incrementally with bounded memory [`ClickstreamGenerator`]) produces an
//! open-loop arrival schedule that follows a [`RateProfile`], a session model of users browsing
//! pages and clicking ads, and controlled out-of-orderness ([`Disorder`]); the Nexmark generator
//! ([`NexmarkGenerator`]) produces the auction benchmark's persons, auctions and bids on the same
//! schedule. Runs can also be recorded to and replayed from trace files ([`trace`]).
//!
//! Modules, one idea each:
//! - [`config`]: the `[workload]` table of a scenario and its validation;
//! - [`rate`]: the rate profiles and the arrival schedule they induce;
//! - [`disorder`]: how far event time lags arrival;
//! - [`generator`]: the clickstream model itself;
//! - [`nexmark`]: the Nexmark benchmark's persons, auctions and bids (`generator = "nexmark"`);
//! - [`trace`]: CSV / JSON Lines import and export;
//! - [`feeder`]: the loopback feeder that serves a workload to an external engine over TCP,
//!   and the receiver that stamps its outputs.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod disorder;
mod fastmath;
pub mod feeder;
pub mod generator;
pub mod nexmark;
mod pool;
pub mod rate;
pub mod trace;

pub use config::{ClickstreamConfig, ConfigError, KindMix};
pub use disorder::{DelayDistribution, Disorder};
pub use generator::{campaign_table, generate, partition_of, session_pool_size, source_log, ClickstreamGenerator};
pub use nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkWorkload};
pub use rate::{Arrivals, RateProfile};
pub use trace::{read_trace, write_trace, TraceError};
