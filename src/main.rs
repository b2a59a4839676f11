//! `streamlab`: run scenarios that compare micro-batch and per-record stream processing on the
//! same workload, and generate the workloads as trace files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use streamlab_engines::time::Span;
use streamlab_reports::layout::{ResultsLayout, SweepLayout};
use streamlab_scenarios::against::{against_table, parse_models, validate_against};
use streamlab_scenarios::calibrate::calibrate;
use streamlab_scenarios::capacity::capacity;
use streamlab_scenarios::catalog::{catalog, catalog_table};
use streamlab_scenarios::crash_sweep::{crash_sweep, crash_table};
use streamlab_scenarios::fit::fit;
use streamlab_scenarios::profile::load_profile;
use streamlab_scenarios::runner::{run_scenario, RunOptions};
use streamlab_scenarios::spec::{ClockKind, Scenario};
use streamlab_scenarios::sweep::{run_sweep, sweep_table, SweepOptions, SweepParam};
use streamlab_scenarios::validate::{comparison_table, validate};
use streamlab_scenarios::workload::Workload;

mod interrupt;
mod progress;

use progress::{EngineRuns, Progress};

const EXAMPLES: &str = "\
Examples:
  streamlab run scenarios/quickstart.toml
  streamlab run scenarios/stateless.toml --duration 5s --seed 7 --out results/stateless
  streamlab run scenarios/seed-example.toml            (simulated: seconds for minutes of virtual time)
  streamlab run scenarios/quickstart.toml --clock simulated
  streamlab validate scenarios/stateless.toml           (live against simulated, side by side)
  streamlab capacity scenarios/quickstart.toml          (sustainable rate per engine)
  streamlab calibrate --out my-machine.toml             (measure this machine's cost profile)
  streamlab crash-sweep scenarios/failure-recovery.toml (exactly-once, checked at hundreds of crash points)
  streamlab generate scenarios/quickstart.toml --out clicks.csv
  streamlab sweep scenarios/interval-sweep.toml        (the trigger intervals its [sweep] table declares)
  streamlab sweep scenarios/hidden-batching.toml --param engine.buffer_timeout=0,10ms,100ms --out results/bt
  streamlab report results/interval-sweep-sweep-20250101-120000   (report.html and report.md)
  streamlab list                                        (the teaching scenarios and what each shows)";

/// A workbench that measures micro-batching against per-record streaming.
#[derive(Parser, Debug)]
#[command(name = "streamlab", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario's engine configurations side by side and write a results directory.
    #[command(after_help = EXAMPLES)]
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Results directory (default: results/<scenario>-<UTC time>). Never overwritten without --force.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing results directory.
        #[arg(long)]
        force: bool,
        /// Override the scenario's duration, e.g. 5s or 500ms.
        #[arg(long, value_parser = parse_span)]
        duration: Option<Span>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's clock.
        #[arg(long, value_enum)]
        clock: Option<ClockArg>,
        /// Continue a killed live run from the checkpoints in its results directory DIR.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force"])]
        resume: Option<PathBuf>,
        /// KEY=VALUE: change one key of the scenario for this run, as a dotted path
        /// (`workload.backlog=true`, `engine[1].parallelism=2`, `engine.buffer_timeout=0` for
        /// every engine that has it). Repeat for more keys.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run a scenario at every point of a grid of values of its keys, into one sweep directory.
    #[command(after_help = SWEEP_HELP)]
    Sweep {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// KEY=V1,V2,...: a key as a dotted path (`engine[0].trigger.interval`,
        /// `workload.rate.events_per_second`, `engine.buffer_timeout` for every engine that has
        /// it) and its values. Repeat for a grid. Adds to the scenario's own `[sweep]` table, or
        /// replaces the values it gives the same key; optional when the scenario has one.
        #[arg(long = "param", value_name = "KEY=V1,V2,...")]
        params: Vec<String>,
        /// Sweep directory (default: results/<scenario>-sweep-<UTC time>). Never overwritten without --force.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing sweep directory (one that holds sweep.json).
        #[arg(long)]
        force: bool,
        /// Override the scenario's duration at every point, e.g. 5s or 500ms.
        #[arg(long, value_parser = parse_span)]
        duration: Option<Span>,
        /// Override the scenario's seed at every point.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's clock at every point.
        #[arg(long, value_enum)]
        clock: Option<ClockArg>,
    },
    /// Write report.html and report.md (results table, plots, decision record) for results or sweep directories.
    #[command(after_help = EXAMPLES)]
    Report {
        /// Results directories of `streamlab run`, or a sweep directory of `streamlab sweep`
        /// (default: the newest one under results/).
        #[arg(value_name = "RESULTS_DIR")]
        dirs: Vec<PathBuf>,
        /// Where to write the report (default: the directory itself, when there is one).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the scenarios of a directory with what each one shows.
    #[command(after_help = EXAMPLES)]
    List {
        /// The directory (default: scenarios).
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Run every engine of a scenario on both clocks and compare outputs and latency.
    #[command(after_help = EXAMPLES)]
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Check the simulated clock against real engines instead: each `model = "spark"` /
        /// `"flink"` engine of the scenario on the real engine and its native twin simulated
        /// with the fitted profile (`spark`, `flink` or `spark,flink`).
        #[arg(long)]
        against: Option<String>,
        /// Override the scenario's duration.
        #[arg(long, value_parser = parse_span)]
        duration: Option<Span>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Find each engine's sustainable input rate by searching over simulated runs.
    #[command(after_help = EXAMPLES)]
    Capacity {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// The highest input rate to try, events/s.
        #[arg(long, default_value_t = streamlab_scenarios::capacity::DEFAULT_MAX_RATE)]
        max_rate: f64,
    },
    /// Crash each engine at every point of its work (simulated) and count duplicates and losses
    /// against a failure-free run: exactly-once shows none.
    #[command(after_help = EXAMPLES)]
    CrashSweep {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Most crash points per engine (spread evenly over batches and phases, or over time).
        #[arg(long, default_value_t = 200)]
        points: usize,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Measure this machine's cost profile by timing the real operator code.
    #[command(after_help = EXAMPLES)]
    Calibrate {
        /// Fit the profile to a real engine (`spark`, `flink` or `kafka-streams`) instead of timing streamlab's
        /// own code: run the engine's configurations in the scenarios and fit the costs to it.
        #[arg(long)]
        against: Option<String>,
        /// With --against: the scenarios whose real engines the fit runs (default: the built-in
        /// `fit-<engine>-*.toml` scenarios in `scenarios/`).
        scenarios: Vec<PathBuf>,
        /// Write the profile here (TOML); without it, print it. Never overwritten without --force.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Install or check the real engines (Apache Spark, Apache Flink) that streamlab drives (optional).
    Engines {
        #[command(subcommand)]
        action: EnginesAction,
    },
    /// Write a scenario's workload as a trace file: CSV or JSON Lines, chosen by extension.
    #[command(after_help = EXAMPLES)]
    Generate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The trace file to write (.csv or .jsonl). Never overwritten without --force.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Override the scenario's duration.
        #[arg(long, value_parser = parse_span)]
        duration: Option<Span>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// What `streamlab engines` does.
#[derive(Subcommand, Debug)]
enum EnginesAction {
    /// Create the pinned venvs (pyspark 4.3.0, apache-flink 2.3.0) in the cache directory
    /// ($STREAMLAB_ENGINES_DIR, default ~/.cache/streamlab/engines) and check Java 17+.
    /// Idempotent: a venv already at its pinned version is kept.
    Install,
    /// Say what is installed and what is missing, with the command that fixes each; exits
    /// non-zero when something is missing.
    Doctor,
}

/// A clock, on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ClockArg {
    /// Real threads, the wall clock.
    Live,
    /// Virtual time, the scenario's cost profile.
    Simulated,
}

impl From<ClockArg> for ClockKind {
    fn from(c: ClockArg) -> Self {
        match c {
            ClockArg::Live => ClockKind::Live,
            ClockArg::Simulated => ClockKind::Simulated,
        }
    }
}

const SWEEP_HELP: &str = "\
A key is a dotted path as in scenario error messages: `duration`, `workload.partitions`,
`workload.rate.events_per_second`, `workload.disorder.bound`, `pipeline.aggregate.window.size`,
`engine[0].trigger.interval` (one engine), `engine.buffer_timeout` or `engine[*].buffer_timeout`
(every engine whose model has the key). Each point is the scenario with the values set, read
and validated like a file of its own. Several --param make a grid (every combination).

A scenario may declare its sweep in a [sweep] table (`\"engine[0].trigger.interval\" = [\"100ms\", \"1s\"]`);
then `streamlab sweep FILE` runs it as it stands, and --param adds a key or replaces one's values.

Writes <out>/sweep.json, <out>/sweep.csv and a results directory per point.

Examples:
  streamlab sweep scenarios/interval-sweep.toml        (the values its [sweep] table declares)
  streamlab sweep scenarios/interval-sweep.toml --param engine[0].trigger.interval=100ms,250ms,500ms,1s,2s,5s
  streamlab sweep scenarios/key-skew.toml --param workload.page_zipf_exponent=0.5,1.1,1.5 --param engine[1].parallelism=1,2";

/// Whether a run of `scenario` with `--clock` `clock` is on the live clock.
fn live_clock(scenario: &Scenario, clock: Option<ClockArg>) -> bool {
    clock.map_or(scenario.clock, Into::into) == ClockKind::Live
}

fn parse_span(s: &str) -> Result<Span, String> {
    Span::parse(s)
}

fn main() -> ExitCode {
    // A real engine runs in a process group of its own, which the terminal's Ctrl-C does not
    // reach: end every such group first. `streamlab run` then stops cleanly (see `interrupt`).
    streamlab_real_engines::groups::end_groups_on_interrupt(interrupt::on_interrupt);
    match run(Cli::parse()) {
        // Interrupted, stopped cleanly: the results so far are written.
        Ok(()) if interrupt::asked() => ExitCode::from(130),
        Ok(()) => ExitCode::SUCCESS,
        // Interrupted before anything could be kept (a repeated run's measurement rounds).
        Err(e) if interrupt::asked() => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The fit scenarios of `model` shipped in `scenarios/` (`fit-<model>-*.toml`), from the
/// working directory (the repository's root).
fn default_fit_scenarios(model: &str) -> anyhow::Result<Vec<PathBuf>> {
    let dir = PathBuf::from("scenarios");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "reading {} (run from the repository's root, or name the scenarios)",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(&format!("fit-{model}-")) && n.to_string_lossy().ends_with(".toml")
            })
        })
        .collect();
    found.sort();
    if found.is_empty() {
        anyhow::bail!("no scenarios/fit-{model}-*.toml here; name the scenarios to fit on");
    }
    Ok(found)
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// already quotes (most of ours name the underlying I/O error in their own message).
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            force,
            duration,
            seed,
            clock,
            resume,
            set,
        } => {
            let scenario = load_with(&scenario, &set)?;
            let opts = RunOptions {
                out: resume.clone().or(out),
                resume: resume.is_some(),
                force,
                duration,
                seed,
                clock: clock.map(Into::into),
                ..Default::default()
            };
            // A resumed run continues the killed run alone: no measurement rounds.
            let total = scenario.engine_runs(live_clock(&scenario, clock) && resume.is_none());
            let progress = Progress::new(EngineRuns::Kept);
            let mut i = 0;
            interrupt::stop_cleanly();
            let outcome = run_scenario(&scenario, &opts, |engine| {
                i += 1;
                progress.println(&format!("[{i}/{total}] running `{}` ({})", engine.name, engine.model()));
            });
            progress.finish();
            let outcome = outcome?;
            for (engine, why) in &outcome.left_out {
                println!("left out: `{engine}` (if_installed): {why}");
            }
            println!("{}", streamlab_reports::summary::side_by_side_table(&outcome.summary));
            for run in &outcome.summary.runs {
                for note in &run.notes {
                    println!("note: {}: {note}", run.name);
                }
            }
            println!("clock: {}", outcome.summary.clock);
            let dir = outcome.dir.display();
            println!("results: {dir}/  ({})", ResultsLayout::listing());
            println!(
                "plots:   {dir}/{}  {dir}/{}",
                ResultsLayout::LATENCY_CDF_PLOT,
                ResultsLayout::LATENCY_OVER_TIME_PLOT
            );
            if let Some(stop) = &outcome.summary.interrupted {
                interrupt::explain(stop, &outcome.dir, &scenario.path, live_clock(&scenario, clock));
            }
            Ok(())
        }
        Command::Sweep {
            scenario,
            params,
            out,
            force,
            duration,
            seed,
            clock,
        } => {
            let params = params
                .iter()
                .map(|p| p.parse::<SweepParam>())
                .collect::<Result<Vec<_>, _>>()?;
            let opts = SweepOptions {
                out,
                force,
                duration,
                seed,
                clock: clock.map(Into::into),
                progress: true,
            };
            let outcome = run_sweep(&scenario, &params, &opts)?;
            print!("{}", sweep_table(&outcome.summary));
            let dir = outcome.dir.display();
            println!(
                "clock: {}",
                outcome.summary.points.first().map_or("-", |p| p.summary.clock.as_str())
            );
            println!(
                "results: {dir}/  ({}, {}, and a results directory per point)",
                SweepLayout::SWEEP,
                SweepLayout::SWEEP_CSV
            );
            println!("next:    streamlab report {dir}");
            Ok(())
        }
        Command::Report { dirs, out } => {
            let dirs = if dirs.is_empty() {
                let root = std::path::Path::new(streamlab_reports::layout::DEFAULT_ROOT);
                let newest = streamlab_reports::layout::newest_results(root).with_context(|| {
                    format!(
                        "no results directory under {}/ (run `streamlab run` or `streamlab sweep` first, or name one)",
                        root.display()
                    )
                })?;
                eprintln!("reporting {} (the newest under {}/)", newest.display(), root.display());
                vec![newest]
            } else {
                dirs
            };
            let out = match (out, dirs.as_slice()) {
                (Some(out), _) => out,
                (None, [dir]) => dir.clone(),
                (None, _) => anyhow::bail!("several directories make one report: say where with --out DIR"),
            };
            let paths = streamlab_reports::write_report(&dirs, &out)?;
            println!("report: {}", paths.html.display());
            println!("        {}", paths.markdown.display());
            Ok(())
        }
        Command::List { dir } => {
            let entries = catalog(&dir).with_context(|| format!("reading {}", dir.display()))?;
            if entries.is_empty() {
                anyhow::bail!("{} holds no scenario files (*.toml)", dir.display());
            }
            print!("{}", catalog_table(&entries));
            Ok(())
        }
        Command::Generate {
            scenario,
            out,
            force,
            duration,
            seed,
        } => {
            let scenario = Scenario::load(&scenario)?;
            if out.exists() && !force {
                anyhow::bail!("{} already exists; pass --force to replace it", out.display());
            }
            let seed = seed.unwrap_or(scenario.seed);
            let events = Workload::build(&scenario, seed, duration.unwrap_or(scenario.duration))?.events();
            streamlab_workloads::write_trace(&out, &events).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} events to {}", events.len(), out.display());
            Ok(())
        }
        Command::Validate {
            scenario,
            against,
            duration,
            seed,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let seed = seed.unwrap_or(scenario.seed);
            let duration = duration.unwrap_or(scenario.duration);
            let mut progress = Progress::new(EngineRuns::Kept);
            if let Some(against) = against {
                let models = parse_models(&against).map_err(anyhow::Error::msg)?;
                let rows = validate_against(&scenario, seed, duration, &models, |engine, clock| {
                    let on = match clock {
                        ClockKind::Live => format!("real {}", engine.model()),
                        ClockKind::Simulated => "simulated clock (its native twin)".to_string(),
                    };
                    progress.step(&format!("running `{}` on the {on}", engine.name), None);
                });
                progress.finish();
                print!("{}", against_table(&rows?));
                return Ok(());
            }
            let steps = 2 * scenario.engines.len() as u64;
            let rows = validate(&scenario, seed, duration, |engine, clock| {
                progress.step(
                    &format!("running `{}` on the {} clock", engine.name, clock.name()),
                    Some(steps),
                );
            });
            progress.finish();
            let rows = rows?;
            print!("{}", comparison_table(&rows));
            for r in &rows {
                println!("{} (live): {}", r.name, r.live_reference);
                println!("{} (simulated): {}", r.name, r.simulated_reference);
            }
            if rows.iter().any(|r| !r.outputs_equal) {
                anyhow::bail!("the two clocks produced different outputs");
            }
            if rows
                .iter()
                .any(|r| r.live_reference.contains("DIFFER") || r.simulated_reference.contains("DIFFER"))
            {
                anyhow::bail!("an engine's outputs differ from the reference evaluator");
            }
            Ok(())
        }
        Command::Capacity {
            scenario,
            seed,
            max_rate,
        } => {
            if !(max_rate.is_finite() && max_rate >= 1.0) {
                anyhow::bail!("--max-rate {max_rate} is out of range; it must be at least 1 event/s");
            }
            let scenario = Scenario::load(&scenario)?;
            let seed = seed.unwrap_or(scenario.seed);
            let mut progress = Progress::new(EngineRuns::Cleared);
            let results = capacity(&scenario, seed, max_rate, |engine, p| {
                let line = format!(
                    "  {}: {:>14.0} events/s  {}  p99 {:.1} ms{}",
                    engine.name,
                    p.rate,
                    if p.stable { "stable  " } else { "UNSTABLE" },
                    p.latency.p99,
                    p.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default()
                );
                progress.println(&line);
                progress.step(&format!("probing `{}` at {:.0} events/s", engine.name, p.rate), None);
            });
            progress.finish();
            let results = results?;
            println!(
                "{:<28} {:>20} {:>12} {:>12}",
                "engine", "sustainable events/s", "p50 (ms)", "p99 (ms)"
            );
            for c in &results {
                let (p50, p99) = c.latency.as_ref().map_or((f64::NAN, f64::NAN), |l| (l.p50, l.p99));
                let rate = if c.at_limit {
                    format!(">= {:.0}", c.sustainable_eps)
                } else {
                    format!("{:.0}", c.sustainable_eps)
                };
                println!("{:<28} {:>20} {:>12.1} {:>12.1}", c.name, rate, p50, p99);
            }
            if results.iter().any(|c| c.at_limit) {
                println!("(>=: still stable at --max-rate {max_rate:.0}; raise it to search further)");
            }
            println!(
                "(simulated runs on cost profile `{}`; stable = latency does not keep growing)",
                scenario.profile
            );
            Ok(())
        }
        Command::CrashSweep { scenario, points, seed } => {
            if points == 0 {
                anyhow::bail!("--points must be at least 1");
            }
            let scenario = Scenario::load(&scenario)?;
            let seed = seed.unwrap_or(scenario.seed);
            let mut progress = Progress::new(EngineRuns::Cleared);
            let outcomes = crash_sweep(&scenario, seed, points, |o| {
                let line = format!(
                    "  {}: {}: {} duplicates, {} losses",
                    o.engine, o.point, o.duplicates, o.losses
                );
                if o.duplicates > 0 || o.losses > 0 {
                    progress.println(&line);
                }
                progress.step(&line, None);
            });
            progress.finish();
            let outcomes = outcomes?;
            print!("{}", crash_table(&outcomes));
            println!("(simulated crashes; duplicates and losses counted against a failure-free run)");
            Ok(())
        }
        Command::Engines { action } => {
            let cache = streamlab_real_engines::CacheDir::from_env()?;
            match action {
                EnginesAction::Install => {
                    streamlab_real_engines::install(&cache, &mut |line| eprintln!("{line}"))?;
                }
                EnginesAction::Doctor => {
                    let report = streamlab_real_engines::DoctorReport::gather(cache);
                    print!("{report}");
                    if !report.is_ready() {
                        anyhow::bail!("the real engines are not ready ({} missing)", report.missing());
                    }
                }
            }
            Ok(())
        }
        Command::Calibrate {
            against,
            scenarios,
            out,
            force,
        } => {
            if let Some(out) = &out {
                if out.exists() && !force {
                    anyhow::bail!("{} already exists; pass --force to replace it", out.display());
                }
            }
            if let Some(model) = against {
                let [model] = parse_models(&model).map_err(anyhow::Error::msg)?[..] else {
                    anyhow::bail!("--against takes one engine to fit: `spark`, `flink` or `kafka-streams`");
                };
                let paths = if scenarios.is_empty() {
                    default_fit_scenarios(model)?
                } else {
                    scenarios
                };
                let scenarios = paths.iter().map(|p| Scenario::load(p)).collect::<Result<Vec<_>, _>>()?;
                let base = load_profile("local", std::path::Path::new("."))?;
                let command = std::env::args().collect::<Vec<_>>().join(" ");
                let mut progress = Progress::new(EngineRuns::Kept);
                let now = streamlab_scenarios::results::utc_now();
                let fitted = fit(&scenarios, model, &base, &command, &now, |scenario, engine| {
                    let line = format!(
                        "running `{}` of {} on the real {model}",
                        engine.name,
                        scenario.path.display()
                    );
                    progress.step(&line, None);
                });
                progress.finish();
                let fitted = fitted?;
                for step in &fitted.steps {
                    eprintln!("fit: {step}");
                }
                let text = fitted.profile.to_toml();
                match out {
                    Some(out) => {
                        std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
                        println!(
                            "wrote {}; use it with `profile = \"{}\"` on an [[engine]]",
                            out.display(),
                            out.display()
                        );
                    }
                    None => print!("{text}"),
                }
                return Ok(());
            }
            let mut progress = Progress::new(EngineRuns::Cleared);
            let profile = calibrate(|step| progress.step(&format!("measuring {step}"), None));
            progress.finish();
            let text = profile.to_toml();
            match out {
                Some(out) => {
                    std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
                    println!(
                        "wrote {}; use it with `profile = \"{}\"` in a scenario",
                        out.display(),
                        out.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// Reads the scenario at `path` with each `KEY=VALUE` of `set` applied (as `sweep` applies a
/// point's values), so the run is validated exactly like a file of its own.
fn load_with(path: &std::path::Path, set: &[String]) -> anyhow::Result<Scenario> {
    if set.is_empty() {
        return Ok(Scenario::load(path)?);
    }
    let mut text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for kv in set {
        let Some((key, value)) = kv.split_once('=') else {
            anyhow::bail!("--set {kv}: expected KEY=VALUE, e.g. --set workload.backlog=true");
        };
        text = streamlab_scenarios::sweep::set_key(path, &text, key.trim(), value.trim())?;
    }
    Ok(Scenario::parse(path, &text)?)
}
