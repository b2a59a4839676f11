//! Spark's continuous processing (`Trigger.Continuous(checkpointInterval)`): no batches at all.
//!
//! One long-running task per source partition reads records as they arrive and writes them
//! through the map-like operators straight to the sink, so latency is the time to read and
//! process a record (about a millisecond in Spark). Every `checkpoint_interval` each task
//! reports an epoch marker with its offset; the driver's epoch coordinator commits an epoch
//! once every partition has reported it. Output is at-least-once: after a failure, the records
//! since the last committed epoch are replayed. Only map-like pipelines qualify (the config
//! check refuses aggregations, as Spark does), and every partition needs its own core.

use crate::cost::Work;
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::operators::stateless::StatelessChain;
use crate::operators::{Lineage, Output};
use crate::run::Delivered;
use crate::runtime::TaskContext;
use crate::source::SourceLog;
use crate::time::Nanos;

/// The components a continuous-processing output's latency is split into.
pub const COMPONENTS: [Component; 2] = [Component::Queueing, Component::Processing];

/// Records one task reads before it looks at its epoch timer again.
const READ_CHUNK: usize = 256;

/// What one long-running partition task produced.
#[derive(Debug)]
pub struct PartitionTaskOutput {
    /// Delivered outputs, in order.
    pub delivered: Vec<Delivered>,
    /// Latency of those outputs.
    pub latency: LatencyRecorder,
    /// Epoch markers: (epoch, time reported, offset reached).
    pub epochs: Vec<(u64, Nanos, usize)>,
    /// Events read.
    pub events: u64,
    /// When the last event was read.
    pub last_read_at: Nanos,
}

/// The long-running task of one partition, from offset `from` until `until`.
#[allow(clippy::too_many_arguments)]
pub fn partition_task(
    ctx: &TaskContext,
    chain: &StatelessChain,
    source: &SourceLog,
    partition: usize,
    from: usize,
    checkpoint_interval: Nanos,
    until: Nanos,
    record_cost: Nanos,
    poll_interval: Nanos,
) -> PartitionTaskOutput {
    let mut out = PartitionTaskOutput {
        delivered: Vec::new(),
        latency: LatencyRecorder::new(&COMPONENTS),
        epochs: Vec::new(),
        events: 0,
        last_read_at: 0,
    };
    let mut offset = from;
    let mut next_epoch = (ctx.now() / checkpoint_interval + 1) * checkpoint_interval;
    let mut last_poll = ctx.now();
    loop {
        let now = ctx.now();
        if now >= until {
            break;
        }
        let available = source.available(partition, now);
        let to = available.min(offset + READ_CHUNK);
        if to > offset {
            let events = source.read(partition, offset, to);
            let mut rows = 0u64;
            for e in events {
                let lineage = Lineage {
                    arrival: e.arrival,
                    ingest: now,
                    handoff: now,
                    recv: now,
                };
                if let Some(row) = chain.apply(e, lineage) {
                    out.delivered.push(Delivered {
                        at: now,
                        output: Output::Row(row),
                    });
                    rows += 1;
                }
            }
            let n = (to - offset) as u64;
            ctx.charge(&Work {
                events_read: n,
                events_chained: n,
                sink_records: rows,
                modelled: n * record_cost,
                ..Default::default()
            });
            // Rows become visible when the task has written them.
            let written = ctx.now();
            let first_new = out.delivered.len() - rows as usize;
            for d in &mut out.delivered[first_new..] {
                d.at = written;
                if let Output::Row(r) = &d.output {
                    let mut dec = Decomposition::default();
                    dec.add(Component::Queueing, r.lineage.ingest.saturating_sub(r.lineage.arrival));
                    dec.add(Component::Processing, written.saturating_sub(r.lineage.ingest));
                    out.latency.record(written, &dec);
                }
            }
            out.events += n;
            out.last_read_at = now;
            offset = to;
        }
        let now = ctx.now();
        if now >= next_epoch {
            out.epochs.push((next_epoch / checkpoint_interval, now, offset));
            ctx.charge(&Work {
                log_writes: 1,
                logged_bytes: 64,
                ..Default::default()
            });
            next_epoch = (now / checkpoint_interval + 1) * checkpoint_interval;
        }
        if to < available {
            continue;
        }
        let next_arrival = source.arrival_at(partition, offset).unwrap_or(until);
        let wake = next_arrival
            .min(next_epoch)
            .min(until)
            .max(last_poll + poll_interval)
            .max(now);
        last_poll = now;
        ctx.wait_until(wake);
    }
    out
}
