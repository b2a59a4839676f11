//! Injected failures as the engines see them: where a crash strikes, and how a run stops.
//!
//! Failures are declared in scenarios and carried out by the drivers; an engine only checks,
//! at each phase boundary of its work, whether the plan says it crashes there, and stops. What
//! it held in memory is then gone: recovery starts from its checkpoint directory.

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointError;
use crate::time::Nanos;

/// The phases of a micro-batch, as Spark's `durationMs` names them, plus the sink's commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchPhase {
    /// Asking the source for offsets.
    LatestOffset,
    /// Writing the offset log.
    WalCommit,
    /// Slicing the source.
    GetBatch,
    /// Planning the job.
    QueryPlanning,
    /// Running the tasks (state is updated in memory).
    AddBatch,
    /// Committing the output to the sink (after the tasks, before the commit log).
    SinkCommit,
    /// Writing the commit log.
    CommitOffsets,
}

impl BatchPhase {
    /// Every phase, in order.
    pub const ALL: [BatchPhase; 7] = [
        Self::LatestOffset,
        Self::WalCommit,
        Self::GetBatch,
        Self::QueryPlanning,
        Self::AddBatch,
        Self::SinkCommit,
        Self::CommitOffsets,
    ];

    /// The name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LatestOffset => "latestOffset",
            Self::WalCommit => "walCommit",
            Self::GetBatch => "getBatch",
            Self::QueryPlanning => "queryPlanning",
            Self::AddBatch => "addBatch",
            Self::SinkCommit => "sinkCommit",
            Self::CommitOffsets => "commitOffsets",
        }
    }
}

/// The phases of a per-record (Flink) checkpoint a crash can be placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointPhase {
    /// The coordinator has triggered the checkpoint; barriers are on their way from the sources.
    Trigger,
    /// The first subtask has aligned its barriers and snapshotted its state; others are still
    /// aligning, and the checkpoint is not complete.
    Snapshot,
    /// Every subtask has acknowledged and the checkpoint's metadata is written, but the sink has
    /// not yet been told to commit (`notifyCheckpointComplete`): the two-phase-commit sink's
    /// pre-committed transaction is committed on recovery, as Flink's sinks do.
    Notify,
}

impl CheckpointPhase {
    /// Every phase, in order.
    pub const ALL: [CheckpointPhase; 3] = [Self::Trigger, Self::Snapshot, Self::Notify];

    /// The name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Snapshot => "snapshot",
            Self::Notify => "notify",
        }
    }
}

/// Where a crash strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// At the first phase boundary at or after this instant.
    At(Nanos),
    /// When batch `batch` reaches `phase`.
    InBatch {
        /// The batch id.
        batch: u64,
        /// The phase it crashes at.
        phase: BatchPhase,
    },
    /// When per-record checkpoint `checkpoint` reaches `phase` (simulated clock).
    InCheckpoint {
        /// The checkpoint id (1 is the first).
        checkpoint: u64,
        /// The phase it crashes in.
        phase: CheckpointPhase,
    },
}

/// Why an engine stopped before the end of its run.
#[derive(Debug, thiserror::Error)]
pub enum EngineStop {
    /// An injected crash: in-memory state is lost.
    #[error("crashed at {at} ns")]
    Crashed {
        /// When.
        at: Nanos,
    },
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}
