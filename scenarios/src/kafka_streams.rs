//! Apache Kafka Streams behind the [`EngineExecutor`] interface: a scenario's
//! `model = "kafka-streams"` engine, run on the live clock by the generated application
//! (`streamlab_real_engines::kafka_streams`) on Kafka topics, measured with the native engines'
//! definitions and handed back as an [`EngineRun`], as the real Spark and Flink are
//! ([`crate::real_engine`]).
//!
//! What a run measures: every result's latency from its event's scheduled arrival (a window's
//! last contributing event's) to its receipt by streamlab's consumer of the output topic — the
//! broker's and the application's start-up excluded, the warm-up flagged — so the broker's
//! share (produce → log append → fetch, twice: into the input topic and out of the output
//! topic) is inside the measured latency. It is also reported beside it, in a note
//! ([`crate::real_measured::broker_share`]): the output hop per result from the output topic's `LogAppendTime`
//! (append → fetched by streamlab; measured, 1 ms resolution, one host's wall clock) and the
//! input hop per event from the producer (scheduled → acknowledged, the leader's append
//! included; measured). The engine's own fetch of the input is not seen from outside and stays
//! in the rest. The output hop is also the run's `broker` latency component (per result, as
//! for the native engines on Kafka, `streamlab_real_engines::outputs`); the rest of the
//! latency is the application's and is not split. A `[[failure]]` crash placed with `at` kills the application
//! and restarts it from its committed offsets ([`kafka_streams_crash`], and
//! `streamlab_real_engines::kafka_streams::run`), reported as the native engines' crashes are. The outputs are
//! checked against the reference evaluator; with `suppress`, the windows the last records'
//! stream time cannot close are not expected (see `kafka_streams::config::closed_by`).

use std::time::Duration;

use streamlab_engines::reference;
use streamlab_engines::run::{EngineRun, FailureEvent, RunCounts};
use streamlab_engines::time::Nanos;
use streamlab_real_engines::kafka::KafkaDist;
use streamlab_real_engines::kafka_streams::config::closed_by;
use streamlab_real_engines::kafka_streams::{run_kafka_streams, translate, KafkaStreamsConfig, KafkaStreamsLaunch};
use streamlab_real_engines::outputs::{read_outputs, ReferenceCheck};
use streamlab_real_engines::spark::write_campaign_table;
use streamlab_real_engines::CacheDir;
use streamlab_reports::layout::slug;

use crate::clock::ClockSetup;
use crate::executor::{EngineExecutor, EngineRunContext, Prepared, RunContext};
use crate::failures::{real_job_crash, FailureSpec};
use crate::real_engine::{job_dir, RealEngine};
use crate::real_measured::broker_share;
use crate::transport::Transport;

/// Apache Kafka Streams (`model = "kafka-streams"`).
pub type KafkaStreamsEngine = RealEngine<KafkaStreamsConfig>;

/// Whether the pinned Kafka is installed.
pub fn check_ready(cache: &CacheDir) -> Result<(), String> {
    KafkaDist::in_cache(cache)
        .require()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The instant a `[[failure]]` crash kills this engine's application (run clock), if one
/// strikes it ([`real_job_crash`]).
fn kafka_streams_crash(ctx: &EngineRunContext<'_>) -> Result<Option<Nanos>, String> {
    real_job_crash(ctx, "Kafka Streams", "its committed offsets")
}

impl KafkaStreamsEngine {
    fn prepare_app<'a>(&'a self, ctx: EngineRunContext<'a>) -> Result<Prepared<'a>, String> {
        let RunContext {
            scenario,
            workload,
            until,
            clock,
            durability,
        } = ctx.run;
        if !matches!(clock, ClockSetup::Live) {
            return Err(
                "model = \"kafka-streams\" runs the real Kafka Streams, on the live clock only; its simulated \
                 counterpart is the native per-record model with `commit_interval` (Kafka Streams mode)"
                    .into(),
            );
        }
        let crash_at = kafka_streams_crash(&ctx)?;
        let Transport::Kafka { bootstrap_servers } = &scenario.transport else {
            return Err("Kafka Streams reads a Kafka topic: set `transport = \"kafka\"` in [workload]".into());
        };
        let source = translate(&scenario.pipeline, &self.config).map_err(|e| e.to_string())?;
        let engine = ctx.engine;
        Ok(Prepared::Whole(Box::new(move |_log, stream| {
            let cache = CacheDir::from_env().map_err(|e| e.to_string())?;
            check_ready(&cache)?;
            let (dir, scratch) = job_dir(durability, &engine.name)?;
            let campaigns = dir.join("campaigns.csv");
            let mut csv = Vec::new();
            write_campaign_table(&workload.table, &mut csv).expect("writing to memory");
            std::fs::write(&campaigns, csv).map_err(|e| format!("{}: {e}", campaigns.display()))?;
            let events = workload.events();
            let mut properties: Vec<(String, String)> = self
                .config
                .properties()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            properties.extend(self.settings.conf.iter().map(|(k, v)| (k.clone(), v.clone())));
            let quiet = Duration::from_nanos(self.config.commit_interval().nanos()) + Duration::from_secs(2);
            let launch = KafkaStreamsLaunch {
                dir: dir.clone(),
                name: slug(&engine.name),
                source,
                properties,
                campaigns,
                partitions: workload.partitions as u32,
                bootstrap_servers: bootstrap_servers.clone(),
                ready_timeout: Duration::from_secs(120),
                run_timeout: Duration::from_nanos(until) + Duration::from_secs(120) + quiet,
                quiet,
                warmup: self.settings.warmup.nanos(),
                crash_at,
                watch: streamlab_real_engines::watch::RunWatch::new(
                    stream
                        .as_ref()
                        .and_then(streamlab_engines::run::OutputStream::pulse)
                        .cloned(),
                ),
            };
            let outcome = run_kafka_streams(&launch, &events).map_err(|e| e.to_string())?;
            let outputs = read_outputs(&scenario.pipeline, &workload.table, &events, &outcome.lines)?;
            // A run stopped early (Ctrl-C) is not checked: the runner says so in its notes.
            let checked = outcome.interrupted.is_none().then(|| {
                let expected = reference::evaluate(&scenario.pipeline, &workload.table, &events);
                let max_event_time = events.iter().map(|e| e.event_time).max().unwrap_or(0);
                ReferenceCheck::compare(
                    &expected,
                    &outputs.delivered,
                    scenario.pipeline.is_stateful(),
                    closed_by(&self.config, &scenario.pipeline, max_event_time),
                )
                .describe()
            });
            let mut notes = vec![
                outcome.cluster.clone(),
                format!(
                    "Kafka Streams start-up ({:.1} s, to RUNNING) excluded: the clock started when every task was assigned",
                    outcome.startup.as_secs_f64()
                ),
                match outcome.interrupted {
                    Some(_) => "producer sending lag not measured: the run was stopped early".to_string(),
                    None => format!(
                        "producer sending lag (acknowledged − scheduled): mean {:.3} ms, max {:.3} ms over {} events",
                        outcome.producer.lag.mean / 1e6,
                        outcome.producer.lag.max as f64 / 1e6,
                        outcome.producer.lag.events
                    ),
                },
                format!(
                    "processing.guarantee = {}, commit.interval.ms = {}, statestore.cache.max.bytes = {}",
                    self.config.processing_guarantee.value(),
                    self.config.commit_interval().whole_ms(),
                    self.config.cache_max_bytes
                ),
            ];
            notes.extend(checked);
            notes.push(broker_share(&outcome.output_hop_ns, &outcome.producer));
            if let Some(c) = outcome.crash {
                notes.push(format!(
                    "crashed at {:.1} s (process group killed), RUNNING again at {:.1} s from the committed offsets; {} input records after them read again (at most)",
                    c.at as f64 / 1e9,
                    c.restarted_at as f64 / 1e9,
                    c.replayed
                ));
            }
            if outcome.aborted > 0 {
                notes.push(format!(
                    "{} output records of aborted transactions dropped by streamlab's read_committed consumer",
                    outcome.aborted
                ));
            }
            if outcome.late_dropped > 0 {
                notes.push(format!(
                    "{} input records dropped as late by Kafka Streams (stream time past their window's end + grace {}; \
                     \"Skipping record for expired window\" in engine.log){}",
                    outcome.late_dropped,
                    self.config.grace,
                    if outcome.crash.is_some() {
                        ": after a crash the backlog is read again a task's chunk at a time, and stream time can run \
                         ahead of another partition's records by more than the grace"
                    } else {
                        ""
                    }
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
            Ok(EngineRun {
                counts: RunCounts {
                    events: outcome.producer.events_sent,
                    outputs: outputs.delivered.len() as u64,
                    replayed: outcome.crash.map_or(0, |c| c.replayed),
                    late_dropped: outcome.late_dropped,
                    ..RunCounts::default()
                },
                delivered: outputs.delivered,
                side_output: Vec::new(),
                latency: outputs.latency,
                progress: Vec::new(),
                active_span: (
                    events.first().map_or(0, |e| e.arrival),
                    outcome
                        .interrupted
                        .unwrap_or_else(|| events.last().map_or(0, |e| e.arrival)),
                ),
                final_watermark: i64::MIN,
                modelled: vec![
                    "nothing: the real Kafka Streams computed every output; latency measured whole (scheduled \
                     arrival → receipt from the output topic, the broker's two hops included); of it the output \
                     hop is the `broker` component (readable in the log → fetched, per result), the input hop is in a \
                     note, the rest is the application's"
                        .into(),
                ],
                notes,
                failures: outcome
                    .crash
                    .map(|c| FailureEvent {
                        at: c.at,
                        restarted_at: c.restarted_at,
                        replayed: c.replayed,
                    })
                    .into_iter()
                    .collect(),
                resident: None,
            })
        })))
    }
}

impl EngineExecutor for KafkaStreamsEngine {
    fn prepare<'a>(&'a self, ctx: EngineRunContext<'a>) -> Result<Prepared<'a>, String> {
        self.prepare_app(ctx)
    }

    fn config_json(&self) -> serde_json::Value {
        self.settings
            .merged_into(serde_json::to_value(self.config).expect("config serializes"))
    }

    fn config_text(&self) -> String {
        self.config_json().to_string()
    }

    fn slots(&self) -> usize {
        self.config.threads
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
        self.config.commit_interval().as_ms() / 1000.0
    }

    fn has_cache_wait(&self) -> bool {
        false
    }

    fn stability_notes(&self, _run: &EngineRun) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use streamlab_engines::time::Span;

    use super::*;
    use crate::executor::Durability;
    use crate::spec::Scenario;
    use crate::workload::Workload;

    const BASE: &str = r#"
name = "t"
duration = "2s"
clock = "live"
[workload]
transport = "kafka"
partitions = 2
rate = { profile = "constant", events_per_second = 10 }
[pipeline]
filter_kinds = ["click"]
[[engine]]
name = "ks"
model = "kafka-streams"
[[engine]]
name = "pr"
model = "per-record"
"#;

    fn crash_of(failures: &str, inject: bool) -> Result<Option<Nanos>, String> {
        let scenario = Scenario::parse(Path::new("t.toml"), &format!("{BASE}{failures}")).unwrap();
        let workload = Workload::build(&scenario, 1, Span::from_ms(100)).unwrap();
        let durability = Durability {
            inject_failures: inject,
            ..Durability::default()
        };
        let ctx = EngineRunContext {
            run: RunContext {
                scenario: &scenario,
                workload: &workload,
                until: 0,
                clock: &ClockSetup::Live,
                durability: &durability,
            },
            engine: &scenario.engines[0],
        };
        kafka_streams_crash(&ctx)
    }

    #[test]
    fn a_crash_placed_with_at_kills_the_application_then_and_only_when_injected() {
        let crash = "[[failure]]\nkind = \"crash\"\nat = \"1s\"\n";
        assert_eq!(crash_of(crash, true), Ok(Some(Span::from_ms(1000).nanos())));
        assert_eq!(crash_of(crash, false), Ok(None), "the failure-free baseline");
        let elsewhere = "[[failure]]\nkind = \"crash\"\nat = \"1s\"\nengine = \"pr\"\n";
        assert_eq!(crash_of(elsewhere, true), Ok(None));
    }

    #[test]
    fn a_failure_kafka_streams_cannot_be_given_is_refused_by_name() {
        for failure in [
            "[[failure]]\nkind = \"crash\"\ncheckpoint = 2\nengine = \"ks\"\n",
            "[[failure]]\nkind = \"crash\"\nat = \"1s\"\nscope = \"task\"\nengine = \"ks\"\n",
            "[[failure]]\nkind = \"straggler\"\nat = \"1s\"\nduration = \"1s\"\nfactor = 2.0\nengine = \"ks\"\n",
            "[[failure]]\nkind = \"crash\"\nat = \"1s\"\n[[failure]]\nkind = \"crash\"\nat = \"2s\"\n",
        ] {
            let e = crash_of(failure, true).unwrap_err();
            assert!(e.contains("engine `ks` (Kafka Streams)"), "{failure}: {e}");
        }
    }
}
