//! The simulated driver of the per-record engine: the same subtasks as the live driver, run as
//! a discrete-event simulation on virtual time, single-threaded and deterministic.
//!
//! Each subtask lives on a simulated core of the [`Cluster`] (round robin over cores, so over
//! nodes). A subtask runs when it has something to do and its core is free; what it does is
//! priced by the [`CostModel`] and moves its core's clock. Messages a subtask sends leave when
//! its step ends and arrive after the network delay (none on the same node; latency plus
//! bytes over bandwidth across nodes), in order per link. A receiver whose queue holds
//! `buffers_per_channel × inputs` messages blocks its upstream sources (backpressure), as the
//! bounded channels of the live driver do. Events are ordered by (time, sequence number), so
//! the same scenario and seed give byte-identical results.
//!
//! With `checkpoint_interval` set, a checkpoint coordinator injects barriers at the sources;
//! window subtasks align them and snapshot their state, the sink pre-commits its transaction,
//! and when every subtask has acknowledged, the checkpoint completes: its manifest is written
//! and an exactly-once sink commits. A crash loses every subtask's memory and the sink's open
//! transactions; after the restart strategy's delay the job restarts from the latest completed
//! checkpoint (read back from its directory when there is one).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use crate::cluster::Cluster;
use crate::cost::{CostModel, Work};
use crate::dataflow::checkpoint::{incremental_error, incremental_root, manifest_json, read_checkpoint, write_file};
use crate::dataflow::config::{DataflowConfig, DataflowConfigError, ROW_WIRE_BYTES};
use crate::dataflow::network::{BufferPool, Link, Message, OutputGate};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{
    ResultOutput, RowOutput, SinkOperator, SinkTask, SourceStats, SourceTask, Step, TaskOutcome, TaskSnapshot,
    WindowTask,
};
use crate::dimension::CampaignTable;
use crate::fault::CheckpointPhase;
use crate::microbatch::checkpoint::{frame, CheckpointError};
use crate::operators::stateless::StatelessChain;
use crate::operators::window::StateDelta;
use crate::operators::{Row, WindowResult};
use crate::pipeline::PipelineSpec;
use crate::run::{Delivered, EngineRun, FailureEvent};
use crate::source::SourceLog;
use crate::time::{as_ms, EventTime, Nanos};

/// Messages sent during a step, collected for delivery on virtual time: (receiver, message).
type Outbox<T> = Rc<RefCell<Vec<(usize, Message<T>)>>>;

/// The simulated channel end: it drops messages into the driver's outbox.
#[derive(Debug)]
pub struct SimLink<T> {
    to: usize,
    outbox: Outbox<T>,
}

impl<T> Link<T> for SimLink<T> {
    fn send(&self, msg: Message<T>) {
        self.outbox.borrow_mut().push((self.to, msg));
    }
}

// Few, long-lived values: boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Subtask {
    Source(SourceTask<SimLink<Row>>),
    Window(WindowTask<SimLink<WindowResult>>),
    RowSink(SinkTask<Row>),
    ResultSink(SinkTask<WindowResult>),
    Done,
}

impl Subtask {
    fn sink_mut(&mut self) -> Option<&mut SinkOperator> {
        match self {
            Subtask::Source(t) => t.chained_sink_mut(),
            Subtask::Window(t) => t.chained_sink_mut(),
            Subtask::RowSink(t) => Some(&mut t.sink),
            Subtask::ResultSink(t) => Some(&mut t.sink),
            Subtask::Done => None,
        }
    }
}

/// A queued message and when it becomes available to its receiver.
enum Inbound {
    Rows(Message<Row>),
    Results(Message<WindowResult>),
}

/// What is needed to build the job's subtasks again after a crash.
struct Blueprint {
    cfg: DataflowConfig,
    pipeline: PipelineSpec,
    table: CampaignTable,
    partitions: usize,
}

/// A checkpoint in progress.
#[derive(Default)]
struct Pending {
    trigger: Nanos,
    needed: usize,
    acks: usize,
    complete_at: Nanos,
    sources: Vec<(usize, usize)>,
    windows: Vec<(usize, TaskSnapshot)>,
    start_delay: Nanos,
    alignment: Nanos,
    sync: Nanos,
    asynchronous: Nanos,
    bytes: u64,
    /// What the checkpoint's state takes in all (incremental checkpoints reference earlier bytes).
    state_bytes: u64,
}

/// The latest completed checkpoint.
struct Completed {
    id: u64,
    sources: Vec<(usize, usize)>,
    windows: Vec<(usize, TaskSnapshot)>,
}

/// The checkpoint coordinator's state.
struct Coordinator {
    interval: Nanos,
    next_trigger: Nanos,
    next_id: u64,
    dir: Option<PathBuf>,
    pending: BTreeMap<u64, Pending>,
    completed: Option<Completed>,
    /// Per source subtask, a barrier to inject at its next step.
    inject: Vec<Option<u64>>,
}

struct Sim {
    name: String,
    blueprint: Blueprint,
    cost: CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
    poll_interval: Nanos,
    subtasks: Vec<Subtask>,
    sources_count: usize,
    core_of: Vec<usize>,
    core_free: Vec<Nanos>,
    inbox: Vec<VecDeque<(Nanos, Inbound)>>,
    capacity: Vec<usize>,
    /// For each source: the receivers it sends to.
    downstream: Vec<Vec<usize>>,
    /// Sources blocked on a full receiver, by receiver.
    blocked: Vec<Vec<usize>>,
    link_last: Vec<Nanos>,
    scheduled: Vec<Option<Nanos>>,
    queue: BinaryHeap<Reverse<(Nanos, u64, usize)>>,
    seq: u64,
    rows_out: Outbox<Row>,
    results_out: Outbox<WindowResult>,
    row_pool: BufferPool<Row>,
    result_pool: BufferPool<WindowResult>,
    sinks: Vec<SinkOperator>,
    sources: Vec<SourceStats>,
    windows: Vec<WindowOutcome>,
    coordinator: Option<Coordinator>,
    /// Instants the job crashes at, latest first (popped in order).
    crashes: Vec<Nanos>,
    /// Checkpoint phases the job crashes in.
    phase_crashes: Vec<(u64, CheckpointPhase)>,
    restarts: u32,
    failures: Vec<FailureEvent>,
    checkpoint_progress: Vec<serde_json::Value>,
    error: Option<CheckpointError>,
    /// The subtask whose last message finished it.
    finished_flag: Option<usize>,
    /// Stragglers and slow state stores.
    slowdowns: Vec<crate::cost::Slowdown>,
    /// Final read positions of the sources of this incarnation that have finished.
    finished_positions: Vec<(usize, usize)>,
    /// The core and start of the step being run (slowdowns price by them).
    step_at: (usize, Nanos),
}

/// Indices past the subtasks: the coordinator and the crash.
impl Sim {
    fn coord(&self) -> usize {
        self.subtasks.len()
    }

    fn crash_slot(&self) -> usize {
        self.subtasks.len() + 1
    }

    /// Points every window subtask with an LSM store at its incremental checkpoint root, when
    /// the job writes its checkpoints to a directory.
    fn checkpoint_incrementally(&mut self) {
        let Some(dir) = self.coordinator.as_ref().and_then(|c| c.dir.clone()) else {
            return;
        };
        for (k, s) in self.subtasks.iter_mut().enumerate() {
            if let Subtask::Window(task) = s {
                task.checkpoint_incrementally(dir.join(incremental_root(k)));
            }
        }
    }

    /// The price of `work` done in the current step, slowdowns in force included.
    fn priced(&self, work: &Work) -> Nanos {
        if self.slowdowns.is_empty() {
            return self.cost.price(work);
        }
        self.cost
            .at(&self.slowdowns, self.step_at.0, self.step_at.1)
            .price(work)
    }

    fn schedule(&mut self, k: usize, t: Nanos) {
        if matches!(self.scheduled[k], Some(s) if s <= t) {
            return;
        }
        self.scheduled[k] = Some(t);
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, k)));
    }

    /// Delivers what subtask `from` sent, leaving at `at`; returns the work of sending it.
    fn deliver(&mut self, from: usize, at: Nanos) -> Work {
        let mut work = Work::default();
        let rows: Vec<_> = self.rows_out.borrow_mut().drain(..).collect();
        let results: Vec<_> = self.results_out.borrow_mut().drain(..).collect();
        let n = self.subtasks.len();
        let mut send = |sim: &mut Self, to: usize, items: usize, msg: Inbound| {
            let bytes = (items * ROW_WIRE_BYTES) as u64;
            let remote = sim.cluster.node_of_core(sim.core_of[from]) != sim.cluster.node_of_core(sim.core_of[to]);
            let delay = if remote {
                (sim.cost.network_latency_ns + bytes as f64 * sim.cost.network_ns_per_byte).round() as Nanos
            } else {
                0
            };
            if items > 0 {
                work.buffers += 1;
                work.serialized_bytes += bytes;
            }
            let link = from * n + to;
            let arrival = (at + delay).max(sim.link_last[link]);
            sim.link_last[link] = arrival;
            let q = &mut sim.inbox[to];
            let pos = q.iter().rposition(|(t, _)| *t <= arrival).map_or(0, |p| p + 1);
            q.insert(pos, (arrival, msg));
            sim.schedule(to, arrival);
        };
        for (to, msg) in rows {
            let items = data_len(&msg) as usize;
            send(self, to, items, Inbound::Rows(msg));
        }
        for (to, msg) in results {
            let items = data_len(&msg) as usize;
            send(self, to, items, Inbound::Results(msg));
        }
        // Network latency and bandwidth are delays, not CPU: the sender pays serialization and
        // the hand-off only.
        work
    }

    fn unblock(&mut self, receiver: usize, now: Nanos) {
        if self.inbox[receiver].len() < self.capacity[receiver] {
            for s in std::mem::take(&mut self.blocked[receiver]) {
                self.schedule(s, now);
            }
        }
    }

    /// Processes every event before `to`.
    fn run(&mut self, source: &SourceLog, to: Nanos) {
        while let Some(&Reverse((t, _, k))) = self.queue.peek() {
            if t >= to || self.error.is_some() {
                break;
            }
            self.queue.pop();
            if self.scheduled[k] != Some(t) {
                continue; // superseded by an earlier wake-up
            }
            self.scheduled[k] = None;
            if k == self.coord() {
                self.coordinate(t);
                continue;
            }
            if k == self.crash_slot() {
                self.crash(t);
                continue;
            }
            let core = self.core_of[k];
            let start = t.max(self.core_free[core]);
            if start > t {
                self.schedule(k, start);
                continue;
            }
            self.step_at = (core, start);
            let end = match std::mem::replace(&mut self.subtasks[k], Subtask::Done) {
                Subtask::Done => continue,
                Subtask::Source(task) => self.step_source(source, k, task, start),
                Subtask::Window(task) => self.step_window(k, task, start),
                Subtask::RowSink(task) => self.step_sink(k, SinkKind::Rows(task), start),
                Subtask::ResultSink(task) => self.step_sink(k, SinkKind::Results(task), start),
            };
            self.core_free[core] = end;
        }
    }

    fn step_source(&mut self, source: &SourceLog, k: usize, mut task: SourceTask<SimLink<Row>>, start: Nanos) -> Nanos {
        if let Some(&full) = self.downstream[k]
            .iter()
            .find(|&&d| self.inbox[d].len() >= self.capacity[d])
        {
            self.blocked[full].push(k);
            self.subtasks[k] = Subtask::Source(task);
            return start;
        }
        // A checkpoint barrier goes out before this step's records.
        if let Some(id) = self.coordinator.as_mut().and_then(|c| c.inject[k].take()) {
            let positions = task.inject_barrier(id);
            self.deliver(k, start);
            self.ack(id, start, |p| {
                p.start_delay = p.start_delay.max(start.saturating_sub(p.trigger));
                p.sources.extend(positions);
            });
        }
        let (read0, delivered0) = (task.events_read, task.chained_deliveries());
        let step = task.step(source, start, self.until, self.bounded);
        let read = task.events_read - read0;
        let work = Work {
            events_read: read,
            events_chained: read,
            sink_records: (task.chained_deliveries() - delivered0) as u64,
            ..Default::default()
        };
        let mut end = start + self.priced(&work);
        let sent = self.deliver(k, end);
        end += self.priced(&sent);
        match step {
            Step::Continue => self.schedule(k, end),
            // A caught-up source polls again no sooner than its poll interval.
            Step::WaitUntil(t) => self.schedule(k, t.max(end).max(start + self.poll_interval)),
            Step::Done => {
                let (sink, stats) = task.finish(self.bounded);
                // Later checkpoints carry where this source ended.
                self.finished_positions.extend(stats.positions.iter().copied());
                self.deliver(k, end);
                self.sinks.extend(sink);
                self.sources.push(stats);
                return end;
            }
        }
        self.subtasks[k] = Subtask::Source(task);
        end
    }

    fn step_window(&mut self, k: usize, mut task: WindowTask<SimLink<WindowResult>>, start: Nanos) -> Nanos {
        let mut now = start;
        while self.inbox[k].front().is_some_and(|(t, _)| *t <= now) {
            let (_, msg) = self.inbox[k].pop_front().expect("front exists");
            let Inbound::Rows(msg) = msg else {
                unreachable!("window subtasks receive rows")
            };
            let rows = data_len(&msg);
            let delivered0 = task.chained_deliveries();
            let outcome = task.on_message(msg, now);
            // The flusher's period keeps running between messages, as in the live driver.
            task.on_tick(now);
            let results = self.results_out.borrow().iter().map(|(_, m)| data_len(m)).sum::<u64>()
                + (task.chained_deliveries() - delivered0) as u64;
            let work = Work {
                state_updates: rows,
                serialized_bytes: rows * ROW_WIRE_BYTES as u64,
                results,
                sink_records: (task.chained_deliveries() - delivered0) as u64,
                ..Default::default()
            };
            task.add_state_time(self.priced(&Work {
                state_updates: rows,
                ..Default::default()
            }));
            now += self.priced(&work);
            now = self.after_message(k, outcome, now, |sim, b| sim.row_pool.recycle(b));
            if self.take_finished(k) {
                let (sink, outcome) = task.finish();
                self.sinks.extend(sink);
                self.windows.push(outcome);
                return now;
            }
        }
        task.on_tick(now);
        let sent = self.deliver(k, now);
        now += self.priced(&sent);
        if let Some((t, _)) = self.inbox[k].front() {
            let t = (*t).max(now);
            self.schedule(k, t);
        }
        if let Some(d) = task.next_deadline() {
            self.schedule(k, d.max(now));
        }
        self.subtasks[k] = Subtask::Window(task);
        now
    }

    /// Common handling after a message: recycle buffers, ship what was sent, take a
    /// checkpoint snapshot, note end-of-stream. Returns the time after it.
    fn after_message<T>(
        &mut self,
        k: usize,
        outcome: TaskOutcome<T>,
        mut now: Nanos,
        mut recycle: impl FnMut(&mut Self, Vec<T>),
    ) -> Nanos {
        for b in outcome.buffers {
            recycle(self, b);
        }
        let sent = self.deliver(k, now);
        now += self.priced(&sent);
        self.unblock(k, now);
        if let Some(snapshot) = outcome.checkpoint {
            now = self.snapshot_taken(k, snapshot, now);
        }
        if outcome.finished {
            self.finished_flag = Some(k);
        }
        now
    }

    fn take_finished(&mut self, k: usize) -> bool {
        if self.finished_flag == Some(k) {
            self.finished_flag = None;
            true
        } else {
            false
        }
    }

    /// A subtask aligned checkpoint `snapshot.id`: serialize its state (synchronous part),
    /// write it (asynchronous part, overlapping further processing), acknowledge.
    fn snapshot_taken(&mut self, k: usize, snapshot: TaskSnapshot, now: Nanos) -> Nanos {
        let id = snapshot.id;
        let encoded = StateDelta {
            upserts: snapshot.windows.clone(),
            deletes: Vec::new(),
        }
        .encode();
        // An incremental checkpoint wrote only its new runs (already, into its own root).
        let (bytes, state_bytes) = match &snapshot.incremental {
            Some(inc) => (inc.bytes_written, inc.state_bytes),
            None => (encoded.len() as u64, encoded.len() as u64),
        };
        if let Some(e) = snapshot.incremental.as_ref().and_then(|i| incremental_error(k, i)) {
            self.error = Some(e);
        }
        let sync = self.priced(&Work {
            serialized_bytes: bytes,
            ..Default::default()
        });
        let asynchronous = self.priced(&Work {
            log_writes: 1,
            logged_bytes: bytes,
            ..Default::default()
        });
        let full = snapshot.incremental.is_none();
        if let Some(dir) = self.coordinator.as_ref().and_then(|c| c.dir.clone()).filter(|_| full) {
            let path = dir.join(format!("chk-{id}")).join(format!("subtask-{k}.state"));
            if let Err(e) = write_file(&path, &frame(&encoded)) {
                self.error = Some(e);
            }
        }
        let aligned = now.saturating_sub(snapshot.alignment_started);
        let done = now + sync + asynchronous;
        self.ack(id, done, |p| {
            p.alignment = p.alignment.max(aligned);
            p.sync = p.sync.max(sync);
            p.asynchronous = p.asynchronous.max(asynchronous);
            p.bytes += bytes;
            p.state_bytes += state_bytes;
            if !snapshot.windows.is_empty() || snapshot.incremental.is_some() || snapshot.watermark != EventTime::MIN {
                p.windows.push((k, snapshot));
            }
        });
        if self.crashes_in(id, CheckpointPhase::Snapshot) {
            let slot = self.crash_slot();
            self.schedule(slot, now + sync);
        }
        now + sync
    }

    fn step_sink(&mut self, k: usize, mut task: SinkKind, start: Nanos) -> Nanos {
        let mut now = start;
        while self.inbox[k].front().is_some_and(|(t, _)| *t <= now) {
            let (_, msg) = self.inbox[k].pop_front().expect("front exists");
            let n = match &msg {
                Inbound::Rows(m) => data_len(m),
                Inbound::Results(m) => data_len(m),
            };
            now += self.priced(&Work {
                sink_records: n,
                serialized_bytes: n * ROW_WIRE_BYTES as u64,
                ..Default::default()
            });
            now = match (&mut task, msg) {
                (SinkKind::Rows(t), Inbound::Rows(m)) => {
                    let outcome = t.on_message(m, now);
                    self.after_message(k, outcome, now, |sim, b| sim.row_pool.recycle(b))
                }
                (SinkKind::Results(t), Inbound::Results(m)) => {
                    let outcome = t.on_message(m, now);
                    self.after_message(k, outcome, now, |sim, b| sim.result_pool.recycle(b))
                }
                _ => unreachable!("a sink receives one kind of item"),
            };
            if self.take_finished(k) {
                self.sinks.push(match task {
                    SinkKind::Rows(t) => t.sink,
                    SinkKind::Results(t) => t.sink,
                });
                return now;
            }
        }
        if let Some((t, _)) = self.inbox[k].front() {
            let t = (*t).max(now);
            self.schedule(k, t);
        }
        self.subtasks[k] = match task {
            SinkKind::Rows(t) => Subtask::RowSink(t),
            SinkKind::Results(t) => Subtask::ResultSink(t),
        };
        now
    }

    /// Whether the job crashes now that checkpoint `id` has reached `phase`. A crash planned for
    /// a later instant stays planned.
    fn crashes_in(&mut self, id: u64, phase: CheckpointPhase) -> bool {
        let Some(i) = self.phase_crashes.iter().position(|&c| c == (id, phase)) else {
            return false;
        };
        self.phase_crashes.swap_remove(i);
        let slot = self.crash_slot();
        if let Some(planned) = self.scheduled[slot].take() {
            self.crashes.push(planned); // the earliest planned: popped next
        }
        true
    }

    /// A subtask acknowledged checkpoint `id` (its part done at `at`).
    fn ack(&mut self, id: u64, at: Nanos, update: impl FnOnce(&mut Pending)) {
        let Some(c) = self.coordinator.as_mut() else { return };
        let Some(p) = c.pending.get_mut(&id) else { return };
        update(p);
        p.acks += 1;
        p.complete_at = p.complete_at.max(at);
        if p.acks >= p.needed {
            let t = p.complete_at;
            let coord = self.coord();
            self.schedule(coord, t);
        }
    }

    /// The coordinator: completes acknowledged checkpoints, triggers the next one.
    fn coordinate(&mut self, now: Nanos) {
        let alive_sources: Vec<usize> = (0..self.sources_count)
            .filter(|&k| matches!(self.subtasks[k], Subtask::Source(_)))
            .collect();
        let alive = self.subtasks.iter().filter(|s| !matches!(s, Subtask::Done)).count();
        let Some(c) = self.coordinator.as_mut() else { return };
        let ready: Vec<u64> = c
            .pending
            .iter()
            .filter(|(_, p)| p.acks >= p.needed && p.complete_at <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in ready {
            let c = self.coordinator.as_mut().expect("coordinator");
            let Some(p) = c.pending.remove(&id) else { continue };
            // Older checkpoints still pending are subsumed by this one.
            c.pending.retain(|&i, _| i > id);
            let dir = c.dir.clone();
            if let Some(dir) = &dir {
                let windows: Vec<_> = p
                    .windows
                    .iter()
                    .map(|(k, s)| (*k, s.watermark, s.incremental.is_some()))
                    .collect();
                let manifest = manifest_json(id, &p.sources, &windows);
                if let Err(e) = write_file(
                    &dir.join(format!("chk-{id}")).join("_metadata"),
                    manifest.to_string().as_bytes(),
                ) {
                    self.error = Some(e);
                    return;
                }
            }
            self.checkpoint_progress.push(serde_json::json!({
                "run": self.name, "type": "checkpoint", "id": id,
                "triggerTimeMs": as_ms(p.trigger), "completedTimeMs": as_ms(now),
                "startDelayMs": as_ms(p.start_delay), "alignmentMs": as_ms(p.alignment),
                "syncMs": as_ms(p.sync), "asyncMs": as_ms(p.asynchronous),
                "durationMs": as_ms(now - p.trigger), "bytes": p.bytes, "stateBytes": p.state_bytes,
            }));
            let c = self.coordinator.as_mut().expect("coordinator");
            c.completed = Some(Completed {
                id,
                sources: p.sources,
                windows: p.windows,
            });
            if self.crashes_in(id, CheckpointPhase::Notify) {
                self.crash(now);
                return;
            }
            for s in &mut self.subtasks {
                if let Some(sink) = s.sink_mut() {
                    sink.commit(id, now);
                }
            }
            for sink in &mut self.sinks {
                sink.commit(id, now);
            }
        }
        let finished = self.finished_positions.clone();
        let c = self.coordinator.as_mut().expect("coordinator");
        if now >= c.next_trigger && !alive_sources.is_empty() && now < self.until {
            let id = c.next_id;
            c.next_id += 1;
            // Sources that have finished are not asked again: the checkpoint carries where they ended.
            c.pending.insert(
                id,
                Pending {
                    trigger: now,
                    needed: alive,
                    sources: finished,
                    ..Default::default()
                },
            );
            for &k in &alive_sources {
                c.inject[k] = Some(id);
            }
            c.next_trigger = (now / c.interval + 1) * c.interval;
            let next = c.next_trigger;
            for k in alive_sources {
                self.schedule(k, now);
            }
            let coord = self.coord();
            self.schedule(coord, next);
            if self.crashes_in(id, CheckpointPhase::Trigger) {
                let slot = self.crash_slot();
                self.schedule(slot, now);
            }
        } else if alive > 0 && now < self.until {
            let next = c.next_trigger;
            let coord = self.coord();
            self.schedule(coord, next);
        }
    }

    /// The job crashes at `t`: every subtask's memory and the sink's open transactions are
    /// lost; after the restart delay it runs again from the latest completed checkpoint.
    fn crash(&mut self, t: Nanos) {
        // What was read before the crash, per partition (for counting replays).
        let mut read = vec![0usize; self.blueprint.partitions];
        let mut history: Option<SinkOperator> = None;
        for s in std::mem::take(&mut self.subtasks) {
            match s {
                Subtask::Source(task) => {
                    let (sink, stats) = task.finish(false);
                    history = history.or(sink);
                    self.sources.push(stats);
                }
                Subtask::Window(task) => {
                    let (sink, mut outcome) = task.finish();
                    history = history.or(sink);
                    outcome.watermark = EventTime::MAX; // a dead incarnation holds nothing back
                    self.windows.push(outcome);
                }
                Subtask::RowSink(task) => history = Some(task.sink),
                Subtask::ResultSink(task) => history = Some(task.sink),
                Subtask::Done => {}
            }
        }
        for stats in &self.sources {
            for &(p, o) in &stats.positions {
                read[p] = read[p].max(o);
            }
        }
        let mut history = history.or_else(|| self.sinks.pop()).expect("the run has a sink");
        self.rows_out.borrow_mut().clear();
        self.results_out.borrow_mut().clear();
        self.finished_positions.clear();
        self.restarts += 1;
        let restart = t + self.blueprint.cfg.restart.delay(self.restarts).nanos();
        // Recover-and-commit: transactions pre-committed for a checkpoint that completed are
        // committed by the restarted sink (the crash fell between completion and notification);
        // the rest are aborted.
        if let Some(id) = self
            .coordinator
            .as_ref()
            .and_then(|c| c.completed.as_ref())
            .map(|d| d.id)
        {
            history.commit(id, restart);
        }
        history.abort();

        // A new incarnation of every subtask.
        let fresh = match topology(
            &self.blueprint,
            &self.rows_out,
            &self.results_out,
            &self.row_pool,
            &self.result_pool,
        ) {
            Ok(t) => t,
            Err(_) => unreachable!("the configuration was valid at the start"),
        };
        self.subtasks = fresh.subtasks;
        self.checkpoint_incrementally();
        for s in &mut self.subtasks {
            if let Some(sink) = s.sink_mut() {
                std::mem::swap(sink, &mut history);
                break;
            }
        }
        let completed = self.coordinator.as_mut().and_then(|c| {
            c.pending.clear();
            c.inject.iter_mut().for_each(|i| *i = None);
            c.next_trigger = (restart / c.interval + 1) * c.interval;
            c.completed.as_ref().map(|done| (done.id, c.dir.clone()))
        });
        let mut restored = vec![0usize; self.blueprint.partitions];
        if let Some((id, dir)) = completed {
            match self.restore(id, dir) {
                Ok((sources, windows)) => {
                    for s in &mut self.subtasks {
                        match s {
                            Subtask::Source(task) => task.restore_positions(&sources),
                            Subtask::Window(_) => {}
                            _ => {}
                        }
                    }
                    for (k, snapshot) in windows {
                        if let Some(Subtask::Window(task)) = self.subtasks.get_mut(k) {
                            if let Err(e) = task.restore(&snapshot) {
                                self.error = Some(e);
                                return;
                            }
                        }
                    }
                    for (p, o) in sources {
                        restored[p] = o;
                    }
                }
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        let replayed: u64 = read
            .iter()
            .zip(&restored)
            .map(|(r, s)| r.saturating_sub(*s) as u64)
            .sum();
        self.failures.push(FailureEvent {
            at: t,
            restarted_at: restart,
            replayed,
        });
        let n = self.subtasks.len();
        self.inbox = (0..n).map(|_| VecDeque::new()).collect();
        self.blocked = vec![Vec::new(); n];
        self.link_last = vec![0; n * n];
        self.scheduled = vec![None; n + 2];
        self.queue.clear();
        self.core_free.iter_mut().for_each(|c| *c = (*c).max(restart));
        for k in 0..self.sources_count {
            self.schedule(k, restart);
        }
        if let Some(next) = self.coordinator.as_ref().map(|c| c.next_trigger) {
            let coord = self.coord();
            self.schedule(coord, next);
        }
        if let Some(&next) = self.crashes.last() {
            self.crashes.pop();
            let slot = self.crash_slot();
            self.schedule(slot, next.max(restart));
        }
    }

    /// Reads checkpoint `id` back: from its directory when the job keeps one, else from memory.
    #[allow(clippy::type_complexity)]
    fn restore(
        &self,
        id: u64,
        dir: Option<PathBuf>,
    ) -> Result<(Vec<(usize, usize)>, Vec<(usize, TaskSnapshot)>), CheckpointError> {
        let Some(dir) = dir else {
            let done = self
                .coordinator
                .as_ref()
                .and_then(|c| c.completed.as_ref())
                .expect("completed checkpoint");
            return Ok((done.sources.clone(), done.windows.clone()));
        };
        read_checkpoint(&dir, id, self.blueprint.cfg.parallelism, self.blueprint.partitions)
    }
}

/// A sink subtask of either item type.
enum SinkKind {
    Rows(SinkTask<Row>),
    Results(SinkTask<WindowResult>),
}

fn data_len<T>(m: &Message<T>) -> u64 {
    match m {
        Message::Data { items, .. } => items.len() as u64,
        _ => 0,
    }
}

/// Runs the per-record engine on virtual time until `until`, on `cluster`, with work priced by
/// `cost`. `bounded` as in [`crate::dataflow::live::run_live`].
#[allow(clippy::too_many_arguments)]
pub fn run_simulated(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    source: &SourceLog,
    cost: &CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    let mut sim = SimulatedDataflow::new(
        name,
        cfg,
        pipeline,
        table,
        source.partitions(),
        cost,
        cluster,
        until,
        bounded,
    )?;
    sim.advance(source, Nanos::MAX)
        .expect("no checkpoint directory, so nothing to write");
    Ok(sim.finish())
}

/// A per-record engine on virtual time that can be advanced in segments, so a long run needs
/// only the part of the source log that is still unread (see [`SourceLog::release_before`]).
pub struct SimulatedDataflow {
    sim: Sim,
}

impl SimulatedDataflow {
    /// Builds the subtasks for a source of `partitions` partitions; nothing runs yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        cfg: &DataflowConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
        cost: &CostModel,
        cluster: Cluster,
        until: Nanos,
        bounded: bool,
    ) -> Result<Self, DataflowConfigError> {
        cfg.validate()?;
        let blueprint = Blueprint {
            cfg: *cfg,
            pipeline: pipeline.clone(),
            table: table.clone(),
            partitions,
        };
        let rows_out: Outbox<Row> = Rc::default();
        let results_out: Outbox<WindowResult> = Rc::default();
        let row_pool = BufferPool::<Row>::new();
        let result_pool = BufferPool::<WindowResult>::new();
        let t = topology(&blueprint, &rows_out, &results_out, &row_pool, &result_pool)?;
        let n = t.subtasks.len();
        let cores = cluster.cores().max(1);
        let coordinator = cfg.checkpoint_interval.map(|i| Coordinator {
            interval: i.nanos(),
            next_trigger: i.nanos(),
            next_id: 1,
            dir: None,
            pending: BTreeMap::new(),
            completed: None,
            inject: vec![None; t.sources],
        });
        let mut sim = Sim {
            name: name.to_string(),
            cost: *cost,
            cluster,
            until,
            bounded,
            poll_interval: cost.source_poll_interval_ns.round() as Nanos,
            sources_count: t.sources,
            core_of: (0..n).map(|k| k % cores).collect(),
            core_free: vec![0; cores],
            inbox: (0..n).map(|_| VecDeque::new()).collect(),
            capacity: t
                .input_count
                .iter()
                .map(|&i| (cfg.buffers_per_channel * i.max(1)).max(1))
                .collect(),
            downstream: t.downstream,
            blocked: vec![Vec::new(); n],
            link_last: vec![0; n * n],
            scheduled: vec![None; n + 2],
            queue: BinaryHeap::new(),
            seq: 0,
            rows_out,
            results_out,
            row_pool,
            result_pool,
            sinks: Vec::new(),
            sources: Vec::new(),
            windows: Vec::new(),
            subtasks: t.subtasks,
            blueprint,
            coordinator,
            crashes: Vec::new(),
            phase_crashes: Vec::new(),
            restarts: 0,
            failures: Vec::new(),
            checkpoint_progress: Vec::new(),
            error: None,
            finished_flag: None,
            slowdowns: Vec::new(),
            finished_positions: Vec::new(),
            step_at: (0, 0),
        };
        for k in 0..sim.sources_count {
            sim.schedule(k, 0);
        }
        if let Some(next) = sim.coordinator.as_ref().map(|c| c.next_trigger) {
            let coord = sim.coord();
            sim.schedule(coord, next);
        }
        Ok(Self { sim })
    }

    /// Writes completed checkpoints under `dir` (`chk-<id>/_metadata` and one state file per
    /// subtask) and restores from there after a crash.
    pub fn with_checkpoint_dir(mut self, dir: PathBuf) -> Self {
        if let Some(c) = &mut self.sim.coordinator {
            c.dir = Some(dir);
        }
        self.sim.checkpoint_incrementally();
        self
    }

    /// Makes work slower during the given periods (stragglers, a slow state store); a
    /// straggling worker is a core of the cluster.
    pub fn with_slowdowns(mut self, slowdowns: Vec<crate::cost::Slowdown>) -> Self {
        self.sim.slowdowns = slowdowns;
        self
    }

    /// Makes the job crash at each of `at` (virtual time).
    pub fn crash_at(&mut self, mut at: Vec<Nanos>) {
        at.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(first) = at.pop() {
            let slot = self.sim.crash_slot();
            self.sim.schedule(slot, first);
        }
        self.sim.crashes = at;
    }

    /// Makes the job crash when checkpoint `id` reaches `phase`, for each `(id, phase)`.
    pub fn crash_in_checkpoints(&mut self, points: Vec<(u64, CheckpointPhase)>) {
        self.sim.phase_crashes = points;
    }

    /// Runs everything that happens before `to`, reading from `source`.
    pub fn advance(&mut self, source: &SourceLog, to: Nanos) -> Result<(), CheckpointError> {
        self.sim.run(source, to);
        match self.sim.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Wakes the source subtasks at `at`: call after appending events that arrive from `at` on.
    pub fn resume_sources(&mut self, at: Nanos) {
        for k in 0..self.sim.sources_count {
            if matches!(self.sim.subtasks[k], Subtask::Source(_)) {
                self.sim.schedule(k, at);
            }
        }
    }

    /// Per partition, the offset below which no event will be read again: what the sources have
    /// read, but no further than the latest completed checkpoint when a restart could rewind to
    /// it (and nothing at all when crashes are planned and there is no checkpoint yet).
    pub fn consumed_offsets(&self, partitions: usize) -> Vec<usize> {
        let mut out = vec![usize::MAX; partitions];
        let positions = self.sim.subtasks.iter().filter_map(|s| match s {
            Subtask::Source(t) => Some(t.positions()),
            _ => None,
        });
        for (p, o) in positions
            .flatten()
            .chain(self.sim.sources.iter().flat_map(|s| s.positions.iter().copied()))
        {
            out[p] = out[p].min(o);
        }
        let may_crash = !self.sim.crashes.is_empty()
            || !self.sim.phase_crashes.is_empty()
            || self.sim.scheduled.last().is_some_and(|s| s.is_some());
        if may_crash {
            let floor = self
                .sim
                .coordinator
                .as_ref()
                .and_then(|c| c.completed.as_ref())
                .map(|c| c.sources.clone());
            match floor {
                Some(sources) => {
                    let mut f = vec![0usize; partitions];
                    for (p, o) in sources {
                        f[p] = o;
                    }
                    for (o, f) in out.iter_mut().zip(f) {
                        *o = (*o).min(f);
                    }
                }
                None => out.iter_mut().for_each(|o| *o = 0),
            }
        }
        out.iter().map(|&o| if o == usize::MAX { 0 } else { o }).collect()
    }

    /// Takes the outputs delivered so far (they are no longer kept by the run).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        let mut out = Vec::new();
        for s in &mut self.sim.subtasks {
            if let Some(sink) = s.sink_mut() {
                out.append(&mut sink.delivered);
            }
        }
        for sink in &mut self.sim.sinks {
            out.append(&mut sink.delivered);
        }
        out
    }

    /// Ends the run and reports it. Subtasks still running (the run was cut off) are finished
    /// as they stand.
    pub fn finish(mut self) -> EngineRun {
        let bounded = self.sim.bounded;
        for s in std::mem::take(&mut self.sim.subtasks) {
            match s {
                Subtask::Source(t) => {
                    let (sink, stats) = t.finish(bounded);
                    self.sim.sinks.extend(sink);
                    self.sim.sources.push(stats);
                }
                Subtask::Window(t) => {
                    let (sink, outcome) = t.finish();
                    self.sim.sinks.extend(sink);
                    self.sim.windows.push(outcome);
                }
                Subtask::RowSink(t) => self.sim.sinks.push(t.sink),
                Subtask::ResultSink(t) => self.sim.sinks.push(t.sink),
                Subtask::Done => {}
            }
        }
        let sink = self.sim.sinks.pop().expect("exactly one sink");
        debug_assert!(self.sim.sinks.is_empty(), "one sink per run");
        let mut sources = std::mem::take(&mut self.sim.sources);
        sources.sort_by_key(|s| s.index);
        let mut windows = std::mem::take(&mut self.sim.windows);
        windows.sort_by_key(|w| w.index);
        let mut run = assemble(
            &self.sim.name,
            sink,
            sources,
            windows,
            vec!["all processing time: priced by the cost model".into()],
        );
        run.counts.replayed = self.sim.failures.iter().map(|f| f.replayed).sum();
        run.failures = std::mem::take(&mut self.sim.failures);
        run.progress.append(&mut self.sim.checkpoint_progress);
        run
    }
}

/// The subtasks of a job, numbered: sources `0..p`, window subtasks `p..2p` (stateful), then
/// the sink.
struct Topology {
    subtasks: Vec<Subtask>,
    sources: usize,
    downstream: Vec<Vec<usize>>,
    input_count: Vec<usize>,
}

fn topology(
    b: &Blueprint,
    rows_out: &Outbox<Row>,
    results_out: &Outbox<WindowResult>,
    row_pool: &BufferPool<Row>,
    result_pool: &BufferPool<WindowResult>,
) -> Result<Topology, DataflowConfigError> {
    let cfg = &b.cfg;
    cfg.validate()?;
    let p = cfg.parallelism;
    let chain = StatelessChain::new(&b.pipeline, &b.table);
    let capacity = cfg.buffer_rows();
    let flush_each = cfg.buffer_timeout.nanos() == 0;
    let row_link = |to: usize| SimLink {
        to,
        outbox: rows_out.clone(),
    };
    let result_link = |to: usize| SimLink {
        to,
        outbox: results_out.clone(),
    };
    let source = |i: usize, out| SourceTask::new(i, p, b.partitions, chain.clone(), cfg, out);
    let mut t = Topology {
        subtasks: Vec::new(),
        sources: p,
        downstream: Vec::new(),
        input_count: Vec::new(),
    };
    let push = |t: &mut Topology, s: Subtask, down: Vec<usize>, inputs: usize| {
        t.subtasks.push(s);
        t.downstream.push(down);
        t.input_count.push(inputs);
    };
    match &b.pipeline.aggregate {
        None if p == 1 => {
            let task = source(0, RowOutput::Chained(Box::new(SinkOperator::new(cfg.sink))));
            push(&mut t, Subtask::Source(task), vec![], 0);
        }
        None => {
            let sink = p;
            for i in 0..p {
                let gate = OutputGate::new(i, vec![row_link(sink)], capacity, flush_each, row_pool.clone());
                push(
                    &mut t,
                    Subtask::Source(source(i, RowOutput::ToSink(gate))),
                    vec![sink],
                    0,
                );
            }
            push(
                &mut t,
                Subtask::RowSink(SinkTask::new(SinkOperator::new(cfg.sink), p)),
                vec![],
                p,
            );
        }
        Some(agg) => {
            let windows: Vec<usize> = (p..2 * p).collect();
            for i in 0..p {
                let links = windows.iter().map(|&w| row_link(w)).collect();
                let gate = OutputGate::new(i, links, capacity, flush_each, row_pool.clone());
                let out = RowOutput::Keyed {
                    gate,
                    key_by: agg.key_by,
                };
                push(&mut t, Subtask::Source(source(i, out)), windows.clone(), 0);
            }
            let sink = 2 * p;
            for j in 0..p {
                let out = if p == 1 {
                    ResultOutput::Chained(Box::new(SinkOperator::new(cfg.sink)))
                } else {
                    ResultOutput::Gate(OutputGate::new(
                        j,
                        vec![result_link(sink)],
                        capacity,
                        flush_each,
                        result_pool.clone(),
                    ))
                };
                let down = if p == 1 { vec![] } else { vec![sink] };
                push(&mut t, Subtask::Window(WindowTask::new(j, p, *agg, cfg, out)), down, p);
            }
            if p > 1 {
                push(
                    &mut t,
                    Subtask::ResultSink(SinkTask::new(SinkOperator::new(cfg.sink), p)),
                    vec![],
                    p,
                );
            }
        }
    }
    Ok(t)
}
