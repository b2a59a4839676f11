//! Checkpoints on virtual time: the coordinator as one more event source.
//!
//! The [`CheckpointCoordinator`] decides (trigger, acknowledge, complete); this file only
//! carries its decisions out at simulated instants: barriers to inject at the sources' next
//! steps, snapshots serialized and written through the shared [`SnapshotWriter`] and priced
//! (a synchronous part that holds the subtask, an asynchronous part that overlaps further
//! processing), completions carried out (manifest, progress, sink commit) at the latest
//! acknowledgement's instant, and crashes planned for a checkpoint phase.
//!
//! Invariants: a checkpoint completes only when every live subtask acknowledged it; a
//! completed checkpoint is committed to every sink before the next is triggered; a planned
//! crash at a later instant stays planned when a phase crash strikes first.

use std::collections::BTreeSet;

use crate::cost::Work;
use crate::dataflow::checkpoint::SnapshotWriter;
use crate::dataflow::coordinator::{Acknowledgement, CheckpointCoordinator, SnapshotFigures};
use crate::dataflow::tasks::TaskSnapshot;
use crate::time::Nanos;

use super::{Sim, Subtask};

/// Checkpointing on virtual time: the coordinator, when it next triggers, where snapshots go.
pub(super) struct Checkpointing {
    pub(super) coordinator: CheckpointCoordinator,
    pub(super) next_trigger: Nanos,
    pub(super) writer: SnapshotWriter,
    /// Per source subtask, a barrier to inject at its next step.
    pub(super) inject: Vec<Option<u64>>,
}

impl Sim {
    /// Points every window subtask with an LSM store at its incremental checkpoint root, when
    /// the job writes its checkpoints to a directory.
    pub(super) fn checkpoint_incrementally(&mut self) {
        let Some(c) = &self.checkpointing else { return };
        for (k, s) in self.subtasks.iter_mut().enumerate() {
            if let (Subtask::Window(task), Some(root)) = (s, c.writer.incremental_root(k)) {
                task.checkpoint_incrementally(root);
            }
        }
    }

    /// A subtask aligned checkpoint `snapshot.id`: serialize its state (synchronous part),
    /// write it (asynchronous part, overlapping further processing), acknowledge.
    pub(super) fn snapshot_taken(&mut self, k: usize, mut snapshot: TaskSnapshot, now: Nanos) -> Nanos {
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

    /// The job crashes now that a checkpoint reached a phase a crash was planned for. A crash
    /// planned for a later instant stays planned.
    pub(super) fn crash_planned_later(&mut self) {
        let slot = self.crash_slot();
        if let Some(planned) = self.scheduled[slot].take() {
            self.crashes.push(planned); // the earliest planned: popped next
        }
    }

    /// Subtask `k` acknowledged checkpoint `id` (its part done at `at`). Returns whether the
    /// job crashes in the snapshot phase now.
    pub(super) fn ack(&mut self, k: usize, id: u64, at: Nanos, ack: Acknowledgement) -> bool {
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
    pub(super) fn coordinate(&mut self, now: Nanos) {
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
            if let Err(e) = c.writer.write_manifest(done.id, &done.manifest) {
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
}
