//! Sustainable throughput: the highest input rate at which an engine configuration's latency
//! does not keep growing over the run, found by searching over simulated runs.
//!
//! A probe runs the scenario on virtual time with its rate profile scaled. It is **stable**
//! when (a) the engine has read every event by the end of the run, (b) no more than 10 % of a
//! micro-batch query's batches took longer than the trigger interval (Spark's stability
//! condition "processing time ≤ trigger interval"), and (c) the latency of outputs delivered
//! in the last third of the arrival period is not more than 50 % (and 100 ms) above that of
//! the middle third. The search doubles the rate from the scenario's until a probe is
//! unstable (or halves it until one is stable), then bisects geometrically to within 2 %. It
//! stops at a maximum rate (default [`DEFAULT_MAX_RATE`]); a configuration still stable there
//! is reported as "at least" that rate. A probe lasts eight of the engine's characteristic
//! intervals (trigger interval; watermark interval or buffer timeout) and four window lengths,
//! at least 2 s and at most the scenario's duration. A probe without any output cannot be
//! judged and counts as unstable.

use streamlab_engines::time::{Nanos, Span};
use streamlab_reports::summary::LatencySummary;
use streamlab_workloads::RateProfile;

use crate::error_run::{Result, RunError};
use streamlab_engines::pipeline::{PipelineSpec, WindowSpec};

use crate::clock::clock_setup;
use crate::drive::run_engine;
use crate::executor::executor;
use crate::spec::{ClockKind, EngineSpec, Scenario};
pub use crate::stability::stability;
use crate::workload::Workload;

/// The highest rate the search tries unless told otherwise, events/s.
pub const DEFAULT_MAX_RATE: f64 = 20e6;

/// One probe of the search.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Scale applied to the scenario's rate profile.
    pub scale: f64,
    /// Mean input rate, events/s.
    pub rate: f64,
    /// Whether latency stayed bounded.
    pub stable: bool,
    /// Why not, if not.
    pub reason: Option<String>,
    /// Latency of the probe.
    pub latency: LatencySummary,
}

/// The search's answer for one engine configuration.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// The engine run's name.
    pub name: String,
    /// The highest stable rate found, events/s (0 if none).
    pub sustainable_eps: f64,
    /// True when the configuration was still stable at the search's maximum rate.
    pub at_limit: bool,
    /// Latency at that rate.
    pub latency: Option<LatencySummary>,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
}

fn scaled(rate: &RateProfile, f: f64) -> RateProfile {
    match *rate {
        RateProfile::Constant { events_per_second } => RateProfile::Constant {
            events_per_second: events_per_second * f,
        },
        RateProfile::Step { before, after, at } => RateProfile::Step {
            before: before * f,
            after: after * f,
            at,
        },
        RateProfile::Spike {
            base,
            peak,
            at,
            duration,
        } => RateProfile::Spike {
            base: base * f,
            peak: peak * f,
            at,
            duration,
        },
        RateProfile::Sine {
            mean,
            amplitude,
            period,
        } => RateProfile::Sine {
            mean: mean * f,
            amplitude: amplitude * f,
            period,
        },
    }
}

/// How long a pipeline's windows span, in seconds (0 for a stateless pipeline).
fn window_span(pipeline: &PipelineSpec) -> f64 {
    pipeline.aggregate.map_or(0.0, |a| match a.window {
        WindowSpec::Tumbling { size } | WindowSpec::Sliding { size, .. } => size.as_ms() / 1e3,
        WindowSpec::Session { gap } => gap.as_ms() / 1e3,
    })
}

/// Searches the sustainable rate of every engine of `scenario`. `on_probe` hears each probe.
pub fn capacity(
    scenario: &Scenario,
    seed: u64,
    max_rate: f64,
    mut on_probe: impl FnMut(&EngineSpec, &Probe),
) -> Result<Vec<Capacity>> {
    let Some(base_profile) = scenario.workload.rate() else {
        return Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: "key `workload.trace`: a capacity search scales the generator's rate; a trace cannot be scaled"
                .into(),
        });
    };
    let clock = clock_setup(scenario, ClockKind::Simulated)?;
    let base_rate = base_profile.cumulative(scenario.duration.nanos()) / (scenario.duration.nanos() as f64 / 1e9);
    let mut out = Vec::new();
    for engine in &scenario.engines {
        let mut probes: Vec<Probe> = Vec::new();
        let mut probe = |scale: f64, probes: &mut Vec<Probe>| -> Result<bool> {
            let rate = base_rate * scale;
            let scenario_secs = scenario.duration.nanos() as f64 / 1e9;
            let secs = (8.0 * executor(&engine.kind).characteristic_interval_s())
                .max(4.0 * window_span(&scenario.pipeline))
                .max(2.0)
                .min(scenario_secs);
            let duration = Span((secs * 1e9) as Nanos);
            let mut s = scenario.clone();
            s.workload = scenario.workload.with_rate(scaled(base_profile, scale));
            let workload = Workload::build(&s, seed, duration)?;
            let events = workload.expected_events().saturating_sub(1);
            let until = duration.nanos() + s.drain.nanos();
            let run = run_engine(&s, engine, &workload, until, &clock, &mut |_| Ok(()))?;
            let verdict = stability(&run, events, duration.nanos());
            let p = Probe {
                scale,
                rate,
                stable: verdict.is_ok(),
                reason: verdict.err(),
                latency: LatencySummary::from_histogram(&run.latency.total),
            };
            on_probe(engine, &p);
            let stable = p.stable;
            probes.push(p);
            Ok(stable)
        };
        let (mut lo, mut hi) = (None::<f64>, None::<f64>);
        let max_scale = max_rate / base_rate;
        let mut scale = 1.0f64.min(max_scale);
        let mut at_limit = false;
        for _ in 0..60 {
            if probe(scale, &mut probes)? {
                lo = Some(scale);
                if hi.is_some() {
                    break;
                }
                if scale >= max_scale {
                    at_limit = true;
                    break;
                }
                scale = (scale * 2.0).min(max_scale);
            } else {
                hi = Some(scale);
                if lo.is_some() || base_rate * scale < 1.0 {
                    break;
                }
                scale /= 2.0;
            }
        }
        if let (Some(mut l), Some(mut h)) = (lo, hi) {
            while h / l > 1.02 {
                let mid = (l * h).sqrt();
                if probe(mid, &mut probes)? {
                    l = mid;
                } else {
                    h = mid;
                }
            }
            lo = Some(l);
        }
        let best = lo.and_then(|l| probes.iter().find(|p| p.scale == l && p.stable));
        out.push(Capacity {
            name: engine.name.clone(),
            at_limit,
            sustainable_eps: best.map_or(0.0, |p| p.rate),
            latency: best.map(|p| p.latency),
            probes,
        });
    }
    Ok(out)
}
