//! Kafka end to end, through the `streamlab` binary: `scenarios/kafka.toml` (shortened) runs the
//! native engines and Kafka Streams under at-least-once and exactly-once v2, each Kafka Streams
//! run on a broker streamlab starts for it; every Kafka Streams run's outputs must equal the
//! reference evaluator's, and no broker, Kafka Streams JVM or lifeline may be left afterwards.
//!
//! Needs the pinned Kafka (`streamlab engines install`). Without it the test says it is
//! skipped and why, and passes, so `cargo test --workspace` passes on a fresh machine; CI sets
//! `STREAMLAB_REQUIRE_REAL_ENGINES=1`, which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use streamlab_real_engines::kafka::dist::installed_for_test;

/// The processes whose command line names `dir` (the broker's and the application's JVMs and
/// their lifelines all name their directory under the results).
fn processes_naming(dir: &Path) -> Vec<String> {
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

#[test]
fn kafka_streams_on_a_broker_of_our_own_equals_the_reference_and_leaves_nothing_behind() {
    if installed_for_test("kafka").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("results");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kafka.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--duration",
            "4s",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
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
    assert!(out
        .join("jobs/kafka-streams-eos/src/StreamlabKafkaStreams.java")
        .is_file());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_naming(&out);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left behind:\n{}", left.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}
