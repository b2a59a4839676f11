//! A stream-stream join as PySpark DataFrame calls: each input a view of the event stream (its
//! kinds, its `where`, its key), joined as Structured Streaming joins two streams.
//!
//! * **Interval join** — a time-range condition on both event times
//!   (`r_ts >= l_ts + lower AND r_ts <= l_ts + upper`) with a watermark on both sides
//!   (`WATERMARK_DELAY`), which Spark needs to clean state and, for an outer join, to emit an
//!   unmatched row: once the watermark (the minimum over the two inputs') passes the bound, a
//!   batch after the row arrived. The last unmatched rows of the input wait for a watermark that
//!   never comes (the check expects only those the final watermark settles).
//! * **Window join** — both inputs given the same `window(...)` column and joined on key and
//!   window: one pair per shared window (a sliding window repeats a record in each of its
//!   windows, as Spark's `window` expands it).
//! * **Unbounded join** — an inner join on the key with no time condition and no watermark:
//!   Spark keeps both sides for ever, as streamlab's rule says.
//!
//! Every result is one receiver row of the record contract ([`crate::job::sink_columns`]).
//! Spark runs stream-stream joins in append mode only; the engine's validation refuses another
//! output mode first.

use std::fmt::Write as _;

use streamlab_engines::pipeline::{JoinInput, JoinKind, JoinSpec, JoinType};
use streamlab_engines::time::Span;

use super::refusal::SparkRefusal;
use super::translate::{column, pipeline_interval, py_str, selection, window_column};

/// The lines building one input (`l` or `r`): its rows, its key, arrival and (timed) event
/// time and watermark.
fn input(out: &mut String, side: &str, input: &JoinInput, j: &JoinSpec) -> Result<(), SparkRefusal> {
    let name = if side == "l" { "left" } else { "right" };
    selection(out, name, "events", Some(&input.kinds), &input.predicates);
    let _ = writeln!(out, "    {name} = {name}.select(");
    let _ = writeln!(out, "        F.col(\"seq\").alias(\"{side}_seq\"),");
    let _ = writeln!(out, "        {}.alias(\"{side}_key\"),", column(input.key, true));
    let _ = writeln!(out, "        F.col(\"arrival_ns\").alias(\"{side}_arrival\"),");
    if j.kind != JoinKind::Unbounded {
        let _ = writeln!(
            out,
            "        F.timestamp_millis(\"event_time_ms\").alias(\"{side}_ts\"),"
        );
    }
    out.push_str("    )\n");
    match (j.kind, j.window) {
        (JoinKind::Unbounded, _) => {}
        (JoinKind::Window, Some(w)) => {
            let window = window_column(&format!("{side}_ts"), w, "join.window")?;
            let _ = writeln!(out, "    {name} = {name}.withWatermark(\"{side}_ts\", WATERMARK_DELAY)");
            let _ = writeln!(out, "    {name} = {name}.withColumn(\"{side}_w\", {window})");
        }
        _ => {
            let _ = writeln!(out, "    {name} = {name}.withWatermark(\"{side}_ts\", WATERMARK_DELAY)");
        }
    }
    Ok(())
}

/// `l_ts` moved by `ms`, in Spark SQL.
fn shifted(ms: i64, key: &str) -> Result<String, SparkRefusal> {
    Ok(match ms {
        0 => "l_ts".into(),
        ms if ms < 0 => format!(
            "l_ts - INTERVAL {}",
            pipeline_interval(key, Span::from_ms(ms.unsigned_abs()))?
        ),
        ms => format!("l_ts + INTERVAL {}", pipeline_interval(key, Span::from_ms(ms as u64))?),
    })
}

/// The join's lines of the `pipeline` function, ending with its `return`.
pub(super) fn translate(out: &mut String, j: &JoinSpec) -> Result<(), SparkRefusal> {
    input(out, "l", &j.left, j)?;
    input(out, "r", &j.right, j)?;
    let on = match j.kind {
        JoinKind::Interval => {
            let (lo, hi) = j.bounds();
            format!(
                "l_key = r_key AND r_ts >= {} AND r_ts <= {}",
                shifted(lo, "join.lower")?,
                shifted(hi, "join.upper")?
            )
        }
        JoinKind::Window => "l_key = r_key AND l_w = r_w".into(),
        JoinKind::Unbounded => "l_key = r_key".into(),
    };
    let how = match j.join_type {
        JoinType::Inner => "inner",
        JoinType::LeftOuter => "left_outer",
        JoinType::RightOuter => "right_outer",
    };
    let _ = writeln!(
        out,
        "    joined = left.join(right, F.expr({}), {})",
        py_str(&on),
        py_str(how)
    );
    let window_start = if j.kind == JoinKind::Window {
        "F.unix_millis(F.col(\"l_w.start\"))"
    } else {
        "F.lit(0)"
    };
    out.push_str("    return joined.select(\n");
    match j.join_type {
        JoinType::Inner => {
            out.push_str("        F.lit(\"pair\").alias(\"shape\"),\n");
            out.push_str("        F.col(\"l_seq\").alias(\"left_seq\"),\n");
            out.push_str("        F.col(\"r_seq\").alias(\"right_seq\"),\n");
            let _ = writeln!(out, "        {window_start}.alias(\"window_start_ms\"),");
        }
        JoinType::LeftOuter | JoinType::RightOuter => {
            let (absent, shape) = match j.join_type {
                JoinType::LeftOuter => ("r_seq", "left_only"),
                _ => ("l_seq", "right_only"),
            };
            let _ = writeln!(
                out,
                "        F.when(F.col(\"{absent}\").isNull(), \"{shape}\").otherwise(\"pair\").alias(\"shape\"),"
            );
            out.push_str("        F.coalesce(F.col(\"l_seq\"), F.lit(-1)).alias(\"left_seq\"),\n");
            out.push_str("        F.coalesce(F.col(\"r_seq\"), F.lit(-1)).alias(\"right_seq\"),\n");
            let _ = writeln!(
                out,
                "        F.when(F.col(\"{absent}\").isNull(), F.lit(0)).otherwise({window_start}).alias(\"window_start_ms\"),"
            );
        }
    }
    out.push_str("        F.greatest(F.col(\"l_arrival\"), F.col(\"r_arrival\")).alias(\"origin_arrival_ns\"),\n");
    out.push_str("    )\n");
    Ok(())
}
