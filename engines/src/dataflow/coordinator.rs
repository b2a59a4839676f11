//! The checkpoint coordinator of the per-record engine (Flink's `CheckpointCoordinator`), as a
//! pure state machine shared by the live and the simulated driver.
//!
//! A driver tells it what happened — a checkpoint was triggered, a subtask acknowledged its part,
//! a subtask finished — and asks it what is complete. It answers with what to do — inject
//! barrier `id` at the sources, write this manifest, record this progress, commit the sink up
//! to `id`, crash here — and never reads a clock, writes a file or touches a subtask itself: the
//! instants it is given are the driver's (wall clock or virtual time), so both drivers keep the
//! same checkpoint semantics.
//!
//! Invariants:
//! * ids increase from the checkpoint a run started from; a checkpoint completes when every
//!   subtask alive at its trigger has acknowledged it (or finished covering its part), and
//!   never before the latest acknowledgement's instant;
//! * checkpoints complete in id order, and a completed checkpoint subsumes every older one
//!   still pending;
//! * a crash planned for `(id, phase)` strikes once, when checkpoint `id` reaches `phase`;
//! * after a failure (a checkpoint that could not be stored) nothing more is triggered; after a
//!   halt (the job is torn down) nothing more is triggered or completed.

use std::collections::{BTreeMap, BTreeSet};

use crate::dataflow::checkpoint::{manifest_json, ListedState, ListedSubtask};
use crate::dataflow::tasks::TaskSnapshot;
use crate::fault::CheckpointPhase;
use crate::time::{as_ms, Nanos};

/// A subtask's part of a checkpoint, as it acknowledges it.
#[derive(Debug)]
pub enum Acknowledgement {
    /// A source subtask injected the barrier at `at`; its read positions `(partition, offset)`.
    Barrier {
        /// When the barrier went out.
        at: Nanos,
        /// The source's read positions.
        positions: Vec<(usize, usize)>,
    },
    /// A window or sink subtask aligned the barriers and stored its state.
    Snapshot(SnapshotFigures),
}

/// What storing a subtask's snapshot took, and what the manifest lists of it.
#[derive(Debug, Default)]
pub struct SnapshotFigures {
    /// How long the barriers took to align.
    pub alignment: Nanos,
    /// The synchronous part (serializing the state).
    pub sync: Nanos,
    /// The asynchronous part (writing it).
    pub asynchronous: Nanos,
    /// Bytes written for this checkpoint.
    pub bytes: u64,
    /// What the state takes in all (more than `bytes` for an incremental checkpoint).
    pub state_bytes: u64,
    /// The snapshot, when the manifest lists it (it holds state or a watermark to restore).
    /// The simulated driver hands over the whole state (kept for a restart without a checkpoint
    /// directory); the live one only the watermark and whether the state is incremental.
    pub listed: Option<TaskSnapshot>,
}

/// A checkpoint in progress.
#[derive(Debug, Default)]
struct Pending {
    trigger: Nanos,
    /// Subtasks that have not acknowledged yet.
    waiting: BTreeSet<usize>,
    /// The latest acknowledgement's instant: the checkpoint completes no earlier.
    complete_at: Nanos,
    sources: Vec<(usize, usize)>,
    windows: Vec<(usize, TaskSnapshot)>,
    start_delay: Nanos,
    alignment: Nanos,
    sync: Nanos,
    asynchronous: Nanos,
    bytes: u64,
    state_bytes: u64,
}

/// The latest completed checkpoint.
#[derive(Clone, Debug)]
pub struct CompletedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Source positions `(partition, offset)`.
    pub sources: Vec<(usize, usize)>,
    /// The snapshots of the subtasks the manifest lists, by subtask number.
    pub windows: Vec<(usize, TaskSnapshot)>,
}

/// A checkpoint just triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triggered {
    /// The checkpoint: inject barrier `id` at every live source.
    pub id: u64,
    /// A crash is planned for this trigger: crash here.
    pub crash: bool,
}

/// What completing a checkpoint asks of the driver, in this order: write `manifest` as
/// `chk-<id>/_metadata` (when the job has a checkpoint directory), record `progress`, then
/// either commit every sink up to `id` or, with `crash`, crash before the sink is told.
#[derive(Debug)]
pub struct Completion {
    /// The checkpoint.
    pub id: u64,
    /// Its manifest.
    pub manifest: serde_json::Value,
    /// Its checkpoint-progress record (`type: checkpoint`).
    pub progress: serde_json::Value,
    /// A crash is planned between completion and notification (the `notify` phase).
    pub crash: bool,
}

/// The checkpoint coordinator's state.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    run: String,
    interval: Nanos,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    completed: Option<CompletedCheckpoint>,
    /// Final positions of sources that finished: later checkpoints carry them.
    finished_positions: Vec<(usize, usize)>,
    /// Crashes still planned inside checkpoint phases.
    phase_crashes: Vec<(u64, CheckpointPhase)>,
    /// A checkpoint could not be stored: nothing more is triggered.
    failed: bool,
    /// The job was torn down: nothing more happens.
    halted: bool,
    /// Manifests list sources and subtasks sorted, not in acknowledgement order.
    sorted: bool,
}

impl CheckpointCoordinator {
    /// The coordinator of run `run`, triggering every `interval`; ids continue after `base`
    /// (the checkpoint the run started from, 0 for none).
    pub fn new(run: &str, interval: Nanos, base: u64) -> Self {
        Self {
            run: run.to_string(),
            interval,
            next_id: base + 1,
            pending: BTreeMap::new(),
            completed: None,
            finished_positions: Vec::new(),
            phase_crashes: Vec::new(),
            failed: false,
            halted: false,
            sorted: false,
        }
    }

    /// Lists sources and subtasks in manifests sorted by partition and subtask. The live
    /// driver's acknowledgements arrive in no fixed order, and sorting makes its manifests
    /// reproducible; the simulated driver's arrive in a deterministic order, which its
    /// manifests keep.
    pub fn with_sorted_manifests(mut self) -> Self {
        self.sorted = true;
        self
    }

    /// Plans crashes inside checkpoint phases, `(checkpoint id, phase)`.
    pub fn with_phase_crashes(mut self, crashes: Vec<(u64, CheckpointPhase)>) -> Self {
        self.phase_crashes = crashes;
        self
    }

    /// The first trigger instant, and the one after each trigger.
    pub fn interval(&self) -> Nanos {
        self.interval
    }

    /// The next trigger instant strictly after `now`: the next multiple of the interval.
    pub fn next_trigger_after(&self, now: Nanos) -> Nanos {
        (now / self.interval + 1) * self.interval
    }

    /// The latest completed checkpoint.
    pub fn completed(&self) -> Option<&CompletedCheckpoint> {
        self.completed.as_ref()
    }

    /// Whether a crash is still planned inside some checkpoint phase.
    pub fn crashes_planned(&self) -> bool {
        !self.phase_crashes.is_empty()
    }

    /// Whether a crash is planned for checkpoint `id` reaching `phase`; the plan is used up.
    fn strikes(&mut self, id: u64, phase: CheckpointPhase) -> bool {
        let Some(i) = self.phase_crashes.iter().position(|&c| c == (id, phase)) else {
            return false;
        };
        self.phase_crashes.swap_remove(i);
        true
    }

    /// Triggers a checkpoint at `now` that every subtask in `waiting` must acknowledge.
    /// Refused (`None`) after a failure or a halt.
    pub fn trigger(&mut self, now: Nanos, waiting: BTreeSet<usize>) -> Option<Triggered> {
        if self.failed || self.halted {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                trigger: now,
                waiting,
                sources: self.finished_positions.clone(),
                ..Default::default()
            },
        );
        Some(Triggered {
            id,
            crash: self.strikes(id, CheckpointPhase::Trigger),
        })
    }

    /// Subtask `k` acknowledged checkpoint `id`, its part done at `at`. Returns whether a
    /// crash is planned now (a snapshot was taken: the `snapshot` phase), and, once every
    /// subtask has acknowledged, the instant the checkpoint can complete.
    pub fn acknowledge(&mut self, k: usize, id: u64, at: Nanos, ack: Acknowledgement) -> Acknowledged {
        let Some(p) = self.pending.get_mut(&id) else {
            return Acknowledged::default();
        };
        let snapshot = matches!(ack, Acknowledgement::Snapshot(_));
        match ack {
            Acknowledgement::Barrier { at, positions } => {
                p.start_delay = p.start_delay.max(at.saturating_sub(p.trigger));
                p.sources.extend(positions);
            }
            Acknowledgement::Snapshot(f) => {
                p.alignment = p.alignment.max(f.alignment);
                p.sync = p.sync.max(f.sync);
                p.asynchronous = p.asynchronous.max(f.asynchronous);
                p.bytes += f.bytes;
                p.state_bytes += f.state_bytes;
                if let Some(snapshot) = f.listed {
                    p.windows.push((k, snapshot));
                }
            }
        }
        p.waiting.remove(&k);
        p.complete_at = p.complete_at.max(at);
        let ready_at = p.waiting.is_empty().then_some(p.complete_at);
        let crash = snapshot && !self.halted && self.strikes(id, CheckpointPhase::Snapshot);
        Acknowledged { ready_at, crash }
    }

    /// Subtask `k` finished. A subtask that `covers` its part with its final positions (a
    /// source behind an exchange: its end-of-stream went after all its records) needs no
    /// barrier for a checkpoint it missed, and later checkpoints carry those positions;
    /// without, a checkpoint still waiting for it can never complete and is abandoned.
    pub fn finished(&mut self, k: usize, covers: Option<&[(usize, usize)]>) {
        if let Some(positions) = covers {
            self.finished_positions.extend_from_slice(positions);
        }
        self.pending.retain(|_, p| {
            if !p.waiting.remove(&k) {
                return true;
            }
            match covers {
                Some(positions) => {
                    p.sources.extend_from_slice(positions);
                    true
                }
                None => false,
            }
        });
    }

    /// Checkpoint `id` is declined (a subtask could not store its state): it is dropped, and
    /// nothing more is triggered (the run reports the failure at its end).
    pub fn decline(&mut self, id: u64) {
        self.pending.remove(&id);
        self.failed = true;
    }

    /// A completed checkpoint could not be stored (its manifest was not written): nothing
    /// pending completes, and nothing more is triggered.
    pub fn fail(&mut self) {
        self.pending.clear();
        self.failed = true;
    }

    /// The job was torn down: nothing more is triggered or completed, and no further phase
    /// crash strikes.
    pub fn halt(&mut self) {
        self.halted = true;
    }

    /// The job restarted at `at` after a crash: checkpoints in flight are gone, and so are the
    /// positions of the dead incarnation's finished sources. The latest completed one stays:
    /// it is what the job restores. Returns the next trigger instant.
    pub fn restart(&mut self, at: Nanos) -> Nanos {
        self.pending.clear();
        self.finished_positions.clear();
        self.next_trigger_after(at)
    }

    /// Completes the oldest checkpoint that every subtask acknowledged by `now`, if any: it
    /// becomes the latest completed one and subsumes older pending ones.
    pub fn complete(&mut self, now: Nanos) -> Option<Completion> {
        if self.halted {
            return None;
        }
        let id = self
            .pending
            .iter()
            .find(|(_, p)| p.waiting.is_empty() && p.complete_at <= now)
            .map(|(&id, _)| id)?;
        let mut p = self.pending.remove(&id).expect("found above");
        // Older checkpoints still pending are subsumed by this one.
        self.pending.retain(|&i, _| i > id);
        if self.sorted {
            p.sources.sort_unstable();
            p.windows.sort_by_key(|&(k, _)| k);
        }
        let listed: Vec<ListedSubtask> = p
            .windows
            .iter()
            .map(|(k, s)| (*k, s.watermark, ListedState::of(s)))
            .collect();
        let manifest = manifest_json(id, &p.sources, &listed);
        let progress = serde_json::json!({
            "run": self.run, "type": "checkpoint", "id": id,
            "triggerTimeMs": as_ms(p.trigger), "completedTimeMs": as_ms(now),
            "startDelayMs": as_ms(p.start_delay), "alignmentMs": as_ms(p.alignment),
            "syncMs": as_ms(p.sync), "asyncMs": as_ms(p.asynchronous),
            "durationMs": as_ms(now - p.trigger), "bytes": p.bytes, "stateBytes": p.state_bytes,
        });
        self.completed = Some(CompletedCheckpoint {
            id,
            sources: p.sources,
            windows: p.windows,
        });
        Some(Completion {
            id,
            manifest,
            progress,
            crash: self.strikes(id, CheckpointPhase::Notify),
        })
    }
}

/// What an acknowledgement leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acknowledged {
    /// Every subtask has acknowledged: the checkpoint can complete from this instant.
    pub ready_at: Option<Nanos>,
    /// A crash is planned now (the first snapshot of a planned `snapshot`-phase crash).
    pub crash: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::EventTime;

    fn barrier(at: Nanos, positions: &[(usize, usize)]) -> Acknowledgement {
        Acknowledgement::Barrier {
            at,
            positions: positions.to_vec(),
        }
    }

    fn snapshot(watermark: EventTime) -> Acknowledgement {
        Acknowledgement::Snapshot(SnapshotFigures {
            bytes: 10,
            state_bytes: 10,
            listed: Some(TaskSnapshot {
                id: 0,
                alignment_started: 0,
                watermark,
                windows: Vec::new(),
                incremental: None,
                stage: None,
            }),
            ..Default::default()
        })
    }

    #[test]
    fn a_checkpoint_completes_once_every_subtask_acknowledged_and_not_before_the_last_ack() {
        let mut c = CheckpointCoordinator::new("job", 100, 0);
        let t = c.trigger(100, [0, 1].into()).unwrap();
        assert_eq!(t, Triggered { id: 1, crash: false });
        assert_eq!(c.acknowledge(0, 1, 110, barrier(110, &[(0, 5)])).ready_at, None);
        assert_eq!(c.acknowledge(1, 1, 130, snapshot(7)).ready_at, Some(130));
        assert!(c.complete(120).is_none(), "not before the last acknowledgement");
        let done = c.complete(130).unwrap();
        assert_eq!(done.id, 1);
        assert_eq!(done.progress["startDelayMs"], as_ms(10));
        assert_eq!(done.progress["durationMs"], as_ms(30));
        assert_eq!(done.progress["bytes"], 10);
        assert_eq!(done.manifest["sources"], serde_json::json!([[0, 5]]));
        assert_eq!(done.manifest["subtasks"][0]["subtask"], 1);
        assert_eq!(done.manifest["subtasks"][0]["watermark"], 7);
        assert_eq!(c.completed().unwrap().sources, vec![(0, 5)]);
        assert!(c.complete(1_000).is_none());
    }

    #[test]
    fn a_completed_checkpoint_subsumes_older_pending_ones() {
        let mut c = CheckpointCoordinator::new("job", 100, 0);
        c.trigger(100, [0, 1].into());
        c.trigger(200, [0].into());
        c.acknowledge(0, 1, 150, barrier(150, &[]));
        c.acknowledge(0, 2, 250, barrier(250, &[]));
        assert_eq!(c.complete(300).unwrap().id, 2);
        c.acknowledge(1, 1, 310, snapshot(1));
        assert!(c.complete(400).is_none(), "checkpoint 1 was subsumed");
    }

    #[test]
    fn manifests_keep_the_acknowledgement_order_unless_sorted() {
        for (sorted, expected) in [
            (false, serde_json::json!([[1, 4], [0, 2]])),
            (true, serde_json::json!([[0, 2], [1, 4]])),
        ] {
            let c = CheckpointCoordinator::new("job", 100, 0);
            let mut c = if sorted { c.with_sorted_manifests() } else { c };
            c.trigger(100, [0, 1].into());
            c.acknowledge(1, 1, 100, barrier(100, &[(1, 4)]));
            c.acknowledge(0, 1, 100, barrier(100, &[(0, 2)]));
            assert_eq!(c.complete(100).unwrap().manifest["sources"], expected);
        }
    }

    #[test]
    fn ids_continue_after_the_checkpoint_the_run_started_from() {
        let mut c = CheckpointCoordinator::new("job", 100, 7);
        assert_eq!(c.trigger(100, [0].into()).unwrap().id, 8);
        assert_eq!(c.next_trigger_after(250), 300);
    }

    #[test]
    fn a_planned_phase_crash_strikes_once_in_its_phase() {
        let plan = vec![
            (1, CheckpointPhase::Snapshot),
            (2, CheckpointPhase::Notify),
            (3, CheckpointPhase::Trigger),
        ];
        let mut c = CheckpointCoordinator::new("job", 100, 0).with_phase_crashes(plan);
        c.trigger(100, [0, 1, 2].into());
        assert!(
            !c.acknowledge(0, 1, 100, barrier(100, &[])).crash,
            "a barrier is no snapshot"
        );
        assert!(c.acknowledge(1, 1, 110, snapshot(1)).crash);
        assert!(!c.acknowledge(2, 1, 120, snapshot(1)).crash, "once");
        assert!(!c.complete(120).unwrap().crash);
        c.trigger(200, [0].into());
        c.acknowledge(0, 2, 200, barrier(200, &[]));
        assert!(c.complete(200).unwrap().crash);
        assert!(c.trigger(300, [0].into()).unwrap().crash);
        assert!(!c.crashes_planned());
    }

    #[test]
    fn a_subtask_that_finishes_without_its_part_abandons_the_checkpoint_and_a_covering_one_completes_it() {
        let mut c = CheckpointCoordinator::new("job", 100, 0).with_sorted_manifests();
        c.trigger(100, [0, 1].into());
        c.acknowledge(0, 1, 100, barrier(100, &[(0, 3)]));
        c.finished(1, Some(&[(1, 9)]));
        let done = c.complete(100).unwrap();
        assert_eq!(done.manifest["sources"], serde_json::json!([[0, 3], [1, 9]]));
        c.trigger(200, [0, 2].into());
        c.acknowledge(0, 2, 200, barrier(200, &[(0, 4)]));
        c.finished(2, None);
        assert!(c.complete(300).is_none(), "abandoned");
        // Later checkpoints carry where the finished source ended.
        c.trigger(300, [0].into());
        c.acknowledge(0, 3, 300, barrier(300, &[(0, 5)]));
        assert_eq!(
            c.complete(300).unwrap().manifest["sources"],
            serde_json::json!([[0, 5], [1, 9]])
        );
    }

    #[test]
    fn after_a_failure_or_a_halt_nothing_is_triggered_or_completed() {
        let mut c = CheckpointCoordinator::new("job", 100, 0);
        c.trigger(100, [0].into());
        c.acknowledge(0, 1, 100, barrier(100, &[]));
        c.halt();
        assert!(c.complete(100).is_none());
        assert!(c.trigger(200, [0].into()).is_none());
        let mut c = CheckpointCoordinator::new("job", 100, 0);
        c.trigger(100, [0].into());
        c.decline(1);
        assert!(c.trigger(200, [0].into()).is_none());
    }

    #[test]
    fn a_restart_drops_checkpoints_in_flight_and_keeps_the_completed_one() {
        let mut c = CheckpointCoordinator::new("job", 100, 0);
        c.trigger(100, [0].into());
        c.acknowledge(0, 1, 100, barrier(100, &[(0, 2)]));
        c.complete(100);
        c.trigger(200, [0].into());
        assert_eq!(c.restart(250), 300);
        c.acknowledge(0, 2, 260, barrier(260, &[]));
        assert!(c.complete(1_000).is_none());
        assert_eq!(c.completed().unwrap().id, 1);
        assert_eq!(c.trigger(300, [0].into()).unwrap().id, 3, "ids go on");
    }
}
