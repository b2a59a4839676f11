//! Trace files: exact round trips, and precise errors for malformed input.

use std::path::{Path, PathBuf};

use streamlab_engines::time::NANOS_PER_SEC;
use streamlab_workloads::trace::COLUMNS;
use streamlab_workloads::{generate, read_trace, write_trace, ClickstreamConfig, Disorder, TraceError};

fn sample() -> Vec<streamlab_engines::event::Event> {
    let cfg = ClickstreamConfig {
        disorder: Disorder {
            late_fraction: 0.05,
            ..Disorder::default()
        },
        ..Default::default()
    };
    generate(&cfg, 99, NANOS_PER_SEC / 2)
}

const HEADER: &str = "seq,event_time_ms,arrival_ns,partition,user,session,page,ad,kind,dwell_ms,price_cents";
const ROW0: &str = "0,0,0,1,5,0,3,7,view,120,0";
const ROW1: &str = "1,1,1000000,2,6,1,4,8,purchase,80,2999";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads `text` as `name` and returns (line, column, message) of the `Malformed` error.
fn malformed(name: &str, text: &str) -> (u64, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, text);
    match read_trace(&path) {
        Err(TraceError::Malformed {
            path: p,
            line,
            column,
            message,
        }) => {
            assert_eq!(p, path);
            (line, column, message)
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn jsonl(row: &str) -> String {
    let vals: Vec<&str> = row.split(',').collect();
    let fields: Vec<String> = COLUMNS
        .iter()
        .zip(vals)
        .map(|(c, v)| {
            if *c == "kind" {
                format!("\"{c}\":\"{v}\"")
            } else {
                format!("\"{c}\":{v}")
            }
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[test]
fn csv_and_jsonl_round_trip_exactly() {
    let events = sample();
    assert!(events.len() > 5_000);
    let dir = tempfile::tempdir().unwrap();
    for name in ["t.csv", "t.jsonl", "T.CSV"] {
        let path = dir.path().join(name);
        write_trace(&path, &events).unwrap();
        assert_eq!(read_trace(&path).unwrap(), events, "{name}");
    }
    let text = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
    assert_eq!(text.lines().next().unwrap(), HEADER);
    let first = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(obj.keys().count(), COLUMNS.len());
}

#[test]
fn well_formed_hand_written_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "a.csv", &format!("{HEADER}\r\n{ROW0}\r\n{ROW1}\r\n"));
    let events = read_trace(&csv).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].price_cents, 2999);
    let jl = write(dir.path(), "a.jsonl", &format!("{}\n{}\n", jsonl(ROW0), jsonl(ROW1)));
    assert_eq!(read_trace(&jl).unwrap(), events);
    let empty = write(dir.path(), "e.csv", &format!("{HEADER}\n"));
    assert!(read_trace(&empty).unwrap().is_empty());
}

#[test]
fn bad_kind_names_line_and_column() {
    let (line, column, message) = malformed("t.csv", &format!("{HEADER}\n{ROW0}\n1,1,5,0,0,1,0,0,clik,0,0\n"));
    assert_eq!((line, column.as_str()), (3, "kind"));
    assert_eq!(message, "`clik` is not one of view, click, add_to_cart, purchase");
    let (line, column, _) = malformed(
        "t.jsonl",
        &format!("{}\n{}\n", jsonl(ROW0), jsonl("1,1,5,0,0,1,0,0,clik,0,0")),
    );
    assert_eq!((line, column.as_str()), (2, "kind"));
}

#[test]
fn missing_column_is_named() {
    let (line, column, _) = malformed("t.csv", &format!("{HEADER}\n{ROW0}\n1,1,5,0,0,1,0,0,view,0\n"));
    assert_eq!((line, column.as_str()), (3, "price_cents"));
    let short_header = HEADER.replace(",price_cents", "");
    let (line, column, message) = malformed("t.csv", &format!("{short_header}\n"));
    assert_eq!((line, column.as_str()), (1, "price_cents"));
    assert!(message.contains("missing from the header"), "{message}");
    let row = jsonl(ROW1).replace(",\"dwell_ms\":80", "");
    let (line, column, _) = malformed("t.jsonl", &format!("{}\n{row}\n", jsonl(ROW0)));
    assert_eq!((line, column.as_str()), (2, "dwell_ms"));
    let (_, column, _) = malformed("t.jsonl", &jsonl(ROW0).replace("\"page\"", "\"pgae\""));
    assert_eq!(column, "pgae");
}

#[test]
fn non_numbers_are_rejected_with_what_is_allowed() {
    let (line, column, message) = malformed("t.csv", &format!("{HEADER}\n{ROW0}\n1,1,5,0,x7,1,0,0,view,0,0\n"));
    assert_eq!((line, column.as_str()), (3, "user"));
    assert!(message.contains("`x7` is not an unsigned integer"), "{message}");
    let (_, column, _) = malformed("t.csv", &format!("{HEADER}\n0,0,0,0,0,0,0,0,view,-1,0\n"));
    assert_eq!(column, "dwell_ms");
    let (_, column, _) = malformed("t.csv", &format!("{HEADER}\n0,1.5,0,0,0,0,0,0,view,1,0\n"));
    assert_eq!(column, "event_time_ms");
    let (_, column, _) = malformed("t.csv", &format!("{HEADER}\n0,0,0,0,0,0,0,0,view,1,4294967296\n"));
    assert_eq!(column, "price_cents");
    let (line, column, message) = malformed("t.jsonl", &jsonl(ROW0).replace("\"ad\":7", "\"ad\":\"7\""));
    assert_eq!((line, column.as_str()), (1, "ad"));
    assert!(message.contains("JSON number"), "{message}");
}

#[test]
fn out_of_order_arrival_and_duplicate_seq_are_rejected() {
    let (line, column, message) = malformed("t.csv", &format!("{HEADER}\n{ROW1}\n{ROW0}\n"));
    assert_eq!((line, column.as_str()), (3, "arrival_ns"));
    assert!(message.contains("line 2"), "{message}");
    let dup = ROW1.replacen('1', "0", 1);
    let (line, column, _) = malformed("t.jsonl", &format!("{}\n{}\n", jsonl(ROW0), jsonl(&dup)));
    assert_eq!((line, column.as_str()), (2, "seq"));
}

#[test]
fn whole_line_problems_and_unknown_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.jsonl", &format!("{}\n\n{}\n", jsonl(ROW0), jsonl(ROW1)));
    assert!(matches!(read_trace(&p), Err(TraceError::BadLine { line: 2, .. })));
    let p = write(dir.path(), "t.jsonl", "{not json\n");
    assert!(matches!(read_trace(&p), Err(TraceError::BadLine { line: 1, .. })));
    let p = write(dir.path(), "t.csv", &format!("{HEADER}\n{ROW0},9\n"));
    assert!(matches!(read_trace(&p), Err(TraceError::BadLine { line: 2, .. })));
    let p = write(dir.path(), "t.csv", "");
    assert!(matches!(read_trace(&p), Err(TraceError::BadLine { line: 1, .. })));

    for name in ["t.parquet", "t"] {
        let p = dir.path().join(name);
        let err = read_trace(&p).unwrap_err();
        assert!(matches!(err, TraceError::UnknownFormat { .. }));
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains(".csv") && text.contains(".jsonl"),
            "{text}"
        );
        assert!(write_trace(&p, &[]).is_err());
        assert!(!p.exists(), "nothing is written for an unknown format");
    }
    let missing = dir.path().join("nope.csv");
    let err = read_trace(&missing).unwrap_err();
    assert!(matches!(err, TraceError::Io { .. }));
    assert!(err.to_string().contains("nope.csv"));
}
