//! Running one engine configuration on a scenario's workload, on either clock.
//!
//! Live runs hold the whole workload in memory and run on real threads. Simulated runs of
//! triggered micro-batch queries and of the per-record engine advance in segments of
//! [`SEGMENT`] virtual time: the next segment's events are appended to the source log, the
//! engine runs up to the segment's end, what it delivered is handed to the caller, and the
//! events every reader is past are released. An hour of a high-rate clickstream therefore needs
//! only a few seconds of it in memory, and the results are the same as in one piece.

use std::path::Path;

use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::live::run_live;
use streamlab_engines::dataflow::sim::SimulatedDataflow;
use streamlab_engines::microbatch::{MicroBatchEngine, Trigger};
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, NANOS_PER_SEC};

use crate::error_run::{Result, RunError};
use crate::profile::{load_profile, Profile};
use crate::spec::{ClockKind, EngineKind, EngineSpec, Scenario};
use crate::workload::Workload;

/// Virtual time a simulated run advances at once.
pub const SEGMENT: Nanos = 5 * NANOS_PER_SEC;

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

/// Runs one engine configuration of `scenario` on `workload` until `until`, handing its
/// outputs to `on_output` as they are produced (the returned run's `delivered` is empty).
pub fn run_engine(
    scenario: &Scenario,
    engine: &EngineSpec,
    workload: &Workload,
    until: Nanos,
    clock: &ClockSetup,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
) -> Result<EngineRun> {
    let refuse = |message: String| RunError::Engine {
        path: scenario.path.clone(),
        engine: engine.name.clone(),
        message,
    };
    let pipeline = &scenario.pipeline;
    let table = &workload.table;
    let partitions = workload.partitions;
    let mut run = match (&engine.kind, clock) {
        (EngineKind::MicroBatch(cfg), _) => {
            let mut mb = MicroBatchEngine::new(&engine.name, *cfg, pipeline, table, partitions)
                .map_err(|e| refuse(e.to_string()))?;
            match clock {
                ClockSetup::Live => mb.run(&mut LiveRuntime::new(cfg.workers), &workload.full_log(), until),
                ClockSetup::Simulated { profile, cluster } => {
                    if cfg.workers > cluster.cores() {
                        return Err(refuse(format!(
                            "key `workers`: {} task slots do not fit on the cluster's {} cores",
                            cfg.workers,
                            cluster.cores()
                        )));
                    }
                    let mut rt = SimRuntime::new(cfg.workers, profile.costs);
                    if matches!(cfg.trigger, Trigger::ProcessingTime { .. }) {
                        in_segments(workload, until, on_output, |log, to| {
                            mb.advance(&mut rt, log, to);
                            (mb.take_delivered(), mb.committed_offsets().to_vec())
                        })?;
                        mb.finish()
                    } else {
                        mb.run(&mut rt, &workload.full_log(), until)
                    }
                }
            }
        }
        (EngineKind::PerRecord(cfg), ClockSetup::Live) => run_live(
            &engine.name,
            cfg,
            pipeline,
            table,
            &workload.full_log(),
            LiveClock::start(),
            until,
            false,
        )
        .map_err(|e| refuse(e.to_string()))?,
        (EngineKind::PerRecord(cfg), ClockSetup::Simulated { profile, cluster }) => {
            let mut pr = SimulatedDataflow::new(
                &engine.name,
                cfg,
                pipeline,
                table,
                partitions,
                &profile.costs,
                *cluster,
                until,
                false,
            )
            .map_err(|e| refuse(e.to_string()))?;
            in_segments(workload, until, on_output, |log, to| {
                let from = to.saturating_sub(SEGMENT);
                pr.resume_sources(from);
                // The last segment drains what is still in flight after the sources stop.
                pr.advance(log, if to >= until { Nanos::MAX } else { to });
                (pr.take_delivered(), pr.consumed_offsets(partitions))
            })?;
            pr.finish()
        }
    };
    on_output(std::mem::take(&mut run.delivered))?;
    Ok(run)
}

/// Drives a segmented run: for each segment, appends its events, lets `advance` run the engine
/// to the segment's end (returning what it delivered and how far it has read), hands the
/// outputs on and releases what was read.
fn in_segments(
    workload: &Workload,
    until: Nanos,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
    mut advance: impl FnMut(&SourceLog, Nanos) -> (Vec<Delivered>, Vec<usize>),
) -> Result<()> {
    let mut log = SourceLog::from_events(workload.partitions, []);
    let mut feed = workload.feed();
    let mut buf = Vec::new();
    let mut t = 0;
    while t < until {
        let to = (t + SEGMENT).min(until);
        buf.clear();
        feed.fill_until(to, &mut buf);
        log.append(buf.drain(..));
        let (delivered, consumed) = advance(&log, to);
        on_output(delivered)?;
        log.release_before(&consumed);
        t = to;
    }
    Ok(())
}
