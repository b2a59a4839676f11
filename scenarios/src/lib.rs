//! Scenario files: what a user writes to compare the two execution models, read into a
//! validated [`spec::Scenario`].
//!
//! A scenario names one workload, one pipeline and the engines that run it side by side. It
//! is user input, so this crate's first job is to refuse a bad file with a message that names
//! the file, the line and the key, and says what is allowed ([`error::ScenarioError`]).
//!
//! * [`spec`] — the file format and its reader.
//! * [`error`] — what can go wrong, by who is at fault.
//! * [`sweep`] — one scenario over a grid of values of its keys.
//! * [`catalog`] — the scenarios of a directory, with their purpose (`streamlab list`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod calibrate;
pub mod capacity;
pub mod catalog;
pub mod crash_sweep;
pub mod error;
pub mod error_run;
pub mod execute;
pub mod profile;
pub mod recovery;
pub mod results;
pub mod rss;
pub mod runner;
pub mod spec;
pub mod sweep;
pub mod validate;
pub mod workload;

pub use error::ScenarioError;
pub use spec::{ClockKind, EngineKind, EngineSpec, Scenario, WorkloadSpec};
