//! Incremental checkpoints and restore.
//!
//! Layout of a checkpoint root (Flink's incremental RocksDB checkpoints, in miniature):
//!
//! ```text
//! <root>/shared/chk<id>-run<run>.sst       a run, uploaded by checkpoint <id>
//! <root>/shared/chk<id>-changelog.log      a changelog segment (changelog mode)
//! <root>/chk-<id>/MANIFEST                 what checkpoint <id> consists of
//! ```
//!
//! Why incremental works: runs are immutable (invariant 2), so a run uploaded once is the same
//! bytes in every later checkpoint that still has it; the store remembers which of its runs
//! are already in the root and lists them by reference. Only runs created since (by flushes and
//! merges) are transferred: hard-linked where the working directory and the root share a file
//! system — safe precisely because neither side ever modifies the file — else copied. The
//! bytes a checkpoint costs are therefore the bytes flushed and compacted since the previous
//! one, which [`CheckpointStats::bytes_written`] reports; in changelog mode they are the bytes
//! *written by the job* since the previous one, until the next materialization.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::changelog::{read_segment, write_segment, HEADER_LEN};
use super::error::{corrupt, io_at, Result, StateError};
use super::manifest::{Manifest, SharedFile, SharedRun, MANIFEST_FILE};
use super::run::{run_file_name, SortedRun};
use super::store::{LsmOptions, LsmStore};

/// The shared area's directory name inside a checkpoint root.
const SHARED_DIR: &str = "shared";

/// What one checkpoint cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointStats {
    /// The checkpoint id.
    pub id: u64,
    /// Runs the checkpoint consists of.
    pub runs: usize,
    /// Runs transferred into the shared area by this checkpoint.
    pub runs_uploaded: usize,
    /// Of those, how many were hard-linked rather than copied.
    pub runs_hard_linked: usize,
    /// Runs (and changelog segments) listed by reference to earlier checkpoints.
    pub files_referenced: usize,
    /// New bytes this checkpoint added to the root: new runs, the new changelog segment and
    /// the manifest (hard-linked runs count: they are new to the checkpoint).
    pub bytes_written: u64,
    /// Bytes the checkpoint consists of that earlier checkpoints had already written.
    pub bytes_referenced: u64,
    /// Bytes of the changelog segment written by this checkpoint (changelog mode).
    pub changelog_bytes: u64,
    /// The manifest's length.
    pub manifest_bytes: u64,
    /// Whether the runs were uploaded (always, except for changelog-mode checkpoints that only
    /// upload the changelog tail).
    pub materialized: bool,
}

impl LsmStore {
    /// Takes checkpoint `id` into the checkpoint root `dir` (created if missing): flushes the
    /// memtable (or, in changelog mode, the changelog tail), transfers what the root lacks,
    /// and writes `chk-<id>/MANIFEST` last. Ids must be unique within a root.
    pub fn checkpoint(&mut self, id: u64, dir: &Path) -> Result<CheckpointStats> {
        let chk_dir = dir.join(format!("chk-{id}"));
        let manifest_path = chk_dir.join(MANIFEST_FILE);
        if manifest_path.exists() {
            return Err(StateError::CheckpointExists {
                id,
                path: manifest_path,
            });
        }
        let shared = dir.join(SHARED_DIR);
        fs::create_dir_all(&shared).map_err(io_at(&shared))?;
        fs::create_dir_all(&chk_dir).map_err(io_at(&chk_dir))?;
        let new_root = self.tracker.root.as_deref() != Some(dir);
        if new_root {
            self.tracker = Default::default();
            self.tracker.root = Some(dir.to_path_buf());
        }
        let sync = self.options.sync_checkpoints;
        let mut stats = CheckpointStats {
            id,
            ..Default::default()
        };
        let materialize = match &self.changelog {
            None => true,
            Some(log) => {
                let since: u64 = self.tracker.segments.iter().map(|s| s.bytes).sum::<u64>()
                    + (log.len() - self.tracker.changelog_uploaded.max(HEADER_LEN));
                new_root || since >= self.options.materialize_after_bytes
            }
        };
        let (runs, changelog) = if materialize {
            self.flush()?;
            let mut listed = Vec::with_capacity(self.runs.len());
            for run in &self.runs {
                if let Some(known) = self.tracker.uploaded.get(&run.id) {
                    stats.files_referenced += 1;
                    stats.bytes_referenced += known.file.bytes;
                    listed.push(known.clone());
                    continue;
                }
                let rel_path = format!("{SHARED_DIR}/chk{id}-run{}.sst", run.id);
                let linked = transfer(&run.path, &dir.join(&rel_path), sync)?;
                stats.runs_uploaded += 1;
                stats.runs_hard_linked += usize::from(linked);
                stats.bytes_written += run.file_bytes;
                let shared_run = SharedRun {
                    run_id: run.id,
                    file: SharedFile {
                        rel_path,
                        bytes: run.file_bytes,
                    },
                };
                self.tracker.uploaded.insert(run.id, shared_run.clone());
                listed.push(shared_run);
            }
            let live: std::collections::HashSet<u64> = self.runs.iter().map(|r| r.id).collect();
            self.tracker.uploaded.retain(|id, _| live.contains(id));
            stats.materialized = true;
            if let Some(log) = &mut self.changelog {
                log.reset()?;
                self.tracker.materialized = listed.clone();
                self.tracker.segments.clear();
                self.tracker.changelog_uploaded = HEADER_LEN;
            }
            (listed, Vec::new())
        } else {
            let log = self
                .changelog
                .as_mut()
                .expect("only changelog mode skips materialization");
            let from = self.tracker.changelog_uploaded.max(HEADER_LEN);
            let tail = log.tail(from)?;
            if !tail.is_empty() {
                let rel_path = format!("{SHARED_DIR}/chk{id}-changelog.log");
                let bytes = write_segment(&dir.join(&rel_path), &tail, sync)?;
                stats.changelog_bytes = bytes;
                stats.bytes_written += bytes;
                self.tracker.segments.push(SharedFile { rel_path, bytes });
                self.tracker.changelog_uploaded = from + tail.len() as u64;
                stats.files_referenced += self.tracker.segments.len() - 1;
            } else {
                stats.files_referenced += self.tracker.segments.len();
            }
            stats.files_referenced += self.tracker.materialized.len();
            stats.bytes_referenced = self.tracker.materialized.iter().map(|r| r.file.bytes).sum::<u64>()
                + self.tracker.segments.iter().map(|s| s.bytes).sum::<u64>()
                - stats.changelog_bytes;
            (self.tracker.materialized.clone(), self.tracker.segments.clone())
        };
        stats.runs = runs.len();
        let manifest = Manifest {
            checkpoint_id: id,
            watermark: self.watermark,
            next_run_id: self.next_run_id,
            runs,
            changelog,
        };
        stats.manifest_bytes = manifest.write(&manifest_path, sync)?;
        stats.bytes_written += stats.manifest_bytes;
        self.counters.checkpoint_bytes_written += stats.bytes_written;
        Ok(stats)
    }

    /// Rebuilds the store of checkpoint `id` in root `dir`, working in `work_dir` (cleared as
    /// by [`LsmStore::open`]). Every run is verified block by block and every changelog record
    /// by its checksum before use; a damaged, truncated or foreign file is an error naming it.
    /// The restored store checkpoints incrementally into the same root.
    pub fn restore(dir: &Path, id: u64, work_dir: &Path, options: LsmOptions) -> Result<LsmStore> {
        let manifest_path = dir.join(format!("chk-{id}")).join(MANIFEST_FILE);
        if !manifest_path.exists() {
            return Err(StateError::CheckpointNotFound {
                id,
                path: manifest_path,
            });
        }
        let manifest = Manifest::read(&manifest_path)?;
        if manifest.checkpoint_id != id {
            return Err(corrupt(
                &manifest_path,
                format!("names checkpoint {}, expected {id}", manifest.checkpoint_id),
            ));
        }
        let mut store = LsmStore::open(work_dir, options)?;
        for shared in &manifest.runs {
            let src = dir.join(&shared.file.rel_path);
            check_len(&src, shared.file.bytes, &manifest_path)?;
            SortedRun::open(&src, shared.run_id)?.verify()?;
            let dst = work_dir.join(run_file_name(shared.run_id));
            transfer(&src, &dst, false)?;
            store.runs.push(Arc::new(SortedRun::open(&dst, shared.run_id)?));
            store.tracker.uploaded.insert(shared.run_id, shared.clone());
        }
        let max_id = manifest.runs.iter().map(|r| r.run_id).max().unwrap_or(0);
        store.next_run_id = manifest.next_run_id.max(max_id + 1);
        store.watermark = manifest.watermark;
        store.tracker.root = Some(dir.to_path_buf());
        store.tracker.materialized = manifest.runs.clone();
        store.tracker.segments = manifest.changelog.clone();
        store.tracker.changelog_uploaded = HEADER_LEN;
        for segment in &manifest.changelog {
            let path = dir.join(&segment.rel_path);
            check_len(&path, segment.bytes, &manifest_path)?;
            for (key, slot) in read_segment(&path)? {
                store.apply(&key, slot)?;
            }
        }
        Ok(store)
    }
}

/// Refuses a shared file whose length differs from what the manifest recorded.
fn check_len(path: &Path, expected: u64, manifest: &Path) -> Result<()> {
    let len = fs::metadata(path).map_err(io_at(path))?.len();
    if len != expected {
        return Err(corrupt(
            path,
            format!(
                "{len} bytes, but {} records {expected}: truncated or replaced",
                manifest.display()
            ),
        ));
    }
    Ok(())
}

/// Puts an immutable file at `dst`: a hard link where the file system allows, else a copy.
/// Returns whether it linked.
fn transfer(src: &Path, dst: &Path, sync: bool) -> Result<bool> {
    // A leftover of an attempt that failed before its manifest was written.
    if dst.exists() {
        fs::remove_file(dst).map_err(io_at(dst))?;
    }
    let linked = fs::hard_link(src, dst).is_ok();
    if !linked {
        fs::copy(src, dst).map_err(io_at(dst))?;
    }
    if sync {
        File::open(dst).and_then(|f| f.sync_all()).map_err(io_at(dst))?;
    }
    Ok(linked)
}
