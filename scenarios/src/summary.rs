//! The `summary.json` of a scenario run, from its engine runs: latency, components, throughput,
//! resources, counts and the notes a reader needs about whether each run kept up. The schema
//! is [`streamlab_reports::summary`]'s; this only fills it in. Failure marks and recovery
//! figures are added by the runner (see [`crate::failures`] and [`crate::recovery`]).

use std::collections::BTreeMap;

use streamlab_engines::latency::Component;
use streamlab_engines::pipeline::JoinType;
use streamlab_engines::run::EngineRun;
use streamlab_engines::time::{Nanos, Span, NANOS_PER_MS};
use streamlab_reports::summary::{Counts, LatencySummary, Resources, RunSummary, Stability, Summary};

use crate::clock::ClockSetup;
use crate::engine::EngineSpec;
use crate::executor::executor;
use crate::rounds::Rounds;
use crate::spec::Scenario;

/// The cores an engine run used, its throughput per core (of `throughput_eps`, the run's
/// reported throughput), and its resident memory.
fn resources(spec: &EngineSpec, run: &EngineRun, clock: &ClockSetup, throughput_eps: f64) -> Resources {
    let configured = executor(&spec.kind).slots();
    let cores = match clock {
        ClockSetup::Live => configured.min(std::thread::available_parallelism().map_or(1, |n| n.get())),
        ClockSetup::Simulated { .. } => configured,
    }
    .max(1);
    Resources {
        cores,
        throughput_eps_per_core: throughput_eps / cores as f64,
        start_rss_bytes: run.resident.map(|(start, _, _)| start),
        peak_rss_bytes: run.resident.map(|(_, peak, _)| peak),
        final_rss_bytes: run.resident.map(|(_, _, last)| last),
        per_core_vs_fastest_real: None,
    }
}

/// Each run's throughput per core over the fastest real engine's of the same run (`real`: which
/// runs are real engines); all `None` when no real engine read anything.
pub fn per_core_vs_fastest_real(per_core: &[(f64, bool)]) -> Vec<Option<f64>> {
    let fastest = per_core
        .iter()
        .filter(|(eps, real)| *real && *eps > 0.0)
        .map(|(eps, _)| *eps)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    per_core.iter().map(|(eps, _)| fastest.map(|f| eps / f)).collect()
}

/// What a run's summary is made from besides its engine runs.
#[derive(Clone, Copy, Debug)]
pub struct SummaryContext<'a> {
    /// The scenario run.
    pub scenario: &'a Scenario,
    /// The seed its workload was generated with.
    pub seed: u64,
    /// How long events arrived.
    pub duration: Span,
    /// The events the workload offered.
    pub events: u64,
    /// The clock it ran on.
    pub clock: &'a ClockSetup,
    /// The engine runs a Ctrl-C ended early, and where their clocks were then.
    pub stopped: &'a [(String, Nanos)],
    /// The measurement rounds before the kept run (`repeat`), whose median throughput each
    /// repeated run reports.
    pub rounds: &'a Rounds,
}

/// The `summary.json` of a run.
pub fn summarize(ctx: &SummaryContext<'_>, runs: &[(&EngineSpec, EngineRun)]) -> Summary {
    let SummaryContext {
        scenario,
        seed,
        duration,
        events,
        clock,
        stopped,
        rounds,
    } = *ctx;
    let mut modelled = Vec::new();
    let specs = runs;
    let runs: Vec<RunSummary> = specs
        .iter()
        .map(|(spec, run)| {
            let components_ms: BTreeMap<String, f64> = run
                .latency
                .reported
                .iter()
                .filter(|&&c| match c {
                    Component::WatermarkWait => scenario.pipeline.is_stateful(),
                    Component::CacheWait => executor(&spec.kind).has_cache_wait(),
                    Component::JoinWait => scenario
                        .pipeline
                        .join
                        .as_ref()
                        .is_some_and(|j| j.join_type != JoinType::Inner),
                    _ => true,
                })
                .map(|&c: &Component| {
                    (
                        c.name().to_string(),
                        run.latency.component_mean(c) / NANOS_PER_MS as f64,
                    )
                })
                .collect();
            let config = executor(&spec.kind).config_json();
            let mut notes = run.modelled.clone();
            notes.extend(run.notes.iter().cloned());
            if let (ClockSetup::Simulated { .. }, Some(profile)) = (clock, &spec.profile) {
                notes.push(format!(
                    "priced by its own cost profile `{profile}`, not the scenario's"
                ));
            }
            modelled.extend(run.modelled.iter().map(|m| format!("{}: {m}", spec.name)));
            // A run stopped early (Ctrl-C) is judged on what it read up to then.
            let stopped_at = stopped.iter().find(|(name, _)| *name == spec.name);
            let (events, duration) = match stopped_at {
                Some(&(_, at)) => (run.counts.events, Span(at)),
                None => (events, duration),
            };
            let (stability, stability_notes) = stability_notes(spec, run, events, duration);
            notes.extend(stability_notes);
            notes.extend(stalled_notes(spec, run, scenario.workload.partitions()));
            let (throughput, rounds_note) = rounds.report(spec, run.throughput_eps(), stopped_at.is_some());
            notes.extend(rounds_note);
            RunSummary {
                name: spec.name.clone(),
                model: spec.model().to_string(),
                config,
                latency_ms: LatencySummary::from_histogram(&run.latency.total),
                event_time_latency_ms: scenario
                    .pipeline
                    .is_stateful()
                    .then(|| LatencySummary::from_histogram(&run.latency.event_time)),
                components_ms,
                throughput_eps: throughput.eps,
                throughput_runs_eps: throughput.runs,
                resources: resources(spec, run, clock, throughput.eps),
                counts: Counts {
                    events: run.counts.events,
                    outputs: run.counts.outputs,
                    batches: run.counts.batches,
                    falling_behind: run.counts.falling_behind,
                    late_dropped: run.counts.late_dropped,
                    state_accesses: run.counts.state_accesses,
                    state_access_time_ns: run.counts.state_access_ns,
                    peak_state_rows: run.counts.peak_state_rows,
                },
                stability: Some(stability),
                notes,
                failures: Vec::new(),
                recovery: None,
            }
        })
        .collect();
    let mut runs = runs;
    let per_core: Vec<(f64, bool)> = runs
        .iter()
        .zip(specs)
        .map(|(r, (spec, _))| (r.resources.throughput_eps_per_core, spec.kind.is_real()))
        .collect();
    for (r, ratio) in runs.iter_mut().zip(per_core_vs_fastest_real(&per_core)) {
        r.resources.per_core_vs_fastest_real = ratio;
    }
    let measured = match clock {
        ClockSetup::Live => vec![
            "latency of every output, from its scheduled arrival to delivery, on the wall clock".into(),
            "batch phase durations and per-record stage timestamps, on the wall clock".into(),
            "throughput: events read per second of the run".into(),
        ],
        ClockSetup::Simulated { .. } => {
            vec!["outputs: computed by the engines' real operator code (identical to a live run's)".into()]
        }
    };
    if let ClockSetup::Simulated { profile, cluster } = clock {
        modelled.insert(
            0,
            format!(
                "all durations: virtual time priced by cost profile `{}` ({}) on {} node(s) x {} core(s)",
                profile.name, profile.description, cluster.nodes, cluster.cores_per_node
            ),
        );
    }
    Summary {
        schema_version: streamlab_reports::summary::SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        seed,
        clock: clock.name().into(),
        duration_s: duration.nanos() as f64 / 1e9,
        measured,
        modelled,
        runs,
        interrupted: None,
    }
}

/// Why a run produced no output or stalled: what its kind can tell (a per-record source subtask
/// holding the watermark), else, for a run without output, what usually causes it.
fn stalled_notes(spec: &EngineSpec, run: &EngineRun, partitions: Option<usize>) -> Vec<String> {
    let mut notes = executor(&spec.kind).stalled_notes(run, partitions);
    if notes.is_empty() && run.counts.outputs == 0 {
        notes.push(
            "no output: nothing was delivered, so no latency is reported (`-`). A window is emitted only once the \
             watermark passes its end: a run shorter than a window plus the watermark delay, or a filter that keeps \
             nothing, produces none"
                .into(),
        );
    }
    notes
}

/// What a reader must know about whether a run kept up: what its kind says (for a micro-batch
/// query falling-behind batches and Spark's stability condition), then the judgement from the
/// measured backlog and latency trend ([`crate::stability::judge`]) with the note that
/// explains it.
fn stability_notes(spec: &EngineSpec, run: &EngineRun, events: u64, duration: Span) -> (Stability, Vec<String>) {
    let mut notes = executor(&spec.kind).stability_notes(run);
    let (stability, why) = crate::stability::judge(run, events, duration.nanos());
    notes.extend(why);
    (stability, notes)
}

#[cfg(test)]
mod tests {
    use super::per_core_vs_fastest_real;

    #[test]
    fn every_run_is_set_against_the_fastest_real_engine_per_core() {
        // Native micro-batch, native per-record, Spark, Flink.
        let runs = [(90e6, false), (45e6, false), (2e6, true), (4e6, true)];
        let ratios: Vec<f64> = per_core_vs_fastest_real(&runs)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(ratios, [22.5, 11.25, 0.5, 1.0]);
    }

    #[test]
    fn without_a_real_engine_that_read_anything_there_is_no_ratio() {
        assert_eq!(per_core_vs_fastest_real(&[(90e6, false), (45e6, false)]), [None, None]);
        assert_eq!(per_core_vs_fastest_real(&[(90e6, false), (0.0, true)]), [None, None]);
    }
}
