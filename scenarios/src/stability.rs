//! Whether a run kept up with its input: the judgements shared by the capacity search (is a
//! probe stable?) and the summary (the run's `stability` and the note that explains it).
//!
//! Two different things are both called "falling behind" and must not be confused. A
//! micro-batch query whose batches take longer than its trigger interval runs them back to
//! back (Spark logs "Current batch is falling behind"): latency then floors at the per-batch
//! cost, and as long as each batch reads what arrived during the previous one the backlog and
//! latency stay bounded — it falls behind the *trigger* but keeps up with the *input*. A query
//! that cannot keep up is one whose backlog and latency grow for as long as the input lasts.
//! [`judge`] tells them apart by what was measured (unread events at the end, how long after
//! the input ended the last event was read, the input each batch read, the latency trend), not
//! by the trigger rule alone. Latency that rises while every event is read as it arrives is
//! not a backlog: a join or window that holds records back makes later outputs wait longer.
//!
//! [`stability`] is the capacity search's stricter rule: a probe whose batches overrun their
//! interval in more than 10 % of batches is not a sustainable rate for that configuration.

use streamlab_engines::latency::TIMELINE_BUCKET;
use streamlab_engines::run::EngineRun;
use streamlab_engines::time::{Nanos, NANOS_PER_MS};
use streamlab_reports::summary::Stability;

/// Judges a finished run of `events` events that arrived during `duration` for the capacity
/// search: it is stable when it has output, read every event, no more than 10 % of its batches
/// fell behind, and its latency does not grow ([`latency_grows`]; see [`crate::capacity`]).
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
    if mostly_behind(run) {
        return Err(format!(
            "{} of {} batches took longer than the trigger interval",
            run.counts.falling_behind, run.counts.batches
        ));
    }
    if let Some((middle, last)) = latency_grows(run, duration) {
        return Err(format!(
            "latency grows: {middle:.1} ms in the middle third, {last:.1} ms in the last"
        ));
    }
    Ok(())
}

/// Whether the run of `events` events over `duration` kept up with its input, and the note
/// that says why in the user's terms (`None` for a run that simply kept up, or had no output:
/// an empty run is explained elsewhere).
pub fn judge(run: &EngineRun, events: u64, duration: Nanos) -> (Stability, Option<String>) {
    if run.counts.outputs == 0 {
        return (Stability::NoOutput, None);
    }
    if events > run.counts.events + 1 {
        return (
            Stability::CannotKeepUp,
            Some(format!(
                "cannot keep up: {} of {events} events were still unread when the run ended; the backlog grew \
                 faster than the engine read it",
                events - run.counts.events
            )),
        );
    }
    let lag = backlog_at_end(run, duration);
    let growth = latency_grows(run, duration);
    if let (Some((middle, last)), Some(lag)) = (growth, lag) {
        return (
            Stability::CannotKeepUp,
            Some(format!(
                "cannot keep up: latency grows ({middle:.1} ms on average in the middle third of the run, {last:.1} ms \
                 in the last) and the last event was read {:.1} s after the input ended: the backlog grows for as long \
                 as the input lasts, and a longer run would show higher percentiles",
                lag as f64 / 1e9
            )),
        );
    }
    if run.counts.falling_behind > 0 {
        if let Some((first, last)) = backlog_grows(run, duration) {
            return (
                Stability::CannotKeepUp,
                Some(format!(
                    "cannot keep up: the backlog grows; batches read {first} events at first and {last} in the last"
                )),
            );
        }
    }
    if mostly_behind(run) {
        return (
            Stability::BehindTrigger,
            Some(format!(
                "falling behind the trigger but keeping up with the input: {} of {} batches took longer than the \
                 trigger interval, so each started as soon as the previous one ended (Spark's \"Current batch is \
                 falling behind\"), while the backlog and latency stayed bounded. The interval is below the per-batch \
                 cost: latency floors at that cost, and a shorter interval cannot lower it",
                run.counts.falling_behind, run.counts.batches
            )),
        );
    }
    if let Some((middle, last)) = growth {
        return (
            Stability::KeepsUp,
            Some(format!(
                "keeps up: latency rises over the run ({middle:.1} ms on average in the middle third, {last:.1} ms in \
                 the last), but every event was read as it arrived (no backlog when the input ended): the rise comes \
                 from what the pipeline holds back (a join's or a window's wait), not from falling behind"
            )),
        );
    }
    (Stability::KeepsUp, None)
}

/// How long after the input ended (`duration`) the engine read or finished processing its
/// last event, when that is more than 2 s and a tenth of the input's duration: a backlog at the
/// end of the input. `None` when the engine was caught up.
fn backlog_at_end(run: &EngineRun, duration: Nanos) -> Option<Nanos> {
    let lag = run.active_span.1.saturating_sub(duration);
    let slack = (2_000 * NANOS_PER_MS).max(duration / 10);
    (lag > slack).then_some(lag)
}

/// More than 10 % of the batches took longer than the trigger interval.
fn mostly_behind(run: &EngineRun) -> bool {
    run.counts.batches > 0 && run.counts.falling_behind * 10 > run.counts.batches
}

/// The mean latency of the middle and last thirds of the run, in ms, when the last is more
/// than 50 % (and 100 ms) above the middle: latency that keeps growing.
pub fn latency_grows(run: &EngineRun, duration: Nanos) -> Option<(f64, f64)> {
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
    let (middle, last) = (mean(third, 2 * third)?, mean(2 * third, 3 * third)?);
    (last > middle * 1.5 && last - middle > 100.0 * NANOS_PER_MS as f64).then(|| (middle / 1e6, last / 1e6))
}

/// The events read by the first and the last data batch that started while the input was
/// still arriving (the very first, which sees only what arrived at the start, left out; so are
/// the drain's batches, which read a shrinking remainder), when the last read more than half as
/// much again: a micro-batch backlog that grows. `None` for runs without batch progress.
fn backlog_grows(run: &EngineRun, duration: Nanos) -> Option<(u64, u64)> {
    let input_ms = duration as f64 / NANOS_PER_MS as f64;
    let rows: Vec<u64> = run
        .progress
        .iter()
        .filter(|p| p["timestamp"].as_f64().is_none_or(|t| t < input_ms))
        .filter_map(|p| p["numInputRows"].as_u64())
        .filter(|&rows| rows > 0)
        .collect();
    let rows = if rows.len() > 2 { &rows[1..] } else { &rows[..] };
    let (&first, &last) = (rows.first()?, rows.last()?);
    (last > first * 3 / 2).then_some((first, last))
}
