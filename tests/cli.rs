//! The `streamlab` command end to end: runs write a complete results directory and never
//! overwrite one silently; `generate` writes traces a scenario can run from; bad input gets an
//! error that names the file, line and key.

use std::path::Path;
use std::process::{Command, Output};

fn streamlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(args)
        .output()
        .expect("streamlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TINY: &str = r#"
name = "tiny"
seed = 3
duration = "400ms"
drain = "300ms"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }

[pipeline]
filter_kinds = ["view", "click"]
lookup_join = true

[pipeline.aggregate]
key_by = "kind"
window = { kind = "tumbling", size = "100ms" }
function = "count"

[[engine]]
name = "mb 100ms"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "100ms" }
watermark_delay = "50ms"

[[engine]]
name = "pr"
model = "per-record"
parallelism = 2
buffer_timeout = "10ms"
auto_watermark_interval = "20ms"
out_of_orderness = "50ms"
"#;

/// A run's `throughput_runs_eps` in `summary.json`: every measurement round's figure.
fn throughput_runs(run: &serde_json::Value) -> Vec<f64> {
    let rounds = run["throughput_runs_eps"].as_array();
    rounds.unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn run_writes_every_result_file_and_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(tmp.path(), "tiny.toml", TINY);
    let out = tmp.path().join("results");
    let out_s = out.to_str().unwrap();
    let o = streamlab(&["run", &scenario, "--out", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("mb 100ms") && table.contains("p99 latency (ms)"),
        "{table}"
    );
    for f in [
        "summary.json",
        "progress.jsonl",
        "latency-mb-100ms.hgrm",
        "latency-pr.hgrm",
        "event-time-latency-pr.hgrm",
        "sink-mb-100ms.csv",
        "sink-pr.csv",
        "timeline.csv",
        "latency-cdf.svg",
        "latency-over-time.svg",
        "scenario.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["clock"], "live");
    assert_eq!(summary["seed"], 3);
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs[0]["model"], "micro-batch");
    assert_eq!(runs[1]["model"], "per-record");
    assert_eq!(runs[0]["counts"]["events"], 800);
    assert!(runs[0]["counts"]["batches"].as_u64().unwrap() >= 4);
    assert!(runs[0]["components_ms"]["trigger_wait"].as_f64().unwrap() > 0.0);
    assert!(runs[1]["components_ms"]["buffer_wait"].as_f64().unwrap() > 0.0);
    let progress = std::fs::read_to_string(out.join("progress.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(progress.lines().next().unwrap()).unwrap();
    for key in [
        "batchId",
        "numInputRows",
        "inputRowsPerSecond",
        "processedRowsPerSecond",
        "stateOperators",
    ] {
        assert!(first.get(key).is_some(), "progress lacks {key}");
    }
    for phase in [
        "latestOffset",
        "walCommit",
        "getBatch",
        "queryPlanning",
        "addBatch",
        "commitOffsets",
        "triggerExecution",
    ] {
        assert!(first["durationMs"].get(phase).is_some(), "durationMs lacks {phase}");
    }
    assert!(first["eventTime"].get("watermark").is_some());

    let again = streamlab(&["run", &scenario, "--out", out_s]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = streamlab(&["run", &scenario, "--out", out_s, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
}

#[test]
fn force_never_deletes_a_directory_that_is_not_a_results_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(tmp.path(), "tiny.toml", TINY);
    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "x").unwrap();
    let o = streamlab(&["run", &scenario, "--out", precious.to_str().unwrap(), "--force"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a streamlab results directory"),
        "{}",
        stderr(&o)
    );
    assert!(precious.join("thesis.tex").is_file());
}

#[test]
fn generate_writes_a_trace_that_a_scenario_runs_from() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(tmp.path(), "tiny.toml", TINY);
    for ext in ["csv", "jsonl"] {
        let trace = tmp.path().join(format!("clicks.{ext}"));
        let o = streamlab(&["generate", &scenario, "--out", trace.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = std::fs::read_to_string(&trace).unwrap();
        if ext == "csv" {
            assert!(text
                .starts_with("seq,event_time_ms,arrival_ns,partition,user,session,page,ad,kind,dwell_ms,price_cents"));
            assert_eq!(text.lines().count(), 801);
        } else {
            assert_eq!(text.lines().count(), 800);
        }
        let again = streamlab(&["generate", &scenario, "--out", trace.to_str().unwrap()]);
        assert!(!again.status.success(), "an existing trace is not overwritten");
    }
    let from_trace = TINY.replace(
        "partitions = 2\nrate = { profile = \"constant\", events_per_second = 2000 }\ndisorder = { bound = \"50ms\" }",
        "trace = \"clicks.csv\"",
    );
    assert!(from_trace.contains("trace = "));
    let scenario = write(tmp.path(), "from-trace.toml", &from_trace);
    let out = tmp.path().join("r");
    let o = streamlab(&["run", &scenario, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"][0]["counts"]["events"], 800);
}

#[test]
fn a_broken_trace_row_is_reported_with_its_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let header = "seq,event_time_ms,arrival_ns,partition,user,session,page,ad,kind,dwell_ms,price_cents\n";
    std::fs::write(
        tmp.path().join("bad.csv"),
        format!("{header}0,1,1000,0,1,1,1,1,view,5,0\n1,2,2000,0,1,1,1,1,clik,5,0\n"),
    )
    .unwrap();
    let text = TINY.replace(
        "partitions = 2\nrate = { profile = \"constant\", events_per_second = 2000 }\ndisorder = { bound = \"50ms\" }",
        "trace = \"bad.csv\"",
    );
    let scenario = write(tmp.path(), "bad-trace.toml", &text);
    let o = streamlab(&["run", &scenario, "--out", tmp.path().join("r").to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("kind"),
        "{err}"
    );
}

#[test]
fn a_scenario_error_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    // A missing file: its path and the OS's reason, said once.
    let missing = tmp.path().join("missing.toml");
    let err = stderr(&streamlab(&["run", missing.to_str().unwrap()]));
    assert!(err.contains("missing.toml: cannot read the scenario file"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");

    let text = TINY.replace("interval = \"100ms\"", "interval = \"-100ms\"");
    let scenario = write(tmp.path(), "minus.toml", &text);
    let o = streamlab(&["run", &scenario]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("minus.toml:24") && err.contains("engine[0].trigger") && err.contains("`-100ms`"),
        "{err}"
    );

    let text = TINY.replace("events_per_second = 2000", "events_per_second = -5");
    let scenario = write(tmp.path(), "negative.toml", &text);
    let err = stderr(&streamlab(&["run", &scenario]));
    assert!(
        err.contains("negative.toml:9") && err.contains("workload.rate.events_per_second"),
        "{err}"
    );
    // Pinning task slots pins this machine's threads: the simulated clock refuses it by key.
    let text = TINY.replace(
        "out_of_orderness = \"50ms\"",
        "out_of_orderness = \"50ms\"\npin_slots = true",
    );
    let scenario = write(tmp.path(), "pinned.toml", &text);
    let err = stderr(&streamlab(&["run", &scenario, "--clock", "simulated"]));
    assert!(
        err.contains("pinned.toml") && err.contains("engine[1].pin_slots") && err.contains("clock = \"live\""),
        "{err}"
    );
}

#[test]
fn repeat_reports_the_median_of_rounds_and_keeps_the_last_run_whole() {
    // A generated live workload (not a backlog) with file sinks: each round makes its own live
    // source and writes its sink files to scratch space; the kept run's outputs are checked.
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(
        tmp.path(),
        "tiny.toml",
        &TINY.replace("drain = \"300ms\"", "drain = \"300ms\"\nrepeat = 2"),
    );
    let out = tmp.path().join("results");
    let o = streamlab(&["run", &scenario, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for run in summary["runs"].as_array().unwrap() {
        let rounds = throughput_runs(run);
        assert_eq!(rounds.len(), 2, "{run}");
        let median = (rounds[0] + rounds[1]) / 2.0;
        assert!((run["throughput_eps"].as_f64().unwrap() - median).abs() < 1e-6, "{run}");
        let notes = run["notes"].to_string();
        assert!(notes.contains("the median of 2 runs"), "{notes}");
        assert!(notes.contains("outputs agree with the reference evaluator"), "{notes}");
        assert_eq!(run["counts"]["events"], 800, "{run}");
    }
    assert!(out.join("sink-pr.csv").is_file() && out.join("sink-mb-100ms.csv").is_file());
    assert!(!out.join("measurement-rounds").exists());
    let progress = String::from_utf8_lossy(&o.stderr);
    assert!(progress.contains("[4/4]"), "two engines, two rounds: {progress}");

    // On the simulated clock every run gives the same figures: one run, and it says so.
    let sim = tmp.path().join("sim");
    let o = streamlab(&["run", &scenario, "--clock", "simulated", "--out", sim.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sim.join("summary.json")).unwrap()).unwrap();
    for run in summary["runs"].as_array().unwrap() {
        assert!(run.get("throughput_runs_eps").is_none(), "{run}");
        assert!(
            run["notes"]
                .to_string()
                .contains("repeat = 2 not applied: the simulated clock"),
            "{run}"
        );
    }
}

#[test]
fn throughput_scenario_reports_events_per_second_per_engine_and_per_core() {
    // The shipped scenario, shortened: a backlog drained flat out on the live clock.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let status = streamlab(&[
        "run",
        "scenarios/throughput.toml",
        "--duration",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(status.status.success(), "{}", stderr(&status));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for run in runs {
        let r = &run["resources"];
        assert!(run["throughput_eps"].as_f64().unwrap() > 0.0, "{run}");
        let cores = r["cores"].as_f64().unwrap();
        let per_core = r["throughput_eps_per_core"].as_f64().unwrap();
        assert!(
            (per_core * cores - run["throughput_eps"].as_f64().unwrap()).abs() < 1.0,
            "{r}"
        );
        assert_eq!(run["counts"]["events"], 1_000_000, "{run}");
        assert!(r["peak_rss_bytes"].as_u64().unwrap() >= r["final_rss_bytes"].as_u64().unwrap());
        // Five rounds (`repeat = 5`): the reported figure is the median of the five.
        let mut rounds = throughput_runs(run);
        assert_eq!(rounds.len(), 5, "{run}");
        rounds.sort_by(f64::total_cmp);
        assert_eq!(run["throughput_eps"].as_f64().unwrap(), rounds[2], "{run}");
    }
    assert!(
        !out.join("measurement-rounds").exists(),
        "the rounds' scratch space is removed"
    );
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("per core (events/s)")
            && table.contains("peak RSS (MiB)")
            && table.contains("throughput runs (M/s)")
            && table.contains("the median of 5 runs"),
        "{table}"
    );

    // A backlog measures this machine: the simulated clock refuses it, naming the key.
    let sim = dir.path().join("sim");
    let status = streamlab(&[
        "run",
        "scenarios/throughput.toml",
        "--clock",
        "simulated",
        "--out",
        sim.to_str().unwrap(),
    ]);
    let err = stderr(&status);
    assert!(!status.status.success() && err.contains("workload.backlog"), "{err}");
}
