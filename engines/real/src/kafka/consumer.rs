//! The output topic read back: every record stamped with the run clock on receipt, as the
//! loopback receiver stamps a line, and counted only once its transaction commits.
//!
//! One fetch loop on a thread of its own, one Fetch request for every partition of the topic,
//! each a long poll (the broker answers as soon as a record is there, or after
//! [`MAX_WAIT_MS`]), so a record is stamped within one fetch round trip of being readable.
//! Fetches are `read_committed`, and the filtering that isolation level leaves to the client is
//! done here ([`crate::kafka::read_committed`]): an exactly-once engine's records count when
//! their transaction's COMMIT marker is read — when a downstream `read_committed` reader would
//! see them — and an aborted transaction's records (a killed engine's open transaction) are
//! dropped and counted. The fetch is streamlab's own few bytes of protocol
//! ([`crate::kafka::wire`]: rskafka hides the batch fields this needs and fails on markers).
//! The value is the engine's output line (the row contract of [`crate::job::sink_columns`]).
//!
//! The fetch goes to the first `bootstrap` server: the leader of every partition on the broker
//! streamlab owns. On a user's multi-broker cluster a partition led elsewhere is an error that
//! says so (NOT_LEADER_OR_FOLLOWER).
//!
//! Invariant: [`OutputConsumer::stop`] returns only when the thread has ended; the lines come
//! back in receipt order, and stamps are non-decreasing (one clock, one thread).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streamlab_workloads::feeder::RunClock;

use crate::driver::StampedLine;
use crate::error::{RealEngineError, Result};
use crate::kafka::client::connect_first;
use crate::kafka::read_committed::CommittedPartition;
use crate::kafka::wire::{FetchPartition, FetchRequest};

/// The longest a fetch waits for a record before it returns empty and is asked again.
pub const MAX_WAIT_MS: i32 = 100;

/// The most bytes one fetch takes from one partition.
const PARTITION_MAX_BYTES: i32 = 1 << 20;

/// How long a partition may answer "unknown" or "no leader yet" before it is an error.
const LEADER_WAIT: Duration = Duration::from_secs(15);

/// Everything the consumer read.
#[derive(Debug, Default)]
pub struct Consumed {
    /// Every committed (or non-transactional) record's value, stamped, in receipt order.
    pub lines: Vec<StampedLine>,
    /// Records dropped because their transaction aborted.
    pub aborted: u64,
    /// Records of transactions still open when the consumer stopped (never committed).
    pub pending: u64,
    /// For every result outside the warm-up whose topic keeps log-append times: the broker's
    /// output hop, from the record's append to the log to its receipt here, ns (wall clock,
    /// one host; the broker's timestamp has millisecond resolution).
    pub output_hop_ns: Vec<u64>,
}

/// Now on the wall clock, ns since the Unix epoch: the broker's log-append times are on it.
fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads an output topic on a thread of its own until stopped.
#[derive(Debug)]
pub struct OutputConsumer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    open: Arc<AtomicBool>,
    /// What was read, and why reading ended early if it did (the broker went away).
    thread: Option<JoinHandle<(Consumed, Option<RealEngineError>)>>,
}

/// The fetch loop's connection and state: every partition of one topic read from its start,
/// `read_committed`. The output consumer's, and the native engines' input consumer's
/// ([`crate::kafka::input`]).
pub(crate) struct Reader {
    stream: TcpStream,
    topic: String,
    pub(crate) partitions: Vec<CommittedPartition>,
    requests: Vec<FetchPartition>,
    correlation: i32,
    /// The longest a fetch waits for a record.
    max_wait_ms: i32,
    /// At the last fetch, some partition's last stable offset was below its high watermark:
    /// a transaction was open, and what follows it is not readable yet.
    pub(crate) open: bool,
}

impl Reader {
    /// Connects to `bootstrap` and fetches until every partition of `topic` has answered (a new
    /// topic's leaders may still be elected), handing what that first fetch released to
    /// `release`; each fetch waits at most `max_wait_ms` for a record.
    pub(crate) fn open(
        bootstrap: &str,
        topic: &str,
        partitions: u32,
        max_wait_ms: i32,
        release: &mut dyn FnMut(usize, Vec<u8>, Option<i64>),
    ) -> Result<Reader> {
        let stream = connect_first(bootstrap)?;
        let mut reader = Reader {
            stream,
            topic: topic.to_string(),
            partitions: (0..partitions).map(|_| CommittedPartition::default()).collect(),
            requests: Vec::with_capacity(partitions as usize),
            correlation: 0,
            max_wait_ms,
            open: false,
        };
        let began = Instant::now();
        while !reader.fetch(release)? {
            if began.elapsed() > LEADER_WAIT {
                return Err(RealEngineError::Kafka(format!(
                    "topic {topic} on {bootstrap}: a partition had no leader within {LEADER_WAIT:?} (on a multi-broker cluster: its leader is not the first bootstrap server)"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(reader)
    }

    /// One fetch of every partition; committed values go to `release`, with their partition.
    /// Returns whether every
    /// partition answered without error (a retriable error — unknown topic, no leader yet — is
    /// `Ok(false)`).
    pub(crate) fn fetch(&mut self, release: &mut dyn FnMut(usize, Vec<u8>, Option<i64>)) -> Result<bool> {
        self.correlation = self.correlation.wrapping_add(1);
        self.requests.clear();
        self.requests
            .extend(self.partitions.iter().enumerate().map(|(i, p)| FetchPartition {
                partition: i as i32,
                offset: p.next,
            }));
        let response = FetchRequest {
            correlation: self.correlation,
            topic: &self.topic,
            partitions: &self.requests,
            max_wait_ms: self.max_wait_ms,
            partition_max_bytes: PARTITION_MAX_BYTES,
        }
        .exchange(&mut self.stream)
        .map_err(|e| RealEngineError::Kafka(format!("topic {}: {e}", self.topic)))?;
        let mut whole = true;
        self.open = false;
        for data in response.partitions {
            self.open |= data.last_stable_offset >= 0 && data.last_stable_offset < data.high_watermark;
            let index = data.partition as usize;
            let Some(p) = self.partitions.get_mut(index) else {
                continue;
            };
            match data.error {
                0 => p.accept(data.batches, &mut |v, appended| release(index, v, appended)),
                // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER
                // (a new topic's leader is being elected), FENCED/UNKNOWN_LEADER_EPOCH.
                3 | 5 | 6 | 74 | 75 => whole = false,
                code => {
                    return Err(RealEngineError::Kafka(format!(
                        "fetching topic {} partition {} at offset {}: Kafka error code {code}",
                        self.topic, data.partition, p.next
                    )))
                }
            }
        }
        Ok(whole)
    }
}

impl OutputConsumer {
    /// Connects to `bootstrap` and starts reading every partition of `topic`; returns once
    /// every partition has answered a fetch.
    pub fn start(bootstrap: &str, topic: &str, partitions: u32, clock: RunClock) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let mut early = Vec::new();
        let mut reader = Reader::open(bootstrap, topic, partitions, MAX_WAIT_MS, &mut |_, v, appended| {
            early.push((v, appended))
        })?;
        let open = Arc::new(AtomicBool::new(reader.open));
        let (stop_flag, count, open_flag) = (Arc::clone(&stop), Arc::clone(&received), Arc::clone(&open));
        let thread = std::thread::Builder::new()
            .name("streamlab-kafka-consumer".into())
            .spawn(move || {
                let mut lines = Vec::new();
                let mut output_hop_ns = Vec::new();
                let mut batch = early;
                let mut failed = None;
                loop {
                    // One stamp per fetch: everything it released became readable together.
                    if !batch.is_empty() {
                        let stamp = clock.now();
                        let warmup = clock.in_warmup(stamp);
                        let wall_ns = unix_ns();
                        for (v, appended) in batch.drain(..) {
                            let output_hop = appended.map(|ms| wall_ns.saturating_sub(ms.max(0) as u64 * 1_000_000));
                            if let Some(hop) = output_hop.filter(|_| !warmup) {
                                output_hop_ns.push(hop);
                            }
                            lines.push(StampedLine {
                                stamp,
                                warmup,
                                text: String::from_utf8_lossy(&v).into_owned(),
                                output_hop,
                            });
                        }
                        count.store(lines.len() as u64, Ordering::Relaxed);
                    }
                    if stop_flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = reader.fetch(&mut |_, v, appended| batch.push((v, appended))) {
                        failed = Some(e);
                        break;
                    }
                    open_flag.store(reader.open, Ordering::Relaxed);
                }
                let consumed = Consumed {
                    lines,
                    output_hop_ns,
                    aborted: reader.partitions.iter().map(|p| p.aborted).sum(),
                    pending: reader.partitions.iter().map(CommittedPartition::pending).sum(),
                };
                (consumed, failed)
            })
            .map_err(|e| RealEngineError::Kafka(format!("could not start the consumer thread: {e}")))?;
        Ok(OutputConsumer {
            stop,
            received,
            open,
            thread: Some(thread),
        })
    }

    /// Records received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Whether, at the last fetch, a transaction was open on the output topic (its last stable
    /// offset below its high watermark): results may still come that a `read_committed` reader
    /// cannot see yet — a killed producer's transaction holds them back until it is aborted.
    pub fn transaction_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Stops reading (within one fetch wait) and returns everything received, in receipt order.
    pub fn stop(self) -> Result<Consumed> {
        match self.stop_keeping()? {
            (_, Some(e)) => Err(e),
            (consumed, None) => Ok(consumed),
        }
    }

    /// Stops reading and returns everything received even when reading had failed (a run
    /// stopped by Ctrl-C, whose broker is already gone), with the failure.
    pub fn stop_keeping(mut self) -> Result<(Consumed, Option<RealEngineError>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("a running consumer")
            .join()
            .map_err(|_| RealEngineError::Kafka("the consumer thread panicked".into()))
    }
}

impl Drop for OutputConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
