//! The source log: partitions of events ordered by arrival, as a Kafka topic would hold them.
//!
//! The source is open loop: an event is available to an engine from its scheduled `arrival`
//! instant on, whether or not the engine keeps up. Engines ask "what is available at `now`"
//! and read offset ranges; nobody pushes. So a backlog shows up as latency, never as a
//! slower producer (no coordinated omission).

use crate::event::Event;
use crate::time::Nanos;

/// Events split into partitions, each ordered by arrival time.
#[derive(Clone, Debug, Default)]
pub struct SourceLog {
    partitions: Vec<Vec<Event>>,
}

impl SourceLog {
    /// Builds a log of `partitions` partitions from events in arrival order, placing each by its
    /// `partition` field.
    ///
    /// # Panics
    /// If an event names a partition `>= partitions` or the events are not in arrival order
    /// within a partition: both are bugs of the producer, not user input.
    pub fn from_events(partitions: usize, events: impl IntoIterator<Item = Event>) -> Self {
        let mut parts: Vec<Vec<Event>> = vec![Vec::new(); partitions.max(1)];
        for e in events {
            let p = &mut parts[e.partition as usize];
            assert!(
                p.last().is_none_or(|l| l.arrival <= e.arrival),
                "events of partition {} are not in arrival order",
                e.partition
            );
            p.push(e);
        }
        Self { partitions: parts }
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Total number of events in all partitions.
    pub fn len(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }

    /// True when the log holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offset one past the last event of `partition` that has arrived by `now`.
    pub fn available(&self, partition: usize, now: Nanos) -> usize {
        self.partitions[partition].partition_point(|e| e.arrival <= now)
    }

    /// The events of `partition` in the offset range `from..to`.
    pub fn read(&self, partition: usize, from: usize, to: usize) -> &[Event] {
        &self.partitions[partition][from..to]
    }

    /// The number of events in `partition`.
    pub fn end_offset(&self, partition: usize) -> usize {
        self.partitions[partition].len()
    }

    /// The arrival time of the event at `offset` in `partition`, if there is one.
    pub fn arrival_at(&self, partition: usize, offset: usize) -> Option<Nanos> {
        self.partitions[partition].get(offset).map(|e| e.arrival)
    }

    /// The arrival time of the last event in the log.
    pub fn last_arrival(&self) -> Nanos {
        self.partitions
            .iter()
            .filter_map(|p| p.last())
            .map(|e| e.arrival)
            .max()
            .unwrap_or(0)
    }

    /// All events of all partitions (partition by partition).
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.partitions.iter().flatten()
    }
}
