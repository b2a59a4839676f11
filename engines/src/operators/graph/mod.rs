//! The keyed stages beyond the windowed aggregation: the stream–stream join ([`join`]),
//! deduplication ([`dedup`]) and top-N per window ([`top_n`]), behind one [`KeyedStage`] that
//! both engines hold where they would hold a window operator; and the global stage over an
//! aggregation's window results ([`then`], Nexmark q5's maximum per window); and the hand-off
//! from a join or a deduplication to an aggregation chained behind it ([`chain`]).
//!
//! Like every operator they take records and watermarks and push into an output vector; which
//! watermark they are told, and when, is the engine's part (Flink: as it arrives; Spark: the
//! batch's, the previous batch's maximum minus the delay), and that is where the engines'
//! emission times differ.
//!
//! One rule of time is shared by all of them, [`closed`]: with the engine's watermark
//! convention, whether no record at or before an event time can still arrive.

pub mod chain;
mod codec;
pub mod dedup;
pub mod join;
mod keyed_lists;
pub mod then;
pub mod top_n;

pub use chain::ChainLink;
pub use dedup::Deduplicate;
pub use join::{JoinRules, StreamJoin};
pub use then::ThenStage;
pub use top_n::WindowTopN;

use crate::event::Event;
use crate::operators::window::{StateBackendKind, TimeSemantics};
use crate::operators::{Output, Row};
use crate::pipeline::{field_value, DedupSpec, Field, JoinSpec, PipelineSpec};
use crate::time::{EventTime, Nanos};

/// Whether the watermark `watermark` has closed event time `t`: no record with a time at or
/// before `t` is still to come. Spark's watermark `max − delay` closes `t` once `t < watermark`
/// (`fire_lag` 0: a window `[s, e)` is final when `e <= watermark`); Flink's `max − bound − 1`
/// once `t <= watermark` (`fire_lag` 1: a window fires when `watermark >= e − 1`). A record
/// whose time is closed on arrival is late.
#[inline]
pub fn closed(watermark: EventTime, t: EventTime, fire_lag: i64) -> bool {
    watermark != EventTime::MIN && watermark >= t + 1 - fire_lag
}

/// How a keyed exchange routes a row to its subtask or shuffle partition: by the key the
/// pipeline's keyed stage groups on.
#[derive(Clone, Debug)]
pub enum ExchangeKey {
    /// An aggregation's `key_by` field.
    Field(Field),
    /// A join: each input's own key field (a row of neither input is not routed).
    Join(Box<JoinSpec>),
    /// A deduplication's key fields.
    Dedup(Box<DedupSpec>),
    /// One group for everything: top-N ranks all records of a window in one place, as Flink's
    /// window Top-N without a partition key does.
    Single,
}

impl ExchangeKey {
    /// The exchange of `pipeline`'s (first) keyed stage (`None`: a stateless pipeline). In a
    /// chain the join's or deduplication's; the aggregation's is [`ChainLink::exchange`].
    pub fn for_pipeline(pipeline: &PipelineSpec) -> Option<Self> {
        if let Some(j) = &pipeline.join {
            return Some(Self::Join(Box::new(j.clone())));
        }
        if let Some(d) = &pipeline.dedup {
            return Some(Self::Dedup(Box::new(d.clone())));
        }
        if let Some(a) = &pipeline.aggregate {
            return Some(Self::Field(a.key_by));
        }
        pipeline.top_n.map(|_| Self::Single)
    }

    /// The key `row` is routed by.
    #[inline]
    pub fn of(&self, row: &Row) -> i64 {
        self.of_parts(&row.event, row.campaign)
    }

    /// The key of the row that `event` joined to `campaign` makes (before it is made).
    #[inline]
    pub fn of_parts(&self, event: &Event, campaign: u32) -> i64 {
        match self {
            Self::Field(f) => field_value(event, campaign, *f),
            Self::Join(j) => j.key_of(event).map_or(0, |(_, k)| k),
            Self::Dedup(d) => d.key_of(event, campaign),
            Self::Single => 0,
        }
    }
}

/// A keyed stage other than the windowed aggregation, as an engine holds it.
#[derive(Debug)]
pub enum KeyedStage {
    /// A stream–stream join.
    Join(Box<StreamJoin>),
    /// A deduplication.
    Dedup(Deduplicate),
    /// Top-N per window.
    TopN(WindowTopN),
}

/// Which engine's rules a keyed stage follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageRules {
    /// Spark Structured Streaming (the micro-batch engine).
    Spark,
    /// Flink (the per-record engine).
    Flink,
}

impl KeyedStage {
    /// The keyed stage of `pipeline` under `rules`, if it has one (not an aggregate), with its
    /// keyed state (a join's rows, a deduplication's kept times, top-N's candidates) on
    /// `backend`. Fails when an LSM store cannot be opened.
    pub fn for_pipeline(
        pipeline: &PipelineSpec,
        rules: StageRules,
        backend: StateBackendKind,
    ) -> crate::state::Result<Option<Self>> {
        let semantics = match rules {
            StageRules::Spark => TimeSemantics::SPARK,
            StageRules::Flink => TimeSemantics::flink(0),
        };
        let lag = semantics.fire_lag;
        if let Some(j) = &pipeline.join {
            let rules = JoinRules {
                window_results_on_close: rules == StageRules::Flink,
                fire_lag: lag,
            };
            let join = StreamJoin::new(j, rules).with_backend(backend)?;
            return Ok(Some(Self::Join(Box::new(join))));
        }
        if let Some(d) = &pipeline.dedup {
            return Ok(Some(Self::Dedup(Deduplicate::new(d, lag).with_backend(backend)?)));
        }
        match pipeline.top_n {
            Some(t) => Ok(Some(Self::TopN(WindowTopN::new(t, lag).with_backend(backend)?))),
            None => Ok(None),
        }
    }

    /// Takes one row at `now`.
    #[inline]
    pub fn on_row(&mut self, row: Row, now: Nanos, out: &mut Vec<Output>) {
        match self {
            Self::Join(j) => j.on_row(row, now, out),
            Self::Dedup(d) => d.on_row(row, now, out),
            Self::TopN(t) => t.on_row(row),
        }
    }

    /// The watermark advanced at `now`.
    pub fn on_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut Vec<Output>) {
        match self {
            Self::Join(j) => j.on_watermark(watermark, now, out),
            Self::Dedup(d) => d.on_watermark(watermark),
            Self::TopN(t) => t.on_watermark(watermark, now, out),
        }
    }

    /// Records (or keys) in state.
    pub fn state_rows(&self) -> usize {
        match self {
            Self::Join(j) => j.state_rows(),
            Self::Dedup(d) => d.state_rows(),
            Self::TopN(t) => t.state_rows(),
        }
    }

    /// The stage's state as checkpoint bytes (the body of a framed state file, see
    /// `codec.rs`): what [`KeyedStage::restore`] reads back.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Join(j) => j.encode(&mut out),
            Self::Dedup(d) => d.encode(&mut out),
            Self::TopN(t) => t.encode(&mut out),
        }
        out
    }

    /// Replaces the stage's state with what [`KeyedStage::encode`] wrote. `None` (state
    /// unchanged) when `bytes` are not the state of a stage of this kind, or are damaged.
    pub fn restore(&mut self, bytes: &[u8]) -> Option<()> {
        match self {
            Self::Join(j) => j.decode(bytes),
            Self::Dedup(d) => d.decode(bytes),
            Self::TopN(t) => t.decode(bytes),
        }
    }

    /// Records dropped as late so far.
    pub fn late_dropped(&self) -> u64 {
        match self {
            Self::Join(j) => j.late_dropped,
            Self::Dedup(d) => d.late_dropped,
            Self::TopN(t) => t.late_dropped,
        }
    }
}
