//! The simulated runtime on virtual time: per-record buffer flushes and watermark ticks, group
//! scheduling, determinism of whole runs, the seed example's figures, the fidelity check and
//! the capacity search.

use std::path::Path;
use std::process::Command;

use streamlab_engines::cluster::Cluster;
use streamlab_engines::cost::CostModel;
use streamlab_engines::dataflow::sim::run_simulated;
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, SchedulingOverhead, Trigger};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::runtime::SimRuntime;
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{ms, Span};
use streamlab_scenarios::capacity::capacity;
use streamlab_scenarios::spec::Scenario;

fn event(seq: u64, et: i64, arrival_ms: u64, partition: u32) -> Event {
    Event {
        seq,
        event_time: et,
        arrival: ms(arrival_ms),
        partition,
        user: seq as u32,
        session: seq,
        page: 1,
        ad: 1,
        kind: EventKind::Click,
        dwell_ms: 1,
        price_cents: 0,
    }
}

/// No work costs anything, so only the engines' timing rules move time.
fn free() -> CostModel {
    CostModel::FREE
}

#[test]
fn per_record_network_buffers_flush_on_the_buffer_timeout_grid() {
    let events = [event(0, 30, 30, 0), event(1, 130, 130, 1), event(2, 250, 250, 0)];
    let log = SourceLog::from_events(2, events);
    let cfg = DataflowConfig {
        parallelism: 2,
        buffer_timeout: Span::from_ms(100),
        ..Default::default()
    };
    let run = run_simulated(
        &JobContext::new(
            "pr",
            &cfg,
            &PipelineSpec::default(),
            &CampaignTable::default(),
            log.partitions(),
        ),
        &log,
        &free(),
        Cluster::default(),
        ms(1000),
        false,
    )
    .unwrap();
    let mut at: Vec<u64> = run.delivered.iter().map(|d| d.at / 1_000_000).collect();
    at.sort_unstable();
    // (Unbounded sources: a bounded one would flush at once when its input ends.)
    assert_eq!(
        at,
        vec![100, 200, 300],
        "each record waits for the next flush of its buffer"
    );
    assert!(
        (run.latency
            .component_mean(streamlab_engines::latency::Component::BufferWait)
            / 1e6
            - 190.0 / 3.0)
            .abs()
            < 0.5
    );

    let eager = DataflowConfig {
        buffer_timeout: Span::default(),
        ..cfg
    };
    let run = run_simulated(
        &JobContext::new(
            "pr",
            &eager,
            &PipelineSpec::default(),
            &CampaignTable::default(),
            log.partitions(),
        ),
        &log,
        &free(),
        Cluster::default(),
        ms(1000),
        false,
    )
    .unwrap();
    let mut at: Vec<u64> = run.delivered.iter().map(|d| d.at / 1_000_000).collect();
    at.sort_unstable();
    assert_eq!(at, vec![30, 130, 250], "buffer_timeout = 0 ships every record at once");
}

#[test]
fn per_record_watermarks_are_emitted_on_the_auto_watermark_interval() {
    let events: Vec<Event> = (0..50).map(|i| event(i, i as i64 * 20, i * 20, 0)).collect();
    let log = SourceLog::from_events(1, events);
    let pipeline = PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::Kind,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(100),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    };
    let cfg = DataflowConfig {
        parallelism: 1,
        auto_watermark_interval: Span::from_ms(200),
        ..Default::default()
    };
    let run = run_simulated(
        &JobContext::new("pr", &cfg, &pipeline, &CampaignTable::default(), log.partitions()),
        &log,
        &free(),
        Cluster::default(),
        ms(1200),
        false,
    )
    .unwrap();
    let ticks: Vec<(f64, i64)> = run
        .progress
        .iter()
        .map(|p| (p["timeMs"].as_f64().unwrap(), p["watermark"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        ticks,
        vec![(200.0, 199), (400.0, 399), (600.0, 599), (800.0, 799), (1000.0, 979)]
    );
    // The window [0, 100) fires when the watermark reaches 99, at the 200 ms tick.
    let first = run.delivered.first().unwrap();
    assert_eq!(first.at, ms(200));
}

#[test]
fn group_scheduling_pays_the_per_job_cost_once_per_group() {
    let events: Vec<Event> = (0..100).map(|i| event(i, i as i64 * 10, i * 10, 0)).collect();
    let log = SourceLog::from_events(1, events);
    let run_with = |group_size| {
        let cfg = MicroBatchConfig {
            trigger: Trigger::ProcessingTime {
                interval: Span::from_ms(200),
            },
            workers: 1,
            shuffle_partitions: 1,
            scheduling: SchedulingOverhead {
                per_batch: Span::from_ms(50),
                per_task: Span::default(),
            },
            group_size,
            ..Default::default()
        };
        let mut engine =
            MicroBatchEngine::new("mb", cfg, &PipelineSpec::default(), &CampaignTable::default(), 1).unwrap();
        engine.run(&mut SimRuntime::free(1), &log, ms(1000))
    };
    let planning = |run: &streamlab_engines::run::EngineRun| -> Vec<f64> {
        run.progress
            .iter()
            .map(|p| p["durationMs"]["queryPlanning"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(planning(&run_with(1)), vec![50.0; 5]);
    assert_eq!(planning(&run_with(4)), vec![50.0, 0.0, 0.0, 0.0, 50.0]);
    let mean = |run: &streamlab_engines::run::EngineRun| run.latency.total.mean();
    assert!(
        mean(&run_with(4)) < mean(&run_with(1)),
        "amortised scheduling lowers latency"
    );
}

fn streamlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(args)
        .output()
        .expect("streamlab runs")
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn a_simulated_run_is_byte_identical_when_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let o = streamlab(&[
            "run",
            "scenarios/quickstart.toml",
            "--clock",
            "simulated",
            "--duration",
            "6s",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in [
        "summary.json",
        "progress.jsonl",
        "sink-micro-batch-1s.csv",
        "sink-per-record.csv",
        "timeline.csv",
        "latency-per-record.hgrm",
    ] {
        assert_eq!(read(&a, f), read(&b, f), "{f} differs between two runs");
    }
    let summary: serde_json::Value = serde_json::from_slice(&read(&a, "summary.json")).unwrap();
    assert_eq!(summary["clock"], "simulated");
    assert!(summary["modelled"][0]
        .as_str()
        .unwrap()
        .contains("cost profile `local`"));
}

#[test]
fn the_seed_example_reproduces_its_figures_and_reports_falling_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("seed");
    let o = streamlab(&["run", "scenarios/seed-example.toml", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_slice(&read(&out, "summary.json")).unwrap();
    let keeps_up = &summary["runs"][0];
    let mean = keeps_up["latency_ms"]["mean"].as_f64().unwrap();
    let max = keeps_up["latency_ms"]["max"].as_f64().unwrap();
    assert!(
        (mean - 4_500.0).abs() < 150.0,
        "mean latency {mean} ms, expected ~ interval/2 + processing = 4.5 s"
    );
    assert!(
        (max - 7_000.0).abs() < 150.0,
        "max latency {max} ms, expected ~ interval + processing = 7 s"
    );
    assert_eq!(keeps_up["counts"]["falling_behind"], 0);

    let behind = &summary["runs"][1];
    assert!(behind["counts"]["falling_behind"].as_u64().unwrap() >= 8);
    assert!(
        behind["latency_ms"]["max"].as_f64().unwrap() > 30_000.0,
        "latency grows without bound"
    );
    let notes: Vec<&str> = behind["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("processing time > trigger interval")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("cannot keep up: ")), "{notes:?}");
    assert_eq!(behind["stability"], "cannot-keep-up");
    assert_eq!(keeps_up["stability"], "keeps-up");
    assert!(stdout.contains("CANNOT KEEP UP"), "{stdout}");
}

#[test]
fn live_and_simulated_runs_produce_the_same_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        r#"
name = "tiny"
duration = "600ms"
drain = "400ms"
[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 3000 }
disorder = { bound = "20ms" }
[pipeline]
filter_kinds = ["view"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "100ms" }
function = "count"
[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "50ms" }
watermark_delay = "20ms"
[[engine]]
name = "pr"
model = "per-record"
buffer_timeout = "5ms"
auto_watermark_interval = "10ms"
out_of_orderness = "20ms"
"#,
    )
    .unwrap();
    let o = streamlab(&["validate", scenario.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout.matches("equal (").count(), 2, "{stdout}");
}

#[test]
fn capacity_finds_the_rate_at_which_processing_fills_the_trigger_interval() {
    let text = r#"
name = "capacity"
duration = "20s"
drain = "5s"
[workload]
partitions = 1
rate = { profile = "constant", events_per_second = 10000 }
[[engine]]
name = "10 us per record"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }
workers = 1
modelled_cost_per_record = "10us"
"#;
    let scenario = Scenario::parse(Path::new("capacity.toml"), text).unwrap();
    let result = capacity(&scenario, 1, 1e9, |_, _| {}).unwrap();
    let eps = result[0].sustainable_eps;
    // 10 us per record on one worker: at most 100,000 records per 1 s batch.
    assert!(eps > 85_000.0 && eps <= 100_000.0, "sustainable rate {eps}");
    assert!(
        result[0].probes.iter().any(|p| !p.stable),
        "the search saw the unstable side"
    );
}

#[test]
fn time_per_state_access_is_priced_on_virtual_time_and_measured_live() {
    const STATEFUL: &str = r#"
name = "state-access"
duration = "2s"
drain = "1s"
clock = "simulated"
[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 5000 }
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "200ms" }
[[engine]]
name = "pr"
model = "per-record"
"#;
    let tmp = tempfile::tempdir().unwrap();
    let run = |text: &str, out: &str| {
        let scenario = streamlab_scenarios::spec::Scenario::parse(Path::new("state-access.toml"), text).unwrap();
        let opts = streamlab_scenarios::runner::RunOptions {
            out: Some(tmp.path().join(out)),
            ..Default::default()
        };
        let outcome = streamlab_scenarios::runner::run_scenario(&scenario, &opts, |_| {}).unwrap();
        outcome.summary.runs.iter().map(|r| r.counts).collect::<Vec<_>>()
    };
    let plain = run(STATEFUL, "plain");
    // A state store 8x slower for the whole run: the priced time per access is 8x.
    let slow = run(
        &format!("{STATEFUL}\n[[failure]]\nkind = \"slow_state\"\nat = \"0s\"\nduration = \"10s\"\nfactor = 8.0\n"),
        "slow",
    );
    for (p, s) in plain.iter().zip(&slow) {
        assert!(
            p.state_accesses > 0 && p.state_accesses == s.state_accesses,
            "{p:?} {s:?}"
        );
        let ratio = s.state_access_ns().unwrap() / p.state_access_ns().unwrap();
        assert!((ratio - 8.0).abs() < 0.05, "{ratio} {p:?} {s:?}");
    }
    // On the wall clock the same accesses are timed.
    let live = run(&STATEFUL.replace("clock = \"simulated\"", "clock = \"live\""), "live");
    for c in &live {
        assert!(c.state_accesses > 0 && c.state_access_time_ns > 0, "{c:?}");
    }
}

/// The quickstart's pipeline with one partition and per-record parallelism 2: source subtask 1
/// reads no partition and holds the watermark, so no window closes. The run says which subtask
/// and the remedies, and its table shows no latency over zero outputs.
#[test]
fn a_source_subtask_without_a_partition_is_named_when_no_window_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("held");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--clock",
            "simulated",
            "--duration",
            "4s",
        ])
        .args(["--set", "workload.partitions=1", "--set", "engine[1].parallelism=2"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let p50 = stdout.lines().find(|l| l.starts_with("p50 latency")).unwrap();
    assert!(p50.trim_end().ends_with(" -"), "no p50 over zero outputs: {p50}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let per_record = &summary["runs"][1];
    assert_eq!(per_record["counts"]["outputs"], 0);
    assert_eq!(per_record["stability"], "no-output");
    let notes: Vec<&str> = per_record["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let note = notes
        .iter()
        .find(|n| n.starts_with("no window result: source subtask 1 of 2 never emitted a watermark"))
        .unwrap_or_else(|| panic!("{notes:?}"));
    for remedy in ["`idle_timeout`", "at most the partition count (1)", "marks itself idle"] {
        assert!(note.contains(remedy), "{remedy}: {note}");
    }
}
