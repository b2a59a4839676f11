//! The end of `addBatch`: the idempotent sink, and what a delivered output's latency is made of.
//!
//! The sink is keyed by batch id, as Spark's exactly-once sinks are: a replayed batch it
//! already holds is not written again. A durable sink ([`SinkWriter`]) writes the batch before
//! the checkpoint's sink marker that says it holds it, so a crash in between makes the replay
//! write it again. A batch's output is visible once the sink has committed it (the end of
//! `addBatch`); the commit log comes after visibility.
//!
//! Invariants: every output of a batch is visible at the same instant; an output's latency
//! splits into trigger wait, queueing, watermark wait, scheduling, processing and the sink's
//! commit, which add up to its end-to-end latency.

use crate::checkpoint::CheckpointError;
use crate::cost::Work;
use crate::fault::{BatchPhase, EngineStop};
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::microbatch::batch::BatchContext;
use crate::microbatch::config::OutputMode;
use crate::microbatch::engine::{MicroBatchEngine, COMPONENTS};
use crate::microbatch::map_stage::StatelessRows;
use crate::microbatch::run_state::RunState;
use crate::operators::{Lineage, Output, Shape};
use crate::run::{Delivered, OutputStream};
use crate::runtime::Runtime;
use crate::time::{event_time_as_nanos, Nanos};

/// What a batch hands to its sink: a stateless query's rows, materialized from its map tasks'
/// selections as they are delivered (never gathered into a copy), or a stateful query's results.
pub(super) enum BatchOutputs<'a> {
    /// The map tasks' rows, in partition order.
    Rows(StatelessRows<'a>),
    /// Window results, join or top-N results.
    Results(&'a [Output]),
}

impl BatchOutputs<'_> {
    /// How many outputs.
    fn len(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.len(),
            Self::Results(results) => results.len(),
        }
    }

    /// Calls `f` with each output, in order.
    fn for_each(&self, mut f: impl FnMut(Output)) {
        match self {
            Self::Rows(rows) => rows.for_each(|r| f(Output::Row(r))),
            Self::Results(results) => results.iter().for_each(|&o| f(o)),
        }
    }
}

/// Where a batch's delivered outputs go: the run's `delivered`, or its stream in chunks written
/// slot by slot in place (an output is written once, not built and then copied).
struct Handoff<'r> {
    latency: &'r mut crate::latency::LatencyRecorder,
    delivered: &'r mut Vec<Delivered>,
    stream: Option<&'r OutputStream>,
    at: Nanos,
    /// A stream's chunk, and how much of it is filled.
    chunk: Vec<Delivered>,
    filled: usize,
}

impl Handoff<'_> {
    /// Delivers `output()`.
    #[inline]
    fn put(&mut self, output: impl FnOnce() -> Output) {
        let Some(stream) = self.stream else {
            self.delivered.push(Delivered {
                at: self.at,
                output: output(),
            });
            return;
        };
        if self.filled < self.chunk.len() {
            let slot = &mut self.chunk[self.filled];
            slot.output = output();
        } else {
            self.chunk.push(Delivered {
                at: self.at,
                output: output(),
            });
        }
        self.filled += 1;
        if self.filled == OutputStream::CHUNK {
            stream.send(&self.chunk);
            self.filled = 0;
        }
    }

    /// Hands the last, partly filled chunk on.
    fn finish(self) {
        if let Some(stream) = self.stream {
            stream.send(&self.chunk[..self.filled]);
        }
    }
}

/// Writes a batch's output durably. Called before the sink marker.
pub struct SinkWriter(pub Box<crate::run::OutputHook>);

impl std::fmt::Debug for SinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkWriter")
    }
}

/// When a batch ran, for decomposing the latency of what it delivered.
#[derive(Clone, Copy, Debug)]
struct BatchTiming {
    start: Nanos,
    scheduling: Nanos,
    commit: Nanos,
    end: Nanos,
}

/// Splits the latency of an output delivered by a batch into its components. The origin's
/// `ingest` is the start of the batch that read the record, `handoff` its nominal trigger time.
#[inline(always)]
fn decompose(origin: &Lineage, batch: &BatchTiming) -> Decomposition {
    let a = origin.arrival;
    let nominal = origin.handoff;
    let mut d = Decomposition::default();
    d.add(Component::TriggerWait, nominal.saturating_sub(a));
    d.add(Component::Queueing, origin.ingest.saturating_sub(a.max(nominal)));
    d.add(Component::WatermarkWait, batch.start.saturating_sub(origin.ingest));
    d.add(Component::Scheduling, batch.scheduling);
    d.add(Component::Commit, batch.commit);
    let busy = batch.end.saturating_sub(batch.start);
    d.add(
        Component::Processing,
        busy.saturating_sub(batch.scheduling + batch.commit),
    );
    d
}

impl MicroBatchEngine {
    /// Hands the batch's `outputs` to the sink (unless it already holds the batch) and records
    /// them as delivered, with their latency, when the sink has committed them. With an
    /// [`OutputStream`] they go on in chunks and none is kept.
    pub(super) fn deliver<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch: &mut BatchContext,
        outputs: BatchOutputs<'_>,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        let t_tasks = rt.now();
        batch.marks.tasks_done = t_tasks;
        self.crash_check(batch.id, BatchPhase::SinkCommit, t_tasks)?;
        let already_in_sink = self.sink_batches.contains(&batch.id);
        if !already_in_sink {
            self.write_to_sink(rt, batch.id, &outputs)?;
        }
        let t_add = rt.now();
        batch.marks.add_batch = t_add;
        let m = &batch.marks;
        let per_task = self.cfg.scheduling.per_task.nanos();
        batch.scheduling = (m.query_planning - m.get_batch) + (per_task + rt.modelled_task_launch()) * batch.waves;
        let timing = BatchTiming {
            start: m.start,
            scheduling: batch.scheduling,
            commit: t_add - t_tasks,
            end: t_add,
        };
        let count = if already_in_sink { 0 } else { outputs.len() };
        if run.stream.is_none() {
            run.delivered.reserve(count);
        }
        let mut handed = Handoff {
            latency: &mut run.latency,
            delivered: &mut run.delivered,
            stream: run.stream.as_ref(),
            at: t_add,
            chunk: Vec::new(),
            filled: 0,
        };
        if count > 0 {
            match outputs {
                BatchOutputs::Rows(rows) if handed.stream.is_some() && rt.workers() > 1 => {
                    // Streamed, the batch's rows are timed and handed on by every worker at
                    // once, each with a recorder of its own (merged here): order within a
                    // batch carries nothing, every row of it became visible at `t_add`.
                    let parts = rows.split(rt.workers());
                    let stream = handed.stream;
                    let recorders = rt.run_untimed(parts.len(), |i| {
                        let mut latency = LatencyRecorder::new(&COMPONENTS);
                        let mut part = Handoff {
                            latency: &mut latency,
                            delivered: &mut Vec::new(),
                            stream,
                            at: t_add,
                            chunk: Vec::new(),
                            filled: 0,
                        };
                        parts[i].for_each(|row| {
                            part.latency.record(t_add, &decompose(&row.lineage, &timing));
                            part.put(|| Output::Row(row));
                        });
                        part.finish();
                        latency
                    });
                    for r in &recorders {
                        handed.latency.merge(r);
                    }
                }
                BatchOutputs::Rows(rows) => rows.for_each(|row| {
                    handed.latency.record(t_add, &decompose(&row.lineage, &timing));
                    handed.put(|| Output::Row(row));
                }),
                BatchOutputs::Results(results) => {
                    let final_results = self.cfg.output_mode == OutputMode::Append;
                    for output in results {
                        let (origin, outer) = match output {
                            Output::Row(r) => (&r.lineage, false),
                            Output::Window(w) => (&w.origin, false),
                            Output::Record(r) => (&r.origin, matches!(r.shape, Shape::LeftOnly | Shape::RightOnly)),
                        };
                        let mut d = decompose(origin, &timing);
                        if outer {
                            // An unmatched row waited in the join's state, not for a window.
                            let held = std::mem::take(&mut d.0[Component::WatermarkWait as usize]);
                            d.add(Component::JoinWait, held);
                        }
                        handed.latency.record(t_add, &d);
                        if let Output::Window(w) = output {
                            if final_results && !w.is_update {
                                handed
                                    .latency
                                    .record_event_time(t_add.saturating_sub(event_time_as_nanos(w.end)));
                            }
                        }
                        handed.put(|| *output);
                    }
                }
            }
        }
        handed.finish();
        batch.num_output_rows = count as u64;
        run.counts.outputs += batch.num_output_rows;
        Ok(())
    }

    /// Writes batch `batch_id` to the sink: the durable writer first, then the sink marker.
    fn write_to_sink<R: Runtime>(
        &mut self,
        rt: &mut R,
        batch_id: u64,
        outputs: &BatchOutputs<'_>,
    ) -> Result<(), EngineStop> {
        let count = outputs.len();
        rt.charge(&Work {
            sink_records: count as u64,
            ..Default::default()
        });
        if let Some(writer) = &mut self.sink_writer {
            // A durable sink writes the batch (atomically, keyed by batch id) before the
            // marker that says it holds it: a crash in between makes the replay write it again.
            let visible_at = rt.now();
            let mut batch: Vec<Delivered> = Vec::with_capacity(count);
            outputs.for_each(|output| batch.push(Delivered { at: visible_at, output }));
            (writer.0)(batch_id, &batch).map_err(|source| CheckpointError::Io {
                path: std::path::PathBuf::from(format!("sink batch {batch_id}")),
                source,
            })?;
        }
        if let Some(dir) = &self.checkpoint {
            let bytes = dir.write_sink_marker(batch_id, count)?;
            rt.charge(&Work {
                log_writes: 1,
                logged_bytes: bytes as u64,
                ..Default::default()
            });
        }
        self.sink_batches.insert(batch_id);
        Ok(())
    }
}
