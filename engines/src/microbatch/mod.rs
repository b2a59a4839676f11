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
//! * [`engine`] — the trigger loop and the batch phases;
//! * [`log`] — the offset and commit logs;
//! * [`progress`] — `StreamingQueryProgress`-shaped reporting.

pub mod checkpoint;
pub mod config;
pub mod continuous;
pub mod engine;
pub mod log;
pub mod progress;

pub use config::{MicroBatchConfig, OutputMode, SchedulingOverhead, Trigger};
pub use engine::{MicroBatchEngine, SinkWriter};
