//! Configuration of the per-record engine, with Flink's names and defaults.

use serde::{Deserialize, Serialize};

use crate::operators::window::StateBackendKind;
use crate::time::Span;

/// Bytes a serialized clickstream row takes in a network buffer; fixes how many rows fill one.
pub const ROW_WIRE_BYTES: usize = 64;

/// What the sink promises after a failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkGuarantee {
    /// Outputs are visible at once; after a restart some appear again.
    #[default]
    AtLeastOnce,
    /// Two-phase commit: outputs become visible when the checkpoint that covers them completes.
    ExactlyOnce,
}

/// How a failed job is restarted (Flink's restart strategies).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RestartStrategy {
    /// Wait `delay` before every restart.
    FixedDelay {
        /// The delay.
        delay: Span,
    },
    /// Wait `initial`, then `multiplier` times longer after each further failure, up to `max`.
    ExponentialDelay {
        /// The first delay.
        initial: Span,
        /// The longest delay.
        max: Span,
        /// Growth per failure.
        multiplier: f64,
    },
}

impl RestartStrategy {
    /// The delay before restart number `n` (1-based).
    pub fn delay(&self, n: u32) -> Span {
        match *self {
            RestartStrategy::FixedDelay { delay } => delay,
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
            } => {
                let d = initial.nanos() as f64 * multiplier.powi(n.saturating_sub(1) as i32);
                Span(d.min(max.nanos() as f64) as u64)
            }
        }
    }
}

impl Eq for RestartStrategy {}

/// A per-record engine configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataflowConfig {
    /// Parallel instances of the source and of the window operator.
    pub parallelism: usize,
    /// The output flusher period (`execution.buffer-timeout`); 0 flushes after every record.
    pub buffer_timeout: Span,
    /// Network buffer size in bytes (`taskmanager.memory.segment-size`, 32 KiB).
    pub buffer_size: usize,
    /// In-flight buffers per input channel before the sender blocks (backpressure).
    pub buffers_per_channel: usize,
    /// Period of watermark emission (`pipeline.auto-watermark-interval`, 200 ms).
    pub auto_watermark_interval: Span,
    /// Bounded out-of-orderness: watermark = max event time − bound − 1 ms.
    pub out_of_orderness: Span,
    /// How long a window keeps accepting late records after it fired (`allowedLateness`).
    pub allowed_lateness: Span,
    /// Mark a source subtask idle after this long without records (`withIdleness`); none: never.
    pub idle_timeout: Option<Span>,
    /// Kafka Streams-style emission: window aggregates sit in a record cache and their latest
    /// values are forwarded at every commit (`commit.interval.ms`: 100 ms under exactly-once,
    /// 30 s otherwise) instead of once when the watermark passes the window. None: Flink's
    /// event-time trigger.
    pub commit_interval: Option<Span>,
    /// Aligned checkpoints every this long (`execution.checkpointing.interval`); none: no
    /// checkpoints (a restart begins again from the start of the input).
    pub checkpoint_interval: Option<Span>,
    /// The sink's guarantee: `exactly_once` (two-phase commit, needs checkpoints) or
    /// `at_least_once`.
    pub sink: SinkGuarantee,
    /// How the job is restarted after a failure (Flink default: fixed delay of 1 s).
    pub restart: RestartStrategy,
    /// Where the window operator keeps its keyed state: `heap` (in-memory tables, default) or `lsm`
    /// (the RocksDB-style LSM store, in a scratch directory per operator instance).
    pub state_backend: StateBackendKind,
    /// Live clock only: run each task slot's threads on one core (slot k on core k mod the
    /// machine's cores), as a deployment with one single-slot TaskManager per core under a
    /// cpuset does. Off (the default), the OS schedules the subtask threads where it likes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pin_slots: bool,
    /// A stateless pipeline's sink at the job's parallelism, chained into each source subtask
    /// (Flink chains a sink whose parallelism equals its input's: no exchange, no sink thread).
    /// Off (the default), the sink has parallelism 1 and, above parallelism 1, sits behind an
    /// exchange. At-least-once sinks only (each chained sink would hold its own transaction).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chain_sink: bool,
}

impl Default for DataflowConfig {
    fn default() -> Self {
        Self {
            parallelism: 2,
            buffer_timeout: Span::from_ms(100),
            buffer_size: 32 * 1024,
            buffers_per_channel: 4,
            auto_watermark_interval: Span::from_ms(200),
            out_of_orderness: Span::from_ms(0),
            allowed_lateness: Span::from_ms(0),
            idle_timeout: None,
            commit_interval: None,
            checkpoint_interval: None,
            sink: SinkGuarantee::AtLeastOnce,
            restart: RestartStrategy::FixedDelay {
                delay: Span::from_ms(1000),
            },
            state_backend: StateBackendKind::Heap,
            pin_slots: false,
            chain_sink: false,
        }
    }
}

/// A configuration this engine refuses, with the offending key (relative to the engine table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct DataflowConfigError {
    /// Dotted key path inside the engine table.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl DataflowConfig {
    /// Checks value ranges.
    /// Checks the configuration can run `pipeline`'s stages.
    pub fn validate_for(&self, pipeline: &crate::pipeline::PipelineSpec) -> Result<(), DataflowConfigError> {
        if !pipeline.has_graph_stage() {
            return Ok(());
        }
        let err = |key: &str, message: &str| {
            Err(DataflowConfigError {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.commit_interval.is_some() {
            return err(
                "commit_interval",
                "Kafka Streams mode (a record cache flushed on commit) emits aggregate updates, and a join, deduplication, top-N or second aggregation here runs on Flink's event-time rules; remove `commit_interval`",
            );
        }
        if self.allowed_lateness.whole_ms() > 0 {
            return err(
                "allowed_lateness",
                "allowed lateness is a window operator's rule; a join, deduplication, top-N or second aggregation drops records later than the watermark, as Flink's do: remove `allowed_lateness`",
            );
        }
        Ok(())
    }

    /// Checks the configuration is consistent.
    pub fn validate(&self) -> Result<(), DataflowConfigError> {
        let err = |key: &str, message: &str| {
            Err(DataflowConfigError {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.parallelism == 0 || self.parallelism > 1024 {
            return err("parallelism", "must be between 1 and 1024");
        }
        if self.buffer_size < ROW_WIRE_BYTES {
            return err("buffer_size", "must hold at least one row (64 bytes)");
        }
        if self.buffers_per_channel == 0 {
            return err("buffers_per_channel", "must be at least 1");
        }
        if self.auto_watermark_interval.nanos() == 0 {
            return err(
                "auto_watermark_interval",
                "must be greater than 0 (periodic watermarks)",
            );
        }
        if self.commit_interval.is_some_and(|t| t.nanos() == 0) {
            return err(
                "commit_interval",
                "must be greater than 0, e.g. \"100ms\"; omit it for Flink's event-time trigger",
            );
        }
        if self.checkpoint_interval.is_some_and(|t| t.nanos() == 0) {
            return err(
                "checkpoint_interval",
                "must be greater than 0, e.g. \"1s\"; omit it to disable checkpoints",
            );
        }
        if self.sink == SinkGuarantee::ExactlyOnce && self.checkpoint_interval.is_none() {
            return err(
                "sink",
                "an exactly-once sink commits on checkpoints: set `checkpoint_interval`, or use `at_least_once`",
            );
        }
        if self.chain_sink && self.sink == SinkGuarantee::ExactlyOnce {
            return err(
                "chain_sink",
                "a chained sink runs once per source subtask, and this engine's two-phase commit has one sink: use `sink = \"at_least_once\"`, or drop `chain_sink`",
            );
        }
        if let RestartStrategy::ExponentialDelay {
            initial,
            max,
            multiplier,
        } = self.restart
        {
            if !(multiplier.is_finite() && multiplier >= 1.0) || initial > max {
                return err("restart", "exponential_delay needs multiplier >= 1 and initial <= max");
            }
        }
        if self.idle_timeout.is_some_and(|t| t.nanos() == 0) {
            return err(
                "idle_timeout",
                "must be greater than 0; omit it to never mark sources idle",
            );
        }
        Ok(())
    }

    /// Rows per network buffer.
    pub fn buffer_rows(&self) -> usize {
        (self.buffer_size / ROW_WIRE_BYTES).max(1)
    }
}
