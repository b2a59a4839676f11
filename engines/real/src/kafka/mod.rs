//! Apache Kafka between the workload and an engine: the pinned broker streamlab installs and
//! owns for a run, and streamlab's own pure-Rust client that writes the workload into it and
//! reads the results out of it.
//!
//! * [`dist`] — the pinned Apache Kafka's jars, fetched from Maven Central by
//!   `streamlab engines install`.
//! * [`broker`] — a single-node KRaft broker formatted and started in a run's directory, on
//!   loopback, in its own process group, ended with the run.
//! * [`lifeline`] — a JVM in its own process group whose leader ends the group when streamlab
//!   dies or the JVM exits.
//! * [`client`] — connecting and creating topics (`rskafka`: why this client is in its header).
//! * [`producer`] — the workload's events produced open-loop to the input topic on their
//!   scheduled arrivals: record timestamp = event time, key = the partition key (the user), one
//!   Kafka partition per source partition.
//! * [`consumer`] — the output topic read back, each record stamped on receipt with the run
//!   clock the producer's schedule runs on, under `read_committed` done right
//!   ([`read_committed`]: an aborted transaction's records are dropped) over streamlab's own
//!   Fetch ([`wire`]).
//! * [`input`] — the input topic fetched by streamlab's consumer into the live source a native
//!   engine reads; a rewind fetches it again.
//! * [`sink`] — a native engine's sink producing its outputs to the output topic.
//! * [`spark_connector`] — Spark's Kafka source and sink (`spark-sql-kafka-0-10_2.13`), fetched
//!   beside the pinned Kafka's jars.
//! * [`flink_connector`] — Flink's Kafka source and sink (`flink-sql-connector-kafka`), fetched
//!   the same way ([`connector`]: one engine's connector from a generated pom).
//! * [`job_run`] — a real engine's generated Python job (Spark's, Flink's) on the topics: the
//!   broker, producer and consumer around it, a kill and restart, the quiet period that ends it.
//! * [`quiet`] — when a run on Kafka is over: the quiet period after the producer's end.
//! * [`cluster`] — the cluster a run uses: the broker streamlab starts, or the user's
//!   `bootstrap_servers`; and the run's topics on it.
//!
//! Latency keeps its definition (scheduled arrival → result received by streamlab): the
//! producer's schedule and the consumer's stamps read one [`RunClock`]. The broker's start-up
//! and topic creation happen before the clock starts.
//!
//! [`RunClock`]: streamlab_workloads::feeder::RunClock

pub mod broker;
pub mod client;
pub mod cluster;
pub mod connector;
pub mod consumer;
pub mod dist;
pub mod flink_connector;
pub mod input;
pub mod job_run;
pub mod lifeline;
pub mod producer;
pub(crate) mod quiet;
pub mod read_committed;
pub mod sink;
pub mod spark_connector;
pub mod wire;

pub use broker::{Broker, BrokerOptions};
pub use client::KafkaLink;
pub use cluster::{KafkaCluster, RunTopics};
pub use dist::{KafkaDist, KafkaDistStatus, KAFKA_VERSION};
pub use job_run::{JobRestart, KafkaJobOutcome, KafkaLaunch};
