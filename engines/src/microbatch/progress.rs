//! Per-batch progress in the shape of Spark's `StreamingQueryProgress`, same field names.
//!
//! Differences, documented for readers who know Spark: durations are fractional milliseconds
//! (Spark rounds to whole ms, which hides sub-millisecond phases); `timestamp` and the
//! `eventTime` values are milliseconds on the run's clocks (processing time since the run
//! started, event time since the workload started) rather than ISO-8601 strings.

use serde::Serialize;

/// `durationMs`: the phases of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationMs {
    /// Asking the source for its latest offsets.
    pub latest_offset: f64,
    /// Writing the offset log.
    pub wal_commit: f64,
    /// Slicing the source to the batch's offsets.
    pub get_batch: f64,
    /// Planning the batch (includes the modelled per-batch scheduling overhead).
    pub query_planning: f64,
    /// Running the tasks and writing the sink.
    pub add_batch: f64,
    /// Writing the commit log.
    pub commit_offsets: f64,
    /// The whole batch.
    pub trigger_execution: f64,
}

/// `eventTime`: event-time statistics of the batch's input, and the watermark it ran with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EventTimeStats {
    /// Smallest event time in the batch, ms (absent for a no-data batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest event time in the batch, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Mean event time in the batch, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    /// The watermark the batch ran with, ms.
    pub watermark: i64,
}

/// One entry of `stateOperators`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// `stateStoreSave`.
    pub operator_name: String,
    /// Windows in state after the batch.
    pub num_rows_total: u64,
    /// Windows created or changed by the batch.
    pub num_rows_updated: u64,
    /// Windows evicted by the watermark.
    pub num_rows_removed: u64,
    /// Input rows dropped because their window was already final.
    pub num_rows_dropped_by_watermark: u64,
    /// Approximate state memory.
    pub memory_used_bytes: u64,
    /// Time spent updating state, summed over the state partitions (measured on the wall clock,
    /// priced on virtual time).
    pub all_updates_time_ms: f64,
}

/// One batch's progress.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProgress {
    /// The engine run this batch belongs to.
    pub run: String,
    /// The batch id.
    pub batch_id: u64,
    /// Batch start, ms since the run started.
    pub timestamp: f64,
    /// The trigger time this batch was due at, ms since the run started.
    pub trigger_time_ms: f64,
    /// Input rows.
    pub num_input_rows: u64,
    /// Input rows per second since the previous batch started.
    pub input_rows_per_second: f64,
    /// Input rows per second of batch execution.
    pub processed_rows_per_second: f64,
    /// The phases.
    pub duration_ms: DurationMs,
    /// Event time and watermark.
    pub event_time: EventTimeStats,
    /// Stateful operators.
    pub state_operators: Vec<StateOperatorProgress>,
    /// Rows the sink received.
    pub num_output_rows: u64,
    /// The batch took longer than the trigger interval.
    pub falling_behind: bool,
    /// Modelled scheduling overhead included in this batch, ms.
    pub modelled_scheduling_ms: f64,
    /// Bytes this batch wrote to the state checkpoint (deltas and snapshots; with the LSM
    /// backend, the new runs and manifests of its incremental checkpoints).
    pub checkpoint_bytes: u64,
    /// The batch re-ran an uncommitted batch after a restart.
    pub replayed: bool,
}
