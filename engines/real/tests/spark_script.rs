//! The generated PySpark scripts, without a JVM.
//!
//! * The scripts of the quickstart and stateless scenarios (their pipeline and their micro-batch
//!   engine) must equal `tests/golden/spark/*.py`. After an intended change, rewrite them with
//!   `STREAMLAB_BLESS=1 cargo test -p streamlab-real-engines --test spark_script` and review
//!   the diff.
//! * Each generated script must compile with `python3 -m py_compile` (skipped, with a message,
//!   where there is no python3; failed under CI).
//! * What Spark cannot run is refused, naming the key.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamlab_engines::microbatch::MicroBatchConfig;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_real_engines::spark::{sink_columns, PySparkScript, RefusedTable, SparkJob, SparkRefusal};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scenario's pipeline and its first micro-batch engine, read with the engines' own serde
/// types (the engine table's `name` and `model` are the scenario's, not the engine's).
fn scenario(name: &str) -> (PipelineSpec, MicroBatchConfig) {
    let path = repo().join("scenarios").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table = text.parse().unwrap();
    let pipeline: PipelineSpec = doc["pipeline"].clone().try_into().unwrap();
    let engine = doc["engine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_table().unwrap().clone())
        .find(|e| e["model"].as_str() == Some("micro-batch"))
        .expect("a micro-batch engine");
    let mut engine = engine;
    engine.remove("name");
    engine.remove("model");
    (pipeline, toml::Value::Table(engine).try_into().unwrap())
}

fn translate(pipeline: &PipelineSpec, engine: &MicroBatchConfig) -> Result<PySparkScript, SparkRefusal> {
    PySparkScript::translate(SparkJob {
        pipeline,
        engine,
        conf: &Default::default(),
    })
}

fn assert_golden(name: &str, script: &PySparkScript) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/spark/{name}.py"));
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
fn py_compile(name: &str, script: &PySparkScript) -> bool {
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

const INTERVAL_LEFT_OUTER: &str = r#"[join]
kind = "interval"
type = "left_outer"
lower = "-500ms"
upper = "1s"
left = { kinds = ["auction"], key = "id" }
right = { kinds = ["bid"], key = "auction", where = [{ field = "price", at_least = 100 }] }"#;

#[test]
fn an_interval_join_is_a_time_range_condition_with_watermarks_on_both_sides() {
    let pipeline: PipelineSpec = toml::from_str(INTERVAL_LEFT_OUTER).unwrap();
    let (_, engine) = scenario("quickstart");
    let text = translate(&pipeline, &engine).unwrap().text().to_owned();
    for line in [
        "    right = right.where(F.col(\"price_cents\") >= 100)\n",
        "        F.col(\"session\").alias(\"r_key\"),\n",
        "    left = left.withWatermark(\"l_ts\", WATERMARK_DELAY)\n",
        "    right = right.withWatermark(\"r_ts\", WATERMARK_DELAY)\n",
        "    joined = left.join(right, F.expr(\"l_key = r_key AND r_ts >= l_ts - INTERVAL 500 milliseconds AND r_ts <= l_ts + INTERVAL 1000 milliseconds\"), \"left_outer\")\n",
        "        F.when(F.col(\"r_seq\").isNull(), \"left_only\").otherwise(\"pair\").alias(\"shape\"),\n",
        "WINDOWED = False\nSTATEFUL = True\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn a_top_n_is_refused_as_spark_refuses_a_rank_over_a_window() {
    let (q7, engine) = scenario("nexmark/q7");
    let r = translate(&q7, &engine).unwrap_err();
    assert_refused(
        &r,
        RefusedTable::Pipeline,
        "top_n",
        "Non-time-based windows are not supported",
    );
    assert!(r.to_string().contains("the real Flink runs it"), "{r}");
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
    // q2: `auction` rides in the `session` column; the modulo is Euclidean as the reference's.
    let (q2, engine) = scenario("nexmark/q2");
    let text = translate(&q2, &engine).unwrap().text().to_owned();
    assert!(
        text.contains("    events = events.where(F.pmod(F.col(\"session\"), F.lit(123)) == 0)\n"),
        "{text}"
    );
    assert!(text.contains("F.col(\"session\").alias(\"auction\")"), "{text}");
    assert!(text.contains("    where auction % 123 == 0\n"), "the docstring says it");
    // q1: the price (`price_cents`) converted toward zero, after the predicates.
    let (q1, engine) = scenario("nexmark/q1");
    let text = translate(&q1, &engine).unwrap().text().to_owned();
    assert!(
        text.contains(
            "    events = events.withColumn(\"price_cents\", F.expr(\"price_cents * 908 div 1000\"))  # price\n"
        ),
        "{text}"
    );
    // A conversion that may leave the 32-bit slot wraps as the slot does; the kind as a number
    // covers Nexmark's kinds too.
    let wrapping: PipelineSpec = toml::from_str(
        r#"filter_kinds = ["bid"]
where = [{ field = "kind", in = [6] }]
convert = { field = "price", multiply = -3 }
project = ["seq", "price"]"#,
    )
    .unwrap();
    let text = translate(&wrapping, &engine).unwrap().text().to_owned();
    assert!(
        text.contains("F.expr(\"pmod(price_cents * -3 div 1, 4294967296)\")"),
        "{text}"
    );
    assert!(text.contains("WHEN 'bid' THEN 6 END\").isin(6)"), "{text}");
}

#[test]
fn dedup_and_then_are_refused_by_key_until_translated() {
    for (key, stage, says) in [
        ("then", "[aggregate]\nkey_by = \"user\"\nwindow = { kind = \"tumbling\", size = \"10s\" }\nfunction = \"count\"\n[then]\nfunction = \"max\"", "the real Flink runs it"),
        ("dedup", "[dedup]\nkey = [\"user\"]\nwithin = \"1s\"", "streamlab's own micro-batch and per-record"),
    ] {
        let pipeline: PipelineSpec = toml::from_str(stage).unwrap();
        let r = translate(&pipeline, &MicroBatchConfig::default()).unwrap_err();
        assert_refused(&r, RefusedTable::Pipeline, key, says);
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
        "nexmark/q8",
        "nexmark/q11",
    ] {
        let (pipeline, engine) = scenario(name);
        scripts.push((name.replace('/', "-"), translate(&pipeline, &engine).unwrap()));
    }
    // Every window kind, aggregate and trigger family once.
    let variants = [
        (
            "sliding_avg",
            r#"window = { kind = "sliding", size = "10s", slide = "2s" }
function = "avg"
field = "dwell_ms""#,
            r#"output_mode = "update""#,
        ),
        (
            "session_distinct",
            r#"window = { kind = "session", gap = "500ms" }
function = "distinct_count"
field = "kind""#,
            r#"trigger = { kind = "available_now", max_records_per_batch = 1000 }
state_backend = "lsm""#,
        ),
        (
            "tumbling_max_by_kind",
            r#"key_by = "kind"
window = { kind = "tumbling", size = "1s" }
function = "max"
field = "price_cents""#,
            r#"trigger = { kind = "once" }
output_mode = "complete""#,
        ),
    ];
    for (name, aggregate, engine) in variants {
        let aggregate = if aggregate.contains("key_by") {
            aggregate.to_string()
        } else {
            format!("key_by = \"user\"\n{aggregate}")
        };
        let pipeline: PipelineSpec = toml::from_str(&format!("[aggregate]\n{aggregate}")).unwrap();
        let engine: MicroBatchConfig = toml::from_str(engine).unwrap();
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
        "MASTER = \"local[2]\"",
        "\"spark.sql.shuffle.partitions\": \"2\"",
        "TRIGGER = {\"processingTime\": \"1000 milliseconds\"}",
        "OUTPUT_MODE = \"append\"",
        "WATERMARK_DELAY = \"200 milliseconds\"",
        "events.where(F.col(\"kind\").isin(\"click\"))",
        "events.join(F.broadcast(campaigns), \"ad\", \"inner\")",
        "F.window(\"event_ts\", \"2000 milliseconds\")",
    ] {
        assert!(text.contains(expected), "missing {expected:?}");
    }
}

#[test]
fn sink_rows_are_the_sink_file_columns_without_streamlab_stamps_then_the_origin() {
    let (stateless, _) = scenario("stateless");
    assert_eq!(
        sink_columns(&stateless),
        ["seq", "event_time", "user", "campaign", "origin_arrival_ns"]
    );
    let (windowed, _) = scenario("quickstart");
    assert_eq!(
        sink_columns(&windowed),
        [
            "key",
            "window_start_ms",
            "window_end_ms",
            "count",
            "value",
            "is_update",
            "origin_arrival_ns"
        ]
    );
}

/// The refusal of `engine_toml` (an engine table) for the quickstart's pipeline.
fn refusal(pipeline_toml: Option<&str>, engine_toml: &str) -> SparkRefusal {
    let pipeline = match pipeline_toml {
        Some(t) => toml::from_str(t).unwrap(),
        None => scenario("quickstart").0,
    };
    let engine: MicroBatchConfig = toml::from_str(engine_toml).unwrap();
    translate(&pipeline, &engine).expect_err("refused")
}

fn assert_refused(r: &SparkRefusal, table: RefusedTable, key: &str, says: &str) {
    assert_eq!((r.table, r.key.as_str()), (table, key), "{r}");
    assert!(r.to_string().contains(says), "{r}");
}

#[test]
fn continuous_trigger_is_refused_because_the_feed_source_is_micro_batch_only() {
    let pipeline = Some(r#"project = ["seq"]"#);
    let r = refusal(
        pipeline,
        r#"trigger = { kind = "continuous", checkpoint_interval = "1s" }"#,
    );
    assert_refused(&r, RefusedTable::Engine, "trigger", "Allowed: `processing_time`");
    assert!(r.to_string().starts_with("key `trigger`: "), "{r}");
}

#[test]
fn group_scheduling_is_refused() {
    let r = refusal(None, "group_size = 4");
    assert_refused(&r, RefusedTable::Engine, "group_size", "Allowed: 1");
}

#[test]
fn pinned_workers_are_refused() {
    let r = refusal(None, "pin_workers = true");
    assert_refused(&r, RefusedTable::Engine, "pin_workers", "Allowed: false");
}

#[test]
fn modelled_costs_are_refused_by_key() {
    let r = refusal(None, r#"scheduling = { per_batch = "50ms" }"#);
    assert_refused(
        &r,
        RefusedTable::Engine,
        "scheduling.per_batch",
        "Allowed: omit the key",
    );
    let r = refusal(None, r#"scheduling = { per_task = "5ms" }"#);
    assert_refused(&r, RefusedTable::Engine, "scheduling.per_task", "Allowed: omit the key");
    let r = refusal(None, r#"modelled_cost_per_record = "10us""#);
    assert_refused(
        &r,
        RefusedTable::Engine,
        "modelled_cost_per_record",
        "Allowed: omit the key",
    );
}

#[test]
fn a_delayed_start_is_refused() {
    let r = refusal(
        None,
        r#"trigger = { kind = "once" }
start_at = "5s""#,
    );
    assert_refused(&r, RefusedTable::Engine, "start_at", "Allowed: omit the key");
}

#[test]
fn update_mode_with_session_windows_is_refused_as_spark_does() {
    let pipeline = Some(
        r#"[aggregate]
key_by = "user"
window = { kind = "session", gap = "1s" }
function = "count""#,
    );
    let r = refusal(pipeline, r#"output_mode = "update""#);
    assert_refused(&r, RefusedTable::Engine, "output_mode", "Allowed with a session window");
}

#[test]
fn a_sub_microsecond_interval_is_refused_by_key() {
    let r = refusal(None, r#"watermark_delay = "1500ns""#);
    assert_refused(&r, RefusedTable::Engine, "watermark_delay", "microsecond");
    let pipeline = Some(
        r#"[aggregate]
key_by = "user"
window = { kind = "session", gap = "1000001ns" }
function = "count""#,
    );
    let r = refusal(pipeline, "");
    assert_refused(&r, RefusedTable::Pipeline, "aggregate.window.gap", "microsecond");
    assert!(
        r.to_string().starts_with("pipeline key `aggregate.window.gap`: "),
        "{r}"
    );
}

#[test]
fn the_engines_own_validation_comes_first() {
    let r = refusal(Some("filter_kinds = []"), "");
    assert_refused(&r, RefusedTable::Pipeline, "filter_kinds", "omit the key");
    let r = refusal(None, "workers = 0");
    assert_refused(&r, RefusedTable::Engine, "workers", "at least 1");
}

#[test]
fn sparks_default_trigger_sets_no_trigger() {
    let (pipeline, _) = scenario("stateless");
    for trigger in [
        r#"{ kind = "default" }"#,
        r#"{ kind = "processing_time", interval = "0s" }"#,
    ] {
        let engine: MicroBatchConfig = toml::from_str(&format!("trigger = {trigger}")).unwrap();
        let script = translate(&pipeline, &engine).unwrap();
        assert!(
            script.text().contains("TRIGGER = {}  # Spark's default trigger"),
            "{trigger}"
        );
    }
}
