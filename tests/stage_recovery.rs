//! Exactly-once for the keyed stages beyond the aggregation: after injected crashes, the
//! committed output of an interval left outer join, a deduplication, a top-N per window, a
//! second aggregation (Nexmark q5's hot items) and chains of keyed stages (a join or a
//! deduplication, then an aggregation) equals the failure-free run's — zero duplicates,
//! zero losses — on both engines and both clocks. Their state goes into the checkpoints (the
//! per-record engine's snapshots of keyed subtasks and of the sink subtask's second
//! aggregation, the micro-batch engine's state versions per shuffle partition) and comes back
//! on restart; a checkpoint of another pipeline is refused, naming the file.

use std::path::Path;

use streamlab_scenarios::crash_sweep::crash_sweep;
use streamlab_scenarios::spec::Scenario;

/// A short simulated scenario around `pipeline`: a micro-batch query and a per-record job with
/// exactly-once checkpoints at parallelism `p` (2 puts the second aggregation in the sink
/// subtask), both restarting quickly.
fn scenario(pipeline: &str, p: usize) -> String {
    format!(
        r#"
name = "stage-ft"
duration = "3s"
drain = "2s"
clock = "simulated"
[workload]
partitions = 2
users = 300
rate = {{ profile = "constant", events_per_second = 2000 }}
disorder = {{ bound = "50ms" }}
{pipeline}
[[engine]]
name = "mb"
model = "micro-batch"
trigger = {{ kind = "processing_time", interval = "200ms" }}
watermark_delay = "50ms"
shuffle_partitions = 2
restart_delay = "300ms"
[[engine]]
name = "pr"
model = "per-record"
parallelism = {p}
buffer_timeout = "20ms"
auto_watermark_interval = "50ms"
out_of_orderness = "50ms"
checkpoint_interval = "300ms"
sink = "exactly_once"
restart = {{ kind = "fixed_delay", delay = "200ms" }}
"#
    )
}

const JOIN: &str = r#"
[pipeline.join]
kind = "interval"
type = "left_outer"
left = { kinds = ["view"], key = "session" }
right = { kinds = ["click"], key = "session" }
lower = "0s"
upper = "1s"
"#;

const DEDUP: &str = r#"
[pipeline]
project = ["seq"]
[pipeline.dedup]
key = ["user", "page"]
within = "1s"
"#;

const TOP_N: &str = r#"
[pipeline]
filter_kinds = ["view"]
[pipeline.top_n]
window = { kind = "tumbling", size = "500ms" }
n = 1
by = "dwell_ms"
"#;

const HOT_PAGES: &str = r#"
[pipeline.aggregate]
key_by = "page"
window = { kind = "sliding", size = "1s", slide = "500ms" }
function = "count"
[pipeline.then]
function = "max"
keep_matching = true
"#;

/// A chain: views joined with their session's clicks, then the pairs counted per page per
/// window of the click's time, behind a second keyed exchange.
const JOIN_THEN_COUNT: &str = r#"
[pipeline.join]
kind = "interval"
left = { kinds = ["view"], key = "session" }
right = { kinds = ["click"], key = "session" }
lower = "0s"
upper = "1s"
row_time = "right"
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
"#;

/// A chain: a deduplication, then the kept records counted per page per window.
const DEDUP_THEN_COUNT: &str = r#"
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.dedup]
key = ["user", "page"]
within = "1s"
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
"#;

/// The stages and chains, with the per-record parallelism each runs at.
fn stages() -> [(&'static str, &'static str, usize); 6] {
    [
        ("interval left outer join", JOIN, 2),
        ("dedup", DEDUP, 2),
        ("top-1 per window", TOP_N, 1),
        ("hot pages (count, then max)", HOT_PAGES, 2),
        ("chain: join, then count per page", JOIN_THEN_COUNT, 2),
        ("chain: dedup, then count per page", DEDUP_THEN_COUNT, 2),
    ]
}

#[test]
fn crash_sweeps_over_every_keyed_stage_find_no_duplicates_and_no_losses_on_both_engines() {
    for (name, pipeline, p) in stages() {
        let scenario = Scenario::parse(Path::new("stage-ft.toml"), &scenario(pipeline, p)).unwrap();
        let outcomes = crash_sweep(&scenario, 5, 10, |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        for engine in ["mb", "pr"] {
            let points: Vec<_> = outcomes.iter().filter(|o| o.engine == engine).collect();
            assert_eq!(points.len(), 10, "{name} on {engine}");
            for o in &points {
                // Crash points fall while the input flows (see `crash_sweep`): a job restored
                // after the last record could never move its watermark again.
                assert_eq!((o.duplicates, o.losses), (0, 0), "{name} on {engine} at {}", o.point);
            }
            assert!(
                points.iter().any(|o| o.replayed > 0),
                "{name} on {engine}: crashes rewind to a checkpoint"
            );
        }
    }
}

#[test]
fn crash_sweeps_over_a_join_a_dedup_a_top_n_and_a_chain_on_the_lsm_backend_find_no_duplicates_and_no_losses() {
    for (name, pipeline, p) in [stages()[0], stages()[1], stages()[2], stages()[4]] {
        // Both engines keep the stage's keyed state in the LSM store; checkpoints are full
        // snapshots of it, restored into a fresh store.
        let text = scenario(pipeline, p).replace(
            "shuffle_partitions = 2\n",
            "shuffle_partitions = 2\nstate_backend = \"lsm\"\n",
        );
        let text = text.replace(
            "sink = \"exactly_once\"\n",
            "sink = \"exactly_once\"\nstate_backend = \"lsm_changelog\"\n",
        );
        assert_eq!(
            text.matches("state_backend").count(),
            2,
            "{name}: both engines on the LSM store"
        );
        let scenario = Scenario::parse(Path::new("stage-ft.toml"), &text).unwrap();
        let outcomes = crash_sweep(&scenario, 5, 5, |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        for engine in ["mb", "pr"] {
            let points: Vec<_> = outcomes.iter().filter(|o| o.engine == engine).collect();
            assert_eq!(points.len(), 5, "{name} on {engine}");
            for o in &points {
                assert_eq!((o.duplicates, o.losses), (0, 0), "{name} on {engine} at {}", o.point);
            }
            assert!(
                points.iter().any(|o| o.replayed > 0),
                "{name} on {engine}: crashes rewind to a checkpoint"
            );
        }
    }
}

/// Runs `scenario` with its results under `out`.
fn run_in(scenario: &Scenario, out: &Path) -> streamlab_scenarios::runner::RunOutcome {
    let opts = streamlab_scenarios::runner::RunOptions {
        out: Some(out.to_path_buf()),
        ..Default::default()
    };
    streamlab_scenarios::runner::run_scenario(scenario, &opts, |_| {}).unwrap()
}

#[test]
fn a_live_crash_of_a_join_and_of_a_second_aggregation_recovers_exactly_once_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    for (name, pipeline, p) in [stages()[0], stages()[3], stages()[4]] {
        let text = scenario(pipeline, p)
            .replace("clock = \"simulated\"", "clock = \"live\"")
            .replace("duration = \"3s\"", "duration = \"2s\"")
            .replace("drain = \"2s\"", "drain = \"1s\"");
        let text = format!("{text}\n[[failure]]\nkind = \"crash\"\nat = \"1200ms\"\n");
        let scenario = Scenario::parse(Path::new("stage-ft.toml"), &text).unwrap();
        let out = dir.path().join(name.replace(' ', "-"));
        let outcome = run_in(&scenario, &out);
        for run in &outcome.summary.runs {
            assert_eq!(run.failures.len(), 1, "{name} on {}", run.name);
            let r = run.recovery.unwrap();
            assert_eq!((r.duplicates, r.losses), (0, 0), "{name} on {}: {r:?}", run.name);
        }
        // The keyed stage's state is in the checkpoints: per-record snapshot files marked as a
        // stage's, micro-batch state versions.
        let pr = out.join("checkpoints/pr");
        let metadata = std::fs::read_dir(&pr)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("_metadata")).ok())
            .collect::<Vec<_>>();
        assert!(
            metadata.iter().any(|m| m.contains("\"stage\":true")),
            "{name}: no stage state in {}",
            pr.display()
        );
        let mb = out.join("checkpoints/mb/state/0/0");
        let versions = std::fs::read_dir(&mb).map_or(0, |d| {
            d.filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".stage"))
                .count()
        });
        assert_eq!(
            versions > 0,
            name.contains("join"),
            "{name}: stage versions in {}",
            mb.display()
        );
        if name.starts_with("chain") {
            // Both of a chain's stateful operators keep versions: the join's and the
            // aggregation's state store.
            let deltas = std::fs::read_dir(&mb).map_or(0, |d| {
                d.filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".delta"))
                    .count()
            });
            assert!(deltas > 0, "{name}: no aggregation versions in {}", mb.display());
        }
    }
}
