//! Reading scenario files: a valid file gives the right values, and every kind of mistake
//! gives an error that names the file, the line and the key.

use std::path::{Path, PathBuf};

use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::microbatch::{MicroBatchConfig, OutputMode, Trigger};
use streamlab_engines::pipeline::{AggFunc, Field, WindowSpec};
use streamlab_engines::time::Span;
use streamlab_scenarios::clock::clock_setup;
use streamlab_scenarios::spec::{ClockKind, EngineKind, Scenario, SinkKind, WorkloadSpec};
use streamlab_scenarios::ScenarioError;
use streamlab_workloads::RateProfile;

const FILE: &str = "scenarios/x.toml";

/// A minimal valid scenario; tests append to it or replace parts of it.
const BASE: &str = r#"name = "t"
duration = "5s"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 1000 }

[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }
"#;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Parses `text` expecting an error; returns the error and its message.
fn error_of(text: &str) -> (ScenarioError, String) {
    let err = Scenario::parse(Path::new(FILE), text).expect_err("the scenario should be refused");
    let message = err.to_string();
    (err, message)
}

/// Asserts an `Invalid` error points at `line` and `key`, and its message contains `words`.
fn assert_invalid(text: &str, line: usize, key: &str, words: &[&str]) -> String {
    let (err, message) = error_of(text);
    assert!(matches!(err, ScenarioError::Invalid { .. }), "{message}");
    assert_eq!(err.line(), Some(line), "{message}");
    assert_eq!(err.key(), Some(key), "{message}");
    assert!(
        message.starts_with(&format!("{FILE}:{line}: key `{key}`: ")),
        "{message}"
    );
    for w in words {
        assert!(message.contains(w), "`{w}` missing from: {message}");
    }
    message
}

#[test]
fn full_scenario_loads_with_its_values() {
    let path = fixture("full.toml");
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s.path, path);
    assert_eq!(s.name, "quickstart");
    assert_eq!(
        s.description.as_deref(),
        Some("micro-batch vs per-record on a windowed count")
    );
    assert_eq!(s.seed, 42);
    assert_eq!(s.duration, Span::from_ms(10_000));
    assert_eq!(s.drain, Span::from_ms(3_000));
    assert_eq!(s.clock, ClockKind::Simulated);
    assert!(s.source_text.contains("name = \"quickstart\""));

    let WorkloadSpec::Clickstream(w) = &s.workload else {
        panic!("expected the generator, got {:?}", s.workload)
    };
    assert_eq!(w.partitions, 8);
    assert_eq!(w.users, 5000);
    assert_eq!(
        w.rate,
        RateProfile::Constant {
            events_per_second: 20_000.0
        }
    );

    let agg = s.pipeline.aggregate.expect("stateful pipeline");
    assert!(s.pipeline.lookup_join);
    assert_eq!(agg.key_by, Field::Campaign);
    assert_eq!(
        agg.window,
        WindowSpec::Tumbling {
            size: Span::from_ms(10_000)
        }
    );
    assert_eq!(agg.function, AggFunc::Count);

    assert_eq!(s.engines.len(), 2);
    assert_eq!(s.engines[0].name, "micro-batch 1s");
    assert_eq!(s.engines[0].model(), "micro-batch");
    assert_eq!(
        s.engines[0].kind,
        EngineKind::MicroBatch(MicroBatchConfig {
            trigger: Trigger::ProcessingTime {
                interval: Span::from_ms(1_000)
            },
            output_mode: OutputMode::Update,
            workers: 4,
            ..MicroBatchConfig::default()
        })
    );
    assert_eq!(s.engines[1].name, "per-record");
    assert_eq!(s.engines[1].model(), "per-record");
    assert_eq!(
        s.engines[1].kind,
        EngineKind::PerRecord(DataflowConfig {
            parallelism: 4,
            buffer_timeout: Span::from_ms(5),
            out_of_orderness: Span::from_ms(500),
            ..DataflowConfig::default()
        })
    );
}

#[test]
fn defaults_apply_when_keys_are_omitted() {
    let text = "name = \"t\"\nduration = \"1s\"\n[[engine]]\nname = \"a\"\nmodel = \"per-record\"\n";
    let s = Scenario::parse(Path::new(FILE), text).unwrap();
    assert_eq!(s.seed, 1);
    assert_eq!(s.drain, Span::from_ms(2_000));
    assert_eq!(s.clock, ClockKind::Live);
    assert_eq!(s.description, None);
    assert!(matches!(s.workload, WorkloadSpec::Clickstream(_)));
    assert!(!s.pipeline.is_stateful());
    assert_eq!(s.engines[0].kind, EngineKind::PerRecord(DataflowConfig::default()));
}

#[test]
fn trace_workload_resolves_against_the_scenario_directory() {
    let text = BASE.replace(
        "partitions = 2\nrate = { profile = \"constant\", events_per_second = 1000 }",
        "trace = \"traces/day1.csv\"",
    );
    let s = Scenario::parse(Path::new("scenarios/x.toml"), &text).unwrap();
    assert_eq!(
        s.workload,
        WorkloadSpec::Trace {
            path: PathBuf::from("scenarios/traces/day1.csv")
        }
    );
}

#[test]
fn syntax_error_names_line_and_column() {
    let (err, message) = error_of("name = \"t\"\nduration = \"5s\nseed = 1\n");
    let ScenarioError::Syntax { line, column, .. } = err else {
        panic!("{message}")
    };
    assert_eq!((line, column), (2, 15), "{message}");
    assert!(
        message.starts_with(&format!("{FILE}:2:15: TOML syntax error")),
        "{message}"
    );
}

#[test]
fn unknown_top_level_key_is_refused_with_the_allowed_keys() {
    let text = BASE.replace("duration", "sede = 3\nduration");
    assert_invalid(&text, 2, "sede", &["unknown key", "`seed`", "`engine`"]);
}

#[test]
fn unknown_key_in_an_engine_table_is_refused() {
    let text = BASE.replace("trigger = {", "triger = {");
    assert_invalid(
        &text,
        11,
        "engine[0].triger",
        &["unknown field `triger`", "`trigger`", "`name`, `model` and `profile`"],
    );
}

#[test]
fn unknown_key_in_a_nested_inline_table_is_refused() {
    let text = BASE.replace("interval = \"1s\"", "intervall = \"1s\"");
    assert_invalid(
        &text,
        11,
        "engine[0].trigger.intervall",
        &["unknown field `intervall`", "`interval`"],
    );
}

#[test]
fn unknown_key_in_the_workload_is_refused() {
    let text = BASE.replace("partitions = 2", "partitons = 2");
    assert_invalid(
        &text,
        5,
        "workload.partitons",
        &["unknown field `partitons`", "`partitions`", "`trace`"],
    );
}

#[test]
fn unknown_key_in_a_pipeline_subtable_is_refused() {
    let text = format!(
        "{BASE}\n[pipeline.aggregate]\nkey_by = \"user\"\nwindow = {{ kind = \"tumbling\", size = \"1s\" }}\nfunction = \"count\"\nfeild = \"user\"\n"
    );
    assert_invalid(
        &text,
        17,
        "pipeline.aggregate.feild",
        &["unknown field `feild`", "`field`"],
    );
}

#[test]
fn wrong_type_names_the_key_and_the_expected_type() {
    let text = BASE.replace("duration", "seed = \"x\"\nduration");
    assert_invalid(
        &text,
        2,
        "seed",
        &["invalid type: string \"x\"", "expected a non-negative integer"],
    );
}

#[test]
fn wrong_type_in_an_engine_table_names_the_full_key() {
    let text = format!("{BASE}workers = \"four\"\n");
    assert_invalid(
        &text,
        12,
        "engine[0].workers",
        &["invalid type: string \"four\"", "expected a non-negative integer"],
    );
}

#[test]
fn bad_duration_text_says_what_is_allowed() {
    let text = BASE.replace("duration = \"5s\"", "duration = \"five\"");
    assert_invalid(&text, 2, "duration", &["\"250ms\"", "\"1s\""]);
}

#[test]
fn zero_duration_is_refused() {
    let text = BASE.replace("duration = \"5s\"", "duration = \"0s\"");
    assert_invalid(&text, 2, "duration", &["greater than 0"]);
}

fn trigger_of(s: &Scenario) -> Trigger {
    match &s.engines[0].kind {
        EngineKind::MicroBatch(c) => c.trigger,
        _ => panic!("expected a micro-batch engine"),
    }
}

#[test]
fn zero_trigger_interval_and_kind_default_are_sparks_default_trigger() {
    for trigger in [
        "{ kind = \"processing_time\", interval = \"0s\" }",
        "{ kind = \"processing_time\", interval = \"0\" }",
        "{ kind = \"default\" }",
    ] {
        let text = BASE.replace("{ kind = \"processing_time\", interval = \"1s\" }", trigger);
        let s = Scenario::parse(Path::new(FILE), &text).unwrap_or_else(|e| panic!("{trigger}: {e}"));
        assert_eq!(trigger_of(&s), Trigger::SPARK_DEFAULT, "{trigger}");
    }
}

#[test]
fn negative_trigger_interval_is_refused() {
    let text = BASE.replace("interval = \"1s\"", "interval = \"-1s\"");
    // A trigger is read as a whole (its `kind` first), so a value inside it is refused at the
    // trigger's key, naming the value.
    assert_invalid(&text, 11, "engine[0].trigger", &["`-1s`", "\"250ms\""]);
    let text = BASE.replace("interval = \"1s\"", "interval = -100");
    assert_invalid(&text, 11, "engine[0].trigger", &["-100 is negative"]);
}

#[test]
fn unknown_trigger_kind_lists_every_allowed_kind() {
    let text = BASE.replace(
        "{ kind = \"processing_time\", interval = \"1s\" }",
        "{ kind = \"asap\" }",
    );
    let (_, message) = error_of(&text);
    for kind in ["processing_time", "default", "once", "available_now", "continuous"] {
        assert!(
            message.contains(&format!("`{kind}`")),
            "`{kind}` missing from: {message}"
        );
    }
}

#[test]
fn default_trigger_with_a_zero_polling_delay_is_refused() {
    let text = BASE.replace("interval = \"1s\" }", "interval = \"0s\" }\npolling_delay = \"0\"");
    assert_invalid(
        &text,
        12,
        "engine[0].polling_delay",
        &["greater than 0", "default trigger"],
    );
}

#[test]
fn refused_trigger_in_the_second_engine_points_at_it() {
    let text = format!(
        "{BASE}\n[[engine]]\nname = \"mb2\"\nmodel = \"micro-batch\"\ntrigger = {{ kind = \"continuous\", checkpoint_interval = \"0\" }}\n"
    );
    assert_invalid(&text, 16, "engine[1].trigger.checkpoint_interval", &["greater than 0"]);
}

#[test]
fn negative_rate_is_refused() {
    let text = BASE.replace("events_per_second = 1000", "events_per_second = -5");
    assert_invalid(&text, 6, "workload.rate.events_per_second", &["-5", "out of range"]);
}

#[test]
fn negative_count_where_unsigned_expected_is_refused() {
    let text = BASE.replace("partitions = 2", "partitions = -2");
    assert_invalid(
        &text,
        5,
        "workload.partitions",
        &["-2", "expected a non-negative integer"],
    );
}

#[test]
fn zero_partitions_is_refused() {
    let text = BASE.replace("partitions = 2", "partitions = 0");
    assert_invalid(&text, 5, "workload.partitions", &[">= 1"]);
}

#[test]
fn continuous_trigger_with_an_aggregation_is_refused() {
    let text = format!(
        "{}\n[pipeline.aggregate]\nkey_by = \"user\"\nwindow = {{ kind = \"tumbling\", size = \"1s\" }}\nfunction = \"count\"\n",
        BASE.replace(
            "{ kind = \"processing_time\", interval = \"1s\" }",
            "{ kind = \"continuous\", checkpoint_interval = \"1s\" }"
        )
    );
    let message = assert_invalid(&text, 11, "engine[0].trigger", &["Continuous", "aggregates"]);
    assert!(message.contains("map-like"), "{message}");
}

#[test]
fn invalid_pipeline_names_the_pipeline_key() {
    let text = format!(
        "{BASE}\n[pipeline.aggregate]\nkey_by = \"user\"\nwindow = {{ kind = \"tumbling\", size = \"1s\" }}\nfunction = \"sum\"\n"
    );
    assert_invalid(&text, 13, "pipeline.aggregate.field", &["need a field"]);
}

#[test]
fn unknown_model_lists_the_allowed_models() {
    let text = BASE.replace("model = \"micro-batch\"", "model = \"storm\"");
    assert_invalid(
        &text,
        10,
        "engine[0].model",
        &[
            "unknown model \"storm\"",
            "\"micro-batch\", \"per-record\", \"spark\", \"flink\"",
        ],
    );
}

#[test]
fn missing_model_is_refused() {
    let text = BASE.replace("model = \"micro-batch\"\n", "");
    assert_invalid(&text, 8, "engine[0]", &["missing `model`", "\"per-record\""]);
}

#[test]
fn missing_name_is_refused() {
    // A missing key points at the end of the file, where it would go (a truncated file ends there).
    let text = BASE.replace("name = \"t\"\n", "");
    assert_invalid(
        &text,
        text.trim_end().lines().count(),
        "name",
        &["missing", "name = \"quickstart\""],
    );
}

#[test]
fn an_unknown_profile_names_the_file_line_and_key() {
    let text = BASE.replace("duration", "profile = \"lcoal\"\nduration");
    assert_invalid(&text, 2, "profile", &["`lcoal` is not a built-in profile", "local"]);
    let text = format!("{BASE}profile = \"nowhere.toml\"\n");
    assert_invalid(&text, 12, "engine[0].profile", &["nowhere.toml"]);
}

#[test]
fn a_sweep_table_is_read_in_file_order() {
    let text = BASE.replace(
        "[[engine]]",
        "[sweep]\n\"engine[0].trigger.interval\" = [\"100ms\", \"1s\"]\n\"workload.partitions\" = [1, 2]\n\n[[engine]]",
    );
    let s = Scenario::parse(Path::new(FILE), &text).unwrap();
    let swept: Vec<(&str, Vec<&str>)> = s
        .sweep
        .iter()
        .map(|p| (p.key.as_str(), p.values.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        swept,
        [
            ("engine[0].trigger.interval", vec!["100ms", "1s"]),
            ("workload.partitions", vec!["1", "2"])
        ]
    );
}

#[test]
fn a_sweep_table_names_its_bad_key_and_line() {
    let with = |row: &str| BASE.replace("[[engine]]", &format!("[sweep]\n{row}\n\n[[engine]]"));
    assert_invalid(
        &with("\"engine[0].trigger.interval\" = []"),
        9,
        "sweep.\"engine[0].trigger.interval\"",
        &["non-empty array"],
    );
    assert_invalid(
        &with("\"engine[0].trigger.interval\" = \"1s\""),
        9,
        "sweep.\"engine[0].trigger.interval\"",
        &["array"],
    );
    assert_invalid(
        &with("\"engine[0].trigger.intervl\" = [\"1s\"]"),
        9,
        "sweep.\"engine[0].trigger.intervl\"",
        &["intervl"],
    );
    assert_invalid(
        &with("\"engine[x]\" = [\"1s\"]"),
        9,
        "sweep.\"engine[x]\"",
        &["engine[x]"],
    );
    assert_invalid(
        &BASE.replace("duration", "sweep = 3\nduration"),
        2,
        "sweep",
        &["[sweep]"],
    );
}

#[test]
fn duplicate_engine_names_are_refused() {
    let text = format!("{BASE}\n[[engine]]\nname = \"mb\"\nmodel = \"per-record\"\n");
    assert_invalid(
        &text,
        14,
        "engine[1].name",
        &["duplicate engine name \"mb\"", "engine[0]", "unique"],
    );
}

#[test]
fn a_scenario_without_engines_is_refused() {
    let text = "name = \"t\"\nduration = \"5s\"\n";
    let (err, message) = error_of(text);
    assert_eq!(err.key(), Some("engine"), "{message}");
    assert!(message.contains("[[engine]]"), "{message}");
    assert!(message.starts_with(FILE), "{message}");
}

#[test]
fn trace_combined_with_generator_keys_is_refused() {
    let text = BASE.replace("partitions = 2", "trace = \"day1.csv\"\npartitions = 2");
    assert_invalid(&text, 6, "workload.partitions", &["`trace`", "only key"]);
}

#[test]
fn simulated_clock_is_accepted_by_the_parser() {
    let text = BASE.replace("duration", "clock = \"simulated\"\nduration");
    assert_eq!(
        Scenario::parse(Path::new(FILE), &text).unwrap().clock,
        ClockKind::Simulated
    );
    let bad = BASE.replace("duration", "clock = \"wall\"\nduration");
    assert_invalid(&bad, 2, "clock", &["`live`", "`simulated`"]);
}

#[test]
fn pinning_threads_is_read_and_refused_on_the_simulated_clock_by_key() {
    let pinned_mb = BASE.replace("trigger = {", "workers = 2\npin_workers = true\ntrigger = {");
    let s = Scenario::parse(Path::new(FILE), &pinned_mb).unwrap();
    let EngineKind::MicroBatch(cfg) = &s.engines[0].kind else {
        panic!("a micro-batch engine")
    };
    assert!(cfg.pin_workers);
    assert!(clock_setup(&s, ClockKind::Live).is_ok());
    let err = clock_setup(&s, ClockKind::Simulated).expect_err("refused").to_string();
    assert!(err.contains("key `engine[0].pin_workers` (engine `mb`)"), "{err}");
    assert!(err.contains("use `clock = \"live\"`"), "{err}");

    let pinned_pr = format!("{BASE}\n[[engine]]\nname = \"pr\"\nmodel = \"per-record\"\npin_slots = true\n");
    let s = Scenario::parse(Path::new(FILE), &pinned_pr).unwrap();
    let err = clock_setup(&s, ClockKind::Simulated).expect_err("refused").to_string();
    assert!(err.contains("key `engine[1].pin_slots` (engine `pr`)"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Scenario::load(&path).unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

/// A Nexmark workload: `generator = "nexmark"`, the source keys, then `[workload.nexmark]`.
const NEXMARK: &str = r#"name = "q0"
duration = "5s"

[workload]
generator = "nexmark"
partitions = 3
rate = { profile = "constant", events_per_second = 1000 }

[workload.nexmark]
hot_auction_ratio = 3
out_of_order_group_size = 10

[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }
"#;

#[test]
fn nexmark_workload_reads_its_keys_with_nexmark_defaults() {
    let s = Scenario::parse(Path::new(FILE), NEXMARK).unwrap();
    let WorkloadSpec::Nexmark(w) = &s.workload else {
        panic!("expected the Nexmark generator, got {:?}", s.workload)
    };
    assert_eq!(w.partitions, 3);
    assert_eq!(w.nexmark.hot_auction_ratio, 3);
    assert_eq!(w.nexmark.out_of_order_group_size, 10);
    assert_eq!(w.nexmark.bid_proportion, 46, "a default");
    assert_eq!(w.nexmark.num_active_people, 1000, "a default");
    // An explicit clickstream is the default generator.
    let explicit = BASE.replace("[workload]\n", "[workload]\ngenerator = \"clickstream\"\n");
    assert!(matches!(
        Scenario::parse(Path::new(FILE), &explicit).unwrap().workload,
        WorkloadSpec::Clickstream(_)
    ));
}

#[test]
fn nexmark_bad_values_and_keys_name_their_key_path() {
    let zero = NEXMARK.replace("hot_auction_ratio = 3", "bid_proportion = 0");
    assert_invalid(
        &zero,
        10,
        "workload.nexmark.bid_proportion",
        &["must be an integer >= 1"],
    );
    let unknown = NEXMARK.replace("hot_auction_ratio = 3", "hot_auctions = 3");
    assert_invalid(
        &unknown,
        10,
        "workload.nexmark.hot_auctions",
        &["unknown field", "hot_auction_ratio"],
    );
    let delay = NEXMARK.replace("hot_auction_ratio = 3", "occasional_delay = \"soon\"");
    assert_invalid(&delay, 10, "workload.nexmark.occasional_delay", &[]);
    let clickstream_key = NEXMARK.replace("partitions = 3", "users = 3");
    assert_invalid(
        &clickstream_key,
        6,
        "workload.users",
        &["unknown field", "[workload.nexmark]", "bid_proportion"],
    );
    let generator = NEXMARK.replace("\"nexmark\"", "\"auctions\"");
    assert_invalid(&generator, 5, "workload.generator", &["\"clickstream\", \"nexmark\""]);
    let stray_table = NEXMARK.replace("generator = \"nexmark\"\n", "");
    assert_invalid(&stray_table, 8, "workload.nexmark", &["generator = \"nexmark\""]);
    let rate = NEXMARK.replace("events_per_second = 1000", "events_per_second = -1");
    assert_invalid(&rate, 7, "workload.rate.events_per_second", &[]);
}

#[test]
fn a_discarding_sink_is_read_and_refused_beside_injected_failures() {
    let s = Scenario::parse(Path::new(FILE), &format!("sink = \"discard\"\n{BASE}")).unwrap();
    assert_eq!(s.sink, SinkKind::Discard);
    assert_eq!(Scenario::parse(Path::new(FILE), BASE).unwrap().sink, SinkKind::File);
    let text = format!("sink = \"discard\"\n{BASE}\n[[failure]]\nkind = \"crash\"\nat = \"2s\"\n");
    assert_invalid(&text, 1, "sink", &["\"discard\" keeps no output", "[[failure]]"]);
    let (_, message) = error_of(&format!("sink = \"nowhere\"\n{BASE}"));
    assert!(message.contains("`sink`") && message.contains("discard"), "{message}");
}

#[test]
fn repeat_is_read_and_refused_out_of_range_with_failures_or_on_kafka() {
    let s = Scenario::parse(Path::new(FILE), &format!("repeat = 5\n{BASE}")).unwrap();
    assert_eq!(s.repeat, 5);
    assert_eq!(s.engine_runs(true), 5);
    assert_eq!(s.engine_runs(false), 1);
    assert_eq!(Scenario::parse(Path::new(FILE), BASE).unwrap().repeat, 1);
    assert_invalid(
        &format!("repeat = 0\n{BASE}"),
        1,
        "repeat",
        &["0 is out of range", "1 to 100"],
    );
    assert_invalid(&format!("repeat = 101\n{BASE}"), 1, "repeat", &["out of range"]);
    assert_invalid(
        &format!("repeat = -1\n{BASE}"),
        1,
        "repeat",
        &["-1 is out of range", "1 to 100"],
    );
    let (err, message) = error_of(&format!("repeat = 2.5\n{BASE}"));
    assert_eq!(err.key(), Some("repeat"), "{message}");
    assert_invalid(
        &format!("repeat = 3\n{BASE}\n[[failure]]\nkind = \"crash\"\nat = \"2s\"\n"),
        1,
        "repeat",
        &["[[failure]]", "failure-free"],
    );
    let kafka = BASE.replace("partitions = 2\n", "partitions = 2\ntransport = \"kafka\"\n");
    assert_invalid(
        &format!("repeat = 2\n{kafka}"),
        1,
        "repeat",
        &["transport = \"kafka\"", "repeat = 1"],
    );
}
