//! One run of the generated Kafka Streams application, between streamlab's producer and
//! consumer, on a broker streamlab owns (or the user's cluster).
//!
//! The order matters for what is measured, as for the feeder-driven engines:
//! 1. the application is compiled (`javac` against the pinned Kafka's jars), the broker started
//!    and the run's topics created, and the output consumer opened — none of it timed;
//! 2. the application starts in its own process group, under a lifeline, its state directory,
//!    log and ready file in the run's directory; the run clock starts only when Kafka Streams
//!    reports `RUNNING` (every task assigned) and the producer has every partition open;
//! 3. the producer replays the schedule open-loop; the consumer stamps every result on receipt;
//! 4. a Kafka Streams application never ends by itself, so the run ends when the producer has
//!    finished, no result has arrived for the quiet period (the commit interval plus two
//!    seconds: a cached aggregate is forwarded at the latest at the next commit; ten seconds more
//!    after a crash, see [`RESTART_QUIET`]; counted from the later of the last result and the
//!    producer's end, [`crate::kafka::quiet`]) and no
//!    transaction is open on the output topic (a `read_committed` reader would still wait), or
//!    at the run deadline; then the consumer stops, the application's group and the broker's
//!    are ended.
//!
//! A `[[failure]]` crash (`crash_at`) kills the application's process group with SIGKILL at
//! that instant of the run clock — no close, no last commit — while the producer goes on, and
//! starts it again on the same `application.id` and state directory (rejoining as the same
//! static member). It resumes from the input offsets its group committed; under
//! `exactly_once_v2` the killed instance's open transaction is aborted (fenced by the new
//! producer when the transactional id is the same, which Kafka Streams keeps in the state
//! directory of a stateful application, or at `transaction.timeout.ms` otherwise) and
//! streamlab's `read_committed` consumer drops its records. Downtime, catch-up and duplicates
//! are measured by the scenario layer from the stamped results; what was read again is the
//! input's end offsets at the kill minus the committed offsets the restarted application
//! found (written by the generated application before it starts).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::RunClock;

use crate::cache::CacheDir;
use crate::driver::StampedLine;
use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::helper_jar::JavaTools;
use crate::java::JavaInstall;
use crate::kafka::consumer::OutputConsumer;
use crate::kafka::job_run::{read_committed_offsets, replayed_after};
use crate::kafka::lifeline::spawn_with_lifeline;
use crate::kafka::producer::{ProducerReport, ScheduleProducer};
use crate::kafka::quiet::QuietEnd;
use crate::kafka::{KafkaCluster, KafkaDist, KafkaLink, RunTopics};
use crate::kafka_streams::translate::CLASS_NAME;
use crate::process::{describe_status, file_tail, run_logged, StepLog, TAIL_LINES};
use crate::watch::RunWatch;

/// Added to the quiet period once the application was killed and restarted: Kafka Streams'
/// `transaction.timeout.ms` under exactly-once (10 s), the longest the restarted application
/// may wait for the killed one's open transaction before it delivers the rest.
const RESTART_QUIET: Duration = Duration::from_secs(10);

/// How long more the application, started or restarted, may take to deliver its first result
/// before its quiet period counts as for one that delivers.
const FIRST_RESULT_GRACE: Duration = Duration::from_secs(30);

/// `max.partition.fetch.bytes` of the application's main consumer on a run with a crash: about
/// twenty input records (a trace row and its record overhead are about 100 bytes), so the
/// backlog read again after the restart comes from both partitions a little at a time.
const CRASH_FETCH_BYTES: u32 = 2048;

/// A generated application ready to run.
#[derive(Clone, Debug)]
pub struct KafkaStreamsLaunch {
    /// The run's directory for this engine (source, classes, state, logs, the broker's own
    /// directory).
    pub dir: PathBuf,
    /// The engine's name (topic names, messages).
    pub name: String,
    /// The application's Java source ([`crate::kafka_streams::translate::translate`]).
    pub source: String,
    /// `StreamsConfig` properties: the engine's keys and its `conf`.
    pub properties: Vec<(String, String)>,
    /// The campaign table's file (already written).
    pub campaigns: PathBuf,
    /// Source partitions: partitions of the input and output topics.
    pub partitions: u32,
    /// The user's cluster; `None`: a broker of streamlab's own.
    pub bootstrap_servers: Option<String>,
    /// How long the application may take to reach `RUNNING`.
    pub ready_timeout: Duration,
    /// How long the run may take once the schedule has started.
    pub run_timeout: Duration,
    /// After the last event is produced, no result for this long ends the run.
    pub quiet: Duration,
    /// Results stamped before this instant of the run clock are flagged as warm-up.
    pub warmup: Nanos,
    /// Kill the application's process group at this instant of the run clock and restart it
    /// from its committed offsets (a `[[failure]]` crash); `None`: an uninterrupted run.
    pub crash_at: Option<Nanos>,
    /// Who watches the run (events produced, results received).
    pub watch: RunWatch,
}

/// A crash the run injected and the restart that followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashReport {
    /// When the process group was killed, run clock.
    pub at: Nanos,
    /// When the restarted application was `RUNNING` again, run clock.
    pub restarted_at: Nanos,
    /// Input records after the offsets the killed instance had committed, up to the input's
    /// end at the kill: what the restart reads again (an upper bound: the killed instance may
    /// not yet have fetched the newest of them).
    pub replayed: u64,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct KafkaStreamsOutcome {
    /// Every result, in receipt order.
    pub lines: Vec<StampedLine>,
    /// The producer's report: events produced and the sending lag.
    pub producer: ProducerReport,
    /// From starting the application to the run clock's zero, wall clock.
    pub startup: Duration,
    /// From the run clock's zero to the end of the run, wall clock.
    pub run_time: Duration,
    /// Which cluster carried the run, for the notes.
    pub cluster: String,
    /// The injected crash, if any.
    pub crash: Option<CrashReport>,
    /// Output records dropped because their transaction aborted (a killed instance's open
    /// transaction under `exactly_once_v2`).
    pub aborted: u64,
    /// The broker's output hop of every result outside the warm-up, ns (see
    /// [`crate::kafka::consumer::Consumed::output_hop_ns`]).
    pub output_hop_ns: Vec<u64>,
    /// When the run was stopped early (Ctrl-C), on the run clock; `lines` holds what was
    /// received up to then.
    pub interrupted: Option<Nanos>,
    /// Input records Kafka Streams dropped as late: stream time had passed their window's end
    /// plus the grace period (its WARN "Skipping record for expired window", counted in
    /// `engine.log`). After a crash the backlog is read again one task's chunk at a time, so
    /// stream time can jump ahead of another partition's records: a grace shorter than that
    /// skew drops them, and the windows miss them.
    pub late_dropped: u64,
}

/// What Kafka Streams logs (at WARN) for each record it drops because its window has closed.
pub const EXPIRED_WINDOW: &str = "Skipping record for expired window";

/// The records `log` says Kafka Streams dropped as late ([`EXPIRED_WINDOW`]).
pub fn late_dropped_in(log: &std::path::Path) -> u64 {
    std::fs::read_to_string(log).map_or(0, |text| text.matches(EXPIRED_WINDOW).count() as u64)
}

impl KafkaStreamsLaunch {
    /// The application's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("engine.log")
    }
}

/// Compiles and runs `launch` over `events` (in arrival order).
pub fn run_kafka_streams(launch: &KafkaStreamsLaunch, events: &[Event]) -> Result<KafkaStreamsOutcome> {
    let io = RealEngineError::io;
    let cache = CacheDir::from_env()?;
    let dist = KafkaDist::in_cache(&cache);
    dist.require()?;
    let java = JavaInstall::find().and_then(JavaInstall::require_supported)?;
    let classes = compile(launch, &dist, &JavaTools::beside(&java)?)?;

    let cluster = KafkaCluster::start(launch.bootstrap_servers.as_deref(), &dist, &launch.dir.join("kafka"))?;
    let bootstrap = cluster.bootstrap();
    let topics = RunTopics::named(&launch.name, launch.partitions);
    cluster.create_topics(&topics)?;

    let properties = launch.dir.join("streams.properties");
    let mut text = String::from("# Generated by streamlab for this run.\n");
    let app_id = topics.input.trim_end_matches("-events").to_string();
    for (k, v) in [
        ("application.id", app_id.as_str()),
        ("bootstrap.servers", bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
    ] {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push_str(&format!("state.dir={}\n", launch.dir.join("state").display()));
    if launch.crash_at.is_some() {
        // The restarted instance rejoins as the same static member, as a restarted pod with a
        // stable `group.instance.id` does: it takes its partitions back at once. Without it
        // the killed member holds them until `session.timeout.ms` (45 s) has passed.
        text.push_str(&format!("group.instance.id={app_id}-instance\n"));
        // The restarted instance reads its backlog again; with the consumer's default fetch
        // (1 MiB per partition) one input partition's whole backlog comes, and is written to
        // the repartition topic, before the other's, so the windowed task's stream time runs
        // seconds of event time ahead of the other partition's records, which it then drops as
        // late (past window end + grace: seen, "Skipping record for expired window"). Small
        // fetches interleave the partitions' backlogs a few records at a time. In steady state
        // a fetch holds a few records anyway, so the run's figures are not changed by it.
        text.push_str(&format!(
            "main.consumer.max.partition.fetch.bytes={CRASH_FETCH_BYTES}\n"
        ));
    }
    for (k, v) in &launch.properties {
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(&properties, text).map_err(io(&properties))?;

    let clock = RunClock::new(launch.warmup);
    let consumer = OutputConsumer::start(&bootstrap, &topics.output, launch.partitions, clock.clone())?;
    let tmp = launch.dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let app = AppCommand {
        launch,
        java: &java.path,
        classpath: format!("{}:{}", classes.display(), dist.classpath().display()),
        properties: &properties,
        topics: &topics,
    };
    let log = launch.log();
    let started = Instant::now();
    let mut group = app.start(&log)?;
    app.wait_running(&mut group, &log, started)?;
    let producer = ScheduleProducer::start(&bootstrap, &topics.input, events, launch.partitions, clock.clone())?;
    let zero = clock.zero().expect("the producer started the clock");
    let startup = zero.saturating_duration_since(started);

    let mut crash = None;
    let mut end = QuietEnd::new(launch.quiet, FIRST_RESULT_GRACE, consumer.received(), Instant::now());
    let quiet_used = loop {
        if launch.watch.stop_requested() {
            // Stopped (Ctrl-C): the application goes with its group; what came back is kept.
            let at = clock.now();
            group.end();
            launch.watch.stopped(at);
            let producer = producer.stop_with_report();
            let (consumed, _) = consumer.stop_keeping()?;
            return Ok(KafkaStreamsOutcome {
                lines: consumed.lines,
                producer,
                startup,
                run_time: zero.elapsed(),
                cluster: cluster.describe(),
                crash,
                aborted: consumed.aborted,
                output_hop_ns: consumed.output_hop_ns,
                interrupted: Some(at),
                late_dropped: late_dropped_in(&log),
            });
        }
        if let Some(status) = group.leader().try_wait().map_err(io(&log))? {
            return Err(app.failed(&log, format!("exited during the run ({})", describe_status(status))));
        }
        if zero.elapsed() > launch.run_timeout {
            group.end();
            return Err(app.failed(
                &log,
                format!(
                    "was still delivering {:?} after the schedule started; ended with its process group",
                    launch.run_timeout
                ),
            ));
        }
        if let Some(at) = launch.crash_at.filter(|&at| crash.is_none() && clock.now() >= at) {
            crash = Some(app.crash_and_restart(&mut group, &clock, &bootstrap, at)?);
            // After a restart, quiet lasts longer: the restarted application may deliver one
            // task's results and then wait for the killed one's open transaction (on its
            // repartition topic) to abort before the rest — up to `transaction.timeout.ms`
            // (Kafka Streams' default under exactly-once: 10 s) when its transactional id is
            // new. A run that ended in that gap would miss the final results.
            end.restarted(consumer.received(), launch.quiet + RESTART_QUIET, Instant::now());
        }
        let count = consumer.received();
        launch.watch.publish(&clock, producer.sent(), count);
        if end.observe(count, producer.is_finished(), Instant::now()) && !consumer.transaction_open() {
            break end.period();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run_time = zero.elapsed().saturating_sub(quiet_used);
    let producer = producer.wait()?;
    let consumed = consumer.stop()?;
    group.end();
    let cluster_note = cluster.describe();
    drop(cluster);
    Ok(KafkaStreamsOutcome {
        lines: consumed.lines,
        producer,
        startup,
        run_time,
        cluster: cluster_note,
        crash,
        aborted: consumed.aborted,
        output_hop_ns: consumed.output_hop_ns,
        interrupted: None,
        late_dropped: late_dropped_in(&log),
    })
}

/// How the application is started (and started again after a crash).
struct AppCommand<'a> {
    launch: &'a KafkaStreamsLaunch,
    java: &'a std::path::Path,
    classpath: String,
    properties: &'a std::path::Path,
    topics: &'a RunTopics,
}

impl AppCommand<'_> {
    fn ready(&self) -> PathBuf {
        self.launch.dir.join("ready")
    }

    fn committed(&self) -> PathBuf {
        self.launch.dir.join("committed-offsets")
    }

    fn failed(&self, log: &std::path::Path, what: String) -> RealEngineError {
        RealEngineError::EngineFailed {
            engine: "kafka-streams",
            what,
            log: log.to_path_buf(),
            tail: file_tail(log, TAIL_LINES),
        }
    }

    /// Starts the application in its own process group, its output appended to `log`.
    fn start(&self, log: &std::path::Path) -> Result<EngineGroup> {
        let ready = self.ready();
        let _ = std::fs::remove_file(&ready);
        let log4j = self.launch.dir.join("log4j2.properties");
        std::fs::write(&log4j, crate::kafka::broker::LOG4J2).map_err(RealEngineError::io(&log4j))?;
        let mut app = Command::new(self.java);
        app.arg("-Xms128m")
            .arg("-Xmx512m")
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg(format!("-Djava.io.tmpdir={}", self.launch.dir.join("tmp").display()))
            .arg("-cp")
            .arg(&self.classpath)
            .arg(CLASS_NAME)
            .arg(self.properties)
            .arg(&self.topics.input)
            .arg(&self.topics.output)
            .arg(&self.launch.campaigns)
            .arg(&ready)
            .arg(self.committed())
            .current_dir(&self.launch.dir);
        spawn_with_lifeline(&app, log, "kafka-streams")
    }

    /// Waits until the application reports `RUNNING`.
    fn wait_running(&self, group: &mut EngineGroup, log: &std::path::Path, started: Instant) -> Result<()> {
        while !self.ready().exists() {
            if let Some(status) = group.leader().try_wait().map_err(RealEngineError::io(log))? {
                return Err(self.failed(
                    log,
                    format!("exited before it was RUNNING ({})", describe_status(status)),
                ));
            }
            if started.elapsed() > self.launch.ready_timeout {
                group.end();
                return Err(self.failed(log, format!("was not RUNNING within {:?}", self.launch.ready_timeout)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the group (SIGKILL: no close, no last commit), reads the input's end offsets,
    /// starts the application again on the same `application.id` and state directory and
    /// waits until it is `RUNNING`: Kafka Streams resumes from the committed offsets (and under
    /// `exactly_once_v2` the new producer fences the old one, whose open transaction aborts).
    fn crash_and_restart(
        &self,
        group: &mut EngineGroup,
        clock: &RunClock,
        bootstrap: &str,
        planned: Nanos,
    ) -> Result<CrashReport> {
        group.kill();
        let at = clock.now().max(planned);
        let ends = KafkaLink::connect(bootstrap, Duration::from_secs(10))?
            .end_offsets(&self.topics.input, self.topics.partitions)?;
        let log = self.launch.log();
        let started = Instant::now();
        *group = self.start(&log)?;
        self.wait_running(group, &log, started)?;
        let restarted_at = clock.now();
        let replayed = replayed_after(&ends, &read_committed_offsets(&self.committed())?);
        Ok(CrashReport {
            at,
            restarted_at,
            replayed,
        })
    }
}

/// Writes the source and compiles it; returns the classes directory.
fn compile(launch: &KafkaStreamsLaunch, dist: &KafkaDist, tools: &JavaTools) -> Result<PathBuf> {
    let io = RealEngineError::io;
    let src = launch.dir.join("src");
    let classes = launch.dir.join("classes");
    for dir in [&src, &classes] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let file = src.join(format!("{CLASS_NAME}.java"));
    std::fs::write(&file, &launch.source).map_err(io(&file))?;
    let log = StepLog::create(launch.dir.join("build.log"))?;
    run_logged(
        Command::new(&tools.javac)
            .args(["-nowarn", "-encoding", "UTF-8", "--release", "17", "-d"])
            .arg(&classes)
            .arg("-cp")
            .arg(dist.classpath())
            .arg(&file),
        "kafka-streams: javac the generated application",
        &log,
    )?;
    Ok(classes)
}
