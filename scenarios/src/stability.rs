//! Whether a run kept up: the one judgement shared by the capacity search (is a probe stable?)
//! and the summary (a note when a run was not).

use streamlab_engines::latency::TIMELINE_BUCKET;
use streamlab_engines::run::EngineRun;
use streamlab_engines::time::{Nanos, NANOS_PER_MS};

/// Judges a finished run of `events` events that arrived during `duration`: it is stable when
/// it has output, read every event, no more than 10 % of its batches fell behind, and the
/// latency of its last third is not more than 50 % (and 100 ms) above its middle third's (see
/// [`crate::capacity`]).
pub fn stability(run: &EngineRun, events: u64, duration: Nanos) -> Result<(), String> {
    if run.counts.outputs == 0 {
        return Err("no output, so no latency to judge (is the run shorter than a window?)".into());
    }
    if run.counts.events < events {
        return Err(format!(
            "{} of {} events still unread at the end",
            events - run.counts.events,
            events
        ));
    }
    if run.counts.batches > 0 && run.counts.falling_behind * 10 > run.counts.batches {
        return Err(format!(
            "{} of {} batches took longer than the trigger interval",
            run.counts.falling_behind, run.counts.batches
        ));
    }
    let third = (duration / 3 / TIMELINE_BUCKET) as usize;
    let mean = |from: usize, to: usize| {
        let buckets = run
            .latency
            .timeline
            .get(from..to.min(run.latency.timeline.len()))
            .unwrap_or(&[]);
        let (n, sum) = buckets.iter().fold((0u64, 0u128), |(n, s), b| (n + b.count, s + b.sum));
        (n > 0).then(|| sum as f64 / n as f64)
    };
    if let (Some(middle), Some(last)) = (mean(third, 2 * third), mean(2 * third, 3 * third)) {
        if last > middle * 1.5 && last - middle > 100.0 * NANOS_PER_MS as f64 {
            return Err(format!(
                "latency grows: {:.1} ms in the middle third, {:.1} ms in the last",
                middle / 1e6,
                last / 1e6
            ));
        }
    }
    Ok(())
}
