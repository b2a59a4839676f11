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
//! With `checkpoint_interval` set, the checkpoint coordinator
//! ([`CheckpointCoordinator`](crate::dataflow::coordinator::CheckpointCoordinator)) runs as one
//! more event source: it triggers barriers at the sources; window subtasks align them and
//! snapshot their state through the shared
//! [`SnapshotWriter`](crate::dataflow::checkpoint::SnapshotWriter), the sink pre-commits its
//! transaction, and when every subtask has acknowledged, the coordinator's completion is carried
//! out (manifest, progress, commit) at the latest acknowledgement's instant. The job graph is
//! [`crate::dataflow::graph`]'s, its links an outbox delivered on virtual time.
//!
//! A crash is an event too: the run stops there ([`SimulatedStop::Crashed`]) and its supervisor
//! ([`crate::recovery::per_record::SimulatedJob`]) tears the job down, restarts it from the
//! latest completed checkpoint after the restart strategy's delay, and lets the event loop go
//! on where it stopped.
//!
//! The rooms: this file holds the driver's state (`Sim`) and the event loop; `links` moves
//! messages on virtual time (network delay, FIFO per link, backpressure); `steps` runs one
//! step of each kind of subtask and prices it; `checkpoints` carries the coordinator's
//! decisions out on virtual time; `restart` tears a crashed job down and starts the next
//! incarnation; `job` is the public face ([`SimulatedDataflow`], [`run_simulated`]).
//!
//! Invariants: events are ordered by (time, sequence number) and a subtask has at most one
//! pending wake-up (an earlier one supersedes a later one); a core runs one step at a time;
//! messages on one link arrive in the order sent. Moving code between these files must not
//! change the order in which anything is scheduled: the simulated outputs are compared byte
//! for byte.

mod checkpoints;
mod job;
mod links;
mod restart;
mod steps;
mod wakeups;

pub use job::{run_simulated, SimulatedDataflow, SimulatedStop};
pub use links::SimLink;

use std::collections::VecDeque;

use crate::checkpoint::CheckpointError;
use crate::cluster::Cluster;
use crate::cost::{CostModel, ReadPrices, Work};
use crate::dataflow::graph::{self, BufferPools, JobContext};
use crate::dataflow::outcome::WindowOutcome;
use crate::dataflow::tasks::{SinkOperator, SourceStats};
use crate::operators::{Output, Row};
use crate::source::SourceLog;
use crate::time::Nanos;

use checkpoints::Checkpointing;
use links::{Inbound, SimLinks};
use steps::SinkKind;

type Subtask = graph::Subtask<SimLink<Row>, SimLink<Output>>;

/// The simulated driver's state: the subtasks, the cores they run on, their inboxes and
/// the event queue.
struct Sim {
    job: JobContext,
    cost: CostModel,
    /// `cost`'s price of a source step that read `n` events, for small `n`.
    read_prices: ReadPrices,
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
    /// Buffers given an exchange jitter so far: the jitter generator's position.
    jitter_draws: u64,
    scheduled: Vec<Option<Nanos>>,
    queue: wakeups::WakeUps,
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

    /// The price of `work` done in the current step, slowdowns in force included. Inlined, so
    /// each step's price is computed from the counts it set (see [`CostModel::price`]).
    #[inline(always)]
    fn priced(&self, work: &Work) -> Nanos {
        if self.slowdowns.is_empty() {
            return self.cost.price(work);
        }
        self.cost
            .at(&self.slowdowns, self.step_at.0, self.step_at.1)
            .price(work)
    }

    /// [`Sim::priced`] for a source step that read and chained `n` events and did nothing
    /// else: from the table when no slowdown is configured.
    #[inline(always)]
    fn priced_read(&self, n: u64) -> Nanos {
        if self.slowdowns.is_empty() {
            return self.read_prices.of(&self.cost, n);
        }
        self.priced(&Work {
            events_read: n,
            events_chained: n,
            ..Default::default()
        })
    }

    #[inline]
    fn schedule(&mut self, k: usize, t: Nanos) {
        if matches!(self.scheduled[k], Some(s) if s <= t) {
            return;
        }
        self.scheduled[k] = Some(t);
        self.seq += 1;
        self.queue.push((t, self.seq, k));
    }

    /// Processes every event before `to`.
    fn run(&mut self, source: &SourceLog, to: Nanos) {
        while let Some((t, _, k)) = self.queue.peek() {
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
}
