//! The real engines streamlab drives: Apache Spark (pyspark) and Apache Flink (PyFlink).
//!
//! The native engines are models; the real engines are the ground truth they are checked
//! against. This crate installs them and says whether they are there; the drivers that run a
//! scenario on them come in later changes and live here too.
//!
//! * [`cache`] — where the engines live: one cache directory, chosen by
//!   `STREAMLAB_ENGINES_DIR`, `XDG_CACHE_HOME` or `HOME`.
//! * [`java`] — finding Java (JAVA_HOME or PATH) and reading its version; the engines need 17+.
//! * [`venv`] — one pinned Python venv per engine (pyspark and apache-flink conflict, so they
//!   never share one), and the pin marker that makes installing idempotent.
//! * [`http`] — the readiness probe of a local engine's status endpoint.
//! * [`helper_jar`] — streamlab's Java helper classes for Flink (feeder source, receiver sink,
//!   campaign lookup), embedded in the binary and compiled once into a jar in the cache.
//! * [`process`] — child processes (python, pip, java) in their own process group, waited for,
//!   their output in a log file whose last lines a failure shows.
//! * [`groups`] — the process group of every engine run, ended on every way a run can end.
//! * [`driver`] — one generated job run: feeder, receiver, the engine's process group, its log
//!   and progress in the run's directory.
//! * [`outputs`] — the lines a job sent back, rebuilt into streamlab's outputs, timed and
//!   checked against the reference evaluator.
//! * [`install`] — `streamlab engines install`.
//! * [`doctor`] — `streamlab engines doctor`.
//! * [`job`] — the contract every generated job keeps with the driver: arguments and output rows.
//! * [`kafka`] — Apache Kafka between the workload and an engine: the pinned broker (fetched
//!   by `streamlab engines install`, started per run on loopback), and streamlab's pure-Rust
//!   client that produces the workload open-loop and reads the results back.
//! * [`kafka_streams`] — Apache Kafka Streams as a real engine: a pipeline as a generated Java
//!   application, compiled against the pinned Kafka and run between the producer and consumer.
//! * [`spark`] — a pipeline and micro-batch configuration as a generated PySpark script, and
//!   what Spark cannot run, refused by key.
//! * [`flink`] — a pipeline and per-record configuration as a generated PyFlink / Flink SQL
//!   job, and what Flink cannot run, refused by key.
//!
//! Nothing here is needed by the native engines: `streamlab run` and `cargo test` never touch
//! the cache directory.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cache;
pub mod doctor;
pub mod driver;
pub mod error;
pub mod flink;
pub mod groups;
pub mod helper_jar;
pub mod http;
pub mod install;
pub mod java;
pub mod job;
pub mod kafka;
pub mod kafka_streams;
pub mod outputs;
pub mod process;
pub mod spark;
pub mod venv;
pub mod watch;

pub use cache::{CacheDir, CacheOrigin, ENGINES_DIR_VAR};
pub use doctor::DoctorReport;
pub use error::{RealEngineError, Result};
pub use helper_jar::{HelperJar, HelperJarStatus};
pub use install::install;
pub use java::{JavaInstall, JavaVersion, MIN_JAVA_MAJOR};
pub use venv::{PythonEngine, Venv, VenvStatus};
