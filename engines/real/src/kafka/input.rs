//! The input topic read by a native engine: streamlab's own consumer fetches every partition
//! and publishes what the broker delivered into the [`LiveSource`] the engine reads, so the
//! micro-batch and per-record engines see an event only once it has gone producer → broker →
//! consumer, as Spark's and Flink's Kafka sources do.
//!
//! The engines crate knows no Kafka: its live source answers the reader's five questions
//! (`engines/src/source.rs`) from what was published, and here the publisher is this consumer
//! instead of the generator's producer thread. Each fetch is a long poll of at most
//! [`FETCH_WAIT_MS`] (the broker answers as soon as a record is there) over the same
//! `read_committed` fetch the output consumer uses ([`crate::kafka::consumer`]); what it
//! returned is decoded (the value is the event's trace row, [`read_csv_row`]) and published
//! with the promise "look again [`LOOK_AGAIN`] after this fetch": a reader whose clock passes
//! it waits for the next fetch to return — a blocking poll, never a busy one. An event's
//! *arrival* stays its scheduled one (the latency origin); the time it took to be fetched (the
//! input's broker hop: produce, log append, fetch) is measured per event here and lands in
//! whatever the engine's first latency component is (trigger wait, queueing).
//!
//! **Replay.** A restarted engine rewinds to its checkpoint's offsets. The live source keeps
//! nothing behind a partition's latest read for a Kafka source (`LiveSource::retaining(0)`), so
//! a rewind regenerates the range through the factory — [`topic_feed`]: a fresh consumer that
//! fetches the input topic again from its start, keeping the rewound range (the topic's offsets
//! are the log's). So what a replay reads comes from the broker a second time.
//!
//! Invariants: a partition's events are published in offset order (the producer wrote them in
//! arrival order); the source is marked finished once every partition's `END` record is read;
//! [`InputConsumer::stop`] returns only when the thread has ended. The fetch decodes each record's
//! value into an owned buffer (`wire.rs`); the decoded events go out through one reused vector.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use streamlab_engines::event::Event;
use streamlab_engines::live_source::{EventFeed, FeedFactory, LiveSource};
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::{RunClock, SendingLag};
use streamlab_workloads::trace::read_csv_row;

use crate::error::{RealEngineError, Result};
use crate::kafka::consumer::Reader;
use crate::kafka::producer::END_OF_STREAM;

/// The longest one fetch of the input waits for a record.
pub const FETCH_WAIT_MS: i32 = 5;

/// After a fetch returns, a reader looks again this much later (it then waits for the next
/// fetch): the consumer's promise that nothing arrived before it that it has not published.
pub const LOOK_AGAIN: Nanos = 1_000_000;

/// What the input consumer read.
#[derive(Clone, Debug, Default)]
pub struct InputReport {
    /// Events fetched and published (a replay's second fetch not counted).
    pub events: u64,
    /// Per event: fetched by this consumer − scheduled arrival (the input's broker hop, and
    /// the producer's own lag).
    pub fetch_lag: SendingLag,
}

/// Fetches the input topic into a live source on a thread of its own.
#[derive(Debug)]
pub struct InputConsumer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<InputReport>>>,
}

/// Turns a fetched value into an event (`None`: a partition's end); an error names the topic.
fn decode(value: &[u8], topic: &str, offset: u64) -> Result<Option<Event>> {
    if value == END_OF_STREAM.as_bytes() {
        return Ok(None);
    }
    let text = std::str::from_utf8(value)
        .map_err(|_| RealEngineError::Kafka(format!("topic {topic}: a record that is not UTF-8")))?;
    read_csv_row(text, Path::new(topic), offset)
        .map(Some)
        .map_err(|e| RealEngineError::Kafka(format!("reading the input topic: {e}")))
}

impl InputConsumer {
    /// Connects to `bootstrap` and starts fetching every partition of `topic` into `source`,
    /// stamping fetches with `clock` (the producer's). Returns once every partition has
    /// answered a fetch.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: u32,
        source: Arc<LiveSource>,
        clock: RunClock,
    ) -> Result<Self> {
        let mut fetched: Vec<Vec<u8>> = Vec::new();
        let mut reader = Reader::open(bootstrap, topic, partitions, FETCH_WAIT_MS, &mut |_, v, _| {
            fetched.push(v)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let topic = topic.to_string();
        let thread = std::thread::Builder::new()
            .name("streamlab-kafka-input".into())
            .spawn(move || {
                let mut lag = Histogram::<u64>::new_with_max(3_600_000_000_000, 3).expect("constant bounds");
                let mut events = Vec::new();
                let (mut ends, mut count) = (0u32, 0u64);
                loop {
                    let now = clock.now();
                    for value in fetched.drain(..) {
                        match decode(&value, &topic, count)? {
                            Some(e) => {
                                lag.saturating_record(now.saturating_sub(e.arrival));
                                events.push(e);
                                count += 1;
                            }
                            None => ends += 1,
                        }
                    }
                    let last = ends >= partitions;
                    source.publish(&mut events, now + LOOK_AGAIN, last);
                    source.release();
                    if last || stop_flag.load(Ordering::Relaxed) {
                        break;
                    }
                    reader.fetch(&mut |_, v, _| fetched.push(v))?;
                }
                // Past the input's end the engine's reads still release what it is past.
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    source.release();
                }
                Ok(InputReport {
                    events: count,
                    fetch_lag: SendingLag::from_histogram(&lag),
                })
            })
            .map_err(|e| RealEngineError::Kafka(format!("could not start the input consumer's thread: {e}")))?;
        Ok(InputConsumer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops fetching and returns what was read.
    pub fn stop(mut self) -> Result<InputReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("a running consumer")
            .join()
            .map_err(|_| RealEngineError::Kafka("the input consumer's thread panicked".into()))?
    }
}

impl Drop for InputConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Generators over the input topic, for a live source's rewinds (see the module header): each
/// fetches `topic` from its start on `bootstrap`.
pub fn topic_feed(bootstrap: &str, topic: &str, partitions: u32) -> Box<FeedFactory> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    Box::new(move || -> Box<dyn EventFeed> {
        Box::new(TopicFeed {
            bootstrap: bootstrap.clone(),
            topic: topic.clone(),
            partitions,
            reader: None,
            fetched: Vec::new(),
            ended: vec![false; partitions as usize],
            offset: 0,
        })
    })
}

/// The input topic read again from its start, in arrival order per partition.
struct TopicFeed {
    bootstrap: String,
    topic: String,
    partitions: u32,
    reader: Option<Reader>,
    /// Fetched, not yet handed out, in fetch order.
    fetched: Vec<Event>,
    /// Per partition: its end was read.
    ended: Vec<bool>,
    /// Records decoded (for errors).
    offset: u64,
}

impl TopicFeed {
    /// Fetches once more (the first time: connects, from offset 0).
    fn fetch_more(&mut self) -> Result<()> {
        let mut values = Vec::new();
        let mut keep = |p: usize, v: Vec<u8>, _| values.push((p, v));
        match &mut self.reader {
            Some(reader) => {
                reader.fetch(&mut keep)?;
            }
            None => {
                self.reader = Some(Reader::open(
                    &self.bootstrap,
                    &self.topic,
                    self.partitions,
                    FETCH_WAIT_MS,
                    &mut keep,
                )?)
            }
        }
        for (p, v) in values {
            match decode(&v, &self.topic, self.offset)? {
                Some(e) => self.fetched.push(e),
                None => self.ended[p] = true,
            }
            self.offset += 1;
        }
        Ok(())
    }
}

impl EventFeed for TopicFeed {
    fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
        // Every event arriving before `until` is fetched once each partition has shown one at
        // or after it, or its end (a partition's events come in arrival order).
        loop {
            let mut past = self.ended.clone();
            for e in self.fetched.iter().filter(|e| e.arrival >= until) {
                if let Some(p) = past.get_mut(e.partition as usize) {
                    *p = true;
                }
            }
            if past.iter().all(|&p| p) {
                break;
            }
            if let Err(e) = self.fetch_more() {
                panic!("replaying the input topic {}: {e}", self.topic);
            }
        }
        let start = out.len();
        let mut rest = Vec::with_capacity(self.fetched.len());
        for e in self.fetched.drain(..) {
            if e.arrival < until {
                out.push(e);
            } else {
                rest.push(e);
            }
        }
        self.fetched = rest;
        out[start..].sort_by_key(|e| (e.arrival, e.seq));
    }
}
