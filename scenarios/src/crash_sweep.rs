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

use streamlab_engines::time::Nanos;

use crate::clock::clock_setup;
use crate::drive::run_engines;
use crate::error_run::{Result, RunError};
use crate::executor::{executor, Durability, RunContext};
use crate::recovery::{recovery_cost, OutputLedger};
use crate::spec::{ClockKind, EngineSpec, FailureSpec, Scenario};
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
                    discard: false,
                };
                let ctx = RunContext {
                    scenario: s,
                    workload: &workload,
                    until,
                    clock: &clock,
                    durability: &durability,
                };
                let mut ledger = OutputLedger::default();
                let mut runs = run_engines(&ctx, &[engine], &mut |_| {}, &mut |_, d| {
                    ledger.add(&d);
                    Ok(())
                })?;
                Ok((ledger, runs.pop().expect("one run")))
            };
        let (baseline, base_run) = run(&s, "crash-sweep-base", false)?;
        // Crashes strike while the input flows: a restarted job regenerates its watermark from
        // the records it reads again, and one restored after the last record could never move
        // it in a finite run (Flink does not checkpoint watermarks either; a real stream's next
        // records would move it on), so what the watermark still had to release would count
        // as lost.
        let points = crash_points(engine, &base_run, scenario.duration.nanos(), max_points);
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
            let upsert = executor(&engine.kind).upserts();
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
                    .and_then(|f| recovery_cost(&ledger.timeline, f, None).downtime_ms),
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
    let all = executor(&engine.kind).crash_points(&engine.name, base, until, max_points);
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
