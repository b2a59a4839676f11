//! Apache Flink: a scenario's pipeline and per-record engine configuration as a generated
//! PyFlink script running Flink SQL, and the contract between that script and the driver.
//!
//! streamlab does not rewrite a pipeline by hand for Flink: [`PyFlinkScript::translate`] writes
//! it out — filter, `where`, `convert`, lookup join, projection or key-by, window table function
//! (`TUMBLE`, `HOP`, `SESSION` on the event time, with the engine's watermark) and aggregate (and
//! a second one cascaded over it, `then.rs`), or a stream-stream join (`join.rs`) or a window
//! Top-N (`top_n.rs`), and the engine's
//! parallelism, buffer timeout, watermark interval, idleness, checkpoints and state backend as
//! Flink's own configuration keys, plus the engine table's `conf` passed through as it is — or
//! refuses, naming the key, what Flink cannot run as described ([`FlinkRefusal`]). The script is kept in the run's directory, so a user can read
//! it and rerun it.
//!
//! **Why SQL and a helper jar.** Through PyFlink, only Flink SQL (or Java operators) keeps the
//! whole job in the JVM; a Python function per record would add a Python worker and its
//! serialization to every latency measured. Flink's bundle has no source that speaks the
//! feeder's protocol (the built-in socket source reads one connection and cannot present the
//! token; Flink 2 keeps `SourceFunction` only as legacy), so streamlab ships a few Java classes
//! (`engines/real/java/`, compiled by `streamlab engines install`, [`crate::helper_jar`]):
//! table factories, so the job stays plain SQL (`'connector' = 'streamlab-feed'` and
//! `'streamlab-receiver'`), a FLIP-27 source with one split per source partition and the
//! table's watermark pushed into it (per-split watermarks, as the per-record engine and Flink's
//! Kafka source have them), a sink writing CSV lines, and the campaign lookup as a table
//! function (it keeps the rowtime, unlike a regular streaming join).
//!
//! The contract with the driver is the one every generated job keeps ([`crate::job`]):
//! * **Run**: `<cache>/venv-flink/bin/python streamlab_flink.py` with
//!   [`ScriptArgs::to_args`], `--jar` required ([`crate::CacheDir::flink_helper_jar`]); Java 17+
//!   from `JAVA_HOME` or `PATH`, no other environment. Without `--master` the job runs on a local
//!   MiniCluster inside the PyFlink gateway's JVM (a child of the python process: end the
//!   process group); with `--master HOST:PORT` it is submitted to that JobManager's REST address.
//! * **Rows**: [`sink_columns`], one CSV line each; window rows are final (`is_update` false).
//! * **Progress**: each completed checkpoint's statistics from Flink's REST API, one JSON line
//!   each (the local cluster's REST endpoint listens on a free loopback port for that).
//! * **End**: the sources are bounded; the job, and the script, end by themselves once every
//!   partition has sent `END` and the final watermark has fired every window.
//!
//! On `transport = "kafka"` ([`PyFlinkScript::translate_for_kafka`], [`kafka_run`]) the same
//! pipeline reads the input topic through Flink's Kafka source (the record timestamp as the
//! rowtime, per-partition watermarks) and writes the output topic through Flink's Kafka sink,
//! exactly once (two-phase commit on checkpoints, so checkpoints are required); the job never
//! ends by itself, and a kill is followed by a restore from its newest retained checkpoint.

mod join;
pub mod kafka_run;
mod refusal;
pub mod session;
mod sql;
mod then;
mod top_n;
mod translate;

pub use kafka_run::{run_flink_on_kafka, FlinkKafkaOutcome, RestoredCheckpoint};
pub use refusal::{
    check, check_conf, check_socket_sink, FlinkRefusal, RefusedTable, NOT_TRANSLATED, RUNTIME_CONF, TRANSLATED_CONF,
};
pub use translate::{FlinkJob, PyFlinkScript};

pub use crate::job::{sink_columns, write_campaign_table, ScriptArgs};
