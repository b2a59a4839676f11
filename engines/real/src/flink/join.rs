//! A stream-stream join as Flink SQL: each input a view of the `events` table (its kinds, its
//! `where`, its key as `k`), joined the way Flink SQL joins two streams.
//!
//! * **Interval join** — `r.event_ts BETWEEN l.event_ts + lower AND l.event_ts + upper` on
//!   both rowtimes, which Flink plans as its time-interval join: state kept per side until the
//!   watermark passes the bound; an outer join's unmatched row is emitted when its state
//!   expires (the timer), null-padded.
//! * **Window join** — both inputs through the same `TUMBLE` / `HOP` window table function,
//!   joined on key, `window_start` and `window_end`: pairs (and an outer join's unmatched rows)
//!   emitted when the watermark passes the window's end.
//! * **Unbounded join** — a regular join on the key, with no time condition: both sides kept
//!   in state for ever, as streamlab's rule says. The views leave the rowtime out (a regular
//!   join refuses rowtime attributes in its inputs).
//!
//! Every result is one receiver row of the record contract ([`crate::job::sink_columns`]):
//! `shape`, `left_seq`, `right_seq` (`-1` for the absent side), `window_start_ms` (a window
//! join's pair; 0 otherwise: streamlab identifies outer rows without a window) and the
//! later-arriving record's `arrival_ns`. Flink's bounded source ends with a final watermark,
//! so every unmatched row the input owes is emitted by the end.

use std::fmt::Write as _;

use streamlab_engines::pipeline::{JoinInput, JoinKind, JoinSpec, JoinType};
use streamlab_engines::time::Span;

use super::refusal::FlinkRefusal;
use super::sql::{condition, interval, raw_column, window_tvf, PipelineSql};

/// The view of one join input: `seq`, the key as `k`, `arrival_ns` and (for a timed join) the
/// rowtime `event_ts`.
fn input_view(name: &str, input: &JoinInput, timed: bool) -> String {
    let kinds: Vec<String> = input.kinds.iter().map(|k| format!("'{}'", k.name())).collect();
    let mut conditions = vec![format!("kind IN ({})", kinds.join(", "))];
    conditions.extend(input.predicates.iter().map(condition));
    let mut view = format!(
        "CREATE TEMPORARY VIEW {name} AS\nSELECT seq, {} AS k, arrival_ns",
        raw_column(input.key, true)
    );
    if timed {
        view.push_str(", event_ts");
    }
    let _ = write!(view, "\nFROM events\nWHERE {}", conditions.join(" AND "));
    view
}

/// `l.event_ts` moved by `ms` (`- INTERVAL` for a negative bound).
fn shifted(ms: i64, key: &str) -> Result<String, FlinkRefusal> {
    Ok(match ms {
        0 => "l.event_ts".into(),
        ms if ms < 0 => format!("l.event_ts - {}", interval(key, Span::from_ms(ms.unsigned_abs()))?),
        ms => format!("l.event_ts + {}", interval(key, Span::from_ms(ms as u64))?),
    })
}

/// Translates the join `j`.
pub(super) fn translate(j: &JoinSpec) -> Result<PipelineSql, FlinkRefusal> {
    let timed = j.kind != JoinKind::Unbounded;
    let views = vec![
        input_view("left_input", &j.left, timed),
        input_view("right_input", &j.right, timed),
    ];
    let (from_left, from_right, on) = match j.kind {
        JoinKind::Interval => {
            let (lo, hi) = j.bounds();
            (
                "left_input".to_string(),
                "right_input".to_string(),
                format!(
                    "l.k = r.k AND r.event_ts BETWEEN {} AND {}",
                    shifted(lo, "join.lower")?,
                    shifted(hi, "join.upper")?
                ),
            )
        }
        JoinKind::Window => {
            let w = j.window.expect("a window join has a window (validated)");
            (
                format!("(SELECT * FROM TABLE({}))", window_tvf("left_input", w, "join.window")?),
                format!(
                    "(SELECT * FROM TABLE({}))",
                    window_tvf("right_input", w, "join.window")?
                ),
                "l.k = r.k AND l.window_start = r.window_start AND l.window_end = r.window_end".to_string(),
            )
        }
        JoinKind::Unbounded => ("left_input".into(), "right_input".into(), "l.k = r.k".into()),
    };
    // A window's start as the receiver's `TIMESTAMP_LTZ(3)` (written as epoch milliseconds; the
    // cast from the window TVF's `TIMESTAMP(3)` undoes the session time zone).
    let (window_start, no_window, window_type) = match j.kind {
        JoinKind::Window => (
            "CAST(l.window_start AS TIMESTAMP_LTZ(3))",
            "TO_TIMESTAMP_LTZ(0, 3)",
            "TIMESTAMP_LTZ(3)",
        ),
        _ => ("CAST(0 AS BIGINT)", "CAST(0 AS BIGINT)", "BIGINT"),
    };
    let (join, select) = match j.join_type {
        JoinType::Inner => (
            "JOIN",
            format!("'pair', l.seq, r.seq, {window_start}, GREATEST(l.arrival_ns, r.arrival_ns)"),
        ),
        JoinType::LeftOuter => (
            "LEFT JOIN",
            format!(
                "CASE WHEN r.seq IS NULL THEN 'left_only' ELSE 'pair' END, l.seq, COALESCE(r.seq, -1), \
                 CASE WHEN r.seq IS NULL THEN {no_window} ELSE {window_start} END, \
                 GREATEST(l.arrival_ns, COALESCE(r.arrival_ns, 0))"
            ),
        ),
        JoinType::RightOuter => (
            "RIGHT JOIN",
            format!(
                "CASE WHEN l.seq IS NULL THEN 'right_only' ELSE 'pair' END, COALESCE(l.seq, -1), r.seq, \
                 CASE WHEN l.seq IS NULL THEN {no_window} ELSE {window_start} END, \
                 GREATEST(COALESCE(l.arrival_ns, 0), r.arrival_ns)"
            ),
        ),
    };
    Ok(PipelineSql {
        sink_columns: vec![
            "shape STRING".into(),
            "left_seq BIGINT".into(),
            "right_seq BIGINT".into(),
            format!("window_start_ms {window_type}"),
            "origin_arrival_ns BIGINT".into(),
        ],
        views,
        insert: format!(
            "INSERT INTO receiver\nSELECT {select}\nFROM {from_left} AS l\n{join} {from_right} AS r\nON {on}"
        ),
    })
}
