//! The latency of every output, decomposed into the parts each execution model adds.
//!
//! An output's latency runs from its origin — the scheduled arrival of the record (for a window
//! result: of the last contributing record) — to the instant it is delivered by the sink. Each
//! engine splits that interval into [`Component`]s that add up exactly to the total, and the
//! [`LatencyRecorder`] keeps an HdrHistogram per component, one for the total, one for the
//! event-time latency of final window results, and a coarse timeline for latency-over-time plots.

use std::sync::atomic::{AtomicBool, Ordering};

use hdrhistogram::Histogram;

use crate::time::Nanos;

/// A part of an output's latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// Micro-batch: from arrival to the trigger that picks the record up.
    TriggerWait,
    /// Waiting for a busy engine: a batch that starts late (overrun), a source task behind.
    Queueing,
    /// Modelled scheduling overhead (per batch and per task).
    Scheduling,
    /// Running operator code.
    Processing,
    /// Micro-batch: writing the commit log after the sink write.
    Commit,
    /// Windows: held back until the watermark passed the window.
    WatermarkWait,
    /// Per-record: waiting in network buffers and channels between tasks.
    BufferWait,
    /// Per-record: waiting for a two-phase-commit sink to make output visible.
    SinkVisibility,
    /// Per-record with a commit interval (Kafka Streams): an aggregate update held in the
    /// record cache until the next commit forwards it.
    CacheWait,
    /// An outer join's unmatched row held until no match could come any more (the watermark
    /// passed its time bound): on Flink's timer, or at Spark's next batch.
    JoinWait,
    /// A native engine on Kafka: the output's hop through the broker, from its sink handing it
    /// to the producer to streamlab's consumer fetching it from the output topic (produce →
    /// log append → fetch), measured per output.
    Broker,
}

impl Component {
    /// Number of components.
    pub const COUNT: usize = 11;

    /// All components, in index order.
    pub const ALL: [Component; Self::COUNT] = [
        Self::TriggerWait,
        Self::Queueing,
        Self::Scheduling,
        Self::Processing,
        Self::Commit,
        Self::WatermarkWait,
        Self::BufferWait,
        Self::SinkVisibility,
        Self::CacheWait,
        Self::JoinWait,
        Self::Broker,
    ];

    /// Name used in `summary.json` and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::TriggerWait => "trigger_wait",
            Self::Queueing => "queueing",
            Self::Scheduling => "scheduling",
            Self::Processing => "processing",
            Self::Commit => "commit",
            Self::WatermarkWait => "watermark_wait",
            Self::BufferWait => "buffer_wait",
            Self::SinkVisibility => "sink_visibility",
            Self::CacheWait => "cache_wait",
            Self::JoinWait => "join_wait",
            Self::Broker => "broker",
        }
    }
}

/// One output's latency, split into components (indexed by `Component as usize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decomposition(pub [Nanos; Component::COUNT]);

impl Decomposition {
    /// Adds `d` to component `c`.
    #[inline]
    pub fn add(&mut self, c: Component, d: Nanos) {
        self.0[c as usize] += d;
    }

    /// The sum of all components: the output's latency.
    #[inline]
    pub fn total(&self) -> Nanos {
        self.0.iter().sum()
    }
}

/// Outputs whose component shares are summed in 64 bits before they are folded into the exact
/// 128-bit sums: 2^16 outputs of latency under [`PENDING_BOUND`] (2^47 ns, 39 hours) each sum
/// to under 2^63. A longer latency is added to the 128-bit sums at once.
pub const PENDING_OUTPUTS: u32 = 1 << 16;

/// The longest latency summed in 64 bits first, ns (exclusive).
pub const PENDING_BOUND: Nanos = 1 << 47;

/// Width of a timeline bucket.
pub const TIMELINE_BUCKET: Nanos = 100 * crate::time::NANOS_PER_MS;

/// Latency aggregated over a timeline bucket (by delivery time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimelineBucket {
    /// Outputs delivered in the bucket.
    pub count: u64,
    /// Sum of their latencies.
    pub sum: u128,
    /// The largest latency.
    pub max: Nanos,
}

/// Histograms of latency (ns) for one engine run.
#[derive(Clone, Debug)]
pub struct LatencyRecorder {
    /// Total processing-time latency of every output.
    pub total: Histogram<u64>,
    /// Event-time latency (delivery − window end) of final window results.
    pub event_time: Histogram<u64>,
    /// Per component, the sum of its share over all outputs, ns (for exact means; the total
    /// has the histogram: percentiles are taken of the whole latency) — but the last outputs',
    /// which are in `pending` until [`PENDING_OUTPUTS`] of them are.
    component_sums: [u128; Component::COUNT],
    /// The same sums over the outputs since the last fold into `component_sums`, in 64 bits:
    /// a u64 add per component per output instead of a u128 one (exact: at most
    /// [`PENDING_OUTPUTS`] outputs under [`PENDING_BOUND`] each fit).
    pending: [u64; Component::COUNT],
    /// Outputs in `pending`.
    pending_outputs: u32,
    /// Outputs recorded.
    pub outputs: u64,
    /// Which components this engine reports (others are structurally zero).
    pub reported: Vec<Component>,
    /// Latency by delivery time, in [`TIMELINE_BUCKET`] buckets.
    pub timeline: Vec<TimelineBucket>,
}

fn histogram() -> Histogram<u64> {
    // 1 ns .. ~3 hours at 3 significant digits.
    Histogram::new_with_bounds(1, 3 * 3600 * crate::time::NANOS_PER_SEC, 3).expect("valid bounds")
}

/// Whether recorders record (see [`set_recording`]).
static RECORDING: AtomicBool = AtomicBool::new(true);

/// Turns latency recording on or off for the whole process. Off, [`LatencyRecorder::record`]
/// returns at once: engines still stamp lineage and produce every output, but no histogram or
/// timeline is updated. Only the measurement-overhead benchmark turns it off, to price what
/// recording costs; every run of the workbench records.
pub fn set_recording(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
}

impl LatencyRecorder {
    /// A recorder for an engine that reports `reported` components.
    pub fn new(reported: &[Component]) -> Self {
        Self {
            total: histogram(),
            event_time: histogram(),
            component_sums: [0; Component::COUNT],
            pending: [0; Component::COUNT],
            pending_outputs: 0,
            outputs: 0,
            reported: reported.to_vec(),
            timeline: Vec::new(),
        }
    }

    /// Records one output delivered at `delivered`. Inlined always: the caller's decomposition
    /// then stays in registers (read back from memory right after it was written, it stalled
    /// on store forwarding: a tenth of a stateless batch's time in the profile).
    #[inline(always)]
    pub fn record(&mut self, delivered: Nanos, d: &Decomposition) {
        if !RECORDING.load(Ordering::Relaxed) {
            return;
        }
        let total = d.total();
        self.total.saturating_record(total.max(1));
        if total < PENDING_BOUND {
            for (sum, &v) in self.pending.iter_mut().zip(d.0.iter()) {
                *sum += v;
            }
            self.pending_outputs += 1;
            if self.pending_outputs == PENDING_OUTPUTS {
                self.fold();
            }
        } else {
            // Longer than any run here lasts: summed exactly at once.
            for (sum, &v) in self.component_sums.iter_mut().zip(d.0.iter()) {
                *sum += v as u128;
            }
        }
        self.outputs += 1;
        self.add_to_timeline(delivered, total);
    }

    /// Adds an output of latency `total` delivered at `at` to its timeline bucket.
    #[inline(always)]
    fn add_to_timeline(&mut self, at: Nanos, total: Nanos) {
        let b = (at / TIMELINE_BUCKET) as usize;
        if self.timeline.len() <= b {
            self.timeline.resize(b + 1, TimelineBucket::default());
        }
        let bucket = &mut self.timeline[b];
        bucket.count += 1;
        bucket.sum += total as u128;
        bucket.max = bucket.max.max(total);
    }

    /// Folds the pending 64-bit sums into the exact ones.
    fn fold(&mut self) {
        for (sum, p) in self.component_sums.iter_mut().zip(&mut self.pending) {
            *sum += std::mem::take(p) as u128;
        }
        self.pending_outputs = 0;
    }

    /// The sum of component `c`'s share over every output recorded, ns.
    pub fn component_sum(&self, c: Component) -> u128 {
        self.component_sums[c as usize] + self.pending[c as usize] as u128
    }

    /// Records the event-time latency of a final window result.
    #[inline]
    pub fn record_event_time(&mut self, latency: Nanos) {
        self.event_time.saturating_record(latency.max(1));
    }

    /// Adds everything `other` recorded (outputs of another task of the same run).
    pub fn merge(&mut self, other: &LatencyRecorder) {
        self.total.add(&other.total).expect("same histogram bounds");
        self.event_time.add(&other.event_time).expect("same histogram bounds");
        for (c, sum) in Component::ALL.iter().zip(self.component_sums.iter_mut()) {
            *sum += other.component_sum(*c);
        }
        self.outputs += other.outputs;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), TimelineBucket::default());
        }
        for (b, o) in self.timeline.iter_mut().zip(&other.timeline) {
            b.count += o.count;
            b.sum += o.sum;
            b.max = b.max.max(o.max);
        }
    }

    /// A recorder for this run's outputs as received downstream instead of as delivered by its
    /// sink (a native engine writing to a Kafka topic that streamlab reads): it keeps the sums of
    /// the components this one recorded (each output's share up to its delivery) and reports
    /// `hop` too; [`LatencyRecorder::record_receipt`] then adds every output's total, measured
    /// to its receipt, and its hop. Recorded once per output this recorder recorded, the
    /// components still add up to the mean total.
    pub fn toward_receipt(&self, hop: Component) -> LatencyRecorder {
        let mut reported = self.reported.clone();
        if !reported.contains(&hop) {
            reported.push(hop);
        }
        let mut out = LatencyRecorder::new(&reported);
        for c in Component::ALL {
            out.component_sums[c as usize] = self.component_sum(c);
        }
        out
    }

    /// Records one output received at `received`, `total` after its origin and `hop_ns` after its
    /// sink delivered it (its share of component `hop`); `window_end`: a final window result's
    /// end, whose event-time latency is taken at receipt.
    pub fn record_receipt(
        &mut self,
        received: Nanos,
        total: Nanos,
        hop: Component,
        hop_ns: Nanos,
        window_end: Option<Nanos>,
    ) {
        self.total.saturating_record(total.max(1));
        self.component_sums[hop as usize] += hop_ns as u128;
        self.outputs += 1;
        self.add_to_timeline(received, total);
        if let Some(end) = window_end {
            self.record_event_time(received.saturating_sub(end));
        }
    }

    /// Mean of component `c` over all outputs, in ns.
    pub fn component_mean(&self, c: Component) -> f64 {
        match self.outputs {
            0 => 0.0,
            n => self.component_sum(c) as f64 / n as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_received_downstream_keep_their_components_and_add_the_hop() {
        let mut engine = LatencyRecorder::new(&[Component::TriggerWait, Component::Processing]);
        let mut d = Decomposition::default();
        d.add(Component::TriggerWait, 300);
        d.add(Component::Processing, 100);
        engine.record(1_000, &d);
        engine.record(2_000, &d);
        let mut received = engine.toward_receipt(Component::Broker);
        received.record_receipt(1_050, 450, Component::Broker, 50, None);
        received.record_receipt(2_150, 550, Component::Broker, 150, Some(2_000));
        assert_eq!(received.outputs, 2);
        assert_eq!(received.component_mean(Component::Broker), 100.0);
        assert_eq!(received.component_mean(Component::TriggerWait), 300.0);
        let components: f64 = Component::ALL.iter().map(|&c| received.component_mean(c)).sum();
        assert_eq!(components, 500.0, "the components add up to the mean total");
        assert_eq!(received.total.mean(), 500.0);
        assert!(received.reported.contains(&Component::Broker));
        assert_eq!(received.event_time.len(), 1);
        assert_eq!(received.timeline.len(), 1);
    }
}
