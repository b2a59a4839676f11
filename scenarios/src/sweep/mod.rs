//! Parameter sweeps: one scenario run at every point of a grid of values of its keys.
//!
//! `streamlab sweep SCENARIO --param KEY=V1,V2,...` names a key by its dotted path, as the
//! scenario reader's error messages do: `duration`, `workload.rate.events_per_second`,
//! `pipeline.aggregate.window.size`, `engine[0].trigger.interval`. An engine key without an
//! index (`engine.buffer_timeout`, or `engine[*].buffer_timeout`) means every engine whose
//! model has that key. Several `--param` make a grid: their cartesian product, first key
//! outermost. Each point is the scenario text with the values set (`edit`), read by
//! the scenario reader like a file of its own; `output` tabulates the results.
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

mod edit;
mod output;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use streamlab_engines::time::Span;
use streamlab_reports::layout::{slug, SweepLayout};
use streamlab_reports::summary::Summary;

use crate::error::ScenarioError;
use crate::error_run::RunError;
use crate::keypath::KeyPath;
use crate::results::utc_stamp;
use crate::runner::{run_scenario, RunOptions};
use crate::spec::{ClockKind, Scenario};
pub use edit::set_key;
use output::Progress;
pub use output::{sweep_csv, sweep_table};

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
        Self::from_parts(key, values.split(',').map(|v| v.trim().to_string()).collect()).map_err(|e| match e {
            SweepError::Param { message, .. } => err(&message),
            other => other,
        })
    }
}

impl SweepParam {
    /// A key and its values, checked as `--param` checks them: the key a valid dotted path,
    /// no value empty. Used for `--param` and for a scenario's `[sweep]` table.
    pub fn from_parts(key: &str, values: Vec<String>) -> Result<Self> {
        let err = |message: &str| SweepError::Param {
            param: format!("{key}={}", values.join(",")),
            message: message.to_string(),
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(err("the key is empty; expected KEY=V1,V2,..."));
        }
        KeyPath::parse(key).map_err(|m| err(&m))?;
        if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
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

/// What a sweep varies: the scenario's `[sweep]` table, with each `--param` replacing the
/// values of the same key or adding a key after them.
///
/// # Examples
/// ```
/// use streamlab_scenarios::sweep::{merge_params, SweepParam};
///
/// let declared: Vec<SweepParam> = vec!["duration=1s,2s".parse().unwrap(), "seed=1,2".parse().unwrap()];
/// let given: Vec<SweepParam> = vec!["seed=7".parse().unwrap(), "drain=1s,3s".parse().unwrap()];
/// let merged = merge_params(&declared, &given);
/// let keys: Vec<&str> = merged.iter().map(|p| p.key.as_str()).collect();
/// assert_eq!(keys, ["duration", "seed", "drain"]);
/// assert_eq!(merged[1].values, ["7"]);
/// ```
pub fn merge_params(declared: &[SweepParam], given: &[SweepParam]) -> Vec<SweepParam> {
    let mut merged = declared.to_vec();
    for p in given {
        match merged.iter_mut().find(|q| q.key == p.key) {
            Some(q) => q.values = p.values.clone(),
            None => merged.push(p.clone()),
        }
    }
    merged
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
            message: "nothing to sweep: the scenario has no [sweep] table; give --param KEY=V1,V2,... \
                      or declare the values in the scenario, e.g. [sweep] \"engine[0].trigger.interval\" = [\"100ms\", \"1s\"]"
                .into(),
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

/// Runs `scenario_path` at every point of the grid its `[sweep]` table and `params` span
/// ([`merge_params`]), each into its own results directory under the sweep directory, and
/// writes `sweep.json` and `sweep.csv`. Every point is validated before the first one runs.
pub fn run_sweep(scenario_path: &Path, params: &[SweepParam], opts: &SweepOptions) -> Result<SweepOutcome> {
    let text = fs::read_to_string(scenario_path).map_err(|source| ScenarioError::Io {
        path: scenario_path.to_path_buf(),
        source,
    })?;
    let base = Scenario::parse(scenario_path, &text)?;
    let params = &merge_params(&base.sweep, params)[..];
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
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from(streamlab_reports::layout::DEFAULT_ROOT).join(format!(
            "{}-sweep-{}",
            slug(&base.name),
            utc_stamp()
        ))
    });
    prepare_sweep_dir(&dir, opts.force)?;

    let mut summary = SweepSummary {
        scenario: base.name.clone(),
        parameters: params.iter().map(|p| p.key.clone()).collect(),
        points: Vec::new(),
    };
    write_sweep_files(&dir, &summary)?;
    // Each point's measurement rounds (`repeat`) are engine runs too, on the live clock.
    let runs: u64 = points
        .iter()
        .map(|p| {
            let live = opts.clock.unwrap_or(p.scenario.clock) == crate::spec::ClockKind::Live;
            p.scenario.engine_runs(live) as u64
        })
        .sum();
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
