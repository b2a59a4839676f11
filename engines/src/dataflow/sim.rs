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

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::rc::Rc;

use crate::cluster::Cluster;
use crate::cost::{CostModel, Work};
use crate::dataflow::config::{DataflowConfig, DataflowConfigError, ROW_WIRE_BYTES};
use crate::dataflow::network::{BufferPool, Link, Message, OutputGate};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{ResultOutput, RowOutput, SinkOperator, SourceStats, SourceTask, Step, WindowTask};
use crate::dimension::CampaignTable;
use crate::operators::stateless::StatelessChain;
use crate::operators::{Row, WindowResult};
use crate::pipeline::PipelineSpec;
use crate::run::{Delivered, EngineRun};
use crate::source::SourceLog;
use crate::time::Nanos;

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

enum Subtask {
    Source(SourceTask<SimLink<Row>>),
    Window(WindowTask<SimLink<WindowResult>>),
    Sink {
        sink: SinkOperator,
        inputs: usize,
        ended: usize,
    },
    Done,
}

/// A queued message and when it becomes available to its receiver.
enum Inbound {
    Rows(Message<Row>),
    Results(Message<WindowResult>),
}

struct Sim {
    cost: CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
    poll_interval: Nanos,
    subtasks: Vec<Subtask>,
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
}

impl Sim {
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
                if remote {
                    work.network_buffers += 1;
                    work.network_bytes += bytes;
                }
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
            let items = if let Message::Data { items, .. } = &msg {
                items.len()
            } else {
                0
            };
            send(self, to, items, Inbound::Rows(msg));
        }
        for (to, msg) in results {
            let items = if let Message::Data { items, .. } = &msg {
                items.len()
            } else {
                0
            };
            send(self, to, items, Inbound::Results(msg));
        }
        // Network latency and bandwidth are delays, not CPU: the sender pays serialization and
        // the hand-off only.
        Work {
            network_buffers: 0,
            network_bytes: 0,
            ..work
        }
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
            if t >= to {
                break;
            }
            self.queue.pop();
            if self.scheduled[k] != Some(t) {
                continue; // superseded by an earlier wake-up
            }
            self.scheduled[k] = None;
            let core = self.core_of[k];
            let start = t.max(self.core_free[core]);
            if start > t {
                self.schedule(k, start);
                continue;
            }
            let end = match std::mem::replace(&mut self.subtasks[k], Subtask::Done) {
                Subtask::Done => continue,
                Subtask::Source(task) => self.step_source(source, k, task, start),
                Subtask::Window(task) => self.step_window(k, task, start),
                Subtask::Sink { sink, inputs, ended } => self.step_sink(k, sink, inputs, ended, start),
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
        let (read0, delivered0) = (task.events_read, task.chained_deliveries());
        let step = task.step(source, start, self.until, self.bounded);
        let read = task.events_read - read0;
        let mut work = Work {
            events_read: read,
            events_chained: read,
            sink_records: (task.chained_deliveries() - delivered0) as u64,
            ..Default::default()
        };
        let cost = self.cost.price(&work);
        let mut end = start + cost;
        work = self.deliver(k, end);
        end += self.cost.price(&work);
        match step {
            Step::Continue => self.schedule(k, end),
            // A caught-up source polls again no sooner than its poll interval.
            Step::WaitUntil(t) => self.schedule(k, t.max(end).max(start + self.poll_interval)),
            Step::Done => {
                let (sink, stats) = task.finish(self.bounded);
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
            let rows = if let Message::Data { items, .. } = &msg {
                items.len() as u64
            } else {
                0
            };
            let delivered0 = task.chained_deliveries();
            let (buffer, finished) = task.on_message(msg, now);
            if let Some(b) = buffer {
                self.row_pool.recycle(b);
            }
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
            now += self.cost.price(&work);
            let sent = self.deliver(k, now);
            now += self.cost.price(&sent);
            self.unblock(k, now);
            if finished {
                let (sink, outcome) = task.finish();
                self.sinks.extend(sink);
                self.windows.push(outcome);
                return now;
            }
        }
        task.on_tick(now);
        let sent = self.deliver(k, now);
        now += self.cost.price(&sent);
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

    fn step_sink(&mut self, k: usize, mut sink: SinkOperator, inputs: usize, mut ended: usize, start: Nanos) -> Nanos {
        let mut now = start;
        while self.inbox[k].front().is_some_and(|(t, _)| *t <= now) {
            let (_, msg) = self.inbox[k].pop_front().expect("front exists");
            let mut n = 0u64;
            match msg {
                Inbound::Rows(Message::Data { items, .. }) => {
                    for mut row in items.iter().copied() {
                        row.lineage.recv = now;
                        sink.deliver_row(&row, now);
                    }
                    n = items.len() as u64;
                    self.row_pool.recycle(items);
                }
                Inbound::Results(Message::Data { items, .. }) => {
                    for mut r in items.iter().copied() {
                        r.recv = now;
                        sink.deliver_result(&r, now);
                    }
                    n = items.len() as u64;
                    self.result_pool.recycle(items);
                }
                Inbound::Rows(Message::End { .. }) | Inbound::Results(Message::End { .. }) => ended += 1,
                _ => {}
            }
            now += self.cost.price(&Work {
                sink_records: n,
                serialized_bytes: n * ROW_WIRE_BYTES as u64,
                ..Default::default()
            });
            self.unblock(k, now);
            if ended == inputs {
                self.sinks.push(sink);
                return now;
            }
        }
        if let Some((t, _)) = self.inbox[k].front() {
            let t = (*t).max(now);
            self.schedule(k, t);
        }
        self.subtasks[k] = Subtask::Sink { sink, inputs, ended };
        now
    }
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
    sim.advance(source, Nanos::MAX);
    Ok(sim.finish())
}

/// A per-record engine on virtual time that can be advanced in segments, so a long run needs
/// only the part of the source log that is still unread (see [`SourceLog::release_before`]).
pub struct SimulatedDataflow {
    name: String,
    sources: usize,
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
        let sim = build(cfg, pipeline, table, partitions, cost, cluster, until, bounded)?;
        Ok(Self {
            name: name.to_string(),
            sources: cfg.parallelism,
            sim,
        })
    }

    /// Runs everything that happens before `to`, reading from `source`.
    pub fn advance(&mut self, source: &SourceLog, to: Nanos) {
        self.sim.run(source, to);
    }

    /// Wakes the source subtasks at `at`: call after appending events that arrive from `at` on.
    pub fn resume_sources(&mut self, at: Nanos) {
        for k in 0..self.sources {
            if matches!(self.sim.subtasks[k], Subtask::Source(_)) {
                self.sim.schedule(k, at);
            }
        }
    }

    /// Per partition, the offset below which every event has been read.
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
        out.iter().map(|&o| if o == usize::MAX { 0 } else { o }).collect()
    }

    /// Takes the outputs delivered so far (they are no longer kept by the run).
    pub fn take_delivered(&mut self) -> Vec<Delivered> {
        let mut out = Vec::new();
        for s in &mut self.sim.subtasks {
            let sink = match s {
                Subtask::Source(t) => t.chained_sink_mut(),
                Subtask::Window(t) => t.chained_sink_mut(),
                Subtask::Sink { sink, .. } => Some(sink),
                Subtask::Done => None,
            };
            if let Some(sink) = sink {
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
                Subtask::Sink { sink, .. } => self.sim.sinks.push(sink),
                Subtask::Done => {}
            }
        }
        let sink = self.sim.sinks.pop().expect("exactly one sink");
        debug_assert!(self.sim.sinks.is_empty(), "one sink per run");
        let mut sources = std::mem::take(&mut self.sim.sources);
        sources.sort_by_key(|s| s.index);
        let mut windows = std::mem::take(&mut self.sim.windows);
        windows.sort_by_key(|w| w.index);
        assemble(
            &self.name,
            sink,
            sources,
            windows,
            vec!["all processing time: priced by the cost model".into()],
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    partitions: usize,
    cost: &CostModel,
    cluster: Cluster,
    until: Nanos,
    bounded: bool,
) -> Result<Sim, DataflowConfigError> {
    cfg.validate()?;
    let p = cfg.parallelism;
    let chain = StatelessChain::new(pipeline, table);
    let capacity = cfg.buffer_rows();
    let flush_each = cfg.buffer_timeout.nanos() == 0;
    let rows_out: Outbox<Row> = Rc::default();
    let results_out: Outbox<WindowResult> = Rc::default();
    let row_pool = BufferPool::<Row>::new();
    let result_pool = BufferPool::<WindowResult>::new();
    let row_link = |to: usize| SimLink {
        to,
        outbox: rows_out.clone(),
    };
    let result_link = |to: usize| SimLink {
        to,
        outbox: results_out.clone(),
    };

    // Subtask numbering: sources 0..p, then window subtasks p..2p (stateful), then the sink.
    let mut subtasks: Vec<Subtask> = Vec::new();
    let mut downstream: Vec<Vec<usize>> = Vec::new();
    let mut input_count: Vec<usize> = Vec::new();
    match &pipeline.aggregate {
        None if p == 1 => {
            let task = SourceTask::new(
                0,
                1,
                partitions,
                chain.clone(),
                cfg,
                RowOutput::Chained(SinkOperator::default()),
            );
            subtasks.push(Subtask::Source(task));
            downstream.push(vec![]);
            input_count.push(0);
        }
        None => {
            let sink = p;
            for i in 0..p {
                let gate = OutputGate::new(i, vec![row_link(sink)], capacity, flush_each, row_pool.clone());
                subtasks.push(Subtask::Source(SourceTask::new(
                    i,
                    p,
                    partitions,
                    chain.clone(),
                    cfg,
                    RowOutput::ToSink(gate),
                )));
                downstream.push(vec![sink]);
                input_count.push(0);
            }
            subtasks.push(Subtask::Sink {
                sink: SinkOperator::default(),
                inputs: p,
                ended: 0,
            });
            downstream.push(vec![]);
            input_count.push(p);
        }
        Some(agg) => {
            let windows: Vec<usize> = (p..2 * p).collect();
            for i in 0..p {
                let gate = OutputGate::new(
                    i,
                    windows.iter().map(|&w| row_link(w)).collect(),
                    capacity,
                    flush_each,
                    row_pool.clone(),
                );
                let out = RowOutput::Keyed {
                    gate,
                    key_by: agg.key_by,
                };
                subtasks.push(Subtask::Source(SourceTask::new(
                    i,
                    p,
                    partitions,
                    chain.clone(),
                    cfg,
                    out,
                )));
                downstream.push(windows.clone());
                input_count.push(0);
            }
            let sink = 2 * p;
            for j in 0..p {
                let out = if p == 1 {
                    ResultOutput::Chained(SinkOperator::default())
                } else {
                    ResultOutput::Gate(OutputGate::new(
                        j,
                        vec![result_link(sink)],
                        capacity,
                        flush_each,
                        result_pool.clone(),
                    ))
                };
                subtasks.push(Subtask::Window(WindowTask::new(j, p, *agg, cfg, out)));
                downstream.push(if p == 1 { vec![] } else { vec![sink] });
                input_count.push(p);
            }
            if p > 1 {
                subtasks.push(Subtask::Sink {
                    sink: SinkOperator::default(),
                    inputs: p,
                    ended: 0,
                });
                downstream.push(vec![]);
                input_count.push(p);
            }
        }
    }
    let n = subtasks.len();
    let cores = cluster.cores().max(1);
    let mut sim = Sim {
        cost: *cost,
        cluster,
        until,
        bounded,
        poll_interval: cost.source_poll_interval_ns.round() as Nanos,
        core_of: (0..n).map(|k| k % cores).collect(),
        core_free: vec![0; cores],
        inbox: (0..n).map(|_| VecDeque::new()).collect(),
        capacity: input_count
            .iter()
            .map(|&i| (cfg.buffers_per_channel * i.max(1)).max(1))
            .collect(),
        downstream,
        blocked: vec![Vec::new(); n],
        link_last: vec![0; n * n],
        scheduled: vec![None; n],
        queue: BinaryHeap::new(),
        seq: 0,
        rows_out,
        results_out,
        row_pool,
        result_pool,
        sinks: Vec::new(),
        sources: Vec::new(),
        windows: Vec::new(),
        subtasks,
    };
    for k in 0..p {
        sim.schedule(k, 0);
    }
    Ok(sim)
}
