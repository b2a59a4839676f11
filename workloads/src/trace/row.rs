//! Turning one row's text fields into an [`Event`], and the cross-row rules (arrival order,
//! unique `seq`), shared by both formats so they accept and reject exactly the same things.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::time::Nanos;

use super::{TraceError, COLUMNS};

/// Builds a `Malformed` error for `column` (an index into [`COLUMNS`]).
pub(super) fn malformed(path: &Path, line: u64, column: usize, message: impl Into<String>) -> TraceError {
    TraceError::Malformed {
        path: path.to_path_buf(),
        line,
        column: COLUMNS[column].to_string(),
        message: message.into(),
    }
}

/// What a column accepts, for error messages.
pub(super) fn allowed(column: usize) -> &'static str {
    match COLUMNS[column] {
        "seq" | "session" => "an unsigned integer (0 to 18446744073709551615)",
        "arrival_ns" => "an unsigned integer number of nanoseconds (0 to 18446744073709551615)",
        "event_time_ms" => "an integer number of milliseconds",
        "kind" => "one of view, click, add_to_cart, purchase",
        _ => "an unsigned integer (0 to 4294967295)",
    }
}

/// Parses the 11 fields of one row, in [`COLUMNS`] order.
pub(super) fn parse_event(path: &Path, line: u64, fields: &[&str; 11]) -> Result<Event, TraceError> {
    fn num<T: FromStr>(path: &Path, line: u64, fields: &[&str; 11], c: usize) -> Result<T, TraceError> {
        fields[c]
            .parse()
            .map_err(|_| malformed(path, line, c, format!("`{}` is not {}", fields[c], allowed(c))))
    }
    let kind = EventKind::from_name(fields[8])
        .ok_or_else(|| malformed(path, line, 8, format!("`{}` is not {}", fields[8], allowed(8))))?;
    Ok(Event {
        seq: num(path, line, fields, 0)?,
        event_time: num(path, line, fields, 1)?,
        arrival: num(path, line, fields, 2)?,
        partition: num(path, line, fields, 3)?,
        user: num(path, line, fields, 4)?,
        session: num(path, line, fields, 5)?,
        page: num(path, line, fields, 6)?,
        ad: num(path, line, fields, 7)?,
        kind,
        dwell_ms: num(path, line, fields, 9)?,
        price_cents: num(path, line, fields, 10)?,
    })
}

/// Checks the cross-row rules as rows come in.
#[derive(Default)]
pub(super) struct RowOrder {
    /// seq → the line it appeared on.
    seen: HashMap<u64, u64>,
    /// The previous row's arrival and line.
    last: Option<(Nanos, u64)>,
}

impl RowOrder {
    /// Accepts `e` (read from `line`) or explains which rule it breaks.
    pub(super) fn check(&mut self, path: &Path, line: u64, e: &Event) -> Result<(), TraceError> {
        if let Some((prev, prev_line)) = self.last {
            if e.arrival < prev {
                return Err(malformed(
                    path,
                    line,
                    2,
                    format!(
                        "`{}` is earlier than {prev} on line {prev_line}; rows must be in non-decreasing arrival order",
                        e.arrival
                    ),
                ));
            }
        }
        if let Some(first) = self.seen.insert(e.seq, line) {
            return Err(malformed(
                path,
                line,
                0,
                format!("`{}` already appears on line {first}; seq must be unique", e.seq),
            ));
        }
        self.last = Some((e.arrival, line));
        Ok(())
    }
}
