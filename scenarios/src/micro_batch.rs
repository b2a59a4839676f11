//! The native micro-batch engine (Spark Structured Streaming's model) behind the
//! [`EngineExecutor`] interface: a [`RecoveringQuery`] on the live runtime, or on the
//! simulated one — advanced segment by segment when it is triggered on processing time.

use std::sync::Arc;

use streamlab_engines::checkpoint::WriteBehind;
use streamlab_engines::cost::Slowdown;
use streamlab_engines::fault::{BatchPhase, CrashPoint};
use streamlab_engines::microbatch::checkpoint::CheckpointDir;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::recovery::micro_batch::{RecoveringQuery, SupervisedQuery};
use streamlab_engines::recovery::per_record::live_clock;
use streamlab_engines::recovery::Supervisor;
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveRuntime, SimRuntime};
use streamlab_engines::time::Nanos;
use streamlab_reports::layout::ResultsLayout;

use crate::clock::ClockSetup;
use crate::executor::{fingerprint, EngineExecutor, EngineRunContext, Prepared, RunContext, Segmented};
use crate::failures::FailureSpec;
use crate::sink::{batch_file_writer, batch_file_writer_behind};

impl EngineExecutor for MicroBatchConfig {
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
        if matches!(cfg.trigger, Trigger::RealTime { .. }) && !scenario.failures.is_empty() {
            return Err(
                "[[failure]] with `trigger = { kind = \"real_time\" }`: a crash inside a Real-Time Mode batch is not \
                 modelled yet; use a `processing_time` trigger to inject failures"
                    .into(),
            );
        }
        let slowdowns: Vec<Slowdown> = ctx.slowdowns();
        let checkpoint = match (&durability.checkpoint_root, crashes.is_empty()) {
            (Some(root), _) => Some(
                CheckpointDir::open(
                    &ResultsLayout::run_checkpoints(root, &engine.name),
                    &fingerprint(scenario, engine),
                )
                .map_err(|e| e.to_string())?,
            ),
            (None, true) => None,
            (None, false) => return Err("injected crashes need a checkpoint directory to recover from".into()),
        };
        // A simulated run without injected crashes writes its checkpoint and sink files on a
        // thread of their own (the cost model prices them; the engines' thread need not wait
        // for the file system): the same files, in the same order.
        let behind = (matches!(clock, ClockSetup::Simulated { .. })
            && crashes.is_empty()
            && !durability.resume
            && checkpoint.is_some())
        .then(|| Arc::new(WriteBehind::start()));
        let checkpoint = match &behind {
            Some(w) => checkpoint.map(|c| c.written_behind(Arc::clone(w))),
            None => checkpoint,
        };
        let checkpoint_path = checkpoint.as_ref().map(|c| c.path().to_path_buf());
        let mut query = match &durability.resume {
            true => RecoveringQuery::resume(
                &engine.name,
                *cfg,
                pipeline,
                table,
                partitions,
                checkpoint.ok_or("--resume needs a checkpoint directory")?,
            )?,
            false => RecoveringQuery::new(&engine.name, *cfg, pipeline, table, partitions, checkpoint, crashes)?,
        };
        if let Some(dir) = &durability.sink_dir {
            let writer = match &behind {
                Some(w) => batch_file_writer_behind(dir, &engine.name, pipeline, Arc::clone(w)),
                None => batch_file_writer(dir, &engine.name, pipeline),
            };
            query.engine().set_sink_writer(Some(writer));
        }
        let resume = durability.resume;
        let task_failures = ctx.injected(|f| f.task_failure(engine));
        let worker_losses = ctx.injected(|f| f.worker_loss(engine));
        match clock {
            ClockSetup::Live => {
                let slowdowns = slowdowns.clone();
                Ok(Prepared::Whole(Box::new(move |log, stream| {
                    query.engine().set_output_stream(stream);
                    let clock = live_clock(checkpoint_path.as_deref(), resume).map_err(|e| e.to_string())?;
                    let rt = LiveRuntime::with_clock(clock, cfg.workers)
                        .with_pinned_workers(cfg.pin_workers)
                        .map_err(|e| format!("key `pin_workers`: the worker threads could not be started: {e}"))?
                        .with_slowdowns(slowdowns)
                        .with_task_failures(task_failures)
                        .with_worker_losses(worker_losses);
                    let mut query = Box::new(SupervisedQuery::new(query, rt));
                    query.advance(log, until).map_err(|e| e.to_string())?;
                    Ok(query.finish())
                })))
            }
            ClockSetup::Simulated { profile, cluster } => {
                if cfg.workers > cluster.cores() {
                    return Err(format!(
                        "key `workers`: {} task slots do not fit on the cluster's {} cores",
                        cfg.workers,
                        cluster.cores()
                    ));
                }
                let rt = SimRuntime::new(cfg.workers, profile.costs)
                    .with_slowdowns(slowdowns)
                    .with_task_failures(task_failures)
                    .with_worker_losses(worker_losses);
                let mut query = Box::new(SupervisedQuery::new(query, rt));
                if matches!(cfg.trigger, Trigger::ProcessingTime { .. }) {
                    Ok(Prepared::Segmented(Segmented(query)))
                } else {
                    Ok(Prepared::Whole(Box::new(move |log, stream| {
                        query.query().engine().set_output_stream(stream);
                        query.advance(log, until).map_err(|e| e.to_string())?;
                        Ok(query.finish())
                    })))
                }
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
        self.workers
    }

    fn failure_workers(&self, _clock: &ClockSetup) -> (usize, &'static str) {
        (self.workers, "workers")
    }

    fn writes_sink_parts(&self, _live: bool) -> bool {
        true
    }

    fn upserts(&self) -> bool {
        self.output_mode != OutputMode::Append
    }

    fn characteristic_interval_s(&self) -> f64 {
        match self.trigger {
            Trigger::ProcessingTime { interval } => interval.as_ms() / 1e3,
            Trigger::Continuous { checkpoint_interval } | Trigger::RealTime { checkpoint_interval } => {
                checkpoint_interval.as_ms() / 1e3
            }
            Trigger::Once | Trigger::AvailableNow { .. } => 0.0,
        }
    }

    fn has_cache_wait(&self) -> bool {
        false
    }

    /// Falling-behind batches and Spark's stability condition (processing time ≤ trigger
    /// interval); whether the query kept up is judged from the backlog and latency trend
    /// ([`crate::stability::judge`]).
    fn stability_notes(&self, run: &EngineRun) -> Vec<String> {
        let cfg = self;
        let mut notes = Vec::new();
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
        if let (Some(_), false) = (cfg.interval(), data_batches.is_empty()) {
            let mean = data_batches.iter().map(|(d, _)| d).sum::<f64>() / data_batches.len() as f64;
            notes.extend(cfg.trigger.stability_note(mean));
        }
        notes
    }

    /// Every phase of every batch of the failure-free run.
    fn crash_points(
        &self,
        engine: &str,
        base: &EngineRun,
        _until: Nanos,
        _instants: usize,
    ) -> Vec<(String, FailureSpec)> {
        let batches = base.counts.batches;
        (0..batches)
            .flat_map(|b| {
                BatchPhase::ALL
                    .iter()
                    .map(move |&p| (format!("batch {b}, {}", p.name()), (b, p)))
            })
            .map(|(label, (b, p))| {
                let mut f = FailureSpec::crash(engine);
                f.batch = Some(b);
                f.phase = Some(p);
                (label, f)
            })
            .collect()
    }
}
