//! The checkpoint coordinator's side of a live run, on the calling thread.
//!
//! It triggers checkpoints on the live clock, hears the subtasks' acknowledgements, and carries
//! out what the [`CheckpointCoordinator`] decides: barrier requests to the sources, the
//! manifest and progress of a completed checkpoint, the commit it allows, and the teardown a
//! planned phase crash calls for. The decisions themselves are the coordinator's.
//!
//! Invariants: no checkpoint is triggered once every source has finished or the run's end
//! passed; a completed checkpoint is committed only after its manifest is written; a phase
//! crash stops the coordinator from completing anything further.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::checkpoint::CheckpointError;
use crate::dataflow::coordinator::{Acknowledgement, CheckpointCoordinator};
use crate::fault::CheckpointPhase;
use crate::runtime::{Clock, LiveClock};
use crate::time::Nanos;

use super::control::{Ack, Control};

/// The coordinator's side of a live run, on the calling thread: it triggers on the live clock,
/// hears acknowledgements, and carries out what the [`CheckpointCoordinator`] decides.
pub(super) struct CoordinatorThread<'a> {
    pub(super) ctl: &'a Control,
    pub(super) clock: LiveClock,
    pub(super) until: Nanos,
    pub(super) sources: usize,
    /// Subtasks that have not finished.
    pub(super) alive: BTreeSet<usize>,
    pub(super) coordinator: CheckpointCoordinator,
    pub(super) progress: Vec<serde_json::Value>,
    pub(super) error: Option<CheckpointError>,
    /// The phase crash that struck, and when.
    pub(super) crashed: Option<(Nanos, (u64, CheckpointPhase))>,
    /// The completed checkpoint whose pre-committed transaction the restarted sink commits.
    pub(super) recover_commit: Option<u64>,
}

impl CoordinatorThread<'_> {
    /// Tears the job down now: checkpoint `id` reached `phase`, where a crash was planned.
    pub(super) fn crash(&mut self, id: u64, phase: CheckpointPhase) {
        let now = self.clock.now();
        self.ctl.stop.fetch_min(now, Ordering::AcqRel);
        self.crashed = Some((now, (id, phase)));
        self.coordinator.halt();
    }

    /// Runs until every subtask has finished (all acknowledgement senders are gone).
    pub(super) fn run(&mut self, acks: &Receiver<Ack>) {
        let Some(interval) = self.ctl.interval else {
            // No checkpoints: just wait for the end.
            while acks.recv().is_ok() {}
            return;
        };
        let mut next_trigger = interval;
        loop {
            let now = self.clock.now();
            if now >= next_trigger {
                self.trigger(now);
                next_trigger = self.coordinator.next_trigger_after(now);
            }
            let wait = next_trigger.saturating_sub(self.clock.now()).max(1);
            match acks.recv_timeout(Duration::from_nanos(wait)) {
                Ok(ack) => self.on_ack(ack),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    pub(super) fn trigger(&mut self, now: Nanos) {
        let live_sources: Vec<usize> = self.alive.iter().copied().filter(|&k| k < self.sources).collect();
        if live_sources.is_empty() || now >= self.ctl.until(self.until) {
            return;
        }
        let Some(triggered) = self.coordinator.trigger(now, self.alive.clone()) else {
            return;
        };
        for k in live_sources {
            self.ctl.inject[k].fetch_max(triggered.id, Ordering::AcqRel);
        }
        if triggered.crash {
            self.crash(triggered.id, CheckpointPhase::Trigger);
        }
    }

    pub(super) fn on_ack(&mut self, ack: Ack) {
        let now = self.clock.now();
        match ack {
            Ack::Barrier { k, id, at, positions } => {
                self.coordinator
                    .acknowledge(k, id, at, Acknowledgement::Barrier { at, positions });
            }
            Ack::Snapshot { k, id, figures, error } => {
                if let Some(e) = error {
                    // The checkpoint is declined; the run reports the error at its end.
                    self.coordinator.decline(id);
                    self.error.get_or_insert(e);
                }
                if self
                    .coordinator
                    .acknowledge(k, id, now, Acknowledgement::Snapshot(figures))
                    .crash
                {
                    self.crash(id, CheckpointPhase::Snapshot);
                }
            }
            Ack::Finished { k, covers } => {
                self.alive.remove(&k);
                self.coordinator.finished(k, covers.as_deref());
            }
        }
        self.complete_ready();
    }

    /// Carries out every checkpoint completion: manifest, progress, commit.
    pub(super) fn complete_ready(&mut self) {
        while let Some(done) = self.coordinator.complete(self.clock.now()) {
            if let Err(e) = self.ctl.writer.write_manifest(done.id, &done.manifest) {
                self.error.get_or_insert(e);
                self.coordinator.fail();
                return;
            }
            self.progress.push(done.progress);
            if let Some(pulse) = &self.ctl.pulse {
                pulse.checkpoint_completed();
            }
            if done.crash {
                // Complete, but the sink was not told: the restarted sink commits it.
                self.crash(done.id, CheckpointPhase::Notify);
                self.recover_commit = Some(done.id);
                return;
            }
            self.ctl.commit_to.fetch_max(done.id, Ordering::AcqRel);
        }
    }
}
