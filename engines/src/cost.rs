//! The cost model: what each piece of work costs on a machine or a cluster, in nanoseconds.
//!
//! The simulated runtime runs the engines' real code and charges virtual time from this
//! model: engines report the [`Work`] they did (events read, state updates, bytes logged...)
//! and the model prices it. Every parameter is named with its unit. `streamlab calibrate`
//! measures the per-record ones on this machine by timing the real operator code; cluster
//! profiles set the fixed costs (job scheduling, task launch, network, disk) to the ranges real
//! clusters show, with their sources.

use serde::{Deserialize, Serialize};

use crate::time::Nanos;

/// Prices of work, in nanoseconds (per item, per byte or per occurrence, as named).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// Reading one event from a source partition (fetch and deserialize), ns per event.
    pub source_read_ns_per_event: f64,
    /// The chained filter and lookup join, ns per event.
    pub chain_ns_per_event: f64,
    /// Applying one row to keyed window state (hash lookup, aggregate update), ns per update.
    pub state_ns_per_update: f64,
    /// Building one window result when a window fires or is emitted, ns per result.
    pub emit_ns_per_result: f64,
    /// Writing one record to the sink, ns per record.
    pub sink_ns_per_record: f64,
    /// Micro-batch shuffle: writing and fetching one row between stages, ns per row.
    pub shuffle_ns_per_row: f64,
    /// Serializing and deserializing network-buffer bytes, ns per byte.
    pub serialize_ns_per_byte: f64,
    /// Handing one network buffer to another task on the same node (queue and wake-up), ns.
    pub buffer_handoff_ns: f64,
    /// One buffer's trip between two nodes (latency), ns.
    pub network_latency_ns: f64,
    /// Network transfer between nodes, ns per byte (1 / bandwidth).
    pub network_ns_per_byte: f64,
    /// One micro-batch job: planning, DAG scheduling, result collection, ns per batch.
    pub batch_job_ns: f64,
    /// Launching one task and collecting its status, ns per task.
    pub task_launch_ns: f64,
    /// Asking one source partition for its latest offset, ns per partition.
    pub source_poll_ns_per_partition: f64,
    /// A caught-up per-record source subtask polls its partitions again this long after its
    /// previous poll at the earliest (a consumer's fetch loop), ns.
    pub source_poll_interval_ns: f64,
    /// One durable write (offset log, commit log, checkpoint metadata), ns per write.
    pub log_write_ns: f64,
    /// Durable storage bandwidth, ns per byte written.
    pub disk_ns_per_byte: f64,
    /// One buffer's trip between two tasks on the same node, beyond what the hand-off costs the
    /// sender: a real engine's network stack, mailbox and thread wake-ups (Flink's netty and
    /// input gates). A delay, not CPU: the receiver gets the buffer this much later and no core
    /// is busy meanwhile. 0 for streamlab's own engines (their channels are what
    /// `buffer_handoff_ns` measures); fitted to Flink by `streamlab calibrate --against flink`.
    /// A profile written before it existed reads it as 0.
    #[serde(default)]
    pub exchange_latency_ns: f64,
    /// The mean of an extra, exponentially distributed delay on each such buffer (thread
    /// scheduling, GC pauses: the tail of a real engine's record path), drawn from a generator
    /// with a fixed seed, so the same scenario gives the same results. A delay, not CPU. 0 for
    /// streamlab's own engines; fitted to Flink with `exchange_latency_ns`. A profile written
    /// before it existed reads it as 0.
    #[serde(default)]
    pub exchange_jitter_ns: f64,
}

impl CostModel {
    /// Every price zero: work takes no time, only waiting does.
    pub const FREE: CostModel = CostModel {
        source_read_ns_per_event: 0.0,
        chain_ns_per_event: 0.0,
        state_ns_per_update: 0.0,
        emit_ns_per_result: 0.0,
        sink_ns_per_record: 0.0,
        shuffle_ns_per_row: 0.0,
        serialize_ns_per_byte: 0.0,
        buffer_handoff_ns: 0.0,
        network_latency_ns: 0.0,
        network_ns_per_byte: 0.0,
        batch_job_ns: 0.0,
        task_launch_ns: 0.0,
        source_poll_ns_per_partition: 0.0,
        source_poll_interval_ns: 0.0,
        log_write_ns: 0.0,
        disk_ns_per_byte: 0.0,
        exchange_latency_ns: 0.0,
        exchange_jitter_ns: 0.0,
    };
}

impl CostModel {
    /// Every parameter with its value, in declaration order (for tables and validation).
    pub fn parameters(&self) -> [(&'static str, f64); 18] {
        [
            ("source_read_ns_per_event", self.source_read_ns_per_event),
            ("chain_ns_per_event", self.chain_ns_per_event),
            ("state_ns_per_update", self.state_ns_per_update),
            ("emit_ns_per_result", self.emit_ns_per_result),
            ("sink_ns_per_record", self.sink_ns_per_record),
            ("shuffle_ns_per_row", self.shuffle_ns_per_row),
            ("serialize_ns_per_byte", self.serialize_ns_per_byte),
            ("buffer_handoff_ns", self.buffer_handoff_ns),
            ("network_latency_ns", self.network_latency_ns),
            ("network_ns_per_byte", self.network_ns_per_byte),
            ("batch_job_ns", self.batch_job_ns),
            ("task_launch_ns", self.task_launch_ns),
            ("source_poll_ns_per_partition", self.source_poll_ns_per_partition),
            ("source_poll_interval_ns", self.source_poll_interval_ns),
            ("log_write_ns", self.log_write_ns),
            ("disk_ns_per_byte", self.disk_ns_per_byte),
            ("exchange_latency_ns", self.exchange_latency_ns),
            ("exchange_jitter_ns", self.exchange_jitter_ns),
        ]
    }

    /// Checks every parameter is a finite, non-negative number; names the first that is not.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (name, v) in self.parameters() {
            if !v.is_finite() || v < 0.0 {
                return Err((
                    name,
                    format!("{v} is out of range; must be a finite number >= 0 (nanoseconds)"),
                ));
            }
        }
        Ok(())
    }

    /// The virtual time `work` takes on one core.
    ///
    /// The terms are summed in declaration order, and a term whose count is zero is skipped:
    /// it would add `0 × price = +0.0` (prices are finite and non-negative), which leaves an
    /// IEEE sum unchanged, so skipping it gives the same bits. Inlined into each caller, the
    /// counts a step never sets are known to be zero and their terms vanish at compile time;
    /// a step's price then costs a few multiplications instead of fifteen conversions,
    /// multiplications and additions read back from a `Work` just written to the stack (a
    /// store-forwarding stall on every simulated step, the largest single cost of the
    /// per-record simulator before).
    #[inline(always)]
    pub fn price(&self, w: &Work) -> Nanos {
        let mut ns = 0.0;
        let mut term = |count: u64, price: f64| {
            if count != 0 {
                ns += count as f64 * price;
            }
        };
        term(w.events_read, self.source_read_ns_per_event);
        term(w.events_chained, self.chain_ns_per_event);
        term(w.state_updates, self.state_ns_per_update);
        term(w.results, self.emit_ns_per_result);
        term(w.sink_records, self.sink_ns_per_record);
        term(w.shuffle_rows, self.shuffle_ns_per_row);
        term(w.serialized_bytes, self.serialize_ns_per_byte);
        term(w.buffers, self.buffer_handoff_ns);
        term(w.network_buffers, self.network_latency_ns);
        term(w.network_bytes, self.network_ns_per_byte);
        term(w.batch_jobs, self.batch_job_ns);
        term(w.tasks_launched, self.task_launch_ns);
        term(w.partitions_polled, self.source_poll_ns_per_partition);
        term(w.log_writes, self.log_write_ns);
        term(w.logged_bytes, self.disk_ns_per_byte);
        // Half up: the same as `round` for the non-negative sums here, without its libm call
        // (this runs for every simulated step).
        (ns + 0.5) as Nanos + w.modelled
    }
}

/// The price of a per-record source step that read and chained `n` events and did nothing
/// else, for the small `n` a source that keeps up reads per poll: [`CostModel::price`] of it,
/// computed once per `n` instead of on every simulated step (two integer-to-float
/// conversions, two multiplications and additions and the conversion back, on the critical
/// path of the step's end). The same function gives the same bits.
#[derive(Clone, Debug)]
pub struct ReadPrices {
    prices: [Nanos; Self::SMALL],
}

impl ReadPrices {
    /// Counts below this are priced from the table.
    const SMALL: usize = 64;

    /// The table for `cost`.
    pub fn new(cost: &CostModel) -> Self {
        Self {
            prices: std::array::from_fn(|n| cost.price(&Self::work(n as u64))),
        }
    }

    /// What a source step that read and chained `n` events did.
    #[inline(always)]
    fn work(n: u64) -> Work {
        Work {
            events_read: n,
            events_chained: n,
            ..Default::default()
        }
    }

    /// `cost.price` of reading and chaining `n` events, `cost` the model the table was built
    /// for.
    #[inline(always)]
    pub fn of(&self, cost: &CostModel, n: u64) -> Nanos {
        match self.prices.get(n as usize) {
            Some(&p) => p,
            None => cost.price(&Self::work(n)),
        }
    }
}

/// A period during which work is slower: a straggling worker (`worker = Some(w)`, every kind
/// of work) or a slow state store (`state_only`: only state updates), by `factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown {
    /// Start (virtual time).
    pub from: Nanos,
    /// End (virtual time, exclusive).
    pub to: Nanos,
    /// How many times slower.
    pub factor: f64,
    /// The worker (core) it affects; every worker when `None`.
    pub worker: Option<usize>,
    /// Only keyed-state updates are slower (a slow state store).
    pub state_only: bool,
}

impl Slowdown {
    /// How many times slower work on `worker` at `t` runs under `slowdowns`: all work
    /// (`state = false`) or keyed-state updates (`state = true`, which a straggler slows too).
    /// 1 when none is in force. The live runtime stretches measured work by it.
    pub fn factor_at(slowdowns: &[Slowdown], worker: usize, t: Nanos, state: bool) -> f64 {
        slowdowns
            .iter()
            .filter(|s| t >= s.from && t < s.to && s.worker.is_none_or(|w| w == worker))
            .filter(|s| state || !s.state_only)
            .map(|s| s.factor)
            .product()
    }
}

impl CostModel {
    /// The prices for work that starts at `t` on `worker` under `slowdowns`.
    pub fn at(&self, slowdowns: &[Slowdown], worker: usize, t: Nanos) -> CostModel {
        let mut c = *self;
        for s in slowdowns {
            if t >= s.from && t < s.to && s.worker.is_none_or(|w| w == worker) {
                if s.state_only {
                    c.state_ns_per_update *= s.factor;
                } else {
                    c.source_read_ns_per_event *= s.factor;
                    c.chain_ns_per_event *= s.factor;
                    c.state_ns_per_update *= s.factor;
                    c.emit_ns_per_result *= s.factor;
                    c.sink_ns_per_record *= s.factor;
                    c.shuffle_ns_per_row *= s.factor;
                    c.serialize_ns_per_byte *= s.factor;
                    c.buffer_handoff_ns *= s.factor;
                }
            }
        }
        c
    }
}

/// Work done, as engines report it to their runtime. The live runtime ignores all of it but
/// `modelled` (which it realizes by waiting); the simulated runtime prices it with a
/// [`CostModel`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Events read from source partitions.
    pub events_read: u64,
    /// Events through the chained filter and join.
    pub events_chained: u64,
    /// Rows applied to keyed state.
    pub state_updates: u64,
    /// Window results built.
    pub results: u64,
    /// Records written to the sink.
    pub sink_records: u64,
    /// Rows through a micro-batch shuffle.
    pub shuffle_rows: u64,
    /// Bytes serialized into or out of network buffers.
    pub serialized_bytes: u64,
    /// Network buffers handed between tasks.
    pub buffers: u64,
    /// Network buffers that crossed nodes.
    pub network_buffers: u64,
    /// Bytes that crossed nodes.
    pub network_bytes: u64,
    /// Micro-batch jobs planned and scheduled.
    pub batch_jobs: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// Source partitions polled for their latest offsets.
    pub partitions_polled: u64,
    /// Durable writes.
    pub log_writes: u64,
    /// Bytes written durably.
    pub logged_bytes: u64,
    /// Time that is modelled outright (a configured overhead or a user function's cost).
    pub modelled: Nanos,
}

impl Work {
    /// Adds `other` to `self`.
    pub fn add(&mut self, o: &Work) {
        self.events_read += o.events_read;
        self.events_chained += o.events_chained;
        self.state_updates += o.state_updates;
        self.results += o.results;
        self.sink_records += o.sink_records;
        self.shuffle_rows += o.shuffle_rows;
        self.serialized_bytes += o.serialized_bytes;
        self.buffers += o.buffers;
        self.network_buffers += o.network_buffers;
        self.network_bytes += o.network_bytes;
        self.batch_jobs += o.batch_jobs;
        self.tasks_launched += o.tasks_launched;
        self.partitions_polled += o.partitions_polled;
        self.log_writes += o.log_writes;
        self.logged_bytes += o.logged_bytes;
        self.modelled += o.modelled;
    }

    /// Only a modelled duration.
    pub fn modelled(d: Nanos) -> Self {
        Self {
            modelled: d,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_price_table_gives_the_bits_price_gives() {
        // Prices with fractions, so rounding and the order of the sum matter.
        let cost = CostModel {
            source_read_ns_per_event: 37.3,
            chain_ns_per_event: 12.45,
            sink_ns_per_record: 101.0,
            ..CostModel::FREE
        };
        let table = ReadPrices::new(&cost);
        for n in 0..200u64 {
            let work = Work {
                events_read: n,
                events_chained: n,
                ..Default::default()
            };
            assert_eq!(table.of(&cost, n), cost.price(&work), "n = {n}");
        }
    }
}
