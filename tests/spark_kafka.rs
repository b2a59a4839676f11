//! The real Spark on Kafka, through the `streamlab` binary, on a broker streamlab starts: a
//! micro-batch query (1 s trigger, append mode) and a Real-Time Mode query (update mode), whose
//! process groups a `[[failure]]` crash each kills mid-run, each restarted from its checkpoint.
//! Both must leave in the output topic exactly the reference evaluator's results and, against
//! their failure-free runs (which the runner makes first), lose nothing. The micro-batch query
//! also writes nothing twice — append mode emits each window once, so a batch written twice
//! would show as a duplicate (the killed run's batches are written once, keyed by batch id, in
//! Kafka transactions). The Real-Time Mode query's Kafka sink is at-least-once: the updates it
//! wrote after its last checkpoint are written again, which the upsert comparison (each
//! window's final value) does not count as duplicates. Each restart must be reported with its
//! recovery figures (downtime), and no broker, JVM or lifeline may be left.
//!
//! Needs the pinned Kafka, Spark's Kafka connector and the Spark venv (`streamlab engines
//! install`); without them it says it is skipped and why, and passes. Cost: about two minutes
//! on a 2-core machine (four Spark start-ups and two restarts, each about 8 s, and four 5 s
//! runs with their quiet periods): the killed queries' failure-free runs are the price of
//! counting their duplicates and losses as for every engine.

mod common;

use common::{assert_equal_to_reference, kafka_test_scenario, run_leaving_nothing, run_notes, skipped};
use streamlab_real_engines::kafka::dist::installed_for_test;
use streamlab_real_engines::kafka::spark_connector::SparkKafkaJars;
use streamlab_real_engines::{CacheDir, PythonEngine, VenvStatus};

/// The test's two Spark queries and the crash of each, after
/// `common::kafka_test_scenario`'s workload and pipeline (5 s of events).
const ENGINES: &str = r#"[[engine]]
name = "spark killed"
model = "spark"
trigger = { kind = "processing_time", interval = "1s" }
output_mode = "append"
watermark_delay = "100ms"
shuffle_partitions = 1
workers = 2

[[engine]]
name = "spark real-time"
model = "spark"
trigger = { kind = "real_time", checkpoint_interval = "5s" }
output_mode = "update"
watermark_delay = "100ms"
shuffle_partitions = 1
workers = 3

[[failure]]
kind = "crash"
at = "2s"
engine = "spark killed"

[[failure]]
kind = "crash"
at = "2s"
engine = "spark real-time"
"#;

/// Whether Spark on Kafka can run here; otherwise says why the test is skipped.
fn spark_on_kafka_installed() -> bool {
    if installed_for_test("spark on kafka").is_none() {
        return false;
    }
    let cache = CacheDir::from_env().unwrap();
    let why = match (
        cache.venv(PythonEngine::Spark).status(),
        SparkKafkaJars::in_cache(&cache).spark_jars(),
    ) {
        (VenvStatus::Ready, Ok(_)) => return true,
        (VenvStatus::Ready, Err(e)) => e.to_string(),
        (status, _) => format!("the Spark venv is {status}"),
    };
    skipped("spark on kafka", &why)
}

#[test]
fn spark_on_kafka_killed_and_restarted_in_both_modes_equals_the_reference() {
    if !spark_on_kafka_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let summary = run_leaving_nothing(tmp.path(), &kafka_test_scenario("spark-kafka-test", "5s", ENGINES));
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_equal_to_reference(&summary);
    for name in ["spark killed", "spark real-time"] {
        let killed = runs.iter().find(|r| r["name"] == name).unwrap();
        let notes = run_notes(killed);
        assert!(
            notes.iter().any(|n| n.starts_with("killed (SIGKILL")),
            "{name}: {notes:#?}"
        );
        let recovery = &killed["recovery"];
        assert_eq!(recovery["duplicates"], 0, "{name}: {recovery}");
        assert_eq!(recovery["losses"], 0, "{name}: {recovery}");
        assert!(
            recovery["downtime_ms"].as_f64().is_some_and(|d| d > 0.0),
            "{name}: {recovery}"
        );
        assert_eq!(killed["failures"].as_array().map(Vec::len), Some(1), "{killed}");
    }
}
