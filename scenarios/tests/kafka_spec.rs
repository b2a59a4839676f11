//! `[workload] transport = "kafka"` and `model = "kafka-streams"` in scenario files, without a
//! broker or a JVM: the keys are read, and what cannot run is refused before anything starts,
//! naming the file and key.

use std::path::Path;

use streamlab_engines::time::Span;
use streamlab_real_engines::kafka_streams::ProcessingGuarantee;
use streamlab_scenarios::spec::{EngineKind, Scenario};
use streamlab_scenarios::transport::Transport;
use streamlab_scenarios::ScenarioError;

const FILE: &str = "scenarios/x.toml";

fn scenario(workload_extra: &str, engines: &str) -> Result<Scenario, ScenarioError> {
    let text = format!(
        r#"name = "t"
duration = "2s"

[workload]
{workload_extra}
partitions = 2
rate = {{ profile = "constant", events_per_second = 100 }}

[pipeline]
filter_kinds = ["click"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = {{ kind = "tumbling", size = "1s" }}
function = "count"
{engines}"#
    );
    Scenario::parse(Path::new(FILE), &text)
}

const KAFKA_STREAMS: &str = r#"
[[engine]]
name = "ks"
model = "kafka-streams"
processing_guarantee = "exactly_once_v2"
commit_interval = "250ms"
cache_max_bytes = 0
grace = "200ms"
warmup = "1s"
conf = { "linger.ms" = "5" }
"#;

const NATIVE: &str = r#"
[[engine]]
name = "pr"
model = "per-record"
"#;

fn refused(err: ScenarioError, key: &str, words: &[&str]) {
    let message = err.to_string();
    assert!(message.starts_with(FILE), "{message}");
    assert_eq!(err.key(), Some(key), "{message}");
    for w in words {
        assert!(message.contains(w), "`{w}` missing from: {message}");
    }
}

#[test]
fn a_kafka_streams_engine_reads_its_keys_and_the_transport_its_cluster() {
    let s = scenario(
        "transport = \"kafka\"\nbootstrap_servers = \"127.0.0.1:9092\"",
        KAFKA_STREAMS,
    )
    .unwrap();
    assert_eq!(
        s.transport,
        Transport::Kafka {
            bootstrap_servers: Some("127.0.0.1:9092".into())
        }
    );
    let EngineKind::KafkaStreams(ks) = &s.engines[0].kind else {
        panic!("{:?}", s.engines[0].kind)
    };
    assert_eq!(ks.config.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);
    assert_eq!(ks.config.commit_interval, Some(Span::from_ms(250)));
    assert_eq!(ks.config.cache_max_bytes, 0);
    assert_eq!(ks.config.grace, Span::from_ms(200));
    assert_eq!(ks.settings.warmup, Span::from_ms(1000));
    assert_eq!(ks.settings.conf["linger.ms"], "5");
    assert!(s.engines[0].kind.is_real());
    assert_eq!(s.engines[0].model(), "kafka-streams");
}

#[test]
fn the_socket_transport_is_the_default_and_native_engines_run_on_either() {
    assert_eq!(scenario("", NATIVE).unwrap().transport, Transport::Socket);
    assert!(scenario("transport = \"kafka\"", NATIVE).unwrap().transport.is_kafka());
}

#[test]
fn kafka_streams_without_kafka_is_refused_at_its_model() {
    refused(
        scenario("", KAFKA_STREAMS).unwrap_err(),
        "engine[0].model",
        &["transport = \"kafka\""],
    );
}

#[test]
fn the_real_flink_on_kafka_exactly_once_needs_checkpoints_and_takes_a_failure_not_kill_at() {
    let flink = "\n[[engine]]\nname = \"f\"\nmodel = \"flink\"\n";
    assert!(scenario("transport = \"kafka\"", flink).unwrap().transport.is_kafka());
    let exactly_once = format!("{flink}sink = \"exactly_once\"\n");
    refused(
        scenario("transport = \"kafka\"", &exactly_once).unwrap_err(),
        "engine[0].sink",
        &["checkpoint_interval"],
    );
    let checkpointed = format!("{exactly_once}checkpoint_interval = \"1s\"\n");
    assert!(scenario("transport = \"kafka\"", &checkpointed)
        .unwrap()
        .transport
        .is_kafka());
    refused(
        scenario("transport = \"kafka\"", &format!("{checkpointed}kill_at = \"2s\"\n")).unwrap_err(),
        "engine[0].kill_at",
        &["no longer a key", "[[failure]]", "engine = \"f\""],
    );
}

#[test]
fn an_unknown_transport_or_a_cluster_without_kafka_is_refused_by_key() {
    refused(
        scenario("transport = \"pulsar\"", NATIVE).unwrap_err(),
        "workload.transport",
        &["\"socket\"", "\"kafka\""],
    );
    refused(
        scenario("bootstrap_servers = \"h:9092\"", NATIVE).unwrap_err(),
        "workload.bootstrap_servers",
        &["transport = \"kafka\""],
    );
}

#[test]
fn what_kafka_streams_cannot_run_is_refused_by_key() {
    let ks = |extra: &str| format!("\n[[engine]]\nname = \"ks\"\nmodel = \"kafka-streams\"\n{extra}\n");
    refused(
        scenario("transport = \"kafka\"", &ks("master = \"spark://h:7077\"")).unwrap_err(),
        "engine[0].master",
        &["bootstrap_servers"],
    );
    refused(
        scenario("transport = \"kafka\"", &ks("threads = 0")).unwrap_err(),
        "engine[0].threads",
        &["num.stream.threads"],
    );
    refused(
        scenario("transport = \"kafka\"", &ks("processing_guarantee = \"exactly_once\"")).unwrap_err(),
        "engine[0].processing_guarantee",
        &["exactly_once_v2"],
    );
    let distinct = scenario("transport = \"kafka\"", &ks(""))
        .map(|_| ())
        .and_then(|()| {
            Scenario::parse(
                Path::new(FILE),
                &format!(
                    "name = \"t\"\nduration = \"2s\"\n[workload]\ntransport = \"kafka\"\n[pipeline.aggregate]\nkey_by = \"user\"\n\
                     window = {{ kind = \"tumbling\", size = \"1s\" }}\nfunction = \"distinct_count\"\nfield = \"page\"\n{}",
                    ks("")
                ),
            )
            .map(|_| ())
        })
        .unwrap_err();
    refused(
        distinct,
        "pipeline.aggregate.function",
        &["Kafka Streams cannot run this", "distinct count"],
    );
}
