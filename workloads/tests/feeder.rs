//! The loopback feeder and the output receiver, driven by plain Rust TCP clients (no JVM, no
//! Python): the token handshake, readiness, per-partition order in the trace row format, the
//! readiness timeout, warm-up flags and receipt stamps. Schedules are tens of milliseconds long;
//! timing is asserted only as order or counts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamlab_engines::event::{Event, EventKind};
use streamlab_workloads::feeder::{
    Feeder, FeederError, FeederOptions, Receiver, ReceiverOptions, RefusalReason, RunClock, RunToken,
};
use streamlab_workloads::trace::{write_csv_row, write_trace};

const TOKEN: &str = "test-token-1";
const WAIT: Duration = Duration::from_secs(20);

fn token() -> RunToken {
    RunToken::new(TOKEN).unwrap()
}

/// `n` events over `partitions` partitions, one every 500 µs (a 20 ms schedule for 40 events).
fn events(n: u64, partitions: u32) -> Vec<Event> {
    (0..n)
        .map(|seq| Event {
            seq,
            event_time: (seq / 2) as i64,
            arrival: seq * 500_000,
            partition: (seq * 7 % u64::from(partitions)) as u32,
            user: seq as u32 * 3,
            session: seq / 4,
            page: seq as u32 % 11,
            ad: seq as u32 % 5,
            kind: EventKind::CLICKSTREAM[seq as usize % 4],
            dwell_ms: seq as u32 * 10,
            price_cents: if seq % 4 >= 2 { 1999 } else { 0 },
        })
        .collect()
}

fn row(e: &Event) -> String {
    let mut out = Vec::new();
    write_csv_row(&mut out, e).unwrap();
    String::from_utf8(out).unwrap().trim_end().to_string()
}

fn connect(addr: SocketAddr, hello: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(hello.as_bytes()).unwrap();
    conn
}

fn read_all_lines(conn: TcpStream) -> Vec<String> {
    BufReader::new(conn).lines().map(Result::unwrap).collect()
}

/// Polls `condition` until it holds (bounded); for counters that other threads move.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn each_partition_receives_exactly_its_events_in_order_as_trace_rows_then_end() {
    let events = events(40, 3);
    let feeder = Feeder::start(&events, FeederOptions::new(3, token())).unwrap();
    let readers: Vec<_> = (0..3)
        .map(|p| {
            let conn = connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} {p}\n"));
            std::thread::spawn(move || read_all_lines(conn))
        })
        .collect();
    let received: Vec<Vec<String>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let report = feeder.wait().unwrap();

    for (p, lines) in received.iter().enumerate() {
        let mut expected: Vec<String> = events.iter().filter(|e| e.partition == p as u32).map(row).collect();
        expected.push("END".to_string());
        assert_eq!(*lines, expected, "partition {p}");
    }
    assert_eq!(report.events_sent, 40);
    assert_eq!(report.sent_per_partition.iter().sum::<u64>(), 40);
    assert_eq!(report.lag.events, 40);
    assert!(report.lag.p99 <= report.lag.max);
    assert_eq!(report.refused, 0);
}

#[test]
fn the_feeder_row_is_the_trace_files_row() {
    let events = events(3, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    write_trace(&path, &events).unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<&str> = file.lines().skip(1).collect();
    let ours: Vec<String> = events.iter().map(row).collect();
    assert_eq!(rows, ours);
}

#[test]
fn a_wrong_token_an_unknown_or_duplicate_partition_is_refused_counted_and_never_fed() {
    let events = events(10, 2);
    let feeder = Feeder::start(&events, FeederOptions::new(2, token())).unwrap();
    let addr = feeder.local_addr();

    let stranger = connect(addr, "STREAMLAB wrong-token 0\n");
    assert!(eventually(|| feeder.refused() == 1));
    let unknown = connect(addr, &format!("STREAMLAB {TOKEN} 2\n"));
    assert!(eventually(|| feeder.refused() == 2));
    let first = connect(addr, &format!("STREAMLAB {TOKEN} 0\n"));
    assert!(eventually(|| feeder.connected() == 1));
    let duplicate = connect(addr, &format!("STREAMLAB {TOKEN} 0\n"));
    assert!(eventually(|| feeder.refused() == 3));
    let second = connect(addr, &format!("STREAMLAB {TOKEN} 1\n"));

    let fed: Vec<_> = [first, second]
        .into_iter()
        .map(|c| std::thread::spawn(move || read_all_lines(c)))
        .collect();
    let fed_lines: usize = fed.into_iter().map(|r| r.join().unwrap().len()).sum();
    let report = feeder.wait().unwrap();

    for refused in [stranger, unknown, duplicate] {
        let mut bytes = Vec::new();
        let _ = BufReader::new(refused).read_to_end(&mut bytes);
        assert!(bytes.is_empty(), "a refused connection got {} bytes", bytes.len());
    }
    assert_eq!(fed_lines, 10 + 2, "every event once, plus one END per partition");
    assert_eq!(report.refused, 3);
    let reasons: Vec<RefusalReason> = report.refusals.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            RefusalReason::WrongToken,
            RefusalReason::UnknownPartition("2".into()),
            RefusalReason::DuplicatePartition(0)
        ]
    );
}

#[test]
fn the_clock_starts_only_once_every_partition_has_connected() {
    let events = events(12, 3);
    let feeder = Feeder::start(&events, FeederOptions::new(3, token())).unwrap();
    let clock = feeder.clock();
    let early: Vec<TcpStream> = (0..2)
        .map(|p| connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} {p}\n")))
        .collect();
    assert!(eventually(|| feeder.connected() == 2));

    assert!(!clock.is_started());
    assert_eq!(clock.now(), 0);
    for conn in &early {
        conn.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let pending = (&*conn).read(&mut byte);
        assert!(
            matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "nothing may be sent before readiness, got {pending:?}"
        );
        conn.set_nonblocking(false).unwrap();
    }

    let last = connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} 2\n"));
    let mut lines = 0;
    for conn in early.into_iter().chain([last]) {
        lines += read_all_lines(conn).len();
    }
    assert!(clock.is_started());
    assert_eq!(lines, 12 + 3);
    assert_eq!(feeder.wait().unwrap().events_sent, 12);
}

#[test]
fn the_readiness_timeout_names_the_partitions_that_never_connected() {
    let events = events(6, 3);
    let mut options = FeederOptions::new(3, token());
    options.ready_timeout = Duration::from_millis(100);
    let feeder = Feeder::start(&events, options).unwrap();
    let _one = connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} 1\n"));
    assert!(eventually(|| feeder.connected() == 1));
    let clock = feeder.clock();

    let err = feeder.wait().unwrap_err();
    match &err {
        FeederError::NotReady { missing, expected, .. } => {
            assert_eq!(*missing, [0, 2]);
            assert_eq!(*expected, 3);
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    assert!(
        err.to_string().contains("partitions 0, 2 of 0..3 never connected"),
        "{err}"
    );
    assert!(!clock.is_started());
}

#[test]
fn events_out_of_range_or_out_of_order_are_refused_before_listening() {
    let mut events = events(4, 2);
    let err = Feeder::start(&events, FeederOptions::new(1, token())).unwrap_err();
    assert!(
        matches!(
            err,
            FeederError::PartitionOutOfRange {
                seq: 1,
                partition: 1,
                partitions: 1
            }
        ),
        "{err:?}"
    );
    events.swap(1, 2);
    let err = Feeder::start(&events, FeederOptions::new(2, token())).unwrap_err();
    assert!(matches!(err, FeederError::NotInArrivalOrder { seq: 1, .. }), "{err:?}");
}

#[test]
fn warmup_events_are_sent_and_counted() {
    let events = events(20, 1);
    let mut options = FeederOptions::new(1, token());
    options.warmup = 5 * 500_000; // the first five events
    let feeder = Feeder::start(&events, options).unwrap();
    let lines = read_all_lines(connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} 0\n")));
    let report = feeder.wait().unwrap();
    assert_eq!(lines.len(), 21);
    assert_eq!(report.events_sent, 20);
    assert_eq!(report.warmup_events, 5);
}

#[test]
fn a_reader_that_went_away_fails_the_run_naming_its_partition() {
    // One event every 5 ms on each of two partitions; partition 0's reader leaves before the
    // start, so a write to it fails once its close has come back.
    let mut events = events(20, 2);
    for (i, e) in events.iter_mut().enumerate() {
        e.arrival = i as u64 / 2 * 5_000_000;
        e.partition = i as u32 % 2;
    }
    let feeder = Feeder::start(&events, FeederOptions::new(2, token())).unwrap();
    drop(connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} 0\n")));
    assert!(eventually(|| feeder.connected() == 1));
    let other = connect(feeder.local_addr(), &format!("STREAMLAB {TOKEN} 1\n"));
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = BufReader::new(other).read_to_end(&mut bytes);
    });
    let err = feeder.wait().unwrap_err();
    reader.join().unwrap();
    assert!(
        matches!(
            err,
            FeederError::Disconnected {
                partition: 0,
                total: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_port_in_use_is_a_bind_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut options = FeederOptions::new(1, token());
    options.bind = taken.local_addr().unwrap();
    let err = Feeder::start(&events(2, 1), options).unwrap_err();
    assert!(
        matches!(&err, FeederError::Bind { addr, .. } if *addr == taken.local_addr().unwrap()),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("cannot listen on {}", taken.local_addr().unwrap())));
}

#[test]
fn stop_closes_the_listening_socket() {
    let feeder = Feeder::start(&events(4, 1), FeederOptions::new(1, token())).unwrap();
    let addr = feeder.local_addr();
    feeder.stop();
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

type Collected = Arc<Mutex<Vec<(u64, bool, u32, String)>>>;

fn collecting_receiver(clock: RunClock) -> (Receiver, Collected) {
    let seen: Collected = Arc::default();
    let sink = Arc::clone(&seen);
    let receiver = Receiver::start(ReceiverOptions::new(token()), clock, move |line| {
        sink.lock()
            .unwrap()
            .push((line.stamp, line.warmup, line.sink, line.text().unwrap().to_string()));
    })
    .unwrap();
    (receiver, seen)
}

#[test]
fn the_receiver_stamps_lines_in_order_with_non_decreasing_stamps() {
    let clock = RunClock::new(0);
    clock.start();
    let (receiver, seen) = collecting_receiver(clock);
    let mut conn = connect(receiver.local_addr(), &format!("STREAMLAB {TOKEN} sink\n"));
    for i in 0..100 {
        write!(conn, "out,{i}\r\n").unwrap();
        if i % 25 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    conn.write_all(b"last-without-newline").unwrap();
    drop(conn);
    assert!(receiver.wait_for_sinks(1, WAIT));
    let report = receiver.stop();

    let seen = seen.lock().unwrap();
    let texts: Vec<&str> = seen.iter().map(|(_, _, _, t)| t.as_str()).collect();
    let mut expected: Vec<String> = (0..100).map(|i| format!("out,{i}")).collect();
    expected.push("last-without-newline".into());
    assert_eq!(texts, expected);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "stamps must not decrease");
    assert!(seen.iter().all(|(_, warmup, sink, _)| !warmup && *sink == 0));
    assert_eq!(report.lines, 101);
    assert_eq!((report.sinks, report.sinks_closed, report.refused), (1, 1, 0));
}

#[test]
fn the_receiver_flags_lines_inside_the_warmup_or_before_the_clock_started() {
    let clock = RunClock::new(u64::MAX);
    let (receiver, seen) = collecting_receiver(clock.clone());
    let mut before = connect(receiver.local_addr(), &format!("STREAMLAB {TOKEN} sink\n"));
    before.write_all(b"before-start\n").unwrap();
    drop(before);
    assert!(receiver.wait_for_sinks(1, WAIT));
    clock.start();
    let mut during = connect(receiver.local_addr(), &format!("STREAMLAB {TOKEN} sink\n"));
    during.write_all(b"in-warmup\n").unwrap();
    drop(during);
    assert!(receiver.wait_for_sinks(2, WAIT));
    receiver.stop();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].0, seen[0].1, seen[0].2), (0, true, 0));
    assert_eq!((seen[1].1, seen[1].2), (true, 1));
}

#[test]
fn the_receiver_refuses_a_wrong_token_or_a_partition_hello_and_reads_nothing_from_it() {
    let clock = RunClock::new(0);
    clock.start();
    let (receiver, seen) = collecting_receiver(clock);
    let mut stranger = connect(receiver.local_addr(), "STREAMLAB nope sink\n");
    let _ = stranger.write_all(b"injected\n");
    let mut partition = connect(receiver.local_addr(), &format!("STREAMLAB {TOKEN} 0\n"));
    let _ = partition.write_all(b"injected\n");
    assert!(eventually(|| receiver.refused() == 2));
    let mut byte = [0u8; 1];
    for refused in [&mut stranger, &mut partition] {
        assert!(
            matches!(refused.read(&mut byte), Ok(0) | Err(_)),
            "a refused connection is closed"
        );
    }
    let report = receiver.stop();
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(report.lines, 0);
    assert_eq!(report.refused, 2);
    let mut reasons: Vec<String> = report.refusals.iter().map(|r| r.reason.to_string()).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2);
    assert!(reasons.iter().any(|r| r == &RefusalReason::WrongToken.to_string()));
    assert!(reasons.iter().any(|r| r == &RefusalReason::NotASink.to_string()));
}
