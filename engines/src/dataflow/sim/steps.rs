//! One step of each kind of subtask on virtual time, and what it costs.
//!
//! A step runs a subtask at the instant its core is free: a source reads what has arrived
//! (after injecting a requested barrier), a window or sink subtask handles every message that
//! has reached it by then. The work done is priced by the cost model and moves the core's
//! clock; what the step sent is delivered when it ends; the subtask is scheduled again for its
//! next input, timer or poll.
//!
//! Invariants: a source blocked by a full receiver does nothing and waits to be unblocked; a
//! subtask that finished is never put back; the pricing of each step is exactly the work it did.

use crate::cost::Work;
use crate::dataflow::config::ROW_WIRE_BYTES;
use crate::dataflow::coordinator::Acknowledgement;
use crate::dataflow::tasks::{SinkTask, SourceTask, Step, TaskOutcome, WindowTask};
use crate::operators::{Output, Row};
use crate::source::SourceLog;
use crate::time::Nanos;

use super::links::{data_len, Inbound, SimLink};
use super::{Sim, Subtask};

impl Sim {
    pub(super) fn step_source(
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
        let sink_records = (task.chained_deliveries() - delivered0) as u64;
        let mut end = start
            + if sink_records == 0 {
                self.priced_read(read)
            } else {
                self.priced(&Work {
                    events_read: read,
                    events_chained: read,
                    sink_records,
                    ..Default::default()
                })
            };
        // Most polls fill a buffer without shipping one: nothing to deliver, nothing to price.
        if self.links.has_outgoing() {
            let sent = self.deliver(k, end);
            end += self.priced(&sent);
        }
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

    pub(super) fn step_window(
        &mut self,
        k: usize,
        mut task: Box<WindowTask<SimLink<Output>, SimLink<Row>>>,
        start: Nanos,
    ) -> Nanos {
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
    pub(super) fn after_message<T>(
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

    pub(super) fn take_finished(&mut self, k: usize) -> bool {
        if self.finished_flag == Some(k) {
            self.finished_flag = None;
            true
        } else {
            false
        }
    }

    pub(super) fn step_sink(&mut self, k: usize, mut task: SinkKind, start: Nanos) -> Nanos {
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
}

/// A sink subtask of either item type.
pub(super) enum SinkKind {
    Rows(Box<SinkTask<Row>>),
    Results(Box<SinkTask<Output>>),
}
