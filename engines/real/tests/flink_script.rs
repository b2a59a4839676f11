//! The generated PyFlink scripts and the Java helper classes, without running a job.
//!
//! * The scripts of the quickstart and stateless scenarios (their pipeline and their per-record
//!   engine) must equal `tests/golden/flink/*.py`. After an intended change, rewrite them with
//!   `STREAMLAB_BLESS=1 cargo test -p streamlab-real-engines --test flink_script` and review the
//!   diff.
//! * Each generated script must compile with `python3 -m py_compile` (skipped, with a message,
//!   where there is no python3; failed under CI).
//! * The embedded Java helper classes must compile with `javac` against the installed Flink
//!   venv's jars (skipped, with a message, without a JDK or without the venv).
//! * What Flink cannot run is refused, naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use streamlab_engines::dataflow::config::DataflowConfig;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_real_engines::flink::{FlinkJob, FlinkRefusal, PyFlinkScript, RefusedTable};
use streamlab_real_engines::helper_jar::{flink_lib, HelperJar, JarOutcome, JavaTools};
use streamlab_real_engines::process::StepLog;
use streamlab_real_engines::venv::PythonEngine;
use streamlab_real_engines::{CacheDir, JavaInstall};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scenario's pipeline and its first per-record engine, read with the engines' own serde
/// types (the engine table's `name` and `model` are the scenario's, not the engine's).
fn scenario(name: &str) -> (PipelineSpec, DataflowConfig) {
    let path = repo().join("scenarios").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table = text.parse().unwrap();
    let pipeline: PipelineSpec = doc["pipeline"].clone().try_into().unwrap();
    let mut engine = doc["engine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_table().unwrap().clone())
        .find(|e| e["model"].as_str() == Some("per-record"))
        .expect("a per-record engine");
    engine.remove("name");
    engine.remove("model");
    // The Nexmark scenarios pin the native engine's slot to a core, which a local Flink cannot
    // (refused, see `pinned_slots_are_refused`): the job is translated without it.
    engine.remove("pin_slots");
    (pipeline, toml::Value::Table(engine).try_into().unwrap())
}

fn translate(pipeline: &PipelineSpec, engine: &DataflowConfig) -> Result<PyFlinkScript, FlinkRefusal> {
    PyFlinkScript::translate(FlinkJob {
        pipeline,
        engine,
        conf: &Default::default(),
    })
}

fn assert_golden(name: &str, script: &PyFlinkScript) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/flink/{name}.py"));
    if std::env::var_os("STREAMLAB_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, script.text()).unwrap();
        eprintln!("blessed {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with STREAMLAB_BLESS=1", golden.display()));
    let actual = script.text();
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "the generated script drifted from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n\
             If the change is intended, rerun with STREAMLAB_BLESS=1 and review the diff.",
            golden.display(),
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}

/// Compiles the script with `python3 -m py_compile`; false (with a message) without python3.
fn py_compile(name: &str, script: &PyFlinkScript) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.py"));
    std::fs::write(&file, script.text()).unwrap();
    match Command::new("python3").arg("-m").arg("py_compile").arg(&file).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python3 -m py_compile {name}.py failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: python3 -m py_compile of the generated script (python3 not runnable: {e})");
            false
        }
        Err(e) => panic!("python3 not runnable under CI: {e}"),
    }
}

#[test]
fn quickstart_script_matches_the_golden_file() {
    let (pipeline, engine) = scenario("quickstart");
    assert_golden("quickstart", &translate(&pipeline, &engine).unwrap());
}

#[test]
fn stateless_script_matches_the_golden_file() {
    let (pipeline, engine) = scenario("stateless");
    assert_golden("stateless", &translate(&pipeline, &engine).unwrap());
}

/// Pipelines with every window kind and aggregate, and engines with every state backend.
fn variants() -> Vec<(&'static str, PipelineSpec, DataflowConfig)> {
    let cases = [
        (
            "sliding_avg",
            r#"key_by = "user"
window = { kind = "sliding", size = "10s", slide = "2s" }
function = "avg"
field = "dwell_ms""#,
            r#"state_backend = "lsm"
checkpoint_interval = "1s""#,
        ),
        (
            "session_distinct_kind",
            r#"key_by = "user"
window = { kind = "session", gap = "500ms" }
function = "distinct_count"
field = "kind""#,
            r#"state_backend = "lsm_changelog"
checkpoint_interval = "2s"
idle_timeout = "1s""#,
        ),
        (
            "tumbling_max_by_kind",
            r#"key_by = "kind"
window = { kind = "tumbling", size = "1s" }
function = "max"
field = "price_cents""#,
            r#"buffer_timeout = "0ms"
parallelism = 1"#,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, aggregate, engine)| {
            let pipeline: PipelineSpec = toml::from_str(&format!("[aggregate]\n{aggregate}")).unwrap();
            (name, pipeline, toml::from_str(engine).unwrap())
        })
        .collect()
}

const INTERVAL_LEFT_OUTER: &str = r#"[join]
kind = "interval"
type = "left_outer"
lower = "-500ms"
upper = "1s"
left = { kinds = ["auction"], key = "id" }
right = { kinds = ["bid"], key = "auction", where = [{ field = "price", at_least = 100 }] }"#;

#[test]
fn an_interval_join_is_flinks_time_interval_join_on_both_rowtimes() {
    let pipeline: PipelineSpec = toml::from_str(INTERVAL_LEFT_OUTER).unwrap();
    let (_, engine) = scenario("quickstart");
    let text = translate(&pipeline, &engine).unwrap().text().to_owned();
    for line in [
        "SELECT seq, `session` AS k, arrival_ns, event_ts\nFROM events\nWHERE kind IN ('bid') AND price_cents >= 100",
        "LEFT JOIN right_input AS r\nON l.k = r.k AND r.event_ts BETWEEN l.event_ts - INTERVAL '0.5' SECOND AND l.event_ts + INTERVAL '1' SECOND",
        "CASE WHEN r.seq IS NULL THEN 'left_only' ELSE 'pair' END, l.seq, COALESCE(r.seq, -1)",
        "window_start_ms BIGINT",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn nexmark_q7_is_flinks_window_top_n_with_ties_broken_by_seq() {
    let (q7, engine) = scenario("nexmark/q7");
    let text = translate(&q7, &engine).unwrap().text().to_owned();
    for line in [
        "SELECT seq, price_cents AS v, arrival_ns, event_ts\nFROM events\nWHERE kind IN ('bid')",
        "ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY v DESC, seq ASC) AS rownum",
        "FROM TABLE(TUMBLE(TABLE ranked_input, DESCRIPTOR(event_ts), INTERVAL '10' SECOND))",
        "WHERE rownum <= 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn nexmark_q8_window_join_script_matches_the_golden_file() {
    let (pipeline, engine) = scenario("nexmark/q8");
    assert_golden("nexmark-q8", &translate(&pipeline, &engine).unwrap());
}

#[test]
fn nexmark_q1_script_matches_the_golden_file() {
    let (pipeline, engine) = scenario("nexmark/q1");
    assert_golden("nexmark-q1", &translate(&pipeline, &engine).unwrap());
}

#[test]
fn where_and_convert_read_nexmark_fields_from_the_slot_columns() {
    // q2: `auction` rides in the `session` column, tested before anything is converted.
    let (q2, engine) = scenario("nexmark/q2");
    let text = translate(&q2, &engine).unwrap().text().to_owned();
    assert!(
        text.contains("SELECT seq, `session` AS `auction`, price_cents AS `price`, arrival_ns AS origin_arrival_ns\n"),
        "{text}"
    );
    assert!(
        text.contains("WHERE kind IN ('bid') AND MOD(`session`, 123) = 0\"\"\""),
        "{text}"
    );
    assert!(text.contains("`auction` BIGINT"), "the receiver's column: {text}");
    // q1: the price converted toward zero; a conversion that may leave the 32-bit slot wraps as
    // the slot does; an event-time modulo is Euclidean.
    let (q1, engine) = scenario("nexmark/q1");
    let text = translate(&q1, &engine).unwrap().text().to_owned();
    assert!(
        text.contains("CAST(price_cents * 908 / 1000 AS BIGINT) AS `price`"),
        "{text}"
    );
    let wrapping: PipelineSpec = toml::from_str(
        r#"filter_kinds = ["bid"]
where = [{ field = "event_time", modulo = 2, equals = 0 }]
convert = { field = "price", multiply = -3 }
project = ["seq", "price"]"#,
    )
    .unwrap();
    let text = translate(&wrapping, &engine).unwrap().text().to_owned();
    assert!(
        text.contains("MOD(MOD(CAST(price_cents * -3 / 1 AS BIGINT), 4294967296) + 4294967296, 4294967296) AS `price`"),
        "{text}"
    );
    assert!(text.contains("MOD(MOD(event_time_ms, 2) + 2, 2) = 0"), "{text}");
}

#[test]
fn dedup_is_refused_by_key_until_translated() {
    let (_, engine) = scenario("quickstart");
    let pipeline: PipelineSpec = toml::from_str("[dedup]\nkey = [\"user\"]\nwithin = \"1s\"").unwrap();
    let r = translate(&pipeline, &engine).unwrap_err();
    assert_refused(
        &r,
        RefusedTable::Pipeline,
        "dedup",
        "streamlab's own micro-batch and per-record",
    );
}

#[test]
fn nexmark_q5_cascades_a_window_aggregation_and_joins_back_the_hot_items() {
    let (q5, engine) = scenario("nexmark/q5");
    let text = translate(&q5, &engine).unwrap().text().to_owned();
    for line in [
        "FROM TABLE(HOP(TABLE keyed, DESCRIPTOR(event_ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))\nGROUP BY `key`, window_start, window_end, window_time",
        "FROM TABLE(TUMBLE(TABLE first_stage, DESCRIPTOR(rowtime), INTERVAL '2' SECOND))",
        "ON f.first_start = s.first_start AND f.first_end = s.first_end AND f.val = s.answer",
        "`value` DOUBLE",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn generated_scripts_compile_with_python3() {
    let mut scripts = vec![];
    for name in [
        "quickstart",
        "stateless",
        "nexmark/q1",
        "nexmark/q2",
        "nexmark/q3",
        "nexmark/q5",
        "nexmark/q7",
        "nexmark/q8",
        "nexmark/q11",
    ] {
        let (pipeline, engine) = scenario(name);
        scripts.push((name.replace('/', "-"), translate(&pipeline, &engine).unwrap()));
    }
    for (name, pipeline, engine) in variants() {
        scripts.push((name.to_string(), translate(&pipeline, &engine).unwrap()));
    }
    for (name, script) in &scripts {
        if !py_compile(name, script) {
            return;
        }
    }
}

#[test]
fn a_script_depends_only_on_its_pipeline_and_engine() {
    let (pipeline, engine) = scenario("quickstart");
    assert_eq!(
        translate(&pipeline, &engine).unwrap(),
        translate(&pipeline, &engine).unwrap()
    );
}

#[test]
fn the_script_carries_the_translated_configuration() {
    let (pipeline, engine) = scenario("quickstart");
    let text = translate(&pipeline, &engine).unwrap().text().to_string();
    for expected in [
        "\"parallelism.default\": \"2\",  # parallelism",
        "\"execution.buffer-timeout.interval\": \"100 ms\"",
        "\"pipeline.auto-watermark-interval\": \"200 ms\"",
        "\"state.backend.type\": \"hashmap\"",
        "# checkpoint_interval: none, so no checkpoints",
        "WATERMARK = \"event_ts - INTERVAL '0.201' SECOND\"",
        "FROM events, LATERAL TABLE(campaign_of(ad)) AS c(campaign)\nWHERE kind IN ('click')",
        "FROM TABLE(TUMBLE(TABLE keyed, DESCRIPTOR(event_ts), INTERVAL '2' SECOND))",
        "SELECT `key`, window_start, window_end, COUNT(*), COUNT(*), FALSE, MAX(arrival_ns)",
    ] {
        assert!(text.contains(expected), "missing {expected:?}");
    }
}

#[test]
fn window_kinds_aggregates_and_state_backends_translate_to_flink_sql_and_keys() {
    let scripts: Vec<String> = variants()
        .into_iter()
        .map(|(_, p, e)| translate(&p, &e).unwrap().text().to_string())
        .collect();
    let [sliding, session, tumbling] = &scripts[..] else {
        unreachable!()
    };
    for expected in [
        "HOP(TABLE keyed, DESCRIPTOR(event_ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)",
        "AVG(CAST(v AS DOUBLE))",
        "`value` DOUBLE",
        "\"state.backend.type\": \"rocksdb\"",
        "\"execution.checkpointing.interval\": \"1000 ms\"",
    ] {
        assert!(sliding.contains(expected), "sliding: missing {expected:?}");
    }
    for expected in [
        "SESSION(TABLE keyed PARTITION BY `key`, DESCRIPTOR(event_ts), INTERVAL '0.5' SECOND)",
        "COUNT(DISTINCT v)",
        "WHEN 'click' THEN 1",
        "\"state.changelog.enabled\": \"true\"",
        "\"table.exec.source.idle-timeout\": \"1000 ms\"",
    ] {
        assert!(session.contains(expected), "session: missing {expected:?}");
    }
    for expected in [
        "SELECT CASE kind WHEN 'view' THEN 0",
        "MAX(v)",
        "\"execution.buffer-timeout.interval\": \"0 ms\"",
        "\"parallelism.default\": \"1\"",
    ] {
        assert!(tumbling.contains(expected), "tumbling: missing {expected:?}");
    }
}

/// The refusal of `engine_toml` (a per-record engine table) for a pipeline (the quickstart's by
/// default).
fn refusal(pipeline_toml: Option<&str>, engine_toml: &str) -> FlinkRefusal {
    let pipeline = match pipeline_toml {
        Some(t) => toml::from_str(t).unwrap(),
        None => scenario("quickstart").0,
    };
    let engine: DataflowConfig = toml::from_str(engine_toml).unwrap();
    translate(&pipeline, &engine).expect_err("refused")
}

fn assert_refused(r: &FlinkRefusal, table: RefusedTable, key: &str, says: &str) {
    assert_eq!((r.table, r.key.as_str()), (table, key), "{r}");
    assert!(r.to_string().contains(says), "{r}");
}

#[test]
fn allowed_lateness_is_refused_because_window_functions_drop_late_rows() {
    let r = refusal(None, r#"allowed_lateness = "1s""#);
    assert_refused(&r, RefusedTable::Engine, "allowed_lateness", "Allowed: omit the key");
    assert!(r.to_string().starts_with("key `allowed_lateness`: "), "{r}");
}

#[test]
fn kafka_streams_emission_is_refused() {
    let r = refusal(None, r#"commit_interval = "100ms""#);
    assert_refused(&r, RefusedTable::Engine, "commit_interval", "event-time trigger");
}

#[test]
fn an_exactly_once_sink_is_refused_because_the_receiver_has_no_transactions() {
    let r = refusal(
        None,
        r#"sink = "exactly_once"
checkpoint_interval = "1s""#,
    );
    assert_refused(&r, RefusedTable::Engine, "sink", "Allowed: `at_least_once`");
}

/// A quickstart script for Kafka with `engine_toml`.
fn kafka_script(engine_toml: &str) -> Result<PyFlinkScript, FlinkRefusal> {
    let pipeline = scenario("quickstart").0;
    let engine: DataflowConfig = toml::from_str(engine_toml).unwrap();
    PyFlinkScript::translate_for_kafka(FlinkJob {
        pipeline: &pipeline,
        engine: &engine,
        conf: &BTreeMap::new(),
    })
}

#[test]
fn on_kafka_the_sink_key_is_the_kafka_sinks_delivery_guarantee_and_exactly_once_needs_checkpoints() {
    let exactly_once = kafka_script("sink = \"exactly_once\"\ncheckpoint_interval = \"1s\"").unwrap();
    let text = exactly_once.text();
    assert!(text.contains("SINK_GUARANTEE = \"exactly-once\""), "{text}");
    assert!(
        text.contains("'sink.delivery-guarantee' = '{SINK_GUARANTEE}'"),
        "{text}"
    );
    assert!(text.contains("'connector' = 'kafka'"), "{text}");
    assert!(text.contains("METADATA FROM 'timestamp'"), "{text}");
    assert!(
        text.trim_end().ends_with("main_kafka()"),
        "the feeder's main is replaced"
    );
    py_compile("kafka_exactly_once", &exactly_once);
    let at_least_once = kafka_script("checkpoint_interval = \"1s\"").unwrap();
    assert!(at_least_once.text().contains("SINK_GUARANTEE = \"at-least-once\""));
    let r = kafka_script("sink = \"exactly_once\"").expect_err("refused");
    assert_refused(
        &r,
        RefusedTable::Engine,
        "checkpoint_interval",
        "exactly-once Kafka sink",
    );
}

#[test]
fn pinned_slots_are_refused() {
    let r = refusal(None, "pin_slots = true");
    assert_refused(&r, RefusedTable::Engine, "pin_slots", "Allowed: false");
}

#[test]
fn a_buffer_size_flink_cannot_use_as_a_memory_segment_is_refused() {
    let r = refusal(None, "buffer_size = 10000");
    assert_refused(&r, RefusedTable::Engine, "buffer_size", "power of two");
    let r = refusal(None, "buffer_size = 2048");
    assert_refused(&r, RefusedTable::Engine, "buffer_size", "at least 4096");
}

#[test]
fn a_sub_millisecond_duration_is_refused_by_key() {
    let r = refusal(None, r#"buffer_timeout = "500us""#);
    assert_refused(&r, RefusedTable::Engine, "buffer_timeout", "millisecond");
    let pipeline = Some(
        r#"[aggregate]
key_by = "user"
window = { kind = "session", gap = "1500us" }
function = "count""#,
    );
    let r = refusal(pipeline, "");
    assert_refused(&r, RefusedTable::Pipeline, "aggregate.window.gap", "millisecond");
    assert!(
        r.to_string().starts_with("pipeline key `aggregate.window.gap`: "),
        "{r}"
    );
}

#[test]
fn the_engines_own_validation_comes_first() {
    let r = refusal(Some("filter_kinds = []"), "");
    assert_refused(&r, RefusedTable::Pipeline, "filter_kinds", "omit the key");
    let r = refusal(None, "parallelism = 0");
    assert_refused(&r, RefusedTable::Engine, "parallelism", "between 1 and 1024");
}

#[test]
fn conf_is_passed_through_after_the_translated_settings() {
    let (pipeline, engine) = scenario("quickstart");
    let conf: BTreeMap<String, String> = [
        ("taskmanager.numberOfTaskSlots".to_string(), "4".to_string()),
        ("pipeline.name".to_string(), "a \"quoted\" name".to_string()),
    ]
    .into();
    let script = PyFlinkScript::translate(FlinkJob {
        pipeline: &pipeline,
        engine: &engine,
        conf: &conf,
    })
    .unwrap();
    let text = script.text();
    assert!(
        text.contains("    \"taskmanager.numberOfTaskSlots\": \"4\",  # conf\n"),
        "{text}"
    );
    assert!(
        text.contains(r#""pipeline.name": "a \"quoted\" name",  # conf"#),
        "{text}"
    );
}

#[test]
fn conf_keys_the_script_sets_itself_are_refused_naming_the_engine_key() {
    let (pipeline, engine) = scenario("quickstart");
    for (key, says) in [
        ("parallelism.default", "from the engine key `parallelism`"),
        ("state.backend.type", "from the engine key `state_backend`"),
        ("pipeline.jars", "sets `pipeline.jars` itself"),
        ("rest.port", "sets `rest.port` itself"),
    ] {
        let conf: BTreeMap<String, String> = [(key.to_string(), "x".to_string())].into();
        let r = PyFlinkScript::translate(FlinkJob {
            pipeline: &pipeline,
            engine: &engine,
            conf: &conf,
        })
        .expect_err("refused");
        assert_refused(&r, RefusedTable::Engine, &format!("conf.{key}"), says);
    }
}

#[test]
fn the_helper_classes_compile_against_the_installed_flink() {
    let Ok(java) = JavaInstall::find().and_then(JavaInstall::require_supported) else {
        eprintln!("skipped: compiling the Java helper classes (no Java 17+)");
        return;
    };
    let Ok(tools) = JavaTools::beside(&java) else {
        eprintln!("skipped: compiling the Java helper classes (no javac and jar beside {java})");
        return;
    };
    let Ok(cache) = CacheDir::from_env() else {
        eprintln!("skipped: compiling the Java helper classes (no cache directory)");
        return;
    };
    let Ok(lib) = flink_lib(&cache.venv(PythonEngine::Flink)) else {
        eprintln!(
            "skipped: compiling the Java helper classes (no Flink venv in {}; `streamlab engines install`)",
            cache.path.display()
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let jar = HelperJar {
        dir: tmp.path().join("java"),
    };
    std::fs::create_dir_all(&jar.dir).unwrap();
    let log = StepLog::create(tmp.path().join("javac.log")).unwrap();
    assert_eq!(jar.ensure(&tools, &lib, &log).unwrap(), JarOutcome::Built);
    let listing = Command::new(&tools.jar)
        .arg("--list")
        .arg("--file")
        .arg(jar.jar())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for entry in [
        "META-INF/services/org.apache.flink.table.factories.Factory",
        "streamlab/flink/FeedTableFactory.class",
        "streamlab/flink/ReceiverTableFactory.class",
        "streamlab/flink/LineFormatFactory.class",
        "streamlab/flink/CampaignLookup.class",
    ] {
        assert!(listing.contains(entry), "the jar lacks {entry}:\n{listing}");
    }
}
