//! The per-record dataflow engine: Flink's execution model.
//!
//! Source subtasks (one per parallel instance, each owning a share of the source partitions)
//! read records as they arrive and run the chained stateless operators. A keyed exchange
//! routes rows by key-group to window subtasks through **network buffers** that are shipped
//! when full or when the output flusher fires every `buffer_timeout` (Flink default 100 ms) —
//! the batching hidden inside "true streaming". Sources emit **bounded-out-of-orderness
//! watermarks** (`max − bound − 1`) every `auto_watermark_interval`; a subtask's watermark is
//! the minimum over its active inputs (idle inputs are skipped); windows fire on event-time
//! timers; records later than their windows' allowed lateness go to a side output.
//!
//! * [`config`] — parallelism, buffers, watermark settings;
//! * [`watermark`] — the watermark generator and the min-over-inputs holder;
//! * [`network`] — messages, network buffers and the output gate;
//! * [`tasks`] — the source, window and sink subtasks, independent of any clock;
//! * [`graph`] — the job graph: which subtasks there are and who sends to whom;
//! * [`coordinator`] — the checkpoint coordinator, a pure state machine;
//! * [`checkpoint`] — the files of a checkpoint and the one writer of them;
//! * [`live`] — the live driver: one OS thread per subtask, crossbeam channels between them;
//! * [`sim`] — the simulated driver: the same subtasks on virtual time.
//!
//! The drivers only move time and messages: what a job is, how checkpoints complete and what
//! they write is decided once, above them. Restarting a crashed job is the supervisors' work
//! ([`crate::recovery`]).

pub mod checkpoint;
pub mod config;
pub mod coordinator;
pub mod graph;
pub mod live;
pub mod network;
pub mod outcome;
pub mod sim;
pub mod tasks;
pub mod watermark;

pub use config::DataflowConfig;
pub use graph::JobContext;
