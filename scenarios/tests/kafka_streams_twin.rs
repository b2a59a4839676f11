//! `validate --against kafka-streams` and `calibrate --against kafka-streams` without a broker:
//! the model names are accepted, and a Kafka Streams engine's native twin is the per-record
//! engine with its knobs, priced by the fitted profile. Cost: milliseconds.

use std::path::Path;

use streamlab_engines::time::Span;
use streamlab_scenarios::against::{native_twin, parse_models};
use streamlab_scenarios::spec::{EngineKind, Scenario};

#[test]
fn kafka_streams_is_a_model_to_validate_and_fit_against() {
    assert_eq!(parse_models("spark,kafka-streams").unwrap(), ["spark", "kafka-streams"]);
    assert!(parse_models("storm").unwrap_err().contains("kafka-streams"));
}

#[test]
fn the_twin_of_kafka_streams_is_the_per_record_engine_with_its_knobs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validate-kafka-streams.toml");
    let scenario = Scenario::load(&path).unwrap();
    for engine in &scenario.engines {
        let twin = native_twin(engine).unwrap();
        assert_eq!(twin.profile.as_deref(), Some("kafka-streams-local"));
        let (EngineKind::PerRecord(pr), EngineKind::KafkaStreams(ks)) = (&twin.kind, &engine.kind) else {
            panic!("{:?}", twin.kind)
        };
        assert_eq!(pr.parallelism, ks.config.threads);
        assert_eq!(pr.out_of_orderness, Span::from_ms(300), "stream time: grace behind");
        assert_eq!(
            pr.commit_interval, None,
            "suppress: one final result when stream time closes the window"
        );
    }
    let mut unsuppressed = scenario.engines[0].clone();
    if let EngineKind::KafkaStreams(ks) = &mut unsuppressed.kind {
        ks.config.suppress = false;
    }
    let EngineKind::PerRecord(pr) = native_twin(&unsuppressed).unwrap().kind else {
        panic!()
    };
    assert_eq!(
        pr.commit_interval,
        Some(Span::from_ms(500)),
        "the record cache flushed on commit"
    );
}
