//! The real Apache Spark and Apache Flink behind the [`EngineExecutor`] interface: a scenario's
//! `model = "spark"` or `model = "flink"` engine, run on the live clock by the generated job
//! (`streamlab-real-engines`), measured with the native engines' definitions, and handed back
//! as an [`EngineRun`] so the sink files, `summary.json`, histograms, plots and report treat it
//! like a native run.
//!
//! What a run measures: every output's latency from its event's scheduled arrival (a window's
//! last contributing event's) to its receipt by streamlab — the engine's start-up excluded, its
//! warm-up flagged and excluded from the histograms — and the events read per second of the
//! run. What the engine measured of itself (Spark's `StreamingQueryProgress`, Flink's checkpoint
//! statistics) goes to `progress.jsonl` under its run, labelled as the engine's own. The
//! outputs are checked against the reference evaluator; a difference is a note in the summary.
//!
//! A real engine runs on the live clock only (its simulated prediction is the native model with
//! a fitted profile). On Kafka it can be killed mid-run and restarted from its own checkpoint by
//! a `[[failure]]` crash placed with `at`, Spark and Flink alike (as Kafka Streams); on the
//! feeder `[[failure]]` strikes the native engines only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::event::Event;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::pipeline::{OutputShape, PipelineSpec, WindowSpec};
use streamlab_engines::run::{EngineRun, OutputStream, RunCounts};
use streamlab_engines::time::{EventTime, Nanos, Span};
use streamlab_real_engines::driver::{run_job, JobLaunch};
use streamlab_real_engines::flink::{run_flink_on_kafka, FlinkJob, PyFlinkScript};
use streamlab_real_engines::kafka::KafkaLaunch;
use streamlab_real_engines::outputs::{read_outputs, real_engine_reference, record_promised, ReferenceCheck};
use streamlab_real_engines::spark::{run_spark_on_kafka, write_campaign_table, PySparkScript, SparkJob};
use streamlab_real_engines::watch::RunWatch;
use streamlab_real_engines::{CacheDir, PythonEngine, RealEngineError, VenvStatus};
use streamlab_reports::layout::slug;

use crate::clock::ClockSetup;
use crate::engine::{EngineKind, EngineSpec};
use crate::executor::{Durability, EngineExecutor, EngineRunContext, Prepared, RunContext};
use crate::failures::{real_job_crash, FailureSpec};
use crate::real_measured::Measured;
use crate::transport::Transport;

/// What every real-engine table adds to the native keys: where the engine runs and what is
/// passed to it as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealSettings {
    /// A cluster to run on instead of the local default: a Spark master URL
    /// (`spark://host:7077`; default `local[workers]`) or a Flink JobManager's REST address
    /// (`host:8081`; default: a MiniCluster in the job's JVM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Engine settings passed through as they are (`spark.*` for Spark, Flink configuration
    /// keys for Flink).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conf: BTreeMap<String, String>,
    /// Outputs received before this instant of the run are left out of the latency figures
    /// (and said so): the engine's first batches or records pay for JIT compilation and
    /// planning caches.
    #[serde(default)]
    pub warmup: Span,
    /// The address the feeder and receiver listen on when a cluster's machines must reach
    /// them; loopback otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<IpAddr>,
    /// Run this engine only when the real engines are installed: without them it is left out
    /// (said so, with the command that installs them) and the other engines run alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub if_installed: bool,
    /// No longer taken: read only to be refused by name with the spelling that replaced it (a
    /// `[[failure]]` of kind = "crash" placed with `at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_at: Option<Span>,
}

impl RealSettings {
    /// The keys of a real-engine table that are not the native model's.
    pub const KEYS: [&'static str; 6] = ["master", "conf", "warmup", "bind", "if_installed", "kill_at"];

    /// An engine's configuration as JSON (`config`, an object) with these settings added: what
    /// `summary.json` shows of a real engine.
    pub fn merged_into(&self, mut config: serde_json::Value) -> serde_json::Value {
        if let (serde_json::Value::Object(map), serde_json::Value::Object(extra)) =
            (&mut config, serde_json::to_value(self).expect("settings serialize"))
        {
            map.extend(extra);
        }
        config
    }
}

/// A real engine: the native model's configuration (the keys that mean the same thing) and
/// the real engine's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealEngine<C> {
    /// The configuration, in the native model's keys.
    pub config: C,
    /// Where and how the real engine runs.
    pub settings: RealSettings,
}

/// Apache Spark Structured Streaming (`model = "spark"`).
pub type SparkEngine = RealEngine<MicroBatchConfig>;

/// Apache Flink (`model = "flink"`).
pub type FlinkEngine = RealEngine<DataflowConfig>;

/// What differs between the real engines: the generated job and the venv it runs in.
pub trait RealModel {
    /// `"spark"` or `"flink"`.
    const ENGINE: &'static str;
    /// The venv the job runs in.
    const VENV: PythonEngine;
    /// The generated job's file name in the run's directory.
    const SCRIPT: &'static str;
    /// The generated job: its file name and text.
    fn job(&self, ctx: &EngineRunContext<'_>, settings: &RealSettings) -> Result<(&'static str, String), String>;
    /// The generated job for `transport = "kafka"`; `None`: the engine does not read Kafka yet.
    fn kafka_job(&self, _ctx: &EngineRunContext<'_>, _settings: &RealSettings) -> Option<Result<String, String>> {
        None
    }
    /// Runs the job on Kafka topics (`kafka_job`'s script).
    fn run_on_kafka(&self, launch: &KafkaLaunch, events: &[Event]) -> Result<Measured, String>;
    /// On Kafka, the instant of the run clock the job's process group is killed and restarted
    /// from its checkpoint, if it is: a `[[failure]]` crash placed with `at`
    /// ([`real_job_crash`]); `None` also on the failure-free baseline run.
    fn crash_at(&self, ctx: &EngineRunContext<'_>) -> Result<Option<Nanos>, String>;
    /// On Kafka, how long without a result after the producer finished ends the run: the
    /// longest the engine may hold a result back, plus three seconds.
    fn quiet(&self) -> Duration {
        Duration::from_secs(3)
    }
    /// Source partitions the job opens.
    fn slots(&self) -> usize;
    /// On Kafka, the last window end (event time, ms) the engine promises to emit over
    /// `events`: the same as on the feeder unless the engine's source ends its input there and
    /// not on Kafka.
    fn closed_by_on_kafka(&self, pipeline: &PipelineSpec, events: &[Event]) -> Option<EventTime> {
        self.closed_by(pipeline, events)
    }
    /// The last window end (event time, ms) the engine promises to emit over `events` when
    /// their input ends; `None`: every window (a bounded source's final watermark fires all).
    fn closed_by(&self, pipeline: &PipelineSpec, events: &[Event]) -> Option<EventTime>;
    /// The helper jar, when the job needs one.
    fn helper_jar(_cache: &CacheDir) -> Result<Option<PathBuf>, String> {
        Ok(None)
    }
}

impl RealModel for MicroBatchConfig {
    const ENGINE: &'static str = "spark";
    const VENV: PythonEngine = PythonEngine::Spark;
    const SCRIPT: &'static str = PySparkScript::FILE_NAME;

    fn job(&self, ctx: &EngineRunContext<'_>, settings: &RealSettings) -> Result<(&'static str, String), String> {
        let script = PySparkScript::translate(SparkJob {
            pipeline: &ctx.run.scenario.pipeline,
            engine: self,
            conf: &settings.conf,
        })
        .map_err(|e| e.to_string())?;
        Ok((PySparkScript::FILE_NAME, script.text().to_owned()))
    }

    fn kafka_job(&self, ctx: &EngineRunContext<'_>, settings: &RealSettings) -> Option<Result<String, String>> {
        let script = PySparkScript::translate_for_kafka(SparkJob {
            pipeline: &ctx.run.scenario.pipeline,
            engine: self,
            conf: &settings.conf,
        });
        Some(script.map(|s| s.text().to_owned()).map_err(|e| e.to_string()))
    }

    fn run_on_kafka(&self, launch: &KafkaLaunch, events: &[Event]) -> Result<Measured, String> {
        run_spark_on_kafka(launch, events)
            .map(Measured::of_spark_kafka)
            .map_err(|e| e.to_string())
    }

    fn crash_at(&self, ctx: &EngineRunContext<'_>) -> Result<Option<Nanos>, String> {
        real_job_crash(ctx, "Spark on Kafka", "its checkpoint")
    }

    fn slots(&self) -> usize {
        self.workers
    }

    fn quiet(&self) -> Duration {
        let held = match self.trigger {
            Trigger::ProcessingTime { interval } => interval.nanos(),
            Trigger::RealTime { checkpoint_interval } => checkpoint_interval.nanos(),
            _ => 0,
        };
        Duration::from_nanos(held) + Duration::from_secs(3)
    }

    /// Spark's append mode emits a window once the watermark — the largest event time seen
    /// minus the delay — has reached its end, and no watermark passes the last windows when the
    /// input stops; update and complete modes emit every window's latest value.
    /// A join's watermark is the minimum over its two inputs' (Spark's default
    /// `spark.sql.streaming.multipleWatermarkPolicy`).
    fn closed_by(&self, pipeline: &PipelineSpec, events: &[Event]) -> Option<EventTime> {
        let latest = |admits: &dyn Fn(&Event) -> bool| events.iter().filter(|e| admits(e)).map(|e| e.event_time).max();
        let max_event_time = match &pipeline.join {
            Some(j) => latest(&|e| j.left.admits(e))?.min(latest(&|e| j.right.admits(e))?),
            None => latest(&|_| true)?,
        };
        (pipeline.is_stateful() && self.output_mode == OutputMode::Append)
            .then(|| max_event_time - self.watermark_delay.whole_ms())
    }
}

impl RealModel for DataflowConfig {
    const ENGINE: &'static str = "flink";
    const VENV: PythonEngine = PythonEngine::Flink;
    const SCRIPT: &'static str = PyFlinkScript::FILE_NAME;

    fn job(&self, ctx: &EngineRunContext<'_>, settings: &RealSettings) -> Result<(&'static str, String), String> {
        let script = PyFlinkScript::translate(FlinkJob {
            pipeline: &ctx.run.scenario.pipeline,
            engine: self,
            conf: &settings.conf,
        })
        .map_err(|e| e.to_string())?;
        Ok((PyFlinkScript::FILE_NAME, script.text().to_owned()))
    }

    fn kafka_job(&self, ctx: &EngineRunContext<'_>, settings: &RealSettings) -> Option<Result<String, String>> {
        let script = PyFlinkScript::translate_for_kafka(FlinkJob {
            pipeline: &ctx.run.scenario.pipeline,
            engine: self,
            conf: &settings.conf,
        });
        Some(script.map(|s| s.text().to_owned()).map_err(|e| e.to_string()))
    }

    fn run_on_kafka(&self, launch: &KafkaLaunch, events: &[Event]) -> Result<Measured, String> {
        run_flink_on_kafka(launch, events)
            .map(Measured::of_flink_kafka)
            .map_err(|e| e.to_string())
    }

    fn crash_at(&self, ctx: &EngineRunContext<'_>) -> Result<Option<Nanos>, String> {
        real_job_crash(ctx, "Flink on Kafka", "its newest retained checkpoint")
    }

    /// The exactly-once sink makes a result visible when the next checkpoint completes, after
    /// the watermark interval and the buffer timeout: the longest a result is held back, plus
    /// three seconds.
    fn quiet(&self) -> Duration {
        let held = self.checkpoint_interval.map_or(0, |c| c.nanos())
            + self.auto_watermark_interval.nanos()
            + self.buffer_timeout.nanos();
        Duration::from_nanos(held) + Duration::from_secs(3)
    }

    fn slots(&self) -> usize {
        self.parallelism
    }

    /// Flink's sources end with the input, and the final watermark (`Long.MAX_VALUE`) fires
    /// every window.
    fn closed_by(&self, _pipeline: &PipelineSpec, _events: &[Event]) -> Option<EventTime> {
        None
    }

    /// Flink's Kafka source never ends: the watermark it reaches is, per Kafka partition, the
    /// largest event time read minus the out-of-orderness and 1 ms, and the job's the minimum
    /// over partitions; a window fires once the watermark reaches its end minus 1 ms.
    fn closed_by_on_kafka(&self, _pipeline: &PipelineSpec, events: &[Event]) -> Option<EventTime> {
        let mut latest: BTreeMap<u32, EventTime> = BTreeMap::new();
        for e in events {
            let t = latest.entry(e.partition).or_insert(EventTime::MIN);
            *t = (*t).max(e.event_time);
        }
        Some(latest.values().min().copied().unwrap_or(EventTime::MIN) - self.out_of_orderness.whole_ms())
    }

    fn helper_jar(cache: &CacheDir) -> Result<Option<PathBuf>, String> {
        let jar = cache.flink_helper_jar();
        if jar.is_file() {
            Ok(Some(jar))
        } else {
            Err(RealEngineError::NotInstalled {
                engine: "flink",
                status: format!("its helper jar {} is missing", jar.display()),
            }
            .to_string())
        }
    }
}

impl<C: RealModel + Serialize + Sync> RealEngine<C> {
    /// Whether the engine is installed: its venv, and its helper jar if it needs one.
    fn check_ready(cache: &CacheDir) -> Result<(), String> {
        match cache.venv(C::VENV).status() {
            VenvStatus::Ready => {}
            status => {
                return Err(RealEngineError::NotInstalled {
                    engine: C::ENGINE,
                    status: status.to_string(),
                }
                .to_string())
            }
        }
        C::helper_jar(cache).map(|_| ())
    }

    fn prepare_job<'a>(&'a self, ctx: EngineRunContext<'a>) -> Result<Prepared<'a>, String> {
        let RunContext {
            scenario,
            workload,
            until,
            clock,
            durability,
        } = ctx.run;
        if !matches!(clock, ClockSetup::Live) {
            return Err(format!(
                "model = \"{}\" runs the real engine, on the live clock only; for its simulated prediction use the \
                 native model (`{}`) with a fitted profile (`profile = \"{}-local\"`)",
                C::ENGINE,
                if C::ENGINE == "spark" {
                    "micro-batch"
                } else {
                    "per-record"
                },
                C::ENGINE
            ));
        }
        let kafka = match &scenario.transport {
            Transport::Kafka { bootstrap_servers } => Some(bootstrap_servers.clone()),
            Transport::Socket => None,
        };
        let kill_at = match &kafka {
            Some(_) => self.config.crash_at(&ctx)?,
            None if scenario.failures.iter().any(|f| f.strikes(&ctx.engine.name)) => {
                return Err(failures_refused(C::ENGINE))
            }
            None => None,
        };
        let (file_name, text) = match kafka {
            Some(_) => {
                let text = self.config.kafka_job(&ctx, &self.settings).ok_or_else(|| {
                    format!(
                        "the real {} does not read Kafka yet; use transport = \"socket\"",
                        C::ENGINE
                    )
                })??;
                (C::SCRIPT, text)
            }
            None => self.config.job(&ctx, &self.settings)?,
        };
        let engine = ctx.engine;
        Ok(Prepared::Whole(Box::new(move |_log, stream| {
            let watch = RunWatch::new(stream.as_ref().and_then(OutputStream::pulse).cloned());
            let cache = CacheDir::from_env().map_err(|e| e.to_string())?;
            let venv = cache.venv(C::VENV);
            Self::check_ready(&cache)?;
            let (dir, scratch) = job_dir(durability, &engine.name)?;
            let script = dir.join(file_name);
            std::fs::write(&script, &text).map_err(|e| format!("{}: {e}", script.display()))?;
            let campaigns = dir.join("campaigns.csv");
            let mut csv = Vec::new();
            write_campaign_table(&workload.table, &mut csv).expect("writing to memory");
            std::fs::write(&campaigns, csv).map_err(|e| format!("{}: {e}", campaigns.display()))?;
            let events = workload.events();
            let launch = JobLaunch {
                engine: C::ENGINE,
                python: venv.python(),
                script,
                dir: dir.clone(),
                partitions: workload.partitions as u32,
                campaigns,
                bind: self.settings.bind.unwrap_or(JobLaunch::LOOPBACK),
                master: self.settings.master.clone(),
                helper_jar: C::helper_jar(&cache)?,
                env: vec![
                    // Spark's Python workers (the feeder source runs in them) must use the venv.
                    ("PYSPARK_PYTHON".into(), venv.python().display().to_string()),
                    ("PYSPARK_DRIVER_PYTHON".into(), venv.python().display().to_string()),
                ],
                ready_timeout: Duration::from_secs(120),
                run_timeout: Duration::from_nanos(until) + Duration::from_secs(120),
                warmup: self.settings.warmup.nanos(),
                watch,
            };
            let outcome = match &kafka {
                None => Measured::of_feeder(run_job(&launch, &events).map_err(|e| e.to_string())?),
                Some(bootstrap_servers) => self.config.run_on_kafka(
                    &KafkaLaunch {
                        job: launch,
                        name: slug(&engine.name),
                        bootstrap_servers: bootstrap_servers.clone(),
                        quiet: self.config.quiet(),
                        kill_at,
                    },
                    &events,
                )?,
            };
            let outputs = read_outputs(&scenario.pipeline, &workload.table, &events, &outcome.lines)?;
            // A run stopped early (Ctrl-C) is not checked: the runner says so in its notes.
            let checked = outcome.interrupted.is_none().then(|| {
                let expected = real_engine_reference(&scenario.pipeline, &workload.table, &events);
                let closed_by = match &kafka {
                    Some(_) => self.config.closed_by_on_kafka(&scenario.pipeline, &events),
                    None => self.config.closed_by(&scenario.pipeline, &events),
                };
                let mut check = if scenario.pipeline.output_shape() == OutputShape::Records {
                    ReferenceCheck::compare_records(&expected, &outputs.delivered, |id| {
                        record_promised(scenario.pipeline.join.as_ref(), &events, closed_by, id)
                    })
                } else {
                    ReferenceCheck::compare(
                        &expected,
                        &outputs.delivered,
                        scenario.pipeline.is_stateful(),
                        closed_by,
                    )
                };
                check.count_differing_rows(&outputs.differing_rows);
                check.describe()
            });
            // The last event was read when the feeder wrote it: at its arrival, or later when
            // the engine held the feeder back (a backlog, all arrived at 0, is read as fast as
            // the engine takes it).
            let last_arrival = match outcome.interrupted {
                Some(at) => at,
                None => events.last().map_or(0, |e| e.arrival).max(outcome.max_send_lag),
            };
            let modelled = vec![format!(
                "nothing: the real {} computed every output; latency measured whole (scheduled arrival → \
                 receipt by streamlab), {}; the engine's own measurements are its progress records",
                C::ENGINE,
                if kafka.is_some() {
                    "of it only the broker's output hop measured apart (`broker`: readable in the log → fetched, per \
                     result), the rest is the engine's"
                } else {
                    "not decomposed"
                }
            )];
            let mut notes = vec![format!(
                "engine start-up ({:.1} s) excluded: the clock started when {}",
                outcome.startup.as_secs_f64(),
                if kafka.is_some() {
                    "the job was running (its ready file)"
                } else {
                    "the job opened its source partitions"
                }
            )];
            notes.extend(outcome.notes);
            notes.extend(checked);
            if matches!(
                scenario.pipeline.aggregate.map(|a| a.window),
                Some(WindowSpec::Session { .. })
            ) {
                notes.push(format!(
                    "sessions checked as the real {} merges them: a record at exactly a session's end joins it \
                     (streamlab's engines start a new session there)",
                    C::ENGINE
                ));
            }
            if outputs.latency.outputs == 0 && !outputs.delivered.is_empty() {
                notes.push(format!(
                    "no latency measured: every output arrived in the {} warm-up; lengthen the run or shorten `warmup`",
                    self.settings.warmup
                ));
            }
            if outputs.warmup_outputs > 0 {
                notes.push(format!(
                    "{} outputs received in the {} warm-up are left out of the latency figures",
                    outputs.warmup_outputs, self.settings.warmup
                ));
            }
            if let Some(scratch) = scratch {
                let _ = std::fs::remove_dir_all(scratch);
            }
            let batches = outcome.progress.len() as u64;
            let progress = outcome
                .progress
                .into_iter()
                .map(|p| serde_json::json!({ "run": engine.name, "measured_by": C::ENGINE, "record": p }))
                .collect();
            Ok(EngineRun {
                counts: RunCounts {
                    events: outcome.events_sent,
                    outputs: outputs.delivered.len() as u64,
                    batches: if C::ENGINE == "spark" { batches } else { 0 },
                    replayed: outcome.failures.iter().map(|f| f.replayed).sum(),
                    ..RunCounts::default()
                },
                delivered: outputs.delivered,
                side_output: Vec::new(),
                latency: outputs.latency,
                progress,
                active_span: (events.first().map_or(0, |e| e.arrival), last_arrival),
                final_watermark: i64::MIN,
                modelled,
                notes,
                failures: outcome.failures,
                resident: None,
            })
        })))
    }
}

/// Why a real engine in a scenario with `[[failure]]` is refused where it takes none.
fn failures_refused(engine: &str) -> String {
    format!(
        "[[failure]] strikes the native engines, and on Kafka Kafka Streams and the real Spark and Flink (a crash \
         placed with `at`: the job's process group killed and restarted); run the real {engine} with \
         `transport = \"kafka\"` in [workload], or name another `engine` in the failure"
    )
}

/// The engines marked `if_installed` whose real engine is not installed, each with what is
/// missing and the command that installs it: the run leaves them out.
pub fn left_out(engines: &[EngineSpec]) -> Vec<(String, String)> {
    let optional = |e: &&EngineSpec| match &e.kind {
        EngineKind::Spark(s) => s.settings.if_installed,
        EngineKind::Flink(f) => f.settings.if_installed,
        _ => false,
    };
    engines
        .iter()
        .filter(optional)
        .filter_map(|e| check_installed(std::slice::from_ref(e)).err())
        .collect()
}

/// Refuses a scenario whose real engines are not installed, before anything runs (a missing
/// install found after the native engines' runs would waste them).
pub fn check_installed(engines: &[EngineSpec]) -> Result<(), (String, String)> {
    let real: Vec<&EngineSpec> = engines.iter().filter(|e| e.kind.is_real()).collect();
    if real.is_empty() {
        return Ok(());
    }
    let cache = CacheDir::from_env().map_err(|e| (real[0].name.clone(), e.to_string()))?;
    for engine in real {
        let ready = match &engine.kind {
            EngineKind::Spark(_) => SparkEngine::check_ready(&cache),
            EngineKind::Flink(_) => FlinkEngine::check_ready(&cache),
            EngineKind::KafkaStreams(_) => crate::kafka_streams::check_ready(&cache),
            _ => Ok(()),
        };
        ready.map_err(|message| (engine.name.clone(), message))?;
    }
    Ok(())
}

/// The run's own directory for a real engine's job, emptied: kept with the results
/// (`jobs/<engine>`), or a scratch one — also returned second, to be removed afterwards — when
/// the caller keeps no results.
pub(crate) fn job_dir(durability: &Durability, engine: &str) -> Result<(PathBuf, Option<PathBuf>), String> {
    let (dir, scratch) = match &durability.sink_dir {
        Some(results) => (results.join("jobs").join(slug(engine)), None),
        None => {
            let tmp = tempfile_dir(engine)?;
            (tmp.clone(), Some(tmp))
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Absolute: the job runs in this directory and is handed paths inside it (`--out` may be
    // relative).
    let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((dir, scratch))
}

/// A scratch directory for a job whose results are not kept.
fn tempfile_dir(engine: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("streamlab-job-{}-{}", std::process::id(), slug(engine)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

impl<C: RealModel + Serialize + Sync + EngineExecutor> EngineExecutor for RealEngine<C> {
    fn prepare<'a>(&'a self, ctx: EngineRunContext<'a>) -> Result<Prepared<'a>, String> {
        self.prepare_job(ctx)
    }

    fn config_json(&self) -> serde_json::Value {
        self.settings.merged_into(self.config.config_json())
    }

    fn config_text(&self) -> String {
        self.config_json().to_string()
    }

    fn slots(&self) -> usize {
        RealModel::slots(&self.config)
    }

    fn failure_workers(&self, _clock: &ClockSetup) -> (usize, &'static str) {
        (0, "no workers failures can name (a real engine)")
    }

    fn writes_sink_parts(&self, _live: bool) -> bool {
        false
    }

    fn upserts(&self) -> bool {
        self.config.upserts()
    }

    fn characteristic_interval_s(&self) -> f64 {
        self.config.characteristic_interval_s()
    }

    fn has_cache_wait(&self) -> bool {
        false
    }

    fn stability_notes(&self, run: &EngineRun) -> Vec<String> {
        // The reference check, start-up, sending lag and warm-up are in the run's own notes.
        let _ = run;
        Vec::new()
    }

    fn crash_points(
        &self,
        _engine: &str,
        _base: &EngineRun,
        _until: Nanos,
        _instants: usize,
    ) -> Vec<(String, FailureSpec)> {
        Vec::new()
    }
}
