//! The end of the pipeline: the sink operator and the sink subtask behind an exchange.
//!
//! [`SinkOperator`] is where Flink's delivery guarantees live: **at-least-once** makes an
//! output visible on receipt; **exactly-once** is a two-phase commit (open transaction,
//! pre-commit on the checkpoint barrier, commit when the checkpoint completes, abort on a
//! crash). It also splits each output's latency into the [`COMPONENTS`]. The sink runs
//! chained into a source or window subtask, or alone as a [`SinkTask`] that aligns barriers.
//!
//! Invariants: an output becomes visible exactly once per incarnation, in the order received;
//! a transaction is committed only for a checkpoint id at or above its own; delivering a record
//! allocates nothing but the slot in the open transaction or the delivered list (with a
//! stream, that list is handed on every [`OutputStream::CHUNK`] outputs and reused).

use crate::checkpoint::CheckpointError;
use crate::dataflow::config::SinkGuarantee;
use crate::dataflow::network::Message;
use crate::dataflow::tasks::{BarrierAligner, TaskOutcome, TaskSnapshot};
use crate::dataflow::watermark::WatermarkHolder;
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::operators::graph::ThenStage;
use crate::operators::{Output, Row, Shape, WindowResult};
use crate::run::{Delivered, OutputStream};
use crate::time::{event_time_as_nanos, EventTime, Nanos};

/// The components a per-record output's latency is split into.
pub const COMPONENTS: [Component; 7] = [
    Component::Queueing,
    Component::BufferWait,
    Component::Processing,
    Component::WatermarkWait,
    Component::CacheWait,
    Component::SinkVisibility,
    Component::JoinWait,
];

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
    /// Where delivered outputs go, in chunks, instead of staying in `delivered`.
    pub stream: Option<OutputStream>,
    /// With a stream, when what waits is handed on even if short of a chunk (so a slow trickle
    /// of outputs reaches the sink files and the progress display within [`HAND_ON_EVERY`]).
    hand_by: Nanos,
}

/// A stream gets what a sink delivered at least this often (when it delivers anything).
pub const HAND_ON_EVERY: Nanos = 250_000_000;

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
            stream: None,
            hand_by: 0,
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

    /// A sink like this one — its guarantee and its stream — with nothing delivered (another
    /// subtask's chained sink; a durable sink's writer is not shared).
    pub fn fresh(&self) -> Self {
        Self {
            exactly_once: self.exactly_once,
            stream: self.stream.clone(),
            ..Default::default()
        }
    }

    /// Takes in what another subtask's sink delivered (the job's chained sinks, merged when it
    /// ends): its latency, its outputs after this one's, its count. Neither may hold an open
    /// transaction (chained sinks are at-least-once).
    pub fn absorb(&mut self, mut other: SinkOperator) {
        debug_assert!(other.open.is_empty() && other.precommitted.is_empty());
        other.flush();
        self.latency.merge(&other.latency);
        self.delivered.append(&mut other.delivered);
        self.delivered_total += other.delivered_total;
    }

    /// Receives a row of a stateless pipeline at `now`; `row.lineage.recv` is when this task got it.
    #[inline]
    pub fn deliver_row(&mut self, row: &Row, now: Nanos) {
        if self.exactly_once {
            self.open.push((Output::Row(*row), now));
            return;
        }
        // At-least-once, the hot path of a stateless job: visible on receipt, the row written
        // once, straight into the delivered list (the same latency as `make_visible`'s).
        self.latency.record(now, &row_latency(&row.lineage, now));
        self.delivered.push(Delivered {
            at: now,
            output: Output::Row(*row),
        });
        self.delivered_total += 1;
        self.hand_on(OutputStream::CHUNK, now);
    }

    /// Receives a window result at `now`; `r.recv` is when this task got it.
    #[inline]
    pub fn deliver_result(&mut self, r: &WindowResult, now: Nanos) {
        self.receive(Output::Window(*r), now);
    }

    /// Receives a keyed stage's output (a window result or a record result) at `now`.
    #[inline]
    pub fn receive_output(&mut self, mut output: Output, now: Nanos) {
        match &mut output {
            Output::Row(r) => r.lineage.recv = now,
            Output::Window(w) => w.recv = now,
            Output::Record(r) => r.recv = now,
        }
        self.receive(output, now);
    }

    #[inline]
    fn receive(&mut self, output: Output, now: Nanos) {
        if self.exactly_once {
            self.open.push((output, now));
        } else {
            self.make_visible(output, now, now);
            self.hand_on(OutputStream::CHUNK, now);
        }
    }

    /// With a stream, hands what was delivered on once at least `at_least` outputs wait (one,
    /// for a stream handed outputs at once), or any do and it is `now` past `hand_by`.
    #[inline]
    fn hand_on(&mut self, at_least: usize, now: Nanos) {
        if let Some(stream) = &self.stream {
            let waiting = self.delivered.len();
            let at_least = if stream.is_at_once() { 1 } else { at_least.max(1) };
            if waiting >= at_least || (waiting > 0 && now >= self.hand_by) {
                stream.send(&self.delivered);
                self.delivered.clear();
                self.hand_by = now.saturating_add(HAND_ON_EVERY);
            }
        }
    }

    /// Hands everything delivered on to the stream, if there is one (the end of an
    /// incarnation).
    pub fn flush(&mut self) {
        self.hand_on(1, Nanos::MAX);
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
            self.hand_on(OutputStream::CHUNK, now);
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
            Output::Row(row) => d = row_latency(&row.lineage, received),
            Output::Window(r) => {
                let held = if r.is_update {
                    Component::CacheWait
                } else {
                    Component::WatermarkWait
                };
                let times = (r.fired_at, r.handoff, r.recv);
                stage_result(&mut d, &r.origin, times, held, received);
                if !r.is_update {
                    self.latency
                        .record_event_time(now.saturating_sub(event_time_as_nanos(r.end)));
                }
            }
            Output::Record(r) => {
                let held = match r.shape {
                    Shape::LeftOnly | Shape::RightOnly => Component::JoinWait,
                    Shape::Pair | Shape::Ranked => Component::WatermarkWait,
                };
                stage_result(&mut d, &r.origin, (r.fired_at, r.handoff, r.recv), held, received);
            }
        }
        d.add(Component::SinkVisibility, now.saturating_sub(received));
        self.latency.record(now, &d);
        self.delivered.push(Delivered { at: now, output });
        self.delivered_total += 1;
    }
}

/// Splits the latency of a row received at `received` (its visibility wait is added after).
#[inline]
fn row_latency(l: &crate::operators::Lineage, received: Nanos) -> Decomposition {
    let mut d = Decomposition::default();
    d.add(Component::Queueing, l.ingest.saturating_sub(l.arrival));
    d.add(Component::BufferWait, l.recv.saturating_sub(l.handoff));
    d.add(
        Component::Processing,
        l.handoff.saturating_sub(l.ingest) + received.saturating_sub(l.recv),
    );
    d
}

/// Splits the latency of a keyed stage's result received at `received`: its origin record's trip
/// to the stage (`o`), the wait in the stage until it fired (`held`: the watermark, the record
/// cache or a join's bound), and the result's trip on from `(fired_at, handoff, recv)`.
fn stage_result(
    d: &mut Decomposition,
    o: &crate::operators::Lineage,
    (fired_at, handoff, recv): (Nanos, Nanos, Nanos),
    held: Component,
    received: Nanos,
) {
    d.add(Component::Queueing, o.ingest.saturating_sub(o.arrival));
    d.add(
        Component::BufferWait,
        o.recv.saturating_sub(o.handoff) + recv.saturating_sub(handoff),
    );
    d.add(held, fired_at.saturating_sub(o.recv));
    d.add(
        Component::Processing,
        o.handoff.saturating_sub(o.ingest) + handoff.saturating_sub(fired_at) + received.saturating_sub(recv),
    );
}

/// An item a sink subtask can receive.
pub trait SinkItem: Copy {
    /// Hands the item to `sink` at `now`.
    fn deliver_to(self, sink: &mut SinkOperator, now: Nanos);

    /// The item as a keyed stage's output, if it is one (for the second aggregation).
    fn as_output(self) -> Option<Output> {
        None
    }
}

impl SinkItem for Row {
    #[inline]
    fn deliver_to(mut self, sink: &mut SinkOperator, now: Nanos) {
        self.lineage.recv = now;
        sink.deliver_row(&self, now);
    }
}

impl SinkItem for Output {
    #[inline]
    fn deliver_to(self, sink: &mut SinkOperator, now: Nanos) {
        sink.receive_output(self, now);
    }

    fn as_output(self) -> Option<Output> {
        Some(self)
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
    /// The second aggregation over the keyed subtasks' window results, run here at
    /// parallelism 1, with the watermark over its inputs that says when a window's results are
    /// all in, and the engine's `fire_lag`.
    then: Option<(ThenStage, WatermarkHolder, i64)>,
    then_out: Vec<Output>,
}

impl<T: SinkItem> SinkTask<T> {
    /// A sink subtask with `inputs` upstream subtasks.
    pub fn new(sink: SinkOperator, inputs: usize) -> Self {
        Self {
            sink,
            aligner: BarrierAligner::new(inputs),
            inputs,
            ended: 0,
            then: None,
            then_out: Vec::new(),
        }
    }

    /// Runs the second aggregation `then` in this subtask, closing windows on the watermark
    /// over its inputs with the engine's `fire_lag`.
    pub fn with_then(mut self, then: ThenStage, fire_lag: i64) -> Self {
        self.then = Some((then, WatermarkHolder::new(self.inputs), fire_lag));
        self
    }

    /// Restores the second aggregation's pending windows from a checkpoint snapshot. The
    /// watermark over the inputs starts afresh: the restored keyed subtasks send theirs again.
    pub fn restore(&mut self, snapshot: &TaskSnapshot) -> Result<(), CheckpointError> {
        let refused = |message: &str| CheckpointError::Refused {
            path: std::path::PathBuf::from(format!("chk-{}/sink subtask", snapshot.id)),
            message: message.to_string(),
        };
        match (&mut self.then, snapshot.stage.as_deref()) {
            (Some((then, ..)), Some(bytes)) => then.restore(bytes).ok_or_else(|| {
                refused("holds state the second aggregation cannot read: another pipeline's checkpoint, or damaged")
            }),
            (None, None) => Ok(()),
            (None, Some(_)) => Err(refused(
                "holds a second aggregation's state, but this job's sink runs none: the checkpoint is of another job",
            )),
            (Some(_), None) => Err(refused(
                "holds no second-aggregation state, but this job's sink runs one: the checkpoint is of another job",
            )),
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
                match &mut self.then {
                    Some((then, ..)) => {
                        for &item in &items {
                            if let Some(Output::Window(w)) = item.as_output() {
                                then.on_result(w);
                            }
                        }
                    }
                    None => {
                        for &item in &items {
                            item.deliver_to(&mut self.sink, now);
                        }
                    }
                }
                outcome.buffers.push(items);
            }
            Message::Watermark { from, watermark } => {
                if let Some((then, holder, lag)) = &mut self.then {
                    if let Some(wm) = holder.update(from, watermark) {
                        then.release_closed(wm, *lag, now, &mut self.then_out);
                        for o in self.then_out.drain(..) {
                            self.sink.receive_output(o, now);
                        }
                    }
                }
            }
            Message::Barrier { from, id } => aligned = self.aligner.barrier(from, id, now).map(|s| (id, s)),
            Message::End { from } => {
                if let Some((then, holder, _)) = &mut self.then {
                    if holder.finish(from) {
                        // Every input ended: the windows still held are complete.
                        then.release_all(now, &mut self.then_out);
                        for o in self.then_out.drain(..) {
                            self.sink.receive_output(o, now);
                        }
                    }
                }
                self.ended += 1;
                aligned = self.aligner.input_finished(from, now);
                if self.ended == self.inputs {
                    outcome.finished = true;
                }
            }
            // Only a windowed aggregation's subtasks take projected rows (`graph.rs`).
            Message::Idle { .. } | Message::Projected { .. } => {}
        }
        if let Some((id, started)) = aligned {
            self.sink.pre_commit(id);
            outcome.checkpoint = Some(TaskSnapshot {
                id,
                alignment_started: started,
                watermark: EventTime::MIN,
                windows: Vec::new(),
                incremental: None,
                stage: self.then.as_ref().map(|(then, ..)| then.encode()),
            });
            for held in self.aligner.release() {
                self.handle(held, now, outcome);
            }
        }
    }
}
