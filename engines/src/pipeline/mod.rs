//! A pipeline, described once and run by either engine or by the reference evaluator.
//!
//! The shape is the one the clickstream studies need: an optional filter on the event kind, an
//! optional lookup join of the ad against the campaign table, then either a projection into the
//! sink (a stateless pipeline) or a key-by, a window and an aggregate (a stateful one).

mod chain;
mod stages;

use serde::{Deserialize, Serialize};

pub use chain::{read_side, write_field};
pub use stages::{
    Convert, DedupSpec, JoinInput, JoinKind, JoinSpec, JoinType, Predicate, Side, SignedSpan, ThenSpec, TopNSpec,
};

use crate::event::{Event, EventKind};
use crate::time::Span;

/// A field of the (joined) record that can be a grouping key or a projected column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Global sequence number.
    Seq,
    /// Event time, ms.
    EventTime,
    /// Source partition.
    Partition,
    /// User id.
    User,
    /// Session id.
    Session,
    /// Page id.
    Page,
    /// Ad id.
    Ad,
    /// Campaign id (needs the lookup join).
    Campaign,
    /// Event kind (as its index 0..7 when used as a number).
    Kind,
    /// Dwell time, ms.
    DwellMs,
    /// Price, cents.
    PriceCents,
    /// Nexmark: a person's or an auction's id.
    Id,
    /// Nexmark: a person's name (an id into the generator's name list).
    Name,
    /// Nexmark: a person's email (an id).
    Email,
    /// Nexmark: a person's credit card (an id).
    CreditCard,
    /// Nexmark: a person's city (an id into the generator's city list).
    City,
    /// Nexmark: a person's US state (an index into [`crate::nexmark::US_STATES`]).
    State,
    /// Nexmark: an auction's item name (an id).
    ItemName,
    /// Nexmark: an auction's opening bid.
    InitialBid,
    /// Nexmark: an auction's reserve price.
    Reserve,
    /// Nexmark: the person selling an auction.
    Seller,
    /// Nexmark: an auction's category.
    Category,
    /// Nexmark: the auction a bid is for.
    Auction,
    /// Nexmark: the person bidding.
    Bidder,
    /// Nexmark: a bid's price.
    Price,
    /// Nexmark: the channel a bid came through (an index into [`crate::nexmark::CHANNELS`]).
    Channel,
    /// Nexmark: a bid's URL (an id).
    Url,
}

impl Field {
    /// Every field, for error messages.
    pub const ALL: [Field; 27] = [
        Self::Seq,
        Self::EventTime,
        Self::Partition,
        Self::User,
        Self::Session,
        Self::Page,
        Self::Ad,
        Self::Campaign,
        Self::Kind,
        Self::DwellMs,
        Self::PriceCents,
        Self::Id,
        Self::Name,
        Self::Email,
        Self::CreditCard,
        Self::City,
        Self::State,
        Self::ItemName,
        Self::InitialBid,
        Self::Reserve,
        Self::Seller,
        Self::Category,
        Self::Auction,
        Self::Bidder,
        Self::Price,
        Self::Channel,
        Self::Url,
    ];

    /// The name used in scenario files and sink headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seq => "seq",
            Self::EventTime => "event_time",
            Self::Partition => "partition",
            Self::User => "user",
            Self::Session => "session",
            Self::Page => "page",
            Self::Ad => "ad",
            Self::Campaign => "campaign",
            Self::Kind => "kind",
            Self::DwellMs => "dwell_ms",
            Self::PriceCents => "price_cents",
            Self::Id => "id",
            Self::Name => "name",
            Self::Email => "email",
            Self::CreditCard => "credit_card",
            Self::City => "city",
            Self::State => "state",
            Self::ItemName => "item_name",
            Self::InitialBid => "initial_bid",
            Self::Reserve => "reserve",
            Self::Seller => "seller",
            Self::Category => "category",
            Self::Auction => "auction",
            Self::Bidder => "bidder",
            Self::Price => "price",
            Self::Channel => "channel",
            Self::Url => "url",
        }
    }

    /// The event kinds that carry this field (`None`: every kind, as the stream's own columns
    /// `seq`, `event_time`, `partition`, `kind`, and the join's `campaign`, are).
    pub fn kinds(self) -> Option<&'static [EventKind]> {
        use EventKind::*;
        match self {
            Self::Seq | Self::EventTime | Self::Partition | Self::Kind | Self::Campaign => None,
            Self::User | Self::Session | Self::Page | Self::Ad | Self::DwellMs | Self::PriceCents => {
                Some(&EventKind::CLICKSTREAM)
            }
            Self::Id => Some(&[Person, Auction]),
            Self::Name | Self::Email | Self::CreditCard | Self::City | Self::State => Some(&[Person]),
            Self::ItemName | Self::InitialBid | Self::Reserve | Self::Seller | Self::Category => Some(&[Auction]),
            Self::Auction | Self::Bidder | Self::Price | Self::Channel | Self::Url => Some(&[Bid]),
        }
    }
}

/// Which windows a keyed record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpec {
    /// Fixed-size, non-overlapping windows `[k·size, (k+1)·size)`.
    Tumbling {
        /// Window length.
        size: Span,
    },
    /// Windows of length `size` starting every `slide`; a record is in `size / slide` of them.
    Sliding {
        /// Window length.
        size: Span,
        /// Distance between window starts.
        slide: Span,
    },
    /// Per key, a window that stays open while records come closer than `gap` to each other.
    Session {
        /// Inactivity gap that closes a session.
        gap: Span,
    },
}

/// The aggregate function of a windowed aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFunc {
    /// Number of records.
    Count,
    /// Sum of a field.
    Sum,
    /// Minimum of a field.
    Min,
    /// Maximum of a field.
    Max,
    /// Arithmetic mean of a field.
    Avg,
    /// Number of distinct values of a field (exact).
    DistinctCount,
}

/// Key-by, window and aggregate: the stateful part of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// The grouping key.
    pub key_by: Field,
    /// The window.
    pub window: WindowSpec,
    /// The aggregate function.
    pub function: AggFunc,
    /// The aggregated field; ignored by `count`, required by the others.
    #[serde(default)]
    pub field: Option<Field>,
}

/// A pipeline: filter → lookup join → (project into the sink | key-by, window, aggregate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Keep only events of these kinds (`None`: keep all).
    #[serde(default)]
    pub filter_kinds: Option<Vec<EventKind>>,
    /// Join each event's ad against the campaign table (inner join).
    #[serde(default)]
    pub lookup_join: bool,
    /// Columns written to the sink by a stateless pipeline.
    #[serde(default = "default_projection")]
    pub project: Vec<Field>,
    /// The stateful part; `None` makes a stateless pipeline.
    #[serde(default)]
    pub aggregate: Option<Aggregation>,
    /// Predicates every record passes (after `filter_kinds`, before the lookup join).
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub predicates: Vec<Predicate>,
    /// A field converted in place (after the predicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<Convert>,
    /// A stream–stream join of two views of the log, instead of the one front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinSpec>,
    /// Deduplication within a watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<DedupSpec>,
    /// Top-N per window over the records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<TopNSpec>,
    /// A second aggregation over the aggregate's window results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<ThenSpec>,
}

fn default_projection() -> Vec<Field> {
    vec![Field::Seq, Field::EventTime, Field::User, Field::Page, Field::Kind]
}

impl Default for PipelineSpec {
    fn default() -> Self {
        Self {
            filter_kinds: None,
            lookup_join: false,
            project: default_projection(),
            aggregate: None,
            predicates: Vec::new(),
            convert: None,
            join: None,
            dedup: None,
            top_n: None,
            then: None,
        }
    }
}

/// A pipeline that cannot run, with the offending key (relative to the pipeline table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pipeline key `{key}`: {message}")]
pub struct PipelineError {
    /// Dotted key path inside the pipeline table.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl PipelineError {
    /// An error at `key` (relative to the pipeline table).
    pub fn at(key: &str, message: String) -> Self {
        Self {
            key: key.into(),
            message,
        }
    }
}

/// What a pipeline's outputs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputShape {
    /// Records with the projected columns (a stateless pipeline, a deduplication).
    Rows,
    /// Window results (an aggregation, a second one over it, or one chained behind a join or
    /// a deduplication).
    Windows,
    /// Records made of input records (a join's pairs and unmatched rows, a top-N's records).
    Records,
}

impl PipelineSpec {
    /// What the pipeline's outputs are.
    pub fn output_shape(&self) -> OutputShape {
        if self.aggregate.is_some() {
            OutputShape::Windows
        } else if self.join.is_some() || self.top_n.is_some() {
            OutputShape::Records
        } else {
            OutputShape::Rows
        }
    }

    /// True when the pipeline keeps state (has a keyed stage: an aggregate, a join, a
    /// deduplication or a top-N).
    pub fn is_stateful(&self) -> bool {
        self.aggregate.is_some() || self.has_graph_stage()
    }

    /// True when the pipeline chains two keyed stages: a join or a deduplication, then an
    /// aggregation behind a second keyed exchange (see `pipeline/chain.rs`).
    pub fn is_chain(&self) -> bool {
        self.aggregate.is_some() && (self.join.is_some() || self.dedup.is_some())
    }

    /// True when the pipeline has a stage beyond the one-shape front and aggregate: a join, a
    /// deduplication, a top-N or a second aggregation.
    pub fn has_graph_stage(&self) -> bool {
        self.join.is_some() || self.dedup.is_some() || self.top_n.is_some() || self.then.is_some()
    }

    /// Checks the pipeline is well formed.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let err = |key: &str, message: String| {
            Err(PipelineError {
                key: key.into(),
                message,
            })
        };
        if matches!(&self.filter_kinds, Some(k) if k.is_empty()) {
            return err(
                "filter_kinds",
                "an empty list would drop every event; omit the key to keep all".into(),
            );
        }
        let needs_join = |f: Field| f == Field::Campaign && !self.lookup_join;
        if let Some(f) = self.project.iter().copied().find(|&f| needs_join(f)) {
            return err("project", format!("`{}` needs `lookup_join = true`", f.name()));
        }
        if self.project.is_empty() && self.aggregate.is_none() {
            return err(
                "project",
                "a stateless pipeline must project at least one column".into(),
            );
        }
        stages::validate(self)?;
        if let Some(a) = &self.aggregate {
            if needs_join(a.key_by) {
                return err("aggregate.key_by", "`campaign` needs `lookup_join = true`".into());
            }
            match (a.function, a.field) {
                (AggFunc::Count, _) => {}
                (_, None) => {
                    return err(
                        "aggregate.field",
                        "sum, min, max, avg and distinct_count need a field to aggregate".into(),
                    )
                }
                (_, Some(f)) if needs_join(f) => {
                    return err("aggregate.field", "`campaign` needs `lookup_join = true`".into())
                }
                _ => {}
            }
            match a.window {
                WindowSpec::Tumbling { size } if size.whole_ms() < 1 => {
                    return err("aggregate.window.size", "must be at least 1ms".into())
                }
                WindowSpec::Sliding { size, slide } => {
                    if slide.whole_ms() < 1 || size.whole_ms() < 1 {
                        return err("aggregate.window", "size and slide must be at least 1ms".into());
                    }
                    if size.whole_ms() % slide.whole_ms() != 0 {
                        return err(
                            "aggregate.window.slide",
                            format!("size ({size}) must be a multiple of slide ({slide})"),
                        );
                    }
                }
                WindowSpec::Session { gap } if gap.whole_ms() < 1 => {
                    return err("aggregate.window.gap", "must be at least 1ms".into())
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Reads a field of an event (the campaign comes from the join, passed separately).
#[inline]
pub fn field_value(e: &Event, campaign: u32, f: Field) -> i64 {
    match f {
        Field::Seq => e.seq as i64,
        Field::EventTime => e.event_time,
        Field::Partition => e.partition as i64,
        Field::User => e.user as i64,
        Field::Session => e.session as i64,
        Field::Page => e.page as i64,
        Field::Ad => e.ad as i64,
        Field::Campaign => campaign as i64,
        Field::Kind => e.kind.index() as i64,
        Field::DwellMs => e.dwell_ms as i64,
        Field::PriceCents => e.price_cents as i64,
        nexmark => crate::nexmark::field_value(e, nexmark),
    }
}
