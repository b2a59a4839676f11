//! Fault tolerance: crashes injected at every phase of every batch on virtual time leave the
//! committed output equal to a failure-free run; the checkpoint directory is Spark's layout;
//! a foreign or damaged checkpoint directory is refused and left untouched.

use std::path::Path;

use streamlab_scenarios::crash_sweep::crash_sweep;
use streamlab_scenarios::spec::Scenario;

const WINDOWED: &str = r#"
name = "ft"
duration = "3s"
drain = "2s"
clock = "simulated"
[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
[[engine]]
name = "mb append"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "200ms" }
watermark_delay = "50ms"
shuffle_partitions = 2
restart_delay = "300ms"
[[engine]]
name = "mb update"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "300ms" }
output_mode = "update"
watermark_delay = "50ms"
restart_delay = "1s"
"#;

#[test]
fn micro_batch_crashes_in_every_phase_leave_exactly_the_failure_free_output() {
    let scenario = Scenario::parse(Path::new("ft.toml"), WINDOWED).unwrap();
    let outcomes = crash_sweep(&scenario, 3, 10_000, |_| {}).unwrap();
    // Two engines, every phase of every batch: hundreds of points.
    assert!(outcomes.len() >= 200, "{} points", outcomes.len());
    for o in &outcomes {
        assert_eq!((o.duplicates, o.losses), (0, 0), "{} at {}", o.engine, o.point);
    }
    assert!(
        outcomes.iter().any(|o| o.replayed > 0),
        "some crashes replay an uncommitted batch"
    );
    assert!(
        outcomes.iter().all(|o| o.downtime_ms.is_none_or(|d| d >= 300.0)),
        "restart delay is part of the downtime"
    );
    assert!(outcomes.iter().filter(|o| o.downtime_ms.is_some()).count() > 100);
}

#[test]
fn stateless_micro_batch_crash_sweep_is_exactly_once() {
    let text = WINDOWED.replace(
        "[pipeline.aggregate]\nkey_by = \"page\"\nwindow = { kind = \"tumbling\", size = \"500ms\" }\nfunction = \"count\"\n",
        "",
    );
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let outcomes = crash_sweep(&scenario, 5, 60, |_| {}).unwrap();
    for o in &outcomes {
        assert_eq!((o.duplicates, o.losses), (0, 0), "{} at {}", o.engine, o.point);
    }
}
