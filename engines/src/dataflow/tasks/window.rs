//! The keyed subtask behind a keyed exchange: a window operator instance, or a join,
//! deduplication or top-N ([`KeyedPlan`]). (It keeps the name `WindowTask` from when windows
//! were the only keyed operator.)
//!
//! With a window operator, a [`WindowTask`] inserts rows (projected by the sources onto what
//! the aggregate reads, `operators/window/input.rs`, unless it follows a chain's first stage) into the [`WindowedAggregation`]'s keyed state, tracks its
//! watermark as the minimum over its active inputs ([`WatermarkHolder`]) and fires windows on
//! it; records later than the allowed lateness go to the side output. In Kafka Streams mode
//! (`commit_interval`) it emits aggregate updates from its record cache on every commit
//! instead. Checkpoint barriers are aligned by a [`BarrierAligner`]; on alignment the subtask
//! snapshots its state (fully, or as an incremental checkpoint of its LSM store) and forwards
//! the barrier (or pre-commits a chained sink). With a keyed stage it hands each row and each
//! watermark advance to the stage, forwards what the stage emits, and snapshots the stage's
//! encoded state. A second aggregation over the windows' results is chained here at
//! parallelism 1; above it, the subtask sends its watermark on to the sink subtask that runs it.
//! In a chain of keyed stages the join's or deduplication's subtask sends its results, as rows,
//! through the second keyed exchange to the aggregation's subtasks ([`ResultOutput::Chain`]),
//! with its watermark (held back by a join's output delay, as Flink SQL does) and barriers.
//!
//! Invariants: the snapshot for checkpoint `id` holds exactly what came before barrier `id` on
//! every input; results are forwarded in the order the operator produced them; the
//! per-record path reuses the `scratch` buffer and allocates nothing.

use crossbeam_channel::Sender;

use crate::checkpoint::CheckpointError;
use crate::dataflow::config::DataflowConfig;
use crate::dataflow::network::{BufferPool, Link, Message, OutputGate};
use crate::dataflow::tasks::{BarrierAligner, IncrementalSnapshot, SinkOperator, TaskOutcome, TaskSnapshot};
use crate::dataflow::watermark::WatermarkHolder;
use crate::operators::fxhash::partition_of;
use crate::operators::graph::{ChainLink, ExchangeKey, KeyedStage, ThenStage};
use crate::operators::window::{EmitPolicy, ProjectedRow, TimeSemantics, WindowedAggregation};
use crate::operators::{Output, Row, WindowResult};
use crate::pipeline::Aggregation;
use crate::time::{EventTime, Nanos};

/// Where a window subtask's results go.
#[derive(Debug)]
pub enum ResultOutput<L = Sender<Message<Output>>, R = Sender<Message<Row>>> {
    /// An exchange to the sink subtask.
    Gate(OutputGate<Output, L>),
    /// The sink, chained into this task.
    Chained(Box<SinkOperator>),
    /// The second keyed exchange of a chain: the stage's results, as the aggregation's rows,
    /// to the aggregation's subtasks by its key; the watermark passed on as `link` says.
    Chain {
        /// The gate to the aggregation's subtasks.
        gate: OutputGate<Row, R>,
        /// How results become rows, and the watermark passed on.
        link: ChainLink,
        /// The aggregation's key.
        key: ExchangeKey,
    },
}

/// A window operator instance behind a keyed exchange.
#[derive(Debug)]
pub struct WindowTask<L = Sender<Message<Output>>, R = Sender<Message<Row>>> {
    /// Subtask index.
    pub index: usize,
    op: KeyedOperator,
    /// A keyed stage's outputs not yet forwarded.
    stage_out: Vec<Output>,
    /// The second aggregation, chained here when the job has parallelism 1.
    then: Option<ThenStage>,
    /// Send the watermark on to the sink subtask (which runs the second aggregation).
    forward_watermarks: bool,
    holder: WatermarkHolder,
    out: ResultOutput<L, R>,
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
    /// The most rows the keyed stage held, seen at each watermark.
    peak_state_rows: u64,
    /// Where incremental checkpoints of the LSM store go (none: full snapshots).
    incremental_root: Option<std::path::PathBuf>,
    /// Where emptied buffers of projected rows go back to (the sources' gates take from it).
    projected_pool: BufferPool<ProjectedRow>,
}

/// The operator a keyed subtask runs: the windowed aggregation, or another keyed stage.
#[derive(Debug)]
enum KeyedOperator {
    Window(Box<WindowedAggregation>),
    Stage(KeyedStage),
}

/// What a keyed subtask runs, and what follows it in the job.
#[derive(Debug)]
pub enum KeyedPlan {
    /// The windowed aggregation, and the second aggregation over its results if the job has
    /// one: chained here (`then`, at parallelism 1) or in the sink subtask, which then needs
    /// this subtask's watermark (`forward_watermarks`).
    Aggregate {
        /// The aggregation.
        agg: Aggregation,
        /// The second aggregation, chained into this subtask.
        then: Option<ThenStage>,
        /// Send the watermark on to the sink subtask.
        forward_watermarks: bool,
    },
    /// A join, a deduplication or a top-N.
    Stage(KeyedStage),
}

impl KeyedPlan {
    /// A subtask running the windowed aggregation `agg`, and nothing after it.
    pub fn aggregate(agg: Aggregation) -> Self {
        Self::Aggregate {
            agg,
            then: None,
            forward_watermarks: false,
        }
    }
}

impl<L: Link<Output>, R: Link<Row>> WindowTask<L, R> {
    /// Subtask `index` with `inputs` upstream subtasks, running `plan`.
    pub fn new(index: usize, inputs: usize, plan: KeyedPlan, cfg: &DataflowConfig, out: ResultOutput<L, R>) -> Self {
        let semantics = TimeSemantics::flink(cfg.allowed_lateness.whole_ms());
        let commit_interval = cfg.commit_interval.map(|c| c.nanos());
        let policy = if commit_interval.is_some() {
            EmitPolicy::OnUpdate
        } else {
            EmitPolicy::OnWatermark
        };
        // A chain's first stage always passes its watermark on to the aggregation.
        let chained = matches!(out, ResultOutput::Chain { .. });
        let (op, then, forward_watermarks) = match plan {
            KeyedPlan::Stage(stage) => (KeyedOperator::Stage(stage), None, chained),
            KeyedPlan::Aggregate {
                agg,
                then,
                forward_watermarks,
            } => {
                let op = WindowedAggregation::new(agg, semantics, policy)
                    .with_backend(cfg.state_backend)
                    .unwrap_or_else(|e| panic!("window task {index}: cannot open its state store: {e}"));
                (KeyedOperator::Window(Box::new(op)), then, forward_watermarks)
            }
        };
        Self {
            index,
            op,
            stage_out: Vec::new(),
            then,
            forward_watermarks,
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
            peak_state_rows: 0,
            incremental_root: None,
            projected_pool: BufferPool::new(),
        }
    }

    /// Returns emptied buffers of projected rows to `pool`, the one the sources' gates of
    /// projected rows take from.
    pub fn with_projected_pool(mut self, pool: BufferPool<ProjectedRow>) -> Self {
        self.projected_pool = pool;
        self
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
                self.receive(from, items.len(), now, |task| match &mut task.op {
                    KeyedOperator::Window(op) => {
                        for row in &mut items {
                            row.lineage.recv = now;
                        }
                        op.insert_all(&items, now, &mut task.scratch, &mut task.side_output);
                    }
                    KeyedOperator::Stage(stage) => {
                        for row in &mut items {
                            row.lineage.recv = now;
                            stage.on_row(*row, now, &mut task.stage_out);
                        }
                    }
                });
                outcome.buffers.push(items);
                return;
            }
            Message::Projected { from, items } => {
                self.receive(from, items.len(), now, |task| match &mut task.op {
                    // Received at `now`: the lineage's `recv` (no pass over the rows to stamp it).
                    KeyedOperator::Window(op) => op.insert_all(&items, now, &mut task.scratch, &mut task.side_output),
                    KeyedOperator::Stage(_) => unreachable!("rows are projected only for a windowed aggregation"),
                });
                self.projected_pool.recycle(items);
                return;
            }
            Message::Watermark { from, watermark } => {
                if let Some(wm) = self.holder.update(from, watermark) {
                    self.advance_watermark(wm, now);
                }
            }
            Message::Idle { from } => {
                if let Some(wm) = self.holder.mark_idle(from) {
                    self.advance_watermark(wm, now);
                }
            }
            Message::Barrier { from, id } => {
                if let Some(started) = self.aligner.barrier(from, id, now) {
                    self.forward(now);
                    outcome.checkpoint = Some(self.snapshot(id, started));
                    match &mut self.out {
                        ResultOutput::Gate(g) => g.broadcast_barrier(id),
                        ResultOutput::Chain { gate, .. } => gate.broadcast_barrier(id),
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
                    match &mut self.out {
                        ResultOutput::Gate(g) => g.broadcast_barrier(id),
                        ResultOutput::Chain { gate, .. } => gate.broadcast_barrier(id),
                        ResultOutput::Chained(_) => {}
                    }
                    for held in self.aligner.release() {
                        self.handle(held, now, outcome);
                    }
                }
                if all {
                    match &mut self.out {
                        ResultOutput::Gate(g) => g.finish(),
                        ResultOutput::Chain { gate, .. } => gate.finish(),
                        ResultOutput::Chained(_) => {}
                    }
                    outcome.finished = true;
                    return;
                }
            }
        }
        self.forward(now);
    }

    /// A buffer of `rows` rows from upstream subtask `from`, received at `now`: `insert` hands
    /// them to the operator; around it the input is marked active, the state accesses are
    /// counted (and timed, on the wall clock, when measured) and what the operator emitted is
    /// forwarded.
    fn receive(&mut self, from: usize, rows: usize, now: Nanos, insert: impl FnOnce(&mut Self)) {
        self.holder.mark_active(from);
        let started = self.measure_state.then(std::time::Instant::now);
        insert(self);
        self.state_accesses += rows as u64;
        if let Some(s) = started {
            self.state_access_ns += s.elapsed().as_nanos() as Nanos;
        }
        self.forward(now);
    }

    fn advance_watermark(&mut self, wm: EventTime, now: Nanos) {
        match &mut self.op {
            KeyedOperator::Window(op) => op.advance_watermark(wm, now, &mut self.scratch),
            KeyedOperator::Stage(stage) => {
                // Before the watermark cleans it: the state at its largest.
                self.peak_state_rows = self.peak_state_rows.max(stage.state_rows() as u64);
                stage.on_watermark(wm, now, &mut self.stage_out);
            }
        }
        if self.forward_watermarks {
            self.forward(now);
            match &mut self.out {
                ResultOutput::Gate(g) => g.broadcast_watermark(wm),
                // Flink SQL's interval join holds its output watermark back (`chain.rs`).
                ResultOutput::Chain { gate, link, .. } => gate.broadcast_watermark(link.forwarded(wm)),
                ResultOutput::Chained(_) => {}
            }
        }
    }

    fn window_op(&mut self) -> Option<&mut WindowedAggregation> {
        match &mut self.op {
            KeyedOperator::Window(op) => Some(op),
            KeyedOperator::Stage(_) => None,
        }
    }

    /// Restores the state a checkpoint snapshot holds: a window operator's windows (or its
    /// incremental checkpoint), or a keyed stage's encoded state.
    pub fn restore(&mut self, snapshot: &TaskSnapshot) -> Result<(), CheckpointError> {
        let index = self.index;
        let refused = |message: String| CheckpointError::Refused {
            path: std::path::PathBuf::from(format!("chk-{}/subtask-{index}", snapshot.id)),
            message,
        };
        let op = match &mut self.op {
            KeyedOperator::Stage(stage) => {
                let bytes = snapshot.stage.as_deref().ok_or_else(|| {
                    refused("holds no keyed-stage state, but this subtask runs a join, deduplication or top-N: the checkpoint is of another job".into())
                })?;
                return stage.restore(bytes).ok_or_else(|| {
                    refused("holds keyed-stage state this subtask's operator cannot read: another pipeline's checkpoint, or damaged".into())
                });
            }
            KeyedOperator::Window(op) => op,
        };
        if snapshot.stage.is_some() {
            return Err(refused(
                "holds a keyed stage's state, but this subtask runs a windowed aggregation: the checkpoint is of another job".into(),
            ));
        }
        match &snapshot.incremental {
            Some(inc) => op
                .restore_incremental(&inc.root, snapshot.id, snapshot.watermark)
                .map_err(|e| CheckpointError::Refused {
                    path: inc.root.join(format!("chk-{}", snapshot.id)),
                    message: format!("cannot be restored: {e}"),
                }),
            None => {
                op.restore(snapshot.windows.iter().cloned(), snapshot.watermark);
                Ok(())
            }
        }
    }

    /// Makes the subtask's checkpoints incremental checkpoints of its LSM store into `root`
    /// (`<checkpoint dir>/state/subtask-<k>`); no effect on the heap backend, which snapshots
    /// every window.
    pub fn checkpoint_incrementally(&mut self, root: std::path::PathBuf) {
        if self
            .window_op()
            .is_some_and(|op| op.backend() != crate::operators::window::StateBackendKind::Heap)
        {
            self.incremental_root = Some(root);
        }
    }

    /// The subtask's state for checkpoint `id`, aligned since `started`.
    fn snapshot(&mut self, id: u64, started: Nanos) -> TaskSnapshot {
        let watermark = self.holder.current();
        let began = std::time::Instant::now();
        let root = self.incremental_root.clone();
        let taken = match (root, self.window_op()) {
            (Some(root), Some(op)) => op.checkpoint_incremental(id, &root).map(|r| (root, r)),
            _ => None,
        };
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
            windows: match (&incremental, &self.op) {
                (None, KeyedOperator::Window(op)) => op.snapshot(),
                _ => Vec::new(),
            },
            incremental,
            // The chained second aggregation answers every window in the step its results
            // fired in (`forward`), so it holds nothing at a barrier: only the stage is kept.
            stage: match &self.op {
                KeyedOperator::Stage(stage) => Some(stage.encode()),
                KeyedOperator::Window(_) => None,
            },
        }
    }

    fn forward(&mut self, now: Nanos) {
        if let Some(then) = &mut self.then {
            for r in self.scratch.drain(..) {
                then.on_result(r);
            }
            // Parallelism 1: a window's results all fired in this one step.
            then.release_all(now, &mut self.stage_out);
        }
        let out = &mut self.out;
        let mut send = |mut o: Output| {
            match &mut o {
                Output::Row(r) => r.lineage.handoff = now,
                Output::Window(w) => w.handoff = now,
                Output::Record(r) => r.handoff = now,
            }
            match out {
                ResultOutput::Gate(g) => g.push(0, o),
                ResultOutput::Chained(sink) => sink.receive_output(o, now),
                ResultOutput::Chain { gate, link, key } => {
                    if let Some(mut row) = link.row_of(&o) {
                        row.lineage.handoff = now;
                        let ch = partition_of(key.of(&row), gate.fan_out());
                        gate.push(ch, row);
                    }
                }
            }
        };
        for r in self.scratch.drain(..) {
            send(Output::Window(r));
        }
        for o in self.stage_out.drain(..) {
            send(o);
        }
    }

    /// When the task next needs [`WindowTask::on_tick`]: the output flusher, if it has
    /// anything to flush, or the next commit (Kafka Streams mode).
    pub fn next_deadline(&self) -> Option<Nanos> {
        let pending = match &self.out {
            ResultOutput::Gate(g) => g.has_pending(),
            ResultOutput::Chain { gate, .. } => gate.has_pending(),
            ResultOutput::Chained(_) => false,
        };
        let flush = (self.buffer_timeout > 0 && pending).then_some(self.next_flush);
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
                if let KeyedOperator::Window(op) = &mut self.op {
                    op.emit_updates(now, &mut self.scratch);
                }
                self.forward(now);
                self.next_commit = (now / interval + 1) * interval;
            }
        }
        self.run_flusher(now);
    }

    /// The output flusher's tick, if one fell due by `now`: ships what is buffered.
    fn run_flusher(&mut self, now: Nanos) {
        if self.buffer_timeout > 0 && now >= self.next_flush {
            match &mut self.out {
                ResultOutput::Gate(g) => g.flush_all(),
                ResultOutput::Chain { gate, .. } => gate.flush_all(),
                ResultOutput::Chained(_) => {}
            }
            self.next_flush = (now / self.buffer_timeout + 1) * self.buffer_timeout;
        }
    }

    /// Outputs delivered so far by a sink chained into this task.
    pub fn chained_deliveries(&self) -> usize {
        match &self.out {
            ResultOutput::Chained(sink) => sink.delivered.len(),
            ResultOutput::Gate(_) | ResultOutput::Chain { .. } => 0,
        }
    }

    /// The sink chained into this task, if any.
    pub fn chained_sink_mut(&mut self) -> Option<&mut SinkOperator> {
        match &mut self.out {
            ResultOutput::Chained(sink) => Some(&mut **sink),
            ResultOutput::Gate(_) | ResultOutput::Chain { .. } => None,
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
            late_dropped: match &mut self.op {
                KeyedOperator::Window(op) => op.take_counters().late_dropped,
                KeyedOperator::Stage(stage) => stage.late_dropped(),
            },
            side_output: self.side_output,
            buffers_sent: 0,
            state_accesses: self.state_accesses,
            state_access_ns: self.state_access_ns,
            peak_state_rows: match &self.op {
                KeyedOperator::Stage(stage) => self.peak_state_rows.max(stage.state_rows() as u64),
                KeyedOperator::Window(_) => 0,
            },
        };
        match self.out {
            ResultOutput::Gate(g) => {
                outcome.buffers_sent = g.buffers_sent;
                (None, outcome)
            }
            ResultOutput::Chain { gate, .. } => {
                outcome.buffers_sent = gate.buffers_sent;
                (None, outcome)
            }
            ResultOutput::Chained(sink) => (Some(*sink), outcome),
        }
    }
}

/// What a finished window subtask leaves behind.
#[derive(Debug, Default)]
pub struct WindowOutcome {
    /// The subtask's index.
    pub index: usize,
    /// Its watermark when it finished.
    pub watermark: EventTime,
    /// Its late records.
    pub side_output: Vec<Row>,
    /// How many records it dropped as late.
    pub late_dropped: u64,
    /// Network buffers it shipped.
    pub buffers_sent: u64,
    /// Keyed-state accesses.
    pub state_accesses: u64,
    /// Time in them (measured live, priced on virtual time).
    pub state_access_ns: u64,
    /// The most rows a join, deduplication or top-N held (0 for a window operator).
    pub peak_state_rows: u64,
}
