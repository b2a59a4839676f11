//! The simulated clock against the real engines: `streamlab validate --against
//! spark,flink,kafka-streams`.
//!
//! Each real engine of the scenario (`model = "spark"` or `"flink"`) runs twice: on the real
//! engine (live clock), and as its native twin — the native model with the very same keys
//! (`micro-batch` for Spark, `per-record` for Flink, the per-record engine with Kafka Streams'
//! knobs for Kafka Streams: [`kafka_streams_twin`]) — on the simulated clock, priced by the
//! engine's `profile` or, by default, the profile fitted to that engine (`spark-local`,
//! `flink-local`, `kafka-streams-local`). p50 and p99 are compared over the outputs delivered after the engine's
//! warm-up, on both sides alike, and every row says whether the fit saw that configuration
//! (its signature is in the profile's `[fit]` list) or not: only the unseen ones test the fit.

use hdrhistogram::Histogram;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::time::{Nanos, Span};
use streamlab_real_engines::kafka_streams::KafkaStreamsConfig;
use streamlab_reports::summary::LatencySummary;

use crate::clock::{clock_setup, ClockSetup};
use crate::drive::run_engine;
use crate::engine::{EngineKind, EngineSpec};
use crate::error_run::{Result, RunError};
use crate::profile::load_profile;
use crate::spec::{ClockKind, Scenario};
use crate::workload::Workload;

/// The relative error of p50 and p99 within which a fitted profile is said to predict the real
/// engine (issue 12's bar).
pub const TOLERANCE: f64 = 0.25;

/// A real engine's model name (`spark`, `flink`), from a `--against` list.
pub fn parse_models(list: &str) -> std::result::Result<Vec<&'static str>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| match m {
            "spark" => Ok("spark"),
            "flink" => Ok("flink"),
            "kafka-streams" => Ok("kafka-streams"),
            other => Err(format!(
                "unknown real engine `{other}`; expected `spark`, `flink`, `kafka-streams` or several, comma-separated"
            )),
        })
        .collect()
}

/// The native model with the same keys as real engine `engine`, priced by its own profile or
/// the one fitted to its engine; `None` for a native engine.
pub fn native_twin(engine: &EngineSpec) -> Option<EngineSpec> {
    let kind = match &engine.kind {
        EngineKind::Spark(real) => EngineKind::MicroBatch(real.config),
        EngineKind::Flink(real) => EngineKind::PerRecord(real.config),
        EngineKind::KafkaStreams(real) => EngineKind::PerRecord(kafka_streams_twin(&real.config)),
        _ => return None,
    };
    Some(EngineSpec {
        name: engine.name.clone(),
        profile: Some(
            engine
                .profile
                .clone()
                .unwrap_or_else(|| format!("{}-local", engine.model())),
        ),
        kind,
    })
}

/// Kafka Streams' native twin: the per-record engine with its knobs. One source subtask per
/// stream thread; stream time as a watermark `grace` behind the largest event time (a window is
/// final once stream time passes its end plus the grace period), advanced every 10 ms. With
/// `suppress` a window's one final result comes when that watermark passes it (the per-record
/// engine's firing); without, the record cache forwards each window's latest value at every
/// commit (`commit_interval`, the per-record engine's Kafka Streams mode). The broker's two hops
/// and the commit that makes a result visible are not modelled apart: the fitted profile's
/// exchange latency and jitter stand for them.
pub fn kafka_streams_twin(ks: &KafkaStreamsConfig) -> DataflowConfig {
    DataflowConfig {
        parallelism: ks.threads,
        out_of_orderness: ks.grace,
        auto_watermark_interval: Span::from_ms(10),
        // A suppressed window's final result leaves with the next commit: the output flusher at
        // the commit interval.
        buffer_timeout: ks.commit_interval(),
        commit_interval: (!ks.suppress).then(|| ks.commit_interval()),
        ..DataflowConfig::default()
    }
}

/// What identifies a configuration for the fit: the pipeline's shape and the native keys
/// (not where the engine runs, its warm-up or passed-through settings).
pub fn signature(scenario: &Scenario, engine: &EngineSpec) -> String {
    let twin = native_twin(engine).unwrap_or_else(|| engine.clone());
    format!(
        "{} {} {}",
        engine.model(),
        serde_json::to_string(&scenario.pipeline).expect("pipeline serializes"),
        crate::executor::executor(&twin.kind).config_text()
    )
}

/// The warm-up of a real engine (outputs before it are left out on both clocks).
pub fn warmup_of(engine: &EngineSpec) -> Nanos {
    match &engine.kind {
        EngineKind::Spark(r) => r.settings.warmup.nanos(),
        EngineKind::Flink(r) => r.settings.warmup.nanos(),
        EngineKind::KafkaStreams(r) => r.settings.warmup.nanos(),
        _ => 0,
    }
}

/// Latency over the outputs delivered at or after `warmup`, measured the one way both clocks
/// share: delivery − the scheduled arrival of the output's origin.
pub fn latency_after(delivered: &[Delivered], warmup: Nanos) -> LatencySummary {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3 * 3600 * 1_000_000_000, 3).expect("valid bounds");
    for d in delivered.iter().filter(|d| d.at >= warmup) {
        let origin = d.output.origin().arrival;
        hist.saturating_record(d.at.saturating_sub(origin).max(1));
    }
    LatencySummary::from_histogram(&hist)
}

/// One real engine configuration against its simulated twin.
#[derive(Debug)]
pub struct Against {
    /// The engine run's name.
    pub name: String,
    /// `spark` or `flink`.
    pub model: &'static str,
    /// The profile the twin was priced with.
    pub profile: String,
    /// Whether the profile's fit used this configuration.
    pub fitted: bool,
    /// The real engine's latency after the warm-up.
    pub real: LatencySummary,
    /// The simulated twin's latency after the same warm-up.
    pub simulated: LatencySummary,
    /// Whether the real engine's outputs equal the reference evaluator's (its note).
    pub outputs: String,
    /// The real engine's run, for a fit.
    pub real_run: EngineRun,
    /// What the real engine delivered.
    pub real_delivered: Vec<Delivered>,
}

impl Against {
    /// Relative error of `simulated` against `real`.
    pub fn error(real: f64, simulated: f64) -> f64 {
        crate::validate::Comparison::relative_error(real, simulated)
    }

    /// Whether p50 and p99 are within [`TOLERANCE`].
    pub fn agrees(&self) -> bool {
        Self::error(self.real.p50, self.simulated.p50) <= TOLERANCE
            && Self::error(self.real.p99, self.simulated.p99) <= TOLERANCE
    }
}

/// Runs one real engine of `scenario` on the real engine; returns its run and its outputs.
pub fn run_real(
    scenario: &Scenario,
    engine: &EngineSpec,
    workload: &Workload,
    until: Nanos,
) -> Result<(EngineRun, Vec<Delivered>)> {
    let mut delivered = Vec::new();
    let run = run_engine(scenario, engine, workload, until, &ClockSetup::Live, &mut |d| {
        delivered.extend(d);
        Ok(())
    })?;
    Ok((run, delivered))
}

/// Runs every real engine of `scenario` whose model is in `models` on the real engine and its
/// twin on the simulated clock. `simulate = false` skips the twin (a fit's measuring runs).
pub fn validate_against(
    scenario: &Scenario,
    seed: u64,
    duration: Span,
    models: &[&str],
    mut on_run: impl FnMut(&EngineSpec, ClockKind),
) -> Result<Vec<Against>> {
    let engines: Vec<&EngineSpec> = scenario
        .engines
        .iter()
        .filter(|e| e.kind.is_real() && models.contains(&e.model()))
        .collect();
    if engines.is_empty() {
        return Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: format!(
                "no [[engine]] with model {} to validate against; add one (e.g. model = \"spark\" with the micro-batch keys)",
                models.join(" or ")
            ),
        });
    }
    let workload = Workload::build(scenario, seed, duration)?;
    let until = duration.nanos() + scenario.drain.nanos();
    let simulated = clock_setup(scenario, ClockKind::Simulated)?;
    let base = scenario.path.parent().unwrap_or(std::path::Path::new(""));
    let mut rows = Vec::new();
    for engine in engines {
        let twin = native_twin(engine).expect("a real engine");
        let profile_spec = twin.profile.clone().expect("a twin has a profile");
        let profile = load_profile(&profile_spec, base).map_err(|e| RunError::Engine {
            path: scenario.path.clone(),
            engine: engine.name.clone(),
            message: e.to_string(),
        })?;
        let warmup = warmup_of(engine);
        on_run(engine, ClockKind::Live);
        let (real_run, real_delivered) = run_real(scenario, engine, &workload, until)?;
        on_run(engine, ClockKind::Simulated);
        let mut sim_delivered = Vec::new();
        run_engine(scenario, &twin, &workload, until, &simulated, &mut |d| {
            sim_delivered.extend(d);
            Ok(())
        })?;
        let signature = signature(scenario, engine);
        rows.push(Against {
            name: engine.name.clone(),
            model: engine.model(),
            profile: profile_spec,
            fitted: profile
                .fit
                .as_ref()
                .is_some_and(|f| f.configurations.contains(&signature)),
            real: latency_after(&real_delivered, warmup),
            simulated: latency_after(&sim_delivered, warmup),
            outputs: real_run
                .notes
                .iter()
                .find(|n| n.starts_with("outputs equal") || n.starts_with("OUTPUTS DIFFER"))
                .cloned()
                .unwrap_or_default(),
            real_run,
            real_delivered,
        });
    }
    Ok(rows)
}

/// The side-by-side table `streamlab validate --against` prints.
pub fn against_table(rows: &[Against]) -> String {
    let mut s = format!(
        "{:<26} {:<12} {:<7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}  {}\n",
        "engine", "profile", "fit", "p50 real", "p50 sim", "err", "p99 real", "p99 sim", "err", "real outputs"
    );
    for r in rows {
        let e = |a: f64, b: f64| format!("{:.1}%", 100.0 * Against::error(a, b));
        let outputs = if r.outputs.starts_with("outputs equal") {
            "equal the reference"
        } else {
            "DIFFER from the reference"
        };
        s += &format!(
            "{:<26} {:<12} {:<7} {:>10.1} {:>10.1} {:>7} {:>10.1} {:>10.1} {:>7}  {}\n",
            r.name,
            r.profile,
            if r.fitted { "seen" } else { "unseen" },
            r.real.p50,
            r.simulated.p50,
            e(r.real.p50, r.simulated.p50),
            r.real.p99,
            r.simulated.p99,
            e(r.real.p99, r.simulated.p99),
            outputs
        );
    }
    s + &format!(
        "latency in ms after each engine's warm-up; real = measured on the real engine, sim = its native twin on the \
         simulated clock; the fit predicts the engine when p50 and p99 are within {:.0}% on configurations it did not \
         see (fit = unseen)\n",
        TOLERANCE * 100.0
    )
}
