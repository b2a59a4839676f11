//! The CSV trace format: a header row naming the columns in order, then one row per event.
//! Written by hand (every field is a number or a fixed word, so nothing needs quoting); read
//! with the `csv` crate, so quoted fields and CRLF line ends from other tools are accepted.

use std::io::{Read, Write};
use std::path::Path;

use streamlab_engines::event::Event;

use super::row::{malformed, parse_event, RowOrder};
use super::{TraceError, COLUMNS};

pub(super) fn write(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for e in events {
        write_row(out, e)?;
    }
    Ok(())
}

/// Writes one event as one CSV row (the [`COLUMNS`] in order) and its `\n`; the only place the
/// row format is written, shared by trace files and the loopback feeder.
pub(crate) fn write_row(out: &mut impl Write, e: &Event) -> std::io::Result<()> {
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{}",
        e.seq,
        e.event_time,
        e.arrival,
        e.partition,
        e.user,
        e.session,
        e.page,
        e.ad,
        e.kind.name(),
        e.dwell_ms,
        e.price_cents
    )
}

fn csv_error(path: &Path, line: u64, err: csv::Error) -> TraceError {
    match err.into_kind() {
        csv::ErrorKind::Io(source) => TraceError::Io {
            path: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::Utf8 { pos, err } => TraceError::BadLine {
            path: path.to_path_buf(),
            line: pos.map_or(line, |p| p.line()),
            message: format!("not valid UTF-8 ({err}); a trace must be UTF-8 text"),
        },
        other => TraceError::BadLine {
            path: path.to_path_buf(),
            line,
            message: format!("{other:?}"),
        },
    }
}

fn check_header(path: &Path, header: &csv::StringRecord) -> Result<(), TraceError> {
    let expected = COLUMNS.join(",");
    for (i, name) in COLUMNS.iter().enumerate() {
        match header.get(i) {
            Some(h) if h.trim() == *name => {}
            Some(h) => {
                return Err(malformed(
                    path,
                    1,
                    i,
                    format!("the header has `{h}` here; the header must be {expected}"),
                ))
            }
            None => {
                return Err(malformed(
                    path,
                    1,
                    i,
                    format!("missing from the header; the header must be {expected}"),
                ))
            }
        }
    }
    if header.len() > COLUMNS.len() {
        return Err(TraceError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            column: header[COLUMNS.len()].to_string(),
            message: format!("unknown column; the header must be {expected}"),
        });
    }
    Ok(())
}

pub(super) fn read(path: &Path, input: impl Read) -> Result<Vec<Event>, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    let has_header = reader.read_record(&mut record).map_err(|e| csv_error(path, line, e))?;
    if !has_header {
        return Err(TraceError::BadLine {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "the file is empty; a CSV trace starts with the header {}",
                COLUMNS.join(",")
            ),
        });
    }
    check_header(path, &record)?;
    let mut order = RowOrder::default();
    let mut events = Vec::new();
    loop {
        line += 1;
        if !reader.read_record(&mut record).map_err(|e| csv_error(path, line, e))? {
            break;
        }
        line = record.position().map_or(line, |p| p.line());
        if record.len() > COLUMNS.len() {
            return Err(TraceError::BadLine {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "{} fields, expected {} ({})",
                    record.len(),
                    COLUMNS.len(),
                    COLUMNS.join(",")
                ),
            });
        }
        let mut fields = [""; 11];
        for (i, f) in fields.iter_mut().enumerate() {
            *f = record.get(i).ok_or_else(|| {
                malformed(
                    path,
                    line,
                    i,
                    format!("missing; the row has {} of {} fields", record.len(), COLUMNS.len()),
                )
            })?;
        }
        let event = parse_event(path, line, &fields)?;
        order.check(path, line, &event)?;
        events.push(event);
    }
    Ok(events)
}
