//! A pipeline, described once and run by either engine or by the reference evaluator.
//!
//! The shape is the one the clickstream studies need: an optional filter on the event kind, an
//! optional lookup join of the ad against the campaign table, then either a projection into the
//! sink (a stateless pipeline) or a key-by, a window and an aggregate (a stateful one).

use serde::{Deserialize, Serialize};

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
    /// Event kind (as its index 0..4 when used as a number).
    Kind,
    /// Dwell time, ms.
    DwellMs,
    /// Price, cents.
    PriceCents,
}

impl Field {
    /// Every field, for error messages.
    pub const ALL: [Field; 11] = [
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

impl PipelineSpec {
    /// True when the pipeline keeps state (has a windowed aggregation).
    pub fn is_stateful(&self) -> bool {
        self.aggregate.is_some()
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
    }
}
