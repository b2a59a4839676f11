//! The keyed stages in scenario files: what cannot run is refused before anything starts,
//! naming the file, the line and the key, and saying what is allowed — a join without its time
//! condition, an outer join without a bound, a field the input does not carry, an output mode
//! or a top-N Spark refuses, Flink knobs that do not apply, and a real engine asked for what its
//! generated job does not translate.

use std::path::Path;

use streamlab_scenarios::spec::Scenario;
use streamlab_scenarios::ScenarioError;

const FILE: &str = "scenarios/x.toml";

const HEAD: &str = r#"name = "t"
duration = "2s"

[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 100 }
"#;

const MICRO_BATCH: &str = r#"
[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }
"#;

const PER_RECORD: &str = r#"
[[engine]]
name = "pr"
model = "per-record"
"#;

const JOIN: &str = r#"
[pipeline.join]
kind = "interval"
type = "left_outer"
left = { kinds = ["view"], key = "session" }
right = { kinds = ["click"], key = "session" }
lower = "0s"
upper = "10s"
"#;

/// Parses HEAD + `body`, expecting a refusal on `key` whose message holds every one of `words`.
fn refused(body: &str, key: &str, words: &[&str]) {
    let text = format!("{HEAD}{body}");
    let err: ScenarioError = Scenario::parse(Path::new(FILE), &text).expect_err("refused");
    let message = err.to_string();
    assert!(message.starts_with(&format!("{FILE}:")), "{message}");
    assert_eq!(err.key(), Some(key), "{message}");
    assert!(err.line().is_some(), "{message}");
    for w in words {
        assert!(message.contains(w), "`{w}` missing from: {message}");
    }
}

#[test]
fn a_valid_join_reads_on_both_engines() {
    let text = format!("{HEAD}{JOIN}{MICRO_BATCH}{PER_RECORD}");
    let s = Scenario::parse(Path::new(FILE), &text).unwrap();
    let join = s.pipeline.join.expect("join");
    assert_eq!(join.bounds(), (0, 10_000));
}

#[test]
fn an_interval_join_without_its_bounds_is_refused() {
    let body = JOIN.replace("upper = \"10s\"\n", "");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.lower",
        &["needs `lower` and `upper`"],
    );
    let body = JOIN.replace("lower = \"0s\"", "lower = \"20s\"");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.upper",
        &["at least `lower`"],
    );
}

#[test]
fn an_outer_join_with_no_time_bound_is_refused_as_spark_refuses_it() {
    let body = JOIN
        .replace("kind = \"interval\"", "kind = \"unbounded\"")
        .replace("lower = \"0s\"\nupper = \"10s\"\n", "");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.type",
        &["only be `inner`", "Spark refuses"],
    );
}

#[test]
fn a_join_key_the_input_does_not_carry_is_refused() {
    let body = JOIN.replace(
        "kinds = [\"click\"], key = \"session\"",
        "kinds = [\"bid\"], key = \"seller\"",
    );
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.right.key",
        &["`seller`", "`auction`", "`bid`"],
    );
}

#[test]
fn a_bad_predicate_names_its_entry() {
    let body = "\n[pipeline]\nfilter_kinds = [\"bid\"]\nwhere = [{ field = \"auction\", modulo = 123 }]\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.where[0]",
        &["`modulo` goes with `equals`"],
    );
    let body = "\n[pipeline]\nwhere = [{ field = \"page\", equals = 1, below = 4 }]\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.where[0]",
        &["exactly one of", "it has 2"],
    );
}

#[test]
fn two_keyed_stages_are_refused() {
    let body = format!("{JOIN}\n[pipeline.dedup]\nkey = [\"user\"]\nwithin = \"1s\"\n");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.dedup",
        &[
            "2 keyed stages",
            "join, dedup",
            "a chain is a `join` or a `dedup` followed by an `aggregate`",
        ],
    );
}

#[test]
fn spark_runs_a_join_in_append_mode_only() {
    let engine = format!("{MICRO_BATCH}output_mode = \"update\"\n");
    refused(
        &format!("{JOIN}{engine}"),
        "engine[0].output_mode",
        &["append mode only"],
    );
}

#[test]
fn spark_refuses_a_top_n_above_one() {
    let body = "\n[pipeline.top_n]\nwindow = { kind = \"tumbling\", size = \"1s\" }\nn = 3\nby = \"dwell_ms\"\n";
    refused(
        &format!("{body}{MICRO_BATCH}"),
        "engine[0].model",
        &["`pipeline.top_n.n`", "Non-time-based windows are not supported"],
    );
}

#[test]
fn flink_knobs_that_do_not_apply_to_a_join_are_refused() {
    let engine = format!("{PER_RECORD}commit_interval = \"1s\"\n");
    refused(
        &format!("{JOIN}{engine}"),
        "engine[0].commit_interval",
        &["remove `commit_interval`"],
    );
    let engine = format!("{PER_RECORD}allowed_lateness = \"1s\"\n");
    refused(
        &format!("{JOIN}{engine}"),
        "engine[0].allowed_lateness",
        &["remove `allowed_lateness`"],
    );
}

#[test]
fn a_second_aggregation_needs_a_first_and_a_shared_window() {
    let body = "\n[pipeline]\nfilter_kinds = [\"click\"]\n\n[pipeline.then]\nfunction = \"max\"\n";
    refused(&format!("{body}{PER_RECORD}"), "pipeline.then", &["needs a first"]);
    let body = "\n[pipeline.aggregate]\nkey_by = \"user\"\nwindow = { kind = \"session\", gap = \"1s\" }\nfunction = \"count\"\n\n[pipeline.then]\nfunction = \"max\"\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.then",
        &["session windows differ per key"],
    );
}

#[test]
fn a_real_engine_refuses_what_its_generated_job_does_not_translate() {
    for (model, name) in [("spark", "Spark"), ("flink", "Flink")] {
        let engine = format!("\n[[engine]]\nname = \"real\"\nmodel = \"{model}\"\n");
        // Joins translate now (both jobs); a deduplication does not yet.
        let dedup = "\n[pipeline.dedup]\nkey = [\"user\"]\nwithin = \"1s\"\n";
        let text = format!("{HEAD}{dedup}{engine}");
        let err = Scenario::parse(Path::new(FILE), &text).expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("pipeline.dedup"), "{message}");
        assert!(message.contains("does not translate a deduplication yet"), "{message}");
        assert!(message.contains(name) || message.contains("real"), "{message}");
        let joined = format!("{HEAD}{JOIN}{engine}");
        assert!(
            Scenario::parse(Path::new(FILE), &joined).is_ok(),
            "{model} runs an interval join"
        );
    }
}

#[test]
fn a_record_kind_in_both_join_inputs_is_refused() {
    let body = JOIN.replace(
        "kinds = [\"click\"], key = \"session\"",
        "kinds = [\"view\"], key = \"user\"",
    );
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.right.kinds",
        &["`view` is in both inputs"],
    );
}

#[test]
fn an_outer_join_over_sliding_windows_is_refused() {
    let body = JOIN.replace("kind = \"interval\"", "kind = \"window\"").replace(
        "lower = \"0s\"\nupper = \"10s\"\n",
        "window = { kind = \"sliding\", size = \"10s\", slide = \"5s\" }\n",
    );
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.type",
        &["takes a tumbling window"],
    );
}

#[test]
fn a_field_the_filtered_kinds_do_not_carry_is_refused() {
    let body = "\n[pipeline]\nfilter_kinds = [\"bid\"]\nwhere = [{ field = \"category\", equals = 10 }]\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.where[0].field",
        &["`category`", "`auction`", "`bid`"],
    );
    let body = "\n[pipeline.dedup]\nkey = [\"campaign\"]\nwithin = \"1s\"\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.dedup.key[0]",
        &["needs `lookup_join = true`"],
    );
}

/// An inner interval join of views and clicks, the pairs counted per page per window.
const CHAIN: &str = r#"
[pipeline.join]
kind = "interval"
left = { kinds = ["view"], key = "session" }
right = { kinds = ["click"], key = "session" }
lower = "0s"
upper = "10s"
row_time = "right"

[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "10s" }
function = "count"
"#;

#[test]
fn a_chain_of_a_join_then_an_aggregation_reads_on_both_engines() {
    let text = format!("{HEAD}{CHAIN}{MICRO_BATCH}{PER_RECORD}");
    let s = Scenario::parse(Path::new(FILE), &text).unwrap();
    assert!(s.pipeline.is_chain());
    assert_eq!(
        s.pipeline.join.expect("join").row_time,
        Some(streamlab_engines::pipeline::Side::Right)
    );
}

#[test]
fn a_join_in_a_chain_must_be_an_inner_interval_join_with_a_row_time() {
    let body = CHAIN.replace("kind = \"interval\"", "kind = \"interval\"\ntype = \"left_outer\"");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.type",
        &["must be `inner`", "one global watermark", "as late"],
    );
    let body = CHAIN
        .replace("kind = \"interval\"", "kind = \"unbounded\"")
        .replace("lower = \"0s\"\nupper = \"10s\"\n", "");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.kind",
        &["must be an `interval` join", "Flink SQL drops the time attribute"],
    );
    let body = CHAIN.replace("row_time = \"right\"\n", "");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.row_time",
        &["needs `row_time = \"left\"` or `\"right\"`"],
    );
    let body = CHAIN.replace("row_time = \"right\"", "row_time = \"both\"");
    let text = format!("{HEAD}{body}{PER_RECORD}");
    let err = Scenario::parse(Path::new(FILE), &text)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("row_time") || err.contains("`left`"), "{err}");
}

#[test]
fn a_row_time_without_an_aggregation_is_refused() {
    let body = JOIN.replace("upper = \"10s\"\n", "upper = \"10s\"\nrow_time = \"left\"\n");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.join.row_time",
        &["only a join followed by an `aggregate`"],
    );
}

#[test]
fn a_top_n_does_not_chain_into_an_aggregation() {
    let body = "\n[pipeline.top_n]\nwindow = { kind = \"tumbling\", size = \"1s\" }\nn = 1\nby = \"dwell_ms\"\n\n[pipeline.aggregate]\nkey_by = \"page\"\nwindow = { kind = \"tumbling\", size = \"1s\" }\nfunction = \"count\"\n";
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.top_n",
        &[
            "2 keyed stages",
            "top_n, aggregate",
            "a `join` or a `dedup` followed by an `aggregate`",
        ],
    );
}

#[test]
fn a_chained_aggregation_reads_only_fields_of_the_join_inputs() {
    let body = CHAIN.replace("key_by = \"page\"", "key_by = \"seller\"");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.aggregate.key_by",
        &["`seller`", "`view`, `click`"],
    );
    let body = CHAIN.replace("key_by = \"page\"", "key_by = \"campaign\"");
    refused(
        &format!("{body}{PER_RECORD}"),
        "pipeline.aggregate.key_by",
        &["lookup join", "aggregate by `ad`"],
    );
    // Nexmark: an auction's category and a bid's channel share a slot of the joined row.
    let nexmark = r#"
[pipeline.join]
kind = "interval"
left = { kinds = ["auction"], key = "id" }
right = { kinds = ["bid"], key = "auction" }
lower = "0s"
upper = "10s"
row_time = "right"

[pipeline.aggregate]
key_by = "category"
window = { kind = "tumbling", size = "10s" }
function = "max"
field = "channel"
"#;
    refused(
        &format!("{nexmark}{PER_RECORD}"),
        "pipeline.aggregate.field",
        &["`channel` and `category`", "share one slot"],
    );
}

#[test]
fn spark_runs_a_chain_in_append_mode_only() {
    let engine = format!("{MICRO_BATCH}output_mode = \"update\"\n");
    refused(
        &format!("{CHAIN}{engine}"),
        "engine[0].output_mode",
        &["append mode only"],
    );
}
