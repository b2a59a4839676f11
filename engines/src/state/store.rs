//! [`LsmStore`]: the memtable, the runs, and the read and write paths.
//!
//! Compaction lives in `compaction.rs` and checkpoints in `checkpoint.rs`; both are
//! `impl LsmStore` blocks over the fields declared here.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::changelog::{ChangelogWriter, CHANGELOG_FILE};
use super::compaction::Merge;
use super::error::{io_at, Result, StateError};
use super::format::{Retain, Slot};
use super::manifest::{SharedFile, SharedRun};
use super::memtable::Memtable;
use super::run::{RunWriter, SortedRun};
use crate::time::EventTime;

/// Tuning of an [`LsmStore`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LsmOptions {
    /// Flush the memtable once its entries take this many (encoded) bytes. Default 4 MiB.
    pub memtable_bytes: usize,
    /// Target size of a run's blocks, the unit of a point read. Default 4 KiB.
    pub block_bytes: usize,
    /// Size-tiered growth factor (≥ 1): adjacent runs are merged while the older is smaller
    /// than `size_ratio` × the newer. Default 2.
    pub size_ratio: u64,
    /// Changelog mode: log every write; checkpoints upload the log tail. Default off.
    pub changelog: bool,
    /// In changelog mode, materialize (flush and upload runs) at the next checkpoint once the
    /// changelog since the last materialization exceeds this many bytes. Default 16 MiB.
    pub materialize_after_bytes: u64,
    /// Fsync checkpoint files and manifests before a checkpoint completes. Default on.
    pub sync_checkpoints: bool,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            memtable_bytes: 4 << 20,
            block_bytes: 4 << 10,
            size_ratio: 2,
            changelog: false,
            materialize_after_bytes: 16 << 20,
            sync_checkpoints: true,
        }
    }
}

/// Counters and sizes of a store, for reports. Byte counts of files are file lengths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateStats {
    /// Bytes the store holds now: memtable plus run files (shadowed versions included, so
    /// `live_bytes` over the visible data is the space amplification).
    pub live_bytes: u64,
    /// Encoded bytes in the memtable.
    pub memtable_bytes: u64,
    /// Keys in the memtable.
    pub memtable_entries: u64,
    /// Number of sorted runs.
    pub runs: usize,
    /// Total length of the run files.
    pub run_bytes: u64,
    /// Versions stored in runs (tombstones included).
    pub run_entries: u64,
    /// Every byte this store wrote: flushes, compaction, checkpoints, changelog.
    pub bytes_written_total: u64,
    /// Bytes written by memtable flushes.
    pub flush_bytes: u64,
    /// Bytes read by compaction (input entries).
    pub compaction_bytes_read: u64,
    /// Bytes written by compaction (output runs).
    pub compaction_bytes_written: u64,
    /// Bytes written by checkpoints (new runs, changelog segments, manifests).
    pub checkpoint_bytes_written: u64,
    /// Bytes appended to the working changelog.
    pub changelog_bytes: u64,
    /// `get` calls.
    pub gets: u64,
    /// `put` and `put_expiring` calls.
    pub puts: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// Blocks read from runs by `get` (the read amplification).
    pub run_block_reads: u64,
    /// Memtable flushes.
    pub flushes: u64,
    /// Merges completed.
    pub compactions: u64,
    /// Versions compaction and flushes discarded (shadowed, tombstones, expired).
    pub entries_dropped: u64,
    /// The watermark, if one was set.
    pub watermark: Option<EventTime>,
    /// Whether a merge is in progress.
    pub merge_in_progress: bool,
}

/// Write-side counters; `Cell`s for the ones a `&self` read updates.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) gets: Cell<u64>,
    pub(super) run_block_reads: Cell<u64>,
    pub(super) puts: u64,
    pub(super) deletes: u64,
    pub(super) flushes: u64,
    pub(super) flush_bytes: u64,
    pub(super) compaction_bytes_read: u64,
    pub(super) compaction_bytes_written: u64,
    pub(super) compactions: u64,
    pub(super) entries_dropped: u64,
    pub(super) checkpoint_bytes_written: u64,
    pub(super) changelog_bytes: u64,
}

/// What the store remembers about the checkpoint root it last wrote to, to write the next
/// checkpoint incrementally.
#[derive(Debug, Default)]
pub(super) struct CheckpointTracker {
    /// The root; a checkpoint to another root starts from scratch.
    pub(super) root: Option<PathBuf>,
    /// Runs (by run id) already in the root's shared area.
    pub(super) uploaded: HashMap<u64, SharedRun>,
    /// Changelog mode: the runs of the last materialization.
    pub(super) materialized: Vec<SharedRun>,
    /// Changelog mode: segments uploaded since the last materialization, in order.
    pub(super) segments: Vec<SharedFile>,
    /// Changelog mode: how far the working changelog has been uploaded.
    pub(super) changelog_uploaded: u64,
}

/// An LSM key-value store over byte keys and values, in a working directory.
///
/// See the [module documentation](super) for the design and its invariants.
pub struct LsmStore {
    pub(super) dir: PathBuf,
    pub(super) options: LsmOptions,
    pub(super) memtable: Memtable,
    /// Oldest first.
    pub(super) runs: Vec<Arc<SortedRun>>,
    pub(super) next_run_id: u64,
    pub(super) watermark: Option<EventTime>,
    pub(super) merge: Option<Merge>,
    pub(super) changelog: Option<ChangelogWriter>,
    pub(super) tracker: CheckpointTracker,
    pub(super) counters: Counters,
}

impl std::fmt::Debug for LsmStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmStore")
            .field("dir", &self.dir)
            .field("memtable_entries", &self.memtable.len())
            .field("runs", &self.runs.iter().map(|r| r.id).collect::<Vec<_>>())
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl LsmStore {
    /// Opens an empty store working in `dir` (created if missing). Run files, temporary files
    /// and a changelog left there by an earlier store are removed: state is recovered with
    /// [`LsmStore::restore`], never from the working directory.
    pub fn open(dir: &Path, options: LsmOptions) -> Result<LsmStore> {
        if options.memtable_bytes == 0 || options.block_bytes == 0 || options.size_ratio == 0 {
            return Err(StateError::InvalidOptions(format!(
                "memtable_bytes, block_bytes and size_ratio must be at least 1, got {options:?}"
            )));
        }
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        for entry in fs::read_dir(dir).map_err(io_at(dir))? {
            let entry = entry.map_err(io_at(dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = (name.starts_with("run-") && (name.ends_with(".sst") || name.ends_with(".sst.tmp")))
                || name == CHANGELOG_FILE;
            if stale {
                fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
            }
        }
        let changelog = if options.changelog {
            Some(ChangelogWriter::create(&dir.join(CHANGELOG_FILE))?)
        } else {
            None
        };
        Ok(LsmStore {
            dir: dir.to_path_buf(),
            options,
            memtable: Memtable::default(),
            runs: Vec::new(),
            next_run_id: 1,
            watermark: None,
            merge: None,
            changelog,
            tracker: CheckpointTracker::default(),
            counters: Counters::default(),
        })
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the store runs with.
    pub fn options(&self) -> &LsmOptions {
        &self.options
    }

    /// Sets `key` to `value`, with no expiry.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.counters.puts += 1;
        self.write(
            key,
            Slot::Put {
                value: checked(value, "value")?.to_vec(),
                expiry: None,
            },
        )
    }

    /// Sets `key` to `value` until the watermark reaches `expiry` (event time, ms).
    pub fn put_expiring(&mut self, key: &[u8], value: &[u8], expiry: EventTime) -> Result<()> {
        self.counters.puts += 1;
        self.write(
            key,
            Slot::Put {
                value: checked(value, "value")?.to_vec(),
                expiry: Some(expiry),
            },
        )
    }

    /// Deletes `key` (writes a tombstone).
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.counters.deletes += 1;
        self.write(key, Slot::Tombstone)
    }

    fn write(&mut self, key: &[u8], slot: Slot) -> Result<()> {
        checked(key, "key")?;
        if let Some(log) = &mut self.changelog {
            self.counters.changelog_bytes += log.append(key, &slot)?;
        }
        self.apply(key, slot)
    }

    /// Applies a change without logging it (writes, and changelog replay on restore).
    pub(super) fn apply(&mut self, key: &[u8], slot: Slot) -> Result<()> {
        self.memtable.insert(key, slot);
        if self.memtable.bytes() >= self.options.memtable_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// The visible value of `key`: the newest version's, unless that is a tombstone or expired.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.counters.gets.set(self.counters.gets.get() + 1);
        if let Some(slot) = self.memtable.get(key) {
            return Ok(slot.visible(self.watermark).map(<[u8]>::to_vec));
        }
        for run in self.runs.iter().rev() {
            if !run.covers(key) {
                continue;
            }
            self.counters
                .run_block_reads
                .set(self.counters.run_block_reads.get() + 1);
            if let Some(slot) = run.get(key)? {
                return Ok(slot.visible(self.watermark).map(<[u8]>::to_vec));
            }
        }
        Ok(None)
    }

    /// Every visible key and value, in key order. Reads every run in full: for inspection,
    /// tests and small states, not for a hot path.
    pub fn scan(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut newest: BTreeMap<Vec<u8>, Slot> = BTreeMap::new();
        for run in &self.runs {
            for block in 0..run.block_count() {
                newest.extend(run.read_block(block)?);
            }
        }
        newest.extend(self.memtable.iter().map(|(k, s)| (k.clone(), s.clone())));
        Ok(newest
            .into_iter()
            .filter_map(|(k, s)| s.visible(self.watermark).map(|v| (k.clone(), v.to_vec())))
            .collect())
    }

    /// Advances the event-time watermark: entries with `expiry <= wm` become invisible and
    /// compaction may drop them. A watermark below the current one is ignored (invariant 4).
    pub fn set_watermark(&mut self, wm: EventTime) {
        self.watermark = Some(self.watermark.map_or(wm, |current| current.max(wm)));
    }

    /// The current watermark, if one was set.
    pub fn watermark(&self) -> Option<EventTime> {
        self.watermark
    }

    /// Writes the memtable as a new (newest) run, if it is not empty.
    pub fn flush(&mut self) -> Result<()> {
        if self.memtable.is_empty() {
            return Ok(());
        }
        let bottom = self.runs.is_empty();
        let id = self.allocate_run_id();
        let mut writer = RunWriter::create(&self.dir, id, self.options.block_bytes)?;
        let mut dropped = 0;
        for (key, slot) in self.memtable.iter() {
            match slot.retain(self.watermark, bottom) {
                Retain::Keep => writer.add(key, slot)?,
                Retain::Tombstone => writer.add(key, &Slot::Tombstone)?,
                Retain::Drop => dropped += 1,
            }
        }
        if let Some(run) = writer.finish()? {
            self.counters.flush_bytes += run.file_bytes;
            self.runs.push(Arc::new(run));
        }
        self.counters.flushes += 1;
        self.counters.entries_dropped += dropped;
        self.memtable.clear();
        Ok(())
    }

    pub(super) fn allocate_run_id(&mut self) -> u64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        id
    }

    /// Sizes and counters.
    pub fn stats(&self) -> StateStats {
        let c = &self.counters;
        let run_bytes = self.runs.iter().map(|r| r.file_bytes).sum::<u64>();
        StateStats {
            live_bytes: self.memtable.bytes() as u64 + run_bytes,
            memtable_bytes: self.memtable.bytes() as u64,
            memtable_entries: self.memtable.len() as u64,
            runs: self.runs.len(),
            run_bytes,
            run_entries: self.runs.iter().map(|r| r.entries).sum(),
            bytes_written_total: c.flush_bytes
                + c.compaction_bytes_written
                + c.checkpoint_bytes_written
                + c.changelog_bytes,
            flush_bytes: c.flush_bytes,
            compaction_bytes_read: c.compaction_bytes_read,
            compaction_bytes_written: c.compaction_bytes_written,
            checkpoint_bytes_written: c.checkpoint_bytes_written,
            changelog_bytes: c.changelog_bytes,
            gets: c.gets.get(),
            puts: c.puts,
            deletes: c.deletes,
            run_block_reads: c.run_block_reads.get(),
            flushes: c.flushes,
            compactions: c.compactions,
            entries_dropped: c.entries_dropped,
            watermark: self.watermark,
            merge_in_progress: self.merge.is_some(),
        }
    }
}

fn checked<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(StateError::EntryTooLarge { what, len: bytes.len() });
    }
    Ok(bytes)
}
