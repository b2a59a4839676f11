//! Reading what `streamlab run` (and `streamlab sweep`) leave behind, for the report.
//!
//! A results directory holds `summary.json` (required), and optionally `scenario.toml`,
//! `progress.jsonl`, `timeline.csv` and `latency-<run>.hgrm`; a sweep directory holds
//! `sweep.json` and one results directory per point. Optional files that are absent give
//! empty series (the plots say "no data"); files that are present but malformed are errors
//! naming the file and line, never silently skipped. Where each file is, is
//! [`crate::layout`]'s to say; `summary.json` is read with the [`crate::summary`] types that
//! write it (its runs' failures and recovery included).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::layout::{ResultsLayout, SweepLayout};
use crate::plot::{BatchBar, CheckpointPoint, PHASES};
use crate::summary::Summary;

/// Points of a time series: (processing time s, value).
pub type Series = Vec<(f64, f64)>;

/// One line of `timeline.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The run.
    pub run: String,
    /// Start of the 100 ms bucket, seconds since the run started.
    pub time_s: f64,
    /// Largest latency delivered in the bucket, ms.
    pub max_latency_ms: f64,
}

/// One results directory, read.
#[derive(Debug, Clone)]
pub struct ResultsDir {
    /// Where it was read from.
    pub path: PathBuf,
    /// `summary.json` (each run's failures and recovery included).
    pub summary: Summary,
    /// `scenario.toml`, parsed; empty when absent.
    pub scenario: toml::Table,
    /// `progress.jsonl`, one value per line; empty when absent.
    pub progress: Vec<Value>,
    /// `timeline.csv`; empty when absent.
    pub timeline: Vec<TimelineRow>,
    /// Per run name, the latency CDF from `latency-<run>.hgrm` as (ms, percentile %).
    pub cdf: BTreeMap<String, Vec<(f64, f64)>>,
}

/// The file-name form of a run name (see [`crate::layout::slug`]).
pub use crate::layout::slug;

fn input_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads `path` to a string; `Ok(None)` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl ResultsDir {
    /// Reads the results directory at `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let layout = ResultsLayout::new(dir);
        let summary_path = layout.summary();
        let text = read_optional(&summary_path)?.ok_or_else(|| {
            input_error(
                dir,
                "not a results directory: it has no summary.json (expected the output of `streamlab run` or `streamlab sweep`)",
            )
        })?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| input_error(&summary_path, e.to_string()))?;
        let summary: Summary = serde_json::from_value(raw)
            .map_err(|e| input_error(&summary_path, format!("not a streamlab summary: {e}")))?;

        let scenario_path = layout.scenario();
        let scenario = match read_optional(&scenario_path)? {
            Some(text) => text
                .parse::<toml::Table>()
                .map_err(|e| input_error(&scenario_path, e.to_string()))?,
            None => toml::Table::new(),
        };

        let progress_path = layout.progress();
        let progress = read_optional(&progress_path)?
            .unwrap_or_default()
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| input_error(&progress_path, format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<Value>>>()?;

        let timeline_path = layout.timeline();
        let timeline = parse_timeline(&timeline_path, &read_optional(&timeline_path)?.unwrap_or_default())?;

        let mut cdf = BTreeMap::new();
        for run in &summary.runs {
            let path = layout.latency_hgrm(&run.name);
            if let Some(text) = read_optional(&path)? {
                cdf.insert(run.name.clone(), parse_hgrm(&path, &text)?);
            }
        }
        Ok(Self {
            path: dir.to_path_buf(),
            summary,
            scenario,
            progress,
            timeline,
            cdf,
        })
    }

    /// The micro-batches of run `run`, from `progress.jsonl`.
    pub fn batches(&self, run: &str) -> Vec<BatchBar> {
        self.batch_lines(run)
            .map(|p| BatchBar {
                batch_id: p["batchId"].as_u64().unwrap_or(0),
                trigger_s: p["triggerTimeMs"].as_f64().or(p["timestamp"].as_f64()).unwrap_or(0.0) / 1000.0,
                start_s: p["timestamp"].as_f64().unwrap_or(0.0) / 1000.0,
                phases: PHASES
                    .iter()
                    .filter_map(|&phase| p["durationMs"][phase].as_f64().map(|ms| (phase.to_string(), ms)))
                    .collect(),
                falling_behind: p["fallingBehind"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    fn batch_lines<'a>(&'a self, run: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.progress
            .iter()
            .filter(move |p| p["run"] == run && p.get("batchId").is_some())
    }

    fn typed_lines<'a>(&'a self, run: &'a str, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.progress
            .iter()
            .filter(move |p| p["run"] == run && p["type"] == kind)
    }

    /// Run `run`'s watermark over processing time and, for micro-batch runs, the largest event
    /// time seen so far: ((s, event time s) points, (s, max event time s) points).
    ///
    /// A micro-batch run's watermark is each batch's `eventTime.watermark` at the batch start.
    /// A per-record run's is the minimum over its source subtasks of their latest watermark,
    /// from the moment every subtask has emitted one (as a downstream operator sees it).
    pub fn watermarks(&self, run: &str) -> (Series, Series) {
        let mut watermark = Vec::new();
        let mut max_event = Vec::new();
        let mut seen = f64::NEG_INFINITY;
        for p in self.batch_lines(run) {
            let t = p["timestamp"].as_f64().unwrap_or(0.0) / 1000.0;
            if let Some(w) = p["eventTime"]["watermark"].as_f64() {
                watermark.push((t, w / 1000.0));
            }
            if let Some(m) = p["eventTime"]["max"]
                .as_f64()
                .filter(|_| p["numInputRows"].as_u64().unwrap_or(0) > 0)
            {
                seen = seen.max(m / 1000.0);
            }
            if seen.is_finite() {
                max_event.push((t, seen));
            }
        }
        let subtasks: std::collections::BTreeSet<u64> = self
            .typed_lines(run, "watermark")
            .filter_map(|p| p["subtask"].as_u64())
            .collect();
        let mut latest: BTreeMap<u64, f64> = BTreeMap::new();
        for p in self.typed_lines(run, "watermark") {
            let (Some(subtask), Some(t), Some(w)) =
                (p["subtask"].as_u64(), p["timeMs"].as_f64(), p["watermark"].as_f64())
            else {
                continue;
            };
            latest.insert(subtask, w);
            if latest.len() == subtasks.len() {
                let min = latest.values().copied().fold(f64::INFINITY, f64::min);
                watermark.push((t / 1000.0, min / 1000.0));
            }
        }
        (watermark, max_event)
    }

    /// Run `run`'s checkpoints: per-record `type = "checkpoint"` lines, and micro-batches that
    /// report `checkpointBytes` (their duration is the offset-log and commit-log writes).
    pub fn checkpoints(&self, run: &str) -> Vec<CheckpointPoint> {
        let mut points: Vec<CheckpointPoint> = self
            .typed_lines(run, "checkpoint")
            .map(|p| CheckpointPoint {
                time_s: p["completedTimeMs"]
                    .as_f64()
                    .or(p["triggerTimeMs"].as_f64())
                    .unwrap_or(0.0)
                    / 1000.0,
                bytes: p["bytes"].as_f64().unwrap_or(0.0),
                state_bytes: p["stateBytes"].as_f64(),
                duration_ms: p["durationMs"].as_f64(),
            })
            .collect();
        points.extend(self.batch_lines(run).filter_map(|p| {
            let bytes = p["checkpointBytes"].as_f64()?;
            let d = &p["durationMs"];
            let state: Option<f64> = p["stateOperators"]
                .as_array()
                .filter(|ops| !ops.is_empty())
                .map(|ops| ops.iter().filter_map(|op| op["memoryUsedBytes"].as_f64()).sum());
            Some(CheckpointPoint {
                time_s: (p["timestamp"].as_f64().unwrap_or(0.0) + d["triggerExecution"].as_f64().unwrap_or(0.0))
                    / 1000.0,
                bytes,
                state_bytes: state,
                duration_ms: Some(d["walCommit"].as_f64().unwrap_or(0.0) + d["commitOffsets"].as_f64().unwrap_or(0.0)),
            })
        }));
        points.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
        points
    }
}

/// Parses `timeline.csv` (`run,time_s,outputs,mean_latency_ms,max_latency_ms`); the run name
/// is everything before the last four fields, so it may contain commas.
fn parse_timeline(path: &Path, text: &str) -> Result<Vec<TimelineRow>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.rsplitn(5, ',').collect();
        let bad = || {
            input_error(
                path,
                format!(
                    "line {}: expected run,time_s,outputs,mean_latency_ms,max_latency_ms",
                    i + 1
                ),
            )
        };
        if fields.len() != 5 {
            return Err(bad());
        }
        rows.push(TimelineRow {
            run: fields[4].to_string(),
            time_s: fields[3].trim().parse().map_err(|_| bad())?,
            max_latency_ms: fields[0].trim().parse().map_err(|_| bad())?,
        });
    }
    Ok(rows)
}

/// Parses the rows of an `.hgrm` percentile distribution into (value, percentile %) points.
pub fn parse_hgrm(path: &Path, text: &str) -> Result<Vec<(f64, f64)>> {
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(value), Some(percentile)) = (fields.next(), fields.next()) else {
            return Err(input_error(
                path,
                format!("line {}: expected `value percentile count ...`", i + 1),
            ));
        };
        let parse = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| input_error(path, format!("line {}: `{s}` is not a number", i + 1)))
        };
        points.push((parse(value)?, parse(percentile)? * 100.0));
    }
    Ok(points)
}

/// A sweep directory's `sweep.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepFile {
    /// The points, in the order they ran.
    pub points: Vec<SweepFilePoint>,
}

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SweepFilePoint {
    /// The swept keys and their values as written (`"100ms"`, `"5000"`).
    pub values: BTreeMap<String, Value>,
    /// The point's results directory, relative to the sweep directory.
    pub dir: String,
}

/// Reads `dir/sweep.json`, if there is one.
pub fn read_sweep_file(dir: &Path) -> Result<Option<SweepFile>> {
    let path = SweepLayout::new(dir).sweep();
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| input_error(&path, format!("not a streamlab sweep file: {e}")))
}

/// A value as written in a scenario (`"100ms"`, `"1.5s"`, `20000`) as a number: durations in
/// milliseconds, plain numbers as they are. `None` when it is neither.
pub fn numeric_value(text: &str) -> Option<(f64, bool)> {
    let text = text.trim().trim_matches('"');
    if let Ok(x) = text.parse::<f64>() {
        return Some((x, false));
    }
    parse_duration_ms(text).map(|ms| (ms, true))
}

/// Parses a duration as scenarios write them (`"2s"`, `"100ms"`, `"250us"`, `"1m"`, `"0"`)
/// into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    if text == "0" {
        return Some(0.0);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let ms_per_unit = match unit.trim() {
        "ns" => 1e-6,
        "us" | "µs" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(number * ms_per_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_numbers_parse_to_milliseconds() {
        assert_eq!(parse_duration_ms("2s"), Some(2000.0));
        assert_eq!(parse_duration_ms("100ms"), Some(100.0));
        assert_eq!(parse_duration_ms("250us"), Some(0.25));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500.0));
        assert_eq!(parse_duration_ms("0"), Some(0.0));
        assert_eq!(parse_duration_ms("fast"), None);
        assert_eq!(numeric_value("20000"), Some((20000.0, false)));
        assert_eq!(numeric_value("\"1s\""), Some((1000.0, true)));
    }

    #[test]
    fn slug_matches_the_run_file_names() {
        assert_eq!(slug("micro-batch 1s"), "micro-batch-1s");
        assert_eq!(slug("2 s per batch"), "2-s-per-batch");
    }

    #[test]
    fn timeline_run_names_may_contain_commas() {
        let rows = parse_timeline(Path::new("t.csv"), "run,time_s,outputs,mean,max\na, b,1.5,3,2.0,4.25\n").unwrap();
        assert_eq!(rows[0].run, "a, b");
        assert_eq!(rows[0].time_s, 1.5);
        assert_eq!(rows[0].max_latency_ms, 4.25);
        let err = parse_timeline(Path::new("t.csv"), "header\nbroken\n").unwrap_err();
        assert!(err.to_string().contains("t.csv: line 2"), "{err}");
    }

    #[test]
    fn missing_summary_is_a_clear_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ResultsDir::read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a results directory"), "{err}");
    }
}
