//! The generated Kafka Streams application end to end, below the scenario layer: compiled with
//! `javac` against the pinned Kafka, run against a broker of streamlab's own, fed by the
//! open-loop producer, its results read back and checked against the reference evaluator.
//!
//! Cost: about 15 s per application run on two cores (javac, a broker, the JVM's start), the
//! crash test about 25 s (a second start after the kill); the tests run one at a time. Three
//! brokers and applications at once on two cores starved the crash test, whose restarted
//! application then once delivered windows without the events around the kill (seen once in CI,
//! not reproduced alone). The likely cause is Kafka Streams' own, not a lost transaction: a
//! restarted application reads its backlog again a task's chunk at a time, so the records one
//! input partition's task writes to the repartition topic can run seconds of event time ahead of
//! the other's, stream time jumps with them, and the other's records then fall behind their
//! window's end plus the grace period and are dropped as late — the longer the downtime (a starved restart), the larger
//! the skew. Confirmed here (the application now logs warnings): a starved run of this test
//! logged "Skipping record for expired window" for records of window [2 s, 3 s) at stream time
//! 3.9 s, 400 ms of grace. A run with a crash therefore caps the main consumer's fetch per
//! partition (`max.partition.fetch.bytes`, about twenty records), so the two partitions'
//! backlogs are read again interleaved; the test also asserts nothing was dropped as late. An open transaction of the killed instance
//! cannot lose events: it is aborted (fenced by the same transactional id, or at
//! `transaction.timeout.ms`), its input offsets are not committed, and the restart reads those
//! records again; a `read_committed` read of the repartition topic waits for the abort.
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
use streamlab_real_engines::kafka_streams::{
    run_kafka_streams, translate, KafkaStreamsConfig, KafkaStreamsLaunch, KafkaStreamsOutcome,
};
use streamlab_real_engines::outputs::{read_outputs, ReferenceCheck};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig};

/// One application and broker at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

fn run(test: &str, pipeline_toml: &str, config: KafkaStreamsConfig) -> Option<KafkaStreamsOutcome> {
    run_crashed(test, pipeline_toml, config, None)
}

fn run_crashed(
    test: &str,
    pipeline_toml: &str,
    config: KafkaStreamsConfig,
    crash_at: Option<Span>,
) -> Option<KafkaStreamsOutcome> {
    installed_for_test(test)?;
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
        crash_at: crash_at.map(Span::nanos),
        watch: Default::default(),
    };
    let outcome = run_kafka_streams(&launch, &events).unwrap_or_else(|e| {
        panic!(
            "{e}\nbuild log: {}",
            std::fs::read_to_string(dir.join("build.log")).unwrap_or_default()
        )
    });
    assert_eq!(outcome.producer.events_sent, events.len() as u64);
    assert!(
        !outcome.output_hop_ns.is_empty() && outcome.output_hop_ns.iter().all(|&h| h < 30_000_000_000),
        "the output topic keeps log-append times: every result's broker hop is measured"
    );
    let outputs = read_outputs(&pipeline, &table, &events, &outcome.lines).unwrap();
    assert!(!outputs.delivered.is_empty());
    let expected = reference::evaluate(&pipeline, &table, &events);
    let last = events.iter().map(|e| e.event_time).max().unwrap();
    let closed_by = streamlab_real_engines::kafka_streams::config::closed_by(&config, &pipeline, last);
    let check = ReferenceCheck::compare(&expected, &outputs.delivered, pipeline.is_stateful(), closed_by);
    if !check.matches() {
        let log = std::fs::read_to_string(dir.join("engine.log")).unwrap_or_default();
        let telling: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("streamlab:") || l.contains("ERROR") || l.contains("WARN"))
            .collect();
        panic!(
            "{}\naborted {}, dropped as late by Kafka Streams {}, crash {:?}, {} lines\nengine log (state changes, warnings):\n{}",
            check.describe(),
            outcome.aborted,
            outcome.late_dropped,
            outcome.crash,
            outcome.lines.len(),
            telling[telling.len().saturating_sub(40)..].join("\n")
        );
    }
    Some(outcome)
}

/// Clicks and views counted per campaign in 1 s tumbling windows.
const WINDOWED_COUNT: &str = r#"
filter_kinds = ["click", "view"]
lookup_join = true
[aggregate]
key_by = "campaign"
window = { kind = "tumbling", size = "1s" }
function = "count"
"#;

#[test]
fn a_windowed_count_per_campaign_equals_the_reference() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    run(
        "ks-windowed",
        WINDOWED_COUNT,
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
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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

/// Item 4 of the Kafka issue for Kafka Streams: the application's process group is killed mid
/// run (SIGKILL: no close, no last commit) and started again on the same `application.id`;
/// under `exactly_once_v2` the output topic read `read_committed` ends with every window's
/// count equal to the reference — a window counted twice (an input read again after its count
/// was committed) or a lost one fails the check — and the killed instance's open transaction,
/// if it had one, is dropped by streamlab's consumer.
#[test]
fn a_killed_exactly_once_application_restarts_without_duplicates_or_losses() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(outcome) = run_crashed(
        "ks-crash-eos",
        WINDOWED_COUNT,
        KafkaStreamsConfig {
            processing_guarantee: streamlab_real_engines::kafka_streams::config::ProcessingGuarantee::ExactlyOnceV2,
            // What the backlog read again after the restart can run ahead of the other
            // partition's by: a fetch's twenty records of one partition (about 130 ms of event
            // time at this rate) plus the events' own disorder (up to 200 ms); 457 ms was seen
            // on 2026-12-07 (two records dropped as late with 400 ms). 800 ms still checks the
            // same windows: [0 s, 1 s) and [1 s, 2 s), closed by the input's end.
            grace: Span::from_ms(800),
            ..KafkaStreamsConfig::default()
        },
        Some(Span::from_ms(2000)),
    ) else {
        return;
    };
    let crash = outcome.crash.expect("the crash was injected");
    assert!(
        crash.at >= Span::from_ms(2000).nanos() && crash.restarted_at > crash.at,
        "{crash:?}"
    );
    eprintln!(
        "ks-crash-eos: killed at {:.2} s, RUNNING at {:.2} s, {} records read again at most, {} aborted records dropped, {} dropped as late",
        crash.at as f64 / 1e9,
        crash.restarted_at as f64 / 1e9,
        crash.replayed,
        outcome.aborted,
        outcome.late_dropped
    );
    assert_eq!(
        outcome.late_dropped, 0,
        "the backlog read again after the restart must come from both partitions a little at a time"
    );
}
