//! Runs a scenario, as a straight pipeline: the scenario ([`crate::spec`]) and its workload
//! ([`crate::workload`]) are planned onto a clock ([`crate::clock`]); the engines run
//! ([`crate::drive`], each built by its [`crate::executor`]) — first failure-free when failures
//! are injected, to count duplicates and losses against — with their sinks streaming to their
//! files ([`crate::sink`]); then the summary ([`crate::summary`], with the failures of
//! [`crate::failures`] and the costs of [`crate::recovery`]) and the rest of the results
//! directory ([`crate::results`]) are written. With `repeat`, the native engines' measurement
//! rounds ([`crate::rounds`]) run before the kept run.

use std::path::PathBuf;

use streamlab_engines::time::Span;
use streamlab_reports::layout::ResultsLayout;
use streamlab_reports::summary::Summary;

use crate::clock::{clock_setup, ClockSetup};
use crate::drive::{run_engines, run_engines_until_stopped};
use crate::error_run::{Result, RunError};
use crate::executor::{check_failure_workers, executor, Durability, RunContext};
use crate::failures;
use crate::recovery::{recovery, OutputLedger};
use crate::results::{prepare_results_dir, write_results, ResultsDirRequest};
use crate::rounds::{RoundWork, Rounds};
use crate::sink::RunOutputs;
use crate::spec::{ClockKind, EngineSpec, Scenario, SinkKind};
use crate::summary::{summarize, SummaryContext};
use crate::workload::Workload;
use streamlab_engines::reference;

/// The largest workload a live run checks against the reference evaluator (its events are
/// generated again for it).
pub const REFERENCE_CHECK_EVENTS: u64 = 5_000_000;

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
    /// The engines left out (marked `if_installed`, their real engine not installed), each with
    /// what is missing and how to install it.
    pub left_out: Vec<(String, String)>,
}

/// Runs every engine configuration of `scenario` and writes the results directory.
/// `on_engine` is told when each engine run starts (for progress output).
pub fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    mut on_engine: impl FnMut(&EngineSpec),
) -> Result<RunOutcome> {
    let clock = clock_setup(scenario, opts.clock.unwrap_or(scenario.clock))?;
    // Engines marked `if_installed` whose real engine is missing are left out, and said so.
    let left_out = crate::real_engine::left_out(&scenario.engines);
    let kept;
    let scenario = if left_out.is_empty() {
        scenario
    } else {
        let mut s = scenario.clone();
        s.engines.retain(|e| left_out.iter().all(|(name, _)| *name != e.name));
        kept = s;
        &kept
    };
    // Refuse before anything runs (the failure-free baseline comes first).
    crate::real_engine::check_installed(&scenario.engines).map_err(|(engine, message)| RunError::Engine {
        path: scenario.path.clone(),
        engine,
        message,
    })?;
    for engine in &scenario.engines {
        check_failure_workers(scenario, engine, &clock).map_err(|message| RunError::Engine {
            path: scenario.path.clone(),
            engine: engine.name.clone(),
            message,
        })?;
    }
    if opts.resume && !matches!(clock, ClockSetup::Live) {
        return Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: "--resume continues a killed live run; a simulated run finishes in one go (run it again)".into(),
        });
    }
    let dir = prepare_results_dir(
        scenario,
        ResultsDirRequest {
            out: opts.out.as_deref(),
            force: opts.force,
            resume: opts.resume,
        },
    )?;
    let layout = ResultsLayout::new(&dir);
    let seed = opts.seed.unwrap_or(scenario.seed);
    let duration = opts.duration.unwrap_or(scenario.duration);
    let workload = Workload::build(scenario, seed, duration)?;
    let until = duration.nanos() + scenario.drain.nanos();

    let engines: Vec<&EngineSpec> = scenario.engines.iter().collect();
    // With failures injected, a failure-free run first of the engines a failure strikes: what
    // the sink should hold, to count duplicates and losses against. An engine no failure
    // strikes runs failure-free anyway and is its own baseline (a real engine's run costs
    // tens of seconds).
    let baseline = if scenario.failures.is_empty() {
        None
    } else {
        let struck: Vec<usize> = (0..engines.len())
            .filter(|&i| scenario.failures.iter().any(|f| f.strikes(&engines[i].name)))
            .collect();
        let struck_engines: Vec<&EngineSpec> = struck.iter().map(|&i| engines[i]).collect();
        let scratch = layout.failure_free_checkpoints();
        let durability = Durability {
            checkpoint_root: Some(scratch.clone()),
            inject_failures: false,
            resume: false,
            sink_dir: None,
            discard: false,
        };
        let ctx = RunContext {
            scenario,
            workload: &workload,
            until,
            clock: &clock,
            durability: &durability,
        };
        let mut ledgers: Vec<Option<OutputLedger>> = engines.iter().map(|_| None).collect();
        for &i in &struck {
            ledgers[i] = Some(OutputLedger::default());
        }
        run_engines(&ctx, &struck_engines, &mut |_| {}, &mut |j, d| {
            ledgers[struck[j]].as_mut().expect("a struck engine's ledger").add(&d);
            Ok(())
        })?;
        let _ = std::fs::remove_dir_all(&scratch);
        Some(ledgers)
    };
    let live = matches!(clock, ClockSetup::Live);
    let discard = scenario.sink == SinkKind::Discard;
    let durability = Durability {
        checkpoint_root: Some(opts.checkpoint_root.clone().unwrap_or_else(|| layout.checkpoints())),
        inject_failures: true,
        resume: opts.resume,
        // A discarding sink writes no batch files either.
        sink_dir: (!discard).then(|| dir.clone()),
        discard,
    };
    let ctx = RunContext {
        scenario,
        workload: &workload,
        until,
        clock: &clock,
        durability: &durability,
    };
    // With `repeat`, the measurement rounds first, over one log held for them and the kept run.
    let held = (scenario.repeat > 1 && live && !opts.resume)
        .then(|| crate::drive::whole_log(&ctx))
        .flatten();
    // Every native run's outputs are checked against the reference evaluator, on either clock,
    // when the workload is small enough to evaluate (a real engine checks its own).
    let checked = scenario.failures.is_empty() && workload.expected_events() <= REFERENCE_CHECK_EVENTS && !discard;
    let rounds = match (scenario.repeat, live, opts.resume) {
        (1, _, _) => Rounds::none(),
        (repeat, false, _) => Rounds::not_applied(repeat, "the simulated clock gives the same figures in every run"),
        (repeat, true, true) => Rounds::not_applied(repeat, "a resumed run continues the killed run alone"),
        (_, true, false) => {
            let work = RoundWork {
                layout: &layout,
                checked,
            };
            crate::rounds::measure(&ctx, &engines, held.as_ref(), work, &mut on_engine)?
        }
    };
    if let Some(round) = rounds.interrupted_in() {
        // Nothing was written to the directory yet: it goes, so a new run may use its name.
        let _ = std::fs::remove_dir(&dir);
        return Err(RunError::Stopped {
            path: dir,
            message: format!(
                "interrupted (Ctrl-C) in measurement round {round} of {} (`repeat = {}`): a repeated run keeps \
                 only its last round, which had not started, so nothing was kept and the results directory is \
                 removed. Run it again, or with `--set repeat=1` for a single run",
                scenario.repeat, scenario.repeat
            ),
        });
    }
    let mut outputs = RunOutputs::create(&layout, &engines, scenario, live, checked)?;
    let mut ledgers: Vec<OutputLedger> = engines.iter().map(|_| OutputLedger::default()).collect();
    let results = run_engines_until_stopped(&ctx, &engines, held.as_ref(), &mut on_engine, &mut |i, d| {
        if baseline.is_some() {
            ledgers[i].add(&d);
        }
        outputs.add(i, &d)
    })?;
    drop(held);
    let canonical = outputs.finish(&scenario.pipeline)?;
    let interrupted = crate::watch::stop_requested().then(|| crate::interrupt::interrupted(&engines, &results));
    let runs: Vec<(&EngineSpec, _)> = engines
        .into_iter()
        .zip(results)
        .filter_map(|(spec, run)| Some((spec, run?)))
        .collect();

    let stopped = crate::watch::stopped_runs();
    let summary_ctx = SummaryContext {
        scenario,
        seed,
        duration,
        events: workload.expected_events(),
        clock: &clock,
        stopped: &stopped,
        rounds: &rounds,
    };
    let mut summary = summarize(&summary_ctx, &runs);
    if let Some((interrupted, note)) = interrupted {
        if let Some(last) = summary.runs.last_mut() {
            last.notes.push(note);
        }
        summary.interrupted = Some(interrupted);
    } else if scenario.failures.is_empty() {
        let events = workload.expected_events();
        let reference = (events <= REFERENCE_CHECK_EVENTS && !discard)
            .then(|| reference::evaluate(&scenario.pipeline, &workload.table, &workload.events()));
        for ((spec, run), (out, canonical)) in runs.iter().zip(summary.runs.iter_mut().zip(&canonical)) {
            if spec.kind.is_real() {
                continue;
            }
            out.notes.push(match &reference {
                _ if discard => "outputs not checked against the reference evaluator: the sink discards them (sink = \"discard\")".into(),
                Some(reference) => canonical.against_reference(reference, run.counts.late_dropped),
                None => format!(
                    "outputs not checked against the reference evaluator: {events} events (it runs up to {REFERENCE_CHECK_EVENTS})"
                ),
            });
        }
    }
    if let (Some(baseline), None) = (&baseline, &summary.interrupted) {
        for (((spec, run), ledger), (out, base)) in runs.iter().zip(&ledgers).zip(summary.runs.iter_mut().zip(baseline))
        {
            let events = failures::struck(&scenario.failures, spec, run);
            out.failures = failures::marks(&events);
            let upsert = executor(&spec.kind).upserts();
            out.recovery = Some(recovery(ledger, base.as_ref().unwrap_or(ledger), run, &events, upsert));
            if events.is_empty() {
                out.notes.push("no failure struck this engine run".into());
            }
        }
    }
    write_results(&dir, scenario, &summary, &runs)?;
    Ok(RunOutcome { dir, summary, left_out })
}
