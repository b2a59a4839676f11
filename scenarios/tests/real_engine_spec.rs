//! `model = "spark"` and `model = "flink"` in scenario files, without a JVM: the native keys and
//! the real engines' own (`master`, `conf`, `warmup`, `bind`) are read; what a real engine
//! cannot run as described is refused before anything starts, naming the file, line and key;
//! and a real engine is refused where it cannot run (the simulated clock, injected failures).
//! An engine's own `profile` is read and checked the same way.

use std::path::Path;

use streamlab_engines::time::Span;
use streamlab_scenarios::clock::clock_setup;
use streamlab_scenarios::drive::run_engine;
use streamlab_scenarios::spec::{ClockKind, EngineKind, Scenario};
use streamlab_scenarios::workload::Workload;
use streamlab_scenarios::ScenarioError;

const FILE: &str = "scenarios/x.toml";

const BASE: &str = r#"name = "t"
duration = "2s"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 100 }

[pipeline]
filter_kinds = ["click"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = { kind = "tumbling", size = "1s" }
function = "count"
"#;

fn parse(engines: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new(FILE), &format!("{BASE}{engines}"))
}

/// The 1-based line of the scenario (BASE + `engines`) that starts with `prefix`.
fn line_of(engines: &str, prefix: &str) -> usize {
    format!("{BASE}{engines}")
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix}"))
        + 1
}

/// Asserts `engines` is refused at the line starting with `line_prefix`, on `key`, with `words`.
fn assert_refused(engines: &str, line_prefix: &str, key: &str, words: &[&str]) {
    let err = parse(engines).expect_err("refused");
    let message = err.to_string();
    assert_eq!(err.key(), Some(key), "{message}");
    assert_eq!(err.line(), Some(line_of(engines, line_prefix)), "{message}");
    assert!(message.starts_with(FILE), "{message}");
    for w in words {
        assert!(message.contains(w), "`{w}` missing from: {message}");
    }
}

#[test]
fn a_spark_engine_takes_the_micro_batch_keys_and_its_own() {
    let s = parse(
        r#"
[[engine]]
name = "spark"
model = "spark"
trigger = { kind = "processing_time", interval = "500ms" }
shuffle_partitions = 4
workers = 2
master = "spark://10.0.0.1:7077"
conf = { "spark.sql.adaptive.enabled" = "false" }
warmup = "5s"
bind = "0.0.0.0"
"#,
    )
    .unwrap();
    let EngineKind::Spark(real) = &s.engines[0].kind else {
        panic!("a spark engine: {:?}", s.engines[0].kind)
    };
    assert_eq!(s.engines[0].model(), "spark");
    assert!(s.engines[0].kind.is_real());
    assert_eq!(real.config.shuffle_partitions, 4);
    assert_eq!(real.settings.master.as_deref(), Some("spark://10.0.0.1:7077"));
    assert_eq!(real.settings.conf["spark.sql.adaptive.enabled"], "false");
    assert_eq!(real.settings.warmup, Span::from_ms(5000));
    assert_eq!(real.settings.bind.map(|a| a.to_string()).as_deref(), Some("0.0.0.0"));
}

#[test]
fn a_flink_engine_takes_the_per_record_keys_and_its_own() {
    let s = parse(
        r#"
[[engine]]
name = "flink"
model = "flink"
parallelism = 2
buffer_timeout = "0ms"
checkpoint_interval = "1s"
master = "127.0.0.1:8081"
"#,
    )
    .unwrap();
    let EngineKind::Flink(real) = &s.engines[0].kind else {
        panic!("a flink engine")
    };
    assert_eq!(real.config.parallelism, 2);
    assert_eq!(real.settings.master.as_deref(), Some("127.0.0.1:8081"));
}

#[test]
fn a_key_spark_cannot_express_is_refused_naming_it() {
    let engines = r#"
[[engine]]
name = "spark"
model = "spark"
group_size = 2
"#;
    assert_refused(
        engines,
        "group_size",
        "engine[0].group_size",
        &["Spark cannot run this", "Drizzle"],
    );
}

#[test]
fn a_conf_entry_the_translation_sets_is_refused() {
    let engines = r#"
[[engine]]
name = "spark"
model = "spark"
conf = { "spark.sql.shuffle.partitions" = "8" }
"#;
    let err = parse(engines).expect_err("refused").to_string();
    assert!(err.contains("conf.spark.sql.shuffle.partitions"), "{err}");
    assert!(err.contains("`shuffle_partitions`"), "{err}");
}

#[test]
fn a_key_flink_cannot_express_is_refused_naming_it() {
    let engines = r#"
[[engine]]
name = "flink"
model = "flink"
allowed_lateness = "1s"
"#;
    assert_refused(
        engines,
        "allowed_lateness",
        "engine[0].allowed_lateness",
        &["Flink cannot run this"],
    );
}

#[test]
fn an_unknown_key_of_a_real_engine_names_the_allowed_ones() {
    let engines = r#"
[[engine]]
name = "flink"
model = "flink"
warmpu = "5s"
"#;
    let err = parse(engines).expect_err("refused").to_string();
    assert!(err.contains("warmpu"), "{err}");
    assert!(err.contains("`warmup`"), "{err}");
}

#[test]
fn an_engine_profile_is_checked_when_the_scenario_is_read() {
    let engines = r#"
[[engine]]
name = "mb"
model = "micro-batch"
profile = "spark-locl"
"#;
    assert_refused(engines, "profile", "engine[0].profile", &["spark-locl", "spark-local"]);
    let s = parse(&engines.replace("spark-locl", "spark-local")).unwrap();
    assert_eq!(s.engines[0].profile.as_deref(), Some("spark-local"));
}

#[test]
fn a_real_engine_runs_on_the_live_clock_only_and_without_injected_failures() {
    let s = parse(
        r#"
[[engine]]
name = "spark"
model = "spark"
"#,
    )
    .unwrap();
    let workload = Workload::build(&s, 1, s.duration).unwrap();
    let simulated = clock_setup(&s, ClockKind::Simulated).unwrap();
    let err = run_engine(
        &s,
        &s.engines[0],
        &workload,
        s.duration.nanos(),
        &simulated,
        &mut |_| Ok(()),
    )
    .expect_err("refused")
    .to_string();
    assert!(err.contains("live clock only"), "{err}");
    assert!(err.contains("spark-local"), "{err}");

    let failing = Scenario::parse(
        Path::new(FILE),
        &format!(
            "{BASE}\n[[engine]]\nname = \"spark\"\nmodel = \"spark\"\n\n[[failure]]\nkind = \"crash\"\nat = \"1s\"\n"
        ),
    )
    .unwrap();
    let live = clock_setup(&failing, ClockKind::Live).unwrap();
    let err = run_engine(
        &failing,
        &failing.engines[0],
        &workload,
        s.duration.nanos(),
        &live,
        &mut |_| Ok(()),
    )
    .expect_err("refused")
    .to_string();
    assert!(err.contains("strikes the native engines"), "{err}");
    assert!(err.contains("transport = \"kafka\""), "{err}");
}

#[test]
fn spark_on_kafka_takes_a_job_crash_placed_with_at_only_refused_before_anything_starts() {
    let text = format!(
        "{}\n[[engine]]\nname = \"spark\"\nmodel = \"spark\"\n\n[[failure]]\nkind = \"crash\"\nat = \"1s\"\nscope = \"driver\"\n",
        BASE.replace("[workload]\n", "[workload]\ntransport = \"kafka\"\n")
    );
    let s = Scenario::parse(Path::new(FILE), &text).unwrap();
    let workload = Workload::build(&s, 1, s.duration).unwrap();
    let live = clock_setup(&s, ClockKind::Live).unwrap();
    let err = run_engine(&s, &s.engines[0], &workload, s.duration.nanos(), &live, &mut |_| Ok(()))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("engine `spark` (Spark on Kafka)"), "{err}");
    assert!(err.contains("placed with `at` only"), "{err}");
}
