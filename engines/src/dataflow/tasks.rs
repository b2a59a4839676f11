//! The subtasks of the per-record engine, written against `now` instants handed in by a
//! driver: they never read a clock, so the live driver (threads) and a simulated one (virtual
//! time) run the same code.
//!
//! * [`SourceTask`] reads its partitions as records arrive, runs the chained filter and join,
//!   and writes rows into its output (a keyed exchange, an exchange to the sink, or the sink
//!   chained in the same task); it emits periodic watermarks and idleness.
//! * [`WindowTask`] is a window operator instance behind a keyed exchange.
//! * [`SinkOperator`] delivers outputs and records their latency, decomposed.

use crate::dataflow::config::DataflowConfig;
use crossbeam_channel::Sender;

use crate::dataflow::network::{Link, Message, OutputGate};
use crate::dataflow::outcome::WindowOutcome;
use crate::dataflow::watermark::{SplitWatermarks, WatermarkHolder};
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::operators::fxhash::partition_of;
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{EmitPolicy, TimeSemantics, WindowedAggregation};
use crate::operators::{Lineage, Output, Row, WindowResult};
use crate::pipeline::{field_value, Aggregation, Field};
use crate::run::Delivered;
use crate::source::SourceLog;
use crate::time::{event_time_as_nanos, EventTime, Nanos};

/// The components a per-record output's latency is split into.
pub const COMPONENTS: [Component; 5] = [
    Component::Queueing,
    Component::BufferWait,
    Component::Processing,
    Component::WatermarkWait,
    Component::CacheWait,
];

/// Most records a source subtask reads from one partition before looking at its timers again.
const READ_CHUNK: usize = 1024;

/// The end of the pipeline: delivers outputs and records their latency.
#[derive(Debug)]
pub struct SinkOperator {
    /// Latency of everything delivered.
    pub latency: LatencyRecorder,
    /// What was delivered and not yet taken away, in order.
    pub delivered: Vec<Delivered>,
    /// How many outputs were delivered in all.
    pub delivered_total: u64,
}

impl Default for SinkOperator {
    fn default() -> Self {
        Self {
            latency: LatencyRecorder::new(&COMPONENTS),
            delivered: Vec::new(),
            delivered_total: 0,
        }
    }
}

impl SinkOperator {
    /// Delivers a row of a stateless pipeline at `now`; `row.lineage.recv` is when this task got it.
    #[inline]
    pub fn deliver_row(&mut self, row: &Row, now: Nanos) {
        let l = &row.lineage;
        let mut d = Decomposition::default();
        d.add(Component::Queueing, l.ingest.saturating_sub(l.arrival));
        d.add(Component::BufferWait, l.recv.saturating_sub(l.handoff));
        d.add(
            Component::Processing,
            l.handoff.saturating_sub(l.ingest) + now.saturating_sub(l.recv),
        );
        self.latency.record(now, &d);
        self.delivered.push(Delivered {
            at: now,
            output: Output::Row(*row),
        });
        self.delivered_total += 1;
    }

    /// Delivers a window result at `now`; `r.recv` is when this task got it.
    #[inline]
    pub fn deliver_result(&mut self, r: &WindowResult, now: Nanos) {
        let o = &r.origin;
        let mut d = Decomposition::default();
        d.add(Component::Queueing, o.ingest.saturating_sub(o.arrival));
        d.add(
            Component::BufferWait,
            o.recv.saturating_sub(o.handoff) + r.recv.saturating_sub(r.handoff),
        );
        let held = if r.is_update {
            Component::CacheWait
        } else {
            Component::WatermarkWait
        };
        d.add(held, r.fired_at.saturating_sub(o.recv));
        d.add(
            Component::Processing,
            o.handoff.saturating_sub(o.ingest) + r.handoff.saturating_sub(r.fired_at) + now.saturating_sub(r.recv),
        );
        self.latency.record(now, &d);
        if !r.is_update {
            self.latency
                .record_event_time(now.saturating_sub(event_time_as_nanos(r.end)));
        }
        self.delivered.push(Delivered {
            at: now,
            output: Output::Window(*r),
        });
        self.delivered_total += 1;
    }
}

/// Where a source subtask's rows go.
#[derive(Debug)]
pub enum RowOutput<L = Sender<Message<Row>>> {
    /// A keyed exchange to the window subtasks, by the key of `key_by`.
    Keyed {
        /// The gate.
        gate: OutputGate<Row, L>,
        /// The key field.
        key_by: Field,
    },
    /// An exchange to the (single) sink subtask.
    ToSink(OutputGate<Row, L>),
    /// The sink, chained into this task.
    Chained(SinkOperator),
}

impl<L: Link<Row>> RowOutput<L> {
    #[inline]
    fn emit(&mut self, row: Row, now: Nanos) {
        match self {
            RowOutput::Keyed { gate, key_by } => {
                let ch = partition_of(field_value(&row.event, row.campaign, *key_by), gate.fan_out());
                gate.push(ch, row);
            }
            RowOutput::ToSink(gate) => gate.push(0, row),
            RowOutput::Chained(sink) => sink.deliver_row(&row, now),
        }
    }

    fn gate(&mut self) -> Option<&mut OutputGate<Row, L>> {
        match self {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) => Some(gate),
            RowOutput::Chained(_) => None,
        }
    }
}

/// What a subtask wants next from its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More work is ready now.
    Continue,
    /// Nothing to do before this instant.
    WaitUntil(Nanos),
    /// The subtask has finished.
    Done,
}

/// A source subtask with its chained stateless operators.
#[derive(Debug)]
pub struct SourceTask<L = Sender<Message<Row>>> {
    /// Subtask index.
    pub index: usize,
    partitions: Vec<usize>,
    offsets: Vec<usize>,
    chain: StatelessChain,
    watermarks: SplitWatermarks,
    out: RowOutput<L>,
    watermark_interval: Nanos,
    next_watermark: Nanos,
    buffer_timeout: Nanos,
    next_flush: Nanos,
    idle_timeout: Option<Nanos>,
    last_data_at: Nanos,
    idle: bool,
    /// Events read so far.
    pub events_read: u64,
    /// When the last event was read.
    pub last_read_at: Nanos,
    /// Every watermark emitted: (processing time, watermark).
    pub watermark_log: Vec<(Nanos, EventTime)>,
}

impl<L: Link<Row>> SourceTask<L> {
    /// Subtask `index` of `parallelism`, owning partitions `p` with `p % parallelism == index`.
    pub fn new(
        index: usize,
        parallelism: usize,
        source_partitions: usize,
        chain: StatelessChain,
        cfg: &DataflowConfig,
        out: RowOutput<L>,
    ) -> Self {
        let partitions: Vec<usize> = (0..source_partitions).filter(|p| p % parallelism == index).collect();
        let offsets = vec![0; partitions.len()];
        let watermarks = SplitWatermarks::new(partitions.len(), cfg.out_of_orderness.whole_ms());
        Self {
            index,
            partitions,
            offsets,
            chain,
            watermarks,
            out,
            watermark_interval: cfg.auto_watermark_interval.nanos(),
            next_watermark: cfg.auto_watermark_interval.nanos(),
            buffer_timeout: cfg.buffer_timeout.nanos(),
            next_flush: cfg.buffer_timeout.nanos(),
            idle_timeout: cfg.idle_timeout.map(|t| t.nanos()),
            last_data_at: 0,
            idle: false,
            events_read: 0,
            last_read_at: 0,
            watermark_log: Vec::new(),
        }
    }

    /// Does what is due at `now`: reads arrived records, flushes buffers, emits a watermark or
    /// idleness. Bounded: finish once every owned partition is consumed.
    pub fn step(&mut self, source: &SourceLog, now: Nanos, until: Nanos, bounded: bool) -> Step {
        // The output flusher ticks on its own period: first the tick that fell due (it ships
        // what was buffered before now), then this step's records wait for the next one.
        if self.buffer_timeout > 0 && now >= self.next_flush {
            if let Some(g) = self.out.gate() {
                g.flush_all();
            }
            self.next_flush = (now / self.buffer_timeout + 1) * self.buffer_timeout;
        }
        let mut read_any = false;
        let mut backlog = false;
        for i in 0..self.partitions.len() {
            let p = self.partitions[i];
            let from = self.offsets[i];
            let available = source.available_from(p, from, now);
            let to = available.min(from + READ_CHUNK);
            for e in source.read(p, from, to) {
                self.watermarks.on_event(i, e.event_time);
                let lineage = Lineage {
                    arrival: e.arrival,
                    ingest: now,
                    handoff: now,
                    recv: now,
                };
                if let Some(row) = self.chain.apply(e, lineage) {
                    self.out.emit(row, now);
                }
            }
            self.events_read += (to - from) as u64;
            self.offsets[i] = to;
            read_any |= to > from;
            backlog |= to < available;
        }
        if read_any {
            self.last_data_at = now;
            self.last_read_at = now;
            self.idle = false;
        }
        if now >= self.next_watermark {
            if let Some(wm) = self.watermarks.on_periodic_emit() {
                self.watermark_log.push((now, wm));
                if let Some(g) = self.out.gate() {
                    g.broadcast_watermark(wm);
                }
            }
            self.next_watermark = (now / self.watermark_interval + 1) * self.watermark_interval;
        }
        if let Some(t) = self.idle_timeout {
            if !self.idle && now.saturating_sub(self.last_data_at) >= t {
                self.idle = true;
                if let Some(g) = self.out.gate() {
                    g.broadcast_idle();
                }
            }
        }
        let exhausted = self
            .partitions
            .iter()
            .zip(&self.offsets)
            .all(|(&p, &o)| o >= source.end_offset(p));
        if now >= until || (bounded && exhausted) {
            return Step::Done;
        }
        if backlog {
            return Step::Continue;
        }
        let mut next = until.min(self.next_watermark);
        for (&p, &o) in self.partitions.iter().zip(&self.offsets) {
            if let Some(a) = source.arrival_at(p, o) {
                next = next.min(a);
            }
        }
        if self.buffer_timeout > 0 && self.out.gate().is_some_and(|g| g.has_pending()) {
            next = next.min(self.next_flush);
        }
        if let (Some(t), false) = (self.idle_timeout, self.idle) {
            next = next.min(self.last_data_at + t);
        }
        Step::WaitUntil(next.max(now + 1))
    }

    /// Outputs delivered so far by a sink chained into this task.
    pub fn chained_deliveries(&self) -> usize {
        match &self.out {
            RowOutput::Chained(sink) => sink.delivered.len(),
            _ => 0,
        }
    }

    /// The sink chained into this task, if any.
    pub fn chained_sink_mut(&mut self) -> Option<&mut SinkOperator> {
        match &mut self.out {
            RowOutput::Chained(sink) => Some(sink),
            _ => None,
        }
    }

    /// (partition, next offset to read) for each partition this subtask owns.
    pub fn positions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.partitions.iter().copied().zip(self.offsets.iter().copied())
    }

    /// Ends the subtask: a bounded source first emits the final watermark (`EventTime::MAX`, as
    /// Flink does at the end of bounded input), then every channel gets end-of-stream.
    /// Returns the chained sink, if any.
    pub fn finish(mut self, bounded: bool) -> (Option<SinkOperator>, SourceStats) {
        let stats = SourceStats {
            index: self.index,
            positions: self.positions().collect(),
            events_read: self.events_read,
            last_read_at: self.last_read_at,
            watermark_log: std::mem::take(&mut self.watermark_log),
            buffers_sent: self.out.gate().map_or(0, |g| g.buffers_sent),
        };
        match self.out {
            RowOutput::Keyed { mut gate, .. } | RowOutput::ToSink(mut gate) => {
                if bounded {
                    gate.broadcast_watermark(EventTime::MAX);
                }
                gate.finish();
                (None, stats)
            }
            RowOutput::Chained(sink) => (Some(sink), stats),
        }
    }
}

/// What a finished source subtask reports.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// The subtask's index.
    pub index: usize,
    /// (partition, next offset to read) for each partition it owned.
    pub positions: Vec<(usize, usize)>,
    /// Events read.
    pub events_read: u64,
    /// When the last event was read.
    pub last_read_at: Nanos,
    /// Watermarks emitted: (processing time, watermark).
    pub watermark_log: Vec<(Nanos, EventTime)>,
    /// Network buffers shipped.
    pub buffers_sent: u64,
}

/// Where a window subtask's results go.
#[derive(Debug)]
pub enum ResultOutput<L = Sender<Message<WindowResult>>> {
    /// An exchange to the sink subtask.
    Gate(OutputGate<WindowResult, L>),
    /// The sink, chained into this task.
    Chained(SinkOperator),
}

/// A window operator instance behind a keyed exchange.
#[derive(Debug)]
pub struct WindowTask<L = Sender<Message<WindowResult>>> {
    /// Subtask index.
    pub index: usize,
    op: WindowedAggregation,
    holder: WatermarkHolder,
    out: ResultOutput<L>,
    scratch: Vec<WindowResult>,
    buffer_timeout: Nanos,
    next_flush: Nanos,
    commit_interval: Option<Nanos>,
    next_commit: Nanos,
    /// Late records (side output).
    pub side_output: Vec<Row>,
}

impl<L: Link<WindowResult>> WindowTask<L> {
    /// Subtask `index` with `inputs` upstream subtasks.
    pub fn new(index: usize, inputs: usize, agg: Aggregation, cfg: &DataflowConfig, out: ResultOutput<L>) -> Self {
        let semantics = TimeSemantics::flink(cfg.allowed_lateness.whole_ms());
        let commit_interval = cfg.commit_interval.map(|c| c.nanos());
        let policy = if commit_interval.is_some() {
            EmitPolicy::OnUpdate
        } else {
            EmitPolicy::OnWatermark
        };
        Self {
            index,
            op: WindowedAggregation::new(agg, semantics, policy),
            commit_interval,
            next_commit: commit_interval.unwrap_or(0),
            holder: WatermarkHolder::new(inputs),
            out,
            scratch: Vec::new(),
            buffer_timeout: cfg.buffer_timeout.nanos(),
            next_flush: cfg.buffer_timeout.nanos(),
            side_output: Vec::new(),
        }
    }

    /// Handles one message at `now`. Returns the emptied buffer (for the pool), and whether
    /// every input has finished (the task is then done and has sent end-of-stream downstream).
    pub fn on_message(&mut self, msg: Message<Row>, now: Nanos) -> (Option<Vec<Row>>, bool) {
        // A flusher tick that fell due before this message ships what was buffered before it.
        self.run_flusher(now);
        match msg {
            Message::Data { from, mut items } => {
                self.holder.mark_active(from);
                for row in &mut items {
                    row.lineage.recv = now;
                    if !self.op.insert(row, now, &mut self.scratch) {
                        self.side_output.push(*row);
                    }
                }
                self.forward(now);
                return (Some(items), false);
            }
            Message::Watermark { from, watermark } => {
                if let Some(wm) = self.holder.update(from, watermark) {
                    self.op.advance_watermark(wm, now, &mut self.scratch);
                }
            }
            Message::Idle { from } => {
                if let Some(wm) = self.holder.mark_idle(from) {
                    self.op.advance_watermark(wm, now, &mut self.scratch);
                }
            }
            Message::End { from } => {
                if self.holder.finish(from) {
                    if let ResultOutput::Gate(g) = &mut self.out {
                        g.finish();
                    }
                    return (None, true);
                }
            }
        }
        self.forward(now);
        (None, false)
    }

    fn forward(&mut self, now: Nanos) {
        for mut r in self.scratch.drain(..) {
            r.handoff = now;
            match &mut self.out {
                ResultOutput::Gate(g) => g.push(0, r),
                ResultOutput::Chained(sink) => {
                    r.recv = now;
                    sink.deliver_result(&r, now)
                }
            }
        }
    }

    /// When the task next needs [`WindowTask::on_tick`]: the output flusher, if it has
    /// anything to flush, or the next commit (Kafka Streams mode).
    pub fn next_deadline(&self) -> Option<Nanos> {
        let flush = match &self.out {
            ResultOutput::Gate(g) if self.buffer_timeout > 0 && g.has_pending() => Some(self.next_flush),
            _ => None,
        };
        let commit = self.commit_interval.map(|_| self.next_commit);
        match (flush, commit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs what is due at `now`: a commit forwards the cached aggregate updates; the output
    /// flusher ships partial buffers.
    pub fn on_tick(&mut self, now: Nanos) {
        if let Some(interval) = self.commit_interval {
            if now >= self.next_commit {
                self.op.emit_updates(now, &mut self.scratch);
                self.forward(now);
                self.next_commit = (now / interval + 1) * interval;
            }
        }
        self.run_flusher(now);
    }

    /// The output flusher's tick, if one fell due by `now`: ships what is buffered.
    fn run_flusher(&mut self, now: Nanos) {
        if self.buffer_timeout > 0 && now >= self.next_flush {
            if let ResultOutput::Gate(g) = &mut self.out {
                g.flush_all();
            }
            self.next_flush = (now / self.buffer_timeout + 1) * self.buffer_timeout;
        }
    }

    /// Outputs delivered so far by a sink chained into this task.
    pub fn chained_deliveries(&self) -> usize {
        match &self.out {
            ResultOutput::Chained(sink) => sink.delivered.len(),
            ResultOutput::Gate(_) => 0,
        }
    }

    /// The sink chained into this task, if any.
    pub fn chained_sink_mut(&mut self) -> Option<&mut SinkOperator> {
        match &mut self.out {
            ResultOutput::Chained(sink) => Some(sink),
            ResultOutput::Gate(_) => None,
        }
    }

    /// The subtask's current watermark.
    pub fn watermark(&self) -> EventTime {
        self.holder.current()
    }

    /// Ends the task: returns the chained sink (if any) and what the task leaves behind.
    pub fn finish(mut self) -> (Option<SinkOperator>, WindowOutcome) {
        let mut outcome = WindowOutcome {
            index: self.index,
            watermark: self.holder.current(),
            late_dropped: self.op.take_counters().late_dropped,
            side_output: self.side_output,
            buffers_sent: 0,
        };
        match self.out {
            ResultOutput::Gate(g) => {
                outcome.buffers_sent = g.buffers_sent;
                (None, outcome)
            }
            ResultOutput::Chained(sink) => (Some(sink), outcome),
        }
    }
}
