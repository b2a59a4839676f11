//! One generated Python job of a real engine (the PySpark script, the PyFlink job) on Kafka:
//! its Kafka source reads the input topic streamlab's producer writes, its results go to the
//! output topic streamlab's consumer reads (`read_committed`) and stamps — optionally with the
//! job killed mid-run and started again from its own checkpoint, to show its output exactly
//! once. The engine-specific parts are the job's command line (built again for the restart:
//! Flink names the checkpoint to restore, Spark finds it itself) and what the caller makes of
//! the outcome (`spark::kafka_run`, `flink::kafka_run`).
//!
//! The order matters for what is measured, as for Kafka Streams (`kafka_streams::run`):
//! 1. the broker is started (or the user's cluster used), the run's topics created and the
//!    output consumer opened — none of it timed;
//! 2. the job starts in its own process group under the `sh` lifeline; the run clock starts
//!    when the job says it is running (its ready file) — the JVM, the session and the first
//!    planning are excluded;
//! 3. the producer replays the schedule open-loop; the consumer stamps every result;
//! 4. a job on Kafka never sees the end of its input, so the run ends when the producer has
//!    finished, no result has come for the quiet period — counted from the later of the last
//!    result and the producer's end, longer while the job has delivered nothing yet
//!    ([`crate::kafka::quiet`]) — and no transaction is open on the output topic (a
//!    `read_committed` reader would still wait for it), or at the deadline; the group and the
//!    broker are ended.
//!
//! A crash (a `[[failure]]` of kind `crash` placed with `at`): at that instant of the run clock the job's whole process group gets
//! SIGKILL, the input topic's end offsets are read (what had been produced by then), and the
//! job is started again at once with the same checkpoint directory and output topic. The
//! restart's figures: when it was killed, when the new job was running again, and when its
//! first result came. A restarted job first restores and re-runs what its checkpoint lacks
//! (seconds on a cold JVM): its quiet period starts with its first result, or after
//! `first_result_grace` without one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::RunClock;

use crate::driver::{JobLaunch, StampedLine};
use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::kafka::consumer::OutputConsumer;
use crate::kafka::lifeline::spawn_with_lifeline;
use crate::kafka::producer::{ProducerReport, ScheduleProducer};
use crate::kafka::quiet::QuietEnd;
use crate::kafka::{KafkaCluster, KafkaDist, KafkaLink, RunTopics};
use crate::process::{describe_status, file_tail, TAIL_LINES};
use crate::CacheDir;

/// A generated job ready to run on Kafka (Spark's script or Flink's job alike).
#[derive(Clone, Debug)]
pub struct KafkaLaunch {
    /// The script, its directory, venv, engine, master, environment, timeouts and warm-up (the
    /// feeder addresses of a [`JobLaunch`] are not used).
    pub job: JobLaunch,
    /// The engine's name in the scenario (topic names).
    pub name: String,
    /// The user's cluster; `None`: a broker of streamlab's own.
    pub bootstrap_servers: Option<String>,
    /// After the last event is produced, no result for this long ends the run.
    pub quiet: Duration,
    /// Kill the job's process group at this instant of the run clock, then restart it.
    pub kill_at: Option<Nanos>,
}

/// One run of a [`KafkaLaunch`], with the engine's patience after a restart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KafkaJobRun<'a> {
    /// The job.
    pub launch: &'a KafkaLaunch,
    /// How long more a job, started or restarted, may take to deliver its first result (its
    /// first batch plans on a new JVM; restarted, it restores and re-runs first).
    pub first_result_grace: Duration,
}

/// What a job's command line is built from.
#[derive(Clone, Copy, Debug)]
pub struct KafkaJobEnv<'a> {
    /// The cluster's `bootstrap.servers`.
    pub bootstrap: &'a str,
    /// The run's topics.
    pub topics: &'a RunTopics,
    /// The file the job creates once it is running.
    pub ready: &'a Path,
    /// Whether this start is the restart after the kill.
    pub restart: bool,
}

impl KafkaJobEnv<'_> {
    /// The command line every Python job on Kafka starts with, wrapped in `env` (the lifeline's
    /// `sh` passes no environment of its own): `TMPDIR` in the run's directory, `extra_env` and
    /// the job's own environment, then the script with the topics, the campaign table, progress
    /// file, checkpoint directory, ready file and master. The engine appends its own arguments.
    pub(crate) fn command(&self, job: &JobLaunch, extra_env: &[String]) -> Command {
        let mut cmd = Command::new("env");
        cmd.arg(format!("TMPDIR={}", job.dir.join("tmp").display()))
            .arg("PYTHONUNBUFFERED=1")
            .args(extra_env);
        for (k, v) in &job.env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(&job.python)
            .arg(&job.script)
            .args(["--bootstrap", self.bootstrap])
            .args(["--input-topic", &self.topics.input])
            .args(["--output-topic", &self.topics.output])
            .arg("--campaigns")
            .arg(&job.campaigns)
            .arg("--progress")
            .arg(job.progress())
            .arg("--checkpoint")
            .arg(job.checkpoint())
            .arg("--ready")
            .arg(self.ready)
            .current_dir(&job.dir);
        if let Some(master) = &job.master {
            cmd.args(["--master", master]);
        }
        cmd
    }
}

/// A kill and restart, on the run clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRestart {
    /// When the job's group was killed.
    pub killed_at: Nanos,
    /// When the restarted job was running again: its ready file, or its first result if that
    /// came first.
    pub restarted_at: Nanos,
    /// When the first result after the restart arrived.
    pub first_result_at: Option<Nanos>,
    /// The input topic's end offset per partition at the kill: what had been produced.
    pub input_ends: Vec<i64>,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct KafkaJobOutcome {
    /// Every result, in receipt order.
    pub lines: Vec<StampedLine>,
    /// The producer's report.
    pub producer: ProducerReport,
    /// From starting the job to the run clock's zero.
    pub startup: Duration,
    /// Which cluster carried the run, for the notes.
    pub cluster: String,
    /// The kill and restart, if one was asked for.
    pub restart: Option<JobRestart>,
    /// Output records dropped because their transaction aborted (a killed job's open one).
    pub aborted: u64,
    /// The broker's output hop of every result outside the warm-up, ns (see
    /// [`crate::kafka::consumer::Consumed::output_hop_ns`]).
    pub output_hop_ns: Vec<u64>,
    /// When the run was stopped early (Ctrl-C), on the run clock; `lines` holds what was
    /// received up to then.
    pub interrupted: Option<Nanos>,
}

impl KafkaJobRun<'_> {
    fn failed(&self, what: String) -> RealEngineError {
        let log = self.launch.job.log();
        RealEngineError::EngineFailed {
            engine: self.launch.job.engine,
            what,
            tail: file_tail(&log, TAIL_LINES),
            log,
        }
    }

    /// Starts `cmd` and waits for its ready file; returns its group.
    fn start(&self, cmd: &Command, ready: &Path) -> Result<EngineGroup> {
        let job = &self.launch.job;
        let log = job.log();
        let _ = std::fs::remove_file(ready);
        let started = Instant::now();
        let mut group = spawn_with_lifeline(cmd, &log, job.engine)?;
        while !ready.exists() {
            if let Some(status) = group.leader().try_wait().map_err(RealEngineError::io(&log))? {
                return Err(self.failed(format!("exited before it was running ({})", describe_status(status))));
            }
            if started.elapsed() > job.ready_timeout {
                group.end();
                return Err(self.failed(format!("was not running within {:?}", job.ready_timeout)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(group)
    }

    /// Runs the job over `events` (in arrival order); `command` builds its command line for
    /// each start (wrapped in `env`: the lifeline's `sh` passes no environment of its own).
    pub fn run(
        &self,
        events: &[Event],
        command: &mut dyn FnMut(&KafkaJobEnv<'_>) -> Result<Command>,
    ) -> Result<KafkaJobOutcome> {
        let io = RealEngineError::io;
        let cache = CacheDir::from_env()?;
        let dist = KafkaDist::in_cache(&cache);
        dist.require()?;
        let launch = self.launch;
        let job = &launch.job;
        let dir = &job.dir;
        std::fs::create_dir_all(dir.join("tmp")).map_err(io(dir))?;

        let cluster = KafkaCluster::start(launch.bootstrap_servers.as_deref(), &dist, &dir.join("kafka"))?;
        let bootstrap = cluster.bootstrap();
        let topics = RunTopics::named(&launch.name, job.partitions);
        cluster.create_topics(&topics)?;
        let clock = RunClock::new(job.warmup);
        let consumer = OutputConsumer::start(&bootstrap, &topics.output, job.partitions, clock.clone())?;
        let ready: PathBuf = dir.join("ready");
        let env = |restart| KafkaJobEnv {
            bootstrap: &bootstrap,
            topics: &topics,
            ready: &ready,
            restart,
        };

        let started = Instant::now();
        let mut group = self.start(&command(&env(false))?, &ready)?;
        let producer = ScheduleProducer::start(&bootstrap, &topics.input, events, job.partitions, clock.clone())?;
        let zero = clock.zero().expect("the producer started the clock");
        let startup = zero.saturating_duration_since(started);

        let log = job.log();
        let mut restart: Option<JobRestart> = None;
        let mut received_at_kill = 0;
        let mut end = QuietEnd::new(
            launch.quiet,
            self.first_result_grace,
            consumer.received(),
            Instant::now(),
        );
        loop {
            if job.watch.stop_requested() {
                // Stopped (Ctrl-C): the job goes with its group; what came back so far is kept.
                let at = clock.now();
                group.end();
                job.watch.stopped(at);
                let producer = producer.stop_with_report();
                let (consumed, _) = consumer.stop_keeping()?;
                return Ok(KafkaJobOutcome {
                    lines: consumed.lines,
                    producer,
                    startup,
                    cluster: cluster.describe(),
                    restart,
                    aborted: consumed.aborted,
                    output_hop_ns: consumed.output_hop_ns,
                    interrupted: Some(at),
                });
            }
            if let Some(status) = group.leader().try_wait().map_err(io(&log))? {
                return Err(self.failed(format!("exited during the run ({})", describe_status(status))));
            }
            if zero.elapsed() > job.run_timeout {
                group.end();
                return Err(self.failed(format!(
                    "was still delivering {:?} after the schedule started; ended with its process group",
                    job.run_timeout
                )));
            }
            if let (Some(at), None) = (launch.kill_at, &restart) {
                if clock.now() >= at {
                    group.kill();
                    let killed_at = clock.now();
                    received_at_kill = consumer.received();
                    let input_ends = KafkaLink::connect(&bootstrap, Duration::from_secs(10))?
                        .end_offsets(&topics.input, topics.partitions)?;
                    group = self.start(&command(&env(true))?, &ready)?;
                    end.restarted(received_at_kill, launch.quiet, Instant::now());
                    restart = Some(JobRestart {
                        killed_at,
                        restarted_at: clock.now(),
                        first_result_at: None,
                        input_ends,
                    });
                }
            }
            let count = consumer.received();
            job.watch.publish(&clock, producer.sent(), count);
            if let Some(r) = restart
                .as_mut()
                .filter(|r| r.first_result_at.is_none() && count > received_at_kill)
            {
                r.first_result_at = Some(clock.now());
            }
            if end.observe(count, producer.is_finished(), Instant::now()) && !consumer.transaction_open() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let producer = producer.wait()?;
        let consumed = consumer.stop()?;
        group.end();
        // The restarted job may deliver before its ready file is seen (Flink commits the
        // transaction its checkpoint pre-committed as soon as it is restored): the first result
        // after the kill is the consumer's stamp, and the job was running again by then.
        if let Some(r) = restart.as_mut() {
            r.first_result_at = consumed.lines.get(received_at_kill as usize).map(|l| l.stamp);
            r.restarted_at = r.restarted_at.min(r.first_result_at.unwrap_or(Nanos::MAX));
        }
        let cluster_note = cluster.describe();
        drop(cluster);
        Ok(KafkaJobOutcome {
            lines: consumed.lines,
            producer,
            startup,
            cluster: cluster_note,
            restart,
            aborted: consumed.aborted,
            output_hop_ns: consumed.output_hop_ns,
            interrupted: None,
        })
    }
}

/// A `partition,offset` file (what a restarted Kafka Streams application or Flink job writes of
/// the input offsets its consumer group had committed).
pub(crate) fn read_committed_offsets(path: &Path) -> Result<BTreeMap<i32, i64>> {
    let text = std::fs::read_to_string(path).map_err(RealEngineError::io(path))?;
    let mut offsets = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .split_once(',')
            .and_then(|(p, o)| Some((p.trim().parse().ok()?, o.trim().parse().ok()?)));
        let Some((p, o)) = parsed else {
            return Err(RealEngineError::Kafka(format!(
                "{}: \"{line}\" is not `partition,offset`",
                path.display()
            )));
        };
        offsets.insert(p, o);
    }
    Ok(offsets)
}

/// Input records a restart reads again: past the committed offsets (none committed: from 0) up
/// to the input's end offsets at the kill (`ends`, by partition).
pub(crate) fn replayed_after(ends: &[i64], committed: &BTreeMap<i32, i64>) -> u64 {
    ends.iter()
        .enumerate()
        .map(|(p, &end)| (end - committed.get(&(p as i32)).copied().unwrap_or(0)).max(0) as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_restart_replays_is_the_input_past_the_committed_offsets() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("committed");
        std::fs::write(&file, "0,40\n1,75\n").unwrap();
        let committed = read_committed_offsets(&file).unwrap();
        assert_eq!(
            replayed_after(&[50, 75, 10], &committed),
            20,
            "10 past offset 40, none past 75, 10 uncommitted"
        );
        std::fs::write(&file, "0;40\n").unwrap();
        let err = read_committed_offsets(&file).unwrap_err().to_string();
        assert!(err.contains("is not `partition,offset`"), "{err}");
    }
}
