//! Apache Kafka Streams as a real engine (`model = "kafka-streams"`): a pipeline as a generated
//! Kafka Streams application, compiled against the pinned Kafka and run against a broker.
//!
//! * [`config`] — the engine table's keys (`processing_guarantee`, `commit_interval`,
//!   `cache_max_bytes`, `threads`, `grace`, `suppress`) and the `StreamsConfig` they become.
//! * [`translate`] — the pipeline as a Kafka Streams topology in Java, and what it refuses.
//! * [`run`] — one run: compile, broker and topics, the application in its own process group,
//!   the producer's schedule, the results stamped on receipt.

pub mod config;
pub mod run;
pub mod translate;

pub use config::{KafkaStreamsConfig, ProcessingGuarantee};
pub use run::{run_kafka_streams, CrashReport, KafkaStreamsLaunch, KafkaStreamsOutcome};
pub use translate::{translate, KafkaStreamsRefusal};
