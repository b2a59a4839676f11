//! How the workload reaches a real engine: `[workload] transport`.
//!
//! * `"socket"` (the default, and the light one): the loopback feeder and receiver
//!   (`streamlab_workloads::feeder`), which the real Spark and Flink read and write.
//! * `"kafka"`: a Kafka topic. The seeded generator's events are produced open-loop to an
//!   input topic (record timestamp = event time, key = the partition key, one Kafka partition
//!   per source partition), the engine writes its results to an output topic, and streamlab
//!   stamps each on receipt. The broker is streamlab's own, started for the run
//!   (`streamlab engines install` fetches it), unless `bootstrap_servers` names a cluster.
//!
//! What reads the topic: every engine on the live clock. The native micro-batch and per-record
//! engines through streamlab's own consumer, which publishes what the broker delivered into the
//! live source they read, and their sink producing to the output topic
//! (`crate::kafka_native`); Kafka Streams (`model = "kafka-streams"`, which needs
//! `transport = "kafka"`), the real Spark (its Kafka source; 1 s micro-batches written in one
//! transaction per batch, or Real-Time Mode) and the real Flink (its Kafka source, and its
//! exactly-once Kafka sink, which needs `checkpoint_interval`) through their own Kafka clients.
//! On the simulated clock the native engines read the generator's log, whose offsets and
//! open-loop arrivals model a partitioned Kafka topic; no broker is started.

use serde::{Deserialize, Serialize};

/// The keys of `[workload]` this module reads (taken out before the generator's own).
pub const KEYS: [&str; 2] = ["transport", "bootstrap_servers"];

/// Where a real engine reads the workload from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// The loopback feeder and receiver.
    #[default]
    Socket,
    /// Kafka topics, on streamlab's own broker (`None`) or on the cluster at the given
    /// `bootstrap.servers`.
    Kafka {
        /// The user's cluster.
        bootstrap_servers: Option<String>,
    },
}

impl Transport {
    /// The transport `[workload] transport` names (`None`: the default), with
    /// `bootstrap_servers`; an error names the key and what is allowed.
    pub fn read(transport: Option<&str>, bootstrap_servers: Option<String>) -> Result<Self, (&'static str, String)> {
        match (transport, bootstrap_servers) {
            (None | Some("socket"), None) => Ok(Transport::Socket),
            (None | Some("socket"), Some(_)) => Err((
                "bootstrap_servers",
                "names a Kafka cluster, which only `transport = \"kafka\"` uses; add it or remove `bootstrap_servers`"
                    .into(),
            )),
            (Some("kafka"), Some(servers)) if servers.trim().is_empty() => Err((
                "bootstrap_servers",
                "must be `host:port[,host:port...]`, or left out for a broker of streamlab's own".into(),
            )),
            (Some("kafka"), servers) => Ok(Transport::Kafka {
                bootstrap_servers: servers,
            }),
            (Some(other), _) => Err((
                "transport",
                format!("unknown transport \"{other}\"; expected \"socket\" (the loopback feeder) or \"kafka\""),
            )),
        }
    }

    /// Whether the workload goes through Kafka.
    pub fn is_kafka(&self) -> bool {
        matches!(self, Transport::Kafka { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_the_default_and_kafka_may_name_a_cluster() {
        assert_eq!(Transport::read(None, None), Ok(Transport::Socket));
        assert_eq!(
            Transport::read(Some("kafka"), None),
            Ok(Transport::Kafka {
                bootstrap_servers: None
            })
        );
        assert_eq!(
            Transport::read(Some("kafka"), Some("10.0.0.1:9092".into())),
            Ok(Transport::Kafka {
                bootstrap_servers: Some("10.0.0.1:9092".into())
            })
        );
    }

    #[test]
    fn a_cluster_without_kafka_or_an_unknown_transport_is_refused_by_key() {
        assert_eq!(
            Transport::read(None, Some("h:9092".into())).unwrap_err().0,
            "bootstrap_servers"
        );
        assert_eq!(
            Transport::read(Some("kafka"), Some(" ".into())).unwrap_err().0,
            "bootstrap_servers"
        );
        let (key, message) = Transport::read(Some("pulsar"), None).unwrap_err();
        assert_eq!(key, "transport");
        assert!(message.contains("\"kafka\""), "{message}");
    }
}
