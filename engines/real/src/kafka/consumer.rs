//! The output topic read back: every record stamped with the run clock on receipt, as the
//! loopback receiver stamps a line.
//!
//! One fetch loop per partition, from the partition's first offset, each a long poll (the
//! broker answers as soon as a record is there, or after [`MAX_WAIT_MS`]), so a record is
//! stamped within one fetch round trip of being readable. Fetches are `read_committed`
//! (rskafka's only mode): an exactly-once engine's records count once their transaction
//! commits, which is when a downstream reader would see them. rskafka skips no aborted
//! transaction (it reads no aborted-transaction list); a run without failures aborts none, and
//! the reference check would show an aborted result delivered. Its transaction markers are
//! stepped over (see `fetch_partition`). The value is the engine's output
//! line (the row contract of [`crate::job::sink_columns`]).
//!
//! Invariant: [`OutputConsumer::stop`] returns only when the thread has ended; the lines come
//! back in receipt order, and stamps are non-decreasing (one clock, one thread).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use streamlab_workloads::feeder::RunClock;
use tokio::sync::Mutex;

use crate::driver::StampedLine;
use crate::error::{RealEngineError, Result};
use crate::kafka::client::{connect_async, runtime};

/// The longest a fetch waits for a record before it returns empty and is asked again.
pub const MAX_WAIT_MS: i32 = 100;

/// Reads an output topic on a thread of its own until stopped.
#[derive(Debug)]
pub struct OutputConsumer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<Vec<StampedLine>>>>,
}

impl OutputConsumer {
    /// Opens every partition of `topic` on `bootstrap` and starts reading them; returns once
    /// every partition is open.
    pub fn start(bootstrap: &str, topic: &str, partitions: u32, clock: RunClock) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&received));
        let thread = std::thread::Builder::new()
            .name("streamlab-kafka-consumer".into())
            .spawn(move || {
                let runtime = runtime()?;
                runtime.block_on(async move {
                    let client = match connect_async(&bootstrap, Duration::from_secs(10)).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(RealEngineError::Kafka(e.to_string())));
                            return Err(e);
                        }
                    };
                    let mut clients = Vec::new();
                    for p in 0..partitions as i32 {
                        match client
                            .partition_client(topic.as_str(), p, UnknownTopicHandling::Retry)
                            .await
                        {
                            Ok(c) => clients.push(c),
                            Err(e) => {
                                let e = RealEngineError::Kafka(format!("topic {topic} partition {p}: {e}"));
                                let _ = ready_tx.send(Err(RealEngineError::Kafka(e.to_string())));
                                return Err(e);
                            }
                        }
                    }
                    let _ = ready_tx.send(Ok(()));
                    let lines = Arc::new(Mutex::new(Vec::new()));
                    let local = tokio::task::LocalSet::new();
                    local
                        .run_until(async {
                            let tasks: Vec<_> = clients
                                .into_iter()
                                .map(|c| {
                                    tokio::task::spawn_local(fetch_partition(
                                        c,
                                        clock.clone(),
                                        Arc::clone(&lines),
                                        Arc::clone(&stop_flag),
                                        Arc::clone(&count),
                                    ))
                                })
                                .collect();
                            for t in tasks {
                                t.await.expect("a fetch task panicked")?;
                            }
                            Ok::<(), RealEngineError>(())
                        })
                        .await?;
                    let lines = std::mem::take(&mut *lines.lock().await);
                    Ok(lines)
                })
            })
            .map_err(|e| RealEngineError::Kafka(format!("could not start the consumer thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(OutputConsumer {
                stop,
                received,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(RealEngineError::Kafka("the consumer ended before it started".into()))
            }
        }
    }

    /// Records received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Stops reading (within one fetch wait) and returns every line received, in receipt order.
    pub fn stop(mut self) -> Result<Vec<StampedLine>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("a running consumer")
            .join()
            .map_err(|_| RealEngineError::Kafka("the consumer thread panicked".into()))?
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

async fn fetch_partition(
    client: PartitionClient,
    clock: RunClock,
    lines: Arc<Mutex<Vec<StampedLine>>>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Result<()> {
    let what = format!("topic {} partition {}", client.topic(), client.partition());
    let mut offset = client
        .get_offset(OffsetAt::Earliest)
        .await
        .map_err(|e| RealEngineError::Kafka(format!("{what}: earliest offset: {e}")))?;
    // rskafka 0.6 cannot parse a transaction marker (it reads the control record's key from
    // the record's framing: "Unknown control batch record version"), and one marker fails the
    // whole fetch. A failed fetch is retried for one batch only (the broker always returns at
    // least one whole batch, so a 1-byte limit returns exactly one); if that one is the marker,
    // its single offset is skipped.
    let mut single_batch = false;
    while !stop.load(Ordering::Relaxed) {
        let max_bytes = if single_batch { 2 } else { 1_048_576 };
        let records = match client.fetch_records(offset, 1..max_bytes, MAX_WAIT_MS).await {
            Ok((records, _high)) => {
                single_batch = false;
                records
            }
            Err(e) if e.to_string().contains("control batch") => {
                if single_batch {
                    offset += 1;
                }
                single_batch = !single_batch;
                continue;
            }
            Err(e) => return Err(RealEngineError::Kafka(format!("fetching {what} at {offset}: {e}"))),
        };
        if records.is_empty() {
            continue;
        }
        let stamp = clock.now();
        let warmup = clock.in_warmup(stamp);
        let mut out = lines.lock().await;
        for r in records {
            offset = offset.max(r.offset + 1);
            if let Some(value) = r.record.value {
                out.push(StampedLine {
                    stamp,
                    warmup,
                    text: String::from_utf8_lossy(&value).into_owned(),
                });
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}
