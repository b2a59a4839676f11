//! Deserialising and validating the workload configuration.

use streamlab_engines::time::Span;
use streamlab_workloads::{ClickstreamConfig, ConfigError, DelayDistribution, RateProfile};

fn from_json(text: &str) -> Result<ClickstreamConfig, serde_json::Error> {
    serde_json::from_str(text)
}

fn key_of(cfg: &ClickstreamConfig) -> String {
    cfg.validate().expect_err("should be rejected").key
}

#[test]
fn defaults_are_valid_and_round_trip() {
    let cfg = ClickstreamConfig::default();
    cfg.validate().unwrap();
    assert_eq!(cfg.partitions, 4);
    assert_eq!(
        cfg.rate,
        RateProfile::Constant {
            events_per_second: 20_000.0
        }
    );
    assert_eq!(cfg.mean_think_time, Span::from_ms(2_000));
    let text = serde_json::to_string(&cfg).unwrap();
    assert_eq!(from_json(&text).unwrap(), cfg);
    assert_eq!(from_json("{}").unwrap(), cfg);
}

#[test]
fn partial_tables_and_tagged_profiles_parse() {
    let cfg = from_json(
        r#"{"users": 10, "rate": {"profile": "spike", "base": 100, "peak": 1000, "at": "5s", "duration": "500ms"},
            "disorder": {"delay": "exponential", "late_fraction": 0.05}, "mix": {"view": 1.0}}"#,
    )
    .unwrap();
    assert_eq!(cfg.users, 10);
    assert_eq!(
        cfg.rate,
        RateProfile::Spike {
            base: 100.0,
            peak: 1000.0,
            at: Span::from_ms(5_000),
            duration: Span::from_ms(500)
        }
    );
    assert_eq!(cfg.disorder.delay, DelayDistribution::Exponential);
    assert_eq!(cfg.disorder.bound, Span::from_ms(200));
    assert_eq!(cfg.mix.click, 0.20);
    cfg.validate().unwrap();
    let sine = from_json(r#"{"rate": {"profile": "sine", "mean": 10, "amplitude": 5, "period": "1m"}}"#).unwrap();
    sine.validate().unwrap();
}

#[test]
fn unknown_keys_and_profiles_are_rejected() {
    assert!(from_json(r#"{"userz": 10}"#).unwrap_err().to_string().contains("userz"));
    assert!(from_json(r#"{"rate": {"profile": "constant", "events_per_second": 1, "burst": 2}}"#).is_err());
    assert!(from_json(r#"{"rate": {"profile": "ramp"}}"#)
        .unwrap_err()
        .to_string()
        .contains("ramp"));
    assert!(from_json(r#"{"disorder": {"delay": "gaussian"}}"#).is_err());
    assert!(from_json(r#"{"mean_think_time": "soon"}"#).is_err());
}

#[test]
fn validation_errors_name_the_key() {
    let d = ClickstreamConfig::default;
    assert_eq!(key_of(&ClickstreamConfig { partitions: 0, ..d() }), "partitions");
    assert_eq!(key_of(&ClickstreamConfig { users: 0, ..d() }), "users");
    assert_eq!(key_of(&ClickstreamConfig { pages: 0, ..d() }), "pages");
    assert_eq!(key_of(&ClickstreamConfig { campaigns: 0, ..d() }), "campaigns");
    assert_eq!(
        key_of(&ClickstreamConfig {
            ads_per_campaign: 0,
            ..d()
        }),
        "ads_per_campaign"
    );
    assert_eq!(
        key_of(&ClickstreamConfig {
            page_zipf_exponent: -1.0,
            ..d()
        }),
        "page_zipf_exponent"
    );
    assert_eq!(
        key_of(&ClickstreamConfig {
            mean_session_events: 0.5,
            ..d()
        }),
        "mean_session_events"
    );
    assert_eq!(
        key_of(&ClickstreamConfig {
            mean_think_time: Span(0),
            ..d()
        }),
        "mean_think_time"
    );

    let mut cfg = d();
    cfg.mix.click = -0.1;
    assert_eq!(key_of(&cfg), "mix.click");
    let mut cfg = d();
    cfg.mix = streamlab_workloads::KindMix {
        view: 0.0,
        click: 0.0,
        add_to_cart: 0.0,
        purchase: 0.0,
    };
    assert_eq!(key_of(&cfg), "mix.view");

    let rate = |rate| ClickstreamConfig { rate, ..d() };
    assert_eq!(
        key_of(&rate(RateProfile::Constant { events_per_second: 0.0 })),
        "rate.events_per_second"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Constant {
            events_per_second: -5.0
        })),
        "rate.events_per_second"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Constant {
            events_per_second: f64::INFINITY
        })),
        "rate.events_per_second"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Step {
            before: 1.0,
            after: -1.0,
            at: Span(0)
        })),
        "rate.after"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Spike {
            base: 1.0,
            peak: 2.0,
            at: Span(0),
            duration: Span(0)
        })),
        "rate.duration"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Sine {
            mean: 1.0,
            amplitude: 2.0,
            period: Span(1)
        })),
        "rate.amplitude"
    );
    assert_eq!(
        key_of(&rate(RateProfile::Sine {
            mean: 1.0,
            amplitude: 0.5,
            period: Span(0)
        })),
        "rate.period"
    );

    let mut cfg = d();
    cfg.disorder.late_fraction = 1.5;
    let err: ConfigError = cfg.validate().unwrap_err();
    assert_eq!(err.key, "disorder.late_fraction");
    assert!(err.to_string().contains("between 0 and 1"), "{err}");
}
