//! streamlab's engines: one operator set, two execution models, two clocks.
//!
//! * [`operators`] — the shared operator set (filter, lookup join, project, key-by, windows and
//!   aggregates) written against a [`operators::Collector`], so any driver can run them.
//! * [`reference`] — the reference evaluator: a pipeline's exact result over a finite input,
//!   with no notion of time, that both engines are tested against.
//! * [`microbatch`] — the Spark Structured Streaming model: triggers, batches and their phases.
//! * [`dataflow`] — the Flink model: chained operator instances, keyed exchanges through
//!   network buffers, periodic watermarks and event-time timers.
//! * [`checkpoint`] — what both engines and the state store share about durable state:
//!   checksums, the framing of state files, and the checkpoint error.
//! * [`runtime`] — where time comes from. Engines never read the OS clock or sleep; they ask
//!   their runtime, so the same engine code runs on the wall clock or on virtual time.
//! * [`recovery`] — the supervisors that restart a crashed query or job, for every engine.
//! * [`latency`] — the latency of every output, decomposed into its parts.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod cluster;
pub mod cost;
pub mod dataflow;
pub mod dimension;
pub mod event;
pub mod fault;
pub mod latency;
pub mod live_source;
pub mod microbatch;
pub mod nexmark;
pub mod operators;
pub mod pipeline;
pub mod pulse;
pub mod recovery;
pub mod reference;
pub mod run;
pub mod runtime;
pub mod source;
pub mod state;
pub mod time;
