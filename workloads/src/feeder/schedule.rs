//! The open-loop schedule of one partition: every event written at its scheduled arrival
//! relative to the run clock's zero, never later than the socket allows and never earlier.
//!
//! Invariants: a partition's events go out in the order given (arrival order), one CSV row per
//! event and nothing else but the final `END`; the loop never waits for the reader except inside
//! `write_all` (TCP backpressure); events that fell due meanwhile leave in one write as soon as
//! it returns, and each event's lag is taken when the write holding it completed. The row
//! buffer is reused, so the loop allocates nothing per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use streamlab_engines::event::Event;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::lag::lag_histogram;
use super::{FeederError, END_OF_STREAM};
use crate::trace::write_csv_row;

/// Most bytes written per write call, so one event's lag is never hidden behind a huge batch.
const WRITE_CHUNK: usize = 64 * 1024;

/// The events of each partition, split once before the run from the stream in arrival order.
#[derive(Debug)]
pub(crate) struct FeedPlan {
    /// `by_partition[p]`: partition `p`'s events, in arrival order.
    pub(crate) by_partition: Vec<Vec<Event>>,
}

impl FeedPlan {
    /// Splits `events` (in arrival order) over `partitions`, refusing an event whose partition
    /// is out of range or that arrives before its predecessor.
    pub(crate) fn new(events: &[Event], partitions: u32) -> Result<Self, FeederError> {
        if partitions == 0 {
            return Err(FeederError::NoPartitions);
        }
        let mut by_partition = vec![Vec::new(); partitions as usize];
        let mut previous = 0;
        for e in events {
            if e.arrival < previous {
                return Err(FeederError::NotInArrivalOrder {
                    seq: e.seq,
                    arrival: e.arrival,
                    previous,
                });
            }
            previous = e.arrival;
            let list = by_partition
                .get_mut(e.partition as usize)
                .ok_or(FeederError::PartitionOutOfRange {
                    seq: e.seq,
                    partition: e.partition,
                    partitions,
                })?;
            list.push(*e);
        }
        Ok(Self { by_partition })
    }
}

/// What one partition's schedule did.
#[derive(Debug)]
pub(crate) struct PartitionFed {
    /// Events written.
    pub(crate) sent: u64,
    /// Sending lag of each, ns.
    pub(crate) lag: Histogram<u64>,
}

/// Writes `events` of `partition` to `stream` on schedule from `zero`, then `END`, then closes.
pub(crate) async fn feed_partition(
    mut stream: TcpStream,
    partition: u32,
    events: &[Event],
    zero: Instant,
    sent: &AtomicU64,
) -> Result<PartitionFed, FeederError> {
    let _ = stream.set_nodelay(true);
    let total = events.len() as u64;
    let mut lag = lag_histogram();
    let mut rows: Vec<u8> = Vec::with_capacity(WRITE_CHUNK + 256);
    let due = |e: &Event| zero + Duration::from_nanos(e.arrival);
    let mut next = 0;
    while next < events.len() {
        let first_due = due(&events[next]);
        if first_due > Instant::now() {
            tokio::time::sleep_until(first_due).await;
        }
        let now = Instant::now();
        let batch = next;
        rows.clear();
        while next < events.len() && rows.len() < WRITE_CHUNK && due(&events[next]) <= now {
            write_csv_row(&mut rows, &events[next]).expect("writing to a Vec cannot fail");
            next += 1;
        }
        stream
            .write_all(&rows)
            .await
            .map_err(|source| FeederError::Disconnected {
                partition,
                sent: batch as u64,
                total,
                source,
            })?;
        let written = Instant::now();
        sent.fetch_add((next - batch) as u64, Ordering::Relaxed);
        for e in &events[batch..next] {
            let late = written.saturating_duration_since(due(e)).as_nanos();
            lag.saturating_record(late.min(u128::from(u64::MAX)) as u64);
        }
    }
    let end = format!("{END_OF_STREAM}\n");
    let closed = async {
        stream.write_all(end.as_bytes()).await?;
        stream.shutdown().await
    };
    closed.await.map_err(|source| FeederError::Disconnected {
        partition,
        sent: total,
        total,
        source,
    })?;
    Ok(PartitionFed { sent: total, lag })
}
