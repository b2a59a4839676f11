//! The JSON Lines trace format: one JSON object per line, keys = the column names, numbers as
//! JSON numbers and `kind` as a string. Written by hand (fixed shape, no escaping needed);
//! read with `serde_json`, one line at a time so errors carry the line number.

use std::io::{BufRead, Write};
use std::path::Path;

use serde_json::Value;
use streamlab_engines::event::Event;

use super::row::{allowed, malformed, parse_event, RowOrder};
use super::{TraceError, COLUMNS};

pub(super) fn write(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    for e in events {
        writeln!(
            out,
            "{{\"seq\":{},\"event_time_ms\":{},\"arrival_ns\":{},\"partition\":{},\"user\":{},\"session\":{},\"page\":{},\"ad\":{},\"kind\":\"{}\",\"dwell_ms\":{},\"price_cents\":{}}}",
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
        )?;
    }
    Ok(())
}

/// The text of column `c` in `obj`, checking its JSON type.
fn field_text(path: &Path, line: u64, obj: &serde_json::Map<String, Value>, c: usize) -> Result<String, TraceError> {
    let want_string = COLUMNS[c] == "kind";
    match obj.get(COLUMNS[c]) {
        None => Err(malformed(path, line, c, format!("missing; expected {}", allowed(c)))),
        Some(Value::Number(n)) if !want_string => Ok(n.to_string()),
        Some(Value::String(s)) if want_string => Ok(s.clone()),
        Some(other) => Err(malformed(
            path,
            line,
            c,
            format!(
                "`{other}` is not {}{}",
                if want_string {
                    "a JSON string, "
                } else {
                    "a JSON number, "
                },
                allowed(c)
            ),
        )),
    }
}

pub(super) fn read(path: &Path, input: impl BufRead) -> Result<Vec<Event>, TraceError> {
    let mut order = RowOrder::default();
    let mut events = Vec::new();
    for (i, text) in input.lines().enumerate() {
        let line = i as u64 + 1;
        let text = text.map_err(|source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| TraceError::BadLine {
            path: path.to_path_buf(),
            line,
            message,
        };
        if text.trim().is_empty() {
            return Err(bad("blank line; every line must be one JSON object".into()));
        }
        let obj = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err(bad("not a JSON object; every line must be one JSON object".into())),
            Err(e) => return Err(bad(format!("invalid JSON ({e}); every line must be one JSON object"))),
        };
        if let Some(key) = obj.keys().find(|k| !COLUMNS.contains(&k.as_str())) {
            return Err(TraceError::Malformed {
                path: path.to_path_buf(),
                line,
                column: key.clone(),
                message: format!("unknown column; allowed columns are {}", COLUMNS.join(", ")),
            });
        }
        let mut owned: [String; 11] = Default::default();
        for (c, slot) in owned.iter_mut().enumerate() {
            *slot = field_text(path, line, &obj, c)?;
        }
        let fields: [&str; 11] = std::array::from_fn(|c| owned[c].as_str());
        let event = parse_event(path, line, &fields)?;
        order.check(path, line, &event)?;
        events.push(event);
    }
    Ok(events)
}
