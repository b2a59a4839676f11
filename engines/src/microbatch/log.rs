//! The offset log and the commit log: the two write-ahead logs that make Spark's micro-batches
//! exactly-once.
//!
//! Batch N's offsets (and the watermark it runs with) are written before it is processed; its
//! commit entry after its output is written. A batch with an offset entry and no commit entry
//! is the one to replay after a failure. Entries are serialized in Spark's layout
//! (`v1`, metadata JSON, then one line of partition → offset) and kept in memory; the
//! checkpoint directory that makes them durable builds on this.

use std::collections::BTreeMap;

use crate::time::EventTime;

/// One offset-log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    /// The batch.
    pub batch_id: u64,
    /// End offset (exclusive) per source partition.
    pub offsets: Vec<usize>,
    /// The watermark the batch runs with.
    pub watermark: EventTime,
}

impl OffsetEntry {
    /// The entry as Spark writes it to `offsets/<batchId>`.
    pub fn serialize(&self) -> String {
        let offsets: BTreeMap<String, usize> = self
            .offsets
            .iter()
            .enumerate()
            .map(|(p, o)| (p.to_string(), *o))
            .collect();
        format!(
            "v1\n{{\"batchWatermarkMs\":{},\"batchTimestampMs\":0}}\n{{\"clickstream\":{}}}",
            self.watermark,
            serde_json::to_string(&offsets).expect("offsets serialize")
        )
    }
}

/// The offset and commit logs of a query.
#[derive(Clone, Debug, Default)]
pub struct BatchLogs {
    offsets: BTreeMap<u64, String>,
    commits: BTreeMap<u64, String>,
    bytes_written: u64,
}

impl BatchLogs {
    /// Writes batch `entry.batch_id`'s offsets; returns the bytes written.
    pub fn write_offsets(&mut self, entry: &OffsetEntry) -> usize {
        let text = entry.serialize();
        let n = text.len();
        self.bytes_written += n as u64;
        self.offsets.insert(entry.batch_id, text);
        n
    }

    /// Writes batch `batch_id`'s commit entry; returns the bytes written.
    pub fn write_commit(&mut self, batch_id: u64, watermark: EventTime) -> usize {
        let text = format!("v1\n{{\"nextBatchWatermarkMs\":{watermark}}}");
        let n = text.len();
        self.bytes_written += n as u64;
        self.commits.insert(batch_id, text);
        n
    }

    /// The batch that has an offset entry but no commit (the one recovery replays).
    pub fn uncommitted_batch(&self) -> Option<u64> {
        let last = *self.offsets.keys().next_back()?;
        (!self.commits.contains_key(&last)).then_some(last)
    }

    /// Number of committed batches.
    pub fn committed(&self) -> usize {
        self.commits.len()
    }

    /// Total bytes written to both logs.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
}
