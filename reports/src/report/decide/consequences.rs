//! The consequences of choosing a configuration: where its latency goes and which knob moves
//! it, and what the figures can and cannot promise.
//!
//! Why a room of its own: it reads the latency breakdown and the run's conditions, not the
//! SLO verdicts. Invariant: every sentence is computed from the chosen run and its results
//! directory.

use super::super::{ordered_components, Config, Point};
use crate::decision::{human_duration, percent};
use crate::summary::Stability;

/// What a latency component is and which knob moves it.
fn component_meaning(component: &str) -> &'static str {
    match component {
        "trigger_wait" => "waiting for the next trigger; a shorter trigger interval shrinks it (mean ≈ half the interval)",
        "watermark_wait" => "waiting for the watermark to pass the window's end; a smaller watermark delay or out-of-orderness bound shrinks it, at the price of more late records",
        "buffer_wait" => "time in network buffers; `buffer_timeout` bounds it",
        "queueing" => "a backlog in front of the engine; it grows when the engine runs near or over its capacity",
        "processing" => "operator work; more workers or parallelism, or cheaper operators, shrink it",
        "scheduling" => "per-batch and per-task scheduling overhead; group scheduling (`group_size`) amortises it",
        "commit" => "writing the commit log",
        "sink_visibility" => "waiting for the sink to make results visible; with a two-phase-commit (exactly-once) sink that is the next completed checkpoint, so the checkpoint interval bounds it",
        "cache_wait" => "the record cache, forwarded at each `commit_interval`",
        "broker" => "the output's hop through Kafka (produce, log append, fetch by the reader); the broker's own latency, not a knob of the engine's",
        _ => "a part of this model's latency",
    }
}

pub(super) fn consequences(c: &Config<'_>, point: &Point) -> Vec<String> {
    let mut out = Vec::new();
    let components = ordered_components(c.run);
    let total: f64 = components.iter().map(|x| x.1).sum();
    if let Some((name, value)) = components
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|_| total > 0.0)
    {
        out.push(format!(
            "Its latency is mostly `{name}`: {} of a {} mean ({}) — {}.",
            human_duration(*value),
            human_duration(total),
            percent(value / total),
            component_meaning(name)
        ));
    }
    let config = &c.run.config;
    if c.run.model == "micro-batch" {
        // Spark's default trigger is `ProcessingTime(0)`: batches back to back, no interval.
        let back_to_back = config["trigger"]["interval"]
            .as_str()
            .is_some_and(|i| i.trim_end_matches(|ch: char| ch.is_ascii_alphabetic()) == "0");
        let batches = c.run.counts.batches;
        if back_to_back {
            out.push(
                "It runs Spark's default trigger: each batch starts as soon as the previous one ends, so the per-batch cost, not an interval, is the floor under its latency: results wait for the batch in progress to end, and windows one more batch for the watermark.".to_string()
            );
        } else if let Some(interval) = config["trigger"]["interval"].as_str() {
            out.push(format!(
                "Its trigger interval ({interval}) is a floor under its latency: results wait for a trigger, and windows one more batch for the watermark. Shorter intervals cost more batches, each paying the per-batch overhead."
            ));
        }
        if back_to_back {
            if batches > 0 {
                out.push(format!(
                    "Its {batches} batches ran back to back; with no interval there is nothing to fall behind."
                ));
            }
        } else if c.run.stability == Some(Stability::BehindTrigger) {
            out.push(format!(
                "It fell behind its trigger in {} of {batches} batches but kept up with its input: each batch started as soon as the previous one ended, and its backlog and latency stayed bounded. Its trigger interval is below the per-batch cost, so latency floors at that cost; a shorter interval would not lower it.",
                c.run.counts.falling_behind
            ));
        } else if c.run.stability == Some(Stability::CannotKeepUp) {
            out.push(format!(
                "It could not keep up with its input ({} of {batches} batches took longer than the trigger interval, and its backlog grew): latency grows with the length of the run, and a longer run would show higher percentiles.",
                c.run.counts.falling_behind
            ));
        } else if c.run.counts.falling_behind > 0 && c.run.stability == Some(Stability::KeepsUp) {
            out.push(format!(
                "It kept up, though {} of its {batches} batches took longer than the trigger interval (a passing burst: its backlog and latency did not grow).",
                c.run.counts.falling_behind
            ));
        } else if c.run.counts.falling_behind > 0 {
            out.push(format!(
                "It fell behind in {} of {batches} batches: processing took longer than the trigger interval, so latency grows with the length of the run and a longer run would show higher percentiles.",
                c.run.counts.falling_behind
            ));
        } else if batches > 0 {
            out.push(format!(
                "It kept up: none of its {batches} batches took longer than the trigger interval."
            ));
        }
    } else {
        let knob = |k: &str| config[k].as_str().map(|v| format!("`{k}` = {v}"));
        let set: Vec<String> = [
            "buffer_timeout",
            "auto_watermark_interval",
            "out_of_orderness",
            "commit_interval",
        ]
        .iter()
        .filter_map(|k| knob(k))
        .collect();
        if !set.is_empty() {
            out.push(format!(
                "Its latency floor is set by {}: the batching hidden inside per-record streaming.",
                set.join(", ")
            ));
        }
        out.push("It keeps operators and state running continuously: capacity is reserved for the peak rate rather than scheduled per batch.".into());
    }
    if c.run.counts.late_dropped > 0 {
        out.push(format!(
            "{} events arrived behind the watermark and were dropped; a larger watermark delay or allowed lateness keeps them, at the price of latency.",
            c.run.counts.late_dropped
        ));
    }
    if let Some(r) = &c.run.recovery {
        if let Some(d) = Some(r.duplicates).filter(|&d| d > 0) {
            out.push(format!(
                "After failures it delivered {d} duplicate outputs (at-least-once): the sink must be idempotent."
            ));
        }
        if let Some(l) = Some(r.losses).filter(|&l| l > 0) {
            out.push(format!("After failures {l} outputs were lost."));
        }
    }
    let summary = &point.dir.summary;
    out.push(if summary.clock == "simulated" {
        format!(
            "These figures are simulated ({}); confirm them with a live run or on the target cluster before committing.",
            summary.modelled.first().map_or("virtual time", String::as_str)
        )
    } else {
        "These figures were measured on this machine's wall clock; a loaded or different machine will shift them.".to_string()
    });
    out
}
