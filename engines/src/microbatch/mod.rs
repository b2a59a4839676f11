//! The micro-batch engine: Spark Structured Streaming's execution model.
//!
//! A trigger decides when a batch starts; a batch fixes its input offsets (`latestOffset`),
//! writes them to the offset log *before* processing (`walCommit`), slices the source
//! (`getBatch`), plans its tasks (`queryPlanning`, where the modelled scheduling cost is paid),
//! runs one task per source partition and one per shuffle partition on the worker pool and
//! writes the sink (`addBatch`), and finally records the batch in the commit log
//! (`commitOffsets`). The watermark computed at the end of batch N is applied from batch N+1.
//!
//! * [`config`] — triggers, output modes, the modelled scheduling overhead;
//! * [`engine`] — the query (`StreamExecution`) and its trigger loop;
//! * `batch` — one batch, one method per phase (`MicroBatchExecution`, `IncrementalExecution`);
//! * `map_stage` — the map tasks and the partial aggregation before the exchange;
//! * `reduce_stage` — the exchange, the reduce tasks and the `StateStore` commit;
//! * `sink` — the idempotent sink and the latency of what it delivers;
//! * [`continuous`] — continuous processing (long-running tasks, epochs);
//! * `real_time` — Spark's Real-Time Mode (long-running batches, pipelined shuffle, a
//!   checkpoint per interval);
//! * [`log`] — the offset and commit logs; [`checkpoint`] — the durable checkpoint;
//! * [`progress`] — `StreamingQueryProgress`-shaped reporting.

mod batch;
pub mod checkpoint;
pub mod config;
pub mod continuous;
pub mod engine;
mod keyed_stage;
pub mod log;
mod map_stage;
pub mod progress;
mod real_time;
mod reduce_stage;
mod run_state;
mod sink;

pub use config::{MicroBatchConfig, OutputMode, SchedulingOverhead, Trigger};
pub use engine::MicroBatchEngine;
pub use sink::SinkWriter;
