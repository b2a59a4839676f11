//! The results directory of a run: created (or refused) before the engines run, and filled
//! with everything but the sinks' records when they are done — the scenario as run,
//! `summary.json`, `progress.jsonl`, `timeline.csv`, the latency histograms, the late events
//! and the plots. The layout is [`ResultsLayout`]'s; the plots are drawn by
//! [`streamlab_reports::figures`].

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use streamlab_engines::latency::TIMELINE_BUCKET;
use streamlab_engines::run::EngineRun;
use streamlab_engines::time::{as_ms, NANOS_PER_MS};
use streamlab_reports::layout::{slug, ResultsLayout};
use streamlab_reports::results_dir::TimelineRow;
use streamlab_reports::summary::Summary;

use crate::engine::EngineSpec;
use crate::error_run::{Result, RunError};
use crate::sink::create;
use crate::spec::Scenario;

/// Where a run's results go, as `streamlab run` was asked.
#[derive(Clone, Copy, Debug)]
pub struct ResultsDirRequest<'a> {
    /// `--out`; `None`: `results/<scenario>-<UTC time>`.
    pub out: Option<&'a Path>,
    /// `--force`: replace an existing results directory.
    pub force: bool,
    /// `--resume`: continue the run in `out`.
    pub resume: bool,
}

/// The results directory of a run: `--out`, or `results/<scenario>-<UTC time>`; an existing
/// non-empty directory is replaced only with `--force`, and only if it is a results directory.
pub fn prepare_results_dir(scenario: &Scenario, opts: ResultsDirRequest<'_>) -> Result<PathBuf> {
    let dir = match opts.out {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(streamlab_reports::layout::DEFAULT_ROOT).join(format!(
            "{}-{}",
            slug(&scenario.name),
            utc_stamp()
        )),
    };
    let io = |e| RunError::Io {
        path: dir.clone(),
        source: e,
    };
    if opts.resume {
        if !ResultsLayout::new(&dir).checkpoints().is_dir() {
            return Err(RunError::ResultsDir {
                path: dir,
                message: "has no checkpoints/ directory: --resume continues a run from the results directory it wrote"
                    .into(),
            });
        }
        return Ok(dir);
    }
    if dir.exists() {
        let empty = fs::read_dir(&dir).map_err(io)?.next().is_none();
        if !empty {
            if !opts.force {
                return Err(RunError::ResultsDir {
                    path: dir,
                    message: "already exists; pass --force to replace it, or --out to choose another directory".into(),
                });
            }
            if !ResultsLayout::new(&dir).summary().is_file() {
                return Err(RunError::ResultsDir {
                    path: dir,
                    message: "is not a streamlab results directory (no summary.json); refusing to delete it even with --force".into(),
                });
            }
            fs::remove_dir_all(&dir).map_err(io)?;
        }
    }
    fs::create_dir_all(&dir).map_err(io)?;
    Ok(dir)
}

/// The current UTC time as `YYYYMMDD-hhmmss`, for default results directory names.
pub fn utc_stamp() -> String {
    let (y, m, d, hh, mm, ss) = utc_civil();
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// The current UTC time as RFC 3339 to the second (`2026-12-07T04:05:06Z`).
pub fn utc_now() -> String {
    let (y, m, d, hh, mm, ss) = utc_civil();
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Now, UTC: year, month, day, hour, minute, second.
fn utc_civil() -> (i64, i64, i64, u64, u64, u64) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Writes every result file but the sinks' records (written while the engines run).
pub fn write_results(
    dir: &Path,
    scenario: &Scenario,
    summary: &Summary,
    runs: &[(&EngineSpec, EngineRun)],
) -> Result<()> {
    let layout = ResultsLayout::new(dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| RunError::Io { path, source: e }
    };
    let path = layout.scenario();
    fs::write(&path, &scenario.source_text).map_err(io(&path))?;
    summary.write_json(&layout.summary())?;

    let path = layout.progress();
    let mut w = create(&path)?;
    for (_, run) in runs {
        for p in &run.progress {
            writeln!(w, "{p}").map_err(io(&path))?;
        }
    }
    w.flush().map_err(io(&path))?;

    let path = layout.timeline();
    let mut w = create(&path)?;
    writeln!(w, "run,time_s,outputs,mean_latency_ms,max_latency_ms").map_err(io(&path))?;
    let mut timeline = Vec::new();
    for (spec, run) in runs {
        for (i, b) in run.latency.timeline.iter().enumerate().filter(|(_, b)| b.count > 0) {
            let t = (i as u64 * TIMELINE_BUCKET) as f64 / 1e9;
            let mean = b.sum as f64 / b.count as f64 / NANOS_PER_MS as f64;
            writeln!(w, "{},{t:.1},{},{mean:.3},{:.3}", spec.name, b.count, as_ms(b.max)).map_err(io(&path))?;
            timeline.push(TimelineRow {
                run: spec.name.clone(),
                time_s: t,
                max_latency_ms: as_ms(b.max),
            });
        }
    }
    w.flush().map_err(io(&path))?;

    for (spec, run) in runs {
        streamlab_reports::hgrm::write_hgrm_file(&layout.latency_hgrm(&spec.name), &run.latency.total, 1e6)?;
        if scenario.pipeline.is_stateful() {
            streamlab_reports::hgrm::write_hgrm_file(
                &layout.event_time_latency_hgrm(&spec.name),
                &run.latency.event_time,
                1e6,
            )?;
        }
        if !run.side_output.is_empty() {
            let path = layout.late(&spec.name);
            let mut w = create(&path)?;
            writeln!(w, "seq,event_time_ms,arrival_ms,kind").map_err(io(&path))?;
            for r in &run.side_output {
                let e = &r.event;
                writeln!(
                    w,
                    "{},{},{:.3},{}",
                    e.seq,
                    e.event_time,
                    as_ms(e.arrival),
                    e.kind.name()
                )
                .map_err(io(&path))?;
            }
            w.flush().map_err(io(&path))?;
        }
    }

    let histograms: Vec<(String, &hdrhistogram::Histogram<u64>)> = runs
        .iter()
        .map(|(spec, run)| (spec.name.clone(), &run.latency.total))
        .collect();
    streamlab_reports::figures::write_run_plots(&layout, &scenario.name, &summary.runs, &histograms, &timeline)?;
    Ok(())
}
