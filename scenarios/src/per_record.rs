//! The native per-record engine (Flink's model) behind the [`EngineExecutor`] interface: a
//! live job restarted as new incarnations after crashes, or a simulated dataflow advanced
//! segment by segment on virtual time.

use streamlab_engines::cost::Slowdown;
use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::LiveFaults;
use streamlab_engines::dataflow::sim::SimulatedDataflow;
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::fault::{CheckpointPhase, CrashPoint};
use streamlab_engines::recovery::per_record::{DurableSink, LiveJob, SimulatedJob};
use streamlab_engines::recovery::Supervisor;
use streamlab_engines::run::EngineRun;
use streamlab_engines::time::Nanos;
use streamlab_reports::layout::ResultsLayout;

use crate::clock::ClockSetup;
use crate::executor::{EngineExecutor, EngineRunContext, Prepared, RunContext, Segmented};
use crate::failures::{per_record_crashes, FailureSpec};
use crate::sink::{part_writer, parts_dir};

/// A per-record engine whose sink output is durable per checkpoint: exactly-once with
/// checkpoints (its committed transactions are written as they commit).
pub fn durable_per_record(cfg: &DataflowConfig) -> bool {
    cfg.sink == SinkGuarantee::ExactlyOnce && cfg.checkpoint_interval.is_some()
}

impl EngineExecutor for DataflowConfig {
    fn prepare<'a>(&'a self, ctx: EngineRunContext<'a>) -> std::result::Result<Prepared<'a>, String> {
        let EngineRunContext {
            run:
                RunContext {
                    scenario,
                    workload,
                    until,
                    clock,
                    durability,
                },
            engine,
        } = ctx;
        let cfg = self;
        let pipeline = &scenario.pipeline;
        let table = &workload.table;
        let partitions = workload.partitions;
        let crashes: Vec<CrashPoint> = ctx.crashes();
        let slowdowns: Vec<Slowdown> = ctx.slowdowns();
        match clock {
            ClockSetup::Live => {
                cfg.validate().map_err(|e| e.to_string())?;
                let checkpoint_dir = match (&durability.checkpoint_root, cfg.checkpoint_interval) {
                    (Some(root), Some(_)) => Some(ResultsLayout::run_checkpoints(root, &engine.name)),
                    _ => None,
                };
                if !crashes.is_empty() && checkpoint_dir.is_none() && cfg.sink == SinkGuarantee::ExactlyOnce {
                    return Err("an exactly-once sink needs checkpoints".into());
                }
                let (times, phase_crashes) = per_record_crashes(&crashes, engine, cfg)?;
                let faults = LiveFaults {
                    slowdowns,
                    phase_crashes,
                    ..Default::default()
                };
                let resume = durability.resume;
                let backlog = workload.backlog();
                // An exactly-once sink writes each committed transaction durably.
                let sink = match (&durability.sink_dir, durable_per_record(cfg)) {
                    (Some(dir), true) => Some(DurableSink {
                        writer: Box::new(part_writer(dir, &engine.name, pipeline)),
                        parts: parts_dir(dir, &engine.name),
                    }),
                    _ => None,
                };
                Ok(Prepared::Whole(Box::new(move |log, stream| {
                    let job = JobContext::new(&engine.name, cfg, pipeline, table, log.partitions());
                    let mut job = Box::new(
                        LiveJob::new(job, until)
                            .with_checkpoint_dir(checkpoint_dir, resume)
                            .with_faults(times, faults)
                            .bounded(backlog)
                            .with_durable_sink(sink)
                            .with_output_stream(stream),
                    );
                    job.advance(log, until).map_err(|e| e.to_string())?;
                    Ok(job.finish())
                })))
            }
            ClockSetup::Simulated { profile, cluster } => {
                let job = JobContext::new(&engine.name, cfg, pipeline, table, partitions);
                let pr =
                    SimulatedDataflow::new(&job, &profile.costs, *cluster, until, false).map_err(|e| e.to_string())?;
                let pr = pr.with_slowdowns(slowdowns);
                let mut pr = match (&durability.checkpoint_root, cfg.checkpoint_interval) {
                    (Some(root), Some(_)) => pr.with_checkpoint_dir(ResultsLayout::run_checkpoints(root, &engine.name)),
                    _ => pr,
                };
                let (times, in_checkpoints) = per_record_crashes(&crashes, engine, cfg)?;
                pr.crash_at(times);
                pr.crash_in_checkpoints(in_checkpoints);
                Ok(Prepared::Segmented(Segmented(Box::new(SimulatedJob::new(pr, until)))))
            }
        }
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("engine config serializes")
    }

    fn config_text(&self) -> String {
        serde_json::to_string(self).expect("configs serialize")
    }

    fn slots(&self) -> usize {
        self.parallelism
    }

    /// Task slots on the live clock (slot `i` holds subtask `i` of every operator), the
    /// simulated cluster's cores on virtual time.
    fn failure_workers(&self, clock: &ClockSetup) -> (usize, &'static str) {
        match clock {
            ClockSetup::Live => (self.parallelism, "task slots"),
            ClockSetup::Simulated { cluster, .. } => (cluster.cores(), "cores"),
        }
    }

    /// Live jobs with an exactly-once sink write each committed transaction durably.
    fn writes_sink_parts(&self, live: bool) -> bool {
        live && durable_per_record(self)
    }

    fn upserts(&self) -> bool {
        false
    }

    fn characteristic_interval_s(&self) -> f64 {
        let cfg = self;
        let commit = cfg.commit_interval.map_or(0.0, |c| c.as_ms());
        cfg.auto_watermark_interval
            .as_ms()
            .max(cfg.buffer_timeout.as_ms())
            .max(commit)
            / 1e3
    }

    fn has_cache_wait(&self) -> bool {
        self.commit_interval.is_some()
    }

    fn stability_notes(&self, _run: &EngineRun) -> Vec<String> {
        Vec::new()
    }

    /// A source subtask that never emitted a watermark, or stopped emitting one long before the
    /// others, holds the watermark downstream (the minimum over the source subtasks) unless
    /// `idle_timeout` lets it be skipped: no window closes after that point.
    fn stalled_notes(&self, run: &EngineRun, partitions: Option<usize>) -> Vec<String> {
        crate::watermark_hold::explain(self, run, partitions)
            .into_iter()
            .collect()
    }

    /// Every phase of every checkpoint the failure-free run completed, then `instants`
    /// evenly spread instants.
    fn crash_points(
        &self,
        engine: &str,
        base: &EngineRun,
        until: Nanos,
        instants: usize,
    ) -> Vec<(String, FailureSpec)> {
        let until_ms = until as f64 / 1e6;
        let checkpoints = base
            .progress
            .iter()
            .filter(|p| p["type"] == "checkpoint")
            .filter(|p| p["triggerTimeMs"].as_f64().is_some_and(|t| t < until_ms))
            .filter_map(|p| p["id"].as_u64())
            .max()
            .unwrap_or(0);
        let in_checkpoints = (1..=checkpoints).flat_map(|id| {
            CheckpointPhase::ALL.iter().map(move |&phase| {
                let mut f = FailureSpec::crash(engine);
                f.checkpoint = Some(id);
                f.checkpoint_phase = Some(phase);
                (format!("checkpoint {id}, {}", phase.name()), f)
            })
        });
        let n = instants.max(1) as u64;
        let instants = (1..=n).map(|i| {
            let at = until * i / (n + 1);
            let mut f = FailureSpec::crash(engine);
            f.at = Some(streamlab_engines::time::Span(at));
            (format!("t = {:.3} s", at as f64 / 1e9), f)
        });
        in_checkpoints.chain(instants).collect()
    }
}
