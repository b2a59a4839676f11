//! What a run accumulates across batches (and across a crash and recovery).
//!
//! A query's outputs, latency records, `StreamingQueryProgress` records and counts live here
//! while batches run, and become the [`EngineRun`] when the run is finished. The value is kept
//! in the engine between [`advance`](super::MicroBatchEngine::advance) calls and handed from a
//! crashed query to its recovered successor, so nothing in it may depend on one engine
//! instance.

use crate::latency::{Component, LatencyRecorder};
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::progress::BatchProgress;
use crate::run::{Delivered, EngineRun, OutputStream, RunCounts};
use crate::time::Nanos;

/// Accumulates a run's outputs while batches run.
#[derive(Debug)]
pub(super) struct RunState {
    /// The crashes the query recovered from.
    pub(super) failures: Vec<crate::run::FailureEvent>,
    /// Outputs in the order the sink made them visible (none kept with a stream).
    pub(super) delivered: Vec<Delivered>,
    /// Where outputs go as they are delivered, instead of `delivered`.
    pub(super) stream: Option<OutputStream>,
    /// Continuous processing's committed epochs (progress records of their own).
    pub(super) epochs: Vec<serde_json::Value>,
    /// The latency of every delivered output, by component.
    pub(super) latency: LatencyRecorder,
    /// One `StreamingQueryProgress` record per batch.
    pub(super) progress: Vec<BatchProgress>,
    pub(super) counts: RunCounts,
    /// When the last batch that read data ended (the end of the run's active span).
    pub(super) last_data_batch_end: Nanos,
}

impl RunState {
    /// An empty run whose latencies are split into `components`.
    pub(super) fn new(components: &[Component]) -> Self {
        Self {
            failures: Vec::new(),
            delivered: Vec::new(),
            stream: None,
            epochs: Vec::new(),
            latency: LatencyRecorder::new(components),
            progress: Vec::new(),
            counts: RunCounts::default(),
            last_data_batch_end: 0,
        }
    }

    /// Publishes the run's figures after a batch to the stream's pulse, if it carries one, and
    /// says whether the run was asked to stop (then it stops here, noted at `now`).
    pub(super) fn beat(&self, now: Nanos) -> bool {
        let Some(pulse) = self.stream.as_ref().and_then(OutputStream::pulse) else {
            return false;
        };
        pulse.clock_at(now);
        pulse.events_total(self.counts.events);
        pulse.falling_behind_total(self.counts.falling_behind);
        let stop = pulse.stop_requested();
        if stop {
            pulse.stopped(now);
        }
        stop
    }

    /// The run's report, with the engine's final watermark and modelled costs.
    pub(super) fn finish(self, engine: &MicroBatchEngine) -> EngineRun {
        let mut modelled = Vec::new();
        if engine.cfg.scheduling != Default::default() {
            modelled.push(format!(
                "scheduling overhead: {} per batch, {} per task (charged as waiting time)",
                engine.cfg.scheduling.per_batch, engine.cfg.scheduling.per_task
            ));
        }
        EngineRun {
            delivered: self.delivered,
            side_output: Vec::new(),
            latency: self.latency,
            progress: self
                .progress
                .iter()
                .map(|p| serde_json::to_value(p).expect("progress serializes"))
                .chain(self.epochs)
                .collect(),
            counts: self.counts,
            active_span: (0, self.last_data_batch_end),
            final_watermark: engine.next_watermark,
            modelled,
            notes: Vec::new(),
            failures: self.failures,
            resident: None,
        }
    }
}
