//! The subtasks of the per-record engine, written against `now` instants handed in by a
//! driver: they never read a clock, so the live driver (threads) and a simulated one (virtual
//! time) run the same code.
//!
//! * [`SourceTask`] ([`source`]) reads its partitions as records arrive, runs the chained
//!   filter and join, and writes rows into its output (a keyed exchange, an exchange to the
//!   sink, or the sink chained in the same task); it emits periodic watermarks and idleness,
//!   and injects checkpoint barriers.
//! * [`WindowTask`] ([`window`]) is a window operator instance behind a keyed exchange: it
//!   aligns barriers and snapshots its keyed state.
//! * [`SinkOperator`] and [`SinkTask`] ([`sink`]) deliver outputs (two-phase commit or
//!   at-least-once) and record their latency, decomposed.
//! * [`BarrierAligner`] ([`alignment`]) is barrier alignment, shared by window and sink subtasks.
//!
//! This file holds what every subtask shares with its driver: what a step asks for next
//! ([`Step`]), what handling a message produced ([`TaskOutcome`]) and what a checkpoint of a
//! subtask holds ([`TaskSnapshot`]). Invariant: nothing here reads a clock or a channel; a
//! driver hands in `now` and moves the messages the subtasks push into their links.

pub mod alignment;
pub mod sink;
pub mod source;
pub mod window;

pub use alignment::BarrierAligner;
pub use sink::{CommitHook, SinkItem, SinkOperator, SinkTask, COMPONENTS};
pub use source::{RowOutput, SourceStats, SourceTask};
pub use window::{KeyedPlan, ResultOutput, WindowOutcome, WindowTask};

use crate::time::{EventTime, Nanos};

/// What a subtask wants next from its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More work is ready now.
    Continue,
    /// Nothing to do before this instant.
    WaitUntil(Nanos),
    /// The subtask has finished.
    Done,
}

/// What a subtask's checkpoint holds: its keyed state and watermark — a window operator's
/// windows (or its incremental checkpoint), or a keyed stage's encoded state (a join,
/// deduplication or top-N subtask, or the sink subtask running the second aggregation).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSnapshot {
    /// The checkpoint.
    pub id: u64,
    /// When the first barrier arrived (alignment began).
    pub alignment_started: Nanos,
    /// The subtask's watermark.
    pub watermark: EventTime,
    /// Every window in state (empty when the state went into an incremental checkpoint).
    pub windows: Vec<crate::operators::window::WindowEntry>,
    /// The LSM backend's incremental checkpoint of the state, when the subtask takes them.
    pub incremental: Option<IncrementalSnapshot>,
    /// A keyed stage's (or the second aggregation's) state, encoded (`operators/graph/codec.rs`).
    pub stage: Option<Vec<u8>>,
}

/// A window subtask's state as an incremental checkpoint of its LSM store (Flink's
/// incremental RocksDB checkpoints): `<root>/chk-<id>/MANIFEST` lists the store's runs in
/// `<root>/shared/`, of which only those new since the subtask's previous checkpoint were written.
#[derive(Clone, Debug, PartialEq)]
pub struct IncrementalSnapshot {
    /// The subtask's checkpoint root, `<checkpoint dir>/state/subtask-<k>`.
    pub root: std::path::PathBuf,
    /// Bytes this checkpoint wrote (new runs and the manifest).
    pub bytes_written: u64,
    /// Bytes the state takes in all (written now or referenced from earlier checkpoints).
    pub state_bytes: u64,
    /// How long taking it took on the wall clock (flush, upload, manifest), ns.
    pub sync_ns: Nanos,
    /// Why the checkpoint could not be taken.
    pub error: Option<String>,
}

/// What handling one message produced.
#[derive(Debug)]
pub struct TaskOutcome<T> {
    /// Emptied buffers, for the pool.
    pub buffers: Vec<Vec<T>>,
    /// Every input has finished; the task sent end-of-stream downstream.
    pub finished: bool,
    /// An aligned checkpoint: the state to store.
    pub checkpoint: Option<TaskSnapshot>,
}

impl<T> Default for TaskOutcome<T> {
    fn default() -> Self {
        Self {
            buffers: Vec::new(),
            finished: false,
            checkpoint: None,
        }
    }
}
