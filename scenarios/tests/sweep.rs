//! Sweeps: editing a scenario's keys in its text (types, comments, engine indices, every
//! engine), the grid, the located errors, and the sweep directory on a tiny simulated scenario.

use std::fs;
use std::path::Path;

use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::microbatch::{MicroBatchConfig, Trigger};
use streamlab_engines::time::Span;
use streamlab_scenarios::spec::{EngineKind, Scenario, WorkloadSpec};
use streamlab_scenarios::sweep::{plan, run_sweep, set_key, SweepError, SweepOptions, SweepParam};

const PATH: &str = "sweep-test.toml";

/// Two engines of each model; engine[2] (per-record) leaves `buffer_timeout` at its default.
const TEXT: &str = r#"# a scenario to sweep
name = "sweep-test"
duration = "1s"
drain = "500ms"
clock = "simulated"

[workload]
partitions = 2
page_zipf_exponent = 1.1
rate = { profile = "constant", events_per_second = 1000 }

[pipeline]
filter_kinds = ["click"]

[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }   # the trigger
workers = 1

[[engine]]
name = "pr"
model = "per-record"
buffer_timeout = "100ms"

[[engine]]
name = "pr default"
model = "per-record"
"#;

fn path() -> &'static Path {
    Path::new(PATH)
}

fn parse(text: &str) -> Scenario {
    Scenario::parse(path(), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn micro_batch(s: &Scenario, i: usize) -> MicroBatchConfig {
    match &s.engines[i].kind {
        EngineKind::MicroBatch(c) => *c,
        _ => panic!("engine {i} is not micro-batch"),
    }
}

fn per_record(s: &Scenario, i: usize) -> DataflowConfig {
    match &s.engines[i].kind {
        EngineKind::PerRecord(c) => *c,
        _ => panic!("engine {i} is not per-record"),
    }
}

/// The 1-based line of `TEXT` that starts with `prefix`.
fn line_of(prefix: &str) -> usize {
    TEXT.lines()
        .position(|l| l.starts_with(prefix))
        .expect("a line of TEXT")
        + 1
}

fn param(s: &str) -> SweepParam {
    s.parse().unwrap()
}

#[test]
fn a_duration_stays_a_string_and_keeps_its_comment() {
    let text = set_key(path(), TEXT, "engine[0].trigger.interval", "250ms").unwrap();
    assert!(
        text.contains(r#"trigger = { kind = "processing_time", interval = "250ms" }   # the trigger"#),
        "{text}"
    );
    let s = parse(&text);
    assert_eq!(
        micro_batch(&s, 0).trigger,
        Trigger::ProcessingTime {
            interval: Span::from_ms(250)
        }
    );
}

#[test]
fn a_number_stays_a_number_and_a_float_a_float() {
    let text = set_key(path(), TEXT, "workload.rate.events_per_second", "5000").unwrap();
    assert!(text.contains("events_per_second = 5000 }"), "{text}");
    let text = set_key(path(), &text, "workload.page_zipf_exponent", "2").unwrap();
    assert!(text.contains("page_zipf_exponent = 2.0"), "{text}");
    let s = parse(&text);
    let WorkloadSpec::Clickstream(w) = &s.workload else {
        panic!("a generated workload")
    };
    assert_eq!(w.page_zipf_exponent, 2.0);
    let text = set_key(path(), TEXT, "duration", "3s").unwrap();
    assert_eq!(parse(&text).duration, Span::from_ms(3000));
}

#[test]
fn an_engine_index_edits_that_engine_only() {
    let text = set_key(path(), TEXT, "engine[1].buffer_timeout", "10ms").unwrap();
    let s = parse(&text);
    assert_eq!(per_record(&s, 1).buffer_timeout, Span::from_ms(10));
    assert_eq!(
        per_record(&s, 2).buffer_timeout,
        DataflowConfig::default().buffer_timeout
    );
}

#[test]
fn an_engine_key_without_index_edits_every_engine_whose_model_has_it() {
    for key in ["engine.buffer_timeout", "engine[*].buffer_timeout"] {
        let text = set_key(path(), TEXT, key, "0").unwrap();
        let s = parse(&text);
        assert_eq!(per_record(&s, 1).buffer_timeout, Span::from_ms(0), "{key}");
        // Created where the file left it at its default, as a string like the one it replaces.
        assert_eq!(per_record(&s, 2).buffer_timeout, Span::from_ms(0), "{key}");
        assert_eq!(micro_batch(&s, 0), micro_batch(&parse(TEXT), 0), "{key}");
    }
    let text = set_key(path(), TEXT, "engine.workers", "3").unwrap();
    assert_eq!(micro_batch(&parse(&text), 0).workers, 3);
}

#[test]
fn two_params_make_a_grid_first_key_slowest() {
    let points = plan(
        path(),
        TEXT,
        &[
            param("engine[0].trigger.interval=100ms,1s"),
            param("workload.rate.events_per_second=1000,2000,4000"),
        ],
    )
    .unwrap();
    assert_eq!(points.len(), 6);
    let labels: Vec<String> = points.iter().map(|p| p.label()).collect();
    assert_eq!(
        labels[..4],
        [
            "engine[0].trigger.interval=100ms, workload.rate.events_per_second=1000",
            "engine[0].trigger.interval=100ms, workload.rate.events_per_second=2000",
            "engine[0].trigger.interval=100ms, workload.rate.events_per_second=4000",
            "engine[0].trigger.interval=1s, workload.rate.events_per_second=1000",
        ]
    );
    assert_eq!(
        points[0].dir,
        "engine-0-trigger-interval-100ms-workload-rate-events-per-second-1000"
    );
    let mut dirs: Vec<&str> = points.iter().map(|p| p.dir.as_str()).collect();
    dirs.dedup();
    assert_eq!(dirs.len(), 6);
    assert_eq!(
        micro_batch(&points[5].scenario, 0).trigger,
        Trigger::ProcessingTime {
            interval: Span::from_ms(1000)
        }
    );
}

#[test]
fn an_unknown_key_is_named_with_the_keys_nearby() {
    let err = set_key(path(), TEXT, "pipline.aggregate.window.size", "2s").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("sweep-test.toml: sweep key `pipline.aggregate.window.size`: "),
        "{msg}"
    );
    assert!(msg.contains("no `pipline` table"), "{msg}");

    let err = set_key(path(), TEXT, "workload.rat.events_per_second", "1").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("did you mean `workload.rate.events_per_second`?"), "{msg}");
    assert!(msg.contains("`workload.partitions`"), "{msg}");

    let msg = set_key(path(), TEXT, "engine[7].workers", "1").unwrap_err().to_string();
    assert!(msg.contains("`engine[7]` is out of range: the scenario has 3"), "{msg}");

    let msg = set_key(path(), TEXT, "engine.no_such_knob", "1")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no engine has `no_such_knob`"), "{msg}");
    assert!(msg.contains("engine[2] \"pr default\" (per-record)"), "{msg}");

    let msg = set_key(path(), TEXT, "workload.rate", "1").unwrap_err().to_string();
    assert!(msg.contains("names a table, not a value"), "{msg}");

    let msg = set_key(path(), TEXT, "pipeline.filter_kinds", "click")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is an array"), "{msg}");
}

#[test]
fn a_misspelt_key_of_an_existing_table_is_refused_by_the_reader_with_its_line() {
    let err = plan(path(), TEXT, &[param("engine[0].trigger.intervall=1s")]).unwrap_err();
    let SweepError::Point { error, point } = &err else {
        panic!("{err}")
    };
    assert_eq!(point, "engine[0].trigger.intervall=1s");
    assert_eq!(error.key(), Some("engine[0].trigger.intervall"));
    let expected = format!(
        "sweep-test.toml:{}: key `engine[0].trigger.intervall`",
        line_of("trigger = ")
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[test]
fn an_invalid_value_names_file_line_and_key() {
    let err = plan(path(), TEXT, &[param("engine[0].workers=1,0")]).unwrap_err();
    let msg = err.to_string();
    let expected = format!(
        "sweep-test.toml:{}: key `engine[0].workers`: must be at least 1",
        line_of("workers = ")
    );
    assert!(msg.starts_with(&expected), "{msg}");
    assert!(msg.ends_with("(sweep point engine[0].workers=0)"), "{msg}");

    // A value that does not fit the key's type is written as it reads and refused with its line.
    let msg = plan(path(), TEXT, &[param("workload.partitions=two")])
        .unwrap_err()
        .to_string();
    let expected = format!(
        "sweep-test.toml:{}: key `workload.partitions`",
        line_of("partitions = ")
    );
    assert!(msg.starts_with(&expected), "{msg}");
}

#[test]
fn an_interval_swept_down_to_zero_ends_at_sparks_default_trigger() {
    let points = plan(path(), TEXT, &[param("engine[0].trigger.interval=1s,100ms,0s")]).unwrap();
    let triggers: Vec<Trigger> = points.iter().map(|p| micro_batch(&p.scenario, 0).trigger).collect();
    assert_eq!(triggers[2], Trigger::SPARK_DEFAULT);
    assert!(triggers[2].runs_back_to_back() && !triggers[1].runs_back_to_back());
}

#[test]
fn params_that_do_not_read_are_refused() {
    for bad in ["interval", "=1s", "engine[0].trigger.interval=1s,,2s", "engine[x].a=1"] {
        let err = bad.parse::<SweepParam>().unwrap_err();
        assert!(err.to_string().starts_with(&format!("--param `{bad}`: ")), "{err}");
    }
    let err = plan(path(), TEXT, &[param("duration=1s"), param("duration=2s")]).unwrap_err();
    assert!(err.to_string().contains("swept twice"), "{err}");
}

#[test]
fn a_sweep_writes_a_results_directory_per_point_and_the_combined_files() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    fs::write(&scenario, TEXT).unwrap();
    let out = tmp.path().join("sweep");
    let opts = SweepOptions {
        out: Some(out.clone()),
        ..SweepOptions::default()
    };
    let params = [
        param("engine[0].trigger.interval=250ms,1s"),
        param("engine.buffer_timeout=0,100ms"),
    ];
    let outcome = run_sweep(&scenario, &params, &opts).unwrap();
    assert_eq!(outcome.dir, out);

    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["scenario"], "sweep-test");
    assert_eq!(
        json["parameters"],
        serde_json::json!(["engine[0].trigger.interval", "engine.buffer_timeout"])
    );
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(
        points[1]["values"],
        serde_json::json!({"engine[0].trigger.interval": "250ms", "engine.buffer_timeout": "100ms"})
    );
    for p in points {
        let dir = out.join(p["dir"].as_str().unwrap());
        assert!(dir.join("summary.json").is_file(), "{}", dir.display());
        assert!(dir.join("scenario.toml").is_file());
        let summary: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(p["summary"], summary);
        assert_eq!(summary["runs"].as_array().unwrap().len(), 3);
    }
    // Each point ran the edited scenario.
    let ran = fs::read_to_string(out.join(points[0]["dir"].as_str().unwrap()).join("scenario.toml")).unwrap();
    assert!(ran.contains(r#"interval = "250ms""#), "{ran}");
    assert!(ran.contains(r#"buffer_timeout = "0""#), "{ran}");

    let csv = fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "engine[0].trigger.interval,engine.buffer_timeout,run,model,p50_ms,p95_ms,p99_ms,max_ms,throughput_eps,falling_behind,late_dropped"
    );
    assert_eq!(lines.len(), 1 + 4 * 3);
    assert!(lines[1].starts_with("250ms,0,mb,micro-batch,"), "{}", lines[1]);

    // Not overwritten without --force; replaced with it.
    let err = run_sweep(&scenario, &params[..1], &opts).unwrap_err();
    assert!(err.to_string().contains("already exists; pass --force"), "{err}");
    let forced = SweepOptions {
        force: true,
        ..opts.clone()
    };
    let outcome = run_sweep(&scenario, &params[..1], &forced).unwrap();
    assert_eq!(outcome.summary.points.len(), 2);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 2 + 2);
}

#[test]
fn force_never_deletes_a_directory_that_is_not_a_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    fs::write(&scenario, TEXT).unwrap();
    let out = tmp.path().join("precious");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("notes.txt"), "keep me").unwrap();
    let opts = SweepOptions {
        out: Some(out.clone()),
        force: true,
        ..SweepOptions::default()
    };
    let err = run_sweep(&scenario, &[param("duration=1s")], &opts).unwrap_err();
    assert!(err.to_string().contains("no sweep.json"), "{err}");
    assert!(out.join("notes.txt").is_file());
}

#[test]
fn an_option_that_overrides_a_swept_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    fs::write(&scenario, TEXT).unwrap();
    let opts = SweepOptions {
        out: Some(tmp.path().join("out")),
        duration: Some(Span::from_ms(500)),
        ..SweepOptions::default()
    };
    let err = run_sweep(&scenario, &[param("duration=1s,2s")], &opts).unwrap_err();
    assert!(err.to_string().contains("--duration overrides `duration`"), "{err}");
    assert!(!tmp.path().join("out").exists());
}
