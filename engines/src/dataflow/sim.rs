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
//! With `checkpoint_interval` set, the [`CheckpointCoordinator`] runs as one more event source:
//! it triggers barriers at the sources; window subtasks align them and snapshot their state
//! through the shared [`SnapshotWriter`], the sink pre-commits its transaction, and when every
//! subtask has acknowledged, the coordinator's completion is carried out (manifest, progress,
//! commit) at the latest acknowledgement's instant. The job graph is
//! [`crate::dataflow::graph`]'s, its links an outbox delivered on virtual time.
//!
//! A crash is an event too: the run stops there ([`SimulatedStop::Crashed`]) and its supervisor
//! ([`crate::recovery::per_record::SimulatedJob`]) tears the job down, restarts it from the
//! latest completed checkpoint after the restart strategy's delay, and lets the event loop go
//! on where it stopped.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use crate::checkpoint::CheckpointError;
use crate::cluster::Cluster;
use crate::cost::{CostModel, Work};
use crate::dataflow::checkpoint::{Restored, SnapshotWriter};
use crate::dataflow::config::{DataflowConfigError, ROW_WIRE_BYTES};
use crate::dataflow::coordinator::{Acknowledgement, CheckpointCoordinator, SnapshotFigures};
use crate::dataflow::graph::{self, BufferPools, JobContext, JobGraph, Links};
use crate::dataflow::network::{Link, Message};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{
    SinkOperator, SinkTask, SourceStats, SourceTask, Step, TaskOutcome, TaskSnapshot, WindowTask,
};
use crate::fault::CheckpointPhase;
use crate::operators::{Row, WindowResult};
use crate::run::{Delivered, EngineRun};
use crate::source::SourceLog;
use crate::time::{EventTime, Nanos};

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

/// The simulated driver's links: every message sent during a step goes into one outbox per
/// item type, to be delivered on virtual time when the step ends.
struct SimLinks {
    rows: Outbox<Row>,
    results: Outbox<WindowResult>,
}

impl Links for SimLinks {
    type Rows = SimLink<Row>;
    type Results = SimLink<WindowResult>;

    fn rows_to(&mut self, to: usize) -> SimLink<Row> {
        SimLink {
            to,
            outbox: self.rows.clone(),
        }
    }

    fn results_to(&mut self, to: usize) -> SimLink<WindowResult> {
        SimLink {
            to,
            outbox: self.results.clone(),
        }
    }
}

type Subtask = graph::Subtask<SimLink<Row>, SimLink<WindowResult>>;

/// A queued message and when it becomes available to its receiver.
enum Inbound {
    Rows(Message<Row>),
    Results(Message<WindowResult>),
}

/// Checkpointing on virtual time: the coordinator, when it next triggers, where snapshots go.
struct Checkpointing {
    coordinator: CheckpointCoordinator,
    next_trigger: Nanos,
    writer: SnapshotWriter,
    /// Per source subtask, a barrier to inject at its next step.
    inject: Vec<Option<u64>>,
}

struct Sim {
    job: JobContext,
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
    links: SimLinks,
    pools: BufferPools,
    sinks: Vec<SinkOperator>,
    sources: Vec<SourceStats>,
    windows: Vec<WindowOutcome>,
    checkpointing: Option<Checkpointing>,
    /// Instants the job crashes at, latest first (popped in order).
    crashes: Vec<Nanos>,
    /// The instant the job crashed, until the supervisor restarts it.
    crashed: Option<Nanos>,
    /// The sink of a torn-down incarnation, for the next one.
    history: Option<SinkOperator>,
    checkpoint_progress: Vec<serde_json::Value>,
    error: Option<CheckpointError>,
    /// The subtask whose last message finished it.
    finished_flag: Option<usize>,
    /// Stragglers and slow state stores.
    slowdowns: Vec<crate::cost::Slowdown>,
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
        let Some(c) = &self.checkpointing else { return };
        for (k, s) in self.subtasks.iter_mut().enumerate() {
            if let (Subtask::Window(task), Some(root)) = (s, c.writer.incremental_root(k)) {
                task.checkpoint_incrementally(root);
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
        let rows: Vec<_> = self.links.rows.borrow_mut().drain(..).collect();
        let results: Vec<_> = self.links.results.borrow_mut().drain(..).collect();
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
                if self.crashed.is_some() {
                    return;
                }
                continue;
            }
            if k == self.crash_slot() {
                self.crashed = Some(t);
                return;
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

    fn step_source(
        &mut self,
        source: &SourceLog,
        k: usize,
        mut task: Box<SourceTask<SimLink<Row>>>,
        start: Nanos,
    ) -> Nanos {
        if let Some(&full) = self.downstream[k]
            .iter()
            .find(|&&d| self.inbox[d].len() >= self.capacity[d])
        {
            self.blocked[full].push(k);
            self.subtasks[k] = Subtask::Source(task);
            return start;
        }
        // A checkpoint barrier goes out before this step's records.
        if let Some(id) = self.checkpointing.as_mut().and_then(|c| c.inject[k].take()) {
            let positions = task.inject_barrier(id);
            self.deliver(k, start);
            self.ack(k, id, start, Acknowledgement::Barrier { at: start, positions });
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
                if let Some(c) = &mut self.checkpointing {
                    c.coordinator.finished(k, Some(&stats.positions));
                }
                self.deliver(k, end);
                self.sinks.extend(sink);
                self.sources.push(stats);
                return end;
            }
        }
        self.subtasks[k] = Subtask::Source(task);
        end
    }

    fn step_window(&mut self, k: usize, mut task: Box<WindowTask<SimLink<WindowResult>>>, start: Nanos) -> Nanos {
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
            let results = self
                .links
                .results
                .borrow()
                .iter()
                .map(|(_, m)| data_len(m))
                .sum::<u64>()
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
            now = self.after_message(k, outcome, now, |sim, b| sim.pools.rows.recycle(b));
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
    fn snapshot_taken(&mut self, k: usize, mut snapshot: TaskSnapshot, now: Nanos) -> Nanos {
        let id = snapshot.id;
        let writer = match &self.checkpointing {
            Some(c) => c.writer.clone(),
            None => SnapshotWriter::default(),
        };
        let mut serialized = writer.serialize(k, &mut snapshot);
        if let Some(e) = serialized.error.take() {
            self.error = Some(e);
        }
        let sync = self.priced(&Work {
            serialized_bytes: serialized.bytes,
            ..Default::default()
        });
        let asynchronous = self.priced(&Work {
            log_writes: 1,
            logged_bytes: serialized.bytes,
            ..Default::default()
        });
        if let Err(e) = writer.write(k, id, &serialized) {
            self.error = Some(e);
        }
        let figures = SnapshotFigures {
            alignment: now.saturating_sub(snapshot.alignment_started),
            sync,
            asynchronous,
            bytes: serialized.bytes,
            state_bytes: serialized.state_bytes,
            listed: serialized.listed.then_some(snapshot),
        };
        if self.ack(k, id, now + sync + asynchronous, Acknowledgement::Snapshot(figures)) {
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
                    self.after_message(k, outcome, now, |sim, b| sim.pools.rows.recycle(b))
                }
                (SinkKind::Results(t), Inbound::Results(m)) => {
                    let outcome = t.on_message(m, now);
                    self.after_message(k, outcome, now, |sim, b| sim.pools.results.recycle(b))
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

    /// The job crashes now that a checkpoint reached a phase a crash was planned for. A crash
    /// planned for a later instant stays planned.
    fn crash_planned_later(&mut self) {
        let slot = self.crash_slot();
        if let Some(planned) = self.scheduled[slot].take() {
            self.crashes.push(planned); // the earliest planned: popped next
        }
    }

    /// Subtask `k` acknowledged checkpoint `id` (its part done at `at`). Returns whether the
    /// job crashes in the snapshot phase now.
    fn ack(&mut self, k: usize, id: u64, at: Nanos, ack: Acknowledgement) -> bool {
        let Some(c) = self.checkpointing.as_mut() else {
            return false;
        };
        let acked = c.coordinator.acknowledge(k, id, at, ack);
        if let Some(t) = acked.ready_at {
            let coord = self.coord();
            self.schedule(coord, t);
        }
        if acked.crash {
            self.crash_planned_later();
        }
        acked.crash
    }

    /// The coordinator: completes acknowledged checkpoints, triggers the next one.
    fn coordinate(&mut self, now: Nanos) {
        let alive_sources: Vec<usize> = (0..self.sources_count)
            .filter(|&k| matches!(self.subtasks[k], Subtask::Source(_)))
            .collect();
        let alive: BTreeSet<usize> = (0..self.subtasks.len())
            .filter(|&k| !matches!(self.subtasks[k], Subtask::Done))
            .collect();
        let Some(mut c) = self.checkpointing.as_mut() else {
            return;
        };
        while let Some(done) = c.coordinator.complete(now) {
            if let Err(e) = c.writer.write_manifest(&done) {
                c.coordinator.fail();
                self.error = Some(e);
                return;
            }
            self.checkpoint_progress.push(done.progress);
            if done.crash {
                self.crash_planned_later();
                self.crashed = Some(now);
                return;
            }
            for s in &mut self.subtasks {
                if let Some(sink) = s.sink_mut() {
                    sink.commit(done.id, now);
                }
            }
            for sink in &mut self.sinks {
                sink.commit(done.id, now);
            }
            c = self.checkpointing.as_mut().expect("checkpointing");
        }
        let coord = self.coord();
        let c = self.checkpointing.as_mut().expect("checkpointing");
        if now >= c.next_trigger && !alive_sources.is_empty() && now < self.until {
            let triggered = c
                .coordinator
                .trigger(now, alive)
                .expect("the simulated run stops at a failed checkpoint");
            for &k in &alive_sources {
                c.inject[k] = Some(triggered.id);
            }
            c.next_trigger = c.coordinator.next_trigger_after(now);
            let next = c.next_trigger;
            for k in alive_sources {
                self.schedule(k, now);
            }
            self.schedule(coord, next);
            if triggered.crash {
                self.crash_planned_later();
                let slot = self.crash_slot();
                self.schedule(slot, now);
            }
        } else if !alive.is_empty() && now < self.until {
            let next = c.next_trigger;
            self.schedule(coord, next);
        }
    }

    /// The job crashed: every subtask's memory and the sink's open transactions are lost.
    /// Returns, per partition, how far the dead incarnation had read. The sink is kept for the
    /// next incarnation ([`Sim::restart`]).
    fn tear_down(&mut self) -> Vec<usize> {
        let mut read = vec![0usize; self.job.partitions];
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
        self.history = Some(history.or_else(|| self.sinks.pop()).expect("the run has a sink"));
        self.links.rows.borrow_mut().clear();
        self.links.results.borrow_mut().clear();
        read
    }

    /// A new incarnation of every subtask starts at `restart`, from completed checkpoint
    /// `from` when there is one. Returns, per partition, where its sources start reading.
    fn restart(&mut self, restart: Nanos, from: Option<u64>) -> Result<Vec<usize>, CheckpointError> {
        let mut history = self.history.take().expect("a torn-down job");
        // Recover-and-commit: transactions pre-committed for a checkpoint that completed are
        // committed by the restarted sink (the crash fell between completion and notification);
        // the rest are aborted.
        if let Some(id) = from {
            history.commit(id, restart);
        }
        history.abort();
        let fresh = match JobGraph::build(&self.job, &mut self.links, &self.pools, history) {
            Ok(g) => g,
            Err(_) => unreachable!("the configuration was valid at the start"),
        };
        self.subtasks = fresh.subtasks;
        self.checkpoint_incrementally();
        if let Some(c) = &mut self.checkpointing {
            c.inject.iter_mut().for_each(|i| *i = None);
            c.next_trigger = c.coordinator.restart(restart);
        }
        let mut restored = vec![0usize; self.job.partitions];
        if let Some(id) = from {
            let (sources, windows) = self.restore(id)?;
            for s in &mut self.subtasks {
                if let Subtask::Source(task) = s {
                    task.restore_positions(&sources);
                }
            }
            for (k, snapshot) in windows {
                if let Some(Subtask::Window(task)) = self.subtasks.get_mut(k) {
                    task.restore(&snapshot)?;
                }
            }
            for (p, o) in sources {
                restored[p] = o;
            }
        }
        Ok(restored)
    }

    /// Resumes the event loop at `restart`: fresh inboxes and links, the sources and the
    /// coordinator woken, the next planned crash scheduled.
    fn resume(&mut self, restart: Nanos) {
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
        if let Some(next) = self.checkpointing.as_ref().map(|c| c.next_trigger) {
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
    fn restore(&self, id: u64) -> Result<Restored, CheckpointError> {
        let c = self.checkpointing.as_ref().expect("a completed checkpoint");
        match c.writer.read(id, self.job.parallelism(), self.job.partitions) {
            Some(read) => read,
            None => {
                let done = c.coordinator.completed().expect("completed checkpoint");
                Ok((done.sources.clone(), done.windows.clone()))
            }
        }
    }
}

/// A sink subtask of either item type.
enum SinkKind {
    Rows(Box<SinkTask<Row>>),
    Results(Box<SinkTask<WindowResult>>),
}

fn data_len<T>(m: &Message<T>) -> u64 {
    match m {
        Message::Data { items, .. } => items.len() as u64,
        _ => 0,
    }
}

/// Runs per-record `job` on virtual time until `until`, on `cluster`, with work priced by
/// `cost`. `bounded` as in [`crate::dataflow::live::run_live`].
pub fn run_simulated(
    job: &JobContext,
    source: &SourceLog,
    cost: &CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    let mut sim = SimulatedDataflow::new(job, cost, cluster, until, bounded)?;
    if let Err(stop) = sim.advance(source, Nanos::MAX) {
        unreachable!("no checkpoint directory and no crash planned: {stop}");
    }
    Ok(sim.finish())
}

/// Why a simulated run stopped before the instant it was advanced to.
#[derive(Debug, thiserror::Error)]
pub enum SimulatedStop {
    /// The job crashed at this instant: a supervisor restarts it
    /// ([`SimulatedDataflow::tear_down`], [`SimulatedDataflow::restart`]).
    #[error("the job crashed at {0} ns")]
    Crashed(Nanos),
    /// A checkpoint could not be written, or the one to restore from could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A per-record engine on virtual time that can be advanced in segments, so a long run needs
/// only the part of the source log that is still unread (see [`SourceLog::release_before`]).
pub struct SimulatedDataflow {
    sim: Sim,
}

impl SimulatedDataflow {
    /// Builds `job`'s subtasks; nothing runs yet.
    pub fn new(
        job: &JobContext,
        cost: &CostModel,
        cluster: Cluster,
        until: Nanos,
        bounded: bool,
    ) -> Result<Self, DataflowConfigError> {
        let cfg = &job.cfg;
        cfg.validate()?;
        let mut links = SimLinks {
            rows: Rc::default(),
            results: Rc::default(),
        };
        let pools = BufferPools::default();
        let g = JobGraph::build(job, &mut links, &pools, SinkOperator::new(cfg.sink))?;
        let n = g.subtasks.len();
        let cores = cluster.cores().max(1);
        let checkpointing = cfg.checkpoint_interval.map(|i| Checkpointing {
            coordinator: CheckpointCoordinator::new(&job.name, i.nanos(), 0),
            next_trigger: i.nanos(),
            writer: SnapshotWriter::default(),
            inject: vec![None; g.sources],
        });
        let mut sim = Sim {
            job: job.clone(),
            cost: *cost,
            cluster,
            until,
            bounded,
            poll_interval: cost.source_poll_interval_ns.round() as Nanos,
            sources_count: g.sources,
            core_of: (0..n).map(|k| k % cores).collect(),
            core_free: vec![0; cores],
            inbox: (0..n).map(|_| VecDeque::new()).collect(),
            capacity: g
                .inputs
                .iter()
                .map(|&i| (cfg.buffers_per_channel * i.max(1)).max(1))
                .collect(),
            downstream: g.downstream,
            blocked: vec![Vec::new(); n],
            link_last: vec![0; n * n],
            scheduled: vec![None; n + 2],
            queue: BinaryHeap::new(),
            seq: 0,
            links,
            pools,
            sinks: Vec::new(),
            sources: Vec::new(),
            windows: Vec::new(),
            subtasks: g.subtasks,
            checkpointing,
            crashes: Vec::new(),
            crashed: None,
            history: None,
            checkpoint_progress: Vec::new(),
            error: None,
            finished_flag: None,
            slowdowns: Vec::new(),
            step_at: (0, 0),
        };
        for k in 0..sim.sources_count {
            sim.schedule(k, 0);
        }
        if let Some(next) = sim.checkpointing.as_ref().map(|c| c.next_trigger) {
            let coord = sim.coord();
            sim.schedule(coord, next);
        }
        Ok(Self { sim })
    }

    /// The job this engine runs.
    pub fn job(&self) -> &JobContext {
        &self.sim.job
    }

    /// Writes completed checkpoints under `dir` (`chk-<id>/_metadata` and one state file per
    /// subtask) and restores from there after a crash.
    pub fn with_checkpoint_dir(mut self, dir: PathBuf) -> Self {
        if let Some(c) = &mut self.sim.checkpointing {
            c.writer = SnapshotWriter::new(Some(dir));
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
        if let Some(c) = self.sim.checkpointing.take() {
            self.sim.checkpointing = Some(Checkpointing {
                coordinator: c.coordinator.with_phase_crashes(points),
                ..c
            });
        }
    }

    /// Runs everything that happens before `to`, reading from `source`; stops early at a crash.
    pub fn advance(&mut self, source: &SourceLog, to: Nanos) -> Result<(), SimulatedStop> {
        self.sim.run(source, to);
        if let Some(e) = self.sim.error.take() {
            return Err(e.into());
        }
        match self.sim.crashed.take() {
            Some(at) => Err(SimulatedStop::Crashed(at)),
            None => Ok(()),
        }
    }

    /// Tears the crashed job down: every subtask's memory and the sink's open transactions
    /// are lost. Returns, per partition, how far it had read.
    pub fn tear_down(&mut self) -> Vec<usize> {
        self.sim.tear_down()
    }

    /// The latest completed checkpoint: what a restart restores.
    pub fn latest_completed(&self) -> Option<u64> {
        self.sim
            .checkpointing
            .as_ref()
            .and_then(|c| c.coordinator.completed())
            .map(|c| c.id)
    }

    /// Starts a new incarnation of the torn-down job at `at`, from completed checkpoint `from`
    /// (read back from the checkpoint directory when there is one, else from memory); the
    /// sink commits what `from` covers and aborts the rest. Returns, per partition, where the
    /// sources start reading again.
    pub fn restart(&mut self, at: Nanos, from: Option<u64>) -> Result<Vec<usize>, CheckpointError> {
        let restored = self.sim.restart(at, from)?;
        self.sim.resume(at);
        Ok(restored)
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
        let checkpointing = self.sim.checkpointing.as_ref();
        let may_crash = !self.sim.crashes.is_empty()
            || checkpointing.is_some_and(|c| c.coordinator.crashes_planned())
            || self.sim.scheduled.last().is_some_and(|s| s.is_some());
        if may_crash {
            let floor = checkpointing
                .and_then(|c| c.coordinator.completed())
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
            &self.sim.job.name,
            sink,
            sources,
            windows,
            vec!["all processing time: priced by the cost model".into()],
        );
        run.progress.append(&mut self.sim.checkpoint_progress);
        run
    }
}
