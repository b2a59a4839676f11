//! A second aggregation over the first one's window results (Nexmark q5's hot items) as Flink
//! SQL: a window aggregation over a window aggregation, which Flink SQL cascades through the
//! first one's `window_time`.
//!
//! * `first_stage` — the first aggregation per key and window, its window renamed
//!   (`first_start`, `first_end`) and its `window_time` kept as the rowtime `rowtime`;
//! * `second_stage` — the second function over every first result of a window: a `TUMBLE` on
//!   `rowtime` the length of the first windows' step (their size, or a sliding window's slide),
//!   so each tumble holds exactly the results of one first window (they end together);
//! * without `keep_matching`, one row per window (key 0); with it, the first results whose value
//!   attains the second's, a regular join of the two on the window and the value (both sides
//!   insert-only, so its results are too; the rowtime is projected away first, as a regular
//!   join requires).

use streamlab_engines::pipeline::{AggFunc, Aggregation, ThenSpec, WindowSpec};

use super::refusal::FlinkRefusal;
use super::sql::interval;

/// The views and the `INSERT` after the `keyed` view: `window` is the first aggregation's
/// window table function over it, `value` its value expression.
pub(super) fn translate(
    a: &Aggregation,
    t: &ThenSpec,
    window: &str,
    value: &str,
) -> Result<(Vec<String>, String), FlinkRefusal> {
    let step = match a.window {
        WindowSpec::Tumbling { size } => interval("aggregate.window.size", size)?,
        WindowSpec::Sliding { slide, .. } => interval("aggregate.window.slide", slide)?,
        WindowSpec::Session { .. } => unreachable!("`then` over session windows is refused by validation"),
    };
    let first = format!(
        "CREATE TEMPORARY VIEW first_stage AS\n\
         SELECT `key`, window_start AS first_start, window_end AS first_end, window_time AS rowtime, \
         COUNT(*) AS c, {value} AS val, MAX(arrival_ns) AS arrival_ns\n\
         FROM TABLE({window})\n\
         GROUP BY `key`, window_start, window_end, window_time"
    );
    let answer = match t.function {
        AggFunc::Count => "COUNT(*)",
        AggFunc::Sum => "SUM(val)",
        AggFunc::Min => "MIN(val)",
        AggFunc::Max => "MAX(val)",
        AggFunc::Avg => "AVG(CAST(val AS DOUBLE))",
        AggFunc::DistinctCount => "COUNT(DISTINCT val)",
    };
    let second = format!(
        "CREATE TEMPORARY VIEW second_stage AS\n\
         SELECT MAX(first_start) AS first_start, window_end AS first_end, COUNT(*) AS n, {answer} AS answer, \
         MAX(arrival_ns) AS arrival_ns\n\
         FROM TABLE(TUMBLE(TABLE first_stage, DESCRIPTOR(rowtime), {step}))\n\
         GROUP BY window_start, window_end"
    );
    let insert = if t.keep_matching {
        "INSERT INTO receiver\n\
         SELECT f.`key`, f.first_start, f.first_end, f.c, CAST(f.val AS DOUBLE), FALSE, f.arrival_ns\n\
         FROM (SELECT `key`, first_start, first_end, c, val, arrival_ns FROM first_stage) AS f\n\
         JOIN (SELECT first_start, first_end, answer FROM second_stage) AS s\n\
         ON f.first_start = s.first_start AND f.first_end = s.first_end AND f.val = s.answer"
            .to_string()
    } else {
        "INSERT INTO receiver\n\
         SELECT CAST(0 AS BIGINT), first_start, first_end, n, CAST(answer AS DOUBLE), FALSE, arrival_ns\n\
         FROM second_stage"
            .to_string()
    };
    Ok((vec![first, second], insert))
}
