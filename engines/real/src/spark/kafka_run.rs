//! One run of the generated PySpark script on Kafka (`transport = "kafka"`): Spark's Kafka source
//! reads the input topic streamlab's producer writes, and the results go to the output topic
//! streamlab's consumer reads and stamps — optionally with the job killed mid-run and restarted
//! from its own checkpoint, to show its output exactly once. The run itself (broker, topics,
//! producer, consumer, the kill and the quiet period that ends it) is every Python job's on
//! Kafka ([`crate::kafka::job_run`]); what is Spark's is here:
//! * the script's command line: Spark's Kafka connector on its class path
//!   (`PYSPARK_SUBMIT_ARGS`: `--jars`, `--driver-class-path`, so the driver's transactional
//!   producer can reach `kafka-clients` too); the query's start is its ready file;
//! * after a kill (`kill_at`) the script is started again with the same checkpoint location and
//!   output topic. Spark re-runs the batch its commit log lacks; the script's sink skips a batch
//!   the topic already holds and `initTransactions` aborts the one the killed job left open (see
//!   `kafka_runtime.py`), so a read_committed reader sees every batch once. The restart's
//!   figures add the batch it re-ran.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use streamlab_engines::event::Event;

use crate::driver::read_progress;
use crate::error::Result;
use crate::kafka::job_run::{KafkaJobEnv, KafkaJobOutcome, KafkaJobRun, KafkaLaunch};
use crate::kafka::spark_connector::SparkKafkaJars;
use crate::CacheDir;

/// How long a restarted query may take to deliver its first result before its quiet period
/// counts as for a query that never stopped.
const RESTART_GRACE: Duration = Duration::from_secs(30);

/// The batch ids in a checkpoint's `offsets` or `commits` directory.
fn logged_batches(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The batch a restart re-runs: the newest in the offset log if the commit log lacks it.
fn uncommitted_batch(checkpoint: &Path) -> Option<u64> {
    let offsets = logged_batches(&checkpoint.join("offsets")).into_iter().max()?;
    (!logged_batches(&checkpoint.join("commits")).contains(&offsets)).then_some(offsets)
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct SparkKafkaOutcome {
    /// The run: results, producer, start-up, cluster, the kill and restart.
    pub run: KafkaJobOutcome,
    /// Spark's `StreamingQueryProgress` records (both runs' after a restart).
    pub progress: Vec<serde_json::Value>,
    /// After a restart: the batch the killed query had written to its offset log but not to
    /// its commit log, which the restarted query ran again with the same offsets.
    pub rerun_batch: Option<u64>,
}

/// The script's command line on Kafka: Spark's Kafka connector on its class path.
fn command(launch: &KafkaLaunch, jars: &str, env: &KafkaJobEnv<'_>) -> Command {
    let job = &launch.job;
    env.command(
        job,
        &[
            format!("SPARK_LOCAL_DIRS={}", job.dir.join("tmp").display()),
            format!(
                "PYSPARK_SUBMIT_ARGS=--jars {jars} --driver-class-path {} pyspark-shell",
                jars.replace(',', ":")
            ),
        ],
    )
}

/// Runs `launch` over `events` (in arrival order) on Kafka.
pub fn run_spark_on_kafka(launch: &KafkaLaunch, events: &[Event]) -> Result<SparkKafkaOutcome> {
    let jars = SparkKafkaJars::in_cache(&CacheDir::from_env()?).spark_jars()?;
    let mut rerun_batch = None;
    let run = KafkaJobRun {
        launch,
        restart_grace: RESTART_GRACE,
    }
    .run(events, &mut |env| {
        if env.restart {
            rerun_batch = uncommitted_batch(&launch.job.checkpoint());
        }
        Ok(command(launch, &jars, env))
    })?;
    Ok(SparkKafkaOutcome {
        run,
        progress: read_progress(&launch.job.progress())?,
        rerun_batch,
    })
}
