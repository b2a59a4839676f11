//! `streamlab`: run scenarios that compare micro-batch and per-record stream processing on the
//! same workload, and generate the workloads as trace files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use streamlab_engines::time::Span;
use streamlab_scenarios::runner::{build_workload, run_scenario, RunOptions};
use streamlab_scenarios::spec::Scenario;

const EXAMPLES: &str = "\
Examples:
  streamlab run scenarios/quickstart.toml
  streamlab run scenarios/stateless.toml --duration 5s --seed 7 --out results/stateless
  streamlab generate scenarios/quickstart.toml --out clicks.csv
  streamlab generate scenarios/quickstart.toml --out clicks.jsonl --duration 2s";

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

fn parse_span(s: &str) -> Result<Span, String> {
    Span::parse(s)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            force,
            duration,
            seed,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let opts = RunOptions {
                out,
                force,
                duration,
                seed,
            };
            let total = scenario.engines.len();
            let mut i = 0;
            let outcome = run_scenario(&scenario, &opts, |engine| {
                i += 1;
                eprintln!("[{i}/{total}] running `{}` ({})", engine.name, engine.model());
            })?;
            println!("{}", streamlab_reports::summary::side_by_side_table(&outcome.summary));
            let dir = outcome.dir.display();
            println!("results: {dir}/  (summary.json, progress.jsonl, latency-*.hgrm, sink-*.csv, timeline.csv)");
            println!("plots:   {dir}/latency-cdf.svg  {dir}/latency-over-time.svg");
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
            let workload = build_workload(&scenario, seed, duration.unwrap_or(scenario.duration))?;
            let mut events: Vec<_> = workload.log.iter().copied().collect();
            events.sort_unstable_by_key(|e| (e.arrival, e.seq));
            streamlab_workloads::write_trace(&out, &events).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} events to {}", events.len(), out.display());
            Ok(())
        }
    }
}
