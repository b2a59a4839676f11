//! The engine runs of a scenario: which execution model each uses and its configuration.
//!
//! An `[[engine]]` table names a model (`micro-batch`, Spark Structured Streaming's; or
//! `per-record`, Flink's) and that model's configuration. What running a model means — how it
//! is built for a clock, what its sink and failures do — is its [`crate::executor`]; this is
//! only the declaration, read by [`crate::spec`] and shared by everything downstream.

use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::microbatch::MicroBatchConfig;

use crate::kafka_streams::KafkaStreamsEngine;
use crate::real_engine::{FlinkEngine, SparkEngine};

/// An execution model and its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Spark Structured Streaming style micro-batching (`model = "micro-batch"`).
    MicroBatch(MicroBatchConfig),
    /// Flink style per-record streaming (`model = "per-record"`).
    PerRecord(DataflowConfig),
    /// The real Apache Spark (`model = "spark"`), configured with the micro-batch keys.
    Spark(SparkEngine),
    /// The real Apache Flink (`model = "flink"`), configured with the per-record keys.
    Flink(FlinkEngine),
    /// The real Apache Kafka Streams (`model = "kafka-streams"`), with its own keys; reads the
    /// workload from Kafka (`[workload] transport = "kafka"`).
    KafkaStreams(KafkaStreamsEngine),
}

impl EngineKind {
    /// The values `model` may take, in scenario-file spelling.
    pub const MODELS: [&'static str; 5] = ["micro-batch", "per-record", "spark", "flink", "kafka-streams"];

    /// The model's name in scenario files: `"micro-batch"`, `"per-record"`, `"spark"`, `"flink"`.
    pub fn model(&self) -> &'static str {
        match self {
            Self::MicroBatch(_) => Self::MODELS[0],
            Self::PerRecord(_) => Self::MODELS[1],
            Self::Spark(_) => Self::MODELS[2],
            Self::Flink(_) => Self::MODELS[3],
            Self::KafkaStreams(_) => Self::MODELS[4],
        }
    }

    /// Whether this is a real engine (run by its own JVM), not one of streamlab's models.
    pub fn is_real(&self) -> bool {
        matches!(self, Self::Spark(_) | Self::Flink(_) | Self::KafkaStreams(_))
    }

    /// The model named `model` (scenario-file spelling) with its default configuration.
    pub fn default_of(model: &str) -> Option<Self> {
        match model {
            "micro-batch" => Some(Self::MicroBatch(MicroBatchConfig::default())),
            "per-record" => Some(Self::PerRecord(DataflowConfig::default())),
            _ => None,
        }
    }

    /// Whether the model runs in batches: a crash is placed in a batch phase, and a failed task
    /// or a lost worker is retried by the scheduler without restarting the query (Spark). A
    /// model without batches places crashes in time or in checkpoints, and restarts the whole
    /// job from its last checkpoint (Flink's full failover).
    pub fn has_batches(&self) -> bool {
        matches!(self, Self::MicroBatch(_))
    }

    /// The key that pins the engine's threads to cores, if it is set (a per-record job's
    /// `pin_slots`, a micro-batch query's `pin_workers`; live clock only).
    pub fn pinning_key(&self) -> Option<&'static str> {
        match self {
            Self::PerRecord(c) if c.pin_slots => Some("pin_slots"),
            Self::MicroBatch(c) if c.pin_workers => Some("pin_workers"),
            _ => None,
        }
    }
}

/// One engine run of a scenario (an `[[engine]]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSpec {
    /// The name shown in reports; unique within the scenario.
    pub name: String,
    /// The execution model and its configuration.
    pub kind: EngineKind,
    /// The cost profile this engine is priced with on the simulated clock, instead of the
    /// scenario's (`profile = "spark-local"`): one simulated run can compare predicted Spark
    /// with predicted Flink. For a real engine, the profile its simulated prediction uses
    /// (`streamlab validate --against`).
    pub profile: Option<String>,
}

impl EngineSpec {
    /// The model's name in scenario files: `"micro-batch"` or `"per-record"`.
    pub fn model(&self) -> &'static str {
        self.kind.model()
    }
}
