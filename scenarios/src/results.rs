//! The results directory of a run and what goes into it.
//!
//! Layout (documented in the README): `summary.json`, `progress.jsonl`, `latency-<run>.hgrm`
//! (and `event-time-latency-<run>.hgrm` for windowed pipelines), `sink-<run>.csv` (written as
//! the engine delivers, so long runs do not hold their outputs in memory), `late-<run>.csv`
//! (side output), `timeline.csv`, `latency-cdf.svg`, `latency-over-time.svg` and
//! `scenario.toml` (the scenario as run).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use streamlab_engines::latency::{Component, TIMELINE_BUCKET};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{field_value, Field, PipelineSpec};
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::time::{as_ms, Span, NANOS_PER_MS};
use streamlab_reports::plot::{latency_cdf, latency_over_time_with_failures, TimeSeries};
use streamlab_reports::summary::{Counts, LatencySummary, Resources, RunSummary, Summary};

use crate::error_run::{Result, RunError};
use crate::execute::ClockSetup;
use crate::runner::RunOptions;
use crate::spec::{EngineKind, EngineSpec, Scenario};

/// A file-name-safe form of a run name (the one the report reader expects too).
pub use streamlab_reports::results_dir::slug;

/// The results directory of a run: `--out`, or `results/<scenario>-<UTC time>`; an existing
/// non-empty directory is replaced only with `--force`, and only if it is a results directory.
pub fn prepare_results_dir(scenario: &Scenario, opts: &RunOptions) -> Result<PathBuf> {
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => PathBuf::from("results").join(format!("{}-{}", slug(&scenario.name), utc_stamp())),
    };
    let io = |e| RunError::Io {
        path: dir.clone(),
        source: e,
    };
    if opts.resume {
        if !dir.join("checkpoints").is_dir() {
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
            if !dir.join("summary.json").is_file() {
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
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The cores an engine run used, its throughput per core, and its resident memory.
fn resources(spec: &EngineSpec, run: &EngineRun, clock: &ClockSetup) -> Resources {
    let configured = match &spec.kind {
        EngineKind::MicroBatch(c) => c.workers,
        EngineKind::PerRecord(c) => c.parallelism,
    };
    let cores = match clock {
        ClockSetup::Live => configured.min(std::thread::available_parallelism().map_or(1, |n| n.get())),
        ClockSetup::Simulated { .. } => configured,
    }
    .max(1);
    Resources {
        cores,
        throughput_eps_per_core: run.throughput_eps() / cores as f64,
        start_rss_bytes: run.resident.map(|(start, _, _)| start),
        peak_rss_bytes: run.resident.map(|(_, peak, _)| peak),
        final_rss_bytes: run.resident.map(|(_, _, last)| last),
    }
}

/// The `summary.json` of a run.
pub fn summarize(
    scenario: &Scenario,
    seed: u64,
    duration: Span,
    events: u64,
    clock: &ClockSetup,
    runs: &[(&EngineSpec, EngineRun)],
) -> Summary {
    let mut modelled = Vec::new();
    let runs = runs
        .iter()
        .map(|(spec, run)| {
            let components_ms: BTreeMap<String, f64> = run
                .latency
                .reported
                .iter()
                .filter(|&&c| match c {
                    Component::WatermarkWait => scenario.pipeline.is_stateful(),
                    Component::CacheWait => {
                        matches!(&spec.kind, EngineKind::PerRecord(c) if c.commit_interval.is_some())
                    }
                    _ => true,
                })
                .map(|&c: &Component| {
                    (
                        c.name().to_string(),
                        run.latency.component_mean(c) / NANOS_PER_MS as f64,
                    )
                })
                .collect();
            let config = match &spec.kind {
                EngineKind::MicroBatch(c) => serde_json::to_value(c),
                EngineKind::PerRecord(c) => serde_json::to_value(c),
            }
            .expect("engine config serializes");
            let mut notes = run.modelled.clone();
            modelled.extend(run.modelled.iter().map(|m| format!("{}: {m}", spec.name)));
            notes.extend(stability_notes(spec, run, events, duration));
            RunSummary {
                name: spec.name.clone(),
                model: spec.model().to_string(),
                config,
                latency_ms: LatencySummary::from_histogram(&run.latency.total),
                event_time_latency_ms: scenario
                    .pipeline
                    .is_stateful()
                    .then(|| LatencySummary::from_histogram(&run.latency.event_time)),
                components_ms,
                throughput_eps: run.throughput_eps(),
                resources: resources(spec, run, clock),
                counts: Counts {
                    events: run.counts.events,
                    outputs: run.counts.outputs,
                    batches: run.counts.batches,
                    falling_behind: run.counts.falling_behind,
                    late_dropped: run.counts.late_dropped,
                    state_accesses: run.counts.state_accesses,
                    state_access_time_ns: run.counts.state_access_ns,
                },
                notes,
                failures: Vec::new(),
                recovery: None,
            }
        })
        .collect();
    let measured = match clock {
        ClockSetup::Live => vec![
            "latency of every output, from its scheduled arrival to delivery, on the wall clock".into(),
            "batch phase durations and per-record stage timestamps, on the wall clock".into(),
            "throughput: events read per second of the run".into(),
        ],
        ClockSetup::Simulated { .. } => {
            vec!["outputs: computed by the engines' real operator code (identical to a live run's)".into()]
        }
    };
    if let ClockSetup::Simulated { profile, cluster } = clock {
        modelled.insert(
            0,
            format!(
                "all durations: virtual time priced by cost profile `{}` ({}) on {} node(s) x {} core(s)",
                profile.name, profile.description, cluster.nodes, cluster.cores_per_node
            ),
        );
    }
    Summary {
        schema_version: streamlab_reports::summary::SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        seed,
        clock: clock.name().into(),
        duration_s: duration.nanos() as f64 / 1e9,
        measured,
        modelled,
        runs,
    }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    File::create(path).map(BufWriter::new).map_err(|e| RunError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Writes every result file but the sinks' records (written while the engines run).
pub fn write_results(
    dir: &Path,
    scenario: &Scenario,
    summary: &Summary,
    runs: &[(&EngineSpec, EngineRun)],
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| RunError::Io { path, source: e }
    };
    let path = dir.join("scenario.toml");
    fs::write(&path, &scenario.source_text).map_err(io(&path))?;
    summary.write_json(&dir.join("summary.json"))?;

    let path = dir.join("progress.jsonl");
    let mut w = create(&path)?;
    for (_, run) in runs {
        for p in &run.progress {
            writeln!(w, "{p}").map_err(io(&path))?;
        }
    }
    w.flush().map_err(io(&path))?;

    let path = dir.join("timeline.csv");
    let mut w = create(&path)?;
    writeln!(w, "run,time_s,outputs,mean_latency_ms,max_latency_ms").map_err(io(&path))?;
    let mut over_time = Vec::new();
    for (spec, run) in runs {
        let mut points = Vec::new();
        for (i, b) in run.latency.timeline.iter().enumerate().filter(|(_, b)| b.count > 0) {
            let t = (i as u64 * TIMELINE_BUCKET) as f64 / 1e9;
            let mean = b.sum as f64 / b.count as f64 / NANOS_PER_MS as f64;
            writeln!(w, "{},{t:.1},{},{mean:.3},{:.3}", spec.name, b.count, as_ms(b.max)).map_err(io(&path))?;
            points.push((t, as_ms(b.max)));
        }
        over_time.push(TimeSeries {
            name: format!("{} (max per 100 ms)", spec.name),
            points,
        });
    }
    w.flush().map_err(io(&path))?;

    for (spec, run) in runs {
        let slug = slug(&spec.name);
        streamlab_reports::hgrm::write_hgrm_file(&dir.join(format!("latency-{slug}.hgrm")), &run.latency.total, 1e6)?;
        if scenario.pipeline.is_stateful() {
            streamlab_reports::hgrm::write_hgrm_file(
                &dir.join(format!("event-time-latency-{slug}.hgrm")),
                &run.latency.event_time,
                1e6,
            )?;
        }
        if !run.side_output.is_empty() {
            let path = dir.join(format!("late-{slug}.csv"));
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

    let cdf: Vec<(String, &hdrhistogram::Histogram<u64>)> = runs
        .iter()
        .map(|(spec, run)| (spec.name.clone(), &run.latency.total))
        .collect();
    latency_cdf(
        &dir.join("latency-cdf.svg"),
        &format!("{}: latency distribution", scenario.name),
        &cdf,
    )?;
    // Failures as declared or as the engines met them (the same instants for every run).
    let mut marks: Vec<streamlab_reports::plot::FailureMark> = Vec::new();
    for run in &summary.runs {
        for f in &run.failures {
            let at_s = f.at_ms / 1e3;
            if marks.iter().any(|m| m.at_s == at_s && m.label.starts_with(&f.kind)) {
                continue; // the same failure struck every run: mark it once
            }
            let label = if summary
                .runs
                .iter()
                .all(|r| r.failures.iter().any(|g| g.at_ms == f.at_ms))
            {
                f.kind.clone()
            } else {
                format!("{} ({})", f.kind, run.name)
            };
            marks.push(streamlab_reports::plot::FailureMark {
                label,
                at_s,
                recovered_s: f.recovered_ms.map(|r| r / 1e3),
            });
        }
    }
    latency_over_time_with_failures(
        &dir.join("latency-over-time.svg"),
        &format!("{}: latency over time", scenario.name),
        &over_time,
        &marks,
    )?;
    Ok(())
}

/// Writes a sink's records as CSV while the engine delivers them: the projected columns of a
/// stateless pipeline, or the window results of a stateful one, each with its delivery time
/// and latency.
pub struct SinkCsv {
    path: PathBuf,
    out: BufWriter<File>,
    project: Vec<Field>,
}

impl SinkCsv {
    /// Creates the file and writes its header.
    pub fn create(path: &Path, pipeline: &PipelineSpec) -> Result<Self> {
        let mut out = create(path)?;
        let header = Self::header(pipeline);
        writeln!(out, "{header}").map_err(|e| RunError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            project: pipeline.project.clone(),
        })
    }

    /// The CSV header of a pipeline's sink records.
    pub fn header(pipeline: &PipelineSpec) -> String {
        if pipeline.is_stateful() {
            "delivered_ms,key,window_start_ms,window_end_ms,count,value,is_update,latency_ms".to_string()
        } else {
            let cols: Vec<&str> = pipeline.project.iter().map(|f| f.name()).collect();
            format!("delivered_ms,{},latency_ms", cols.join(","))
        }
    }

    /// Appends records.
    pub fn write(&mut self, delivered: &[Delivered]) -> Result<()> {
        Self::rows(&mut self.out, &self.project, delivered).map_err(|e| RunError::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Writes records as CSV rows (no header) for a sink projecting `project`.
    pub fn rows(w: &mut impl Write, project: &[Field], delivered: &[Delivered]) -> std::io::Result<()> {
        for d in delivered {
            match &d.output {
                Output::Row(r) => {
                    write!(w, "{:.3}", as_ms(d.at))?;
                    for &f in project {
                        if f == Field::Kind {
                            write!(w, ",{}", r.event.kind.name())?;
                        } else {
                            write!(w, ",{}", field_value(&r.event, r.campaign, f))?;
                        }
                    }
                    writeln!(w, ",{:.3}", as_ms(d.at.saturating_sub(r.lineage.arrival)))?;
                }
                Output::Window(r) => writeln!(
                    w,
                    "{:.3},{},{},{},{},{},{},{:.3}",
                    as_ms(d.at),
                    r.key,
                    r.start,
                    r.end,
                    r.count,
                    r.value,
                    r.is_update,
                    as_ms(d.at.saturating_sub(r.origin.arrival))
                )?,
            }
        }
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| RunError::Io {
            path: self.path.clone(),
            source: e,
        })
    }
}

/// What a reader must know about whether a run kept up: falling-behind batches, Spark's
/// stability condition (processing time ≤ trigger interval), backlog growth, unread events and
/// a latency that keeps growing.
fn stability_notes(spec: &EngineSpec, run: &EngineRun, events: u64, duration: Span) -> Vec<String> {
    let mut notes = Vec::new();
    if let EngineKind::MicroBatch(cfg) = &spec.kind {
        if run.counts.falling_behind > 0 {
            notes.push(format!(
                "{} of {} batches took longer than the trigger interval (falling behind)",
                run.counts.falling_behind, run.counts.batches
            ));
        }
        let data_batches: Vec<(f64, u64)> = run
            .progress
            .iter()
            .filter_map(|p| {
                Some((
                    p["durationMs"]["triggerExecution"].as_f64()?,
                    p["numInputRows"].as_u64()?,
                ))
            })
            .filter(|(_, rows)| *rows > 0)
            .collect();
        // The very first batch starts with the run and sees only what arrived at that instant.
        let data_batches = if data_batches.len() > 2 {
            &data_batches[1..]
        } else {
            &data_batches[..]
        };
        if let (Some(_), Some(first), Some(last)) = (cfg.interval(), data_batches.first(), data_batches.last()) {
            let mean = data_batches.iter().map(|(d, _)| d).sum::<f64>() / data_batches.len() as f64;
            notes.extend(cfg.trigger.stability_note(mean));
            if last.1 > first.1 * 3 / 2 && run.counts.falling_behind > 0 {
                notes.push(format!(
                    "backlog growth: batches read {} events at first and {} in the last batch",
                    first.1, last.1
                ));
            }
        }
    }
    if events > run.counts.events + 1 {
        notes.push(format!(
            "{} events were still unread when the run ended",
            events - run.counts.events
        ));
    }
    if let Err(why) = crate::capacity::stability(run, run.counts.events, duration.nanos()) {
        notes.push(format!("latency does not stay bounded: {why}"));
    }
    notes
}

/// The durable sink: each batch's output (micro-batch) or each committed transaction
/// (per-record, exactly-once) goes to its own file, `sink-<run>.parts/<id>.csv`, written under a
/// temporary name and renamed — so a batch replayed after a crash replaces its file instead of
/// appending twice (Spark's file sink writes one file set per batch the same way).
/// [`assemble_parts`] joins them into `sink-<run>.csv` at the end of the run. This is the
/// directory of those files.
pub fn parts_dir(dir: &Path, run: &str) -> PathBuf {
    dir.join(format!("sink-{}.parts", slug(run)))
}

/// Writes each committed transaction (or batch) of a run to its own file under [`parts_dir`].
pub fn part_writer(
    dir: &Path,
    run: &str,
    pipeline: &PipelineSpec,
) -> impl FnMut(u64, &[Delivered]) -> std::io::Result<()> + Send + 'static {
    let parts = parts_dir(dir, run);
    let project = pipeline.project.clone();
    move |id, delivered| {
        fs::create_dir_all(&parts)?;
        let path = parts.join(format!("{id:010}.csv"));
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::new(File::create(&tmp)?);
        SinkCsv::rows(&mut out, &project, delivered)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        fs::rename(&tmp, &path)
    }
}

/// [`part_writer`] for a micro-batch query (one file per batch id).
pub fn batch_file_writer(dir: &Path, run: &str, pipeline: &PipelineSpec) -> streamlab_engines::microbatch::SinkWriter {
    streamlab_engines::microbatch::SinkWriter(Box::new(part_writer(dir, run, pipeline)))
}

/// Joins a run's batch files, in batch order, into `sink-<run>.csv`.
pub fn assemble_parts(dir: &Path, run: &str, pipeline: &PipelineSpec) -> Result<()> {
    let parts = parts_dir(dir, run);
    let target = dir.join(format!("sink-{}.csv", slug(run)));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| RunError::Io { path, source: e }
    };
    let mut files: Vec<PathBuf> = match fs::read_dir(&parts) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let tmp = target.with_extension("csv.tmp");
    let mut out = create(&tmp)?;
    writeln!(out, "{}", SinkCsv::header(pipeline)).map_err(io(&tmp))?;
    for f in files {
        let bytes = fs::read(&f).map_err(io(&f))?;
        out.write_all(&bytes).map_err(io(&tmp))?;
    }
    out.flush().map_err(io(&tmp))?;
    drop(out);
    fs::rename(&tmp, &target).map_err(io(&target))
}
