//! The workload produced open-loop to the input topic: every event written to its own
//! partition's leader at its scheduled arrival, relative to the run clock's zero.
//!
//! The record is the feeder's, moved onto Kafka: value = the event's CSV trace row (the columns
//! of `streamlab_workloads::trace::COLUMNS`, no newline), key = the partition key (the user, in
//! decimal), timestamp = the event's time (ms; `CreateTime`, what Kafka Streams and Flink's
//! Kafka source take as event time), partition = the event's source partition. After a
//! partition's last event, one record with the value `END` follows, as the feeder's `END` line.
//!
//! Invariants, as for the feeder's schedule: a partition's events go out in arrival order; the
//! loop never waits for the engine, only for the broker's acknowledgement of the previous
//! produce request (the broker's own backpressure), and events that fell due meanwhile leave in
//! one request; each event's sending lag (acknowledged − scheduled arrival) is measured, so a
//! producer that falls behind is visible rather than shifting the schedule. `rskafka` takes each
//! record's key and value as owned vectors, so this loop allocates per record; it is the
//! workload's side, not an engine's hot path, and the lag shows what it costs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use streamlab_engines::event::Event;
use streamlab_workloads::feeder::{RunClock, SendingLag};
use streamlab_workloads::trace::write_csv_row;
use tokio::time::Instant;

use crate::error::{RealEngineError, Result};
use crate::kafka::client::{connect_async, runtime};

/// Most records in one produce request, so one event's lag is never hidden behind a huge batch.
const MAX_BATCH: usize = 1000;

/// The value of the record that ends a partition.
pub const END_OF_STREAM: &str = "END";

/// What the producer did.
#[derive(Clone, Debug, Default)]
pub struct ProducerReport {
    /// Events produced (end markers not counted).
    pub events_sent: u64,
    /// Sending lag over every event: acknowledged by the broker − scheduled arrival.
    pub lag: SendingLag,
}

/// The open-loop producer, running on a thread of its own.
#[derive(Debug)]
pub struct ScheduleProducer {
    thread: Option<JoinHandle<Result<ProducerReport>>>,
    /// Events acknowledged so far (a progress display's figure).
    sent: Arc<AtomicU64>,
    /// Set to end the schedule early (Ctrl-C).
    stop: Arc<AtomicBool>,
}

impl ScheduleProducer {
    /// Connects to `bootstrap`, opens every partition of `topic`, then starts `clock` (if it
    /// has not started) and produces `events` (in arrival order) on its schedule. Returns once
    /// the schedule has started; an error before that (no broker, no topic) is returned here.
    pub fn start(bootstrap: &str, topic: &str, events: &[Event], partitions: u32, clock: RunClock) -> Result<Self> {
        let mut by_partition = vec![Vec::new(); partitions as usize];
        for e in events {
            by_partition
                .get_mut(e.partition as usize)
                .ok_or_else(|| {
                    RealEngineError::Kafka(format!(
                        "event {} is in partition {}, but topic {topic} has {partitions}",
                        e.seq, e.partition
                    ))
                })?
                .push(*e);
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (acked, stopping) = (Arc::clone(&sent), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("streamlab-kafka-producer".into())
            .spawn(move || {
                let runtime = runtime()?;
                runtime.block_on(async move {
                    let opened = open_partitions(&bootstrap, &topic, partitions).await;
                    let (clients, zero) = match opened {
                        Ok(clients) => {
                            let zero = Instant::from_std(clock.start());
                            let _ = ready_tx.send(Ok(()));
                            (clients, zero)
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(RealEngineError::Kafka(e.to_string())));
                            return Err(e);
                        }
                    };
                    let tasks: Vec<_> = clients
                        .into_iter()
                        .zip(by_partition)
                        .map(|(client, events)| {
                            let shared = (Arc::clone(&acked), Arc::clone(&stopping));
                            produce_partition(client, events, zero, shared)
                        })
                        .collect();
                    let mut report = ProducerReport::default();
                    let mut lag = Histogram::<u64>::new_with_max(3_600_000_000_000, 3).expect("constant bounds");
                    for done in futures_join_all(tasks).await {
                        let (sent, part_lag) = done?;
                        report.events_sent += sent;
                        lag.add(&part_lag).expect("same bounds");
                    }
                    report.lag = SendingLag::from_histogram(&lag);
                    Ok(report)
                })
            })
            .map_err(|e| RealEngineError::Kafka(format!("could not start the producer thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(ScheduleProducer {
                thread: Some(thread),
                sent,
                stop,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(thread
                .join()
                .map_err(|_| RealEngineError::Kafka("the producer thread panicked".into()))
                .and_then(|r| r.map(|_| ()))
                .err()
                .unwrap_or_else(|| RealEngineError::Kafka("the producer ended before it started".into()))),
        }
    }

    /// Events the broker has acknowledged so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Ends the schedule early (Ctrl-C) and reports what the broker had acknowledged; the sending
    /// lag is not measured (`lag.events` is 0). A producer still waiting on a broker that is gone
    /// is left to end on its own after two seconds (its thread holds nothing of the run).
    pub fn stop_with_report(mut self) -> ProducerReport {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.is_finished() {
            let _ = self.thread.take().map(JoinHandle::join);
        } else {
            drop(self.thread.take());
        }
        ProducerReport {
            events_sent: self.sent(),
            lag: SendingLag::default(),
        }
    }

    /// Whether every event (and every end marker) has been produced, or the producer failed.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the schedule to end.
    pub fn wait(mut self) -> Result<ProducerReport> {
        self.thread
            .take()
            .expect("a running producer")
            .join()
            .map_err(|_| RealEngineError::Kafka("the producer thread panicked".into()))?
    }
}

/// Joins the partitions' futures on the current-thread runtime (each spawned as a local task).
async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let handles: Vec<_> = futures.into_iter().map(tokio::task::spawn_local).collect();
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(h.await.expect("a producer task panicked"));
            }
            out
        })
        .await
}

async fn open_partitions(bootstrap: &str, topic: &str, partitions: u32) -> Result<Vec<PartitionClient>> {
    let client = connect_async(bootstrap, Duration::from_secs(10)).await?;
    let mut clients = Vec::with_capacity(partitions as usize);
    for p in 0..partitions as i32 {
        clients.push(
            client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| RealEngineError::Kafka(format!("topic {topic} partition {p}: {e}")))?,
        );
    }
    Ok(clients)
}

/// The record of `event`.
pub fn record_of(event: &Event) -> Record {
    let mut value = Vec::with_capacity(96);
    write_csv_row(&mut value, event).expect("writing to a Vec cannot fail");
    if value.last() == Some(&b'\n') {
        value.pop();
    }
    Record {
        key: Some(event.user.to_string().into_bytes()),
        value: Some(value),
        headers: Default::default(),
        timestamp: timestamp(event.event_time),
    }
}

/// The end marker of a partition whose last event time is `last_event_time` (ms).
pub fn end_record(last_event_time: i64) -> Record {
    Record {
        key: Some(END_OF_STREAM.as_bytes().to_vec()),
        value: Some(END_OF_STREAM.as_bytes().to_vec()),
        headers: Default::default(),
        timestamp: timestamp(last_event_time),
    }
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Produces one partition's `events` on schedule from `zero`, then its end marker.
async fn produce_partition(
    client: PartitionClient,
    events: Vec<Event>,
    zero: Instant,
    (sent, stop): (Arc<AtomicU64>, Arc<AtomicBool>),
) -> Result<(u64, Histogram<u64>)> {
    let mut lag = Histogram::<u64>::new_with_max(3_600_000_000_000, 3).expect("constant bounds");
    let due = |e: &Event| zero + Duration::from_nanos(e.arrival);
    let partition = client.partition();
    let fail = |e: rskafka::client::error::Error| {
        RealEngineError::Kafka(format!("producing to {} partition {partition}: {e}", client.topic()))
    };
    let mut next = 0;
    while next < events.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok((next as u64, lag));
        }
        let first_due = due(&events[next]);
        if first_due > Instant::now() {
            tokio::time::sleep_until(first_due).await;
        }
        let now = Instant::now();
        let batch = next;
        let mut records = Vec::new();
        while next < events.len() && records.len() < MAX_BATCH && due(&events[next]) <= now {
            records.push(record_of(&events[next]));
            next += 1;
        }
        client
            .produce(records, Compression::NoCompression)
            .await
            .map_err(fail)?;
        let acked = Instant::now();
        sent.fetch_add((next - batch) as u64, Ordering::Relaxed);
        for e in &events[batch..next] {
            let late = acked.saturating_duration_since(due(e)).as_nanos();
            lag.saturating_record(late.min(u128::from(u64::MAX)) as u64);
        }
    }
    let last = events.last().map_or(0, |e| e.event_time);
    client
        .produce(vec![end_record(last)], Compression::NoCompression)
        .await
        .map_err(fail)?;
    Ok((events.len() as u64, lag))
}
