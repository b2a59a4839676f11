//! The subtasks of the per-record engine, written against `now` instants handed in by a
//! driver: they never read a clock, so the live driver (threads) and a simulated one (virtual
//! time) run the same code.
//!
//! * [`SourceTask`] reads its partitions as records arrive, runs the chained filter and join,
//!   and writes rows into its output (a keyed exchange, an exchange to the sink, or the sink
//!   chained in the same task); it emits periodic watermarks and idleness.
//! * [`WindowTask`] is a window operator instance behind a keyed exchange.
//! * [`SinkOperator`] delivers outputs and records their latency, decomposed.

use crate::dataflow::config::{DataflowConfig, SinkGuarantee};
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
pub const COMPONENTS: [Component; 6] = [
    Component::Queueing,
    Component::BufferWait,
    Component::Processing,
    Component::WatermarkWait,
    Component::CacheWait,
    Component::SinkVisibility,
];

/// Most records a source subtask reads from one partition before looking at its timers again.
const READ_CHUNK: usize = 1024;

/// The end of the pipeline: delivers outputs and records their latency.
///
/// With an **at-least-once** sink an output is visible the moment the sink receives it; after a
/// restart, records since the last checkpoint are processed again and their outputs appear
/// twice. With an **exactly-once** sink (two-phase commit, Flink's `TwoPhaseCommitSinkFunction`)
/// outputs go into the open transaction; the checkpoint barrier pre-commits it, and it becomes
/// visible only when the checkpoint completes — a wait reported as `sink_visibility`. A crash
/// aborts the open and pre-committed transactions; replay produces their outputs again.
#[derive(Debug)]
pub struct SinkOperator {
    /// Latency of everything delivered.
    pub latency: LatencyRecorder,
    /// What was delivered (made visible) and not yet taken away, in order.
    pub delivered: Vec<Delivered>,
    /// How many outputs were delivered in all.
    pub delivered_total: u64,
    exactly_once: bool,
    /// The open transaction: outputs and when they were received.
    open: Vec<(Output, Nanos)>,
    /// Pre-committed transactions by checkpoint id.
    precommitted: Vec<(u64, Vec<(Output, Nanos)>)>,
    /// Told of every committed transaction (a durable sink writes it out).
    pub on_commit: Option<CommitHook>,
}

/// Receives `(checkpoint id, outputs made visible)` when a sink commits a transaction.
pub struct CommitHook(pub Box<crate::run::OutputHook>);

impl std::fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

impl Default for SinkOperator {
    fn default() -> Self {
        Self {
            latency: LatencyRecorder::new(&COMPONENTS),
            delivered: Vec::new(),
            delivered_total: 0,
            exactly_once: false,
            open: Vec::new(),
            precommitted: Vec::new(),
            on_commit: None,
        }
    }
}

impl SinkOperator {
    /// A sink with the given guarantee.
    pub fn new(guarantee: SinkGuarantee) -> Self {
        Self {
            exactly_once: guarantee == SinkGuarantee::ExactlyOnce,
            ..Default::default()
        }
    }

    /// Receives a row of a stateless pipeline at `now`; `row.lineage.recv` is when this task got it.
    #[inline]
    pub fn deliver_row(&mut self, row: &Row, now: Nanos) {
        self.receive(Output::Row(*row), now);
    }

    /// Receives a window result at `now`; `r.recv` is when this task got it.
    #[inline]
    pub fn deliver_result(&mut self, r: &WindowResult, now: Nanos) {
        self.receive(Output::Window(*r), now);
    }

    #[inline]
    fn receive(&mut self, output: Output, now: Nanos) {
        if self.exactly_once {
            self.open.push((output, now));
        } else {
            self.make_visible(output, now, now);
        }
    }

    /// The checkpoint barrier `id` reached the sink: pre-commit the open transaction.
    pub fn pre_commit(&mut self, id: u64) {
        if self.exactly_once {
            let txn = std::mem::take(&mut self.open);
            self.precommitted.push((id, txn));
        }
    }

    /// Checkpoint `id` completed at `now`: commit every transaction pre-committed up to it.
    pub fn commit(&mut self, id: u64, now: Nanos) {
        let ready = self.precommitted.iter().take_while(|(i, _)| *i <= id).count();
        let txns: Vec<_> = self.precommitted.drain(..ready).collect();
        for (txn_id, txn) in txns {
            let first = self.delivered.len();
            for (output, received) in txn {
                self.make_visible(output, received, now);
            }
            if let Some(hook) = &mut self.on_commit {
                if let Err(e) = (hook.0)(txn_id, &self.delivered[first..]) {
                    // A sink that cannot write fails its task, as a real connector would.
                    panic!("the durable sink could not write transaction {txn_id}: {e}");
                }
            }
        }
    }

    /// A crash: open and pre-committed transactions are aborted.
    pub fn abort(&mut self) {
        self.open.clear();
        self.precommitted.clear();
    }

    fn make_visible(&mut self, output: Output, received: Nanos, now: Nanos) {
        let mut d = Decomposition::default();
        match &output {
            Output::Row(row) => {
                let l = &row.lineage;
                d.add(Component::Queueing, l.ingest.saturating_sub(l.arrival));
                d.add(Component::BufferWait, l.recv.saturating_sub(l.handoff));
                d.add(
                    Component::Processing,
                    l.handoff.saturating_sub(l.ingest) + received.saturating_sub(l.recv),
                );
            }
            Output::Window(r) => {
                let o = &r.origin;
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
                    o.handoff.saturating_sub(o.ingest)
                        + r.handoff.saturating_sub(r.fired_at)
                        + received.saturating_sub(r.recv),
                );
                if !r.is_update {
                    self.latency
                        .record_event_time(now.saturating_sub(event_time_as_nanos(r.end)));
                }
            }
        }
        d.add(Component::SinkVisibility, now.saturating_sub(received));
        self.latency.record(now, &d);
        self.delivered.push(Delivered { at: now, output });
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
    Chained(Box<SinkOperator>),
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
            RowOutput::Chained(sink) => Some(&mut **sink),
            _ => None,
        }
    }

    /// Injects checkpoint barrier `id` behind every record read so far and returns this
    /// subtask's state for the checkpoint: its read positions. A chained sink pre-commits.
    pub fn inject_barrier(&mut self, id: u64) -> Vec<(usize, usize)> {
        match &mut self.out {
            RowOutput::Keyed { gate, .. } | RowOutput::ToSink(gate) => gate.broadcast_barrier(id),
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
            RowOutput::Chained(sink) => (Some(*sink), stats),
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
    Chained(Box<SinkOperator>),
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
    aligner: BarrierAligner<Row>,
    /// Late records (side output).
    pub side_output: Vec<Row>,
    /// Keyed-state accesses so far.
    state_accesses: u64,
    /// Time in them: measured per buffer when `measure_state` is set (wall clock), else added
    /// by the simulator's pricing.
    state_access_ns: Nanos,
    measure_state: bool,
    /// Where incremental checkpoints of the LSM store go (none: full snapshots).
    incremental_root: Option<std::path::PathBuf>,
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
            op: WindowedAggregation::new(agg, semantics, policy)
                .with_backend(cfg.state_backend)
                .unwrap_or_else(|e| panic!("window task {index}: cannot open its state store: {e}")),
            commit_interval,
            next_commit: commit_interval.unwrap_or(0),
            aligner: BarrierAligner::new(inputs),
            holder: WatermarkHolder::new(inputs),
            out,
            scratch: Vec::new(),
            buffer_timeout: cfg.buffer_timeout.nanos(),
            next_flush: cfg.buffer_timeout.nanos(),
            side_output: Vec::new(),
            state_accesses: 0,
            state_access_ns: 0,
            measure_state: false,
            incremental_root: None,
        }
    }

    /// Measures the time of state accesses on the wall clock (a live run), per buffer.
    pub fn measure_state_time(&mut self) {
        self.measure_state = true;
    }

    /// Adds time of state accesses: priced (a simulated run), or the extra a slow state store
    /// made measured accesses wait (a live run).
    pub fn add_state_time(&mut self, ns: Nanos) {
        self.state_access_ns += ns;
    }

    /// Time spent in state accesses so far.
    pub fn state_access_ns(&self) -> Nanos {
        self.state_access_ns
    }

    /// Handles one message at `now`: records into state, watermarks into timers, and
    /// checkpoint barriers into alignment — while a barrier is awaited on some inputs, messages
    /// from inputs that already delivered theirs are held back, so the snapshot contains
    /// exactly what came before the barrier on every input.
    pub fn on_message(&mut self, msg: Message<Row>, now: Nanos) -> TaskOutcome<Row> {
        let mut outcome = TaskOutcome::default();
        self.handle(msg, now, &mut outcome);
        outcome
    }

    fn handle(&mut self, msg: Message<Row>, now: Nanos, outcome: &mut TaskOutcome<Row>) {
        let msg = match self.aligner.admit(msg) {
            Some(m) => m,
            None => return, // held until the alignment completes
        };
        // A flusher tick that fell due before this message ships what was buffered before it.
        self.run_flusher(now);
        match msg {
            Message::Data { from, mut items } => {
                self.holder.mark_active(from);
                let started = self.measure_state.then(std::time::Instant::now);
                for row in &mut items {
                    row.lineage.recv = now;
                    if !self.op.insert(row, now, &mut self.scratch) {
                        self.side_output.push(*row);
                    }
                }
                self.state_accesses += items.len() as u64;
                if let Some(s) = started {
                    self.state_access_ns += s.elapsed().as_nanos() as Nanos;
                }
                self.forward(now);
                outcome.buffers.push(items);
                return;
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
            Message::Barrier { from, id } => {
                if let Some(started) = self.aligner.barrier(from, id, now) {
                    self.forward(now);
                    outcome.checkpoint = Some(self.snapshot(id, started));
                    match &mut self.out {
                        ResultOutput::Gate(g) => g.broadcast_barrier(id),
                        ResultOutput::Chained(sink) => sink.pre_commit(id),
                    }
                    for held in self.aligner.release() {
                        self.handle(held, now, outcome);
                    }
                    return;
                }
            }
            Message::End { from } => {
                let all = self.holder.finish(from);
                if let Some((id, started)) = self.aligner.input_finished(from, now) {
                    outcome.checkpoint = Some(self.snapshot(id, started));
                    if let ResultOutput::Gate(g) = &mut self.out {
                        g.broadcast_barrier(id);
                    }
                    for held in self.aligner.release() {
                        self.handle(held, now, outcome);
                    }
                }
                if all {
                    if let ResultOutput::Gate(g) = &mut self.out {
                        g.finish();
                    }
                    outcome.finished = true;
                    return;
                }
            }
        }
        self.forward(now);
    }

    /// Restores the state a checkpoint snapshot holds.
    pub fn restore(&mut self, snapshot: &TaskSnapshot) -> Result<(), crate::checkpoint::CheckpointError> {
        match &snapshot.incremental {
            Some(inc) => self
                .op
                .restore_incremental(&inc.root, snapshot.id, snapshot.watermark)
                .map_err(|e| crate::checkpoint::CheckpointError::Refused {
                    path: inc.root.join(format!("chk-{}", snapshot.id)),
                    message: format!("cannot be restored: {e}"),
                }),
            None => {
                self.op.restore(snapshot.windows.iter().cloned(), snapshot.watermark);
                Ok(())
            }
        }
    }

    /// Makes the subtask's checkpoints incremental checkpoints of its LSM store into `root`
    /// (`<checkpoint dir>/state/subtask-<k>`); no effect on the heap backend, which snapshots
    /// every window.
    pub fn checkpoint_incrementally(&mut self, root: std::path::PathBuf) {
        if self.op.backend() != crate::operators::window::StateBackendKind::Heap {
            self.incremental_root = Some(root);
        }
    }

    /// The subtask's state for checkpoint `id`, aligned since `started`.
    fn snapshot(&mut self, id: u64, started: Nanos) -> TaskSnapshot {
        let watermark = self.holder.current();
        let began = std::time::Instant::now();
        let taken = self
            .incremental_root
            .as_ref()
            .and_then(|root| Some((root.clone(), self.op.checkpoint_incremental(id, root)?)));
        let sync_ns = began.elapsed().as_nanos() as Nanos;
        let incremental = taken.map(|(root, result)| match result {
            Ok(stats) => IncrementalSnapshot {
                root,
                bytes_written: stats.bytes_written,
                state_bytes: stats.bytes_written + stats.bytes_referenced,
                sync_ns,
                error: None,
            },
            Err(e) => IncrementalSnapshot {
                root,
                bytes_written: 0,
                state_bytes: 0,
                sync_ns,
                error: Some(e.to_string()),
            },
        });
        TaskSnapshot {
            id,
            alignment_started: started,
            watermark,
            windows: match incremental {
                Some(_) => Vec::new(),
                None => self.op.snapshot(),
            },
            incremental,
        }
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
            ResultOutput::Chained(sink) => Some(&mut **sink),
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
            state_accesses: self.state_accesses,
            state_access_ns: self.state_access_ns,
        };
        match self.out {
            ResultOutput::Gate(g) => {
                outcome.buffers_sent = g.buffers_sent;
                (None, outcome)
            }
            ResultOutput::Chained(sink) => (Some(*sink), outcome),
        }
    }
}

/// What a subtask's checkpoint holds: its keyed window state and watermark.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSnapshot {
    /// The checkpoint.
    pub id: u64,
    /// When the first barrier arrived (alignment began).
    pub alignment_started: Nanos,
    /// The subtask's watermark.
    pub watermark: EventTime,
    /// Every window in state (empty when the state went into an incremental checkpoint).
    pub windows: Vec<crate::operators::window::WindowEntry>,
    /// The LSM backend's incremental checkpoint of the state, when the subtask takes them.
    pub incremental: Option<IncrementalSnapshot>,
}

/// A window subtask's state as an incremental checkpoint of its LSM store (Flink's
/// incremental RocksDB checkpoints): `<root>/chk-<id>/MANIFEST` lists the store's runs in
/// `<root>/shared/`, of which only those new since the subtask's previous checkpoint were written.
#[derive(Clone, Debug, PartialEq)]
pub struct IncrementalSnapshot {
    /// The subtask's checkpoint root, `<checkpoint dir>/state/subtask-<k>`.
    pub root: std::path::PathBuf,
    /// Bytes this checkpoint wrote (new runs and the manifest).
    pub bytes_written: u64,
    /// Bytes the state takes in all (written now or referenced from earlier checkpoints).
    pub state_bytes: u64,
    /// How long taking it took on the wall clock (flush, upload, manifest), ns.
    pub sync_ns: Nanos,
    /// Why the checkpoint could not be taken.
    pub error: Option<String>,
}

/// What handling one message produced.
#[derive(Debug)]
pub struct TaskOutcome<T> {
    /// Emptied buffers, for the pool.
    pub buffers: Vec<Vec<T>>,
    /// Every input has finished; the task sent end-of-stream downstream.
    pub finished: bool,
    /// An aligned checkpoint: the state to store.
    pub checkpoint: Option<TaskSnapshot>,
}

impl<T> Default for TaskOutcome<T> {
    fn default() -> Self {
        Self {
            buffers: Vec::new(),
            finished: false,
            checkpoint: None,
        }
    }
}

/// Barrier alignment (Flink's aligned checkpoints, Chandy-Lamport with FIFO channels): once an
/// input has delivered barrier `id`, its further messages wait until every input has.
#[derive(Debug)]
pub struct BarrierAligner<T> {
    seen: Vec<bool>,
    finished: Vec<bool>,
    current: Option<(u64, Nanos)>,
    held: std::collections::VecDeque<Message<T>>,
}

impl<T> BarrierAligner<T> {
    /// An aligner over `inputs` inputs.
    pub fn new(inputs: usize) -> Self {
        Self {
            seen: vec![false; inputs],
            finished: vec![false; inputs],
            current: None,
            held: Default::default(),
        }
    }

    fn from(msg: &Message<T>) -> usize {
        match msg {
            Message::Data { from, .. }
            | Message::Watermark { from, .. }
            | Message::Barrier { from, .. }
            | Message::Idle { from }
            | Message::End { from } => *from,
        }
    }

    /// Lets `msg` through, or holds it (returns `None`) if its input is blocked by alignment.
    pub fn admit(&mut self, msg: Message<T>) -> Option<Message<T>> {
        if self.current.is_some() && self.seen[Self::from(&msg)] {
            self.held.push_back(msg);
            None
        } else {
            Some(msg)
        }
    }

    /// Barrier `id` from input `from`. Returns when the alignment started once every input has
    /// delivered it (the checkpoint can be taken).
    pub fn barrier(&mut self, from: usize, id: u64, now: Nanos) -> Option<Nanos> {
        match self.current {
            Some((cur, _)) if id < cur => return None, // a stale barrier
            Some((cur, _)) if id > cur => {
                // A newer checkpoint overtook an unfinished one: the older one is abandoned.
                self.seen.iter_mut().for_each(|s| *s = false);
                self.current = Some((id, now));
            }
            None => self.current = Some((id, now)),
            _ => {}
        }
        self.seen[from] = true;
        self.complete()
    }

    /// Input `from` finished: it will send no barrier, so alignment does not wait for it.
    pub fn input_finished(&mut self, from: usize, _now: Nanos) -> Option<(u64, Nanos)> {
        self.finished[from] = true;
        let id = self.current?.0;
        self.complete().map(|started| (id, started))
    }

    fn complete(&mut self) -> Option<Nanos> {
        let (_, started) = self.current?;
        if self.seen.iter().zip(&self.finished).all(|(s, f)| *s || *f) {
            self.current = None;
            self.seen.iter_mut().for_each(|s| *s = false);
            Some(started)
        } else {
            None
        }
    }

    /// The messages held during the alignment that just completed, in arrival order.
    pub fn release(&mut self) -> Vec<Message<T>> {
        self.held.drain(..).collect()
    }
}

/// An item a sink subtask can receive.
pub trait SinkItem: Copy {
    /// Hands the item to `sink` at `now`.
    fn deliver_to(self, sink: &mut SinkOperator, now: Nanos);
}

impl SinkItem for Row {
    #[inline]
    fn deliver_to(mut self, sink: &mut SinkOperator, now: Nanos) {
        self.lineage.recv = now;
        sink.deliver_row(&self, now);
    }
}

impl SinkItem for WindowResult {
    #[inline]
    fn deliver_to(mut self, sink: &mut SinkOperator, now: Nanos) {
        self.recv = now;
        sink.deliver_result(&self, now);
    }
}

/// The sink subtask behind an exchange (parallelism 1): delivers until every input has
/// finished; aligns checkpoint barriers and pre-commits the sink's transaction on them.
#[derive(Debug)]
pub struct SinkTask<T> {
    /// The sink.
    pub sink: SinkOperator,
    aligner: BarrierAligner<T>,
    inputs: usize,
    ended: usize,
}

impl<T: SinkItem> SinkTask<T> {
    /// A sink subtask with `inputs` upstream subtasks.
    pub fn new(sink: SinkOperator, inputs: usize) -> Self {
        Self {
            sink,
            aligner: BarrierAligner::new(inputs),
            inputs,
            ended: 0,
        }
    }

    /// Handles one message at `now`.
    pub fn on_message(&mut self, msg: Message<T>, now: Nanos) -> TaskOutcome<T> {
        let mut outcome = TaskOutcome::default();
        self.handle(msg, now, &mut outcome);
        outcome
    }

    fn handle(&mut self, msg: Message<T>, now: Nanos, outcome: &mut TaskOutcome<T>) {
        let Some(msg) = self.aligner.admit(msg) else { return };
        let mut aligned = None;
        match msg {
            Message::Data { items, .. } => {
                for &item in &items {
                    item.deliver_to(&mut self.sink, now);
                }
                outcome.buffers.push(items);
            }
            Message::Barrier { from, id } => aligned = self.aligner.barrier(from, id, now).map(|s| (id, s)),
            Message::End { from } => {
                self.ended += 1;
                aligned = self.aligner.input_finished(from, now);
                if self.ended == self.inputs {
                    outcome.finished = true;
                }
            }
            Message::Watermark { .. } | Message::Idle { .. } => {}
        }
        if let Some((id, started)) = aligned {
            self.sink.pre_commit(id);
            outcome.checkpoint = Some(TaskSnapshot {
                id,
                alignment_started: started,
                watermark: EventTime::MIN,
                windows: Vec::new(),
                incremental: None,
            });
            for held in self.aligner.release() {
                self.handle(held, now, outcome);
            }
        }
    }
}
