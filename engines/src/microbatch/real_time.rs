//! Spark's Real-Time Mode (`trigger(realTime="5 seconds")`, Spark 4.1+; stateful from 4.3): the
//! step between micro-batches and per-record streaming.
//!
//! A Real-Time Mode query still runs batches, but each one is a long-running job of
//! `checkpoint_interval`: when it starts, every task of every stage is launched at once — one
//! per source partition, one per shuffle partition — and the shuffle between them is pipelined
//! (`MarkPipelinedShuffleForRealTimeMode`), so a record is read, goes through the map-like
//! operators, crosses the exchange and updates its window's state as soon as it arrives, and
//! the changed row is written to the sink then, not at the end of the batch. The batch's cost
//! of planning and launching tasks is paid once per interval, not per record; at the end of the
//! interval the query writes what a micro-batch writes — the offsets it reached (a Real-Time
//! batch cannot know its end offsets in advance, so its offset log entry is written at its end),
//! the state store version and the commit log — and the next batch starts. So latency is close
//! to per-record streaming (the time to read and process one record) while the checkpoint is
//! the micro-batch engine's, per interval. The watermark is a batch's, as in micro-batch mode:
//! computed from the event times a batch read, applied from the next batch (state eviction and
//! late-row dropping move once per interval).
//!
//! What the mode refuses, with Spark's reason ([`validate`]): an output mode other than update
//! (`STREAMING_REAL_TIME_MODE.OUTPUT_MODE_NOT_SUPPORTED`), and operators outside its allowlist
//! (`OPERATOR_OR_SINK_NOT_IN_ALLOWLIST`): a stream-stream join, a deduplication, a top-N, a
//! second aggregation, session windows. It also needs a core for every task of every stage at
//! once (checked in `MicroBatchEngine::new`).
//!
//! Invariants: the runtime is called in one fixed order per wake-up (read, charge, deliver), so
//! a simulated run is deterministic; `committed` moves only at a batch's end, after its outputs
//! were delivered; outputs are delivered in the order they became visible. Not modelled yet: a
//! crash inside a Real-Time batch (the scenario layer refuses `[[failure]]` with this trigger).

use crate::cost::Work;
use crate::fault::EngineStop;
use crate::latency::{Component, Decomposition};
use crate::microbatch::config::{MicroBatchConfig, MicroBatchConfigError, OutputMode};
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::log::OffsetEntry;
use crate::microbatch::run_state::RunState;
use crate::operators::fxhash::partition_of;
use crate::operators::{Lineage, Output, WindowResult};
use crate::pipeline::{PipelineSpec, WindowSpec};
use crate::run::Delivered;
use crate::runtime::Runtime;
use crate::source::SourceLog;
use crate::time::{as_ms, EventTime, Nanos, Span};

/// Spark's reason a Real-Time Mode query is refused, for a key of the engine table.
fn refuse(key: &str, message: String) -> Result<(), MicroBatchConfigError> {
    Err(MicroBatchConfigError {
        key: key.into(),
        message,
    })
}

/// What Spark's Real-Time Mode refuses, checked before anything runs (the native model refuses
/// what the real Spark would).
pub(super) fn validate(
    cfg: &MicroBatchConfig,
    checkpoint_interval: Span,
    pipeline: &PipelineSpec,
) -> Result<(), MicroBatchConfigError> {
    if checkpoint_interval.nanos() == 0 {
        return refuse(
            "trigger.checkpoint_interval",
            "must be greater than 0, e.g. \"5s\" (how long each Real-Time Mode batch runs before its checkpoint)"
                .into(),
        );
    }
    if cfg.output_mode != OutputMode::Update {
        return refuse(
            "output_mode",
            "Spark's Real-Time Mode runs in update mode only (STREAMING_REAL_TIME_MODE.OUTPUT_MODE_NOT_SUPPORTED: \
             \"set the output mode to Update\"); set `output_mode = \"update\"`"
                .into(),
        );
    }
    let not_allowed = |what: &str| {
        refuse(
            "trigger",
            format!(
                "{what} is not in Spark's Real-Time Mode operator allowlist \
                 (STREAMING_REAL_TIME_MODE.OPERATOR_OR_SINK_NOT_IN_ALLOWLIST): Real-Time Mode runs map-like operators, \
                 a lookup join against a static table and a tumbling or sliding window aggregation; use a \
                 `processing_time` trigger for this pipeline"
            ),
        )
    };
    if pipeline.join.is_some() {
        return not_allowed("a stream-stream join (StreamingSymmetricHashJoinExec)");
    }
    if pipeline.dedup.is_some() {
        return not_allowed("a deduplication within the watermark (StreamingDeduplicateWithinWatermarkExec)");
    }
    if pipeline.top_n.is_some() {
        return not_allowed("a top-N (a max per window joined back)");
    }
    if pipeline.has_graph_stage() {
        return not_allowed("a second aggregation over an aggregation");
    }
    if matches!(pipeline.aggregate.map(|a| a.window), Some(WindowSpec::Session { .. })) {
        return not_allowed("a session window (SessionWindowStateStoreRestoreExec / SaveExec)");
    }
    Ok(())
}

/// The tasks a Real-Time batch runs at once: every source partition's and, for an
/// aggregation, every shuffle partition's.
pub(super) fn concurrent_tasks(cfg: &MicroBatchConfig, pipeline: &PipelineSpec, partitions: usize) -> usize {
    partitions
        + if pipeline.is_stateful() {
            cfg.shuffle_partitions
        } else {
            0
        }
}

/// One Real-Time batch's tallies, for its progress record.
#[derive(Default)]
struct BatchTally {
    input_rows: u64,
    output_rows: u64,
    max_event_time: Option<EventTime>,
}

impl MicroBatchEngine {
    /// Real-Time Mode: batches of `checkpoint_interval`, each a long-running job processing
    /// records as they arrive, until `until`.
    pub(super) fn run_real_time<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        checkpoint_interval: Nanos,
        run: &mut RunState,
    ) -> Result<(), EngineStop> {
        let partitions = source.partitions();
        let tasks = concurrent_tasks(&self.cfg, &self.pipeline, partitions) as u64;
        let mut results: Vec<WindowResult> = Vec::new();
        let mut delivered: Vec<Delivered> = Vec::new();
        while rt.now() < until {
            let batch_start = rt.now();
            let batch_id = self.next_batch_id;
            self.next_batch_id += 1;
            // Launch every task of the batch at once: planning and launches, once per interval.
            rt.charge(&Work {
                batch_jobs: 1,
                tasks_launched: tasks,
                partitions_polled: partitions as u64,
                ..Default::default()
            });
            rt.wait_until(rt.now() + self.cfg.scheduling.per_batch.nanos() + self.cfg.scheduling.per_task.nanos());
            self.previous_watermark = self.watermark;
            self.watermark = self.next_watermark;
            for op in &mut self.state {
                op.advance_watermark(self.watermark, rt.now(), &mut results);
            }
            results.clear();
            let batch_end = (batch_start + checkpoint_interval).min(until);
            let mut tally = BatchTally::default();
            loop {
                let now = rt.now();
                if now >= batch_end {
                    break;
                }
                self.process_arrived(rt, source, &mut tally, &mut results, &mut delivered, run);
                if !delivered.is_empty() {
                    run.counts.outputs += delivered.len() as u64;
                    match &run.stream {
                        None => run.delivered.append(&mut delivered),
                        Some(stream) => {
                            for chunk in delivered.chunks(crate::run::OutputStream::CHUNK) {
                                stream.send(chunk);
                            }
                            delivered.clear();
                        }
                    }
                }
                let next_arrival = (0..partitions)
                    .filter_map(|p| source.arrival_at(p, self.read_up_to[p]))
                    .min()
                    .unwrap_or(batch_end);
                rt.wait_until(next_arrival.min(batch_end).max(rt.now()));
            }
            // The batch's checkpoint: offsets reached, the state version, the commit log.
            if let Some(max) = tally.max_event_time {
                self.next_watermark = self.next_watermark.max(max - self.cfg.watermark_delay.whole_ms());
            }
            let state_rows: usize = self.state.iter().map(|op| op.state_rows()).sum();
            let state_bytes: usize = self.state.iter().map(|op| op.state_bytes()).sum();
            rt.charge(&Work {
                log_writes: 2 + u64::from(!self.state.is_empty()),
                logged_bytes: 128 + state_bytes as u64,
                ..Default::default()
            });
            self.logs.write_offsets(&OffsetEntry {
                batch_id,
                offsets: self.read_up_to.clone(),
                watermark: self.watermark,
            });
            self.logs.write_commit(batch_id, self.next_watermark);
            self.committed = self.read_up_to.clone();
            run.counts.batches += 1;
            run.epochs.push(serde_json::json!({
                "run": self.name,
                "batchId": batch_id,
                "realTime": true,
                "timestamp_ms": as_ms(batch_start),
                "durationMs": as_ms(rt.now().saturating_sub(batch_start)),
                "numInputRows": tally.input_rows,
                "numOutputRows": tally.output_rows,
                "stateRows": state_rows,
                "watermark": self.next_watermark,
            }));
        }
        Ok(())
    }

    /// Reads what has arrived on every partition, runs it through the pipelined stages and
    /// delivers what changed (update mode: a window's new value as soon as its record is in).
    fn process_arrived<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        tally: &mut BatchTally,
        results: &mut Vec<WindowResult>,
        delivered: &mut Vec<Delivered>,
        run: &mut RunState,
    ) {
        let read_at = rt.now();
        let shuffle = self.state.len();
        let mut work = Work::default();
        let mut rows = Vec::new();
        for p in 0..source.partitions() {
            let from = self.read_up_to[p];
            let to = source.available(p, read_at);
            if to <= from {
                continue;
            }
            for e in source.read(p, from, to).iter() {
                tally.max_event_time = Some(tally.max_event_time.map_or(e.event_time, |m| m.max(e.event_time)));
                let lineage = Lineage {
                    arrival: e.arrival,
                    ingest: read_at,
                    handoff: read_at,
                    recv: read_at,
                };
                if let Some(row) = self.chain.apply(e, lineage) {
                    if shuffle == 0 {
                        rows.push(row);
                    } else {
                        let s = partition_of(self.state[0].key_of(&row), shuffle);
                        self.state[s].insert(&row, read_at, results);
                        work.state_updates += 1;
                        work.shuffle_rows += 1;
                    }
                }
            }
            let n = (to - from) as u64;
            work.events_read += n;
            work.events_chained += n;
            work.modelled += n * self.cfg.modelled_cost_per_record.nanos();
            tally.input_rows += n;
            run.counts.events += n;
            self.read_up_to[p] = to;
        }
        if work.events_read == 0 {
            return;
        }
        for op in &mut self.state {
            op.emit_updates(read_at, results);
        }
        work.results = results.len() as u64;
        work.sink_records = (rows.len() + results.len()) as u64;
        rt.charge(&work);
        let at = rt.now();
        run.last_data_batch_end = at;
        let mut record = |origin: &Lineage, output: Output| {
            let mut d = Decomposition::default();
            d.add(Component::Queueing, origin.ingest.saturating_sub(origin.arrival));
            d.add(Component::Processing, at.saturating_sub(origin.ingest));
            run.latency.record(at, &d);
            delivered.push(Delivered { at, output });
        };
        for row in rows {
            record(&row.lineage, Output::Row(row));
        }
        for w in results.drain(..) {
            let mut w = w;
            w.handoff = at;
            w.recv = at;
            record(&w.origin, Output::Window(w));
        }
        tally.output_rows += work.sink_records;
    }
}
