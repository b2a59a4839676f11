//! Apache Spark: a scenario's pipeline and micro-batch configuration as a generated PySpark
//! script, and the contract between that script and the driver that runs it.
//!
//! streamlab does not rewrite a pipeline by hand for Spark: [`PySparkScript::translate`] writes
//! it out — filter, `where`, `convert`, lookup join (a broadcast join against the campaign
//! table), projection or key-by, window (`window` / `session_window` on the event time, with
//! `withWatermark`) and aggregate, or a stream-stream join (`join.rs`: a time-range condition
//! with watermarks on both sides, a window column, or no bound), the trigger, output mode,
//! `local[N]` and shuffle partitions — or refuses, naming the key, what Spark cannot run as
//! described ([`SparkRefusal`]: a top-N; a second aggregation and a deduplication, not yet). The script is kept in the
//! run's directory, so a user can read it and rerun it.
//!
//! The contract with the driver is the one every generated job keeps ([`crate::job`]):
//! * **Arguments** ([`ScriptArgs`]): the feeder's and receiver's addresses, the run's token, the
//!   number of source partitions, the campaign table's file ([`write_campaign_table`]), the
//!   progress file and the checkpoint directory; optionally a master URL.
//! * **Source**: the script reads the feeder with a Python data source (Spark 4's
//!   `DataSourceStreamReader`), one connection per source partition opened when the query
//!   starts, each presenting the token. The built-in `socket` source cannot present a token and
//!   reads one connection only. Spark runs Python data sources through Arrow, so the venv needs
//!   pyspark's `sql` extra (pyarrow, pandas, numpy), not pyspark alone.
//! * **Sink**: `foreachBatch` sends every output row to the receiver, one CSV line each, columns
//!   [`sink_columns`]. Sending is
//!   not idempotent by batch id yet: a batch Spark replays after a failure is sent twice.
//! * **Progress**: every `StreamingQueryProgress` is appended to the progress file as one JSON
//!   line, Spark's own measurements for `progress.jsonl`.
//! * **End**: `once` and `available_now` queries end by themselves; others stop once a batch has
//!   read every row the feeder sent, or when the driver ends the process group.
//!
//! On `transport = "kafka"` ([`PySparkScript::translate_for_kafka`], [`kafka_run`]) the script
//! reads the input topic with Spark's Kafka source and writes the output topic instead: in
//! micro-batches through `foreachBatch`, one Kafka transaction per batch keyed by its batch id
//! (idempotent across a restart); in Real-Time Mode through Spark's Kafka sink, which Real-Time
//! Mode requires.

mod join;
pub mod kafka_run;
mod refusal;
pub mod standalone;
mod translate;

pub use kafka_run::{run_spark_on_kafka, SparkKafkaOutcome};
pub use refusal::{check, check_conf, RefusedTable, SparkRefusal};
pub use translate::{PySparkScript, SparkJob};

pub use crate::job::{sink_columns, write_campaign_table, ScriptArgs};
