//! The contract between streamlab's driver and every generated job (PySpark script, PyFlink
//! job): the same command-line arguments, the same campaign-table file and the same output row,
//! so one driver runs them all and one parser reads what they send back.
//!
//! * **Arguments** ([`ScriptArgs`]): where the feeder and receiver listen, the run's token (on
//!   the command line only, never in a file), the source partitions, the campaign table's file,
//!   the progress file, the checkpoint directory, and optionally a cluster address and the
//!   helper jar.
//! * **Source rows**: the feeder's trace rows, in the clickstream's columns; a Nexmark person,
//!   auction or bid rides in the same columns, one field per slot ([`feeder_column`]), so a job
//!   reads either workload with one source table.
//! * **Output rows** ([`sink_columns`]): one CSV line per output. Window results: `key,
//!   window_start_ms, window_end_ms, count, value, is_update`; rows of a stateless pipeline:
//!   `seq` (the event's position in the stream, so streamlab can match the row to its event and
//!   to the reference evaluator's row) and the other projected columns. Both end with
//!   `origin_arrival_ns`, the scheduled arrival latency is measured from (the event's, or a
//!   window's last contributing event's). A join's results: `shape` (`pair`, `left_only`,
//!   `right_only`), `left_seq` and `right_seq` (`-1` for an absent side), `window_start_ms` (a
//!   window join's pair; 0 otherwise), then `origin_arrival_ns` (the later-arriving record's). A
//!   top-N's records: `ranked`, the record's `seq`, `-1`, the window's start, its arrival.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::nexmark;
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{
    field_value, AggFunc, Convert, Field, JoinInput, JoinKind, JoinSpec, JoinType, OutputShape, PipelineSpec,
    Predicate, WindowSpec,
};
use streamlab_engines::time::Span;

/// What of `pipeline` the generated Spark and Flink jobs cannot run yet: the pipeline key and
/// why (`None`: they run all of it). Both jobs run the one-shape front (`filter_kinds`,
/// `where`, `convert`, the lookup join) and a projection or one windowed aggregate, over the
/// clickstream's and Nexmark's records alike (a Nexmark field is read from the slot column that
/// carries it, [`feeder_column`]), a stream-stream join of two views, a top-N per window and a
/// second aggregation (each engine refuses what it cannot run of these: Spark a top-N and, not
/// yet translated, a second aggregation); deduplication is not translated yet.
pub fn untranslated(pipeline: &PipelineSpec) -> Option<(&'static str, String)> {
    let not_yet = |key: &'static str, what: &str| {
        Some((
            key,
            format!(
                "the generated job does not translate {what} yet; streamlab's own micro-batch and per-record \
                 engines run it (`model = \"micro-batch\"` / `\"per-record\"`)"
            ),
        ))
    };
    if pipeline.dedup.is_some() {
        return not_yet("dedup", "a deduplication");
    }
    // A chain of keyed stages (a join or a top-N feeding an aggregation): each job translates
    // one keyed stage (and `then` over an aggregation).
    let keyed: Vec<&'static str> = [
        (pipeline.join.is_some(), "join"),
        (pipeline.top_n.is_some(), "top_n"),
        (pipeline.aggregate.is_some(), "aggregate"),
    ]
    .into_iter()
    .filter_map(|(on, key)| on.then_some(key))
    .collect();
    if keyed.len() > 1 {
        return not_yet(keyed[1], &format!("a chain of keyed stages ({})", keyed.join(" then ")));
    }
    None
}

/// The column of the feeder's row (the job's source table) that carries `f`: its own for the
/// stream's and the clickstream's fields, the slot column for a Nexmark field
/// ([`streamlab_engines::nexmark`]'s layout: a bid's `price` is the row's `price_cents`), and
/// `campaign` for the lookup join's column.
pub fn feeder_column(f: Field) -> &'static str {
    match f {
        Field::EventTime => "event_time_ms",
        other => nexmark::slot(other).unwrap_or(other).name(),
    }
}

/// What a `where` entry tests, read once for every job's syntax (the entry has exactly one
/// test, validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredicateTest<'a> {
    /// `field % modulo == equals`, the remainder Euclidean (as the reference's `rem_euclid`).
    Modulo {
        /// The divisor (at least 1).
        modulo: i64,
        /// The remainder tested.
        equals: i64,
    },
    /// `field == x`.
    Equals(i64),
    /// `field != x`.
    NotEquals(i64),
    /// `field` is one of these.
    OneOf(&'a [i64]),
    /// `field >= x`.
    AtLeast(i64),
    /// `field < x`.
    Below(i64),
}

impl<'a> PredicateTest<'a> {
    /// The test of `p` (validated: exactly one; `modulo` with `equals`).
    pub fn of(p: &'a Predicate) -> Self {
        match (p.modulo, p.equals, p.not_equals, &p.one_of, p.at_least, p.below) {
            (Some(modulo), Some(equals), ..) => Self::Modulo { modulo, equals },
            (None, Some(x), ..) => Self::Equals(x),
            (_, _, Some(x), ..) => Self::NotEquals(x),
            (_, _, _, Some(xs), ..) => Self::OneOf(xs),
            (_, _, _, _, Some(x), _) => Self::AtLeast(x),
            (_, _, _, _, _, Some(x)) => Self::Below(x),
            _ => unreachable!("a `where` entry has exactly one test (validated)"),
        }
    }
}

/// A list of numbers as the jobs write it (`1, 2, 3`).
pub fn number_list(xs: &[i64]) -> String {
    xs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// `where` entry `p` in words, for the jobs' docstrings (`auction % 123 == 0`).
pub fn describe_predicate(p: &Predicate) -> String {
    let f = p.field.name();
    match PredicateTest::of(p) {
        PredicateTest::Modulo { modulo, equals } => format!("{f} % {modulo} == {equals}"),
        PredicateTest::Equals(x) => format!("{f} == {x}"),
        PredicateTest::NotEquals(x) => format!("{f} != {x}"),
        PredicateTest::OneOf(xs) => format!("{f} in ({})", number_list(xs)),
        PredicateTest::AtLeast(x) => format!("{f} >= {x}"),
        PredicateTest::Below(x) => format!("{f} < {x}"),
    }
}

/// Whether a conversion's result may leave its field's 32-bit slot (a negative multiplier, or
/// one above the divisor), where the reference wraps it as the slot does: the jobs then write
/// the wrap (`mod 2^32`) too, and leave it out otherwise.
pub fn convert_may_wrap(c: &Convert) -> bool {
    c.multiply < 0 || c.multiply > c.divide
}

/// The size of a 32-bit slot, which a wrapping conversion is taken modulo.
pub const SLOT_MODULUS: i64 = 1 << 32;

/// The columns of each row a generated job sends to the receiver, in order.
pub fn sink_columns(pipeline: &PipelineSpec) -> Vec<&'static str> {
    let mut cols = match pipeline.output_shape() {
        OutputShape::Windows => vec!["key", "window_start_ms", "window_end_ms", "count", "value", "is_update"],
        OutputShape::Records => vec!["shape", "left_seq", "right_seq", "window_start_ms"],
        OutputShape::Rows => {
            let mut cols = vec![Field::Seq.name()];
            cols.extend(pipeline.project.iter().filter(|&&f| f != Field::Seq).map(|f| f.name()));
            cols
        }
    };
    cols.push("origin_arrival_ns");
    cols
}

/// Writes `output` as its output row ([`sink_columns`], no newline) into `line` (cleared
/// first): what a native engine's sink produces to a Kafka output topic, so that one parser
/// ([`crate::outputs::read_outputs`]) reads every engine's results. A row's projected columns
/// are its (converted) event's; a window's value is written exactly (`f64`'s shortest
/// round-trip form).
pub fn write_output_row(pipeline: &PipelineSpec, output: &Output, line: &mut String) {
    line.clear();
    let seq = |s: u64| if s == u64::MAX { -1 } else { s as i64 };
    // Writing to a String cannot fail.
    let _ = match output {
        Output::Window(w) => write!(
            line,
            "{},{},{},{},{},{},{}",
            w.key, w.start, w.end, w.count, w.value, w.is_update, w.origin.arrival
        ),
        Output::Record(r) => {
            let (shape, left, right, _) = r.identity();
            write!(
                line,
                "{},{},{},{},{}",
                shape.name(),
                seq(left),
                seq(right),
                r.start,
                r.origin.arrival
            )
        }
        Output::Row(r) => {
            let _ = write!(line, "{}", r.event.seq);
            for &f in pipeline.project.iter().filter(|&&f| f != Field::Seq) {
                let _ = match f {
                    Field::Kind => write!(line, ",{}", r.event.kind.name()),
                    _ => write!(line, ",{}", field_value(&r.event, r.campaign, f)),
                };
            }
            write!(line, ",{}", r.lineage.arrival)
        }
    };
}

/// Writes the campaign table as the script reads it: CSV with the header `ad,campaign`, one row
/// per ad in the table.
pub fn write_campaign_table(table: &CampaignTable, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "ad,campaign")?;
    for ad in 0..table.len() as u32 {
        if let Some(campaign) = table.campaign(ad) {
            writeln!(out, "{ad},{campaign}")?;
        }
    }
    Ok(())
}

/// The run-specific arguments of a generated job.
#[derive(Clone, Debug)]
pub struct ScriptArgs {
    /// The feeder's address.
    pub feeder: SocketAddr,
    /// The receiver's address.
    pub receiver: SocketAddr,
    /// The run's token (passed on the command line, never written into the script).
    pub token: String,
    /// Source partitions: one feeder connection each.
    pub partitions: u32,
    /// The campaign table's file ([`write_campaign_table`]).
    pub campaigns: PathBuf,
    /// The file each query progress is appended to, one JSON line each.
    pub progress: PathBuf,
    /// The query's checkpoint directory.
    pub checkpoint: PathBuf,
    /// A cluster address instead of the engine's local default: a Spark master URL
    /// (`spark://host:7077`) or a Flink JobManager's REST address (`host:8081`).
    pub master: Option<String>,
    /// The jar of streamlab's Java helper classes, for jobs that need them (Flink's source and
    /// sink).
    pub helper_jar: Option<PathBuf>,
}

impl ScriptArgs {
    /// The command-line arguments, after the script's path.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--feeder".into(),
            self.feeder.to_string().into(),
            "--receiver".into(),
            self.receiver.to_string().into(),
            "--token".into(),
            self.token.clone().into(),
            "--partitions".into(),
            self.partitions.to_string().into(),
            "--campaigns".into(),
            self.campaigns.clone().into(),
            "--progress".into(),
            self.progress.clone().into(),
            "--checkpoint".into(),
            self.checkpoint.clone().into(),
        ];
        if let Some(master) = &self.master {
            args.push("--master".into());
            args.push(master.into());
        }
        if let Some(jar) = &self.helper_jar {
            args.push("--jar".into());
            args.push(jar.into());
        }
        args
    }
}

/// The pipeline one line per step, for a generated job's docstrings; `join` says how the engine
/// does the lookup join.
pub fn describe_pipeline(p: &PipelineSpec, join: &str) -> Vec<String> {
    let mut steps = Vec::new();
    if let Some(kinds) = &p.filter_kinds {
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        steps.push(format!("filter kind in ({})", names.join(", ")));
    }
    for pred in &p.predicates {
        steps.push(format!("where {}", describe_predicate(pred)));
    }
    if let Some(c) = &p.convert {
        let f = c.field.name();
        steps.push(if c.divide == 1 {
            format!("convert {f} = {f} * {}", c.multiply)
        } else {
            format!("convert {f} = {f} * {} / {} (toward zero)", c.multiply, c.divide)
        });
    }
    if p.lookup_join {
        steps.push(format!("lookup join ad -> campaign ({join})"));
    }
    if let Some(j) = &p.join {
        steps.extend(describe_join(j));
        return steps;
    }
    if let Some(t) = &p.top_n {
        let window = match t.window {
            WindowSpec::Sliding { size, slide } => format!("sliding {size} windows every {slide}"),
            WindowSpec::Tumbling { size } | WindowSpec::Session { gap: size } => format!("tumbling {size} windows"),
        };
        steps.push(format!("top {} by {} (largest first) per {window}", t.n, t.by.name()));
        return steps;
    }
    match &p.aggregate {
        None => {
            let cols: Vec<&str> = p.project.iter().map(|f| f.name()).collect();
            steps.push(format!("project {}", cols.join(", ")));
        }
        Some(a) => {
            steps.push(format!("key by {}", a.key_by.name()));
            steps.push(match a.window {
                WindowSpec::Tumbling { size } => format!("tumbling {size} windows"),
                WindowSpec::Sliding { size, slide } => format!("sliding {size} windows every {slide}"),
                WindowSpec::Session { gap } => format!("session windows, gap {gap}"),
            });
            steps.push(match (a.function, a.field) {
                (AggFunc::Count, _) | (_, None) => "count".into(),
                (f, Some(field)) => format!("{}({})", agg_name(f), field.name()),
            });
            if let Some(t) = &p.then {
                steps.push(if t.keep_matching {
                    format!("then per window: the results that attain the {}", agg_name(t.function))
                } else {
                    format!("then per window: {} of the results", agg_name(t.function))
                });
            }
        }
    }
    steps
}

/// A stream-stream join, one line per input and one for the join.
fn describe_join(j: &JoinSpec) -> Vec<String> {
    let input = |side: &str, i: &JoinInput| {
        let kinds: Vec<&str> = i.kinds.iter().map(|k| k.name()).collect();
        let mut line = format!("{side}: kind in ({}), key {}", kinds.join(", "), i.key.name());
        for p in &i.predicates {
            let _ = write!(line, ", where {}", describe_predicate(p));
        }
        line
    };
    let join_type = match j.join_type {
        JoinType::Inner => "inner",
        JoinType::LeftOuter => "left outer",
        JoinType::RightOuter => "right outer",
    };
    let condition = match j.kind {
        JoinKind::Interval => {
            let (lo, hi) = j.bounds();
            format!("left.time + {lo} ms <= right.time <= left.time + {hi} ms")
        }
        JoinKind::Window => match j.window {
            Some(WindowSpec::Sliding { size, slide }) => format!("both in one sliding {size} window every {slide}"),
            Some(WindowSpec::Tumbling { size }) => format!("both in one tumbling {size} window"),
            _ => "both in one window".into(),
        },
        JoinKind::Unbounded => "no time bound (state kept for ever)".into(),
    };
    vec![
        input("left", &j.left),
        input("right", &j.right),
        format!("{join_type} join on left.key = right.key, {condition}"),
    ]
}

/// The join's durations with their keys, which a generated job must be able to write.
fn join_spans(pipeline: &PipelineSpec) -> Vec<(&'static str, Span)> {
    let Some(j) = &pipeline.join else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    for (key, bound) in [("pipeline.join.lower", j.lower), ("pipeline.join.upper", j.upper)] {
        if let Some(b) = bound {
            spans.push((key, Span::from_ms(b.ms.unsigned_abs())));
        }
    }
    match j.window {
        Some(WindowSpec::Tumbling { size }) => spans.push(("pipeline.join.window.size", size)),
        Some(WindowSpec::Sliding { size, slide }) => {
            spans.push(("pipeline.join.window.size", size));
            spans.push(("pipeline.join.window.slide", slide));
        }
        _ => {}
    }
    spans
}

/// An aggregate function's name as the docstrings spell it.
pub fn agg_name(f: AggFunc) -> &'static str {
    match f {
        AggFunc::Count => "count",
        AggFunc::Sum => "sum",
        AggFunc::Min => "min",
        AggFunc::Max => "max",
        AggFunc::Avg => "avg",
        AggFunc::DistinctCount => "distinct_count",
    }
}

/// The window's durations with their keys (`pipeline.aggregate.window.*`), which a generated
/// job must be able to write in its engine's units.
pub fn window_spans(pipeline: &PipelineSpec) -> Vec<(&'static str, Span)> {
    match pipeline.aggregate.map(|a| a.window) {
        Some(WindowSpec::Tumbling { size }) => vec![("pipeline.aggregate.window.size", size)],
        Some(WindowSpec::Sliding { size, slide }) => vec![
            ("pipeline.aggregate.window.size", size),
            ("pipeline.aggregate.window.slide", slide),
        ],
        Some(WindowSpec::Session { gap }) => vec![("pipeline.aggregate.window.gap", gap)],
        None => match pipeline.top_n.map(|t| t.window) {
            Some(WindowSpec::Tumbling { size }) => vec![("pipeline.top_n.window.size", size)],
            Some(WindowSpec::Sliding { size, slide }) => vec![
                ("pipeline.top_n.window.size", size),
                ("pipeline.top_n.window.slide", slide),
            ],
            _ => join_spans(pipeline),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_keyed_stages_and_a_dedup_are_not_translated_and_say_so() {
        let chain: PipelineSpec = toml::from_str(
            r#"[join]
kind = "unbounded"
left = { kinds = ["auction"], key = "seller" }
right = { kinds = ["person"], key = "id" }
[aggregate]
key_by = "seller"
window = { kind = "tumbling", size = "10s" }
function = "count""#,
        )
        .unwrap();
        let (key, reason) = untranslated(&chain).expect("refused");
        assert_eq!(key, "aggregate");
        assert!(
            reason.contains("a chain of keyed stages (join then aggregate)"),
            "{reason}"
        );
        let dedup: PipelineSpec = toml::from_str("[dedup]\nkey = [\"user\"]\nwithin = \"1s\"").unwrap();
        assert_eq!(untranslated(&dedup).map(|(k, _)| k), Some("dedup"));
        let join: PipelineSpec = toml::from_str(
            "[join]\nkind = \"unbounded\"\nleft = { kinds = [\"auction\"], key = \"seller\" }\nright = { kinds = [\"person\"], key = \"id\" }",
        )
        .unwrap();
        assert_eq!(untranslated(&join), None, "one keyed stage is translated");
    }

    #[test]
    fn a_nexmark_field_is_read_from_the_column_of_its_slot() {
        assert_eq!(feeder_column(Field::Auction), "session");
        assert_eq!(feeder_column(Field::Price), "price_cents");
        assert_eq!(feeder_column(Field::Channel), "ad");
        assert_eq!(feeder_column(Field::EventTime), "event_time_ms");
        assert_eq!(feeder_column(Field::User), "user");
    }
}
