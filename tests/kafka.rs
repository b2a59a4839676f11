//! Kafka end to end, through the `streamlab` binary: `scenarios/kafka.toml` (shortened) runs the
//! native engines, Kafka Streams under at-least-once and exactly-once v2 and the real Flink (when
//! installed: about 25 s more), each on a broker streamlab starts for it; every Kafka Streams and
//! Flink run's outputs must equal the reference evaluator's, and no broker, Kafka Streams JVM or
//! lifeline may be left afterwards — also when streamlab is killed outright (SIGKILL) in the
//! middle of a Kafka Streams run.
//!
//! Needs the pinned Kafka (`streamlab engines install`). Without it the test says it is
//! skipped and why, and passes, so `cargo test --workspace` passes on a fresh machine; CI sets
//! `STREAMLAB_REQUIRE_REAL_ENGINES=1`, which turns the skip into a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::processes_naming;
use streamlab_real_engines::kafka::dist::installed_for_test;

/// One Kafka run at a time (two brokers and two applications on two cores would measure each
/// other).
static KAFKA: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Asserts that within `grace` no process names `out` any more.
fn assert_nothing_left(out: &Path, grace: Duration) {
    let deadline = Instant::now() + grace;
    loop {
        let left = processes_naming(out);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind:\n{}", left.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `streamlab run scenarios/kafka.toml --duration 4s --out <out>`, not yet waited for.
fn run_kafka_scenario(out: &Path) -> Command {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kafka.toml");
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
    let mut kafka_streams = 0;
    for run in summary["runs"].as_array().unwrap() {
        if run["model"] != "kafka-streams" {
            continue;
        }
        kafka_streams += 1;
        let notes: Vec<&str> = run["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(
            notes.iter().any(|n| n.starts_with("outputs equal the reference")),
            "{}: {notes:#?}",
            run["name"]
        );
        assert!(notes.iter().any(|n| n.contains("KRaft broker")), "{notes:#?}");
        assert!(
            run["counts"]["outputs"].as_u64().unwrap() > 0,
            "{}: no outputs",
            run["name"]
        );
    }
    assert_eq!(kafka_streams, 2, "at-least-once and exactly-once v2");
    // The real Flink on Kafka (`if_installed`): its outputs through its exactly-once Kafka sink.
    for run in summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == "flink")
    {
        let notes = common::run_notes(run);
        assert!(
            notes.iter().any(|n| n.starts_with("outputs equal the reference")),
            "{}: {notes:#?}",
            run["name"]
        );
    }
    assert!(out
        .join("jobs/kafka-streams-eos/src/StreamlabKafkaStreams.java")
        .is_file());
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
    let mut child = run_kafka_scenario(&out)
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
