//! `read_committed` done by streamlab's own reader: an exactly-once engine's records count
//! when their transaction commits, and never when it aborts.
//!
//! The broker's part: under `isolation_level = 1` it returns nothing at or past the last stable
//! offset, so every transaction in a response has already ended, and its marker is in the log
//! before the LSO. Filtering the aborted ones is the client's part (Kafka's Java consumer does it
//! with the response's aborted-transaction list). Here each transactional record is held under
//! its producer until that producer's marker is read: a COMMIT releases them, an ABORT drops
//! them. It needs only the batches' own fields (producer id, transactional and control flags),
//! and it is exact whatever the list says: a producer has at most one open transaction per
//! partition, and its marker follows its records in the partition. A killed engine's open
//! transaction is aborted by the broker (its successor's `initTransactions` fences the epoch,
//! or the transaction times out), so its records are read, held, and dropped.
//!
//! Invariants: records are released in offset order per producer; a record below the
//! partition's next offset is never released twice (a batch fetched again after a cut is
//! stepped over record by record).

use std::collections::HashMap;

use crate::kafka::wire::{Marker, RecordBatch};

/// A record held until its transaction ends: its value and its log-append time (ms), if the
/// topic keeps one. Released at a COMMIT, it is handed on with the marker's append time instead
/// (when the topic keeps it): the instant it became readable, so the broker's output hop counts
/// from there and the time its transaction stayed open stays the engine's (its sink's).
type HeldRecord = (Vec<u8>, Option<i64>);

/// One partition's reading position and the open transactions' records.
#[derive(Debug, Default)]
pub struct CommittedPartition {
    /// The next offset to fetch.
    pub next: i64,
    /// Records of open transactions, by producer id.
    open: HashMap<i64, Vec<HeldRecord>>,
    /// Records dropped because their transaction aborted.
    pub aborted: u64,
    /// Transactions committed.
    pub commits: u64,
}

impl CommittedPartition {
    /// Takes the batches of one fetch (in offset order) and hands every value that is now
    /// committed to `release`, with its log-append time (ms) when the topic keeps one (a
    /// transaction's records: their COMMIT marker's, see [`HeldRecord`]).
    pub fn accept(&mut self, batches: Vec<RecordBatch>, release: &mut dyn FnMut(Vec<u8>, Option<i64>)) {
        for batch in batches {
            if batch.last_offset < self.next {
                continue;
            }
            match batch.marker {
                Some(Marker::Commit) => {
                    self.commits += 1;
                    for (value, appended) in self.open.remove(&batch.producer_id).unwrap_or_default() {
                        release(value, batch.appended_ms.or(appended));
                    }
                }
                Some(Marker::Abort) => {
                    self.aborted += self.open.remove(&batch.producer_id).map_or(0, |v| v.len() as u64);
                }
                None => {
                    for r in batch.records.into_iter().filter(|r| r.offset >= self.next) {
                        let Some(value) = r.value else { continue };
                        let appended = r.log_append_time.then_some(r.timestamp_ms);
                        if batch.transactional {
                            self.open.entry(batch.producer_id).or_default().push((value, appended));
                        } else {
                            release(value, appended);
                        }
                    }
                }
            }
            self.next = batch.last_offset + 1;
        }
    }

    /// Records held in transactions not yet ended (at the end of a run: never committed).
    pub fn pending(&self) -> u64 {
        self.open.values().map(|v| v.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::wire::decode_batches;
    use crate::kafka::wire::tests::batch;

    fn read(p: &mut CommittedPartition, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        p.accept(decode_batches(bytes).unwrap(), &mut |v, _| {
            out.push(String::from_utf8(v).unwrap())
        });
        out
    }

    #[test]
    fn an_aborted_transaction_is_dropped_and_a_committed_one_released_at_its_marker() {
        let mut p = CommittedPartition::default();
        // A killed instance's transaction (producer 7, epoch fenced), aborted; its successor
        // (the same producer id, as a transactional id keeps it) writes the same results again
        // and commits.
        let mut log = batch(0, 7, true, Ok(&["w1", "w2"]));
        log.extend(batch(2, 7, true, Err(Marker::Abort)));
        log.extend(batch(3, 7, true, Ok(&["w1", "w2"])));
        assert_eq!(read(&mut p, &log), Vec::<String>::new(), "held until the marker");
        assert_eq!(p.pending(), 2);
        let commit = batch(5, 7, true, Err(Marker::Commit));
        assert_eq!(read(&mut p, &commit), vec!["w1", "w2"]);
        assert_eq!((p.aborted, p.commits, p.next, p.pending()), (2, 1, 6, 0));
    }

    /// `bytes` (one batch) as a topic with `LogAppendTime` writes it: appended at `ms`.
    fn appended_at(mut bytes: Vec<u8>, ms: i64) -> Vec<u8> {
        // base offset 8, length 4, leader epoch 4, magic 1, crc 4: attributes at 21..23; then
        // the last offset delta (4) and the base and max timestamps (8 each).
        bytes[22] |= 0x08;
        bytes[35..43].copy_from_slice(&ms.to_be_bytes());
        bytes
    }

    #[test]
    fn a_committed_record_is_readable_from_its_markers_append_time() {
        let mut p = CommittedPartition::default();
        let mut log = appended_at(batch(0, 7, true, Ok(&["w1"])), 1_000);
        log.extend(appended_at(batch(1, -1, false, Ok(&["plain"])), 1_200));
        log.extend(appended_at(batch(2, 7, true, Err(Marker::Commit)), 1_900));
        let mut out = Vec::new();
        p.accept(decode_batches(&log).unwrap(), &mut |v, at| {
            out.push((String::from_utf8(v).unwrap(), at))
        });
        assert_eq!(
            out,
            vec![("plain".to_string(), Some(1_200)), ("w1".to_string(), Some(1_900))],
            "the transaction's record counts from its commit, not from its own append"
        );
    }

    #[test]
    fn plain_records_pass_at_once_and_a_refetched_batch_is_not_released_twice() {
        let mut p = CommittedPartition::default();
        let b = batch(0, -1, false, Ok(&["a", "b", "c"]));
        assert_eq!(read(&mut p, &b), vec!["a", "b", "c"]);
        assert!(read(&mut p, &b).is_empty());
        p.next = 1;
        let mut q = CommittedPartition {
            next: 2,
            ..CommittedPartition::default()
        };
        assert_eq!(read(&mut q, &b), vec!["c"], "a batch fetched from its middle");
    }

    #[test]
    fn interleaved_producers_are_kept_apart() {
        let mut p = CommittedPartition::default();
        let mut log = batch(0, 1, true, Ok(&["one"]));
        log.extend(batch(1, 2, true, Ok(&["two"])));
        log.extend(batch(2, 2, true, Err(Marker::Commit)));
        log.extend(batch(3, 1, true, Err(Marker::Abort)));
        assert_eq!(read(&mut p, &log), vec!["two"]);
        assert_eq!(p.aborted, 1);
    }
}
