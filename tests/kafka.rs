//! Kafka end to end, through the `streamlab` binary: `scenarios/kafka.toml` (shortened) runs the
//! native engines and Kafka Streams under at-least-once and exactly-once v2 (the real Flink and
//! Spark of the scenario are `tests/flink_kafka.rs`'s and `tests/spark_kafka.rs`'s: left out
//! here, they would add about 25 s and a minute), each on a broker streamlab starts for it; every run's outputs —
//! the native engines' too, read from the input topic and written to the output topic — must
//! equal the reference evaluator's, and no broker, Kafka Streams JVM or lifeline may be left
//! afterwards — also when streamlab is killed outright (SIGKILL) in the middle of a Kafka Streams
//! run. A native per-record job with an exactly-once sink, crashed mid-run on Kafka, reads its
//! rewound range from the topic again and ends with the failure-free run's outputs (about 20 s:
//! two runs on a broker each).
//!
//! Needs the pinned Kafka (`streamlab engines install`). Without it the test says it is
//! skipped and why, and passes, so `cargo test --workspace` passes on a fresh machine; CI sets
//! `STREAMLAB_REQUIRE_REAL_ENGINES=1`, which turns the skip into a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    assert_delivered_outputs, assert_nothing_left, assert_run_equal_to_reference, processes_naming, run_notes,
};
use streamlab_real_engines::kafka::dist::installed_for_test;

/// One Kafka run at a time (two brokers and two applications on two cores would measure each
/// other).
static KAFKA: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `streamlab run scenarios/kafka.toml --duration 4s --out <out>` without its real Flink and
/// Spark engines (their runs on Kafka are `tests/flink_kafka.rs`'s and `tests/spark_kafka.rs`'s),
/// not yet waited for.
fn run_kafka_scenario(out: &Path) -> Command {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kafka.toml")).unwrap();
    let real = text
        .find("[[engine]]\nname = \"flink\"")
        .expect("kafka.toml's real Flink and Spark engines, last");
    assert!(
        !text[..real].contains("model = \"spark\"") && !text[..real].contains("model = \"flink\""),
        "the real Flink and Spark engines come last in kafka.toml"
    );
    let scenario = out.parent().unwrap().join("kafka-without-flink-and-spark.toml");
    std::fs::write(&scenario, &text[..real]).unwrap();
    run_scenario(&scenario, out)
}

/// `streamlab run <scenario> --duration 4s --out <out>`, not yet waited for.
fn run_scenario(scenario: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamlab"));
    cmd.args([
        "run",
        scenario.to_str().unwrap(),
        "--duration",
        "4s",
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd
}

#[test]
fn kafka_streams_on_a_broker_of_our_own_equals_the_reference_and_leaves_nothing_behind() {
    if installed_for_test("kafka").is_none() {
        return;
    }
    let _one = KAFKA.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("results");
    let output = run_kafka_scenario(&out).output().unwrap();
    assert!(
        output.status.success(),
        "streamlab run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_natives_read_the_topic(&summary, 3);
    let mut kafka_streams = 0;
    for run in summary["runs"].as_array().unwrap() {
        if run["model"] != "kafka-streams" {
            continue;
        }
        kafka_streams += 1;
        assert_run_equal_to_reference(run);
        let notes = run_notes(run);
        assert!(notes.iter().any(|n| n.contains("KRaft broker")), "{notes:#?}");
    }
    assert_eq!(kafka_streams, 2, "at-least-once and exactly-once v2");
    assert!(out
        .join("jobs/kafka-streams-eos/src/StreamlabKafkaStreams.java")
        .is_file());
    assert_nothing_left(&out, Duration::from_secs(5));
}

/// Asserts that the summary's `expected` native runs read the input topic through streamlab's
/// consumer, wrote their outputs to the output topic (a `broker` latency component) and that
/// what came back equals the reference evaluator's.
fn assert_natives_read_the_topic(summary: &serde_json::Value, expected: usize) {
    let natives: Vec<&serde_json::Value> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == "micro-batch" || r["model"] == "per-record")
        .collect();
    assert_eq!(natives.len(), expected);
    for run in natives {
        let notes = run_notes(run);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("read from the input topic by streamlab's consumer")),
            "{}: {notes:#?}",
            run["name"]
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("outputs agree with the reference evaluator")),
            "{}: {notes:#?}",
            run["name"]
        );
        assert_delivered_outputs(run);
        assert!(
            run["components_ms"]["broker"].as_f64().unwrap() > 0.0,
            "{}: the output's broker hop is a component",
            run["name"]
        );
    }
}

/// A per-record job with an exactly-once sink, crashed at 1.5 s: what the restarted job reads
/// again comes from the input topic.
const NATIVE_CRASH: &str = r#"
name = "kafka-native-crash"
seed = 42
duration = "4s"
drain = "1500ms"
clock = "live"

[workload]
transport = "kafka"
partitions = 2
rate = { profile = "constant", events_per_second = 300 }
disorder = { bound = "100ms", delay = "uniform", late_fraction = 0.0 }

[pipeline]
filter_kinds = ["click", "view"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = { kind = "tumbling", size = "500ms" }
function = "count"

[[failure]]
kind = "crash"
at = "1500ms"

[[engine]]
name = "per-record exactly-once"
model = "per-record"
parallelism = 2
out_of_orderness = "100ms"
checkpoint_interval = "500ms"
sink = "exactly_once"
"#;

#[test]
fn a_native_job_crashed_on_kafka_reads_the_topic_again_and_ends_with_the_failure_free_output() {
    if installed_for_test("kafka (a native engine crashed)").is_none() {
        return;
    }
    let _one = KAFKA.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("kafka-native-crash.toml");
    std::fs::write(&scenario, NATIVE_CRASH).unwrap();
    let out: PathBuf = tmp.path().join("results");
    let output = run_scenario(&scenario, &out).output().unwrap();
    assert!(
        output.status.success(),
        "streamlab run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let run = &summary["runs"][0];
    let recovery = &run["recovery"];
    assert_eq!(run["failures"].as_array().map(Vec::len), Some(1), "{run:#}");
    assert_eq!(
        (recovery["duplicates"].as_u64(), recovery["losses"].as_u64()),
        (Some(0), Some(0)),
        "the committed output equals the failure-free run's: {recovery:#}"
    );
    assert!(recovery["replayed"].as_u64().unwrap() > 0, "{recovery:#}");
    let notes = run_notes(run);
    let refetched = notes
        .iter()
        .find_map(|n| {
            n.rsplit("; ")
                .next()?
                .strip_suffix(" events fetched from the topic again for rewinds")
        })
        .unwrap_or_else(|| panic!("{notes:#?}"));
    assert!(refetched.parse::<u64>().unwrap() > 0, "{notes:#?}");
    assert_nothing_left(&out, Duration::from_secs(5));
}

#[test]
fn a_killed_streamlab_leaves_no_broker_and_no_kafka_streams_jvm() {
    if installed_for_test("kafka (killed mid-run)").is_none() {
        return;
    }
    let _one = KAFKA.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("results");
    // Only the Kafka Streams application the test kills (the native runs before it would only
    // add their brokers' time).
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kafka.toml")).unwrap();
    let alos = text
        .find("[[engine]]\nname = \"kafka-streams alos\"")
        .expect("the alos engine");
    let end = text[alos + 1..].find("[[engine]]").map_or(text.len(), |e| alos + 1 + e);
    let scenario = tmp.path().join("kafka.toml");
    std::fs::write(
        &scenario,
        format!("{}{}", &text[..text.find("[[engine]]").unwrap()], &text[alos..end]),
    )
    .unwrap();
    let mut child = run_scenario(&scenario, &out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kafka Streams is RUNNING on its broker: both JVMs are up.
    let ready = out.join("jobs/kafka-streams-alos/ready");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "Kafka Streams never became RUNNING");
        assert!(
            child.try_wait().unwrap().is_none(),
            "streamlab ended before Kafka Streams ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !processes_naming(&out).is_empty(),
        "the broker and the application run under the results"
    );
    child.kill().unwrap(); // SIGKILL: no code of streamlab's runs; the lifelines must end the groups
    child.wait().unwrap();
    assert_nothing_left(&out, Duration::from_secs(10));
}
