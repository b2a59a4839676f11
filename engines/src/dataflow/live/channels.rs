//! The live driver's links: the job graph's links as bounded crossbeam channels.
//!
//! One channel per receiving subtask and item type, made when the graph first links to it; its
//! capacity is `buffers_per_channel × parallelism` messages, so a full channel blocks the
//! sender (backpressure, as Flink's credit-based flow control bounds in-flight buffers).

use std::collections::BTreeMap;

use crossbeam_channel::{Receiver, Sender};

use crate::dataflow::graph::Links;
use crate::dataflow::network::Message;
use crate::operators::{Output, Row};

/// The live driver's links: one bounded channel per receiving subtask, made when the graph
/// first links to it.
pub(super) struct Channels {
    pub(super) capacity: usize,
    pub(super) rows: BTreeMap<usize, Channel<Row>>,
    pub(super) results: BTreeMap<usize, Channel<Output>>,
}

/// Both ends of a bounded channel to one subtask.
pub(super) type Channel<T> = (Sender<Message<T>>, Receiver<Message<T>>);

impl Links for Channels {
    type Rows = Sender<Message<Row>>;
    type Results = Sender<Message<Output>>;

    fn rows_to(&mut self, to: usize) -> Self::Rows {
        let capacity = self.capacity;
        self.rows
            .entry(to)
            .or_insert_with(|| crossbeam_channel::bounded(capacity))
            .0
            .clone()
    }

    fn results_to(&mut self, to: usize) -> Self::Results {
        let capacity = self.capacity;
        self.results
            .entry(to)
            .or_insert_with(|| crossbeam_channel::bounded(capacity))
            .0
            .clone()
    }
}
