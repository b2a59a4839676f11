//! A streamlab pipeline as Flink SQL over the `events` and `receiver` tables.
//!
//! Flink SQL rather than the DataStream API through Python: the whole job then runs in the JVM,
//! with no Python function per record, and the plan is Flink's own (its window operators, its
//! watermarks). Each streamlab step is one clause:
//! * filter — `WHERE kind IN (...)`;
//! * lookup join — `LATERAL TABLE(campaign_of(ad))`, a table function of the helper jar holding
//!   the campaign table: one row for a known ad, none otherwise (an inner join). A regular
//!   streaming join against a campaign table would drop the rowtime attribute (no window could
//!   follow) and keep both sides in state forever;
//! * key-by and aggregate value — a view `keyed` with `key`, `v`, `arrival_ns`, `event_ts`;
//! * windows — the window table functions `TUMBLE`, `HOP`, `SESSION` on the rowtime `event_ts`,
//!   grouped by key and window: final results, emitted once when the watermark passes a window.
//!
//! The event kind, as a key or an aggregated value, is its index (a `CASE`), as streamlab's
//! engines number it; projected, it is its name.

use std::fmt::Write as _;

use streamlab_engines::event::EventKind;
use streamlab_engines::nexmark;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Convert, Field, PipelineSpec, Predicate, WindowSpec};
use streamlab_engines::time::Span;

use super::refusal::{millis, FlinkRefusal};
use crate::job::{convert_may_wrap, feeder_column, number_list, PredicateTest, SLOT_MODULUS};

/// The translated pipeline: the receiver's columns, the views, and the `INSERT`.
pub(super) struct PipelineSql {
    /// The column list of the `receiver` table (names of [`crate::job::sink_columns`]).
    pub sink_columns: Vec<String>,
    /// `CREATE TEMPORARY VIEW` statements, in order.
    pub views: Vec<String>,
    /// The `INSERT INTO receiver ...` that is the job.
    pub insert: String,
}

/// A column name as Flink SQL needs it: names that are reserved words, and the Nexmark fields'
/// names (several are: `STATE`, `NAME`, `URL` ...), quoted.
pub(super) fn ident(name: &str) -> String {
    let nexmark = Field::ALL
        .iter()
        .any(|&f| f.name() == name && nexmark::slot(f).is_some());
    match name {
        "partition" | "user" | "session" | "key" | "count" | "value" => format!("`{name}`"),
        _ if nexmark => format!("`{name}`"),
        _ => name.to_string(),
    }
}

/// A field as an expression of the (joined) event row as the feeder sent it: its column
/// ([`feeder_column`]: a Nexmark field's slot); `numeric` asks for the event kind as its index
/// (a key, an aggregated or a tested value), not its name.
pub(super) fn raw_column(f: Field, numeric: bool) -> String {
    match f {
        Field::Partition => "CAST(`partition` AS BIGINT)".into(),
        Field::Kind if numeric => {
            let mut case = String::from("CASE kind");
            for k in EventKind::ALL {
                let _ = write!(case, " WHEN '{}' THEN {}", k.name(), k.index());
            }
            case.push_str(" END");
            case
        }
        other => ident(feeder_column(other)),
    }
}

/// A field as an expression of the converted row (after `convert`, which rewrites one slot
/// column: every field that slot carries reads the converted value, as in the reference).
pub(super) fn column(p: &PipelineSpec, f: Field, numeric: bool) -> String {
    match &p.convert {
        Some(c) if f != Field::Kind && feeder_column(f) == feeder_column(c.field) => converted(c),
        _ => raw_column(f, numeric),
    }
}

/// A `convert` as an expression: integer arithmetic rounding toward zero (the `CAST` to
/// `BIGINT` truncates whatever type Flink gives the quotient), wrapped to the 32-bit slot only
/// where it may leave it ([`convert_may_wrap`]; `MOD` keeps the dividend's sign, hence the
/// second one).
fn converted(c: &Convert) -> String {
    let value = format!(
        "CAST({} * {} / {} AS BIGINT)",
        raw_column(c.field, true),
        c.multiply,
        c.divide
    );
    if convert_may_wrap(c) {
        format!("MOD(MOD({value}, {SLOT_MODULUS}) + {SLOT_MODULUS}, {SLOT_MODULUS})")
    } else {
        value
    }
}

/// A `where` entry as a condition on the row before `convert`. `modulo` is Euclidean, as the
/// reference's `rem_euclid`: `MOD` keeps the dividend's sign, so a field that may be negative
/// (the event time) is shifted into range first.
pub(super) fn condition(p: &Predicate) -> String {
    let c = raw_column(p.field, true);
    match PredicateTest::of(p) {
        PredicateTest::Modulo { modulo: m, equals } if p.field == Field::EventTime => {
            format!("MOD(MOD({c}, {m}) + {m}, {m}) = {equals}")
        }
        PredicateTest::Modulo { modulo, equals } => format!("MOD({c}, {modulo}) = {equals}"),
        PredicateTest::Equals(x) => format!("{c} = {x}"),
        PredicateTest::NotEquals(x) => format!("{c} <> {x}"),
        PredicateTest::OneOf(xs) => format!("{c} IN ({})", number_list(xs)),
        PredicateTest::AtLeast(x) => format!("{c} >= {x}"),
        PredicateTest::Below(x) => format!("{c} < {x}"),
    }
}

/// A projected column's SQL type in the receiver table.
fn projected_type(f: Field) -> &'static str {
    match f {
        Field::Kind => "STRING",
        _ => "BIGINT",
    }
}

/// A SQL interval of `span` (whole milliseconds, checked by the refusal rules): `SECOND` up to
/// 99 s, `SECOND(3)` up to 999 s, `DAY TO SECOND(3)` beyond.
pub(super) fn interval(key: &str, span: Span) -> Result<String, FlinkRefusal> {
    let ms = millis(span).map_err(|reason| FlinkRefusal::pipeline(key, reason))?;
    let seconds = if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}", ms / 1000, frac.trim_end_matches('0'))
    };
    Ok(if ms < 100_000 {
        format!("INTERVAL '{seconds}' SECOND")
    } else if ms < 1_000_000 {
        format!("INTERVAL '{seconds}' SECOND(3)")
    } else {
        let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
        let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
        format!("INTERVAL '{days} {h:02}:{m:02}:{s:02}.{milli:03}' DAY TO SECOND(3)")
    })
}

/// `FROM` and `WHERE` of the filtered, joined events: the kinds, then the `where` entries.
pub(super) fn source(p: &PipelineSpec) -> String {
    let mut from = String::from("FROM events");
    if p.lookup_join {
        from.push_str(", LATERAL TABLE(campaign_of(ad)) AS c(campaign)");
    }
    let mut conditions = Vec::new();
    if let Some(kinds) = &p.filter_kinds {
        let names: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.name())).collect();
        conditions.push(format!("kind IN ({})", names.join(", ")));
    }
    conditions.extend(p.predicates.iter().map(condition));
    if !conditions.is_empty() {
        let _ = write!(from, "\nWHERE {}", conditions.join(" AND "));
    }
    from
}

/// The aggregate's value over the view's `v` (or the rows).
fn aggregate_value(a: &Aggregation) -> (String, &'static str) {
    match (a.function, a.field) {
        (AggFunc::Count, _) | (_, None) => ("COUNT(*)".into(), "BIGINT"),
        (AggFunc::Sum, Some(_)) => ("SUM(v)".into(), "BIGINT"),
        (AggFunc::Min, Some(_)) => ("MIN(v)".into(), "BIGINT"),
        (AggFunc::Max, Some(_)) => ("MAX(v)".into(), "BIGINT"),
        // AVG of a BIGINT is a BIGINT in Flink (integer division): average doubles.
        (AggFunc::Avg, Some(_)) => ("AVG(CAST(v AS DOUBLE))".into(), "DOUBLE"),
        (AggFunc::DistinctCount, Some(_)) => ("COUNT(DISTINCT v)".into(), "BIGINT"),
    }
}

/// The window table function over `table` on its rowtime `event_ts` (`key`: the window's
/// pipeline key, named by a refusal); a session window per `` `key` ``.
pub(super) fn window_tvf(table: &str, w: WindowSpec, key: &str) -> Result<String, FlinkRefusal> {
    Ok(match w {
        WindowSpec::Tumbling { size } => format!(
            "TUMBLE(TABLE {table}, DESCRIPTOR(event_ts), {})",
            interval(&format!("{key}.size"), size)?
        ),
        WindowSpec::Sliding { size, slide } => format!(
            "HOP(TABLE {table}, DESCRIPTOR(event_ts), {}, {})",
            interval(&format!("{key}.slide"), slide)?,
            interval(&format!("{key}.size"), size)?
        ),
        WindowSpec::Session { gap } => format!(
            "SESSION(TABLE {table} PARTITION BY `key`, DESCRIPTOR(event_ts), {})",
            interval(&format!("{key}.gap"), gap)?
        ),
    })
}

/// The receiver's columns for window results, the value of type `value_type`.
fn window_sink_columns(value_type: &str) -> Vec<String> {
    vec![
        "`key` BIGINT".into(),
        "window_start_ms TIMESTAMP_LTZ(3)".into(),
        "window_end_ms TIMESTAMP_LTZ(3)".into(),
        "`count` BIGINT".into(),
        format!("`value` {value_type}"),
        "is_update BOOLEAN".into(),
        "origin_arrival_ns BIGINT".into(),
    ]
}

/// Translates the pipeline.
pub(super) fn translate(p: &PipelineSpec) -> Result<PipelineSql, FlinkRefusal> {
    if let Some(j) = &p.join {
        return super::join::translate(j);
    }
    if let Some(t) = &p.top_n {
        return super::top_n::translate(p, t);
    }
    let Some(a) = &p.aggregate else {
        let mut cols = vec![("seq".to_string(), "seq".to_string(), "BIGINT")];
        for &f in p.project.iter().filter(|&&f| f != Field::Seq) {
            cols.push((column(p, f, false), ident(f.name()), projected_type(f)));
        }
        cols.push(("arrival_ns".into(), "origin_arrival_ns".into(), "BIGINT"));
        let select: Vec<String> = cols
            .iter()
            .map(|(expr, name, _)| {
                if expr == name {
                    expr.clone()
                } else {
                    format!("{expr} AS {name}")
                }
            })
            .collect();
        return Ok(PipelineSql {
            sink_columns: cols.iter().map(|(_, name, ty)| format!("{name} {ty}")).collect(),
            views: vec![],
            insert: format!("INSERT INTO receiver\nSELECT {}\n{}", select.join(", "), source(p)),
        });
    };
    let value = a.field.filter(|_| a.function != AggFunc::Count);
    let mut keyed = format!(
        "CREATE TEMPORARY VIEW keyed AS\nSELECT {} AS `key`",
        column(p, a.key_by, true)
    );
    if let Some(f) = value {
        let _ = write!(keyed, ", {} AS v", column(p, f, true));
    }
    let _ = write!(keyed, ", arrival_ns, event_ts\n{}", source(p));
    let window = window_tvf("keyed", a.window, "aggregate.window")?;
    let (value, value_type) = aggregate_value(a);
    if let Some(t) = &p.then {
        let (views, insert) = super::then::translate(a, t, &window, &value)?;
        return Ok(PipelineSql {
            sink_columns: window_sink_columns("DOUBLE"),
            views: [vec![keyed], views].concat(),
            insert,
        });
    }
    Ok(PipelineSql {
        sink_columns: window_sink_columns(value_type),
        views: vec![keyed],
        insert: format!(
            "INSERT INTO receiver\n\
             SELECT `key`, window_start, window_end, COUNT(*), {value}, FALSE, MAX(arrival_ns)\n\
             FROM TABLE({window})\n\
             GROUP BY `key`, window_start, window_end"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_written_in_the_smallest_form_flink_accepts() {
        let i = |ms| interval("k", Span::from_ms(ms)).unwrap();
        assert_eq!(i(2000), "INTERVAL '2' SECOND");
        assert_eq!(i(201), "INTERVAL '0.201' SECOND");
        assert_eq!(i(1500), "INTERVAL '1.5' SECOND");
        assert_eq!(i(100_000), "INTERVAL '100' SECOND(3)");
        assert_eq!(i(3_600_000), "INTERVAL '0 01:00:00.000' DAY TO SECOND(3)");
        assert_eq!(i(90_061_001), "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)");
    }

    #[test]
    fn reserved_words_are_quoted() {
        assert_eq!(raw_column(Field::User, false), "`user`");
        assert_eq!(raw_column(Field::Page, true), "page");
        assert_eq!(ident("state"), "`state`");
        assert_eq!(
            raw_column(Field::Kind, true),
            "CASE kind WHEN 'view' THEN 0 WHEN 'click' THEN 1 WHEN 'add_to_cart' THEN 2 WHEN 'purchase' THEN 3 \
             WHEN 'person' THEN 4 WHEN 'auction' THEN 5 WHEN 'bid' THEN 6 END"
        );
    }
}
