//! One run of the generated PySpark script on Kafka (`transport = "kafka"`): Spark's Kafka source
//! reads the input topic streamlab's producer writes, and the results go to the output topic
//! streamlab's consumer reads and stamps — optionally with the job killed mid-run and restarted
//! from its own checkpoint, to show its output exactly once. The run itself (broker, topics,
//! producer, consumer, the kill and the quiet period that ends it) is every Python job's on
//! Kafka ([`crate::kafka::job_run`]); what is Spark's is here:
//! * the script's command line: Spark's Kafka connector on its class path
//!   (`PYSPARK_SUBMIT_ARGS`: `--jars`, `--driver-class-path`, so the driver's transactional
//!   producer can reach `kafka-clients` too); the query's start is its ready file;
//! * after a kill (a `[[failure]]` crash) the script is started again with the same checkpoint
//!   location and output topic. Spark re-runs the batch its commit log lacks; the script's sink
//!   skips a batch the topic already holds and `initTransactions` aborts the one the killed job
//!   left open (see `kafka_runtime.py`), so a read_committed reader sees every batch once. The
//!   restart's figures add the batch it re-ran and the input records it reads again: that
//!   batch's offset range, read from the offset log (its end offsets minus the batch before's;
//!   Spark re-runs a logged batch with exactly those offsets). None is re-run when the kill
//!   came between batches (the newest logged batch committed): nothing is read twice then.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use streamlab_engines::event::Event;

use crate::driver::read_progress;
use crate::error::Result;
use crate::kafka::job_run::{KafkaJobEnv, KafkaJobOutcome, KafkaJobRun, KafkaLaunch};
use crate::kafka::spark_connector::SparkKafkaJars;
use crate::CacheDir;

/// How long more a query, started or restarted, may take to deliver its first result before
/// its quiet period counts as for a query that delivers (the first micro-batches plan and run
/// on a cold JVM; append mode emits nothing before the watermark passes a window).
const FIRST_RESULT_GRACE: Duration = Duration::from_secs(30);

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

/// The sum over every source partition of the end offsets batch `batch` logged (`offsets/<n>`:
/// a version line, the batch's metadata, then one line per source, Kafka's as
/// `{"topic":{"0":120,"1":118}}`); `None` when the file is missing or not that shape.
fn logged_end(checkpoint: &Path, batch: u64) -> Option<i64> {
    let text = std::fs::read_to_string(checkpoint.join("offsets").join(batch.to_string())).ok()?;
    let mut total = 0;
    for line in text.lines().skip(1) {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let object = value.as_object()?;
        if object.contains_key("batchWatermarkMs") {
            continue;
        }
        for partitions in object.values() {
            total += partitions
                .as_object()?
                .values()
                .map(serde_json::Value::as_i64)
                .sum::<Option<i64>>()?;
        }
    }
    Some(total)
}

/// The batch a restart re-runs, and the input records it reads again: its offset range (the
/// batch before ends where it starts; the first batch starts at the topic's first offsets, 0
/// on a topic of the run's own).
fn rerun_of(checkpoint: &Path) -> Option<RerunBatch> {
    let id = uncommitted_batch(checkpoint)?;
    let start = match id {
        0 => Some(0),
        n => logged_end(checkpoint, n - 1),
    };
    let records = logged_end(checkpoint, id)
        .zip(start)
        .map(|(end, start)| (end - start).max(0) as u64);
    Some(RerunBatch { id, records })
}

/// The batch a restarted query ran again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RerunBatch {
    /// Its id: in the killed query's offset log, not in its commit log.
    pub id: u64,
    /// The input records it read again (its logged offset range); `None`: the offset log could
    /// not be read.
    pub records: Option<u64>,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct SparkKafkaOutcome {
    /// The run: results, producer, start-up, cluster, the kill and restart.
    pub run: KafkaJobOutcome,
    /// Spark's `StreamingQueryProgress` records (both runs' after a restart).
    pub progress: Vec<serde_json::Value>,
    /// After a restart: the batch the killed query had written to its offset log but not to
    /// its commit log, which the restarted query ran again with the same offsets (`None`: the
    /// kill came between batches, nothing was read twice).
    pub rerun_batch: Option<RerunBatch>,
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
        first_result_grace: FIRST_RESULT_GRACE,
    }
    .run(events, &mut |env| {
        if env.restart {
            rerun_batch = rerun_of(&launch.job.checkpoint());
        }
        Ok(command(launch, &jars, env))
    })?;
    Ok(SparkKafkaOutcome {
        run,
        progress: read_progress(&launch.job.progress())?,
        rerun_batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, kind: &str, batch: u64, text: &str) {
        std::fs::create_dir_all(dir.join(kind)).unwrap();
        std::fs::write(dir.join(kind).join(batch.to_string()), text).unwrap();
    }

    fn offsets(p0: i64, p1: i64) -> String {
        format!(
            "v1\n{{\"batchWatermarkMs\":0,\"batchTimestampMs\":1,\"conf\":{{}}}}\n{{\"in-abc\":{{\"1\":{p1},\"0\":{p0}}}}}"
        )
    }

    #[test]
    fn the_rerun_batch_reads_again_its_logged_offset_range() {
        let tmp = tempfile::tempdir().unwrap();
        let cp = tmp.path();
        assert_eq!(rerun_of(cp), None, "no offset log: nothing re-run");
        log(cp, "offsets", 0, &offsets(10, 12));
        log(cp, "commits", 0, "v1\n{}");
        assert_eq!(rerun_of(cp), None, "killed between batches: nothing re-run");
        log(cp, "offsets", 1, &offsets(60, 50));
        assert_eq!(
            rerun_of(cp),
            Some(RerunBatch {
                id: 1,
                records: Some(88)
            }),
            "50 + 38 records"
        );
        std::fs::remove_dir_all(cp.join("commits")).unwrap();
        std::fs::remove_file(cp.join("offsets").join("1")).unwrap();
        assert_eq!(
            rerun_of(cp),
            Some(RerunBatch {
                id: 0,
                records: Some(22)
            }),
            "the first batch, from offset 0"
        );
        log(cp, "offsets", 0, "v1\nnot json");
        assert_eq!(rerun_of(cp), Some(RerunBatch { id: 0, records: None }));
    }
}
