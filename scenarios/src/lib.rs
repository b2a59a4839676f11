//! Scenario files: what a user writes to compare the two execution models, read into a
//! validated [`spec::Scenario`].
//!
//! A scenario names one workload, one pipeline and the engines that run it side by side. It
//! is user input, so this crate's first job is to refuse a bad file with a message that names
//! the file, the line and the key, and says what is allowed ([`error::ScenarioError`]).
//!
//! A run is a straight pipeline, each step a module that only looks back:
//!
//! * [`spec`] (with [`engine`], [`failures`], [`transport`] and [`keypath`]) — the file format; [`reader`]
//!   reads it, with located errors ([`error`]).
//! * [`workload`] and [`clock`] — the plan: the events, and the clock the engines run on.
//! * [`executor`] — one interface per engine kind ([`micro_batch`], [`per_record`]; the real
//!   engines in [`real_engine`] and [`kafka_streams`]), each
//!   running its engine under a supervisor of `streamlab_engines::recovery`; [`drive`] runs the
//!   engines, whole or segment by segment (a native engine on Kafka between the topics of
//!   `kafka_native`).
//! * [`sink`] — the sink files, written as the engines deliver.
//! * [`summary`], [`recovery`], [`stability`] and [`results`] — `summary.json` and the rest of
//!   the results directory (its layout is `streamlab_reports::layout`'s).
//! * [`runner`] — the pipeline, end to end (`streamlab run`); [`watch`] — the engine runs under
//!   way and their figures, for a progress display, and the Ctrl-C stop request.
//!
//! Around it: [`sweep`] (one scenario over a grid of values of its keys), [`capacity`],
//! [`crash_sweep`], [`validate`], [`calibrate`] and [`catalog`] (the scenarios of a directory,
//! with their purpose, for `streamlab list`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod against;
pub mod calibrate;
pub mod capacity;
pub mod catalog;
pub mod clock;
pub mod crash_sweep;
pub mod drive;
pub mod engine;
pub mod error;
pub mod error_run;
pub mod executor;
pub mod failures;
pub mod fit;
pub mod interrupt;
mod kafka_native;
pub mod kafka_streams;
pub mod keypath;
pub mod live_feed;
pub mod micro_batch;
pub mod per_record;
pub mod profile;
pub mod reader;
pub mod real_engine;
mod real_measured;
pub mod recovery;
pub mod results;
pub mod rounds;
pub mod rss;
pub mod runner;
pub mod segments;
pub mod sink;
pub mod spec;
pub mod stability;
pub mod summary;
pub mod sweep;
pub mod transport;
pub mod validate;
pub mod watch;
pub(crate) mod watermark_hold;
pub mod workload;

pub use error::ScenarioError;
pub use spec::{ClockKind, EngineKind, EngineSpec, Scenario, WorkloadSpec};
