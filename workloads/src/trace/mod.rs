//! Trace files: recording a generated stream, or bringing your own, as CSV or JSON Lines.
//!
//! A trace makes a run reproducible outside this program and lets real clickstreams replace
//! the generator. The format is chosen by the file extension: `.csv` (a header row, then one
//! row per event) or `.jsonl` (one JSON object per line, keys = column names). Either way the
//! columns, in this order, are:
//!
//! | column          | type | meaning                                                        |
//! |-----------------|------|----------------------------------------------------------------|
//! | `seq`           | u64  | position in the stream, in arrival order; unique               |
//! | `event_time_ms` | i64  | when the event happened at the user, **milliseconds** since the workload start |
//! | `arrival_ns`    | u64  | when it arrives at the source, **nanoseconds** since the run start |
//! | `partition`     | u32  | source partition                                               |
//! | `user`          | u32  | user id                                                        |
//! | `session`       | u64  | session id, unique over the stream                             |
//! | `page`          | u32  | page id                                                        |
//! | `ad`            | u32  | ad id (join key of the campaign table)                         |
//! | `kind`          | text | `view`, `click`, `add_to_cart` or `purchase`                   |
//! | `dwell_ms`      | u32  | time on the page before the event, **milliseconds**            |
//! | `price_cents`   | u32  | price in **cents** (0 unless `add_to_cart` / `purchase`)       |
//!
//! Reading is strict, because a silently skipped row would make two engines disagree for no
//! visible reason: every field must be present and parse, rows must be in non-decreasing
//! `arrival_ns` order and `seq` must be unique. The first problem is returned as an error
//! naming the file, the 1-based line, the column and what is allowed.

mod csv_file;
mod jsonl_file;
mod row;

use std::path::{Path, PathBuf};

use streamlab_engines::event::Event;

/// The trace columns, in file order.
pub const COLUMNS: [&str; 11] = [
    "seq",
    "event_time_ms",
    "arrival_ns",
    "partition",
    "user",
    "session",
    "page",
    "ad",
    "kind",
    "dwell_ms",
    "price_cents",
];

/// The file extensions a trace may have.
pub const EXTENSIONS: &str = ".csv or .jsonl";

/// Why a trace could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file name does not end in a known extension.
    #[error("{}: unknown trace format; the file name must end in {EXTENSIONS}", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A field is missing, does not parse, or breaks an ordering rule.
    #[error("{}: line {line}, column `{column}`: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The column name.
        column: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A whole line is unreadable (not CSV / not a JSON object, extra fields, blank).
    #[error("{}: line {line}: {message}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong and what is allowed.
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

fn format_of(path: &Path) -> Result<Format, TraceError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("csv") {
        Ok(Format::Csv)
    } else if ext.eq_ignore_ascii_case("jsonl") {
        Ok(Format::Jsonl)
    } else {
        Err(TraceError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `events` to `path` (created or truncated), as CSV or JSON Lines by extension.
pub fn write_trace(path: &Path, events: &[Event]) -> Result<(), TraceError> {
    let format = format_of(path)?;
    let file = std::fs::File::create(path).map_err(io_error(path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    match format {
        Format::Csv => csv_file::write(&mut out, events),
        Format::Jsonl => jsonl_file::write(&mut out, events),
    }
    .and_then(|()| std::io::Write::flush(&mut out))
    .map_err(io_error(path))
}

/// Writes one event as one CSV trace row (the [`COLUMNS`] in order, comma-separated, no
/// header) followed by `\n`: the same row [`write_trace`] writes to a `.csv` file, and the line
/// the loopback feeder ([`crate::feeder`]) sends for each event.
pub fn write_csv_row(out: &mut impl std::io::Write, event: &Event) -> std::io::Result<()> {
    csv_file::write_row(out, event)
}

/// Reads one CSV trace row written by [`write_csv_row`] (its newline left off): what a record of
/// a Kafka input topic holds. `source` and `line` name the row in an error (a topic and the
/// record's offset); a row with another number of fields is a [`TraceError::BadLine`]. Nothing is
/// allocated.
pub fn read_csv_row(row: &str, source: &Path, line: u64) -> Result<Event, TraceError> {
    let mut fields = [""; 11];
    let mut cells = row.trim_end_matches(['\r', '\n']).split(',');
    for f in fields.iter_mut() {
        *f = cells.next().unwrap_or_default().trim();
    }
    if cells.next().is_some() || fields[10].is_empty() {
        return Err(TraceError::BadLine {
            path: source.to_path_buf(),
            line,
            message: format!("`{row}` is not {} fields ({})", COLUMNS.len(), COLUMNS.join(",")),
        });
    }
    row::parse_event(source, line, &fields)
}

/// Reads a trace written by [`write_trace`] (or by hand), validating every row.
pub fn read_trace(path: &Path) -> Result<Vec<Event>, TraceError> {
    let format = format_of(path)?;
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    match format {
        Format::Csv => csv_file::read(path, input),
        Format::Jsonl => jsonl_file::read(path, input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlab_engines::event::EventKind;

    #[test]
    fn a_csv_row_reads_back_the_event_it_was_written_from_and_a_short_row_is_refused() {
        let event = Event {
            seq: 7,
            event_time: 1_500,
            arrival: 2_000_000,
            partition: 1,
            user: 42,
            session: 9,
            page: 3,
            ad: 11,
            kind: EventKind::Click,
            dwell_ms: 250,
            price_cents: 0,
        };
        let mut row = Vec::new();
        write_csv_row(&mut row, &event).unwrap();
        let row = String::from_utf8(row).unwrap();
        let topic = Path::new("topic events");
        assert_eq!(read_csv_row(&row, topic, 0).unwrap(), event);
        let short = read_csv_row("7,1500,2000000", topic, 3).unwrap_err().to_string();
        assert!(short.contains("line 3") && short.contains("11 fields"), "{short}");
        let long = read_csv_row(&format!("{},1", row.trim_end()), topic, 4).unwrap_err();
        assert!(matches!(long, TraceError::BadLine { line: 4, .. }));
        let kind = read_csv_row(&row.replace("click", "tap"), topic, 5)
            .unwrap_err()
            .to_string();
        assert!(kind.contains("`kind`"), "{kind}");
    }
}
