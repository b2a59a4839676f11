//! `streamlab calibrate`: measures this machine's [`CostModel`] by timing the real code.
//!
//! Each parameter has one function here that runs the engines' own operator code (or, for the
//! fixed costs, the live runtime, channels and files) over `iterations` items and returns
//! nanoseconds per item. A function times [`REPETITIONS`] runs with [`Instant`] and returns the
//! median, so one run disturbed by another process does not move the result. [`calibrate`]
//! calls them all with iteration counts that make each stable, in about 15 s in a release
//! build.
//!
//! What is not measured, and why:
//! * the network (`network_latency_ns`, `network_ns_per_byte`): on one node no byte crosses
//!   a network, and loopback is not one; both are 0, as the simulated runtime charges them only
//!   between nodes;
//! * `source_poll_interval_ns`: a configuration of the consumer's fetch loop rather than a
//!   cost, set to a nominal 100 µs.
//!
//! The numbers are wall-clock measurements and vary between runs by some percent; nothing
//! here is used by tests except to check that a measurement is a finite, positive number.

use std::fmt::Write as _;
use std::fs::File;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::time::{Duration, Instant};

use streamlab_engines::cost::CostModel;
use streamlab_engines::dataflow::network::{BufferPool, Link, Message, OutputGate};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::log::OffsetEntry;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::operators::fxhash::partition_of;
use streamlab_engines::operators::stateless::StatelessChain;
use streamlab_engines::operators::window::{EmitPolicy, TimeSemantics, WindowedAggregation};
use streamlab_engines::operators::{Lineage, Row, WindowResult};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::runtime::{LiveRuntime, Runtime, TaskContext};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig, RateProfile};

use crate::profile::Profile;

/// How many times each measurement runs; the median is kept.
pub const REPETITIONS: usize = 5;

/// The nominal poll loop period of a caught-up per-record source subtask, ns.
pub const NOMINAL_POLL_INTERVAL_NS: f64 = 100_000.0;

/// Used when a durable write cannot be measured (no writable temp dir): a local SSD's fsync.
const FALLBACK_LOG_WRITE_NS: f64 = 1_000_000.0;
/// Used when disk bandwidth cannot be measured: 500 MB/s.
const FALLBACK_DISK_NS_PER_BYTE: f64 = 2.0;

/// Rows one micro-batch task handles in the measurements that need a task's size.
pub const TASK_ROWS: usize = 10_000;

/// Bytes one row takes on the wire (the per-record engine's network-buffer layout).
const ROW_BYTES: usize = streamlab_engines::dataflow::config::ROW_WIRE_BYTES;

/// Measures every parameter on this machine; `progress` is told what is being measured and
/// what came out, one line at a time.
pub fn calibrate(mut progress: impl FnMut(&str)) -> Profile {
    let mut measure = |what: &str, unit: &str, value: &dyn Fn() -> f64| {
        progress(&format!("measuring {what}..."));
        let v = significant(value(), 3);
        progress(&format!("  {what}: {v} {unit}"));
        v
    };
    let costs = CostModel {
        source_read_ns_per_event: measure("source read", "ns/event", &|| source_read_ns_per_event(1_000_000)),
        chain_ns_per_event: measure("filter + lookup join", "ns/event", &|| chain_ns_per_event(1_000_000)),
        state_ns_per_update: measure("window state update", "ns/update", &|| state_ns_per_update(1_000_000)),
        emit_ns_per_result: measure("window firing", "ns/result", &|| emit_ns_per_result(300_000)),
        sink_ns_per_record: measure("sink (CSV line)", "ns/record", &|| sink_ns_per_record(1_000_000)),
        shuffle_ns_per_row: measure("shuffle routing", "ns/row", &|| shuffle_ns_per_row(1_000_000)),
        serialize_ns_per_byte: measure("serialization", "ns/byte", &|| serialize_ns_per_byte(500_000)),
        buffer_handoff_ns: measure("buffer hand-off", "ns/buffer", &|| buffer_handoff_ns(200_000)),
        network_latency_ns: 0.0,
        network_ns_per_byte: 0.0,
        batch_job_ns: measure("micro-batch job", "ns/batch", &|| batch_job_ns(1_000)),
        task_launch_ns: measure("task launch", "ns/task", &|| task_launch_ns(4_000)),
        source_poll_ns_per_partition: measure("source poll", "ns/call", &|| source_poll_ns_per_partition(1_000_000)),
        source_poll_interval_ns: NOMINAL_POLL_INTERVAL_NS,
        log_write_ns: measure("durable log write", "ns/write", &|| {
            log_write_ns(200).unwrap_or(FALLBACK_LOG_WRITE_NS)
        }),
        disk_ns_per_byte: measure("disk bandwidth", "ns/byte", &|| {
            disk_ns_per_byte(64 << 20).unwrap_or(FALLBACK_DISK_NS_PER_BYTE)
        }),
        // streamlab's own channels: their whole cost is the measured hand-off.
        exchange_latency_ns: 0.0,
        exchange_jitter_ns: 0.0,
    };
    Profile {
        name: "calibrated".into(),
        description: "measured on this machine by streamlab calibrate".into(),
        costs,
        fit: None,
    }
}

/// Reading events from source partitions in fetches of 500 and touching each, ns per event.
pub fn source_read_ns_per_event(iterations: u64) -> f64 {
    let (events, _) = clickstream(iterations);
    let log = SourceLog::from_events(4, events);
    median_of_runs(|| {
        timed(log.len() as u64, || {
            let mut acc = 0u64;
            for p in 0..log.partitions() {
                let end = log.end_offset(p);
                for from in (0..end).step_by(500) {
                    for e in black_box(log.read(p, from, (from + 500).min(end))).iter() {
                        acc ^= e.seq ^ u64::from(e.user) ^ e.event_time as u64;
                    }
                }
            }
            black_box(acc);
        })
    })
}

/// [`StatelessChain::apply`] with a filter every event passes and the lookup join, so each
/// event pays both: ns per event.
pub fn chain_ns_per_event(iterations: u64) -> f64 {
    let (events, table) = clickstream(iterations);
    let chain = StatelessChain::new(&full_chain(), &table);
    median_of_runs(|| {
        timed(events.len() as u64, || {
            for e in &events {
                black_box(chain.apply(black_box(e), Lineage::default()));
            }
        })
    })
}

/// [`WindowedAggregation::insert`] of a count per campaign in 2 s tumbling windows (the
/// quickstart's aggregation), ns per update.
pub fn state_ns_per_update(iterations: u64) -> f64 {
    let rows = rows(iterations);
    let spec = aggregation(Field::Campaign);
    median_of_runs(|| {
        let mut op = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark);
        let mut late: Vec<WindowResult> = Vec::new();
        timed(rows.len() as u64, || {
            for row in &rows {
                op.insert(row, 0, &mut late);
            }
        })
    })
}

/// [`WindowedAggregation::advance_watermark`] firing one window per row (keyed by `seq`, so
/// every row has its own), in rounds of up to [`TASK_ROWS`] windows, ns per result. Filling
/// the state is not timed.
pub fn emit_ns_per_result(iterations: u64) -> f64 {
    let rows = rows(iterations);
    let spec = aggregation(Field::Seq);
    median_of_runs(|| {
        let mut elapsed = Duration::ZERO;
        let mut results: Vec<WindowResult> = Vec::with_capacity(TASK_ROWS);
        for round in rows.chunks(TASK_ROWS) {
            let mut op = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark);
            for row in round {
                op.insert(row, 0, &mut results);
            }
            results.clear();
            let start = Instant::now();
            op.advance_watermark(i64::MAX / 2, 0, &mut results);
            elapsed += start.elapsed();
            assert_eq!(results.len(), round.len(), "every window fires");
        }
        elapsed.as_nanos() as f64 / rows.len() as f64
    })
}

/// Formatting a window result as a CSV line into a reused `String`, ns per record.
pub fn sink_ns_per_record(iterations: u64) -> f64 {
    let results: Vec<WindowResult> = (0..iterations.max(1) as i64).map(window_result).collect();
    median_of_runs(|| {
        let mut line = String::with_capacity(128);
        timed(results.len() as u64, || {
            for r in &results {
                line.clear();
                let _ = writeln!(
                    line,
                    "{},{},{},{},{},{}",
                    r.key, r.start, r.end, r.count, r.value, r.fired_at
                );
                black_box(&line);
            }
        })
    })
}

/// Routing rows by key into per-partition `Vec`s with [`partition_of`], as a micro-batch map
/// task of [`TASK_ROWS`] rows does for 8 shuffle partitions (fresh buckets per task), ns per
/// row.
pub fn shuffle_ns_per_row(iterations: u64) -> f64 {
    let rows = rows(iterations);
    median_of_runs(|| {
        timed(rows.len() as u64, || {
            for task in rows.chunks(TASK_ROWS) {
                let mut buckets: Vec<Vec<Row>> = vec![Vec::new(); 8];
                for row in task {
                    buckets[partition_of(i64::from(row.campaign), 8)].push(*row);
                }
                black_box(buckets);
            }
        })
    })
}

/// Writing rows into a byte buffer in the 64-byte wire layout and reading them back, ns per
/// byte.
pub fn serialize_ns_per_byte(iterations: u64) -> f64 {
    let rows = rows(iterations);
    let mut buf: Vec<u8> = Vec::with_capacity(rows.len() * ROW_BYTES);
    median_of_runs(|| {
        timed((rows.len() * ROW_BYTES) as u64, || {
            buf.clear();
            for row in &rows {
                encode_row(row, &mut buf);
            }
            let mut acc = 0u64;
            for wire in black_box(&buf).chunks_exact(ROW_BYTES) {
                acc ^= decode_row_checksum(wire);
            }
            black_box(acc);
        })
    })
}

/// Shipping one-row network buffers through an [`OutputGate`] to another thread, which hands
/// them back to the [`BufferPool`], over a bounded channel of 8 buffers: ns per buffer.
///
/// The channel is `std::sync::mpsc::sync_channel`, which since Rust 1.67 is crossbeam-channel's
/// bounded (array) flavour, the one the live driver uses.
pub fn buffer_handoff_ns(iterations: u64) -> f64 {
    let row = rows(1)[0];
    let n = iterations.max(1);
    median_of_runs(|| {
        let pool: BufferPool<Row> = BufferPool::new();
        let (tx, rx) = sync_channel::<Message<Row>>(8);
        timed(n, || {
            std::thread::scope(|s| {
                let producer_pool = pool.clone();
                s.spawn(move || {
                    let mut gate = OutputGate::new(0, vec![ChannelLink(tx)], 1, true, producer_pool);
                    for _ in 0..n {
                        gate.push(0, row);
                    }
                });
                for msg in rx.iter() {
                    if let Message::Data { items, .. } = msg {
                        pool.recycle(items);
                    }
                }
            });
        })
    })
}

/// The fixed cost of a nearly empty live micro-batch: [`MicroBatchEngine`] on a one-worker
/// [`LiveRuntime`] for `millis` ms with a 10 ms trigger over a source of 200 events per second,
/// the mean `triggerExecution` per batch, in ns. With one worker the tasks run inline on the
/// driver thread, so their launch (measured by [`task_launch_ns`]) is not counted twice.
pub fn batch_job_ns(millis: u64) -> f64 {
    let cfg = ClickstreamConfig {
        partitions: 2,
        rate: RateProfile::Constant {
            events_per_second: 200.0,
        },
        ..ClickstreamConfig::default()
    };
    let duration = millis.max(1) * 1_000_000;
    let source = SourceLog::from_events(2, generate(&cfg, 1, duration));
    let engine_cfg = MicroBatchConfig {
        trigger: Trigger::ProcessingTime {
            interval: Span::from_ms(10),
        },
        workers: 1,
        ..MicroBatchConfig::default()
    };
    let table = campaign_table(&cfg, 1);
    let mut engine = MicroBatchEngine::new("calibrate", engine_cfg, &PipelineSpec::default(), &table, 2)
        .expect("the calibration query is valid");
    let mut rt = LiveRuntime::new(1);
    let run = engine.run(&mut rt, &source, duration);
    let trigger_ms: Vec<f64> = run
        .progress
        .iter()
        .filter_map(|p| p["durationMs"]["triggerExecution"].as_f64())
        .collect();
    trigger_ms.iter().sum::<f64>() * 1e6 / trigger_ms.len().max(1) as f64
}

/// [`LiveRuntime::run_tasks`] with trivial tasks, in stages of 4 tasks on 2 workers (the
/// quickstart's map stage), ns per task.
pub fn task_launch_ns(iterations: u64) -> f64 {
    let stages = iterations.div_ceil(4).max(1);
    let mut rt = LiveRuntime::new(2);
    median_of_runs(|| {
        timed(stages * 4, || {
            for stage in 0..stages {
                let tasks: Vec<_> = (0..4u64).map(|i| move |_: &TaskContext| stage + i).collect();
                black_box(rt.run_tasks(tasks, 0));
            }
        })
    })
}

/// [`SourceLog::available`] on one partition of `iterations` events (at most 250 000) at
/// instants moving forward through the log, as a polling engine asks, ns per call.
pub fn source_poll_ns_per_partition(iterations: u64) -> f64 {
    let (events, _) = clickstream(iterations.min(250_000));
    let log = SourceLog::from_events(1, events.into_iter().map(|e| Event { partition: 0, ..e }));
    let calls = iterations.max(1);
    let step = (log.last_arrival() / calls).max(1);
    median_of_runs(|| {
        timed(calls, || {
            let mut acc = 0usize;
            for i in 0..calls {
                acc += log.available(0, black_box(i * step));
            }
            black_box(acc);
        })
    })
}

/// Writing a small file (an offset-log entry) and `fsync`ing it, in a fresh directory under
/// the system's temp dir, ns per write.
pub fn log_write_ns(iterations: u64) -> std::io::Result<f64> {
    let entry = OffsetEntry {
        batch_id: 0,
        offsets: vec![123_456; 4],
        watermark: 1_000,
    }
    .serialize();
    let writes = iterations.max(1);
    with_scratch_dir(|dir| {
        median_of_runs_io(|| {
            let start = Instant::now();
            for i in 0..writes {
                let mut f = File::create(dir.join(format!("{i}")))?;
                f.write_all(entry.as_bytes())?;
                f.sync_all()?;
            }
            Ok(start.elapsed().as_nanos() as f64 / writes as f64)
        })
    })
}

/// Writing a file of `bytes` bytes in 1 MiB chunks and `fsync`ing it, ns per byte.
pub fn disk_ns_per_byte(bytes: u64) -> std::io::Result<f64> {
    let chunk = vec![0x5au8; 1 << 20];
    let bytes = bytes.max(1);
    with_scratch_dir(|dir| {
        median_of_runs_io(|| {
            let path = dir.join("data");
            let start = Instant::now();
            let mut f = File::create(&path)?;
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
            let ns = start.elapsed().as_nanos() as f64 / bytes as f64;
            drop(f);
            std::fs::remove_file(&path)?;
            Ok(ns)
        })
    })
}

/// A [`Link`] over a bounded std channel (orphan rules keep the engines' own impl for
/// crossbeam's `Sender` out of reach of this crate's dependencies).
struct ChannelLink(SyncSender<Message<Row>>);

impl Link<Row> for ChannelLink {
    fn send(&self, msg: Message<Row>) {
        let _ = self.0.send(msg);
    }
}

/// `v` rounded to `digits` significant digits: the measurements vary by some percent between
/// runs, and a profile should not pretend otherwise.
fn significant(v: f64, digits: usize) -> f64 {
    format!("{v:.*e}", digits.saturating_sub(1)).parse().unwrap_or(v)
}

/// The median of [`REPETITIONS`] samples.
fn median_of_runs(mut sample: impl FnMut() -> f64) -> f64 {
    let mut samples: Vec<f64> = (0..REPETITIONS).map(|_| sample()).collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// [`median_of_runs`] of samples that can fail.
fn median_of_runs_io(mut sample: impl FnMut() -> std::io::Result<f64>) -> std::io::Result<f64> {
    let mut error = None;
    let median = median_of_runs(|| {
        sample().unwrap_or_else(|e| {
            error.get_or_insert(e);
            f64::NAN
        })
    });
    error.map_or(Ok(median), Err)
}

/// Runs `f` once and returns its wall time divided by `items`, ns.
fn timed(items: u64, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / items.max(1) as f64
}

/// Runs `f` in a fresh directory under the temp dir, removed afterwards.
fn with_scratch_dir<T>(f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    let dir: PathBuf = std::env::temp_dir().join(format!("streamlab-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = f(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// About `events` clickstream events (the default workload's shape, 4 partitions, arriving
/// over one second) and their campaign table.
fn clickstream(events: u64) -> (Vec<Event>, CampaignTable) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: events.max(1) as f64,
        },
        ..ClickstreamConfig::default()
    };
    (generate(&cfg, 7, NANOS_PER_SEC), campaign_table(&cfg, 7))
}

/// About `n` rows: clickstream events through the full chain.
fn rows(n: u64) -> Vec<Row> {
    let (events, table) = clickstream(n);
    let chain = StatelessChain::new(&full_chain(), &table);
    let rows: Vec<Row> = events
        .iter()
        .filter_map(|e| chain.apply(e, Lineage::default()))
        .collect();
    assert!(!rows.is_empty(), "the calibration workload yields rows");
    rows
}

/// A filter every event passes, then the lookup join.
fn full_chain() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(EventKind::CLICKSTREAM.to_vec()),
        lookup_join: true,
        ..PipelineSpec::default()
    }
}

/// A count keyed by `key_by` in 2 s tumbling windows.
fn aggregation(key_by: Field) -> Aggregation {
    Aggregation {
        key_by,
        window: WindowSpec::Tumbling {
            size: Span::from_ms(2_000),
        },
        function: AggFunc::Count,
        field: None,
    }
}

/// A plausible window result, varied by `i`.
fn window_result(i: i64) -> WindowResult {
    WindowResult {
        key: i % 100,
        start: i * 2_000,
        end: i * 2_000 + 2_000,
        count: (i % 1_000) as u64,
        value: (i % 1_000) as f64,
        origin: Lineage::default(),
        fired_at: i as u64 * 1_000_003,
        handoff: 0,
        recv: 0,
        is_update: false,
    }
}

/// Appends `row` in the 64-byte wire layout.
fn encode_row(row: &Row, buf: &mut Vec<u8>) {
    let e = &row.event;
    buf.extend_from_slice(&e.seq.to_le_bytes());
    buf.extend_from_slice(&e.event_time.to_le_bytes());
    buf.extend_from_slice(&e.arrival.to_le_bytes());
    buf.extend_from_slice(&e.session.to_le_bytes());
    for v in [
        e.partition,
        e.user,
        e.page,
        e.ad,
        row.campaign,
        e.dwell_ms,
        e.price_cents,
    ] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&[e.kind.index() as u8, 0, 0, 0]);
}

/// Reads the fields of a wire row back (folded into a checksum).
fn decode_row_checksum(wire: &[u8]) -> u64 {
    let u64_at = |i: usize| u64::from_le_bytes(wire[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(wire[i..i + 4].try_into().expect("4 bytes")));
    let words = (0..4).map(|k| u64_at(8 * k));
    let ints = (0..7).map(|k| u32_at(32 + 4 * k));
    words
        .chain(ints)
        .fold(u64::from(wire[60]), |acc, v| acc.rotate_left(5) ^ v)
}
