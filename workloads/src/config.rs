//! The clickstream workload's configuration (the `[workload]` table of a scenario file).
//!
//! Every field has a default so a scenario only states what it changes; unknown keys are
//! rejected so a typo never silently falls back to a default. [`ClickstreamConfig::validate`]
//! checks ranges and names the offending key as a dotted path relative to the workload table
//! (e.g. `rate.events_per_second`), so the scenario loader can point at the exact line.

use serde::{Deserialize, Serialize};
use streamlab_engines::event::EventKind;
use streamlab_engines::time::Span;

use crate::disorder::Disorder;
use crate::rate::RateProfile;

/// A configuration value that is out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ConfigError {
    /// Dotted path of the offending key, relative to the workload table (e.g. `mix.view`).
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// An error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same error with its key nested under `prefix` (`prefix.key`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.key = format!("{prefix}.{}", self.key);
        self
    }
}

/// Checks that `value` is finite and `>= min`.
pub(crate) fn check_at_least(key: &str, value: f64, min: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= min {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("{value} is out of range; must be a finite number >= {min}"),
        ))
    }
}

/// Checks that `value` is finite and `> 0`.
pub(crate) fn check_positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("{value} is out of range; must be a finite number > 0"),
        ))
    }
}

/// Checks that a span is not zero.
pub(crate) fn check_nonzero_span(key: &str, span: Span) -> Result<(), ConfigError> {
    if span.nanos() > 0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be a duration > 0, such as \"1s\"; got {span}"),
        ))
    }
}

fn check_nonzero(key: &str, value: u32) -> Result<(), ConfigError> {
    if value > 0 {
        Ok(())
    } else {
        Err(ConfigError::new(key, "must be an integer >= 1"))
    }
}

/// Relative weights of the event kinds (they need not sum to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindMix {
    /// Weight of page views.
    pub view: f64,
    /// Weight of ad clicks.
    pub click: f64,
    /// Weight of add-to-cart events.
    pub add_to_cart: f64,
    /// Weight of purchases.
    pub purchase: f64,
}

impl Default for KindMix {
    fn default() -> Self {
        Self {
            view: 0.70,
            click: 0.20,
            add_to_cart: 0.07,
            purchase: 0.03,
        }
    }
}

impl KindMix {
    /// The weight of `kind` (0 for a Nexmark type).
    pub fn weight(&self, kind: EventKind) -> f64 {
        match kind {
            EventKind::View => self.view,
            EventKind::Click => self.click,
            EventKind::AddToCart => self.add_to_cart,
            EventKind::Purchase => self.purchase,
            // Nexmark's types are the Nexmark generator's, never in a clickstream mix.
            EventKind::Person | EventKind::Auction | EventKind::Bid => 0.0,
        }
    }

    /// The share of `kind` among all events (weight / sum of weights).
    pub fn share(&self, kind: EventKind) -> f64 {
        self.weight(kind) / EventKind::CLICKSTREAM.iter().map(|k| self.weight(*k)).sum::<f64>()
    }

    /// Checks every weight is finite and `>= 0` and at least one is positive. Keys are
    /// relative to the mix table (`view`, ...).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for kind in EventKind::CLICKSTREAM {
            check_at_least(kind.name(), self.weight(kind), 0.0)?;
        }
        if EventKind::CLICKSTREAM.iter().all(|k| self.weight(*k) == 0.0) {
            return Err(ConfigError::new(
                "view",
                "all kind weights are 0; at least one of view, click, add_to_cart, purchase must be > 0",
            ));
        }
        Ok(())
    }
}

/// The clickstream workload: users in sessions browsing pages that show ads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickstreamConfig {
    /// Source partitions (Kafka-style); a user always lands in the same one.
    pub partitions: u32,
    /// Distinct users.
    pub users: u32,
    /// Distinct pages; popularity is Zipf-distributed (page 0 the most popular).
    pub pages: u32,
    /// Zipf exponent of page popularity (0 = uniform; larger = more skewed).
    pub page_zipf_exponent: f64,
    /// Ad campaigns (the dimension table's distinct values).
    pub campaigns: u32,
    /// Ads per campaign; ads are `0..campaigns * ads_per_campaign`.
    pub ads_per_campaign: u32,
    /// Mean events per session (geometric, at least 1).
    pub mean_session_events: f64,
    /// Mean think time between two events of a session (exponential).
    pub mean_think_time: Span,
    /// Relative weights of the event kinds.
    pub mix: KindMix,
    /// Arrival rate over time.
    pub rate: RateProfile,
    /// Out-of-orderness of event time relative to arrival.
    pub disorder: Disorder,
    /// Every event is in the source when the run starts (a topic's backlog): the rate profile
    /// still spreads event times, but nothing waits for its arrival, so each engine runs as
    /// fast as it can — a throughput measurement (live clock; latency then counts from the
    /// start of the run).
    pub backlog: bool,
}

impl Default for ClickstreamConfig {
    fn default() -> Self {
        Self {
            partitions: 4,
            users: 100_000,
            pages: 1_000,
            page_zipf_exponent: 1.1,
            campaigns: 100,
            ads_per_campaign: 10,
            mean_session_events: 20.0,
            mean_think_time: Span::from_ms(2_000),
            mix: KindMix::default(),
            rate: RateProfile::default(),
            disorder: Disorder::default(),
            backlog: false,
        }
    }
}

impl ClickstreamConfig {
    /// Total number of ads (`campaigns * ads_per_campaign`), saturating.
    pub fn ads(&self) -> u64 {
        u64::from(self.campaigns) * u64::from(self.ads_per_campaign)
    }

    /// Checks every value is in range; the error names the key (dotted, relative to the
    /// workload table) and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_nonzero("partitions", self.partitions)?;
        check_nonzero("users", self.users)?;
        check_nonzero("pages", self.pages)?;
        check_at_least("page_zipf_exponent", self.page_zipf_exponent, 0.0)?;
        check_nonzero("campaigns", self.campaigns)?;
        check_nonzero("ads_per_campaign", self.ads_per_campaign)?;
        if self.ads() > u64::from(u32::MAX) {
            return Err(ConfigError::new(
                "ads_per_campaign",
                format!(
                    "campaigns * ads_per_campaign = {} exceeds {}; ad ids must fit in 32 bits",
                    self.ads(),
                    u32::MAX
                ),
            ));
        }
        check_at_least("mean_session_events", self.mean_session_events, 1.0)?;
        check_nonzero_span("mean_think_time", self.mean_think_time)?;
        self.mix.validate().map_err(|e| e.under("mix"))?;
        self.rate.validate().map_err(|e| e.under("rate"))?;
        self.disorder.validate().map_err(|e| e.under("disorder"))?;
        Ok(())
    }
}
