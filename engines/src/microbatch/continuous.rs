//! Spark's continuous processing (`Trigger.Continuous(checkpointInterval)`): no batches at all.
//!
//! One long-running task per source partition reads records as they arrive and writes them
//! through the map-like operators straight to the sink, so latency is the time to read and
//! process a record (about a millisecond in Spark). Every `checkpoint_interval` each task
//! reports an epoch marker with its offset; the driver's epoch coordinator commits an epoch
//! once every partition has reported it. Output is at-least-once: after a failure, the records
//! since the last committed epoch are replayed. Only map-like pipelines qualify (the config
//! check refuses aggregations, as Spark does), and every partition needs its own core.
//!
//! Invariants: an epoch commits (offset and commit log entries, a progress record) only once
//! every partition has reported it; the delivered outputs are ordered by the time they became
//! visible, then by partition, then by their order within the partition.

use crate::cost::Work;
use crate::latency::{Component, Decomposition, LatencyRecorder};
use crate::microbatch::engine::MicroBatchEngine;
use crate::microbatch::log::OffsetEntry;
use crate::microbatch::run_state::RunState;
use crate::operators::stateless::StatelessChain;
use crate::operators::{Lineage, Output};
use crate::run::Delivered;
use crate::runtime::{Runtime, TaskContext};
use crate::source::SourceLog;
use crate::time::{as_ms, Nanos};
use std::collections::BTreeMap;

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

/// What every long-running task of a continuous query shares.
#[derive(Clone, Copy, Debug)]
pub struct ContinuousQuery<'a> {
    /// The map-like operators.
    pub chain: &'a StatelessChain,
    /// The source log the tasks read.
    pub source: &'a SourceLog,
    /// How often each task reports an epoch marker.
    pub checkpoint_interval: Nanos,
    /// When the tasks stop (processing time).
    pub until: Nanos,
    /// The modelled cost of one record.
    pub record_cost: Nanos,
}

/// The long-running task of partition `partition`, from offset `from` until `query.until`.
pub fn partition_task(
    ctx: &TaskContext,
    query: &ContinuousQuery<'_>,
    partition: usize,
    from: usize,
) -> PartitionTaskOutput {
    let ContinuousQuery {
        chain,
        source,
        checkpoint_interval,
        until,
        record_cost,
    } = *query;
    let poll_interval = ctx.poll_interval();
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
            for e in events.iter() {
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

impl MicroBatchEngine {
    /// Continuous processing: one long-running task per partition, epochs committed by the
    /// coordinator once every partition has reported them.
    pub(super) fn run_continuous<R: Runtime>(
        &mut self,
        rt: &mut R,
        source: &SourceLog,
        until: Nanos,
        checkpoint_interval: Nanos,
        run: &mut RunState,
    ) {
        let query = ContinuousQuery {
            chain: &self.chain,
            source,
            checkpoint_interval,
            until,
            record_cost: self.cfg.modelled_cost_per_record.nanos(),
        };
        let query = &query;
        let tasks: Vec<_> = self
            .committed
            .iter()
            .enumerate()
            .map(|(p, &from)| move |ctx: &TaskContext| partition_task(ctx, query, p, from))
            .collect();
        let outs = rt.run_tasks(tasks, self.cfg.scheduling.per_task.nanos());
        // The epoch coordinator: epoch e commits when the last partition reports it.
        let mut epochs: BTreeMap<u64, (Nanos, Vec<usize>)> = BTreeMap::new();
        for (p, out) in outs.iter().enumerate() {
            for &(epoch, at, offset) in &out.epochs {
                let e = epochs.entry(epoch).or_insert_with(|| (0, self.committed.clone()));
                e.0 = e.0.max(at);
                e.1[p] = offset;
            }
        }
        let partitions = outs.len();
        for (epoch, (at, offsets)) in epochs {
            let reported = outs.iter().filter(|o| o.epochs.iter().any(|e| e.0 == epoch)).count();
            if reported < partitions {
                continue; // not every partition reached it before the end of the run
            }
            let batch_id = self.next_batch_id;
            self.next_batch_id += 1;
            self.logs.write_offsets(&OffsetEntry {
                batch_id,
                offsets: offsets.clone(),
                watermark: 0,
            });
            self.logs.write_commit(batch_id, 0);
            run.epochs.push(serde_json::json!({
                "run": self.name, "epoch": epoch, "timeMs": as_ms(at),
                "numInputRows": offsets.iter().zip(&self.committed).map(|(o, c)| o - c).sum::<usize>(),
            }));
            self.committed = offsets;
        }
        let mut delivered: Vec<(Nanos, usize, usize, Delivered)> = Vec::new();
        for (p, out) in outs.into_iter().enumerate() {
            run.latency.merge(&out.latency);
            run.counts.events += out.events;
            run.last_data_batch_end = run.last_data_batch_end.max(out.last_read_at);
            delivered.extend(out.delivered.into_iter().enumerate().map(|(i, d)| (d.at, p, i, d)));
        }
        delivered.sort_unstable_by_key(|(at, p, i, _)| (*at, *p, *i));
        run.counts.outputs += delivered.len() as u64;
        let delivered = delivered.into_iter().map(|(_, _, _, d)| d);
        match &run.stream {
            None => run.delivered.extend(delivered),
            Some(stream) => {
                let delivered: Vec<Delivered> = delivered.collect();
                for chunk in delivered.chunks(crate::run::OutputStream::CHUNK) {
                    stream.send(chunk);
                }
            }
        }
    }
}
