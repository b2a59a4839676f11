//! Parameter sweeps: one scenario run at every point of a grid of values of its keys.
//!
//! `streamlab sweep SCENARIO --param KEY=V1,V2,...` names a key by its dotted path, as the
//! scenario reader's error messages do: `duration`, `workload.rate.events_per_second`,
//! `pipeline.aggregate.window.size`, `engine[0].trigger.interval`. An engine key without an
//! index (`engine.buffer_timeout`, or `engine[*].buffer_timeout`) means every engine whose
//! model has that key. Several `--param` make a grid: their cartesian product, first key
//! outermost.
//!
//! # Why the text is edited, not the parsed scenario
//!
//! A point is made by editing the scenario's TOML text with `toml_edit` and reading the result
//! with [`Scenario::parse`], exactly as if the user had written that file. So every point is
//! validated by the same reader, with the same located messages (file, line, key, what is
//! allowed), and each point's results directory keeps the scenario text it ran (`scenario.toml`).
//! An edit keeps the value's type where the written value fits it (a duration written `"1s"`
//! stays a string, a number stays a number) and its comments; a value that does not fit is
//! written as it reads and refused by the reader with its line. A key the scenario does not
//! state is created when its table exists (the engine's defaults then apply to the others);
//! otherwise the error names the key and lists the keys nearby.
//!
//! # The sweep directory
//!
//! ```text
//! <out>/sweep.json         {"scenario", "parameters": [keys], "points": [{"values", "dir", "summary"}]}
//! <out>/sweep.csv          one row per point and engine run: values, run, model, latency, throughput, counts
//! <out>/<slug of k=v,...>/ a results directory per point, as `streamlab run` writes it
//! ```
//!
//! `sweep.json` is rewritten after every point, so an interrupted sweep leaves what it ran.
//! An existing non-empty directory is replaced only with `--force`, and only if it holds a
//! `sweep.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::microbatch::MicroBatchConfig;
use streamlab_engines::time::Span;
use streamlab_reports::summary::Summary;
use toml_edit::{DocumentMut, Item, TableLike, Value};

use crate::error::ScenarioError;
use crate::error_run::RunError;
use crate::keypath::{KeyPath, Segment};
use crate::results::utc_stamp;
use crate::runner::{run_scenario, RunOptions};
use crate::spec::{ClockKind, Scenario};
use streamlab_reports::layout::{slug, SweepLayout};

/// What can go wrong in a sweep, by who is at fault: the command line (`--param`, the output
/// directory), a point's scenario (located like any scenario error), or a point's run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A `--param` that does not read as `KEY=V1,V2,...`, or conflicts with another option.
    #[error("--param `{param}`: {message}")]
    Param {
        /// The argument as given.
        param: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A key that names nothing sweepable in the scenario.
    #[error("{}: sweep key `{key}`: {message}", path.display())]
    Key {
        /// The scenario file.
        path: PathBuf,
        /// The key as given.
        key: String,
        /// What is wrong, and the keys nearby.
        message: String,
    },
    /// A point's scenario is not valid: the reader's located error, and the point.
    #[error("{error} (sweep point {point})")]
    Point {
        /// The point, `key=value, ...`.
        point: String,
        /// The reader's error, naming file, line and key.
        error: ScenarioError,
    },
    /// A point's run failed.
    #[error("sweep point {point}: {error}")]
    Run {
        /// The point, `key=value, ...`.
        point: String,
        /// What went wrong.
        error: RunError,
    },
    /// The base scenario could not be read.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The sweep directory exists and may not be replaced.
    #[error("sweep directory {}: {message}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Writing the sweep directory failed.
    #[error("writing {}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// A `Result` whose error is a [`SweepError`].
pub type Result<T, E = SweepError> = std::result::Result<T, E>;

/// One `--param KEY=V1,V2,...`: a key and the values it takes, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepParam {
    /// The dotted key path, e.g. `engine[0].trigger.interval`.
    pub key: String,
    /// The values, as written (`"100ms"`, `"2"`).
    pub values: Vec<String>,
}

impl FromStr for SweepParam {
    type Err = SweepError;

    /// Reads `KEY=V1,V2,...`.
    ///
    /// # Examples
    /// ```
    /// use streamlab_scenarios::sweep::SweepParam;
    ///
    /// let p: SweepParam = "engine[0].trigger.interval=100ms,1s".parse().unwrap();
    /// assert_eq!(p.key, "engine[0].trigger.interval");
    /// assert_eq!(p.values, ["100ms", "1s"]);
    /// assert!("interval".parse::<SweepParam>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let err = |message: &str| SweepError::Param {
            param: s.to_string(),
            message: message.to_string(),
        };
        let (key, values) = s
            .split_once('=')
            .ok_or_else(|| err("expected KEY=V1,V2,..., e.g. engine[0].trigger.interval=100ms,1s"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(err("the key is empty; expected KEY=V1,V2,..."));
        }
        KeyPath::parse(key).map_err(|m| err(&m))?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(err(
                "a value is empty; expected KEY=V1,V2,... with values separated by commas",
            ));
        }
        Ok(Self {
            key: key.to_string(),
            values,
        })
    }
}

/// Sets `key` to `value` (as written on the command line) in the scenario `text` and returns
/// the edited text; `path` is named in messages. See the module header for the rules.
///
/// # Examples
/// ```
/// use std::path::Path;
/// use streamlab_scenarios::sweep::set_key;
///
/// let text = "name = \"x\"\nduration = \"1s\"\n[[engine]]\nname = \"mb\"\nmodel = \"micro-batch\"\n\
///             trigger = { kind = \"processing_time\", interval = \"1s\" }\n";
/// let edited = set_key(Path::new("x.toml"), text, "engine[0].trigger.interval", "250ms").unwrap();
/// assert!(edited.contains("interval = \"250ms\""));
/// ```
pub fn set_key(path: &Path, text: &str, key: &str, value: &str) -> Result<String> {
    let mut doc: DocumentMut = text.parse().map_err(|_| {
        // Not TOML: let the reader say where.
        match Scenario::parse(path, text) {
            Err(e) => SweepError::Scenario(e),
            Ok(_) => SweepError::Key {
                path: path.to_path_buf(),
                key: key.to_string(),
                message: "the scenario does not parse as TOML".into(),
            },
        }
    })?;
    let key_error = |message: String| SweepError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let parsed = KeyPath::parse(key).map_err(&key_error)?;
    let targets = targets(&doc, &parsed).map_err(key_error)?;
    for target in &targets {
        let (last, parents) = target.split_last().expect("a key path has a last segment");
        let table = table_mut(doc.as_table_mut(), parents).expect("targets resolve to existing tables");
        let name = last.name();
        match table.get_mut(name) {
            Some(Item::Value(Value::Array(_))) => {
                return Err(key_error(format!(
                    "`{}` is an array; a sweep sets single values (numbers, durations, ...)",
                    KeyPath::display(target)
                )))
            }
            Some(Item::Value(old)) => {
                let mut new = typed_like(Some(old), value);
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            Some(_) => {
                return Err(key_error(format!(
                    "`{}` is a table, not a value; name a key inside it",
                    KeyPath::display(target)
                )))
            }
            None => {
                table.insert(name, Item::Value(typed_like(None, value)));
            }
        }
    }
    Ok(doc.to_string())
}

/// The concrete paths (every index resolved) a key path edits, each to an existing table.
fn targets(doc: &DocumentMut, key: &KeyPath) -> std::result::Result<Vec<Vec<Segment>>, String> {
    let root = doc.as_table();
    let segments = &key.0;
    // `engine.x` and `engine[*].x`: every engine whose model has the key.
    let engine_array = matches!(root.get("engine"), Some(Item::ArrayOfTables(_)));
    let every_engine = match &segments[0] {
        Segment::All(n) => n == "engine",
        Segment::Key(n) => n == "engine" && segments.len() > 1 && engine_array,
        Segment::Index(..) => false,
    };
    if !every_engine {
        if segments.iter().any(|s| matches!(s, Segment::All(_))) {
            return Err("`[*]` is allowed on `engine` only, e.g. `engine[*].buffer_timeout`".into());
        }
        return resolve(root, segments).map(|()| vec![segments.clone()]);
    }
    let Some(Item::ArrayOfTables(engines)) = root.get("engine") else {
        return Err("the scenario has no [[engine]] tables".into());
    };
    let rest = &segments[1..];
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        let mut target = vec![Segment::Index("engine".into(), i)];
        target.extend_from_slice(rest);
        let model = engine.get("model").and_then(Item::as_str).unwrap_or("?");
        let has = match lookup(engine, rest) {
            Lookup::Value => true,
            // Create a key the engine's model has but the file leaves at its default.
            Lookup::MissingLeaf if rest.len() == 1 => model_has_key(model, rest[0].name()),
            _ => false,
        };
        let name = engine.get("name").and_then(Item::as_str).unwrap_or("?");
        seen.push(format!("engine[{i}] \"{name}\" ({model})"));
        if has {
            found.push(target);
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no engine has `{}`: {}; {}",
            KeyPath::display(rest),
            seen.join(", "),
            nearby(root, &[Segment::Key("engine".into())], rest)
        ));
    }
    Ok(found)
}

/// Whether an engine model's configuration has a top-level key (its defaults, serialized).
fn model_has_key(model: &str, key: &str) -> bool {
    let defaults = match model {
        "micro-batch" => serde_json::to_value(MicroBatchConfig::default()),
        "per-record" => serde_json::to_value(DataflowConfig::default()),
        _ => return false,
    };
    defaults.ok().and_then(|v| v.as_object().map(|o| o.contains_key(key))) == Some(true)
}

/// What a path finds in a table.
enum Lookup {
    /// An existing value.
    Value,
    /// An existing table (or array of tables) where a value was asked for.
    Table,
    /// The last key is missing but its table exists: it can be created.
    MissingLeaf,
    /// A table on the way is missing, or an index is out of range.
    Missing,
}

fn lookup(table: &dyn TableLike, segments: &[Segment]) -> Lookup {
    let Some((first, rest)) = segments.split_first() else {
        return Lookup::Table;
    };
    let Some(item) = table.get(first.name()) else {
        return if rest.is_empty() {
            Lookup::MissingLeaf
        } else {
            Lookup::Missing
        };
    };
    let next: Option<&dyn TableLike> = match (first, item) {
        (Segment::Index(_, i), Item::ArrayOfTables(tables)) => tables.get(*i).map(|t| t as &dyn TableLike),
        (Segment::Index(..) | Segment::All(_), _) => None,
        (Segment::Key(_), Item::Value(v)) if rest.is_empty() && !v.is_inline_table() => return Lookup::Value,
        (Segment::Key(_), item) => item.as_table_like(),
    };
    match next {
        Some(t) => lookup(t, rest),
        None if rest.is_empty() && matches!(first, Segment::Key(_)) => Lookup::Table,
        None => Lookup::Missing,
    }
}

/// Checks that `segments` names a value, or a missing key of an existing table; otherwise says
/// what is there instead.
fn resolve(root: &dyn TableLike, segments: &[Segment]) -> std::result::Result<(), String> {
    match lookup(root, segments) {
        Lookup::Value | Lookup::MissingLeaf => Ok(()),
        Lookup::Table => Err(format!("names a table, not a value; {}", nearby(root, segments, &[]))),
        Lookup::Missing => {
            // The deepest table that exists along the path.
            let mut depth = segments.len() - 1;
            while depth > 0 && !matches!(lookup(root, &segments[..depth]), Lookup::Table) {
                depth -= 1;
            }
            let missing = &segments[..=depth];
            let what = match &segments[depth] {
                Segment::Index(name, _) => match root_len(root, &segments[..depth], name) {
                    Some(n) => format!("`{}` is out of range: the scenario has {n}", KeyPath::display(missing)),
                    None => format!("the scenario has no `{}`", KeyPath::display(missing)),
                },
                _ => format!("the scenario has no `{}` table", KeyPath::display(missing)),
            };
            Err(format!(
                "{what} (only a key of an existing table can be created); {}",
                nearby(root, &segments[..depth], &segments[depth..])
            ))
        }
    }
}

/// How many tables an array of tables at `parents.name` holds.
fn root_len(root: &dyn TableLike, parents: &[Segment], name: &str) -> Option<usize> {
    let mut table = root;
    for s in parents {
        table = match (s, table.get(s.name())?) {
            (Segment::Index(_, i), Item::ArrayOfTables(t)) => t.get(*i)?,
            (_, item) => item.as_table_like()?,
        };
    }
    match table.get(name)? {
        Item::ArrayOfTables(t) => Some(t.len()),
        _ => None,
    }
}

/// "keys nearby: ..." — the values under the table at `parents`, the closest spelling of the
/// whole key if one is near, for an error message.
fn nearby(root: &dyn TableLike, parents: &[Segment], rest: &[Segment]) -> String {
    let mut all = Vec::new();
    leaf_paths(root, "", &mut all);
    let prefix = KeyPath::display(parents);
    let mut near: Vec<&String> = all
        .iter()
        .filter(|p| prefix.is_empty() || p.starts_with(&format!("{prefix}.")) || p.starts_with(&format!("{prefix}[")))
        .collect();
    if near.is_empty() {
        near = all.iter().collect();
    }
    let wanted = if prefix.is_empty() {
        KeyPath::display(rest)
    } else if rest.is_empty() {
        prefix.clone()
    } else {
        format!("{prefix}.{}", KeyPath::display(rest))
    };
    let closest = all
        .iter()
        .map(|p| (edit_distance(p, &wanted), p))
        .filter(|(d, p)| *d > 0 && *d <= 2.max(p.len() / 4))
        .min();
    let mut out = String::new();
    if let Some((_, p)) = closest {
        let _ = write!(out, "did you mean `{p}`? ");
    }
    let listed: Vec<String> = near.iter().take(24).map(|p| format!("`{p}`")).collect();
    let _ = write!(out, "keys nearby: {}", listed.join(", "));
    if near.len() > listed.len() {
        let _ = write!(out, ", ... ({} more)", near.len() - listed.len());
    }
    out
}

/// The dotted paths of every single value (string, number, boolean) under `table`.
fn leaf_paths(table: &dyn TableLike, prefix: &str, out: &mut Vec<String>) {
    for (name, item) in table.iter() {
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match item {
            Item::Value(Value::InlineTable(t)) => leaf_paths(t, &path, out),
            Item::Value(Value::Array(_)) | Item::None => {}
            Item::Value(_) => out.push(path),
            Item::Table(t) => leaf_paths(t, &path, out),
            Item::ArrayOfTables(tables) => {
                for (i, t) in tables.iter().enumerate() {
                    leaf_paths(t, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The table at `segments` (every one existing), mutably.
fn table_mut<'t>(root: &'t mut dyn TableLike, segments: &[Segment]) -> Option<&'t mut dyn TableLike> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(root);
    };
    let item = root.get_mut(first.name())?;
    let next: &mut dyn TableLike = match (first, item) {
        (Segment::Index(_, i), Item::ArrayOfTables(tables)) => tables.get_mut(*i)?,
        (Segment::Key(_), item) => item.as_table_like_mut()?,
        _ => return None,
    };
    table_mut(next, rest)
}

/// `written` as a TOML value of the same type as `old` where it fits (a string stays a
/// string, an integer an integer, ...); otherwise, and for a new key, the type it reads as
/// (integer, float, boolean, else string), for the reader to accept or refuse.
fn typed_like(old: Option<&Value>, written: &str) -> Value {
    let integer = written.parse::<i64>().ok();
    let float = written.parse::<f64>().ok().filter(|f| f.is_finite());
    let boolean = written.parse::<bool>().ok();
    match (old, integer, float, boolean) {
        (Some(Value::String(_)), ..) => Value::from(written),
        (Some(Value::Float(_)), _, Some(f), _) => Value::from(f),
        (Some(Value::Boolean(_)), _, _, Some(b)) => Value::from(b),
        (_, Some(i), ..) => Value::from(i),
        (_, None, Some(f), _) => Value::from(f),
        (_, None, None, Some(b)) => Value::from(b),
        _ => Value::from(written),
    }
}

/// One point of a sweep: the values of its keys and its validated scenario.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    /// `(key, value as written)`, in `--param` order.
    pub values: Vec<(String, String)>,
    /// The point's results directory, relative to the sweep directory.
    pub dir: String,
    /// The scenario with the values set, validated.
    pub scenario: Scenario,
}

impl SweepPoint {
    /// `key=value, key=value`, for messages.
    pub fn label(&self) -> String {
        label(&self.values)
    }
}

fn label(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every point of the grid `params` spans over the scenario `text` (read from `path`), each
/// edited and validated; the first key varies slowest.
pub fn plan(path: &Path, text: &str, params: &[SweepParam]) -> Result<Vec<SweepPoint>> {
    if params.is_empty() {
        return Err(SweepError::Param {
            param: String::new(),
            message: "a sweep needs at least one --param KEY=V1,V2,...".into(),
        });
    }
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.key == p.key) {
            return Err(SweepError::Param {
                param: format!("{}={}", p.key, p.values.join(",")),
                message: format!("`{}` is swept twice; give its values in one --param", p.key),
            });
        }
    }
    let mut grid: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for p in params {
        grid = grid
            .into_iter()
            .flat_map(|point| {
                p.values.iter().map(move |v| {
                    let mut point = point.clone();
                    point.push((p.key.clone(), v.clone()));
                    point
                })
            })
            .collect();
    }
    let mut dirs: Vec<String> = Vec::with_capacity(grid.len());
    grid.into_iter()
        .map(|values| {
            let mut edited = text.to_string();
            for (key, value) in &values {
                edited = set_key(path, &edited, key, value)?;
            }
            let scenario = Scenario::parse(path, &edited).map_err(|error| SweepError::Point {
                point: label(&values),
                error,
            })?;
            let base = slug(
                &values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            let mut dir = base.clone();
            let mut n = 2;
            while dirs.contains(&dir) {
                dir = format!("{base}-{n}");
                n += 1;
            }
            dirs.push(dir.clone());
            Ok(SweepPoint { values, dir, scenario })
        })
        .collect()
}

/// Options of `streamlab sweep`.
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// The sweep directory; `None`: `results/<scenario>-sweep-<UTC time>`.
    pub out: Option<PathBuf>,
    /// Replace an existing sweep directory.
    pub force: bool,
    /// Override the scenario's duration at every point.
    pub duration: Option<Span>,
    /// Override the scenario's seed at every point.
    pub seed: Option<u64>,
    /// Override the scenario's clock at every point.
    pub clock: Option<ClockKind>,
    /// Show progress on stderr: a bar on a terminal, a line per point otherwise.
    pub progress: bool,
}

/// One finished point, as `sweep.json` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PointResult {
    /// Key → value as written.
    pub values: BTreeMap<String, String>,
    /// The point's results directory, relative to the sweep directory.
    pub dir: String,
    /// The point's `summary.json`.
    pub summary: Summary,
}

/// `sweep.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    /// The scenario's name.
    pub scenario: String,
    /// The swept keys, in `--param` order.
    pub parameters: Vec<String>,
    /// The points run so far, in grid order.
    pub points: Vec<PointResult>,
}

/// A finished sweep.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The sweep directory.
    pub dir: PathBuf,
    /// What `sweep.json` holds.
    pub summary: SweepSummary,
}

/// Runs `scenario_path` at every point of the grid `params` spans, each into its own results
/// directory under the sweep directory, and writes `sweep.json` and `sweep.csv`. Every point is
/// validated before the first one runs.
pub fn run_sweep(scenario_path: &Path, params: &[SweepParam], opts: &SweepOptions) -> Result<SweepOutcome> {
    let text = fs::read_to_string(scenario_path).map_err(|source| ScenarioError::Io {
        path: scenario_path.to_path_buf(),
        source,
    })?;
    let base = Scenario::parse(scenario_path, &text)?;
    for p in params {
        let overridden = match p.key.as_str() {
            "duration" => opts.duration.is_some().then_some("--duration"),
            "seed" => opts.seed.is_some().then_some("--seed"),
            "clock" => opts.clock.is_some().then_some("--clock"),
            _ => None,
        };
        if let Some(option) = overridden {
            return Err(SweepError::Param {
                param: format!("{}={}", p.key, p.values.join(",")),
                message: format!("{option} overrides `{}` at every point; give one or the other", p.key),
            });
        }
    }
    let points = plan(scenario_path, &text, params)?;
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("{}-sweep-{}", slug(&base.name), utc_stamp())));
    prepare_sweep_dir(&dir, opts.force)?;

    let mut summary = SweepSummary {
        scenario: base.name.clone(),
        parameters: params.iter().map(|p| p.key.clone()).collect(),
        points: Vec::new(),
    };
    write_sweep_files(&dir, &summary)?;
    let runs: u64 = points.iter().map(|p| p.scenario.engines.len() as u64).sum();
    let progress = Progress::new(opts.progress, runs);
    for (i, point) in points.iter().enumerate() {
        let label = point.label();
        progress.point(i + 1, points.len(), &label);
        let run_opts = RunOptions {
            out: Some(SweepLayout::new(&dir).point(&point.dir)),
            force: false,
            duration: opts.duration,
            seed: opts.seed,
            clock: opts.clock,
            ..Default::default()
        };
        let mut started = 0;
        let outcome = run_scenario(&point.scenario, &run_opts, |engine| {
            if started > 0 {
                progress.engine_done();
            }
            started += 1;
            progress.engine(&label, &engine.name);
        })
        .map_err(|error| SweepError::Run {
            point: label.clone(),
            error,
        })?;
        if started > 0 {
            progress.engine_done();
        }
        summary.points.push(PointResult {
            values: point.values.iter().cloned().collect(),
            dir: point.dir.clone(),
            summary: outcome.summary,
        });
        write_sweep_files(&dir, &summary)?;
    }
    progress.finish();
    Ok(SweepOutcome { dir, summary })
}

/// Creates the sweep directory; an existing non-empty one is replaced only with `force`, and
/// only if it is a sweep directory (holds `sweep.json`).
fn prepare_sweep_dir(dir: &Path, force: bool) -> Result<()> {
    let io = |error| SweepError::Io {
        path: dir.to_path_buf(),
        error,
    };
    if dir.exists() {
        let empty = fs::read_dir(dir).map_err(io)?.next().is_none();
        if !empty {
            if !force {
                return Err(SweepError::Dir {
                    path: dir.to_path_buf(),
                    message: "already exists; pass --force to replace it, or --out to choose another directory".into(),
                });
            }
            if !SweepLayout::new(dir).sweep().is_file() {
                return Err(SweepError::Dir {
                    path: dir.to_path_buf(),
                    message:
                        "is not a streamlab sweep directory (no sweep.json); refusing to delete it even with --force"
                            .into(),
                });
            }
            fs::remove_dir_all(dir).map_err(io)?;
        }
    }
    fs::create_dir_all(dir).map_err(io)
}

fn write_sweep_files(dir: &Path, summary: &SweepSummary) -> Result<()> {
    let layout = SweepLayout::new(dir);
    let path = layout.sweep();
    let json = serde_json::to_string_pretty(summary).expect("a sweep summary serializes");
    fs::write(&path, json + "\n").map_err(|error| SweepError::Io { path, error })?;
    let path = layout.sweep_csv();
    fs::write(&path, sweep_csv(summary)).map_err(|error| SweepError::Io { path, error })
}

/// `sweep.csv`: one row per point and engine run.
pub fn sweep_csv(summary: &SweepSummary) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = summary.parameters.iter().map(|k| csv_field(k)).collect();
    header.extend(
        [
            "run",
            "model",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "throughput_eps",
            "falling_behind",
            "late_dropped",
        ]
        .map(String::from),
    );
    out.push_str(&header.join(","));
    out.push('\n');
    for point in &summary.points {
        for run in &point.summary.runs {
            let mut row: Vec<String> = summary
                .parameters
                .iter()
                .map(|k| csv_field(point.values.get(k).map_or("", String::as_str)))
                .collect();
            let l = &run.latency_ms;
            row.extend([
                csv_field(&run.name),
                csv_field(&run.model),
                format!("{:.3}", l.p50),
                format!("{:.3}", l.p95),
                format!("{:.3}", l.p99),
                format!("{:.3}", l.max),
                format!("{:.1}", run.throughput_eps),
                run.counts.falling_behind.to_string(),
                run.counts.late_dropped.to_string(),
            ]);
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Progress on stderr: an indicatif bar over all engine runs on a terminal, one line per
/// point otherwise (a log keeps it readable), nothing when disabled.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

impl Progress {
    fn new(enabled: bool, runs: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(runs);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs  {wide_msg}")
                    .expect("a valid progress template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            lines: enabled && !terminal,
        }
    }

    fn point(&self, i: usize, n: usize, label: &str) {
        if self.lines {
            eprintln!("[{i}/{n}] {label}");
        }
    }

    fn engine(&self, label: &str, engine: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{label}: `{engine}`"));
        }
    }

    fn engine_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A table of a sweep's results for the terminal: one row per point and engine run.
pub fn sweep_table(summary: &SweepSummary) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = summary.parameters.clone();
    header.extend(["run", "p50 (ms)", "p99 (ms)", "max (ms)", "events/s", "behind", "late"].map(String::from));
    rows.push(header);
    for point in &summary.points {
        for run in &point.summary.runs {
            let mut row: Vec<String> = summary
                .parameters
                .iter()
                .map(|k| point.values.get(k).cloned().unwrap_or_default())
                .collect();
            let l = &run.latency_ms;
            row.extend([
                run.name.clone(),
                format!("{:.1}", l.p50),
                format!("{:.1}", l.p99),
                format!("{:.1}", l.max),
                format!("{:.0}", run.throughput_eps),
                run.counts.falling_behind.to_string(),
                run.counts.late_dropped.to_string(),
            ]);
            rows.push(row);
        }
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let numeric_from = summary.parameters.len() + 1;
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c >= numeric_from {
                    format!("{cell:>w$}", w = widths[c])
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("interval", "intervall"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
