//! `streamlab calibrate --against spark|flink|kafka-streams [SCENARIO]`: a cost profile fitted to a real
//! engine, from what that engine measured of itself and what streamlab measured of it.
//!
//! The fit runs every configuration of the given engine in the scenario (by default the
//! built-in fit scenario of that engine) on the real engine, then sets the profile's
//! parameters, starting from the `local` profile (this machine, measured by `streamlab
//! calibrate`), each from a named measurement:
//!
//! **Spark** — from its `StreamingQueryProgress` records (`durationMs` per phase, batches after
//! the warm-up):
//! * `log_write_ns` ← the median of `walCommit` and `commitOffsets` (each one durable write);
//! * `batch_job_ns` ← the median of `queryPlanning` (planning and submitting the batch's job);
//! * `source_poll_ns_per_partition` ← the median of `latestOffset` over the source partitions;
//! * `task_launch_ns` and the per-record costs ← a least-squares line through every batch's
//!   `addBatch`: `addBatch = task_launch × waves + per_row × rows per worker`, where waves are the
//!   batch's task waves (map tasks over workers, plus reduce tasks for a windowed query). The
//!   per-row cost scales every per-record parameter of `local` by one factor, so their ratios
//!   (what an operator costs against another) stay this machine's;
//! * then `task_launch_ns` is refined against streamlab's own measurement: the multiplier (0.1
//!   to 2) whose simulated p50 latencies of the fitted configurations are closest to the
//!   measured ones (the intercept of a line through noisy batches is the least certain number).
//!
//! **Flink** — its per-record path has no batch phases to read, so the fit uses streamlab's own
//! latency measurement: at a short buffer timeout (the fit runs 1 ms and 50 ms) records are
//! flushed almost at once, and the latency beyond what the native model already prices is the
//! delay of the engine's record path (source fetch loop, network stack, mailbox wake-ups),
//! shared over its exchange hops as `exchange_latency_ns` — a delay, not CPU — with its jitter
//! (`exchange_jitter_ns`, the mean of an exponential extra delay) fitted to the p99s.
//!
//! **Kafka Streams** — as Flink, from streamlab's latency, on its native twin (the per-record
//! engine with its knobs, `against::kafka_streams_twin`): the same two delay parameters, on a
//! grid a hundred times wider (0–150 ms, 0–60 ms), since they stand for the broker's two hops
//! and, under exactly-once, the commit that makes a result visible.
//!
//! The profile records the command, the date and the signature of every configuration it saw,
//! so `streamlab validate --against` can tell fitted configurations from unseen ones.

use streamlab_engines::cost::CostModel;
use streamlab_engines::microbatch::MicroBatchConfig;

use crate::against::{latency_after, native_twin, run_real, signature, warmup_of};
use crate::clock::ClockSetup;
use crate::drive::run_engine;
use crate::engine::{EngineKind, EngineSpec};
use crate::error_run::{Result, RunError};
use crate::profile::{FitRecord, Profile};
use crate::spec::Scenario;
use crate::workload::Workload;

/// Batches at the start of a run left out of the fit (JIT, Python worker start, first plans).
pub const WARMUP_BATCHES: u64 = 3;

/// One Spark batch as the fit reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchSample {
    /// `durationMs` phases, ms.
    pub latest_offset: f64,
    /// `walCommit`, ms.
    pub wal_commit: f64,
    /// `queryPlanning`, ms.
    pub query_planning: f64,
    /// `addBatch`, ms.
    pub add_batch: f64,
    /// `commitOffsets`, ms.
    pub commit_offsets: f64,
    /// `numInputRows`.
    pub rows: f64,
    /// Task waves of the batch under its configuration.
    pub waves: f64,
    /// Rows each worker handles.
    pub rows_per_worker: f64,
    /// Source partitions polled.
    pub partitions: f64,
}

/// The batches of a Spark run worth fitting on: after the warm-up, with data.
pub fn spark_samples(
    progress: &[serde_json::Value],
    cfg: &MicroBatchConfig,
    partitions: usize,
    stateful: bool,
) -> Vec<BatchSample> {
    let workers = cfg.workers.max(1) as f64;
    let waves = (partitions as f64 / workers).ceil()
        + if stateful {
            (cfg.shuffle_partitions as f64 / workers).ceil()
        } else {
            0.0
        };
    progress
        .iter()
        .filter_map(|p| p.get("record"))
        .filter(|r| r["batchId"].as_u64().is_some_and(|b| b >= WARMUP_BATCHES))
        .filter_map(|r| {
            let d = &r["durationMs"];
            let ms = |k: &str| d[k].as_f64().unwrap_or(0.0);
            let rows = r["numInputRows"].as_f64()?;
            (rows > 0.0).then(|| BatchSample {
                latest_offset: ms("latestOffset"),
                wal_commit: ms("walCommit"),
                query_planning: ms("queryPlanning"),
                add_batch: ms("addBatch"),
                commit_offsets: ms("commitOffsets"),
                rows,
                waves,
                rows_per_worker: rows / workers.min(partitions as f64),
                partitions: partitions as f64,
            })
        })
        .collect()
}

/// The median of `values` (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Least squares of `y = a·x1 + b·x2` with `a, b ≥ 0` (a negative one is set to 0 and the other
/// refitted alone).
pub fn nonnegative_fit(points: &[(f64, f64, f64)]) -> (f64, f64) {
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x1, x2, y) in points {
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        s1y += x1 * y;
        s2y += x2 * y;
    }
    let alone = |sxx: f64, sxy: f64| if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
    let det = s11 * s22 - s12 * s12;
    if det.abs() < 1e-12 {
        return (alone(s11, s1y), 0.0);
    }
    let a = (s1y * s22 - s2y * s12) / det;
    let b = (s2y * s11 - s1y * s12) / det;
    match (a >= 0.0, b >= 0.0) {
        (true, true) => (a, b),
        (false, _) => (0.0, alone(s22, s2y)),
        (_, false) => (alone(s11, s1y), 0.0),
    }
}

/// The per-record cost of one row of `stateful`-or-not pipeline under `costs`, ns: what the
/// fitted per-row slope is divided among.
fn per_row_cost(costs: &CostModel, stateful: bool) -> f64 {
    costs.source_read_ns_per_event
        + costs.chain_ns_per_event
        + if stateful {
            costs.shuffle_ns_per_row + costs.state_ns_per_update
        } else {
            costs.sink_ns_per_record
        }
}

/// Sets `costs` from Spark batches (see the module header); returns what was set, one line each.
pub fn fit_spark_costs(costs: &mut CostModel, samples: &[(BatchSample, bool)]) -> Vec<String> {
    let ms = 1e6;
    let mut said = Vec::new();
    let writes: Vec<f64> = samples
        .iter()
        .flat_map(|(s, _)| [s.wal_commit, s.commit_offsets])
        .collect();
    costs.log_write_ns = median(writes) * ms;
    said.push(format!(
        "log_write_ns = {:.0} (median walCommit/commitOffsets)",
        costs.log_write_ns
    ));
    costs.batch_job_ns = median(samples.iter().map(|(s, _)| s.query_planning).collect()) * ms;
    said.push(format!(
        "batch_job_ns = {:.0} (median queryPlanning)",
        costs.batch_job_ns
    ));
    costs.source_poll_ns_per_partition =
        median(samples.iter().map(|(s, _)| s.latest_offset / s.partitions).collect()) * ms;
    said.push(format!(
        "source_poll_ns_per_partition = {:.0} (median latestOffset / partitions)",
        costs.source_poll_ns_per_partition
    ));
    let points: Vec<(f64, f64, f64)> = samples
        .iter()
        .map(|(s, _)| (s.waves, s.rows_per_worker, s.add_batch * ms))
        .collect();
    let (per_wave, per_row) = nonnegative_fit(&points);
    costs.task_launch_ns = per_wave;
    said.push(format!(
        "task_launch_ns = {per_wave:.0} (addBatch per task wave, least squares)"
    ));
    let stateful_share = samples.iter().filter(|(_, st)| *st).count() as f64 / samples.len().max(1) as f64;
    let base = stateful_share * per_row_cost(costs, true) + (1.0 - stateful_share) * per_row_cost(costs, false);
    if base > 0.0 && per_row > 0.0 {
        let k = per_row / base;
        for p in [
            &mut costs.source_read_ns_per_event,
            &mut costs.chain_ns_per_event,
            &mut costs.state_ns_per_update,
            &mut costs.emit_ns_per_result,
            &mut costs.sink_ns_per_record,
            &mut costs.shuffle_ns_per_row,
        ] {
            *p *= k;
        }
        said.push(format!(
            "per-record costs x {k:.1} (addBatch per row per worker {per_row:.0} ns, least squares)"
        ));
    }
    said
}

/// Rounds every cost to 3 significant digits: a fit is not more precise than that, and the
/// profile reads better.
fn round_costs(costs: &mut CostModel) {
    let round = |v: &mut f64| {
        if *v > 0.0 {
            let scale = 10f64.powi(2 - v.log10().floor() as i32);
            *v = (*v * scale).round() / scale;
        }
    };
    for p in [
        &mut costs.source_read_ns_per_event,
        &mut costs.chain_ns_per_event,
        &mut costs.state_ns_per_update,
        &mut costs.emit_ns_per_result,
        &mut costs.sink_ns_per_record,
        &mut costs.shuffle_ns_per_row,
        &mut costs.batch_job_ns,
        &mut costs.task_launch_ns,
        &mut costs.source_poll_ns_per_partition,
        &mut costs.log_write_ns,
        &mut costs.exchange_latency_ns,
        &mut costs.exchange_jitter_ns,
    ] {
        round(p);
    }
}

/// A fitted configuration: its scenario, its native twin (no profile of its own) and the real
/// engine's measured p50 and p99, ms.
type Measured<'a> = (&'a Scenario, EngineSpec, f64, f64);

/// The candidate, among `candidates` (applied by `set`), whose simulated latencies of the fitted
/// configurations are closest to the measured ones: least squares of the log ratio of the p50s,
/// and of the p99s too when `tails` is set. The other parameters stay as they are. Returns the
/// candidate chosen.
fn refine<T: Copy>(
    costs: &mut CostModel,
    measured: &[Measured<'_>],
    candidates: impl Iterator<Item = T>,
    set: fn(&mut CostModel, T),
    tails: bool,
) -> Result<T> {
    let mut best: Option<(f64, T)> = None;
    for value in candidates {
        let mut trial = *costs;
        set(&mut trial, value);
        let mut error = 0.0;
        for (scenario, twin, real_p50, real_p99) in measured {
            let clock = ClockSetup::Simulated {
                profile: Box::new(Profile {
                    name: "fit".into(),
                    description: String::new(),
                    costs: trial,
                    fit: None,
                }),
                cluster: scenario.cluster,
            };
            let workload = Workload::build(scenario, scenario.seed, scenario.duration)?;
            let until = scenario.duration.nanos() + scenario.drain.nanos();
            let mut delivered = Vec::new();
            run_engine(scenario, twin, &workload, until, &clock, &mut |d| {
                delivered.extend(d);
                Ok(())
            })?;
            let sim = latency_after(&delivered, measured_warmup(scenario, twin));
            let mut term = |real: f64, sim: f64| {
                if real > 0.0 && sim > 0.0 {
                    error += (sim / real).ln().powi(2);
                }
            };
            term(*real_p50, sim.p50);
            if tails {
                term(*real_p99, sim.p99);
            }
        }
        if best.is_none_or(|(e, _)| error < e) {
            best = Some((error, value));
        }
    }
    let (_, chosen) = best.expect("at least one candidate");
    set(costs, chosen);
    Ok(chosen)
}

/// Scales `task_launch_ns` (the part of a batch's fixed cost the phase fit is least sure of: an
/// intercept of a line through noisy batches) by the multiplier from 0.1 to 2, in steps of 0.05,
/// that brings the simulated p50s closest to the measured ones.
fn refine_task_launch(costs: &mut CostModel, measured: &[Measured<'_>]) -> Result<String> {
    let fitted = costs.task_launch_ns;
    let chosen = refine(
        costs,
        measured,
        (2..=40).map(|k| fitted * k as f64 * 0.05),
        |c, v| c.task_launch_ns = v,
        false,
    )?;
    Ok(format!(
        "task_launch_ns x {:.2} = {chosen:.0} (the multiplier whose simulated p50s are closest to the measured ones)",
        chosen / fitted
    ))
}

/// Sets `exchange_latency_ns` (0 to 1.5 ms in steps of 50 µs) and `exchange_jitter_ns` (0 to
/// 1 ms in steps of 100 µs) to the pair whose simulated p50s and p99s are closest to Flink's
/// measured ones: the constant part of the record path's delay shows in the median, its jitter
/// in the tail.
fn refine_exchange_latency(costs: &mut CostModel, measured: &[Measured<'_>]) -> Result<Vec<String>> {
    let grid = (0..=30u32).flat_map(|c| (0..=10u32).map(move |j| (c as f64 * 50_000.0, j as f64 * 100_000.0)));
    refine_delay(costs, measured, grid)
}

/// Kafka Streams' record path is the per-record twin's plus what the model does not take apart:
/// two broker hops (produce → log append → fetch) and, under exactly-once, the commit that makes
/// a result visible; so the same pair is fitted on a grid a hundred times wider:
/// `exchange_latency_ns` 0 to 150 ms in steps of 5 ms, `exchange_jitter_ns` 0 to 60 ms in steps
/// of 10 ms.
fn refine_kafka_streams_delay(costs: &mut CostModel, measured: &[Measured<'_>]) -> Result<Vec<String>> {
    let grid = (0..=30u32).flat_map(|c| (0..=6u32).map(move |j| (c as f64 * 5e6, j as f64 * 1e7)));
    refine_delay(costs, measured, grid)
}

/// The (exchange latency, jitter) pair of `grid` closest to the measured p50s and p99s.
fn refine_delay(
    costs: &mut CostModel,
    measured: &[Measured<'_>],
    grid: impl Iterator<Item = (f64, f64)>,
) -> Result<Vec<String>> {
    let (latency, jitter) = refine(
        costs,
        measured,
        grid,
        |c, (latency, jitter)| {
            c.exchange_latency_ns = latency;
            c.exchange_jitter_ns = jitter;
        },
        true,
    )?;
    Ok(vec![
        format!("exchange_latency_ns = {latency:.0} (with the jitter, closest to the measured p50s and p99s)"),
        format!("exchange_jitter_ns = {jitter:.0} (mean of the exponential extra delay)"),
    ])
}

/// The warm-up of the real engine a twin stands for (the twin is named like it).
fn measured_warmup(scenario: &Scenario, twin: &EngineSpec) -> streamlab_engines::time::Nanos {
    scenario
        .engines
        .iter()
        .find(|e| e.name == twin.name)
        .map_or(0, warmup_of)
}

/// A fitted profile and what the fit did.
#[derive(Debug)]
pub struct Fitted {
    /// The profile.
    pub profile: Profile,
    /// What each parameter was set from, one line each.
    pub steps: Vec<String>,
}

/// Fits a profile to the real `model` (`spark` or `flink`) over the real engines of that model
/// in `scenarios`, starting from `base`. `command` and `date` are recorded in the profile.
pub fn fit(
    scenarios: &[Scenario],
    model: &str,
    base: &Profile,
    command: &str,
    date: &str,
    mut on_run: impl FnMut(&Scenario, &EngineSpec),
) -> Result<Fitted> {
    let mut costs = base.costs;
    let mut configurations = Vec::new();
    let mut samples = Vec::new();
    // Each fitted configuration's measured p50, for the latency refinement.
    let mut measured: Vec<Measured<'_>> = Vec::new();
    for scenario in scenarios {
        let engines: Vec<&EngineSpec> = scenario
            .engines
            .iter()
            .filter(|e| e.kind.is_real() && e.model() == model)
            .collect();
        if engines.is_empty() {
            return Err(RunError::Unsupported {
                path: scenario.path.clone(),
                message: format!("no [[engine]] with model = \"{model}\" to fit a profile to"),
            });
        }
        let workload = Workload::build(scenario, scenario.seed, scenario.duration)?;
        let until = scenario.duration.nanos() + scenario.drain.nanos();
        let stateful = scenario.pipeline.is_stateful();
        for engine in engines {
            on_run(scenario, engine);
            let (run, delivered) = run_real(scenario, engine, &workload, until)?;
            configurations.push(signature(scenario, engine));
            let mut twin = native_twin(engine).expect("a real engine");
            twin.profile = None;
            let real = latency_after(&delivered, warmup_of(engine));
            measured.push((scenario, twin, real.p50, real.p99));
            if let EngineKind::Spark(real) = &engine.kind {
                samples.extend(
                    spark_samples(&run.progress, &real.config, workload.partitions, stateful)
                        .into_iter()
                        .map(|s| (s, stateful)),
                );
            }
        }
    }
    let refuse = |message: String| RunError::Unsupported {
        path: scenarios.first().map(|s| s.path.clone()).unwrap_or_default(),
        message,
    };
    let steps = match model {
        "spark" if samples.is_empty() => {
            return Err(refuse(format!(
                "Spark ran no batch with data after its first {WARMUP_BATCHES}; lengthen the scenario's duration"
            )))
        }
        "spark" => {
            let mut steps = fit_spark_costs(&mut costs, &samples);
            steps.push(refine_task_launch(&mut costs, &measured)?);
            steps
        }
        "flink" => refine_exchange_latency(&mut costs, &measured)?,
        "kafka-streams" => refine_kafka_streams_delay(&mut costs, &measured)?,
        other => {
            return Err(refuse(format!(
                "fitting a profile to `{other}` is not supported; expected `spark`, `flink` or `kafka-streams`"
            )))
        }
    };
    for (name, value) in costs.parameters() {
        debug_assert!(value.is_finite(), "{name}");
    }
    round_costs(&mut costs);
    let profile = Profile {
        name: format!("{model}-local"),
        description: format!("the real {model} on this machine, fitted by `{command}` on {date}"),
        costs,
        fit: Some(Box::new(FitRecord {
            engine: model.into(),
            command: command.into(),
            date: date.into(),
            configurations,
        })),
    };
    Ok(Fitted { profile, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_through_exact_points_is_found_and_never_negative() {
        // addBatch = 100 per wave + 2 per row.
        let points: Vec<(f64, f64, f64)> = [(1.0, 10.0), (2.0, 50.0), (1.0, 400.0), (2.0, 30.0)]
            .iter()
            .map(|&(w, r)| (w, r, 100.0 * w + 2.0 * r))
            .collect();
        let (a, b) = nonnegative_fit(&points);
        assert!((a - 100.0).abs() < 1e-6 && (b - 2.0).abs() < 1e-6, "{a} {b}");
        // Falling with rows: the slope would be negative, so it is 0 and the waves take it all.
        let (a, b) = nonnegative_fit(&[(1.0, 10.0, 100.0), (1.0, 100.0, 50.0)]);
        assert_eq!(b, 0.0);
        assert!((a - 75.0).abs() < 1e-9, "{a}");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn spark_batches_after_the_warm_up_with_data_are_sampled() {
        let record = |id: u64, rows: u64| {
            serde_json::json!({"measured_by": "spark", "record": {
                "batchId": id, "numInputRows": rows,
                "durationMs": {"latestOffset": 2, "walCommit": 40, "queryPlanning": 30, "addBatch": 300, "commitOffsets": 50}
            }})
        };
        let progress: Vec<_> = [(0, 100), (1, 100), (2, 100), (3, 1000), (4, 0), (5, 2000)]
            .iter()
            .map(|&(id, rows)| record(id, rows))
            .collect();
        let cfg = MicroBatchConfig {
            workers: 2,
            shuffle_partitions: 4,
            ..MicroBatchConfig::default()
        };
        let samples = spark_samples(&progress, &cfg, 2, true);
        assert_eq!(samples.len(), 2, "batches 3 and 5");
        assert_eq!(samples[0].rows, 1000.0);
        assert_eq!(samples[0].waves, 1.0 + 2.0, "one map wave, two reduce waves");
        assert_eq!(samples[0].rows_per_worker, 500.0);
        let mut costs = CostModel::FREE;
        costs.source_read_ns_per_event = 1.0;
        costs.chain_ns_per_event = 1.0;
        let steps = fit_spark_costs(&mut costs, &samples.iter().map(|s| (*s, true)).collect::<Vec<_>>());
        assert_eq!(costs.log_write_ns, 45e6, "median of 40 and 50 ms");
        assert_eq!(costs.batch_job_ns, 30e6);
        assert_eq!(costs.source_poll_ns_per_partition, 1e6);
        assert!(steps.len() >= 4, "{steps:?}");
    }
}
