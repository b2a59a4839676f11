//! The simulated network: links that drop messages into an outbox during a step, and their
//! delivery on virtual time when the step ends.
//!
//! A message leaves when its sender's step ends and arrives after the network delay (none on
//! the same node; latency plus bytes over bandwidth across nodes). A receiver whose inbox holds
//! its capacity blocks the sources that send to it until it drains (backpressure).
//!
//! Invariants: messages on one link arrive in the order sent (an arrival is never before the
//! link's previous one); an inbox stays sorted by arrival; the sender pays serialization and
//! the hand-off only, not the network delay.

use std::cell::RefCell;
use std::rc::Rc;

use crate::cost::Work;
use crate::dataflow::config::ROW_WIRE_BYTES;
use crate::dataflow::graph::Links;
use crate::dataflow::network::{Link, Message};
use crate::operators::{Output, Row};
use crate::time::Nanos;

use super::Sim;

/// Messages sent during a step, collected for delivery on virtual time: (receiver, message).
type Outbox<T> = Rc<RefCell<Vec<(usize, Message<T>)>>>;

/// The simulated channel end: it drops messages into the driver's outbox.
#[derive(Debug)]
pub struct SimLink<T> {
    to: usize,
    outbox: Outbox<T>,
}

impl<T> Link<T> for SimLink<T> {
    fn send(&self, msg: Message<T>) {
        self.outbox.borrow_mut().push((self.to, msg));
    }
}

/// The simulated driver's links: every message sent during a step goes into one outbox per
/// item type, to be delivered on virtual time when the step ends.
pub(super) struct SimLinks {
    pub(super) rows: Outbox<Row>,
    pub(super) results: Outbox<Output>,
    /// Emptied outboxes swapped in while a step's messages are delivered, so delivering
    /// allocates nothing.
    pub(super) spare_rows: Vec<(usize, Message<Row>)>,
    pub(super) spare_results: Vec<(usize, Message<Output>)>,
}

impl SimLinks {
    /// True when a step sent something (delivering nothing costs nothing: zero work).
    #[inline]
    pub(super) fn has_outgoing(&self) -> bool {
        !self.rows.borrow().is_empty() || !self.results.borrow().is_empty()
    }
}

impl Links for SimLinks {
    type Rows = SimLink<Row>;
    type Results = SimLink<Output>;

    fn rows_to(&mut self, to: usize) -> SimLink<Row> {
        SimLink {
            to,
            outbox: self.rows.clone(),
        }
    }

    fn results_to(&mut self, to: usize) -> SimLink<Output> {
        SimLink {
            to,
            outbox: self.results.clone(),
        }
    }
}

/// A queued message and when it becomes available to its receiver.
pub(super) enum Inbound {
    Rows(Message<Row>),
    Results(Message<Output>),
}

/// The `n`-th draw of the jitter generator, uniform in [0, 1): SplitMix64 of `n`, a fixed
/// sequence, so a simulated run stays the same run after run.
fn unit_draw(n: u64) -> f64 {
    let mut z = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn data_len<T>(m: &Message<T>) -> u64 {
    match m {
        Message::Data { items, .. } => items.len() as u64,
        Message::Projected { items, .. } => items.len() as u64,
        _ => 0,
    }
}

impl Sim {
    /// Delivers what subtask `from` sent, leaving at `at`; returns the work of sending it.
    pub(super) fn deliver(&mut self, from: usize, at: Nanos) -> Work {
        let mut work = Work::default();
        if !self.links.has_outgoing() {
            return work;
        }
        let mut rows = std::mem::take(&mut self.links.spare_rows);
        std::mem::swap(&mut rows, &mut *self.links.rows.borrow_mut());
        let mut results = std::mem::take(&mut self.links.spare_results);
        std::mem::swap(&mut results, &mut *self.links.results.borrow_mut());
        let n = self.subtasks.len();
        let mut send = |sim: &mut Self, to: usize, items: usize, msg: Inbound| {
            let bytes = (items * ROW_WIRE_BYTES) as u64;
            let remote = sim.cluster.node_of_core(sim.core_of[from]) != sim.cluster.node_of_core(sim.core_of[to]);
            let delay = if remote {
                (sim.cost.network_latency_ns + bytes as f64 * sim.cost.network_ns_per_byte).round() as Nanos
            } else {
                let jitter = if sim.cost.exchange_jitter_ns > 0.0 {
                    sim.jitter_draws += 1;
                    -sim.cost.exchange_jitter_ns * (1.0 - unit_draw(sim.jitter_draws)).ln()
                } else {
                    0.0
                };
                let delay = sim.cost.exchange_latency_ns + jitter;
                // Streamlab's own engines: no delay, and no libm `round` per message.
                if delay == 0.0 {
                    0
                } else {
                    delay.round() as Nanos
                }
            };
            if items > 0 {
                work.buffers += 1;
                work.serialized_bytes += bytes;
            }
            let link = from * n + to;
            let arrival = (at + delay).max(sim.link_last[link]);
            sim.link_last[link] = arrival;
            let q = &mut sim.inbox[to];
            let pos = q.iter().rposition(|(t, _)| *t <= arrival).map_or(0, |p| p + 1);
            q.insert(pos, (arrival, msg));
            sim.schedule(to, arrival);
        };
        for (to, msg) in rows.drain(..) {
            let items = data_len(&msg) as usize;
            send(self, to, items, Inbound::Rows(msg));
        }
        for (to, msg) in results.drain(..) {
            let items = data_len(&msg) as usize;
            send(self, to, items, Inbound::Results(msg));
        }
        self.links.spare_rows = rows;
        self.links.spare_results = results;
        // Network latency, bandwidth and the exchange latency are delays, not CPU: the sender pays serialization and
        // the hand-off only.
        work
    }

    pub(super) fn unblock(&mut self, receiver: usize, now: Nanos) {
        if self.inbox[receiver].len() < self.capacity[receiver] {
            for s in std::mem::take(&mut self.blocked[receiver]) {
                self.schedule(s, now);
            }
        }
    }
}
