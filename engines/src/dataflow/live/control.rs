//! What the checkpoint coordinator and the subtask threads share on a live run.
//!
//! The coordinator asks sources for barriers through per-source atomics ([`Control::inject`]),
//! tells the subtask holding the sink how far to commit ([`Control::commit_to`]), and tears the
//! job down by setting the stop instant; subtasks answer with [`Ack`]s over a channel. The
//! slowdown of a straggling slot or a slow state store is applied here, on the wall clock.
//!
//! Invariants: requests and commits only move forward (`fetch_max`), so a subtask that looks
//! late sees the latest; a subtask writes its own snapshot and acknowledges after the write.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Sender;

use crate::checkpoint::CheckpointError;
use crate::cost::Slowdown;
use crate::dataflow::checkpoint::SnapshotWriter;
use crate::dataflow::coordinator::SnapshotFigures;
use crate::dataflow::tasks::{SinkOperator, TaskSnapshot};
use crate::runtime::{Clock, LiveClock};
use crate::time::Nanos;

/// How often a subtask holding the sink looks for a completed checkpoint to commit when no
/// message arrives.
pub(super) const COMMIT_POLL: Nanos = 1_000_000;

/// A source wakes this long after each multiple of the checkpoint interval, so the
/// coordinator's request is there when it looks.
const TRIGGER_SLACK: Nanos = 500_000;

/// What a subtask tells the checkpoint coordinator.
pub(super) enum Ack {
    /// Source subtask `k` injected barrier `id` at `at`; its read positions.
    Barrier {
        k: usize,
        id: u64,
        at: Nanos,
        positions: Vec<(usize, usize)>,
    },
    /// Subtask `k` aligned barrier `id`, snapshotted and stored its state (or could not).
    Snapshot {
        k: usize,
        id: u64,
        figures: SnapshotFigures,
        error: Option<CheckpointError>,
    },
    /// Subtask `k` finished. A source behind an exchange reports its final positions: its
    /// end-of-stream went downstream after all its records, so it needs no barrier for a
    /// checkpoint it missed. `None`: a checkpoint it missed cannot complete.
    Finished {
        k: usize,
        covers: Option<Vec<(usize, usize)>>,
    },
}

/// What the coordinator and the subtasks share.
pub(super) struct Control {
    pub(super) interval: Option<Nanos>,
    pub(super) writer: SnapshotWriter,
    /// Per source subtask, the latest checkpoint it is asked to inject a barrier for.
    pub(super) inject: Vec<AtomicU64>,
    /// The latest completed checkpoint: the subtask holding the sink commits up to it.
    pub(super) commit_to: AtomicU64,
    /// The checkpoint the run started from (0: none); earlier ids are never requested.
    pub(super) base: u64,
    /// When the job is torn down (`Nanos::MAX` until a phase crash strikes).
    pub(super) stop: AtomicU64,
    pub(super) slowdowns: Vec<Slowdown>,
    /// Slots: subtask `k` runs in slot `k % slots`.
    pub(super) slots: usize,
    /// The run's pulse (from its output stream): sources publish events read, the coordinator
    /// completed checkpoints, and a stop request ends the sources as `until` would.
    pub(super) pulse: Option<std::sync::Arc<crate::pulse::RunPulse>>,
}

impl Control {
    pub(super) fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// The end of this incarnation: `until`, or earlier when a phase crash struck.
    pub(super) fn until(&self, until: Nanos) -> Nanos {
        until.min(self.stop.load(Ordering::Acquire))
    }

    /// A straggling slot or a slow state store: subtask `k`'s step that started at `start`
    /// and spent `state_ns` of its measured time on state takes `factor` times as long; waits
    /// out the difference and returns the extra state time (0 with no slowdown in force).
    pub(super) fn slow_down(&self, clock: &LiveClock, k: usize, start: Nanos, state_ns: Nanos) -> Nanos {
        if self.slowdowns.is_empty() {
            return 0;
        }
        let slot = k % self.slots;
        let all = Slowdown::factor_at(&self.slowdowns, slot, start, false);
        let state = Slowdown::factor_at(&self.slowdowns, slot, start, true);
        let took = clock.now().saturating_sub(start);
        let other = took.saturating_sub(state_ns) as f64 * (all - 1.0);
        let extra_state = (state_ns as f64 * (state - 1.0)) as Nanos;
        if other > 0.0 || extra_state > 0 {
            clock.wait_until(clock.now() + other as Nanos + extra_state);
        }
        extra_state
    }

    /// Commits what completed checkpoints cover, if any completed since `committed`.
    pub(super) fn commit(&self, sink: &mut SinkOperator, committed: &mut u64, now: Nanos) {
        let to = self.commit_to.load(Ordering::Acquire);
        if to > *committed {
            sink.commit(to, now);
            *committed = to;
        }
    }

    /// When a source waiting for `t` at `now` must look again: no later than just after the
    /// next checkpoint trigger, and soon when it holds the sink and commits are due.
    pub(super) fn source_wake(&self, t: Nanos, now: Nanos, holds_sink: bool) -> Nanos {
        let Some(interval) = self.interval else { return t };
        let trigger = (now / interval + 1) * interval + TRIGGER_SLACK;
        let mut wake = t.min(trigger);
        if holds_sink {
            wake = wake.min(now + COMMIT_POLL);
        }
        wake
    }

    /// A subtask aligned checkpoint `snapshot.id`: serialize its state (synchronous part),
    /// write it (asynchronous part), acknowledge. An incremental checkpoint of an LSM store was
    /// taken by the subtask itself at alignment (all synchronous here); only its figures are
    /// passed on.
    pub(super) fn snapshot_taken(&self, k: usize, mut snapshot: TaskSnapshot, clock: &LiveClock, acks: &Sender<Ack>) {
        let start = clock.now();
        let id = snapshot.id;
        let mut serialized = self.writer.serialize(k, &mut snapshot);
        // The state is in its file now: the coordinator needs only what the manifest lists.
        snapshot.windows = Vec::new();
        if let Some(stage) = &mut snapshot.stage {
            *stage = Vec::new(); // still `Some`: the manifest marks the file as a stage's
        }
        let serialized_at = clock.now();
        let written = self.writer.write(k, id, &serialized);
        let written_at = clock.now();
        let (sync, asynchronous) = match &snapshot.incremental {
            Some(inc) => (inc.sync_ns, 0),
            None => (serialized_at - start, written_at - serialized_at),
        };
        let error = serialized.error.take().or(written.err());
        let figures = SnapshotFigures {
            alignment: start.saturating_sub(snapshot.alignment_started),
            sync,
            asynchronous,
            bytes: serialized.bytes,
            state_bytes: serialized.state_bytes,
            listed: serialized.listed.then_some(snapshot),
        };
        let _ = acks.send(Ack::Snapshot { k, id, figures, error });
    }
}
