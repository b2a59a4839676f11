//! Top-N per window as Flink SQL's window Top-N: the records through a `TUMBLE` / `HOP`
//! window table function, numbered per window by the ranked value (largest first) with
//! `ROW_NUMBER`, those numbered up to `n` kept; emitted once, when the watermark passes the
//! window's end.
//!
//! Flink's window Top-N takes `ROW_NUMBER` only (no `RANK`), so it keeps exactly `n` records a
//! window where streamlab's rule keeps every record tied at the boundary (SQL's `RANK() <= n`):
//! ties are broken by `seq` (the earlier record first), and the run is checked against the
//! reference with the same tie-break ([`crate::outputs::real_engine_reference`]).

use streamlab_engines::pipeline::{PipelineSpec, TopNSpec};

use super::refusal::FlinkRefusal;
use super::sql::{column, source, window_tvf, PipelineSql};

/// Translates the top-N `t` of pipeline `p` (its front: kinds, `where`, `convert`, lookup join).
pub(super) fn translate(p: &PipelineSpec, t: &TopNSpec) -> Result<PipelineSql, FlinkRefusal> {
    let view = format!(
        "CREATE TEMPORARY VIEW ranked_input AS\nSELECT seq, {} AS v, arrival_ns, event_ts\n{}",
        column(p, t.by, true),
        source(p)
    );
    let window = window_tvf("ranked_input", t.window, "top_n.window")?;
    Ok(PipelineSql {
        sink_columns: vec![
            "shape STRING".into(),
            "left_seq BIGINT".into(),
            "right_seq BIGINT".into(),
            "window_start_ms TIMESTAMP_LTZ(3)".into(),
            "origin_arrival_ns BIGINT".into(),
        ],
        views: vec![view],
        insert: format!(
            "INSERT INTO receiver\n\
             SELECT 'ranked', seq, CAST(-1 AS BIGINT), CAST(window_start AS TIMESTAMP_LTZ(3)), arrival_ns\n\
             FROM (\n\
             \x20 SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY v DESC, seq ASC) AS rownum\n\
             \x20 FROM TABLE({window})\n\
             )\n\
             WHERE rownum <= {}",
            t.n
        ),
    })
}
