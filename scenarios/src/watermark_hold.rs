//! Why a per-record run delivered nothing, or stopped delivering: a source subtask that holds
//! the watermark.
//!
//! A window closes when the watermark passes its end, and the watermark a window subtask sees
//! is the minimum over the source subtasks feeding it. A source subtask that emits no
//! watermark — with more subtasks than partitions, subtask `k` owns the partitions `p` with
//! `p % parallelism == k`, and some own none — keeps that minimum where it is. Flink's Kafka
//! source does exactly this (a subtask without a partition does not go idle by itself), so
//! the engine is faithful; what the user needs is to be told which subtask holds the
//! watermark and what lets it go: `idle_timeout` (`withIdleness`), parallelism at most the
//! partition count, or a source that marks itself idle.
//!
//! Judged from the run's measured per-subtask watermark progress (`"type": "watermark"`
//! records), not from the configuration alone.

use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::run::EngineRun;

/// A subtask that stopped emitting watermarks this long (ms) before the last one did holds it.
const STALL_MS: f64 = 5_000.0;

/// The note explaining a held watermark, when the run shows one and nothing skips idle
/// subtasks; `None` otherwise.
pub(crate) fn explain(cfg: &DataflowConfig, run: &EngineRun, partitions: Option<usize>) -> Option<String> {
    if cfg.idle_timeout.is_some() {
        return None;
    }
    let n = cfg.parallelism;
    // The time (ms) and value of each source subtask's last watermark.
    let mut last: Vec<Option<(f64, i64)>> = vec![None; n];
    for p in run.progress.iter().filter(|p| p["type"] == "watermark") {
        let (Some(i), Some(t), Some(wm)) = (p["subtask"].as_u64(), p["timeMs"].as_f64(), p["watermark"].as_i64())
        else {
            continue;
        };
        if let Some(slot) = last.get_mut(i as usize) {
            *slot = Some((t, wm));
        }
    }
    let latest = last.iter().flatten().map(|&(t, _)| t).fold(f64::NEG_INFINITY, f64::max);
    if !latest.is_finite() {
        return None;
    }
    let never: Vec<usize> = (0..n).filter(|&i| last[i].is_none()).collect();
    let stopped: Vec<(usize, f64, i64)> = (0..n)
        .filter_map(|i| last[i].map(|(t, wm)| (i, t, wm)))
        .filter(|&(_, t, _)| latest - t > STALL_MS)
        .collect();
    if never.is_empty() && stopped.is_empty() {
        return None;
    }
    // Only worth telling when it cost results: no output, or the run's final watermark (the
    // minimum its windows saw) stuck well behind what the leading subtask reached.
    let leading = last.iter().flatten().map(|&(_, wm)| wm).max().unwrap_or(i64::MIN);
    let held = (run.final_watermark as f64) < leading as f64 - STALL_MS;
    if run.counts.outputs > 0 && !held {
        return None;
    }
    let mut why = Vec::new();
    if !never.is_empty() {
        let owns_none = partitions.is_some_and(|p| p < n);
        why.push(format!(
            "source subtask{} {} of {n} never emitted a watermark{}",
            if never.len() > 1 { "s" } else { "" },
            list(&never),
            match partitions {
                Some(p) if owns_none => format!(
                    " (with {p} source partition{} and parallelism {n}, subtask k reads the partitions with \
                     p % {n} == k, so {} none)",
                    if p == 1 { "" } else { "s" },
                    if never.len() > 1 { "they read" } else { "it reads" }
                ),
                _ => String::new(),
            }
        ));
    }
    for &(i, t, wm) in &stopped {
        why.push(format!(
            "source subtask {i} of {n} emitted its last watermark ({wm} ms of event time) at {:.1} s, {:.1} s before the \
             others stopped",
            t / 1e3,
            (latest - t) / 1e3
        ));
    }
    let effect = if run.counts.outputs == 0 {
        "so the watermark downstream, the minimum over the source subtasks, never passed a window's end and no window \
         result was produced"
    } else {
        "so the watermark downstream, the minimum over the source subtasks, stopped there and later windows did not close"
    };
    let fewer = partitions.map_or_else(
        || "set `parallelism` to at most the source's partition count".to_string(),
        |p| format!("set `parallelism` to at most the partition count ({p})"),
    );
    Some(format!(
        "{}: {}, {effect}. Flink's Kafka source does the same: a subtask without records does not go idle by itself. \
         Remedies: set `idle_timeout` (e.g. idle_timeout = \"1s\", Flink's withIdleness) so an idle subtask is left out \
         of the minimum; {fewer}; or use a source that marks itself idle",
        if run.counts.outputs == 0 { "no window result" } else { "the watermark stalled" },
        why.join("; ")
    ))
}

fn list(items: &[usize]) -> String {
    items.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlab_engines::run::RunCounts;

    fn run(progress: Vec<serde_json::Value>, outputs: u64) -> EngineRun {
        EngineRun {
            delivered: Vec::new(),
            side_output: Vec::new(),
            latency: streamlab_engines::latency::LatencyRecorder::new(&[]),
            progress,
            counts: RunCounts {
                outputs,
                ..Default::default()
            },
            active_span: (0, 0),
            final_watermark: 0,
            modelled: Vec::new(),
            notes: Vec::new(),
            failures: Vec::new(),
            resident: None,
        }
    }

    fn wm(subtask: usize, t: f64, wm: i64) -> serde_json::Value {
        serde_json::json!({"type": "watermark", "subtask": subtask, "timeMs": t, "watermark": wm})
    }

    fn cfg(parallelism: usize) -> DataflowConfig {
        DataflowConfig {
            parallelism,
            ..Default::default()
        }
    }

    #[test]
    fn a_subtask_without_a_partition_is_named_with_the_remedies() {
        let r = run(vec![wm(0, 200.0, 0), wm(0, 400.0, 200)], 0);
        let note = explain(&cfg(2), &r, Some(1)).unwrap();
        assert!(
            note.starts_with("no window result: source subtask 1 of 2 never emitted a watermark"),
            "{note}"
        );
        for remedy in ["`idle_timeout`", "at most the partition count (1)", "marks itself idle"] {
            assert!(note.contains(remedy), "{remedy}: {note}");
        }
    }

    #[test]
    fn idle_timeout_or_every_subtask_emitting_means_nothing_to_explain() {
        let r = run(vec![wm(0, 200.0, 0)], 0);
        let mut idle = cfg(2);
        idle.idle_timeout = Some(streamlab_engines::time::Span::from_ms(1000));
        assert_eq!(explain(&idle, &r, Some(1)), None);
        let both = run(vec![wm(0, 200.0, 0), wm(1, 200.0, 0)], 10);
        assert_eq!(explain(&cfg(2), &both, Some(2)), None);
    }

    #[test]
    fn a_subtask_that_stops_emitting_stalls_the_watermark() {
        let r = run(
            vec![wm(0, 1_000.0, 800), wm(1, 1_000.0, 800), wm(1, 20_000.0, 19_800)],
            5,
        );
        let note = explain(&cfg(2), &r, Some(2)).unwrap();
        assert!(
            note.starts_with("the watermark stalled: source subtask 0 of 2"),
            "{note}"
        );
    }
}
