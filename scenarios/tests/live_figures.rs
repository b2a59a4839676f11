//! On the simulated clock, the figures only an engine counts — micro-batches falling behind and
//! checkpoints completed — reach a run's pulse segment by segment while it runs, not only at its
//! end; the counts only grow, end at the run's own. Costs well
//! under a second (20 s of virtual time at a low rate).

use std::path::Path;

use streamlab_engines::pulse::PulseReading;
use streamlab_engines::run::EngineRun;
use streamlab_scenarios::clock::clock_setup;
use streamlab_scenarios::drive::run_engines;
use streamlab_scenarios::executor::{Durability, RunContext};
use streamlab_scenarios::spec::Scenario;
use streamlab_scenarios::watch;
use streamlab_scenarios::workload::Workload;

/// Every micro-batch overruns its 100 ms trigger (120 ms of modelled scheduling), and the
/// per-record job checkpoints every second: both counts grow over the four segments.
const SCENARIO: &str = r#"
name = "live-figures"
seed = 5
duration = "20s"
drain = "2s"
clock = "simulated"
profile = "local"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 500 }

[pipeline]
filter_kinds = ["click", "view"]

[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "100ms" }
scheduling = { per_batch = "100ms", per_task = "10ms" }

[[engine]]
name = "pr"
model = "per-record"
parallelism = 1
checkpoint_interval = "1s"
"#;

/// Runs the scenario, reading both engines' pulses each time the driver hands outputs on.
fn run_watched() -> (Vec<EngineRun>, Vec<Vec<PulseReading>>) {
    let scenario = Scenario::parse(Path::new("live-figures.toml"), SCENARIO).unwrap();
    let clock = clock_setup(&scenario, scenario.clock).unwrap();
    let workload = Workload::build(&scenario, scenario.seed, scenario.duration).unwrap();
    let durability = Durability::default();
    let ctx = RunContext {
        scenario: &scenario,
        workload: &workload,
        until: scenario.duration.nanos() + scenario.drain.nanos(),
        clock: &clock,
        durability: &durability,
    };
    let engines: Vec<_> = scenario.engines.iter().collect();
    let mut readings: Vec<Vec<PulseReading>> = vec![Vec::new(); engines.len()];
    let runs = run_engines(&ctx, &engines, &mut |_| {}, &mut |i, _| {
        let name = &engines[i].name;
        if let Some(run) = watch::runs().into_iter().find(|r| &r.engine == name) {
            readings[i].push(run.pulse.read());
        }
        Ok(())
    })
    .unwrap();
    (runs, readings)
}

#[test]
fn falling_behind_and_checkpoints_reach_the_pulse_segment_by_segment() {
    let (runs, readings) = run_watched();
    let (mb, pr) = (&readings[0], &readings[1]);
    // Four segments of 5 s, then the drain: a reading after each, while the run is under way.
    assert!(mb.len() >= 4 && pr.len() >= 4, "{mb:?}\n{pr:?}");
    let grows = |r: &[PulseReading], f: fn(&PulseReading) -> u64| r.windows(2).all(|w| f(&w[0]) <= f(&w[1]));
    assert!(grows(mb, |r| r.falling_behind) && grows(pr, |r| r.checkpoints));
    // Under way: the first segment's reading already counts them, and later ones count more.
    assert!(mb[0].falling_behind > 0, "{mb:?}");
    assert!(pr[0].checkpoints > 0, "{pr:?}");
    assert!(mb[3].falling_behind > mb[0].falling_behind, "{mb:?}");
    assert!(pr[3].checkpoints > pr[0].checkpoints, "{pr:?}");
    // And end at the run's own counts.
    assert_eq!(mb.last().unwrap().falling_behind, runs[0].counts.falling_behind);
    // Every completed checkpoint leaves a progress record.
    let last = pr.last().unwrap().checkpoints;
    assert!(last > 0 && last as usize <= runs[1].progress.len(), "{last}");
}
