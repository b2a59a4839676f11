//! The contract between streamlab's driver and every generated job (PySpark script, PyFlink
//! job): the same command-line arguments, the same campaign-table file and the same output row,
//! so one driver runs them all and one parser reads what they send back.
//!
//! * **Arguments** ([`ScriptArgs`]): where the feeder and receiver listen, the run's token (on
//!   the command line only, never in a file), the source partitions, the campaign table's file,
//!   the progress file, the checkpoint directory, and optionally a cluster address and the
//!   helper jar.
//! * **Output rows** ([`sink_columns`]): one CSV line per output. Window results: `key,
//!   window_start_ms, window_end_ms, count, value, is_update`; rows of a stateless pipeline:
//!   `seq` (the event's position in the stream, so streamlab can match the row to its event and
//!   to the reference evaluator's row) and the other projected columns. Both end with
//!   `origin_arrival_ns`, the scheduled arrival latency is measured from (the event's, or a
//!   window's last contributing event's).

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::pipeline::{AggFunc, Field, PipelineSpec, WindowSpec};
use streamlab_engines::time::Span;

/// What of `pipeline` the generated Spark and Flink jobs cannot run yet: the pipeline key and
/// why (`None`: they run all of it).
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
    if pipeline.join.is_some() {
        return not_yet("join", "a stream-stream join");
    }
    if pipeline.dedup.is_some() {
        return not_yet("dedup", "a deduplication");
    }
    if pipeline.top_n.is_some() {
        return not_yet("top_n", "a top-N");
    }
    if pipeline.then.is_some() {
        return not_yet("then", "a second aggregation");
    }
    if !pipeline.predicates.is_empty() {
        return not_yet("where", "`where` predicates");
    }
    if pipeline.convert.is_some() {
        return not_yet("convert", "a `convert`");
    }
    let nexmark = |kinds: &[streamlab_engines::event::EventKind]| {
        kinds
            .iter()
            .any(|k| streamlab_engines::event::EventKind::NEXMARK.contains(k))
    };
    if pipeline.filter_kinds.as_deref().is_some_and(nexmark) {
        return not_yet(
            "filter_kinds",
            "Nexmark's record types (the feeder's rows carry the clickstream's columns)",
        );
    }
    None
}

/// The columns of each row a generated job sends to the receiver, in order.
pub fn sink_columns(pipeline: &PipelineSpec) -> Vec<&'static str> {
    let mut cols = if pipeline.is_stateful() {
        vec!["key", "window_start_ms", "window_end_ms", "count", "value", "is_update"]
    } else {
        let mut cols = vec![Field::Seq.name()];
        cols.extend(pipeline.project.iter().filter(|&&f| f != Field::Seq).map(|f| f.name()));
        cols
    };
    cols.push("origin_arrival_ns");
    cols
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
    if p.lookup_join {
        steps.push(format!("lookup join ad -> campaign ({join})"));
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
        }
    }
    steps
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
        None => Vec::new(),
    }
}
