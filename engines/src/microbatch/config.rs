//! How a micro-batch query is configured: trigger, output mode, watermark delay, parallelism
//! and the modelled scheduling overhead.
//!
//! Spark's default trigger — what a query gets when it sets none — is `ProcessingTime(0)`: the
//! next batch starts as soon as the previous one ends. A scenario writes it either as
//! `{ kind = "processing_time", interval = "0s" }` or as `{ kind = "default" }`; both read
//! into the same [`Trigger::ProcessingTime`] with a zero interval, so every part of the
//! workbench that handles a processing-time trigger handles it too.

use serde::{Deserialize, Serialize};

use crate::operators::window::StateBackendKind;
use crate::pipeline::PipelineSpec;
use crate::time::Span;

/// When batches start (Spark's `Trigger`).
///
/// Read from a scenario with `kind` = `processing_time`, `default`, `once`, `available_now`,
/// `continuous` or `real_time`; `default` is Spark's default trigger, `ProcessingTime` with a zero interval.
///
/// # Examples
/// ```
/// use streamlab_engines::microbatch::Trigger;
/// let spelled: Trigger = serde_json::from_str(r#"{"kind": "default"}"#).unwrap();
/// let zero: Trigger = serde_json::from_str(r#"{"kind": "processing_time", "interval": "0s"}"#).unwrap();
/// assert_eq!(spelled, Trigger::SPARK_DEFAULT);
/// assert_eq!(zero, Trigger::SPARK_DEFAULT);
/// assert!(Trigger::SPARK_DEFAULT.runs_back_to_back());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", from = "TriggerSpec")]
pub enum Trigger {
    /// A batch on every multiple of `interval`; an overrunning batch is followed at once by the
    /// next, and a falling-behind event is recorded. `interval = 0` is Spark's default trigger:
    /// each batch starts as soon as the previous one ends (see
    /// [`runs_back_to_back`](Trigger::runs_back_to_back)).
    ProcessingTime {
        /// The trigger interval.
        interval: Span,
    },
    /// One batch with everything available when the query starts, then stop.
    Once,
    /// Everything available at start, in batches of at most `max_records_per_batch`, then a
    /// final no-data batch if the watermark moved, then stop.
    AvailableNow {
        /// Cap on the records of one batch (Spark's `maxOffsetsPerTrigger`); none: one batch.
        #[serde(default)]
        max_records_per_batch: Option<u64>,
    },
    /// Long-running tasks per partition with epoch markers every `checkpoint_interval`;
    /// at-least-once, map-like operators only.
    Continuous {
        /// Epoch (checkpoint) interval.
        checkpoint_interval: Span,
    },
    /// Spark's Real-Time Mode (`trigger(realTime=...)`): each batch is a long-running job of
    /// `checkpoint_interval` whose tasks (one per source partition, one per shuffle partition,
    /// all at once, the shuffle pipelined between them) process every record as it arrives;
    /// offsets, state and the commit log are checkpointed once per batch. Update output mode
    /// only; see `microbatch::real_time`.
    RealTime {
        /// How long each batch runs before its checkpoint.
        checkpoint_interval: Span,
    },
}

/// A trigger as a scenario writes it: [`Trigger`]'s kinds plus `default`, Spark's name for the
/// trigger a query gets when it sets none. Only deserialized, then read into a [`Trigger`]; its
/// variant names are the list of allowed kinds in serde's "unknown variant" error.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TriggerSpec {
    ProcessingTime {
        interval: Span,
    },
    Default,
    Once,
    AvailableNow {
        #[serde(default)]
        max_records_per_batch: Option<u64>,
    },
    Continuous {
        checkpoint_interval: Span,
    },
    RealTime {
        checkpoint_interval: Span,
    },
}

impl From<TriggerSpec> for Trigger {
    fn from(spec: TriggerSpec) -> Self {
        match spec {
            TriggerSpec::ProcessingTime { interval } => Trigger::ProcessingTime { interval },
            TriggerSpec::Default => Trigger::SPARK_DEFAULT,
            TriggerSpec::Once => Trigger::Once,
            TriggerSpec::AvailableNow { max_records_per_batch } => Trigger::AvailableNow { max_records_per_batch },
            TriggerSpec::Continuous { checkpoint_interval } => Trigger::Continuous { checkpoint_interval },
            TriggerSpec::RealTime { checkpoint_interval } => Trigger::RealTime { checkpoint_interval },
        }
    }
}

impl Trigger {
    /// Spark's default trigger, `ProcessingTime(0)`: what a query runs with when it sets no
    /// trigger (`DataStreamWriter`'s default), "micro-batch mode, as soon as possible".
    pub const SPARK_DEFAULT: Trigger = Trigger::ProcessingTime { interval: Span(0) };

    /// Whether batches run back to back: a processing-time trigger with a zero interval starts
    /// the next batch as soon as the previous one ends (after a poll when there was no new
    /// data), so it has no interval to wait for and none to fall behind.
    pub fn runs_back_to_back(&self) -> bool {
        matches!(self, Trigger::ProcessingTime { interval } if interval.nanos() == 0)
    }

    /// Spark's stability condition for this trigger, as a sentence for a run's notes, given the
    /// mean processing time of its data batches in ms: whether a batch takes longer than the
    /// interval (then the next starts as soon as it ends). Whether the query keeps up with its
    /// input is judged from the measured backlog and latency, not here (a query whose batches
    /// overrun a short interval can still keep up); the default trigger has no interval, its
    /// batches run back to back and their processing time *is* the time between batches. `None`
    /// for triggers that do not repeat on processing time.
    pub fn stability_note(&self, mean_batch_ms: f64) -> Option<String> {
        let Trigger::ProcessingTime { interval } = *self else {
            return None;
        };
        if self.runs_back_to_back() {
            return Some(format!(
                "batch processing time: mean {mean_batch_ms:.0} ms; the default trigger runs batches back to back \
                 (each starts when the previous ends), so that is also the time between batches; there is no interval to overrun"
            ));
        }
        let verdict = if mean_batch_ms > interval.as_ms() {
            "processing time > trigger interval: each batch starts as soon as the previous one ends"
        } else {
            "processing time <= trigger interval: every batch starts on its trigger"
        };
        Some(format!(
            "batch processing time: mean {mean_batch_ms:.0} ms against a {interval} trigger interval ({verdict})"
        ))
    }
}

/// What a stateful query writes to the sink each batch (Spark's `OutputMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Only final rows: a window once the watermark passes its end.
    #[default]
    Append,
    /// Rows changed in this batch.
    Update,
    /// The whole result table, every batch.
    Complete,
}

/// Modelled cost of scheduling, charged as waiting time (a local engine has microseconds of it,
/// a cluster tens to hundreds of milliseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulingOverhead {
    /// Per batch (job planning and submission), paid in `queryPlanning`.
    #[serde(default)]
    pub per_batch: Span,
    /// Per task (launch and result hand-back), paid by each task before it runs.
    #[serde(default)]
    pub per_task: Span,
}

/// A micro-batch engine configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicroBatchConfig {
    /// The trigger.
    pub trigger: Trigger,
    /// The output mode of a stateful query.
    pub output_mode: OutputMode,
    /// `withWatermark` delay: watermark = max event time − delay.
    pub watermark_delay: Span,
    /// Number of state (shuffle) partitions (`spark.sql.shuffle.partitions`).
    pub shuffle_partitions: usize,
    /// Worker threads (executor cores) tasks run on.
    pub workers: usize,
    /// Modelled scheduling overhead.
    pub scheduling: SchedulingOverhead,
    /// How long to sleep when a trigger finds no new data (Spark's `pollingDelay`, 10 ms). With
    /// the default trigger it is the period at which an idle source is polled: greater than 0.
    pub polling_delay: Span,
    /// When the query starts. Default: at once for `ProcessingTime`, after the last event has
    /// arrived for `Once` and `AvailableNow` (a scheduled batch job).
    pub start_at: Option<Span>,
    /// Drizzle-style group scheduling: plan this many batches at once and pay the per-batch
    /// job cost (configured and profile) once per group. 1: Spark's behaviour.
    pub group_size: usize,
    /// A modelled processing cost per input record (a user function's cost), charged as time
    /// in both clocks; 0 by default.
    pub modelled_cost_per_record: Span,
    /// After a crash, how long until the query runs again (whatever supervises it — a job
    /// retry, a Kubernetes restart — takes this long to notice and relaunch).
    pub restart_delay: Span,
    /// Where the window operator keeps its keyed state: `heap` (in-memory tables, default) or `lsm`
    /// (the RocksDB-style LSM store, in a scratch directory per operator instance).
    pub state_backend: StateBackendKind,
    /// Whether map output survives the loss of the executor that wrote it (Spark's external
    /// shuffle service, `spark.shuffle.service.enabled`). Off, a worker lost before the reduce
    /// stage fetched its map output takes that output with it, and the map tasks that wrote it
    /// run again before the reduce stage (Spark's fetch failure and map-stage resubmission).
    /// On by default here; Spark's own default is off.
    pub external_shuffle_service: bool,
    /// Live clock only: keep one thread per worker for the whole run, worker `w` on core `w`
    /// mod the machine's cores (as the per-record engine's `pin_slots` pins its slots, and as
    /// a deployment with one single-core executor per core under a cpuset would). Off (the
    /// default), each stage starts its own threads and the OS places them. No effect with one
    /// worker: its tasks run on the driver's thread.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pin_workers: bool,
}

impl Default for MicroBatchConfig {
    fn default() -> Self {
        Self {
            trigger: Trigger::ProcessingTime {
                interval: Span::from_ms(1000),
            },
            output_mode: OutputMode::Append,
            watermark_delay: Span::from_ms(0),
            shuffle_partitions: 2,
            workers: 2,
            scheduling: SchedulingOverhead::default(),
            polling_delay: Span::from_ms(10),
            start_at: None,
            group_size: 1,
            modelled_cost_per_record: Span::default(),
            restart_delay: Span::from_ms(2000),
            state_backend: StateBackendKind::Heap,
            external_shuffle_service: true,
            pin_workers: false,
        }
    }
}

/// A configuration this engine refuses, with the offending key (relative to the engine table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct MicroBatchConfigError {
    /// Dotted key path inside the engine table.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl MicroBatchConfig {
    /// Checks the configuration against the pipeline it will run, with Spark's own rules.
    pub fn validate(&self, pipeline: &PipelineSpec) -> Result<(), MicroBatchConfigError> {
        let err = |key: &str, message: &str| {
            Err(MicroBatchConfigError {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.shuffle_partitions == 0 {
            return err("shuffle_partitions", "must be at least 1");
        }
        if self.workers == 0 {
            return err("workers", "must be at least 1");
        }
        if self.group_size == 0 {
            return err(
                "group_size",
                "must be at least 1 (1 plans every batch on its own, as Spark does)",
            );
        }
        match self.trigger {
            Trigger::ProcessingTime { .. } if self.trigger.runs_back_to_back() && self.polling_delay.nanos() == 0 => {
                return err(
                    "polling_delay",
                    "must be greater than 0 with the default trigger (a zero `interval`), which polls for new data \
                     every `polling_delay` when a batch finds none; Spark polls every \"10ms\"",
                )
            }
            Trigger::Continuous { .. } if pipeline.is_stateful() => {
                return err(
                    "trigger",
                    "the Continuous trigger supports only map-like operators (filter, project, join against a static table); \
                     this pipeline aggregates, which Spark refuses in continuous processing. Use `default`, `processing_time`, `once` or `available_now`",
                )
            }
            Trigger::Continuous { checkpoint_interval } if checkpoint_interval.nanos() == 0 => {
                return err("trigger.checkpoint_interval", "must be greater than 0, e.g. \"1s\"")
            }
            Trigger::AvailableNow { max_records_per_batch: Some(0) } => {
                return err("trigger.max_records_per_batch", "must be at least 1")
            }
            Trigger::RealTime { checkpoint_interval } => crate::microbatch::real_time::validate(self, checkpoint_interval, pipeline)?,
            _ => {}
        }
        if pipeline.has_graph_stage() && self.output_mode != OutputMode::Append {
            let what = if pipeline.join.is_some() {
                "a stream-stream join"
            } else if pipeline.dedup.is_some() {
                "dropDuplicatesWithinWatermark"
            } else if pipeline.top_n.is_some() {
                "a top-N (a max per window joined back)"
            } else {
                "a second aggregation over an aggregation (chained stateful operators)"
            };
            return err(
                "output_mode",
                &format!("Spark runs {what} in append mode only; set `output_mode = \"append\"`"),
            );
        }
        if let Some(t) = &pipeline.top_n {
            if t.n != 1 {
                return err(
                    "model",
                    "the micro-batch engine cannot run `pipeline.top_n.n` above 1: Spark refuses a rank over a window (`row_number` or `rank` over a partition: \"Non-time-based windows are not supported on streaming DataFrames/Datasets\"); it runs the top 1 as a `max` per window joined back to the records, so `n` must be 1 on the micro-batch engine",
                );
            }
        }
        if self.output_mode == OutputMode::Complete && !pipeline.is_stateful() {
            return err(
                "output_mode",
                "complete mode needs a streaming aggregation (as in Spark); use `append` or `update` for a stateless pipeline",
            );
        }
        Ok(())
    }

    /// The trigger interval of a `ProcessingTime` trigger (zero for Spark's default trigger).
    pub fn interval(&self) -> Option<Span> {
        match self.trigger {
            Trigger::ProcessingTime { interval } => Some(interval),
            _ => None,
        }
    }
}
