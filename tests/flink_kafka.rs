//! The real Flink on Kafka killed mid-run, through the `streamlab` binary, on a broker streamlab
//! starts: Flink's Kafka source reads the input topic, its exactly-once Kafka sink (two-phase
//! commit on checkpoints) writes the output topic streamlab reads `read_committed`, and at 2 s a
//! `[[failure]]` crash kills the job's process group; streamlab restores it from its newest
//! retained checkpoint. The output topic must then hold exactly the reference evaluator's results
//! and, against the failure-free run of the same scenario (which the runner makes first, the
//! uninterrupted run), no duplicate and no loss; the restart is reported with its recovery
//! figures (downtime, replayed). No broker, JVM, Python driver or lifeline may be left afterwards.
//!
//! The uninterrupted run's equality to the reference is also checked on its own, beside Kafka
//! Streams, by `tests/kafka.rs` on `scenarios/kafka.toml` (one Flink run there, about 25 s), so
//! that it costs no third Flink run here.
//!
//! Needs the pinned Kafka, Flink's Kafka connector, the Flink venv and its helper jar
//! (`streamlab engines install`); without them the test says it is skipped and why, and passes
//! (CI sets `STREAMLAB_REQUIRE_REAL_ENGINES=1`, which turns the skip into a failure). Cost: about
//! 60 s on a 2-core machine — three Flink start-ups of about 11 s each (the failure-free run, the
//! killed run and its restore), each run 4 s of events at 100 events/s and a 3.7 s quiet period
//! (500 ms checkpoints).

mod common;

use common::{assert_equal_to_reference, kafka_test_scenario, run_leaving_nothing, run_notes, skipped};
use streamlab_real_engines::kafka::dist::installed_for_test;
use streamlab_real_engines::kafka::flink_connector::FlinkKafkaJars;
use streamlab_real_engines::{CacheDir, PythonEngine, VenvStatus};

/// The test's Flink job, after `common::kafka_test_scenario`'s workload and pipeline (4 s of
/// events); the test adds its crash.
const ENGINES: &str = r#"[[engine]]
name = "flink"
model = "flink"
parallelism = 2
buffer_timeout = "10ms"
out_of_orderness = "100ms"
sink = "exactly_once"
checkpoint_interval = "500ms"
"#;

/// Whether Flink on Kafka can run here; otherwise says why the test is skipped.
fn flink_on_kafka_installed(test: &str) -> bool {
    if installed_for_test(test).is_none() {
        return false;
    }
    let cache = CacheDir::from_env().unwrap();
    let why = match (
        cache.venv(PythonEngine::Flink).status(),
        FlinkKafkaJars::in_cache(&cache).jars(),
    ) {
        (VenvStatus::Ready, Ok(_)) if cache.flink_helper_jar().is_file() => return true,
        (VenvStatus::Ready, Ok(_)) => "the Flink helper jar is missing".to_string(),
        (VenvStatus::Ready, Err(e)) => e.to_string(),
        (status, _) => format!("the Flink venv is {status}"),
    };
    skipped(test, &why)
}

#[test]
fn flink_on_kafka_killed_and_restored_from_its_checkpoint_loses_and_repeats_nothing() {
    if !flink_on_kafka_installed("flink on kafka, killed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let summary = run_leaving_nothing(
        tmp.path(),
        &kafka_test_scenario(
            "flink-kafka-test",
            "4s",
            &format!("{ENGINES}\n[[failure]]\nkind = \"crash\"\nat = \"2s\"\nengine = \"flink\"\n"),
        ),
    );
    assert_equal_to_reference(&summary);
    let run = &summary["runs"][0];
    let notes = run_notes(run);
    assert!(notes.iter().any(|n| n.starts_with("killed (SIGKILL")), "{notes:#?}");
    let recovery = &run["recovery"];
    assert_eq!(recovery["duplicates"], 0, "{recovery}");
    assert_eq!(recovery["losses"], 0, "{recovery}");
    assert!(recovery["downtime_ms"].as_f64().is_some_and(|d| d > 0.0), "{recovery}");
    assert_eq!(run["failures"].as_array().map(Vec::len), Some(1), "{run}");
    assert!(notes.iter().any(|n| n.starts_with("broker's share")), "{notes:#?}");
}
