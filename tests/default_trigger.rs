//! Spark's default trigger from a scenario file: `{ kind = "default" }` and a zero
//! `processing_time` interval are the same trigger, run on both clocks, with batches back to
//! back and never a falling-behind batch, and the run's notes say so.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn streamlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(args)
        .output()
        .expect("streamlab runs")
}

/// A small windowed count with the default trigger spelled both ways, and a 100 ms trigger.
const SCENARIO: &str = r#"
name = "default-trigger"
seed = 5
duration = "600ms"
drain = "300ms"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }

[pipeline.aggregate]
key_by = "kind"
window = { kind = "tumbling", size = "100ms" }
function = "count"

[[engine]]
name = "spark default"
model = "micro-batch"
trigger = { kind = "default" }
watermark_delay = "50ms"

[[engine]]
name = "zero interval"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "0s" }
watermark_delay = "50ms"

[[engine]]
name = "every 100ms"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "100ms" }
watermark_delay = "50ms"
"#;

/// Runs the scenario on `clock`; returns the results directory's summary and the directory.
fn run(dir: &Path, clock: &str) -> (Value, std::path::PathBuf) {
    let scenario = dir.join("default-trigger.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join(clock);
    let o = streamlab(&[
        "run",
        scenario.to_str().unwrap(),
        "--clock",
        clock,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (summary, out)
}

fn notes(run: &Value) -> Vec<&str> {
    run["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

/// What every run of the default trigger shows, on either clock.
fn assert_back_to_back(run: &Value) {
    let name = &run["name"];
    assert_eq!(run["config"]["trigger"]["kind"], "processing_time", "{name}");
    assert_eq!(run["config"]["trigger"]["interval"], "0", "{name}");
    assert_eq!(run["counts"]["falling_behind"], 0, "{name}");
    assert!(
        run["counts"]["batches"].as_u64().unwrap() > 6,
        "{name}: {}",
        run["counts"]
    );
    let notes = notes(run);
    assert!(notes.iter().any(|n| n.contains("back to back")), "{name}: {notes:?}");
    assert!(
        notes
            .iter()
            .all(|n| !n.contains("falling behind") && !n.contains("cannot keep up")),
        "{name}: {notes:?}"
    );
}

#[test]
fn both_spellings_of_the_default_trigger_run_the_same_query_on_the_simulated_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let (summary, out) = run(tmp.path(), "simulated");
    let runs = summary["runs"].as_array().unwrap();
    for run in &runs[..2] {
        assert_back_to_back(run);
    }
    assert_eq!(runs[0]["counts"], runs[1]["counts"]);
    assert_eq!(runs[0]["latency_ms"], runs[1]["latency_ms"]);
    let sink = |name: &str| std::fs::read_to_string(out.join(format!("sink-{name}.csv"))).unwrap();
    assert_eq!(sink("spark-default"), sink("zero-interval"));
    assert!(sink("spark-default").lines().count() > 1);
    // Batches back to back wait less for a trigger than batches every 100 ms.
    let wait = |i: usize| runs[i]["components_ms"]["trigger_wait"].as_f64().unwrap();
    assert!(wait(0) < wait(2) / 2.0, "{} vs {} ms", wait(0), wait(2));
    assert!(runs[0]["counts"]["batches"].as_u64() > runs[2]["counts"]["batches"].as_u64());
}

#[test]
fn the_default_trigger_runs_on_the_live_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let (summary, _) = run(tmp.path(), "live");
    let runs = summary["runs"].as_array().unwrap();
    for run in &runs[..2] {
        assert_back_to_back(run);
        assert_eq!(run["counts"]["events"], runs[2]["counts"]["events"]);
    }
}
