//! Runs a scenario: builds its workload, runs every engine configuration on it one after
//! another, each on a fresh clock (so live runs do not compete for the two cores), streams
//! each sink to its file, and writes the rest of the results directory.

use std::path::PathBuf;

use streamlab_engines::time::Span;
use streamlab_reports::summary::Summary;

use crate::error_run::Result;
use crate::execute::{clock_setup, run_engines, Durability};
use crate::recovery::{recovery_cost, OutputLedger};
use crate::results::{assemble_parts, prepare_results_dir, slug, summarize, write_results, SinkCsv};
use crate::spec::{ClockKind, EngineSpec, Scenario};
use crate::spec::{EngineKind, FailureKindName};
use crate::workload::Workload;
use streamlab_engines::microbatch::OutputMode;
use streamlab_engines::run::FailureEvent;
use streamlab_engines::time::as_ms;
use streamlab_reports::summary::{FailureMark, Recovery};

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
    /// Where engines keep their checkpoints (default: `<results>/checkpoints`).
    pub checkpoint_root: Option<PathBuf>,
    /// Resume from the checkpoints found there instead of starting afresh.
    pub resume: bool,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Where the results are.
    pub dir: PathBuf,
    /// What `summary.json` holds.
    pub summary: Summary,
}

/// Runs every engine configuration of `scenario` and writes the results directory.
/// `on_engine` is told when each engine run starts (for progress output).
pub fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    mut on_engine: impl FnMut(&EngineSpec),
) -> Result<RunOutcome> {
    let clock = clock_setup(scenario, opts.clock.unwrap_or(scenario.clock))?;
    // Refuse before anything runs (the failure-free baseline comes first).
    for engine in &scenario.engines {
        crate::execute::check_failure_workers(scenario, engine, &clock).map_err(|message| {
            crate::error_run::RunError::Engine {
                path: scenario.path.clone(),
                engine: engine.name.clone(),
                message,
            }
        })?;
    }
    if opts.resume && !matches!(clock, crate::execute::ClockSetup::Live) {
        return Err(crate::error_run::RunError::Unsupported {
            path: scenario.path.clone(),
            message: "--resume continues a killed live run; a simulated run finishes in one go (run it again)".into(),
        });
    }
    let dir = prepare_results_dir(scenario, opts)?;
    let seed = opts.seed.unwrap_or(scenario.seed);
    let duration = opts.duration.unwrap_or(scenario.duration);
    let workload = Workload::build(scenario, seed, duration)?;
    let until = duration.nanos() + scenario.drain.nanos();

    let engines: Vec<&EngineSpec> = scenario.engines.iter().collect();
    // With failures injected, a failure-free run of the same engines first: what the sink
    // should hold, to count duplicates and losses against.
    let baseline = if scenario.failures.is_empty() {
        None
    } else {
        let scratch = dir.join("checkpoints-failure-free");
        let durability = Durability {
            checkpoint_root: Some(scratch.clone()),
            inject_failures: false,
            resume: false,
            sink_dir: None,
        };
        let mut ledgers: Vec<OutputLedger> = engines.iter().map(|_| OutputLedger::default()).collect();
        run_engines(
            scenario,
            &engines,
            &workload,
            until,
            &clock,
            &durability,
            &mut |_| {},
            &mut |i, d| {
                ledgers[i].add(&d);
                Ok(())
            },
        )?;
        let _ = std::fs::remove_dir_all(&scratch);
        Some(ledgers)
    };
    let mut sinks = engines
        .iter()
        .map(|e| SinkCsv::create(&dir.join(format!("sink-{}.csv", slug(&e.name))), &scenario.pipeline))
        .collect::<Result<Vec<_>>>()?;
    let mut ledgers: Vec<OutputLedger> = engines.iter().map(|_| OutputLedger::default()).collect();
    let durability = Durability {
        checkpoint_root: Some(opts.checkpoint_root.clone().unwrap_or_else(|| dir.join("checkpoints"))),
        inject_failures: true,
        resume: opts.resume,
        sink_dir: Some(dir.clone()),
    };
    // Micro-batch queries write their sink batch by batch, and live per-record jobs with an
    // exactly-once sink transaction by transaction (durable, idempotent); the others stream
    // into their CSV.
    let live = matches!(clock, crate::execute::ClockSetup::Live);
    let batch_files: Vec<bool> = engines
        .iter()
        .map(|e| match &e.kind {
            EngineKind::MicroBatch(_) => true,
            EngineKind::PerRecord(c) => live && crate::execute::durable_per_record(c),
        })
        .collect();
    let results = run_engines(
        scenario,
        &engines,
        &workload,
        until,
        &clock,
        &durability,
        &mut on_engine,
        &mut |i, d| {
            if baseline.is_some() {
                ledgers[i].add(&d);
            }
            if batch_files[i] {
                Ok(())
            } else {
                sinks[i].write(&d)
            }
        },
    )?;
    for sink in sinks {
        sink.finish()?;
    }
    for (engine, _) in engines.iter().zip(&batch_files).filter(|(_, b)| **b) {
        assemble_parts(&dir, &engine.name, &scenario.pipeline)?;
    }
    let runs: Vec<(&EngineSpec, _)> = engines.into_iter().zip(results).collect();

    let mut summary = summarize(scenario, seed, duration, workload.expected_events(), &clock, &runs);
    if let Some(baseline) = &baseline {
        for (((spec, run), ledger), (out, base)) in runs.iter().zip(&ledgers).zip(summary.runs.iter_mut().zip(baseline))
        {
            // Crashes as the engine saw them, and the other failures that struck it as declared.
            let mut events: Vec<(String, FailureEvent)> =
                run.failures.iter().map(|f| ("crash".to_string(), *f)).collect();
            for f in scenario.failures.iter() {
                if !f.strikes(&spec.name) {
                    continue;
                }
                if let Some(at) = f.task_failure(spec) {
                    events.push((
                        "task_failure".into(),
                        FailureEvent {
                            at,
                            restarted_at: at,
                            replayed: 0,
                        },
                    ));
                    continue;
                }
                if let Some((_, from, to)) = f.worker_loss(spec) {
                    events.push((
                        "worker_loss".into(),
                        FailureEvent {
                            at: from,
                            restarted_at: to,
                            replayed: 0,
                        },
                    ));
                    continue;
                }
                if f.kind == FailureKindName::Crash {
                    continue;
                }
                let (Some(at), Some(d)) = (f.at, f.duration) else {
                    continue;
                };
                let kind = serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                events.push((
                    kind,
                    FailureEvent {
                        at: at.nanos(),
                        restarted_at: at.nanos() + d.nanos(),
                        replayed: 0,
                    },
                ));
            }
            events.sort_by_key(|(_, e)| e.at);
            out.failures = events
                .iter()
                .map(|(kind, f)| FailureMark {
                    kind: kind.clone(),
                    at_ms: as_ms(f.at),
                    recovered_ms: Some(as_ms(f.restarted_at)),
                })
                .collect();
            let upsert = matches!(&spec.kind, EngineKind::MicroBatch(c) if c.output_mode != OutputMode::Append);
            let (duplicates, losses) = if upsert {
                ledger.compare_upserts(base)
            } else {
                ledger.compare(base)
            };
            let costs: Vec<_> = events.iter().map(|(_, f)| recovery_cost(&ledger.timeline, f)).collect();
            let worst = |f: fn(&crate::recovery::RecoveryCost) -> Option<f64>| {
                if costs.iter().any(|c| f(c).is_none()) {
                    None
                } else {
                    costs.iter().filter_map(f).reduce(f64::max)
                }
            };
            out.recovery = Some(Recovery {
                downtime_ms: worst(|c| c.downtime_ms),
                catch_up_ms: worst(|c| c.catch_up_ms),
                replayed: run.counts.replayed,
                duplicates,
                losses,
                task_retries: run.counts.task_retries,
            });
            if events.is_empty() {
                out.notes.push("no failure struck this engine run".into());
            }
        }
    }
    write_results(&dir, scenario, &summary, &runs)?;
    Ok(RunOutcome { dir, summary })
}
