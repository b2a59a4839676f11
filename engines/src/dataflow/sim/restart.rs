//! A crash and the next incarnation, on virtual time.
//!
//! Tearing down loses every subtask's memory and the sink's open transactions; the sink itself
//! is kept, as the external system it stands for outlives the job. A restart builds the job
//! graph afresh, restores the sources' positions, the keyed subtasks' state (windows or a keyed
//! stage) and the sink subtask's second aggregation from the completed checkpoint (read back
//! from its directory when there is one), commits what that checkpoint covers
//! (recover-and-commit), aborts the rest, and resumes the event loop with fresh inboxes and
//! links. When to restart is the supervisor's decision
//! ([`crate::recovery::per_record::SimulatedJob`]), not this file's.
//!
//! Invariants: nothing a dead incarnation sent is delivered to the next; a dead incarnation's
//! watermark holds nothing back.

use std::collections::VecDeque;

use crate::checkpoint::CheckpointError;
use crate::dataflow::checkpoint::Restored;
use crate::dataflow::graph::JobGraph;
use crate::dataflow::tasks::SinkOperator;
use crate::time::{EventTime, Nanos};

use super::{Sim, Subtask};

impl Sim {
    /// The job crashed: every subtask's memory and the sink's open transactions are lost.
    /// Returns, per partition, how far the dead incarnation had read. The sink is kept for the
    /// next incarnation ([`Sim::restart`]).
    pub(super) fn tear_down(&mut self) -> Vec<usize> {
        let mut read = vec![0usize; self.job.partitions];
        let mut history: Option<SinkOperator> = None;
        // With `chain_sink` every source subtask holds a sink: merged, in subtask order.
        let keep = |history: &mut Option<SinkOperator>, sink: Option<SinkOperator>| match (history.as_mut(), sink) {
            (Some(h), Some(s)) => h.absorb(s),
            (None, s) => *history = s,
            (Some(_), None) => {}
        };
        for s in std::mem::take(&mut self.subtasks) {
            match s {
                Subtask::Source(task) => {
                    let (sink, stats) = task.finish(false);
                    keep(&mut history, sink);
                    self.sources.push(stats);
                }
                Subtask::Window(task) => {
                    let (sink, mut outcome) = task.finish();
                    keep(&mut history, sink);
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
    pub(super) fn restart(&mut self, restart: Nanos, from: Option<u64>) -> Result<Vec<usize>, CheckpointError> {
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
                match self.subtasks.get_mut(k) {
                    Some(Subtask::Window(task)) => task.restore(&snapshot)?,
                    Some(Subtask::ResultSink(task)) => task.restore(&snapshot)?,
                    _ => {}
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
    pub(super) fn resume(&mut self, restart: Nanos) {
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
    pub(super) fn restore(&self, id: u64) -> Result<Restored, CheckpointError> {
        let c = self.checkpointing.as_ref().expect("a completed checkpoint");
        match c.writer.read(
            id,
            (self.job.parallelism(), self.job.keyed_layers()),
            self.job.partitions,
        ) {
            Some(read) => read,
            None => {
                let done = c.coordinator.completed().expect("completed checkpoint");
                Ok((done.sources.clone(), done.windows.clone()))
            }
        }
    }
}
