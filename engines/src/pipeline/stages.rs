//! The stages a pipeline may add to its one-shape front (filter, lookup join, project or
//! aggregate): predicates and conversions on the record, stream–stream joins of two views of
//! the log, deduplication, top-N per window, and a second aggregation over the first's results.
//!
//! A pipeline is a small operator graph: one or two *views* of the source log (a view is a set
//! of event kinds with predicates, like Nexmark's `person`, `auction` and `bid` views over its
//! one event table), a *keyed stage* behind the exchange (an aggregate, a join of the two views,
//! a deduplication or a top-N) — or a chain of two, a join or a deduplication then an aggregate
//! behind a second exchange (`chain.rs`) — and at most one *global stage* over the
//! aggregation's window results (Nexmark q5's maximum per window). Each engine plans it its own way
//! (see `ARCHITECTURE.md`); the reference evaluator computes its exact result.

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::pipeline::{field_value, AggFunc, Field, PipelineError, WindowSpec};
use crate::time::Span;

/// A test on one field of a record, as a `where` entry: `{ field = "category", equals = 10 }`.
/// Exactly one test per entry; `modulo` goes with `equals` (`auction % 123 == 0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// The field tested.
    pub field: Field,
    /// `field == equals` (or `field % modulo == equals`).
    #[serde(default)]
    pub equals: Option<i64>,
    /// `field != not_equals`.
    #[serde(default)]
    pub not_equals: Option<i64>,
    /// `field` is one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<i64>>,
    /// `field >= at_least`.
    #[serde(default)]
    pub at_least: Option<i64>,
    /// `field < below`.
    #[serde(default)]
    pub below: Option<i64>,
    /// With `equals`: `field % modulo == equals`.
    #[serde(default)]
    pub modulo: Option<i64>,
}

impl Predicate {
    /// Whether `e` passes.
    #[inline]
    pub fn test(&self, e: &Event) -> bool {
        let v = field_value(e, 0, self.field);
        if let Some(m) = self.modulo {
            return Some(v.rem_euclid(m)) == self.equals;
        }
        if let Some(x) = self.equals {
            return v == x;
        }
        if let Some(x) = self.not_equals {
            return v != x;
        }
        if let Some(xs) = &self.one_of {
            return xs.contains(&v);
        }
        if let Some(x) = self.at_least {
            return v >= x;
        }
        if let Some(x) = self.below {
            return v < x;
        }
        true
    }

    fn validate(&self, key: &str) -> Result<(), PipelineError> {
        let tests = [
            self.equals.is_some(),
            self.not_equals.is_some(),
            self.one_of.is_some(),
            self.at_least.is_some(),
            self.below.is_some(),
        ];
        if self.modulo.is_some() && self.equals.is_none() {
            return Err(PipelineError::at(
                key,
                "`modulo` goes with `equals` (field % modulo == equals)".into(),
            ));
        }
        let n = tests.iter().filter(|t| **t).count();
        let allowed = "one of `equals`, `not_equals`, `in`, `at_least`, `below` (and `modulo` with `equals`)";
        if n != 1 {
            return Err(PipelineError::at(key, format!("needs exactly {allowed}; it has {n}")));
        }
        match self.modulo {
            Some(m) if m < 1 => Err(PipelineError::at(key, "`modulo` must be at least 1".into())),
            _ if self.field == Field::Campaign => Err(PipelineError::at(
                key,
                "`campaign` comes from the lookup join, after the predicates; test `ad` instead".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A conversion of one numeric field in place: `field = field * multiply / divide` (integer,
/// rounding toward zero), as Nexmark q1's dollars-to-euros `price * 908 / 1000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convert {
    /// The field converted.
    pub field: Field,
    /// Multiplier.
    pub multiply: i64,
    /// Divisor (at least 1).
    #[serde(default = "one")]
    pub divide: i64,
}

fn one() -> i64 {
    1
}

impl Convert {
    /// The fields a conversion may write.
    pub const WRITABLE: [Field; 6] = [
        Field::Price,
        Field::InitialBid,
        Field::Reserve,
        Field::PriceCents,
        Field::DwellMs,
        Field::CreditCard,
    ];

    /// Converts `e` in place.
    #[inline]
    pub fn apply(&self, e: &mut Event) {
        let v = field_value(e, 0, self.field);
        crate::nexmark::set_field(e, self.field, v.wrapping_mul(self.multiply) / self.divide);
    }
}

/// One input of a join: a view of the log and the field it joins on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinInput {
    /// The event kinds of this input.
    pub kinds: Vec<EventKind>,
    /// Predicates every record of this input passes.
    #[serde(default, rename = "where")]
    pub predicates: Vec<Predicate>,
    /// The join key.
    pub key: Field,
}

impl JoinInput {
    /// Whether `e` belongs to this input.
    #[inline]
    pub fn admits(&self, e: &Event) -> bool {
        self.kinds.contains(&e.kind) && self.predicates.iter().all(|p| p.test(e))
    }
}

/// Which time condition a join has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// Flink's `intervalJoin` / Spark's join with a time-range condition:
    /// `left.time + lower <= right.time <= left.time + upper`.
    Interval,
    /// Both sides in the same window (Flink's window join, Spark's join on the window column).
    Window,
    /// No time condition (Nexmark q3's regular join): the state of both sides grows forever.
    Unbounded,
}

/// Which rows without a match a join emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinType {
    /// Only matched pairs.
    #[default]
    Inner,
    /// Also every left row that found no match, once no match can come any more.
    LeftOuter,
    /// Also every right row that found no match, once no match can come any more.
    RightOuter,
}

/// A stream–stream join of two views of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// The time condition.
    pub kind: JoinKind,
    /// Inner or outer.
    #[serde(default, rename = "type")]
    pub join_type: JoinType,
    /// The left input.
    pub left: JoinInput,
    /// The right input.
    pub right: JoinInput,
    /// Interval join: the lower bound of `right.time - left.time` (may be negative).
    #[serde(default)]
    pub lower: Option<SignedSpan>,
    /// Interval join: the upper bound of `right.time - left.time`.
    #[serde(default)]
    pub upper: Option<SignedSpan>,
    /// Window join: the window both sides must share (tumbling or sliding).
    #[serde(default)]
    pub window: Option<WindowSpec>,
    /// In a chain (the join followed by an aggregation): which input's event time a joined
    /// row carries to the aggregation's windows — Spark's chosen event-time column, Flink
    /// SQL's time attribute of the chosen side (see `operators/graph/chain.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_time: Option<Side>,
}

/// A duration that may be negative ("-5s"), for an interval join's lower bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml_span::SpanText", into = "toml_span::SpanText")]
pub struct SignedSpan {
    /// Milliseconds (negative: before the left row).
    pub ms: i64,
}

mod toml_span {
    //! `SignedSpan` as written: a `Span` string or integer with an optional leading minus.
    use serde::{Deserialize, Serialize};

    /// The text or integer form.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum SpanText {
        /// An integer number of milliseconds.
        Ms(i64),
        /// A duration string.
        Text(String),
    }

    impl TryFrom<SpanText> for super::SignedSpan {
        type Error = String;
        fn try_from(t: SpanText) -> Result<Self, String> {
            match t {
                SpanText::Ms(ms) => Ok(Self { ms }),
                SpanText::Text(s) => {
                    let (neg, body) = match s.strip_prefix('-') {
                        Some(b) => (true, b),
                        None => (false, s.as_str()),
                    };
                    let span = crate::time::Span::parse(body)?;
                    let ms = span.whole_ms();
                    Ok(Self {
                        ms: if neg { -ms } else { ms },
                    })
                }
            }
        }
    }

    impl From<super::SignedSpan> for SpanText {
        fn from(s: super::SignedSpan) -> Self {
            SpanText::Ms(s.ms)
        }
    }
}

impl JoinSpec {
    /// The interval bounds `(lower, upper)` in ms, for an interval join.
    pub fn bounds(&self) -> (i64, i64) {
        (self.lower.map_or(0, |s| s.ms), self.upper.map_or(0, |s| s.ms))
    }

    /// The key of `e` on the side it belongs to (left first).
    #[inline]
    pub fn key_of(&self, e: &Event) -> Option<(Side, i64)> {
        if self.left.admits(e) {
            Some((Side::Left, field_value(e, 0, self.left.key)))
        } else if self.right.admits(e) {
            Some((Side::Right, field_value(e, 0, self.right.key)))
        } else {
            None
        }
    }

    fn validate(&self) -> Result<(), PipelineError> {
        for (name, input) in [("left", &self.left), ("right", &self.right)] {
            if input.kinds.is_empty() {
                return Err(PipelineError::at(
                    &format!("join.{name}.kinds"),
                    "name at least one event kind".into(),
                ));
            }
            for (i, p) in input.predicates.iter().enumerate() {
                p.validate(&format!("join.{name}.where[{i}]"))?;
                check_field_kinds(p.field, &input.kinds, &format!("join.{name}.where[{i}].field"))?;
            }
            check_field_kinds(input.key, &input.kinds, &format!("join.{name}.key"))?;
            if input.key == Field::Campaign {
                return Err(PipelineError::at(
                    &format!("join.{name}.key"),
                    "`campaign` comes from the lookup join, which a stream-stream join's inputs do not run; join on `ad`".into(),
                ));
            }
        }
        if let Some(k) = self.left.kinds.iter().find(|k| self.right.kinds.contains(k)) {
            return Err(PipelineError::at(
                "join.right.kinds",
                format!(
                    "`{}` is in both inputs: each record belongs to one input here, so a self-join of one kind is not supported; give the inputs different kinds",
                    k.name()
                ),
            ));
        }
        let timed = |k: &str| format!("needs `{k}` for a {} join", name_of(self.kind));
        match self.kind {
            JoinKind::Interval => {
                let (Some(lo), Some(hi)) = (self.lower, self.upper) else {
                    return Err(PipelineError::at("join.lower", timed("lower` and `upper")));
                };
                if lo.ms > hi.ms {
                    return Err(PipelineError::at(
                        "join.upper",
                        format!("must be at least `lower` ({} ms); it is {} ms", lo.ms, hi.ms),
                    ));
                }
                if self.window.is_some() {
                    return Err(PipelineError::at(
                        "join.window",
                        "an interval join has bounds, not a window".into(),
                    ));
                }
            }
            JoinKind::Window => match self.window {
                Some(WindowSpec::Session { .. }) => {
                    return Err(PipelineError::at(
                        "join.window.kind",
                        "a window join takes a tumbling or sliding window".into(),
                    ))
                }
                None => return Err(PipelineError::at("join.window", timed("window"))),
                Some(WindowSpec::Sliding { .. }) if self.join_type != JoinType::Inner => {
                    return Err(PipelineError::at(
                        "join.type",
                        "an outer window join takes a tumbling window: with a sliding one an unmatched row is owed once per window it has no match in, which this join does not track; use `inner` or a tumbling window".into(),
                    ))
                }
                Some(w) => check_window(&w, "join.window")?,
            },
            JoinKind::Unbounded => {
                if self.join_type != JoinType::Inner {
                    return Err(PipelineError::at(
                        "join.type",
                        "an unbounded join can only be `inner`: with no time bound an unmatched row could still find its match at any time, so neither engine ever emits it (Spark refuses an outer join without a watermark and a time condition)".into(),
                    ));
                }
            }
        }
        if self.kind != JoinKind::Interval && (self.lower.is_some() || self.upper.is_some()) {
            return Err(PipelineError::at(
                "join.lower",
                "only an interval join has `lower` and `upper`".into(),
            ));
        }
        Ok(())
    }
}

fn name_of(kind: JoinKind) -> &'static str {
    match kind {
        JoinKind::Interval => "interval",
        JoinKind::Window => "window",
        JoinKind::Unbounded => "unbounded",
    }
}

/// Which input of a join a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The left input.
    Left,
    /// The right input.
    Right,
}

/// Deduplication within a watermark: the first record of each key is kept; a later one whose
/// event time is within `within` of the kept record's is dropped (Spark's
/// `dropDuplicatesWithinWatermark`, Flink SQL's keep-first-row deduplication).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    /// The fields that make a record's identity (one to three).
    pub key: Vec<Field>,
    /// How far apart in event time two records of a key may be and still be duplicates; also
    /// how long a key's state is kept past its kept record, in event time.
    pub within: Span,
}

impl DedupSpec {
    /// The identity of `e` (its key fields, combined).
    #[inline]
    pub fn key_of(&self, e: &Event, campaign: u32) -> i64 {
        self.key.iter().fold(0i64, |h, &f| {
            h.wrapping_mul(0x100_0000_01b3)
                .wrapping_add(field_value(e, campaign, f))
        })
    }
}

/// Top-N per window: in each window, the records with the `n` largest values of `by` (ties at
/// the boundary all kept: Nexmark q7's "the bids with the highest price"), emitted once the
/// window closes. Flink's window Top-N; Spark runs `n = 1` as a `max` per window joined back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopNSpec {
    /// The window (tumbling or sliding).
    pub window: WindowSpec,
    /// How many top values are kept per window.
    pub n: u32,
    /// The field ranked, largest first.
    pub by: Field,
}

/// A second aggregation over the first one's window results, per window (Nexmark q5: the
/// maximum count per window). With `keep_matching`, the first stage's results whose value
/// equals the second's are emitted (q5's hot items); without, one result per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThenSpec {
    /// The function over the first stage's values in a window.
    pub function: AggFunc,
    /// Emit the first stage's results that attain the value (`max` and `min` only).
    #[serde(default)]
    pub keep_matching: bool,
}

/// Checks a tumbling or sliding window's sizes.
pub(crate) fn check_window(w: &WindowSpec, key: &str) -> Result<(), PipelineError> {
    match *w {
        WindowSpec::Tumbling { size } if size.whole_ms() < 1 => {
            Err(PipelineError::at(&format!("{key}.size"), "must be at least 1ms".into()))
        }
        WindowSpec::Sliding { size, slide } => {
            if slide.whole_ms() < 1 || size.whole_ms() < 1 {
                return Err(PipelineError::at(key, "size and slide must be at least 1ms".into()));
            }
            if size.whole_ms() % slide.whole_ms() != 0 {
                return Err(PipelineError::at(
                    &format!("{key}.slide"),
                    format!("size ({size}) must be a multiple of slide ({slide})"),
                ));
            }
            Ok(())
        }
        WindowSpec::Session { gap } if gap.whole_ms() < 1 => {
            Err(PipelineError::at(&format!("{key}.gap"), "must be at least 1ms".into()))
        }
        _ => Ok(()),
    }
}

/// Refuses a field none of `kinds` carries (a bid has no `seller`).
pub(crate) fn check_field_kinds(f: Field, kinds: &[EventKind], key: &str) -> Result<(), PipelineError> {
    match f.kinds() {
        Some(carried) if !kinds.iter().any(|k| carried.contains(k)) => Err(PipelineError::at(
            key,
            format!(
                "`{}` is a field of {}, and this input reads only {}",
                f.name(),
                names(carried),
                names(kinds)
            ),
        )),
        _ => Ok(()),
    }
}

fn names(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| format!("`{}`", k.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the stages of `p` (called from [`super::PipelineSpec::validate`]).
pub(crate) fn validate(p: &super::PipelineSpec) -> Result<(), PipelineError> {
    // A field the filtered kinds do not carry would read another field's slot.
    let carried = |f: Field, key: &str| match &p.filter_kinds {
        Some(kinds) => check_field_kinds(f, kinds, key),
        None => Ok(()),
    };
    let needs_join = |f: Field, key: &str| match f == Field::Campaign && !p.lookup_join {
        true => Err(PipelineError::at(key, "`campaign` needs `lookup_join = true`".into())),
        false => Ok(()),
    };
    for (i, pred) in p.predicates.iter().enumerate() {
        pred.validate(&format!("where[{i}]"))?;
        carried(pred.field, &format!("where[{i}].field"))?;
    }
    if let Some(c) = &p.convert {
        carried(c.field, "convert.field")?;
    }
    if let Some(d) = &p.dedup {
        for (i, &f) in d.key.iter().enumerate() {
            carried(f, &format!("dedup.key[{i}]"))?;
            needs_join(f, &format!("dedup.key[{i}]"))?;
        }
    }
    if let Some(t) = &p.top_n {
        carried(t.by, "top_n.by")?;
        needs_join(t.by, "top_n.by")?;
    }
    if let Some(a) = &p.aggregate {
        carried(a.key_by, "aggregate.key_by")?;
        if let Some(f) = a.field {
            carried(f, "aggregate.field")?;
        }
    }
    if let Some(c) = &p.convert {
        if !Convert::WRITABLE.contains(&c.field) {
            let allowed = Convert::WRITABLE
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>();
            return Err(PipelineError::at(
                "convert.field",
                format!(
                    "`{}` cannot be converted; allowed: {}",
                    c.field.name(),
                    allowed.join(", ")
                ),
            ));
        }
        if c.divide < 1 {
            return Err(PipelineError::at("convert.divide", "must be at least 1".into()));
        }
    }
    super::chain::validate(p)?;
    if let Some(j) = &p.join {
        if p.filter_kinds.is_some() || !p.predicates.is_empty() || p.lookup_join || p.convert.is_some() {
            return Err(PipelineError::at(
                "join",
                "a join reads its two inputs' own `kinds` and `where`; move `filter_kinds`, `where`, `convert` and `lookup_join` out of the pipeline table".into(),
            ));
        }
        j.validate()?;
    }
    if let Some(d) = &p.dedup {
        if d.key.is_empty() || d.key.len() > 3 {
            return Err(PipelineError::at("dedup.key", "name one to three fields".into()));
        }
        if d.within.whole_ms() < 1 {
            return Err(PipelineError::at("dedup.within", "must be at least 1ms".into()));
        }
    }
    if let Some(t) = &p.top_n {
        if t.n < 1 {
            return Err(PipelineError::at("top_n.n", "must be at least 1".into()));
        }
        if matches!(t.window, WindowSpec::Session { .. }) {
            return Err(PipelineError::at(
                "top_n.window.kind",
                "top-N takes a tumbling or sliding window".into(),
            ));
        }
        check_window(&t.window, "top_n.window")?;
    }
    if let Some(t) = &p.then {
        let Some(a) = &p.aggregate else {
            return Err(PipelineError::at(
                "then",
                "a second aggregation needs a first: add `aggregate`".into(),
            ));
        };
        if matches!(a.window, WindowSpec::Session { .. }) {
            return Err(PipelineError::at(
                "then",
                "session windows differ per key, so there is no window to aggregate over; use a tumbling or sliding window".into(),
            ));
        }
        if t.keep_matching && !matches!(t.function, AggFunc::Max | AggFunc::Min) {
            return Err(PipelineError::at(
                "then.keep_matching",
                "only `max` and `min` are attained by a result".into(),
            ));
        }
    }
    Ok(())
}
