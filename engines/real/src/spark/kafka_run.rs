//! One run of the generated PySpark script on Kafka (`transport = "kafka"`): Spark's Kafka source
//! reads the input topic streamlab's producer writes, and the results go to the output topic
//! streamlab's consumer reads and stamps — optionally with the job killed mid-run and restarted
//! from its own checkpoint, to show its output exactly once.
//!
//! The order matters for what is measured, as for Kafka Streams (`kafka_streams::run`):
//! 1. the broker is started (or the user's cluster used), the run's topics created and the
//!    output consumer opened — none of it timed;
//! 2. the script starts in its own process group under the `sh` lifeline, Spark's Kafka
//!    connector on its class path (`PYSPARK_SUBMIT_ARGS`: `--jars`, `--driver-class-path`, so the
//!    driver's transactional producer can reach `kafka-clients` too); the run clock starts when
//!    the query has started (the script's ready file) — the JVM, the session and the first
//!    planning are excluded;
//! 3. the producer replays the schedule open-loop; the consumer stamps every result;
//! 4. a query on Kafka never sees the end of its input, so the run ends when the producer has
//!    finished and no result has come for the quiet period, or at the deadline; the group and
//!    the broker are ended.
//!
//! A crash (`kill_at`): at that instant of the run clock the job's whole process group gets
//! SIGKILL; the script is started again at once with the same checkpoint location and output
//! topic. Spark re-runs the batch its commit log lacks; the script's sink skips a batch the
//! topic already holds and `initTransactions` aborts the one the killed job left open (see
//! `kafka_runtime.py`), so a read_committed reader sees every batch once. The restart's figures:
//! when it was killed, when the new query had started, and when its first result came.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::RunClock;

use crate::driver::{read_progress, JobLaunch, StampedLine};
use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::kafka::consumer::OutputConsumer;
use crate::kafka::lifeline::spawn_with_lifeline;
use crate::kafka::producer::{ProducerReport, ScheduleProducer};
use crate::kafka::spark_connector::SparkKafkaJars;
use crate::kafka::{KafkaCluster, KafkaDist, RunTopics};
use crate::process::{describe_status, file_tail, TAIL_LINES};
use crate::CacheDir;

/// How long a restarted query may take to deliver its first result before its quiet period
/// counts as for a query that never stopped.
const RESTART_GRACE: Duration = Duration::from_secs(30);

/// A generated script ready to run on Kafka.
#[derive(Clone, Debug)]
pub struct SparkKafkaLaunch {
    /// The script, its directory, venv, master, environment, timeouts and warm-up (the feeder
    /// addresses of a [`JobLaunch`] are not used).
    pub job: JobLaunch,
    /// The engine's name (topic names).
    pub name: String,
    /// The user's cluster; `None`: a broker of streamlab's own.
    pub bootstrap_servers: Option<String>,
    /// After the last event is produced, no result for this long ends the run.
    pub quiet: Duration,
    /// Kill the job's process group at this instant of the run clock, then restart it.
    pub kill_at: Option<Nanos>,
}

/// A crash and restart, on the run clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparkRestart {
    /// When the job's group was killed.
    pub killed_at: Nanos,
    /// When the restarted query had started again (its ready file).
    pub restarted_at: Nanos,
    /// When the first result after the restart arrived.
    pub first_result_at: Option<Nanos>,
    /// The batch the killed query had written to its offset log but not to its commit log,
    /// which the restarted query runs again with the same offsets.
    pub rerun_batch: Option<u64>,
}

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
    /// Every result, in receipt order.
    pub lines: Vec<StampedLine>,
    /// The producer's report.
    pub producer: ProducerReport,
    /// Spark's `StreamingQueryProgress` records (both runs' after a restart).
    pub progress: Vec<serde_json::Value>,
    /// From starting the script to the run clock's zero.
    pub startup: Duration,
    /// Which cluster carried the run, for the notes.
    pub cluster: String,
    /// The crash and restart, if one was asked for.
    pub restart: Option<SparkRestart>,
    /// When the run was stopped early (Ctrl-C), on the run clock; `lines` holds what was
    /// received up to then.
    pub interrupted: Option<Nanos>,
}

/// The script's command line on Kafka, wrapped in `env` (the lifeline's `sh` passes no
/// environment of its own).
fn command(launch: &SparkKafkaLaunch, jars: &str, bootstrap: &str, topics: &RunTopics, ready: &Path) -> Command {
    let job = &launch.job;
    let tmp = job.dir.join("tmp");
    let mut cmd = Command::new("env");
    cmd.arg(format!("TMPDIR={}", tmp.display()))
        .arg(format!("SPARK_LOCAL_DIRS={}", tmp.display()))
        .arg("PYTHONUNBUFFERED=1")
        .arg(format!(
            "PYSPARK_SUBMIT_ARGS=--jars {jars} --driver-class-path {} pyspark-shell",
            jars.replace(',', ":")
        ));
    for (k, v) in &job.env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(&job.python)
        .arg(&job.script)
        .args([
            "--bootstrap",
            bootstrap,
            "--input-topic",
            &topics.input,
            "--output-topic",
            &topics.output,
        ])
        .arg("--campaigns")
        .arg(&job.campaigns)
        .arg("--progress")
        .arg(job.progress())
        .arg("--checkpoint")
        .arg(job.checkpoint())
        .arg("--ready")
        .arg(ready)
        .current_dir(&job.dir);
    if let Some(master) = &job.master {
        cmd.args(["--master", master]);
    }
    cmd
}

/// Starts the script and waits for its query to start; returns its group.
fn start(launch: &SparkKafkaLaunch, cmd: &Command, ready: &Path) -> Result<EngineGroup> {
    let log = launch.job.log();
    let _ = std::fs::remove_file(ready);
    let started = Instant::now();
    let mut group = spawn_with_lifeline(cmd, &log, "spark")?;
    while !ready.exists() {
        if let Some(status) = group.leader().try_wait().map_err(RealEngineError::io(&log))? {
            return Err(failed(
                launch,
                format!("exited before its query started ({})", describe_status(status)),
            ));
        }
        if started.elapsed() > launch.job.ready_timeout {
            group.end();
            return Err(failed(
                launch,
                format!("its query had not started within {:?}", launch.job.ready_timeout),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(group)
}

fn failed(launch: &SparkKafkaLaunch, what: String) -> RealEngineError {
    let log = launch.job.log();
    RealEngineError::EngineFailed {
        engine: "spark",
        what,
        tail: file_tail(&log, TAIL_LINES),
        log,
    }
}

/// Runs `launch` over `events` (in arrival order) on Kafka.
pub fn run_spark_on_kafka(launch: &SparkKafkaLaunch, events: &[Event]) -> Result<SparkKafkaOutcome> {
    let io = RealEngineError::io;
    let cache = CacheDir::from_env()?;
    let dist = KafkaDist::in_cache(&cache);
    dist.require()?;
    let jars = SparkKafkaJars::in_cache(&cache).spark_jars()?;
    let dir = &launch.job.dir;
    std::fs::create_dir_all(dir.join("tmp")).map_err(io(dir))?;

    let cluster = KafkaCluster::start(launch.bootstrap_servers.as_deref(), &dist, &dir.join("kafka"))?;
    let bootstrap = cluster.bootstrap();
    let topics = RunTopics::named(&launch.name, launch.job.partitions);
    cluster.create_topics(&topics)?;
    let clock = RunClock::new(launch.job.warmup);
    let consumer = OutputConsumer::start(&bootstrap, &topics.output, launch.job.partitions, clock.clone())?;
    let ready: PathBuf = dir.join("ready");
    let cmd = command(launch, &jars, &bootstrap, &topics, &ready);

    let started = Instant::now();
    let mut group = start(launch, &cmd, &ready)?;
    let producer = ScheduleProducer::start(&bootstrap, &topics.input, events, launch.job.partitions, clock.clone())?;
    let zero = clock.zero().expect("the producer started the clock");
    let startup = zero.saturating_duration_since(started);

    let log = launch.job.log();
    let mut restart: Option<SparkRestart> = None;
    let mut received_at_kill = 0;
    let (mut last_count, mut last_change) = (consumer.received(), Instant::now());
    loop {
        if launch.job.watch.stop_requested() {
            // Stopped (Ctrl-C): the job goes with its group; what came back so far is kept.
            let at = clock.now();
            group.end();
            launch.job.watch.stopped(at);
            let producer = producer.stop_with_report();
            let (consumed, _) = consumer.stop_keeping()?;
            return Ok(SparkKafkaOutcome {
                lines: consumed.lines,
                producer,
                progress: read_progress(&launch.job.progress()).unwrap_or_default(),
                startup,
                cluster: cluster.describe(),
                restart,
                interrupted: Some(at),
            });
        }
        if let Some(status) = group.leader().try_wait().map_err(io(&log))? {
            return Err(failed(
                launch,
                format!("exited during the run ({})", describe_status(status)),
            ));
        }
        if zero.elapsed() > launch.job.run_timeout {
            group.end();
            return Err(failed(
                launch,
                format!(
                    "was still delivering {:?} after the schedule started; ended with its process group",
                    launch.job.run_timeout
                ),
            ));
        }
        if let (Some(at), None) = (launch.kill_at, restart) {
            if clock.now() >= at {
                let killed_at = clock.now();
                let _ = killpg(Pid::from_raw(group.id()), Signal::SIGKILL);
                group.end();
                received_at_kill = consumer.received();
                let rerun_batch = uncommitted_batch(&launch.job.checkpoint());
                group = start(launch, &cmd, &ready)?;
                last_change = Instant::now();
                restart = Some(SparkRestart {
                    killed_at,
                    restarted_at: clock.now(),
                    first_result_at: None,
                    rerun_batch,
                });
            }
        }
        let count = consumer.received();
        launch.job.watch.publish(&clock, producer.sent(), count);
        if let Some(r) = restart
            .as_mut()
            .filter(|r| r.first_result_at.is_none() && count > received_at_kill)
        {
            r.first_result_at = Some(clock.now());
        }
        if count != last_count {
            (last_count, last_change) = (count, Instant::now());
        }
        // A restarted query first plans and re-runs its uncommitted batch (seconds on a cold JVM):
        // its quiet period starts with its first result, or after RESTART_GRACE without one.
        let restarted_quiet = match restart {
            Some(r) if r.first_result_at.is_none() => launch.quiet + RESTART_GRACE,
            _ => launch.quiet,
        };
        if producer.is_finished() && last_change.elapsed() >= restarted_quiet {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let producer = producer.wait()?;
    let lines = consumer.stop()?.lines;
    group.end();
    let cluster_note = cluster.describe();
    drop(cluster);
    Ok(SparkKafkaOutcome {
        lines,
        producer,
        progress: read_progress(&launch.job.progress())?,
        startup,
        cluster: cluster_note,
        restart,
        interrupted: None,
    })
}
