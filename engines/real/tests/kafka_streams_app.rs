//! The generated Kafka Streams application end to end, below the scenario layer: compiled with
//! `javac` against the pinned Kafka, run against a broker of streamlab's own, fed by the
//! open-loop producer, its results read back and checked against the reference evaluator.
//!
//! Needs the pinned Kafka and a JDK (`streamlab engines install`). Without them each test says
//! it is skipped and why, and passes; `STREAMLAB_REQUIRE_REAL_ENGINES=1` (CI) fails instead.

use std::time::Duration;

use streamlab_engines::event::Event;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::reference;
use streamlab_engines::time::Span;
use streamlab_real_engines::job::write_campaign_table;
use streamlab_real_engines::kafka::dist::installed_for_test;
use streamlab_real_engines::kafka_streams::{run_kafka_streams, translate, KafkaStreamsConfig, KafkaStreamsLaunch};
use streamlab_real_engines::outputs::{read_outputs, ReferenceCheck};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig};

fn workload() -> (ClickstreamConfig, Vec<Event>) {
    let cfg: ClickstreamConfig = toml::from_str(
        r#"
        partitions = 2
        users = 500
        pages = 50
        campaigns = 5
        ads_per_campaign = 4
        rate = { profile = "constant", events_per_second = 300 }
        "#,
    )
    .unwrap();
    let events = generate(&cfg, 7, Span::from_ms(4000).nanos());
    (cfg, events)
}

fn run(test: &str, pipeline_toml: &str, config: KafkaStreamsConfig) {
    if installed_for_test(test).is_none() {
        return;
    }
    let pipeline: PipelineSpec = toml::from_str(pipeline_toml).unwrap();
    let (cfg, events) = workload();
    let table = campaign_table(&cfg, 7);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let campaigns = dir.join("campaigns.csv");
    let mut csv = Vec::new();
    write_campaign_table(&table, &mut csv).unwrap();
    std::fs::write(&campaigns, csv).unwrap();
    let launch = KafkaStreamsLaunch {
        dir: dir.clone(),
        name: test.into(),
        source: translate(&pipeline, &config).unwrap(),
        properties: config
            .properties()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        campaigns,
        partitions: 2,
        bootstrap_servers: None,
        ready_timeout: Duration::from_secs(90),
        run_timeout: Duration::from_secs(60),
        quiet: Duration::from_nanos(config.commit_interval().nanos()) + Duration::from_secs(2),
        warmup: 0,
    };
    let outcome = run_kafka_streams(&launch, &events).unwrap_or_else(|e| {
        panic!(
            "{e}\nbuild log: {}",
            std::fs::read_to_string(dir.join("build.log")).unwrap_or_default()
        )
    });
    assert_eq!(outcome.producer.events_sent, events.len() as u64);
    let outputs = read_outputs(&pipeline, &table, &events, &outcome.lines).unwrap();
    assert!(!outputs.delivered.is_empty());
    let expected = reference::evaluate(&pipeline, &table, &events);
    let last = events.iter().map(|e| e.event_time).max().unwrap();
    let closed_by = streamlab_real_engines::kafka_streams::config::closed_by(&config, &pipeline, last);
    let check = ReferenceCheck::compare(&expected, &outputs.delivered, pipeline.is_stateful(), closed_by);
    assert!(check.matches(), "{}", check.describe());
}

#[test]
fn a_windowed_count_per_campaign_equals_the_reference() {
    run(
        "ks-windowed",
        r#"
        filter_kinds = ["click", "view"]
        lookup_join = true
        [aggregate]
        key_by = "campaign"
        window = { kind = "tumbling", size = "1s" }
        function = "count"
        "#,
        // The workload's events are up to 200 ms out of order (the default disorder bound): the
        // grace period must cover it, or Kafka Streams drops them as late, as it should.
        KafkaStreamsConfig {
            commit_interval: Some(Span::from_ms(200)),
            grace: Span::from_ms(400),
            ..KafkaStreamsConfig::default()
        },
    );
}

#[test]
fn a_stateless_pipeline_delivers_every_row_once() {
    run(
        "ks-stateless",
        r#"
        filter_kinds = ["click"]
        lookup_join = true
        project = ["seq", "event_time", "user", "campaign"]
        "#,
        KafkaStreamsConfig {
            commit_interval: Some(Span::from_ms(200)),
            ..KafkaStreamsConfig::default()
        },
    );
}
