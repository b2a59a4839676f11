//! The Kafka cluster one run uses, and the run's topics on it.
//!
//! By default streamlab starts its own broker ([`Broker`]) inside the run's directory and ends
//! it with the run; a scenario that names `bootstrap_servers` uses that cluster instead, and
//! streamlab starts and ends nothing there. Either way the run gets two fresh topics with the
//! workload's partition count — the input and the output — named after the run and a random
//! suffix, so runs on a shared cluster never read each other's records.

use std::path::Path;
use std::time::Duration;

use streamlab_workloads::feeder::RunToken;

use crate::error::Result;
use crate::java::JavaInstall;
use crate::kafka::broker::{Broker, BrokerOptions};
use crate::kafka::client::KafkaLink;
use crate::kafka::dist::KafkaDist;

/// Where a run's records go.
#[derive(Debug)]
pub enum KafkaCluster {
    /// The broker streamlab started for this run (ended when this is dropped).
    Owned(Broker),
    /// A cluster the user gave (`bootstrap_servers`); streamlab only connects to it.
    External(String),
}

/// The run's input and output topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTopics {
    /// The workload's events.
    pub input: String,
    /// The engine's results.
    pub output: String,
    /// Partitions of each (the workload's source partitions).
    pub partitions: u32,
}

impl RunTopics {
    /// The topic names for a run called `name` (any text; reduced to Kafka's topic alphabet).
    pub fn named(name: &str, partitions: u32) -> Self {
        let base: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        let suffix: String = RunToken::generate().as_str().chars().take(8).collect();
        RunTopics {
            input: format!("streamlab-{base}-{suffix}-events"),
            output: format!("streamlab-{base}-{suffix}-results"),
            partitions,
        }
    }
}

impl KafkaCluster {
    /// The user's cluster at `bootstrap_servers`, or a broker started in `dir` from the pinned
    /// Kafka in `dist`.
    pub fn start(bootstrap_servers: Option<&str>, dist: &KafkaDist, dir: &Path) -> Result<Self> {
        if let Some(servers) = bootstrap_servers {
            KafkaLink::connect(servers, Duration::from_secs(10))?.topics()?;
            return Ok(KafkaCluster::External(servers.to_string()));
        }
        let dist = dist.require()?;
        let java = JavaInstall::find().and_then(JavaInstall::require_supported)?;
        let broker = Broker::start(&BrokerOptions {
            dir: dir.to_path_buf(),
            java: java.path.clone(),
            classpath: dist.classpath(),
            ready_timeout: Duration::from_secs(60),
        })?;
        Ok(KafkaCluster::Owned(broker))
    }

    /// The `bootstrap.servers` value.
    pub fn bootstrap(&self) -> String {
        match self {
            KafkaCluster::Owned(broker) => broker.bootstrap(),
            KafkaCluster::External(servers) => servers.clone(),
        }
    }

    /// Creates the run's topics: the input keeps the producer's timestamps (the event times
    /// the engines read), the output the broker's log-append times (the output hop).
    pub fn create_topics(&self, topics: &RunTopics) -> Result<()> {
        let link = KafkaLink::connect(&self.bootstrap(), Duration::from_secs(10))?;
        link.create_topic(&topics.input, topics.partitions)?;
        link.create_topic_with_append_time(&topics.output, topics.partitions)
    }

    /// The broker's start-up (format, JVM, first answer); zero for a user's cluster.
    pub fn startup(&self) -> Duration {
        match self {
            KafkaCluster::Owned(broker) => broker.startup,
            KafkaCluster::External(_) => Duration::ZERO,
        }
    }

    /// What a run's notes say about the cluster.
    pub fn describe(&self) -> String {
        match self {
            KafkaCluster::Owned(broker) => format!(
                "Kafka: streamlab's own single-node KRaft broker (Apache Kafka {}) at {}, started in {:.1} s (excluded)",
                crate::kafka::KAFKA_VERSION,
                broker.bootstrap(),
                broker.startup.as_secs_f64()
            ),
            KafkaCluster::External(servers) => format!("Kafka: the user's cluster at {servers}"),
        }
    }
}
