//! Cost profiles: the [`CostModel`] a simulated run prices work with, read from a TOML file.
//!
//! A profile says what each piece of work costs on some machine or cluster. `local` is this
//! machine as `streamlab calibrate` measured it; `cluster-10` and `cluster-100` keep its
//! per-record CPU costs and set the fixed costs (job scheduling, task launch, network, durable
//! writes) to what real clusters of that size show, each with its source. A scenario names a
//! built-in profile or a profile file (see [`load_profile`]).
//!
//! # The file format
//!
//! ```toml
//! name = "local"                                     # required
//! description = "this machine, measured by `streamlab calibrate`"   # optional, one line
//!
//! [costs]                                            # every CostModel parameter, all required
//! source_read_ns_per_event = 21.5                    # each with a comment giving its source
//! chain_ns_per_event = 4.0
//! # ... the other 14 parameters, named as in `CostModel`
//! ```
//!
//! Every value is a number of nanoseconds (per event, per byte or per occurrence, as the key
//! says), finite and `>= 0`; integers are accepted. An unknown key or a missing parameter is an
//! error, never a default: a typo must not silently price some work at zero.
//!
//! Errors name the file and, where they can, the line and the key:
//!
//! ```text
//! my-cluster.toml:7: key `costs.batch_job_ns`: -1 is out of range; must be a finite number >= 0 (nanoseconds)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use streamlab_engines::cost::CostModel;

/// The built-in profiles, by name: the files in `scenarios/profiles/`, embedded.
pub const BUILTIN_PROFILES: [(&str, &str); 6] = [
    ("local", include_str!("../profiles/local.toml")),
    ("spark-local", include_str!("../profiles/spark-local.toml")),
    ("flink-local", include_str!("../profiles/flink-local.toml")),
    (
        "kafka-streams-local",
        include_str!("../profiles/kafka-streams-local.toml"),
    ),
    ("cluster-10", include_str!("../profiles/cluster-10.toml")),
    ("cluster-100", include_str!("../profiles/cluster-100.toml")),
];

/// What each [`CostModel`] parameter means, with its unit: the comment [`Profile::to_toml`]
/// writes next to it. In [`CostModel::parameters`] order.
const PARAMETER_DOCS: [(&str, &str); 18] = [
    (
        "source_read_ns_per_event",
        "ns per event: reading one event from a source partition",
    ),
    ("chain_ns_per_event", "ns per event: the chained filter and lookup join"),
    (
        "state_ns_per_update",
        "ns per update: applying one row to keyed window state",
    ),
    (
        "emit_ns_per_result",
        "ns per result: building one window result when a window fires",
    ),
    ("sink_ns_per_record", "ns per record: writing one record to the sink"),
    (
        "shuffle_ns_per_row",
        "ns per row: micro-batch shuffle, writing and fetching one row",
    ),
    (
        "serialize_ns_per_byte",
        "ns per byte: serializing and deserializing network buffers",
    ),
    (
        "buffer_handoff_ns",
        "ns per buffer: handing a network buffer to a task on the same node",
    ),
    (
        "network_latency_ns",
        "ns per buffer: one buffer's trip between two nodes",
    ),
    (
        "network_ns_per_byte",
        "ns per byte: network transfer between nodes (1 / bandwidth)",
    ),
    (
        "batch_job_ns",
        "ns per batch: planning and scheduling one micro-batch job",
    ),
    (
        "task_launch_ns",
        "ns per task: launching a task and collecting its status",
    ),
    (
        "source_poll_ns_per_partition",
        "ns per partition: asking a source partition for its latest offset",
    ),
    (
        "source_poll_interval_ns",
        "ns: period of a caught-up per-record source's poll loop",
    ),
    (
        "log_write_ns",
        "ns per write: one durable write (offset log, commit log, checkpoint)",
    ),
    ("disk_ns_per_byte", "ns per byte: durable storage bandwidth"),
    (
        "exchange_latency_ns",
        "ns per buffer: delay of a buffer between two tasks on one node (a real engine's network stack)",
    ),
    (
        "exchange_jitter_ns",
        "ns per buffer: mean of an exponential extra delay on that trip (seeded: results stay the same)",
    ),
];

/// A named cost model.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name, e.g. `local`.
    pub name: String,
    /// One line saying what machine or cluster it describes and where its numbers come from.
    #[serde(default)]
    pub description: String,
    /// The prices.
    pub costs: CostModel,
    /// For a profile fitted to a real engine (`streamlab calibrate --against`): how, when and
    /// on which configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Box<FitRecord>>,
}

/// How a profile was fitted to a real engine: the `[fit]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FitRecord {
    /// The real engine: `spark` or `flink`.
    pub engine: String,
    /// The command that produced the profile.
    pub command: String,
    /// When (UTC, RFC 3339).
    pub date: String,
    /// The signatures ([`crate::against::signature`]) of the configurations the fit ran; the
    /// others are unseen, and only those test it.
    pub configurations: Vec<String>,
}

/// A profile that could not be found, read or accepted. Every variant names the file (or, for
/// an unknown name, the folder a profile file would be looked up in) and the built-in names
/// where they are the likely fix.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Neither a built-in name nor a path to a `.toml` file.
    #[error(
        "profile `{spec}` is not a built-in profile ({}); a profile file must be a path ending in `.toml` \
         (relative to {})",
        builtin_names(),
        base_dir.display()
    )]
    UnknownName {
        /// What the scenario asked for.
        spec: String,
        /// The folder a profile file would have been looked up in.
        base_dir: PathBuf,
    },
    /// The profile file could not be read.
    #[error("{}: cannot read the profile file: {source} (built-in profiles: {})", path.display(), builtin_names())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or not a profile: a syntax error, an unknown key, a missing
    /// parameter, a value of the wrong type. The message is the `toml` crate's.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A cost is out of range (negative, NaN or infinite).
    #[error("{}{}: key `{key}`: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key, when it is written on a line of its own.
        line: Option<usize>,
        /// Dotted key, e.g. `costs.batch_job_ns`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ProfileError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Toml { line, .. } => Some(*line),
            Self::Invalid { line, .. } => *line,
            Self::UnknownName { .. } | Self::Io { .. } => None,
        }
    }
}

/// The built-in names, comma-separated, for messages.
fn builtin_names() -> String {
    BUILTIN_PROFILES.map(|(name, _)| name).join(", ")
}

/// Reads a profile from `text`, the content of the file `origin` (used in messages only), and
/// checks every cost is a finite number `>= 0`.
///
/// # Examples
/// ```
/// use std::path::Path;
/// use streamlab_scenarios::profile::{load_profile, parse_profile};
///
/// let local = load_profile("local", Path::new(".")).unwrap();
/// let again = parse_profile(Path::new("copy.toml"), &local.to_toml()).unwrap();
/// assert_eq!(again, local);
/// ```
pub fn parse_profile(origin: &Path, text: &str) -> Result<Profile, ProfileError> {
    let profile: Profile = toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ProfileError::Toml {
            path: origin.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    profile
        .costs
        .validate()
        .map_err(|(name, message)| ProfileError::Invalid {
            path: origin.to_path_buf(),
            line: line_of_key(text, name),
            key: format!("costs.{name}"),
            message,
        })?;
    Ok(profile)
}

/// Finds the profile `spec` names: a built-in name ([`BUILTIN_PROFILES`]), or a path to a
/// `.toml` file, relative to `base_dir` (the folder of the scenario that names it).
pub fn load_profile(spec: &str, base_dir: &Path) -> Result<Profile, ProfileError> {
    if let Some((name, text)) = BUILTIN_PROFILES.iter().find(|(name, _)| *name == spec) {
        return parse_profile(&PathBuf::from(format!("<built-in>/{name}.toml")), text);
    }
    if !spec.ends_with(".toml") {
        return Err(ProfileError::UnknownName {
            spec: spec.to_string(),
            base_dir: base_dir.to_path_buf(),
        });
    }
    let path = base_dir.join(spec);
    let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Io {
        path: path.clone(),
        source,
    })?;
    parse_profile(&path, &text)
}

impl Profile {
    /// The profile in the file format [`parse_profile`] reads, one comment per parameter giving
    /// its unit and meaning. Reading it back gives the same profile.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "name = {}\ndescription = {}\n\n[costs]\n",
            toml_string(&self.name),
            toml_string(&self.description)
        );
        for ((name, value), (_, doc)) in self.costs.parameters().into_iter().zip(PARAMETER_DOCS) {
            let value = toml_float(value);
            out.push_str(&format!("{name} = {value:<12} # {doc}\n"));
        }
        if let Some(fit) = &self.fit {
            out.push_str("\n[fit]\n");
            out.push_str(&format!("engine = {}\n", toml_string(&fit.engine)));
            out.push_str(&format!("command = {}\n", toml_string(&fit.command)));
            out.push_str(&format!("date = {}\n", toml_string(&fit.date)));
            out.push_str("configurations = [\n");
            for c in &fit.configurations {
                out.push_str(&format!("    {},\n", toml_string(c)));
            }
            out.push_str("]\n");
        }
        out
    }
}

/// A TOML basic string, escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML float that reads back to exactly `v` (Rust's `Debug` is the shortest round-trip form
/// and always has a `.` or an exponent; TOML spells the non-finite values in lower case).
fn toml_float(v: f64) -> String {
    match v {
        v if v.is_nan() => "nan".into(),
        v if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        v => format!("{v:?}"),
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The 1-based line on which `key = ...` is written, if it is written on a line of its own.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}
