//! The real Spark on `transport = "kafka"` and Spark's Real-Time Mode in scenario files, without
//! a broker or a JVM: the keys are read, and what Spark refuses is refused before anything
//! starts, by key, with Spark's own reason. Cost: milliseconds.

use std::path::Path;

use streamlab_engines::microbatch::Trigger;
use streamlab_engines::time::Span;
use streamlab_scenarios::spec::{EngineKind, Scenario};
use streamlab_scenarios::ScenarioError;

const FILE: &str = "scenarios/x.toml";

fn scenario(transport: &str, window: &str, engine: &str) -> Result<Scenario, ScenarioError> {
    let text = format!(
        r#"name = "t"
duration = "2s"

[workload]
{transport}
partitions = 2
rate = {{ profile = "constant", events_per_second = 100 }}

[pipeline]
filter_kinds = ["click"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = {window}
function = "count"

[[engine]]
name = "s"
model = "spark"
shuffle_partitions = 1
workers = 3
{engine}"#
    );
    Scenario::parse(Path::new(FILE), &text)
}

const KAFKA: &str = "transport = \"kafka\"";
const TUMBLING: &str = "{ kind = \"tumbling\", size = \"1s\" }";
const RTM: &str = "trigger = { kind = \"real_time\", checkpoint_interval = \"5s\" }\noutput_mode = \"update\"";

fn refused(err: ScenarioError, key: &str, words: &[&str]) {
    let message = err.to_string();
    assert!(message.starts_with(FILE), "{message}");
    assert_eq!(err.key(), Some(key), "{message}");
    for w in words {
        assert!(message.contains(w), "`{w}` missing from: {message}");
    }
}

#[test]
fn spark_reads_kafka_in_micro_batches_and_in_real_time_mode() {
    let s = scenario(
        KAFKA,
        TUMBLING,
        "trigger = { kind = \"processing_time\", interval = \"1s\" }",
    )
    .unwrap();
    assert!(s.transport.is_kafka());
    let s = scenario(KAFKA, TUMBLING, RTM).unwrap();
    let EngineKind::Spark(spark) = &s.engines[0].kind else {
        panic!("{:?}", s.engines[0].kind)
    };
    assert_eq!(
        spark.config.trigger,
        Trigger::RealTime {
            checkpoint_interval: Span::from_ms(5000)
        }
    );
    let crash = "\n[[failure]]\nkind = \"crash\"\nat = \"3s\"\nengine = \"s\"";
    let s = scenario(KAFKA, TUMBLING, &format!("{RTM}{crash}")).unwrap();
    assert_eq!(s.failures.len(), 1);
}

#[test]
fn real_time_mode_on_the_feeder_is_refused_at_the_trigger_with_sparks_reason() {
    refused(
        scenario("", TUMBLING, RTM).unwrap_err(),
        "engine[0].trigger",
        &["INPUT_STREAM_NOT_SUPPORTED", "transport = \"kafka\""],
    );
}

#[test]
fn real_time_mode_refuses_append_mode_and_session_windows_as_spark_does() {
    refused(
        scenario(
            KAFKA,
            TUMBLING,
            "trigger = { kind = \"real_time\", checkpoint_interval = \"5s\" }",
        )
        .unwrap_err(),
        "engine[0].output_mode",
        &["OUTPUT_MODE_NOT_SUPPORTED"],
    );
    refused(
        scenario(KAFKA, "{ kind = \"session\", gap = \"1s\" }", RTM).unwrap_err(),
        "engine[0].trigger",
        &["allowlist", "session window"],
    );
}

#[test]
fn kill_at_is_refused_with_the_failure_that_replaced_it() {
    for transport in ["", KAFKA] {
        refused(
            scenario(transport, TUMBLING, "kill_at = \"3s\"").unwrap_err(),
            "engine[0].kill_at",
            &[
                "no longer a key",
                "[[failure]]",
                "kind = \"crash\", at = \"3s\", engine = \"s\"",
            ],
        );
    }
}
