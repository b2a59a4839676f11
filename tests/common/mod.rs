//! What the differential tests share: the seeded clickstream they run on, the engines'
//! test configurations, the schedule compression that lets live runs take milliseconds, and a
//! plausible (uncalibrated) cost model for the simulated clock.

#![allow(dead_code)]

use streamlab_engines::cost::CostModel;
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::Event;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig, RateProfile};

/// The disorder bound of the test workload, and the engines' watermark delay.
pub const BOUND_MS: u64 = 200;

/// Three seconds of clickstream at 20 000 events/s over four partitions, disordered within
/// [`BOUND_MS`], nothing late.
pub fn workload() -> ClickstreamConfig {
    let mut cfg = ClickstreamConfig {
        partitions: 4,
        users: 2_000,
        mean_think_time: Span::from_ms(500),
        rate: RateProfile::Constant {
            events_per_second: 20_000.0,
        },
        ..Default::default()
    };
    cfg.disorder.bound = Span::from_ms(BOUND_MS);
    cfg.disorder.late_fraction = 0.0;
    cfg
}

/// The events of [`workload`] for `seed`, its campaign table and its partition count.
pub fn events(seed: u64) -> (Vec<Event>, CampaignTable, usize) {
    let cfg = workload();
    (
        generate(&cfg, seed, 3 * NANOS_PER_SEC),
        campaign_table(&cfg, seed),
        cfg.partitions as usize,
    )
}

/// The micro-batch engine under test: a 100 ms trigger, three shuffle partitions.
pub fn micro_batch(mode: OutputMode) -> MicroBatchConfig {
    MicroBatchConfig {
        trigger: Trigger::ProcessingTime {
            interval: Span::from_ms(100),
        },
        output_mode: mode,
        watermark_delay: Span::from_ms(BOUND_MS),
        shuffle_partitions: 3,
        workers: 2,
        ..Default::default()
    }
}

/// The per-record engine under test.
pub fn per_record_config(parallelism: usize) -> DataflowConfig {
    DataflowConfig {
        parallelism,
        buffer_timeout: Span::from_ms(1),
        auto_watermark_interval: Span::from_ms(1),
        out_of_orderness: Span::from_ms(BOUND_MS),
        ..Default::default()
    }
}

/// Live runs replay the arrival schedule 50× faster, so tests take milliseconds; event times,
/// and with them every windowing and lateness decision, are unchanged.
pub fn compressed(events: &[Event], partitions: usize) -> SourceLog {
    SourceLog::from_events(
        partitions,
        events.iter().map(|e| Event {
            arrival: e.arrival / 50,
            ..*e
        }),
    )
}

/// A plausible single-machine cost model for tests (not calibrated).
pub fn test_costs() -> CostModel {
    CostModel {
        source_read_ns_per_event: 20.0,
        chain_ns_per_event: 5.0,
        state_ns_per_update: 30.0,
        emit_ns_per_result: 50.0,
        sink_ns_per_record: 40.0,
        shuffle_ns_per_row: 15.0,
        serialize_ns_per_byte: 0.2,
        buffer_handoff_ns: 2_000.0,
        network_latency_ns: 50_000.0,
        network_ns_per_byte: 0.8,
        batch_job_ns: 1_000_000.0,
        task_launch_ns: 100_000.0,
        source_poll_ns_per_partition: 500.0,
        source_poll_interval_ns: 100_000.0,
        log_write_ns: 50_000.0,
        disk_ns_per_byte: 2.0,
        exchange_latency_ns: 0.0,
        exchange_jitter_ns: 0.0,
    }
}

/// The processes whose command line names `dir`, other than this test and `streamlab run`
/// itself (a real engine's JVMs, Python drivers, brokers and lifelines all name their
/// directory under the results): what a run must not leave behind.
pub fn processes_naming(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
            let cmd = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (pid != me && cmd.contains(&needle) && !cmd.contains("streamlab run"))
                .then(|| format!("{pid}: {}", cmd.chars().take(160).collect::<String>()))
        })
        .collect()
}

/// A run's notes in `summary.json`.
pub fn run_notes(run: &serde_json::Value) -> Vec<&str> {
    run["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

/// Asserts every run of `summary` says its outputs equal the reference evaluator's and
/// delivered some.
pub fn assert_equal_to_reference(summary: &serde_json::Value) {
    for run in summary["runs"].as_array().unwrap() {
        assert_run_equal_to_reference(run);
    }
}

/// Asserts one run of a summary says its outputs equal the reference evaluator's and delivered
/// some.
pub fn assert_run_equal_to_reference(run: &serde_json::Value) {
    let notes = run_notes(run);
    assert!(
        notes.iter().any(|n| n.starts_with("outputs equal the reference")),
        "{}: {notes:#?}",
        run["name"]
    );
    assert_delivered_outputs(run);
}

/// Asserts one run of a summary delivered some outputs.
pub fn assert_delivered_outputs(run: &serde_json::Value) {
    assert!(
        run["counts"]["outputs"].as_u64().unwrap() > 0,
        "{}: no outputs",
        run["name"]
    );
}

/// Says on stderr that `test` is skipped and why (`why`: what is not installed), and returns
/// false — or, under `STREAMLAB_REQUIRE_REAL_ENGINES=1` (CI), panics: the skip rule of the tests
/// that need a real engine.
pub fn skipped(test: &str, why: &str) -> bool {
    if std::env::var_os("STREAMLAB_REQUIRE_REAL_ENGINES").is_some_and(|v| v == "1") {
        panic!("{test}: {why} but STREAMLAB_REQUIRE_REAL_ENGINES=1");
    }
    eprintln!("{test}: SKIPPED: {why}; run `streamlab engines install` to run it");
    false
}

/// Asserts that within `grace` no process names `out` any more (every engine, broker and
/// lifeline a run started has ended).
pub fn assert_nothing_left(out: &std::path::Path, grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let left = processes_naming(out);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes left behind:\n{}",
            left.join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `streamlab run` of the scenario `text` (written to `<tmp>/scenario.toml`) into
/// `<tmp>/results`; asserts it succeeded and that within 5 s no process names the results
/// directory any more, and returns the summary.
pub fn run_leaving_nothing(tmp: &std::path::Path, text: &str) -> serde_json::Value {
    let file = tmp.join("scenario.toml");
    std::fs::write(&file, text).unwrap();
    let out = tmp.join("results");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "streamlab run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_nothing_left(&out, std::time::Duration::from_secs(5));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// A scenario for the real engines' Kafka tests: `duration` of a 100 events/s clickstream over
/// two partitions of a broker streamlab starts, the YSB-like pipeline counted per campaign in
/// 1 s windows, followed by `engines` (the `[[engine]]` and `[[failure]]` tables, as TOML).
pub fn kafka_test_scenario(name: &str, duration: &str, engines: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 7
duration = "{duration}"
drain = "1s"
clock = "live"

[workload]
transport = "kafka"
partitions = 2
users = 500
campaigns = 10
ads_per_campaign = 5
rate = {{ profile = "constant", events_per_second = 100 }}
disorder = {{ bound = "100ms", delay = "uniform", late_fraction = 0.0 }}

[pipeline]
filter_kinds = ["click", "view"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = {{ kind = "tumbling", size = "1s" }}
function = "count"

{engines}"#
    )
}
