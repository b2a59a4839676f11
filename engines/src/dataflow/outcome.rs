//! Turning finished subtasks into an [`EngineRun`]: the same for every driver, so the live and
//! the simulated per-record engine report identically.

pub use crate::dataflow::tasks::WindowOutcome;
use crate::dataflow::tasks::{SinkOperator, SourceStats};
use crate::run::{EngineRun, RunCounts};
use crate::time::{as_ms, EventTime, Nanos};

/// Assembles the run of per-record engine `name` from its one sink, its source subtasks'
/// statistics and its window subtasks' outcomes.
pub fn assemble(
    name: &str,
    sink: SinkOperator,
    sources: Vec<SourceStats>,
    windows: Vec<WindowOutcome>,
    modelled: Vec<String>,
) -> EngineRun {
    let final_watermark = if windows.is_empty() {
        sources.iter().filter_map(|s| s.watermark_log.last().map(|w| w.1)).min()
    } else {
        windows.iter().map(|w| w.watermark).min()
    }
    .unwrap_or(EventTime::MIN);
    let mut progress: Vec<(Nanos, usize, EventTime)> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.watermark_log.iter().map(move |&(t, wm)| (t, i, wm)))
        .collect();
    progress.sort_unstable();
    let counts = RunCounts {
        events: sources.iter().map(|s| s.events_read).sum(),
        outputs: sink.delivered_total,
        late_dropped: windows.iter().map(|w| w.late_dropped).sum(),
        buffers_sent: sources.iter().map(|s| s.buffers_sent).sum::<u64>()
            + windows.iter().map(|w| w.buffers_sent).sum::<u64>(),
        state_accesses: windows.iter().map(|w| w.state_accesses).sum(),
        state_access_ns: windows.iter().map(|w| w.state_access_ns).sum(),
        peak_state_rows: windows.iter().map(|w| w.peak_state_rows).sum(),
        ..Default::default()
    };
    EngineRun {
        latency: sink.latency,
        delivered: sink.delivered,
        side_output: windows.into_iter().flat_map(|w| w.side_output).collect(),
        progress: progress
            .into_iter()
            .map(|(t, i, wm)| {
                serde_json::json!({"run": name, "type": "watermark", "subtask": i, "timeMs": as_ms(t), "watermark": wm})
            })
            .collect(),
        counts,
        active_span: (0, sources.iter().map(|s| s.last_read_at).max().unwrap_or(0)),
        final_watermark,
        modelled,
        notes: Vec::new(),
        failures: Vec::new(),
        resident: None,
    }
}
