//! What an engine run hands back: the sink's records, the late records' side output, latency,
//! per-batch or per-checkpoint progress, and counts. The same shape for both engines, so the
//! scenario runner and the reports treat them alike.

use std::collections::BTreeMap;

use crate::latency::LatencyRecorder;
use crate::operators::{Output, Row};
use crate::reference::WindowId;
use crate::time::Nanos;

/// An output as the sink delivered it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delivered {
    /// When the output became visible downstream.
    pub at: Nanos,
    /// The output.
    pub output: Output,
}

/// Writes outputs out durably: `(batch or checkpoint id, outputs)`. The durable sinks of both
/// engines are one of these.
pub type OutputHook = dyn FnMut(u64, &[Delivered]) -> std::io::Result<()> + Send;

/// Where a sink's outputs go as it makes them visible, once their latency is recorded: a run
/// with a stream keeps none of its outputs (its [`EngineRun::delivered`] stays empty), so its
/// memory does not grow with its length. Outputs arrive in delivery order, in chunks of at most
/// [`OutputStream::CHUNK`] (a micro-batch hands a batch's outputs in such chunks).
///
/// Cloned, it is the same stream: a restarted incarnation of an engine delivers into the stream
/// of the one it replaces. The receiver is called under a lock, once per chunk (never per output).
/// A stream may carry the run's [`RunPulse`](crate::pulse::RunPulse), which the live drivers
/// publish their progress to and read a stop request from.
///
/// A stream whose receiver is itself a sink (a Kafka producer) is [`OutputStream::at_once`]:
/// an output is handed on as soon as it is visible, never held to fill a chunk, so the time
/// it waits downstream is the sink's, not the workbench's.
#[derive(Clone)]
pub struct OutputStream(
    std::sync::Arc<std::sync::Mutex<Box<StreamReceiver>>>,
    Option<std::sync::Arc<crate::pulse::RunPulse>>,
    bool,
);

/// What an [`OutputStream`] hands each chunk of delivered outputs to.
pub type StreamReceiver = dyn FnMut(&[Delivered]) + Send;

impl OutputStream {
    /// Outputs handed over at once, at most.
    pub const CHUNK: usize = 1024;

    /// A stream into `receiver`.
    pub fn new(receiver: impl FnMut(&[Delivered]) + Send + 'static) -> Self {
        Self(
            std::sync::Arc::new(std::sync::Mutex::new(Box::new(receiver))),
            None,
            false,
        )
    }

    /// The same stream, handed every output as soon as it is visible (see the type's docs).
    pub fn at_once(mut self) -> Self {
        self.2 = true;
        self
    }

    /// Whether outputs are handed on as soon as they are visible.
    #[inline]
    pub fn is_at_once(&self) -> bool {
        self.2
    }

    /// The same stream, carrying the run's `pulse`.
    pub fn with_pulse(mut self, pulse: std::sync::Arc<crate::pulse::RunPulse>) -> Self {
        self.1 = Some(pulse);
        self
    }

    /// The run's pulse, if the stream carries one.
    pub fn pulse(&self) -> Option<&std::sync::Arc<crate::pulse::RunPulse>> {
        self.1.as_ref()
    }

    /// Spark's `noop` sink, Flink's `DiscardingSink`: the outputs are delivered (visible, their
    /// latency recorded, counted) and dropped.
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    /// Hands `outputs` on.
    pub fn send(&self, outputs: &[Delivered]) {
        if outputs.is_empty() {
            return;
        }
        let mut receiver = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (receiver)(outputs);
    }
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputStream")
    }
}

/// Counters of an engine run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Events read from the source.
    pub events: u64,
    /// Outputs delivered by the sink.
    pub outputs: u64,
    /// Micro-batches run (0 for the per-record engine).
    pub batches: u64,
    /// Batches that took longer than the trigger interval.
    pub falling_behind: u64,
    /// Records dropped as late.
    pub late_dropped: u64,
    /// Network buffers sent between tasks (per-record engine).
    pub buffers_sent: u64,
    /// Events read a second time after a restart (counted in `events` too).
    pub replayed: u64,
    /// Keyed-state accesses (a window update: get, modify, put).
    pub state_accesses: u64,
    /// Time spent in them: measured on the wall clock, priced by the cost model on virtual time.
    pub state_access_ns: u64,
    /// Task attempts that failed and were run again (micro-batch task failures and lost
    /// workers; the query kept running).
    pub task_retries: u64,
    /// The most rows a join, deduplication or top-N held in state (0 for other pipelines):
    /// the largest total after a batch (micro-batch), each subtask's peak summed (per-record).
    pub peak_state_rows: u64,
}

/// An injected failure and the engine's restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureEvent {
    /// When the engine crashed.
    pub at: Nanos,
    /// When it was running again.
    pub restarted_at: Nanos,
    /// Events it read again because they were after its last checkpoint.
    pub replayed: u64,
}

/// Everything an engine run produced.
#[derive(Debug)]
pub struct EngineRun {
    /// The sink's records, in delivery order.
    pub delivered: Vec<Delivered>,
    /// Late records routed to the side output (per-record engine).
    pub side_output: Vec<Row>,
    /// Latency histograms and timeline.
    pub latency: LatencyRecorder,
    /// One JSON object per batch (micro-batch, Spark's `StreamingQueryProgress` fields) or per
    /// watermark/stats interval (per-record).
    pub progress: Vec<serde_json::Value>,
    /// Counters.
    pub counts: RunCounts,
    /// The processing time at which the first event arrived and the last one was read.
    pub active_span: (Nanos, Nanos),
    /// The engine's final watermark (event time, ms).
    pub final_watermark: i64,
    /// What in this run is modelled rather than measured.
    pub modelled: Vec<String>,
    /// What a reader must know about this run that is measured, not modelled (a real engine's
    /// start-up, its sending lag, its outputs against the reference evaluator).
    pub notes: Vec<String>,
    /// Injected failures and the restarts after them.
    pub failures: Vec<FailureEvent>,
    /// Resident memory of the process, `(start, peak, final)` bytes, when the driver measured
    /// it (live runs on Linux): at the engine's start (its input already in memory), the
    /// highest during the run, and at its end.
    pub resident: Option<(u64, u64, u64)>,
}

impl EngineRun {
    /// Continues this run with what a later incarnation of the engine (after a restart)
    /// produced: outputs, latency, progress and counts add up.
    pub fn append(&mut self, later: EngineRun) {
        self.delivered.extend(later.delivered);
        self.side_output.extend(later.side_output);
        self.latency.merge(&later.latency);
        self.progress.extend(later.progress);
        let (c, l) = (&mut self.counts, later.counts);
        c.events += l.events;
        c.outputs += l.outputs;
        c.batches += l.batches;
        c.falling_behind += l.falling_behind;
        c.late_dropped += l.late_dropped;
        c.buffers_sent += l.buffers_sent;
        c.replayed += l.replayed;
        c.state_accesses += l.state_accesses;
        c.state_access_ns += l.state_access_ns;
        c.task_retries += l.task_retries;
        c.peak_state_rows = c.peak_state_rows.max(l.peak_state_rows);
        self.resident = match (self.resident, later.resident) {
            (Some((s, p, _)), Some((_, q, f))) => Some((s, p.max(q), f)),
            (a, b) => b.or(a),
        };
        self.active_span = (
            self.active_span.0.min(later.active_span.0),
            self.active_span.1.max(later.active_span.1),
        );
        self.final_watermark = later.final_watermark;
        for m in later.modelled {
            if !self.modelled.contains(&m) {
                self.modelled.push(m);
            }
        }
        for n in later.notes {
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
        self.failures.extend(later.failures);
    }

    /// A complete-mode query's final result table, in the reference evaluator's shape
    /// ([`crate::reference::ReferenceResult::windows`]): the windows delivered at the run's
    /// last delivery instant (each complete-mode batch delivers the whole table). Empty if
    /// nothing was delivered.
    pub fn final_table(&self) -> BTreeMap<WindowId, (u64, f64)> {
        let Some(last) = self.delivered.last().map(|d| d.at) else {
            return BTreeMap::new();
        };
        // Delivered in time order: the last instant's outputs are the tail.
        let from = self.delivered.partition_point(|d| d.at < last);
        self.delivered[from..]
            .iter()
            .filter_map(|d| match d.output {
                Output::Window(w) => Some(((w.key, w.start, w.end), (w.count, w.value))),
                Output::Row(_) | Output::Record(_) => None,
            })
            .collect()
    }

    /// Events per second over the active span.
    pub fn throughput_eps(&self) -> f64 {
        let (a, b) = self.active_span;
        let secs = b.saturating_sub(a) as f64 / 1e9;
        if secs <= 0.0 {
            0.0
        } else {
            self.counts.events as f64 / secs
        }
    }
}
