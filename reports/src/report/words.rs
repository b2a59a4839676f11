//! The scenario in plain words, from `scenario.toml` as it was run and `summary.json`.
//!
//! Only what the file states is described (defaults are the engines' business and appear in
//! each run's configuration); the clock comes from the summary, since `--clock` may override
//! the file.

use serde_json::Value;
use toml::Table;

use crate::summary::{RunSummary, Stability, Summary};

fn text(value: Option<&toml::Value>) -> Option<String> {
    value.map(|v| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn get<'a>(table: &'a Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, init) = path.split_last()?;
    let mut t = table;
    for key in init {
        t = t.get(*key)?.as_table()?;
    }
    t.get(*last)
}

/// The workload's arrival rate in words: "a constant 20000 events/s".
pub fn rate_in_words(scenario: &Table) -> Option<String> {
    let rate = get(scenario, &["workload", "rate"])?.as_table()?;
    let f = |k: &str| text(rate.get(k)).unwrap_or_else(|| "?".into());
    Some(match rate.get("profile").and_then(toml::Value::as_str) {
        Some("constant") => format!("a constant {} events/s", f("events_per_second")),
        Some("step") => format!(
            "{} events/s, stepping to {} events/s at {}",
            f("before"),
            f("after"),
            f("at")
        ),
        Some("spike") => format!(
            "{} events/s with a spike to {} events/s at {} lasting {}",
            f("base"),
            f("peak"),
            f("at"),
            f("duration")
        ),
        Some("sine") => format!(
            "a rate oscillating around {} events/s (± {}) with a period of {}",
            f("mean"),
            f("amplitude"),
            f("period")
        ),
        _ => format!("rate {}", toml::Value::Table(rate.clone())),
    })
}

fn workload(scenario: &Table, summary: &Summary) -> String {
    if let Some(trace) = text(get(scenario, &["workload", "trace"])) {
        return format!("**Workload**: the events of the trace `{trace}`, replayed at their recorded times.");
    }
    let mut s = format!(
        "**Workload**: a seeded clickstream (seed {}) arriving at {} for {}",
        summary.seed,
        rate_in_words(scenario).unwrap_or_else(|| "the default rate".into()),
        text(scenario.get("duration")).unwrap_or_else(|| format!("{} s", summary.duration_s))
    );
    if let Some(drain) = text(scenario.get("drain")) {
        s += &format!(" (the engines run {drain} longer to drain)");
    }
    if let Some(p) = text(get(scenario, &["workload", "partitions"])) {
        s += &format!(", over {p} source partitions");
    }
    s.push('.');
    if let Some(d) = get(scenario, &["workload", "disorder"]).and_then(toml::Value::as_table) {
        if let Some(bound) = text(d.get("bound")) {
            let delay = text(d.get("delay")).map(|x| format!(", {x} delay")).unwrap_or_default();
            s += &format!(" Events arrive up to {bound} out of order{delay}");
            let late = d
                .get("late_fraction")
                .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)));
            if let Some(late) = late.filter(|&l| l > 0.0) {
                let extra = text(d.get("late_extra"))
                    .map(|x| format!(", by up to {x}"))
                    .unwrap_or_default();
                s += &format!("; {:.1}% arrive later than that{extra}", late * 100.0);
            }
            s.push('.');
        }
    }
    s
}

fn list(values: Option<&toml::Value>) -> Option<String> {
    let items: Vec<String> = values?
        .as_array()?
        .iter()
        .map(|v| format!("`{}`", text(Some(v)).unwrap_or_default()))
        .collect();
    Some(items.join(", "))
}

fn pipeline(scenario: &Table) -> Option<String> {
    let p = scenario.get("pipeline")?.as_table()?;
    let mut steps = Vec::new();
    if let Some(kinds) = list(p.get("filter_kinds")) {
        steps.push(format!("keep {kinds} events"));
    }
    if p.get("lookup_join").and_then(toml::Value::as_bool) == Some(true) {
        steps.push("join each ad to its campaign".to_string());
    }
    if let Some(agg) = p.get("aggregate").and_then(toml::Value::as_table) {
        if let Some(key) = text(agg.get("key_by")) {
            steps.push(format!("key by `{key}`"));
        }
        if let Some(w) = agg.get("window").and_then(toml::Value::as_table) {
            let f = |k: &str| text(w.get(k)).unwrap_or_else(|| "?".into());
            steps.push(match w.get("kind").and_then(toml::Value::as_str) {
                Some("tumbling") => format!("{} tumbling windows", f("size")),
                Some("sliding") => format!("{} windows sliding every {}", f("size"), f("slide")),
                Some("session") => format!("session windows closed by a {} gap", f("gap")),
                _ => "windows".to_string(),
            });
        }
        let function = text(agg.get("function")).unwrap_or_else(|| "count".into());
        steps.push(match text(agg.get("field")) {
            Some(field) => format!("{function} of `{field}`"),
            None => function,
        });
    } else if let Some(columns) = list(p.get("project")) {
        steps.push(format!("project {columns}"));
    }
    if steps.is_empty() {
        return Some("**Pipeline**: every event straight to the sink.".to_string());
    }
    Some(format!("**Pipeline**: {}.", steps.join(" → ")))
}

fn clock(scenario: &Table, summary: &Summary) -> String {
    if summary.clock == "simulated" {
        let profile = text(scenario.get("profile")).unwrap_or_else(|| "local".into());
        let nodes = text(get(scenario, &["cluster", "nodes"])).unwrap_or_else(|| "1".into());
        let cores = text(get(scenario, &["cluster", "cores_per_node"])).unwrap_or_else(|| "2".into());
        format!(
            "**Clock**: simulated — virtual time, deterministic, durations priced by cost profile `{profile}` on {nodes} node(s) × {cores} core(s)."
        )
    } else {
        "**Clock**: live — real threads, durations measured on this machine's wall clock.".to_string()
    }
}

/// A configuration's settings, flattened: `trigger.interval = 1s, workers = 2`.
pub fn knobs(config: &Value) -> String {
    let mut out = Vec::new();
    flatten("", config, &mut out);
    out.join(", ")
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push(format!("`{prefix} = {s}`")),
        other => out.push(format!("`{prefix} = {other}`")),
    }
}

/// One line per engine configuration: name, model and settings.
pub fn engine_line(run: &RunSummary) -> String {
    format!("**{}** ({}): {}", run.name, run.model, knobs(&run.config))
}

/// The scenario in paragraphs: what it is, the workload, the pipeline, the clock.
pub fn scenario_paragraphs(scenario: &Table, summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let mut opening = format!("Scenario **{}**", summary.scenario);
    if let Some(d) = text(scenario.get("description")) {
        opening += &format!(": {d}");
    }
    opening.push('.');
    out.push(opening);
    out.push(workload(scenario, summary));
    out.extend(pipeline(scenario));
    out.push(clock(scenario, summary));
    out
}

/// Whether a run kept up, as a table cell: its recorded [`Stability`], or for files written
/// before it was recorded, `-`.
pub(crate) fn keeping_up(run: &RunSummary) -> &'static str {
    run.stability.map_or("-", Stability::cell)
}

/// How far a run kept up, for ordering candidates: 2 kept up and never fell behind, 1 kept up
/// with batches behind their trigger (or judged only by that count, in older files), 0 could
/// not keep up or had no output.
pub(crate) fn keeping_up_rank(run: &RunSummary) -> u8 {
    match run.stability {
        Some(Stability::CannotKeepUp | Stability::NoOutput) => 0,
        _ if run.counts.falling_behind > 0 => 1,
        _ => 2,
    }
}
