//! The source subtask: Flink's source operator with its chained stateless operators.
//!
//! A [`SourceTask`] owns the source partitions `p` with `p % parallelism == index`, reads what
//! has arrived by `now` (at most `READ_CHUNK` records per partition per step), runs the
//! chained filter and join over that chunk a pass at a time (`operators/columnar/chain.rs`; a
//! chain with `convert` or a stream–stream join's inputs a record at a time), and builds each
//! selected row straight into its [`RowOutput`]: a keyed exchange (to a windowed
//! aggregation, each row projected onto what the aggregate reads: [`RowOutput::Projected`]),
//! an exchange to the sink, or the sink chained into the same task. It generates
//! bounded-out-of-orderness watermarks every `auto_watermark_interval`, declares itself idle
//! after `idle_timeout` without data, runs the output flusher every `buffer_timeout`, and
//! injects checkpoint barriers behind everything it has read.
//!
//! Invariants: offsets only move forward (except when restored from a checkpoint); a barrier
//! goes out before any record read after it was requested; the per-record path (read, chain,
//! emit) allocates nothing.

use crossbeam_channel::Sender;

use crate::dataflow::config::DataflowConfig;
use crate::dataflow::network::{GateControl, Link, Message, OutputGate, Projecting};
use crate::dataflow::tasks::{SinkOperator, Step};
use crate::dataflow::watermark::SplitWatermarks;
use crate::event::Event;
use crate::operators::columnar::{ChunkChain, CHUNK};
use crate::operators::fxhash::partition_of;
use crate::operators::graph::ExchangeKey;
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{ProjectedColumns, ProjectedRow, Projection};
use crate::operators::{Lineage, Row};
use crate::source::SourceLog;
use crate::time::{EventTime, Nanos};

/// Most records a source subtask reads from one partition before looking at its timers again:
/// one chunk of the chain's passes.
const READ_CHUNK: usize = CHUNK;

/// Where a source subtask's rows go.
#[derive(Debug)]
pub enum RowOutput<L = Sender<Message<Row>>> {
    /// A keyed exchange to the keyed subtasks, by the keyed stage's key.
    Keyed {
        /// The gate.
        gate: OutputGate<Row, L>,
        /// How a row is routed.
        key: ExchangeKey,
    },
    /// A keyed exchange to windowed-aggregation subtasks: each row projected onto the key,
    /// value, event time and lineage the aggregate reads, and routed by that key (the
    /// aggregation's exchange key).
    Projected {
        /// The gate, on the rows' links.
        gate: OutputGate<ProjectedRow, Projecting<L>>,
        /// What the aggregate reads.
        projection: Projection,
        /// A chunk's keys and values (scratch).
        columns: Box<ProjectedColumns>,
    },
    /// An exchange to the (single) sink subtask.
    ToSink(OutputGate<Row, L>),
    /// The sink, chained into this task.
    Chained(Box<SinkOperator>),
}

impl<L: Link<Row>> RowOutput<L> {
    #[inline]
    fn emit(&mut self, row: Row, now: Nanos) {
        match self {
            RowOutput::Keyed { gate, key } => {
                let ch = match gate.fan_out() {
                    1 => 0,
                    n => partition_of(key.of(&row), n),
                };
                gate.push(ch, row);
            }
            RowOutput::Projected { gate, projection, .. } => {
                let p = projection.of(&row.event, row.campaign, &row.lineage);
                let ch = match gate.fan_out() {
                    1 => 0,
                    n => partition_of(p.key, n),
                };
                gate.push_with(ch, || p);
            }
            RowOutput::ToSink(gate) => gate.push(0, row),
            RowOutput::Chained(sink) => sink.deliver_row(&row, now),
        }
    }

    /// Emits the row `event` joined to `campaign` makes, built straight into its network
    /// buffer ([`OutputGate::push_with`]).
    #[inline]
    fn emit_joined(&mut self, event: &Event, campaign: u32, lineage: Lineage, now: Nanos) {
        let make = || Row {
            event: *event,
            campaign,
            lineage,
        };
        match self {
            RowOutput::Keyed { gate, key } => {
                let ch = match gate.fan_out() {
                    1 => 0,
                    n => partition_of(key.of_parts(event, campaign), n),
                };
                gate.push_with(ch, make);
            }
            RowOutput::Projected { gate, projection, .. } => {
                let p = projection.of(event, campaign, &lineage);
                let ch = match gate.fan_out() {
                    1 => 0,
                    n => partition_of(p.key, n),
                };
                gate.push_with(ch, || p);
            }
            RowOutput::ToSink(gate) => gate.push_with(0, make),
            RowOutput::Chained(sink) => sink.deliver_row(&make(), now),
        }
    }

    /// Emits the rows of `chunk`'s events `selected` picked, joined to their campaigns, in
    /// order: to a single channel, a buffer's share at a time ([`OutputGate::extend_with`]);
    /// otherwise row by row.
    #[inline]
    fn emit_selected(&mut self, chunk: &[Event], selected: &ChunkChain, lineage: Lineage, now: Nanos) {
        let (rows, campaigns) = (selected.rows(), selected.campaigns());
        let make = |k: usize| {
            let event = &chunk[rows[k] as usize];
            Row {
                event: *event,
                campaign: campaigns[k],
                lineage: Lineage {
                    arrival: event.arrival,
                    ..lineage
                },
            }
        };
        match self {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) if gate.fan_out() == 1 => {
                gate.extend_with(0, rows.len(), make);
            }
            RowOutput::Projected {
                gate,
                projection,
                columns,
            } => {
                projection.columns(chunk, rows, campaigns, columns);
                let project = |k: usize| {
                    let event = &chunk[rows[k] as usize];
                    let (key, value) = columns.get(k);
                    ProjectedRow {
                        key,
                        value,
                        event_time: event.event_time,
                        arrival: event.arrival,
                        ingest: lineage.ingest,
                        seq: event.seq,
                        kind: event.kind,
                    }
                };
                let n = gate.fan_out();
                gate.scatter_with(rows.len(), |k| partition_of(columns.keys[k], n), project);
            }
            _ => {
                for (&r, &campaign) in rows.iter().zip(campaigns) {
                    let event = &chunk[r as usize];
                    let lineage = Lineage {
                        arrival: event.arrival,
                        ..lineage
                    };
                    self.emit_joined(event, campaign, lineage, now);
                }
            }
        }
    }

    /// The gate, whichever rows it carries; none for a chained sink.
    fn gate(&mut self) -> Option<&mut dyn GateControl> {
        match self {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) => Some(gate),
            RowOutput::Projected { gate, .. } => Some(gate),
            RowOutput::Chained(_) => None,
        }
    }

    /// [`Self::gate`], to read.
    fn gate_ref(&self) -> Option<&dyn GateControl> {
        match self {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) => Some(gate),
            RowOutput::Projected { gate, .. } => Some(gate),
            RowOutput::Chained(_) => None,
        }
    }
}

/// A source subtask with its chained stateless operators.
#[derive(Debug)]
pub struct SourceTask<L = Sender<Message<Row>>> {
    /// Subtask index.
    pub index: usize,
    partitions: Vec<usize>,
    offsets: Vec<usize>,
    chain: StatelessChain,
    /// The chain's selection over the chunk being read (a chain without `convert` or a
    /// stream–stream join's inputs runs a pass at a time: [`StatelessChain::columns`]).
    selected: ChunkChain,
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
            selected: ChunkChain::default(),
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
            // Two chunks are the most one step reads (this one and the one read ahead).
            let available = source.available_from(p, from, now, from + 2 * READ_CHUNK + 1);
            if available == from {
                continue; // nothing new: a poll that keeps up finds none now and then
            }
            let to = available.min(from + READ_CHUNK);
            // With the chain run a pass at a time, the next chunk is read with this one, so
            // the first pass touches its events early.
            let columns = self.chain.columns();
            let read_to = if columns.is_some() {
                available.min(to + READ_CHUNK)
            } else {
                to
            };
            let events = source.read(p, from, read_to);
            let (chunk, ahead) = events.split_at(to - from);
            // The generator keeps only the largest event time: one note per chunk is the same.
            if let Some(t) = chunk.iter().map(|e| e.event_time).max() {
                self.watermarks.on_event(i, t);
            }
            let lineage = Lineage {
                arrival: 0,
                ingest: now,
                handoff: now,
                recv: now,
            };
            match columns {
                Some(columns) => {
                    self.selected.select(&columns, chunk, ahead);
                    self.out.emit_selected(chunk, &self.selected, lineage, now);
                }
                None => {
                    for e in chunk {
                        let lineage = Lineage {
                            arrival: e.arrival,
                            ..lineage
                        };
                        if let Some(row) = self.chain.apply(e, lineage) {
                            self.out.emit(row, now);
                        }
                    }
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
        // Asked only of a bounded source: an unbounded one polls on regardless.
        let exhausted = || {
            self.partitions
                .iter()
                .zip(&self.offsets)
                .all(|(&p, &o)| o >= source.end_offset(p))
        };
        if now >= until || (bounded && exhausted()) {
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
        if self.buffer_timeout > 0 && self.out.gate_ref().is_some_and(|g| g.has_pending()) {
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
            RowOutput::Chained(sink) => Some(&mut **sink),
            _ => None,
        }
    }

    /// Injects checkpoint barrier `id` behind every record read so far and returns this
    /// subtask's state for the checkpoint: its read positions. A chained sink pre-commits.
    pub fn inject_barrier(&mut self, id: u64) -> Vec<(usize, usize)> {
        match &mut self.out {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) => gate.broadcast_barrier(id),
            RowOutput::Projected { gate, .. } => gate.broadcast_barrier(id),
            RowOutput::Chained(sink) => sink.pre_commit(id),
        }
        self.positions().collect()
    }

    /// Sets the read positions (restoring from a checkpoint).
    pub fn restore_positions(&mut self, positions: &[(usize, usize)]) {
        for &(p, o) in positions {
            if let Some(i) = self.partitions.iter().position(|&q| q == p) {
                self.offsets[i] = o;
            }
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
        std::hint::black_box(self.selected.touched());
        let stats = SourceStats {
            index: self.index,
            positions: self.positions().collect(),
            events_read: self.events_read,
            last_read_at: self.last_read_at,
            watermark_log: std::mem::take(&mut self.watermark_log),
            buffers_sent: self.out.gate_ref().map_or(0, |g| g.buffers_sent()),
        };
        if let RowOutput::Chained(sink) = self.out {
            return (Some(*sink), stats);
        }
        if let Some(gate) = self.out.gate() {
            if bounded {
                gate.broadcast_watermark(EventTime::MAX);
            }
            gate.finish();
        }
        (None, stats)
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
