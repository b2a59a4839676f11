//! Runs a scenario: builds its workload once, runs every engine configuration on it, one after
//! another on a fresh clock (so they do not compete for the two cores), and writes the results
//! directory.
//!
//! The layout of a results directory (documented in the README):
//! `summary.json`, `progress.jsonl`, `latency-<run>.hgrm` (and `event-time-latency-<run>.hgrm`
//! for windowed pipelines), `sink-<run>.csv`, `late-<run>.csv` (side output), `timeline.csv`,
//! `latency-cdf.svg`, `latency-over-time.svg` and `scenario.toml` (the scenario as run).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::live::run_live;
use streamlab_engines::dataflow::sim::run_simulated;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::Event;
use streamlab_engines::latency::{Component, TIMELINE_BUCKET};
use streamlab_engines::microbatch::MicroBatchEngine;
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{field_value, PipelineSpec};
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{as_ms, Span, NANOS_PER_MS};
use streamlab_reports::plot::{latency_cdf, latency_over_time, TimeSeries};
use streamlab_reports::summary::{Counts, LatencySummary, RunSummary, Summary};

use crate::profile::{load_profile, Profile, ProfileError};
use crate::spec::{ClockKind, EngineKind, EngineSpec, Scenario, WorkloadSpec};

/// Errors of a run, by who is at fault: the user's input or the environment.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The results directory exists and `--force` was not given, or cannot be replaced safely.
    #[error("results directory {path}: {message}")]
    ResultsDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The scenario asks for something this version cannot run.
    #[error("{path}: {message}")]
    Unsupported {
        /// The scenario file.
        path: PathBuf,
        /// What and why.
        message: String,
    },
    /// An engine refused its configuration.
    #[error("{path}: engine `{engine}`: {message}")]
    Engine {
        /// The scenario file.
        path: PathBuf,
        /// The engine run's name.
        engine: String,
        /// The engine's message.
        message: String,
    },
    /// The trace named by the scenario could not be read.
    #[error(transparent)]
    Trace(#[from] streamlab_workloads::TraceError),
    /// Writing a result file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The cost profile could not be loaded.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Writing a report artefact failed.
    #[error(transparent)]
    Report(#[from] streamlab_reports::Error),
}

/// Result alias of this module.
pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// Options of `streamlab run` that override or complement the scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The results directory; `None`: `results/<scenario>-<UTC timestamp>`.
    pub out: Option<PathBuf>,
    /// Replace an existing results directory.
    pub force: bool,
    /// Override the scenario's duration.
    pub duration: Option<Span>,
    /// Override the scenario's seed.
    pub seed: Option<u64>,
    /// Override the scenario's clock.
    pub clock: Option<ClockKind>,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Where the results are.
    pub dir: PathBuf,
    /// What `summary.json` holds.
    pub summary: Summary,
}

/// The input every engine of a scenario runs on.
pub struct Workload {
    /// The events, by partition.
    pub log: SourceLog,
    /// The campaign dimension table.
    pub table: CampaignTable,
}

/// Builds the scenario's workload: generated from the seed, or read from its trace.
pub fn build_workload(scenario: &Scenario, seed: u64, duration: Span) -> Result<Workload> {
    match &scenario.workload {
        WorkloadSpec::Clickstream(cfg) => Ok(Workload {
            log: streamlab_workloads::source_log(cfg, seed, duration.nanos()),
            table: streamlab_workloads::campaign_table(cfg, seed),
        }),
        WorkloadSpec::Trace { path } => {
            let events: Vec<Event> = streamlab_workloads::read_trace(path)?
                .into_iter()
                .filter(|e| e.arrival < duration.nanos())
                .collect();
            let partitions = events.iter().map(|e| e.partition as usize + 1).max().unwrap_or(1);
            let cfg = streamlab_workloads::ClickstreamConfig::default();
            Ok(Workload {
                log: SourceLog::from_events(partitions, events),
                table: streamlab_workloads::campaign_table(&cfg, seed),
            })
        }
    }
}

/// How the engine runs of a scenario are clocked.
#[derive(Clone, Debug)]
pub enum ClockSetup {
    /// Real threads and the wall clock, on this machine.
    Live,
    /// Virtual time, work priced by `profile`, on `cluster`.
    Simulated {
        /// The cost profile.
        profile: Profile,
        /// The simulated cluster.
        cluster: Cluster,
    },
}

impl ClockSetup {
    /// `"live"` or `"simulated"`.
    pub fn name(&self) -> &'static str {
        match self {
            ClockSetup::Live => "live",
            ClockSetup::Simulated { .. } => "simulated",
        }
    }
}

/// Prepares `clock` for `scenario`: loads its cost profile for the simulated clock, refuses a
/// multi-node cluster on the live one.
pub fn clock_setup(scenario: &Scenario, clock: ClockKind) -> Result<ClockSetup> {
    match clock {
        ClockKind::Live if scenario.cluster.nodes > 1 => Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: format!(
                "key `cluster.nodes`: the live clock runs on this machine (1 node), not {}; use `clock = \"simulated\"` \
                 (or --clock simulated) to simulate a cluster",
                scenario.cluster.nodes
            ),
        }),
        ClockKind::Live => Ok(ClockSetup::Live),
        ClockKind::Simulated => {
            let base = scenario.path.parent().unwrap_or(Path::new(""));
            let profile = load_profile(&scenario.profile, base)?;
            Ok(ClockSetup::Simulated { profile, cluster: scenario.cluster })
        }
    }
}

/// Runs one engine configuration on the workload until `until`, on the given clock.
pub fn run_engine(
    scenario: &Scenario,
    engine: &EngineSpec,
    workload: &Workload,
    until: u64,
    clock: &ClockSetup,
) -> Result<EngineRun> {
    let refuse = |message: String| RunError::Engine {
        path: scenario.path.clone(),
        engine: engine.name.clone(),
        message,
    };
    let (pipeline, table, log) = (&scenario.pipeline, &workload.table, &workload.log);
    match (&engine.kind, clock) {
        (EngineKind::MicroBatch(cfg), _) => {
            let mut mb = MicroBatchEngine::new(&engine.name, *cfg, pipeline, table, log.partitions())
                .map_err(|e| refuse(e.to_string()))?;
            Ok(match clock {
                ClockSetup::Live => mb.run(&mut LiveRuntime::new(cfg.workers), log, until),
                ClockSetup::Simulated { profile, cluster } => {
                    if cfg.workers > cluster.cores() {
                        return Err(refuse(format!(
                            "key `workers`: {} task slots do not fit on the cluster's {} cores",
                            cfg.workers,
                            cluster.cores()
                        )));
                    }
                    mb.run(&mut SimRuntime::new(cfg.workers, profile.costs), log, until)
                }
            })
        }
        (EngineKind::PerRecord(cfg), ClockSetup::Live) => run_live(
            &engine.name,
            cfg,
            pipeline,
            table,
            log,
            LiveClock::start(),
            until,
            false,
        )
        .map_err(|e| refuse(e.to_string())),
        (EngineKind::PerRecord(cfg), ClockSetup::Simulated { profile, cluster }) => run_simulated(
            &engine.name,
            cfg,
            pipeline,
            table,
            log,
            &profile.costs,
            *cluster,
            until,
            false,
        )
        .map_err(|e| refuse(e.to_string())),
    }
}

/// Runs every engine configuration of `scenario` and writes the results directory.
/// `on_engine` is told when each engine run starts (for progress output).
pub fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    mut on_engine: impl FnMut(&EngineSpec),
) -> Result<RunOutcome> {
    let clock = clock_setup(scenario, opts.clock.unwrap_or(scenario.clock))?;
    let dir = prepare_results_dir(scenario, opts)?;
    let seed = opts.seed.unwrap_or(scenario.seed);
    let duration = opts.duration.unwrap_or(scenario.duration);
    let workload = build_workload(scenario, seed, duration)?;
    let until = duration.nanos() + scenario.drain.nanos();

    let mut runs = Vec::new();
    for engine in &scenario.engines {
        on_engine(engine);
        runs.push((engine, run_engine(scenario, engine, &workload, until, &clock)?));
    }

    let summary = summarize(scenario, seed, duration, &clock, &runs);
    write_results(&dir, scenario, &summary, &runs)?;
    Ok(RunOutcome { dir, summary })
}

/// A file-name-safe form of a run name.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

fn prepare_results_dir(scenario: &Scenario, opts: &RunOptions) -> Result<PathBuf> {
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => PathBuf::from("results").join(format!("{}-{}", slug(&scenario.name), utc_stamp())),
    };
    let io = |e| RunError::Io {
        path: dir.clone(),
        source: e,
    };
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

fn utc_stamp() -> String {
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

fn summarize(
    scenario: &Scenario,
    seed: u64,
    duration: Span,
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
                .filter(|&&c| c != Component::WatermarkWait || scenario.pipeline.is_stateful())
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
            if run.counts.falling_behind > 0 {
                notes.push(format!(
                    "{} of {} batches took longer than the trigger interval (falling behind)",
                    run.counts.falling_behind, run.counts.batches
                ));
            }
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
                counts: Counts {
                    events: run.counts.events,
                    outputs: run.counts.outputs,
                    batches: run.counts.batches,
                    falling_behind: run.counts.falling_behind,
                    late_dropped: run.counts.late_dropped,
                },
                notes,
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

fn write_results(dir: &Path, scenario: &Scenario, summary: &Summary, runs: &[(&EngineSpec, EngineRun)]) -> Result<()> {
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
        write_sink(&dir.join(format!("sink-{slug}.csv")), &scenario.pipeline, run)?;
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
    latency_over_time(
        &dir.join("latency-over-time.svg"),
        &format!("{}: latency over time", scenario.name),
        &over_time,
    )?;
    Ok(())
}

/// Writes the sink's records: the projected columns of a stateless pipeline, or the window
/// results of a stateful one, each with its delivery time and latency.
fn write_sink(path: &Path, pipeline: &PipelineSpec, run: &EngineRun) -> Result<()> {
    let io = |e| RunError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut w = create(path)?;
    if pipeline.is_stateful() {
        writeln!(
            w,
            "delivered_ms,key,window_start_ms,window_end_ms,count,value,is_update,latency_ms"
        )
        .map_err(io)?;
    } else {
        let cols: Vec<&str> = pipeline.project.iter().map(|f| f.name()).collect();
        writeln!(w, "delivered_ms,{},latency_ms", cols.join(",")).map_err(io)?;
    }
    for d in &run.delivered {
        match &d.output {
            Output::Row(r) => {
                write!(w, "{:.3}", as_ms(d.at)).map_err(io)?;
                for &f in &pipeline.project {
                    if f == streamlab_engines::pipeline::Field::Kind {
                        write!(w, ",{}", r.event.kind.name()).map_err(io)?;
                    } else {
                        write!(w, ",{}", field_value(&r.event, r.campaign, f)).map_err(io)?;
                    }
                }
                writeln!(w, ",{:.3}", as_ms(d.at.saturating_sub(r.lineage.arrival))).map_err(io)?;
            }
            Output::Window(r) => {
                writeln!(
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
                )
                .map_err(io)?;
            }
        }
    }
    w.flush().map_err(io)
}
