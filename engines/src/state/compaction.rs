//! Fueled, size-tiered compaction.
//!
//! As in differential-dataflow's `spine_fueled.rs`, a merge is not a function call that runs
//! to completion but a value ([`Merge`]) that advances by a budget of work per call: the
//! caller calls [`LsmStore::compact_step`] after its writes, each call reads about
//! `budget_bytes` of input (plus at most one block per input, the unit of I/O), and no call
//! blocks for long. While a merge runs, its inputs stay in the run list and serve reads; the
//! output becomes visible atomically, replacing exactly the inputs (invariant 1).
//!
//! Policy: merge the cheapest adjacent pair `(older, newer)` with
//! `older < size_ratio × newer` (bytes). With equal-sized flushes and ratio 2 this is a
//! binary counter, so each byte is rewritten O(log n) times and there are O(log n) runs.
//! When the tiers are settled, a run with an expired put, or the bottom run with a tombstone,
//! is rewritten alone so TTL and deletes actually free space.

use std::fs;
use std::sync::Arc;

use serde::Serialize;

use super::error::{io_at, Result, StateError};
use super::format::{encoded_len, Retain, Slot};
use super::run::{RunWriter, SortedRun};
use super::store::LsmStore;
use crate::time::EventTime;

/// What one [`LsmStore::compact_step`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactionProgress {
    /// Input bytes consumed (encoded entries).
    pub bytes_read: u64,
    /// Output run bytes of the merges completed in this step.
    pub bytes_written: u64,
    /// Merges completed in this step.
    pub merges_completed: u64,
    /// Versions discarded in this step (shadowed, tombstones at the bottom, expired).
    pub entries_dropped: u64,
    /// True when no compaction work remains: calling again would do nothing.
    pub idle: bool,
}

/// Reads a run block by block, in key order.
#[derive(Debug)]
struct RunCursor {
    run: Arc<SortedRun>,
    next_block: usize,
    /// The current block, reversed so that `pop` takes the smallest key.
    pending: Vec<(Vec<u8>, Slot)>,
}

impl RunCursor {
    fn new(run: Arc<SortedRun>) -> Self {
        RunCursor {
            run,
            next_block: 0,
            pending: Vec::new(),
        }
    }

    /// Loads the next block if the current one is used up.
    fn fill(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.next_block < self.run.block_count() {
            self.pending = self.run.read_block(self.next_block)?;
            self.pending.reverse();
            self.next_block += 1;
        }
        Ok(())
    }

    fn front_key(&self) -> Option<&[u8]> {
        self.pending.last().map(|(k, _)| k.as_slice())
    }
}

/// A merge in progress of a contiguous range of runs into one new run.
#[derive(Debug)]
pub(crate) struct Merge {
    /// Oldest first; contiguous in the store's run list.
    inputs: Vec<RunCursor>,
    /// Whether the range starts at the oldest run (nothing older can resurface).
    bottom: bool,
    out: Option<RunWriter>,
}

impl Merge {
    /// Advances by up to `budget` input bytes (at least one entry); `true` when all input is
    /// consumed.
    fn advance(
        &mut self,
        budget: u64,
        watermark: Option<EventTime>,
        progress: &mut CompactionProgress,
    ) -> Result<bool> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| StateError::Internal("merge advanced after finishing".into()))?;
        let mut consumed = 0u64;
        while consumed < budget {
            for input in &mut self.inputs {
                input.fill()?;
            }
            // The smallest key; on ties the newest input (the later one) wins.
            let mut winner: Option<usize> = None;
            for (i, input) in self.inputs.iter().enumerate() {
                if let Some(key) = input.front_key() {
                    if winner.is_none_or(|w| key <= self.inputs[w].front_key().expect("winner has a key")) {
                        winner = Some(i);
                    }
                }
            }
            let Some(winner) = winner else {
                progress.bytes_read += consumed;
                return Ok(true);
            };
            let (key, slot) = self.inputs[winner].pending.pop().expect("winner has an entry");
            consumed += encoded_len(&key, &slot) as u64;
            for (i, input) in self.inputs.iter_mut().enumerate() {
                if i != winner && input.front_key() == Some(key.as_slice()) {
                    let (k, s) = input.pending.pop().expect("front exists");
                    consumed += encoded_len(&k, &s) as u64;
                    progress.entries_dropped += 1;
                }
            }
            match slot.retain(watermark, self.bottom) {
                Retain::Keep => out.add(&key, &slot)?,
                Retain::Tombstone => out.add(&key, &Slot::Tombstone)?,
                Retain::Drop => progress.entries_dropped += 1,
            }
        }
        progress.bytes_read += consumed;
        Ok(false)
    }
}

impl LsmStore {
    /// Does up to `budget_bytes` of compaction work (input bytes merged; at least one entry
    /// when there is work), starting the next merge when one finishes. Call it after writes;
    /// it never blocks for longer than its budget plus one block read per merge input.
    pub fn compact_step(&mut self, budget_bytes: u64) -> Result<CompactionProgress> {
        let mut progress = CompactionProgress::default();
        while progress.bytes_read < budget_bytes.max(1) {
            if self.merge.is_none() {
                let Some((start, len)) = self.plan_merge() else { break };
                let inputs = self.runs[start..start + len]
                    .iter()
                    .map(|r| RunCursor::new(Arc::clone(r)))
                    .collect();
                let id = self.allocate_run_id();
                let out = RunWriter::create(&self.dir, id, self.options.block_bytes)?;
                self.merge = Some(Merge {
                    inputs,
                    bottom: start == 0,
                    out: Some(out),
                });
            }
            let watermark = self.watermark;
            let remaining = budget_bytes.max(1) - progress.bytes_read;
            let merge = self.merge.as_mut().expect("a merge was just ensured");
            let before = progress.bytes_read;
            let finished = merge.advance(remaining, watermark, &mut progress)?;
            self.counters.compaction_bytes_read += progress.bytes_read - before;
            if finished {
                let merge = self.merge.take().expect("merge in progress");
                self.install(merge, &mut progress)?;
            }
        }
        self.counters.entries_dropped += progress.entries_dropped;
        progress.idle = self.merge.is_none() && self.plan_merge().is_none();
        Ok(progress)
    }

    /// Runs compaction steps until nothing is left to do (for tests, tools and shutdown).
    pub fn compact_fully(&mut self) -> Result<CompactionProgress> {
        let mut total = CompactionProgress::default();
        loop {
            let p = self.compact_step(1 << 20)?;
            total.bytes_read += p.bytes_read;
            total.bytes_written += p.bytes_written;
            total.merges_completed += p.merges_completed;
            total.entries_dropped += p.entries_dropped;
            if p.idle {
                total.idle = true;
                return Ok(total);
            }
        }
    }

    /// The next range of runs to merge, as (start, len).
    fn plan_merge(&self) -> Option<(usize, usize)> {
        let ratio = self.options.size_ratio;
        let tier = self
            .runs
            .windows(2)
            .enumerate()
            .filter(|(_, pair)| pair[0].file_bytes < ratio.saturating_mul(pair[1].file_bytes))
            .min_by_key(|(_, pair)| pair[0].file_bytes + pair[1].file_bytes)
            .map(|(i, _)| (i, 2));
        tier.or_else(|| {
            self.runs
                .iter()
                .enumerate()
                .find(|(i, run)| {
                    run.min_expiry.is_some_and(|e| self.watermark.is_some_and(|wm| e <= wm))
                        || (*i == 0 && run.tombstones > 0)
                })
                .map(|(i, _)| (i, 1))
        })
    }

    /// Replaces a finished merge's inputs with its output and deletes the input files.
    fn install(&mut self, mut merge: Merge, progress: &mut CompactionProgress) -> Result<()> {
        let out = merge
            .out
            .take()
            .ok_or_else(|| StateError::Internal("merge finished twice".into()))?;
        let ids: Vec<u64> = merge.inputs.iter().map(|c| c.run.id).collect();
        let start = self
            .runs
            .iter()
            .position(|r| r.id == ids[0])
            .filter(|&start| {
                self.runs[start..]
                    .iter()
                    .map(|r| r.id)
                    .take(ids.len())
                    .eq(ids.iter().copied())
            })
            .ok_or_else(|| StateError::Internal(format!("merge inputs {ids:?} are no longer adjacent runs")))?;
        let output = out.finish()?;
        if let Some(run) = &output {
            progress.bytes_written += run.file_bytes;
            self.counters.compaction_bytes_written += run.file_bytes;
        }
        let replaced: Vec<Arc<SortedRun>> = self
            .runs
            .splice(start..start + ids.len(), output.map(Arc::new))
            .collect();
        drop(merge);
        progress.merges_completed += 1;
        self.counters.compactions += 1;
        for run in replaced {
            fs::remove_file(&run.path).map_err(io_at(&run.path))?;
        }
        Ok(())
    }
}
