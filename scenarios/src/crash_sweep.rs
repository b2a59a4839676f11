//! Exactly-once, checked rather than claimed: crash an engine at every point of its work, on
//! virtual time, and compare what its sink holds at the end with a failure-free run.
//!
//! Micro-batch queries crash in every phase of every batch (offsets written or not, tasks run
//! or not, sink committed or not, commit log written or not); per-record jobs crash at evenly
//! spread instants, which fall in every phase of their checkpoints. Update and complete modes
//! write to an upsert sink, so for them the final value of every window is compared (how the
//! updates were split between batches depends on when the query restarted). Each point runs from a
//! fresh checkpoint directory and recovers from it. An exactly-once configuration must show
//! zero duplicates and zero losses at every point; an at-least-once one shows its duplicates.

use std::path::PathBuf;

use std::sync::atomic::{AtomicU64, Ordering};

use streamlab_engines::fault::{BatchPhase, CheckpointPhase};
use streamlab_engines::microbatch::OutputMode;
use streamlab_engines::time::Nanos;

use crate::error_run::{Result, RunError};
use crate::execute::{clock_setup, run_engines, Durability};
use crate::recovery::{recovery_cost, OutputLedger};
use crate::spec::{ClockKind, EngineKind, EngineSpec, FailureKindName, FailureSpec, Scenario};
use crate::workload::Workload;

/// One crash point's outcome.
#[derive(Clone, Debug)]
pub struct CrashOutcome {
    /// The engine run.
    pub engine: String,
    /// Where it crashed, in words.
    pub point: String,
    /// Outputs delivered more often than without the crash.
    pub duplicates: u64,
    /// Outputs delivered less often than without the crash.
    pub losses: u64,
    /// Events read again after the restart.
    pub replayed: u64,
    /// Crash → first output after the restart, ms.
    pub downtime_ms: Option<f64>,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("streamlab-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sweeps crash points over every engine of `scenario` (at most `max_points` per engine, spread
/// evenly), on the simulated clock. `on_point` hears each outcome.
pub fn crash_sweep(
    scenario: &Scenario,
    seed: u64,
    max_points: usize,
    mut on_point: impl FnMut(&CrashOutcome),
) -> Result<Vec<CrashOutcome>> {
    let clock = clock_setup(scenario, ClockKind::Simulated)?;
    let workload = Workload::build(scenario, seed, scenario.duration)?;
    let until = scenario.duration.nanos() + scenario.drain.nanos();
    let mut out = Vec::new();
    for engine in &scenario.engines {
        let mut s = scenario.clone();
        s.failures.clear();
        let run =
            |s: &Scenario, tag: &str, inject: bool| -> Result<(OutputLedger, streamlab_engines::run::EngineRun)> {
                let tmp = TempDir::new(tag);
                let durability = Durability {
                    checkpoint_root: Some(tmp.0.clone()),
                    inject_failures: inject,
                    resume: false,
                    sink_dir: None,
                };
                let mut ledger = OutputLedger::default();
                let mut runs = run_engines(
                    s,
                    &[engine],
                    &workload,
                    until,
                    &clock,
                    &durability,
                    &mut |_| {},
                    &mut |_, d| {
                        ledger.add(&d);
                        Ok(())
                    },
                )?;
                Ok((ledger, runs.pop().expect("one run")))
            };
        let (baseline, base_run) = run(&s, "crash-sweep-base", false)?;
        let points = crash_points(engine, &base_run, until, max_points);
        if points.is_empty() {
            return Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: format!(
                    "engine `{}`: no crash points (the run has no batches or is too short)",
                    engine.name
                ),
            });
        }
        for (label, failure) in points {
            s.failures = vec![failure];
            let (ledger, failed) = run(&s, "crash-sweep-point", true)?;
            let upsert = matches!(&engine.kind, EngineKind::MicroBatch(c) if c.output_mode != OutputMode::Append);
            let (duplicates, losses) = if upsert {
                ledger.compare_upserts(&baseline)
            } else {
                ledger.compare(&baseline)
            };
            let outcome = CrashOutcome {
                engine: engine.name.clone(),
                point: label,
                duplicates,
                losses,
                replayed: failed.counts.replayed,
                downtime_ms: failed
                    .failures
                    .first()
                    .and_then(|f| recovery_cost(&ledger.timeline, f).downtime_ms),
            };
            on_point(&outcome);
            out.push(outcome);
        }
    }
    Ok(out)
}

fn crash_points(
    engine: &EngineSpec,
    base: &streamlab_engines::run::EngineRun,
    until: Nanos,
    max_points: usize,
) -> Vec<(String, FailureSpec)> {
    let failure = |at: Option<Nanos>, batch: Option<u64>, phase: Option<BatchPhase>| FailureSpec {
        kind: FailureKindName::Crash,
        at: at.map(streamlab_engines::time::Span),
        duration: None,
        factor: None,
        worker: None,
        scope: None,
        batch,
        phase,
        checkpoint: None,
        checkpoint_phase: None,
        engine: Some(engine.name.clone()),
    };
    let all: Vec<(String, FailureSpec)> = match &engine.kind {
        EngineKind::MicroBatch(_) => {
            let batches = base.counts.batches;
            (0..batches)
                .flat_map(|b| {
                    BatchPhase::ALL
                        .iter()
                        .map(move |&p| (format!("batch {b}, {}", p.name()), (b, p)))
                })
                .map(|(label, (b, p))| (label, failure(None, Some(b), Some(p))))
                .collect()
        }
        EngineKind::PerRecord(_) => {
            // Every phase of every checkpoint the failure-free run completed, then instants.
            let checkpoints = base
                .progress
                .iter()
                .filter(|p| p["type"] == "checkpoint")
                .filter_map(|p| p["id"].as_u64())
                .max()
                .unwrap_or(0);
            let in_checkpoints = (1..=checkpoints).flat_map(|id| {
                CheckpointPhase::ALL.iter().map(move |&phase| {
                    let mut f = failure(None, None, None);
                    f.checkpoint = Some(id);
                    f.checkpoint_phase = Some(phase);
                    (format!("checkpoint {id}, {}", phase.name()), f)
                })
            });
            let n = max_points.max(1) as u64;
            let instants = (1..=n).map(|i| {
                let at = until * i / (n + 1);
                (format!("t = {:.3} s", at as f64 / 1e9), failure(Some(at), None, None))
            });
            in_checkpoints.chain(instants).collect()
        }
    };
    if all.len() <= max_points {
        return all;
    }
    let step = all.len() as f64 / max_points as f64;
    (0..max_points)
        .map(|i| all[(i as f64 * step) as usize].clone())
        .collect()
}

/// The table `streamlab crash-sweep` prints: per engine, points, duplicates, losses, replayed.
pub fn crash_table(outcomes: &[CrashOutcome]) -> String {
    let mut engines: Vec<&str> = outcomes.iter().map(|o| o.engine.as_str()).collect();
    engines.dedup();
    let mut s = format!(
        "{:<28} {:>7} {:>11} {:>8} {:>10} {:>16}\n",
        "engine", "points", "duplicates", "losses", "replayed", "max downtime ms"
    );
    for e in engines {
        let rows: Vec<&CrashOutcome> = outcomes.iter().filter(|o| o.engine == e).collect();
        let dup: u64 = rows.iter().map(|o| o.duplicates).sum();
        let loss: u64 = rows.iter().map(|o| o.losses).sum();
        let replayed: u64 = rows.iter().map(|o| o.replayed).sum();
        let downtime = rows.iter().filter_map(|o| o.downtime_ms).fold(0.0f64, f64::max);
        s += &format!(
            "{:<28} {:>7} {:>11} {:>8} {:>10} {:>16.1}\n",
            e,
            rows.len(),
            dup,
            loss,
            replayed,
            downtime
        );
    }
    s
}
