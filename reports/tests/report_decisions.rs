//! The report on hand-made results directories: a sweep with an SLO, checkpoints and an
//! injected failure, and a single run whose SLO nobody meets. These pin the decision rules
//! (who meets what, up to which value, the closest when none does) independently of the
//! engines; `tests/report.rs` of the root package checks a real run end to end.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use streamlab_reports::write_report;

const SCENARIO: &str = r#"name = "rates"
description = "hand-made"
seed = 7
duration = "10s"
clock = "simulated"
[slo]
p99 = "2s"
[workload]
rate = { profile = "constant", events_per_second = 5000 }
[pipeline]
filter_kinds = ["click"]
[[engine]]
name = "micro-batch 1s"
model = "micro-batch"
[[engine]]
name = "per-record"
model = "per-record"
"#;

fn run(name: &str, model: &str, p99: f64, extra: serde_json::Value) -> serde_json::Value {
    let mut run = json!({
        "name": name, "model": model, "config": {"trigger": {"kind": "processing_time", "interval": "1s"}},
        "latency_ms": {"p50": p99 / 2.0, "p95": p99 * 0.9, "p99": p99, "p999": p99, "max": p99 * 1.1, "mean": p99 / 2.0, "count": 100},
        "event_time_latency_ms": null,
        "components_ms": if model == "micro-batch" { json!({"trigger_wait": p99 / 4.0, "processing": p99 / 4.0}) } else { json!({"buffer_wait": p99 / 2.0}) },
        "throughput_eps": 5000.0,
        "counts": {"events": 50000, "outputs": 100, "batches": if model == "micro-batch" { 10 } else { 0 }, "falling_behind": 0, "late_dropped": 0},
        "notes": []
    });
    for (k, v) in extra.as_object().unwrap() {
        run[k] = v.clone();
    }
    run
}

fn results_dir(dir: &Path, scenario: &str, runs: Vec<serde_json::Value>) {
    fs::create_dir_all(dir).unwrap();
    let summary = json!({
        "schema_version": 1, "scenario": "rates", "seed": 7, "clock": "simulated", "duration_s": 10.0,
        "measured": [], "modelled": ["all durations: virtual time"], "runs": runs
    });
    fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("scenario.toml"), scenario).unwrap();
    let mut progress = String::new();
    for b in 0..10u64 {
        let t = b as f64 * 1000.0;
        progress += &json!({"run": "micro-batch 1s", "batchId": b, "timestamp": t + if b == 6 { 300.0 } else { 0.0 }, "triggerTimeMs": t,
            "durationMs": {"latestOffset": 1.0, "walCommit": 5.0, "getBatch": 0.5, "queryPlanning": 2.0, "addBatch": if b == 5 { 1300.0 } else { 400.0 }, "commitOffsets": 5.0, "triggerExecution": 413.5},
            "eventTime": {"min": t - 1000.0, "max": t, "avg": t - 500.0, "watermark": (t - 1200.0).max(0.0)},
            "fallingBehind": b == 5, "numInputRows": 5000, "checkpointBytes": 2048 + b * 100,
            "stateOperators": [{"memoryUsedBytes": 40960}]}).to_string();
        progress.push('\n');
        for subtask in 0..2 {
            progress += &json!({"run": "per-record", "type": "watermark", "subtask": subtask, "timeMs": t + 200.0, "watermark": t - 201.0 - subtask as f64}).to_string();
            progress.push('\n');
        }
        progress += &json!({"run": "per-record", "type": "checkpoint", "id": b, "triggerTimeMs": t, "completedTimeMs": t + 80.0,
            "startDelayMs": 1.0, "alignmentMs": 2.0, "syncMs": 3.0, "asyncMs": 70.0, "durationMs": 76.0 + b as f64, "bytes": 1_500_000 + b * 10_000, "stateBytes": 8_000_000}).to_string();
        progress.push('\n');
    }
    fs::write(dir.join("progress.jsonl"), progress).unwrap();
    let mut timeline = "run,time_s,outputs,mean_latency_ms,max_latency_ms\n".to_string();
    for i in 0..100 {
        let t = i as f64 / 10.0;
        timeline += &format!(
            "micro-batch 1s,{t:.1},5,{:.3},{:.3}\n",
            500.0 + (i % 10) as f64 * 100.0,
            600.0 + (i % 10) as f64 * 100.0
        );
        let spike = if (40..55).contains(&i) { 2000.0 } else { 0.0 };
        timeline += &format!("per-record,{t:.1},5,{:.3},{:.3}\n", 100.0 + spike, 150.0 + spike);
    }
    fs::write(dir.join("timeline.csv"), timeline).unwrap();
    for (slug, scale) in [("micro-batch-1s", 1000.0), ("per-record", 100.0)] {
        let mut hgrm = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n".to_string();
        for (i, q) in [0.0, 0.5, 0.9, 0.99, 1.0].iter().enumerate() {
            hgrm += &format!(
                "{:12.3} {q:.12} {:10} {:14.2}\n",
                scale * (1.0 + i as f64),
                (q * 100.0) as u64,
                1.0
            );
        }
        fs::write(dir.join(format!("latency-{slug}.hgrm")), hgrm).unwrap();
    }
}

fn out_dir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("STREAMLAB_REPORT_KEEP") {
        Some(keep) => (None, PathBuf::from(keep).join(name)),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
    }
}

#[test]
fn sweep_report_says_up_to_which_rate_each_engine_meets_the_slo() {
    let (_guard, root) = out_dir("sweep");
    let sweep = root.join("sweep");
    let rates = [5000, 10000, 20000, 40000];
    let mb_p99 = [1500.0, 1700.0, 1900.0, 2600.0];
    let mut points = Vec::new();
    for (i, rate) in rates.iter().enumerate() {
        let dir = format!("rate-{rate}");
        let failure = if i == 1 {
            json!({"failures": [{"kind": "task crash", "at_ms": 4000.0, "recovered_ms": 5500.0}],
                   "recovery": {"downtime_ms": 500.0, "catch_up_ms": 1000.0, "replayed": 4000, "duplicates": 0, "losses": 0}})
        } else {
            json!({})
        };
        results_dir(
            &sweep.join(&dir),
            SCENARIO,
            vec![
                run("micro-batch 1s", "micro-batch", mb_p99[i], json!({})),
                run("per-record", "per-record", 300.0 + i as f64 * 50.0, failure),
            ],
        );
        points.push(json!({"values": {"workload.rate.events_per_second": rate.to_string()}, "dir": dir}));
    }
    let key = "workload.rate.events_per_second";
    fs::write(
        sweep.join("sweep.json"),
        json!({"parameter": {"key": key}, "points": points}).to_string(),
    )
    .unwrap();

    let out = root.join("report");
    let paths = write_report(&[sweep], &out).unwrap();
    let md = fs::read_to_string(&paths.markdown).unwrap();
    assert!(
        md.contains(&format!(
            "micro-batch 1s meets the SLO up to `{key}` = 20000; at 40000 it does not (p99 2.6 s > 2 s (30% over))."
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("At `{key}` = 40000 only per-record meets the SLO.")),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "Run **per-record**: it meets the SLO at 4 of 4 tested values of `{key}`"
        )),
        "{md}"
    );
    assert!(
        md.contains("| per-record @ workload.rate.events_per_second=10000 | 1 | 500.0 | 1000.0 | 4000 | 0 | 0 |"),
        "{md}"
    );
    for stem in ["latency-vs-parameter", "latency-decomposition", "latency-cdf"] {
        assert!(md.contains(&format!("](report-{stem}.png)")), "{stem} missing:\n{md}");
        assert!(out.join(format!("report-{stem}.svg")).is_file());
    }
    let html = fs::read_to_string(&paths.html).unwrap();
    assert_eq!(html.matches("<svg").count(), paths.figures.len());
    let over_time =
        fs::read_to_string(out.join("report-latency-over-time-workload-rate-events-per-second-10000.svg")).unwrap();
    assert!(
        over_time.contains("per-record: task crash"),
        "the failure is marked in the legend"
    );
    let checkpoints =
        fs::read_to_string(out.join("report-checkpoints-workload-rate-events-per-second-5000.svg")).unwrap();
    assert!(checkpoints.contains("size (MiB)") && checkpoints.contains("per-record: state size"));
    assert!(!checkpoints.contains("no checkpoints recorded"));
}

#[test]
fn when_no_configuration_meets_the_slo_the_report_names_the_closest() {
    let (_guard, root) = out_dir("none");
    let dir = root.join("results");
    let scenario = SCENARIO.replace("p99 = \"2s\"", "p99 = \"200ms\"\nrecovery = \"30s\"");
    results_dir(
        &dir,
        &scenario,
        vec![
            run("micro-batch 1s", "micro-batch", 1500.0, json!({})),
            run("per-record", "per-record", 250.0, json!({})),
        ],
    );
    let paths = write_report(&[dir], &root.join("report")).unwrap();
    let md = fs::read_to_string(&paths.markdown).unwrap();
    assert!(
        md.contains("**No configuration meets the SLO** (p99 ≤ 200 ms, recovery ≤ 30 s). The closest is **per-record** (per-record): p99 250 ms > 200 ms (25% over)."),
        "{md}"
    );
    assert!(md.contains("The bound recovery ≤ 30 s could not be checked"), "{md}");
    assert!(
        md.contains("| micro-batch 1s | 1.5 s ✗ | not measured | no | −650% |"),
        "{md}"
    );
}

#[test]
fn a_directory_without_summary_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(&[dir.path().to_path_buf()], &dir.path().join("out")).unwrap_err();
    assert!(err.to_string().contains("not a results directory"), "{err}");
}

#[test]
fn a_default_trigger_run_is_described_as_batches_back_to_back_not_by_an_interval() {
    let (_guard, root) = out_dir("default-trigger");
    let dir = root.join("results");
    let config = json!({"config": {"trigger": {"kind": "processing_time", "interval": "0"}}});
    results_dir(
        &dir,
        SCENARIO,
        vec![
            run("micro-batch 1s", "micro-batch", 200.0, config),
            run("per-record", "per-record", 250.0, json!({})),
        ],
    );
    let paths = write_report(&[dir], &root.join("report")).unwrap();
    let md = fs::read_to_string(&paths.markdown).unwrap();
    assert!(
        md.contains("It runs Spark's default trigger: each batch starts as soon as the previous one ends"),
        "{md}"
    );
    assert!(
        md.contains("Its 10 batches ran back to back; with no interval there is nothing to fall behind."),
        "{md}"
    );
    assert!(!md.contains("Its trigger interval (0)"), "{md}");
}
