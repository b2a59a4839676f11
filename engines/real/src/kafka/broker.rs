//! A single-node Apache Kafka broker (KRaft: broker and controller in one JVM, no ZooKeeper)
//! that streamlab formats, starts and ends for one run, inside the run's directory.
//!
//! Invariants:
//! * everything it writes is under its directory (`server.properties`, `log4j2.properties`, the
//!   log segments in `data/`, `broker.log`), so two runs never share a log and nothing is left
//!   outside the results;
//! * it listens on loopback only, on free ports picked when it starts (the broker and the
//!   controller listener), so parallel runs and a user's own Kafka on 9092 do not collide;
//! * it runs in a process group of its own ([`EngineGroup`]), ended by id when [`Broker`] is
//!   dropped — SIGTERM (a clean shutdown), then SIGKILL after the grace period;
//! * it has a lifeline ([`crate::kafka::lifeline`]): streamlab's death, even by SIGKILL, ends
//!   its group, and the group's leader exits when the JVM does;
//! * [`Broker::start`] returns only when the broker answers a metadata request; its start-up
//!   (format, JVM, KRaft election) happens before any run clock starts and is never part of a
//!   latency.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::kafka::client::KafkaLink;
use crate::kafka::lifeline::spawn_with_lifeline;
use crate::process::{describe_status, file_tail, run_logged, StepLog, TAIL_LINES};

/// The cluster id every run's broker is formatted with (base64url of `streamlab-kafka1`): each
/// run has its own data directory, so one fixed id is enough.
const CLUSTER_ID: &str = "c3RyZWFtbGFiLWthZmthMQ";

/// How to start one broker.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// The broker's own directory (created; an old one is replaced).
    pub dir: PathBuf,
    /// The `java` to run it with.
    pub java: PathBuf,
    /// The class path: the pinned Kafka's `libs/*` ([`crate::kafka::KafkaDist::classpath`]).
    pub classpath: PathBuf,
    /// How long it may take to answer.
    pub ready_timeout: Duration,
}

/// A running broker; ended (with its whole process group) when dropped.
#[derive(Debug)]
pub struct Broker {
    group: EngineGroup,
    bootstrap: SocketAddr,
    log: PathBuf,
    /// How long it took from starting the JVM to the first answer.
    pub startup: Duration,
}

impl Broker {
    /// Formats and starts a broker in `options.dir` and waits until it answers.
    pub fn start(options: &BrokerOptions) -> Result<Broker> {
        let io = RealEngineError::io;
        // The JVM runs inside the directory: the paths it is given must not be relative to ours
        // (`--out results` would name `results/.../results/...`).
        let options = &BrokerOptions {
            dir: std::path::absolute(&options.dir).map_err(io(&options.dir))?,
            ..options.clone()
        };
        if options.dir.exists() {
            std::fs::remove_dir_all(&options.dir).map_err(io(&options.dir))?;
        }
        std::fs::create_dir_all(&options.dir).map_err(io(&options.dir))?;
        let (port, controller_port) = (free_port()?, free_port()?);
        let properties = options.dir.join("server.properties");
        let text = server_properties(&options.dir.join("data"), port, controller_port);
        std::fs::write(&properties, text).map_err(io(&properties))?;
        let log4j = options.dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J2).map_err(io(&log4j))?;
        let log_path = options.dir.join("broker.log");
        let log = StepLog::create(&log_path)?;
        let jvm = |main: &str| {
            let mut cmd = Command::new(&options.java);
            cmd.arg("-Xms128m")
                .arg("-Xmx512m")
                .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
                .arg(format!("-Djava.io.tmpdir={}", options.dir.display()))
                .arg("-cp")
                .arg(&options.classpath)
                .arg(main)
                .current_dir(&options.dir);
            cmd
        };
        run_logged(
            jvm("kafka.tools.StorageTool")
                .args(["format", "--ignore-formatted", "-t", CLUSTER_ID, "-c"])
                .arg(&properties),
            "kafka: format the broker's storage",
            &log,
        )?;
        let mut cmd = jvm("kafka.Kafka");
        cmd.arg(&properties);
        let started = Instant::now();
        let group = spawn_with_lifeline(&cmd, &log_path, "kafka-broker")?;
        let mut broker = Broker {
            group,
            bootstrap: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            log: log_path,
            startup: Duration::ZERO,
        };
        broker.wait_until_answering(started, options.ready_timeout)?;
        broker.startup = started.elapsed();
        Ok(broker)
    }

    /// Polls until a metadata request is answered, the JVM exits, or `timeout` passes.
    fn wait_until_answering(&mut self, started: Instant, timeout: Duration) -> Result<()> {
        loop {
            if let Some(status) = self.group.leader().try_wait().map_err(RealEngineError::io(&self.log))? {
                return Err(self.failed(&format!("exited while starting ({})", describe_status(status))));
            }
            if std::net::TcpStream::connect_timeout(&self.bootstrap, Duration::from_millis(200)).is_ok()
                && KafkaLink::connect(&self.bootstrap(), Duration::from_secs(5))
                    .and_then(|link| link.topics())
                    .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                self.group.end();
                return Err(self.failed(&format!(
                    "did not answer within {timeout:?}; ended with its process group"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn failed(&self, what: &str) -> RealEngineError {
        RealEngineError::EngineFailed {
            engine: "kafka",
            what: format!("broker {what}"),
            log: self.log.clone(),
            tail: file_tail(&self.log, TAIL_LINES),
        }
    }

    /// The `bootstrap.servers` value clients connect to (`127.0.0.1:<port>`).
    pub fn bootstrap(&self) -> String {
        self.bootstrap.to_string()
    }

    /// The broker's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The id of the broker's process group.
    pub fn group_id(&self) -> i32 {
        self.group.id()
    }

    /// Ends the broker and its whole process group now (also done on drop).
    pub fn end(&mut self) {
        self.group.end();
    }
}

/// A port free on loopback now (the OS's pick; closed again before the broker binds it).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| RealEngineError::Kafka(format!("no free loopback port for the broker: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| RealEngineError::Kafka(format!("no free loopback port for the broker: {e}")))
}

/// The broker's configuration: one node that is broker and controller, loopback listeners, its
/// log under `data`, and the internal topics sized for one node (replication 1, few partitions:
/// the default 50 offsets partitions make the first consumer group wait seconds). Retention is
/// off: a record's timestamp is its event time, milliseconds from the run's start (1970 to the
/// broker), so time-based retention would delete a segment at the first check, under a reader.
pub fn server_properties(data: &Path, port: u16, controller_port: u16) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         log.dirs={}\n\
         num.partitions=1\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=4\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         transaction.state.log.num.partitions=4\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n\
         auto.create.topics.enable=false\n\
         log.retention.ms=-1\n",
        data.display()
    )
}

/// The broker's logging, and a Kafka Streams application's: warnings and errors to its stdout
/// (`broker.log`, `engine.log`).
pub(crate) const LOG4J2: &str = "rootLogger.level=WARN\nrootLogger.appenderRef.stdout.ref=STDOUT\n\
appender.stdout.type=Console\nappender.stdout.name=STDOUT\nappender.stdout.layout.type=PatternLayout\n\
appender.stdout.layout.pattern=[%d] %p %m (%c)%n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_listens_on_loopback_only_and_keeps_its_log_in_its_directory() {
        let text = server_properties(Path::new("/run/kafka/data"), 40001, 40002);
        assert!(text.contains("listeners=PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002\n"));
        assert!(text.contains("controller.quorum.voters=1@127.0.0.1:40002\n"));
        assert!(text.contains("log.dirs=/run/kafka/data\n"));
        assert!(!text.contains("0.0.0.0"));
    }

    #[test]
    fn a_broker_that_cannot_start_is_an_error_quoting_its_log_and_leaves_no_process() {
        // `false` as java: the format step fails at once.
        let tmp = tempfile::tempdir().unwrap();
        let err = Broker::start(&BrokerOptions {
            dir: tmp.path().join("kafka"),
            java: PathBuf::from("false"),
            classpath: tmp.path().join("*"),
            ready_timeout: Duration::from_secs(5),
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("kafka: format the broker's storage failed"), "{err}");
    }
}
