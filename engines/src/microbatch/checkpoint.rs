//! The checkpoint directory of a micro-batch query, laid out as Spark lays it out:
//!
//! ```text
//! <dir>/metadata              {"id": ..., "formatVersion": 1, "fingerprint": ...}
//! <dir>/offsets/<batchId>     written before the batch runs: offsets and the batch's watermark
//! <dir>/commits/<batchId>     written after the sink has the batch's output
//! <dir>/sinks/<batchId>       the idempotent sink's record that it holds the batch's output
//! <dir>/state/0/<p>/<v>.delta the state partition p's changes in version v (= batchId + 1)
//! <dir>/state/0/<p>/<v>.snapshot  every SNAPSHOT_EVERY versions, the whole partition
//! <dir>/state/0/<p>/<v>.stage     a join's, deduplication's or top-N's partition at version v
//! ```
//!
//! A keyed stage other than the aggregation writes its whole partition at every version (its
//! state is bounded by the watermark: rows within the join's time bound, keys within the
//! deduplication's reach, candidates of open windows), in the framing every state file has and
//! the encoding of `operators/graph/codec.rs`. The second aggregation (`then`) has no state to
//! version: Spark runs it in append mode only, where a window's first-stage results all leave
//! in one batch, so it is empty after every batch.
//!
//! With the LSM state backend (Spark's RocksDB state store provider) a partition's versions
//! are incremental checkpoints of its store instead, as the provider uploads SST files once and
//! lists them per version:
//!
//! ```text
//! <dir>/state/0/<p>/shared/chk<v>-run<n>.sst  a run, written by the first version that had it
//! <dir>/state/0/<p>/chk-<v>/MANIFEST          the runs version v consists of
//! ```
//!
//! Recovery reads it back: the last commit fixes where to resume; a batch with an offsets entry
//! and no commit is replayed with exactly the same offsets and watermark, over the state of the
//! version before it, and the sink skips a batch it already holds. A directory written by
//! another query (fingerprint), another format version, or with a corrupt or truncated file is
//! refused with an error naming the file, and never overwritten or deleted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::{damaged, io, read_framed, refused, write_atomically, Result, WriteBehind};
use crate::microbatch::log::OffsetEntry;
use crate::operators::graph::KeyedStage;
use crate::operators::window::{StateDelta, WindowEntry, WindowedAggregation};
use crate::time::EventTime;

// re-export for dataflow/*, removed once they import crate::checkpoint
pub use crate::checkpoint::CheckpointError;
// re-export for dataflow/*, removed once they import crate::checkpoint
pub(crate) use crate::checkpoint::{frame, read_delta};

/// The format this version writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// A full snapshot of a state partition is written every this many versions (Spark's
/// `minDeltasForSnapshot` default is 10).
pub const SNAPSHOT_EVERY: u64 = 10;

/// An open checkpoint directory.
#[derive(Clone, Debug)]
pub struct CheckpointDir {
    root: PathBuf,
    /// Files are written on this thread instead of in line ([`CheckpointDir::written_behind`]).
    behind: Option<Arc<WriteBehind>>,
}

/// What a checkpoint directory says about where a query stands.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last committed batch: its id, offsets, the watermark it ran with, and the watermark
    /// for the next batch.
    pub last_commit: Option<(u64, Vec<usize>, EventTime, EventTime)>,
    /// A batch whose offsets were written but which never committed: to be replayed.
    pub uncommitted: Option<OffsetEntry>,
    /// Batches the sink already holds.
    pub sink_batches: Vec<u64>,
}

impl CheckpointDir {
    /// Opens `root` for the query identified by `fingerprint`, creating it when it does not exist
    /// or is empty. An existing directory must carry this query's metadata.
    pub fn open(root: &Path, fingerprint: &str) -> Result<Self> {
        let meta = root.join("metadata");
        if root.exists() {
            let empty = fs::read_dir(root).map_err(io(root))?.next().is_none();
            if !empty {
                let text = fs::read_to_string(&meta).map_err(|_| {
                    refused(root, "is not empty and has no `metadata` file: not a streamlab micro-batch checkpoint; refusing to use it")
                })?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| refused(&meta, format!("is not valid JSON ({e}); the checkpoint is corrupt")))?;
                let version = v["formatVersion"].as_u64();
                if version != Some(FORMAT_VERSION) {
                    return Err(refused(
                        &meta,
                        format!("format version {version:?}, this streamlab reads version {FORMAT_VERSION} only"),
                    ));
                }
                if v["fingerprint"].as_str() != Some(fingerprint) {
                    return Err(refused(
                        &meta,
                        "was written by another query (different scenario, pipeline or engine configuration); \
                         use a fresh checkpoint directory",
                    ));
                }
                return Ok(Self {
                    root: root.to_path_buf(),
                    behind: None,
                });
            }
        }
        for sub in ["offsets", "commits", "sinks", "state"] {
            fs::create_dir_all(root.join(sub)).map_err(io(root))?;
        }
        let text = serde_json::json!({"id": fingerprint, "formatVersion": FORMAT_VERSION, "fingerprint": fingerprint});
        fs::write(&meta, text.to_string()).map_err(io(&meta))?;
        Ok(Self {
            root: root.to_path_buf(),
            behind: None,
        })
    }

    /// The same directory, its files from now on written by `writer`'s thread in the order
    /// they are handed over (see [`WriteBehind`]) instead of in line: for a simulated run, whose
    /// engines' thread should not wait for the file system (the cost model prices the writes).
    /// Every read settles first, so recovery sees every file written before it.
    pub fn written_behind(mut self, writer: Arc<WriteBehind>) -> Self {
        self.behind = Some(writer);
        self
    }

    /// Waits until every file handed to the writer thread is written (at once if there is
    /// none); fails with the first that could not be.
    pub fn settle(&self) -> Result<()> {
        match &self.behind {
            Some(w) => w
                .settle()
                .map_err(|(path, source)| CheckpointError::Io { path, source }),
            None => Ok(()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> Result<usize> {
        let path = self.root.join(rel);
        if let Some(w) = &self.behind {
            w.write(path, bytes.to_vec(), false)
                .map_err(|(path, source)| CheckpointError::Io { path, source })?;
            return Ok(bytes.len());
        }
        // Write then rename, so a crash never leaves a half-written entry under its final name.
        write_atomically(&path, bytes, false).map_err(io(&path))?;
        Ok(bytes.len())
    }

    /// Writes `offsets/<batchId>`.
    pub fn write_offsets(&self, entry: &OffsetEntry) -> Result<usize> {
        self.write(&format!("offsets/{}", entry.batch_id), entry.serialize().as_bytes())
    }

    /// Writes `commits/<batchId>`.
    pub fn write_commit(&self, batch_id: u64, next_watermark: EventTime) -> Result<usize> {
        self.write(
            &format!("commits/{batch_id}"),
            format!("v1\n{{\"nextBatchWatermarkMs\":{next_watermark}}}").as_bytes(),
        )
    }

    /// Records that the sink holds batch `batch_id`'s output.
    pub fn write_sink_marker(&self, batch_id: u64, rows: usize) -> Result<usize> {
        self.write(
            &format!("sinks/{batch_id}"),
            format!("v1\n{{\"rows\":{rows}}}").as_bytes(),
        )
    }

    /// Writes state partition `p`'s version `v`: its delta, and every [`SNAPSHOT_EVERY`]
    /// versions a full snapshot too. Returns the bytes written.
    pub fn write_state(
        &self,
        p: usize,
        v: u64,
        delta: &StateDelta,
        snapshot: impl FnOnce() -> Vec<WindowEntry>,
    ) -> Result<usize> {
        let mut bytes = self.write(&format!("state/0/{p}/{v}.delta"), &frame(&delta.encode()))?;
        if v % SNAPSHOT_EVERY == 0 {
            let full = StateDelta {
                upserts: snapshot(),
                deletes: Vec::new(),
            };
            bytes += self.write(&format!("state/0/{p}/{v}.snapshot"), &frame(&full.encode()))?;
        }
        Ok(bytes)
    }

    /// Commits state partition `p` of `op` as version `v`: an incremental checkpoint of its
    /// LSM store, or on the heap backend its delta (and now and then a snapshot). Returns the
    /// bytes written.
    pub fn commit_state(&self, p: usize, v: u64, op: &mut WindowedAggregation) -> Result<usize> {
        let root = self.state_root(p);
        match op.checkpoint_incremental(v, &root) {
            Some(taken) => {
                op.take_delta();
                let stats = taken.map_err(|e| refused(&root, format!("version {v} could not be written: {e}")))?;
                Ok(stats.bytes_written as usize)
            }
            None => {
                let delta = op.take_delta();
                self.write_state(p, v, &delta, || op.snapshot())
            }
        }
    }

    /// Restores state partition `p` of `op` to version `v`, run with `watermark`: from the
    /// incremental checkpoint of that version when there is one, else from deltas and snapshots.
    pub fn restore_state(&self, p: usize, v: u64, op: &mut WindowedAggregation, watermark: EventTime) -> Result<()> {
        self.settle()?;
        let root = self.state_root(p);
        if root.join(format!("chk-{v}")).join("MANIFEST").is_file() {
            op.restore_incremental(&root, v, watermark)
                .map_err(|e| refused(&root.join(format!("chk-{v}")), format!("cannot be restored: {e}")))?;
        } else {
            op.restore(self.read_state(p, v)?, watermark);
        }
        op.take_delta();
        Ok(())
    }

    /// Commits keyed-stage partition `p` as version `v`: its whole state. Returns the bytes
    /// written.
    pub fn commit_stage(&self, p: usize, v: u64, stage: &KeyedStage) -> Result<usize> {
        self.write(&format!("state/0/{p}/{v}.stage"), &frame(&stage.encode()))
    }

    /// Restores keyed-stage partition `p` to version `v` (version 0 is the empty state the
    /// query starts with, which `stage` must be).
    pub fn restore_stage(&self, p: usize, v: u64, stage: &mut KeyedStage) -> Result<()> {
        self.settle()?;
        if v == 0 {
            return Ok(());
        }
        let path = self.state_root(p).join(format!("{v}.stage"));
        if !path.exists() {
            return Err(refused(
                &path,
                "is missing: the state history of this checkpoint is incomplete",
            ));
        }
        let bytes = read_framed(&path)?;
        stage
            .restore(&bytes)
            .ok_or_else(|| damaged(&path, "not the state of this query's join, deduplication or top-N"))
    }

    /// State partition `p`'s directory.
    fn state_root(&self, p: usize) -> PathBuf {
        self.root.join(format!("state/0/{p}"))
    }

    /// Reads state partition `p` as of version `v`: the latest snapshot at or below `v`, then
    /// every delta after it.
    pub fn read_state(&self, p: usize, v: u64) -> Result<Vec<WindowEntry>> {
        self.settle()?;
        let dir = self.root.join(format!("state/0/{p}"));
        let mut state: BTreeMap<(i64, EventTime), WindowEntry> = BTreeMap::new();
        let mut from = 1;
        let mut base = v - v % SNAPSHOT_EVERY;
        while base > 0 {
            let path = dir.join(format!("{base}.snapshot"));
            if path.exists() {
                for e in read_delta(&path)?.upserts {
                    state.insert((e.key, e.start), e);
                }
                from = base + 1;
                break;
            }
            base -= SNAPSHOT_EVERY;
        }
        for version in from..=v {
            let path = dir.join(format!("{version}.delta"));
            if !path.exists() {
                return Err(refused(
                    &path,
                    "is missing: the state history of this checkpoint is incomplete",
                ));
            }
            let delta = read_delta(&path)?;
            for (k, s) in delta.deletes {
                state.remove(&(k, s));
            }
            for e in delta.upserts {
                state.insert((e.key, e.start), e);
            }
        }
        Ok(state.into_values().collect())
    }

    /// Reads the logs back.
    pub fn recover(&self) -> Result<Recovered> {
        self.settle()?;
        let ids = |sub: &str| -> Result<Vec<u64>> {
            let dir = self.root.join(sub);
            let mut ids = Vec::new();
            for entry in fs::read_dir(&dir).map_err(io(&dir))? {
                let entry = entry.map_err(io(&dir))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".tmp") {
                    continue; // a write cut short by a crash: never became an entry
                }
                ids.push(name.parse::<u64>().map_err(|_| {
                    refused(
                        &entry.path(),
                        "is not a batch id: this is not a streamlab checkpoint file",
                    )
                })?);
            }
            ids.sort_unstable();
            Ok(ids)
        };
        let offsets = ids("offsets")?;
        let commits = ids("commits")?;
        let mut out = Recovered {
            sink_batches: ids("sinks")?,
            ..Default::default()
        };
        if let Some(&c) = commits.last() {
            let entry = self.read_offsets(c)?;
            let path = self.root.join(format!("commits/{c}"));
            let text = fs::read_to_string(&path).map_err(io(&path))?;
            let wm = json_line(&path, &text, 1)?["nextBatchWatermarkMs"]
                .as_i64()
                .ok_or_else(|| refused(&path, "has no nextBatchWatermarkMs: the commit entry is corrupt"))?;
            out.last_commit = Some((c, entry.offsets, entry.watermark, wm));
        }
        if let Some(&o) = offsets.last() {
            if commits.last().is_none_or(|&c| c < o) {
                out.uncommitted = Some(self.read_offsets(o)?);
            }
        }
        Ok(out)
    }

    fn read_offsets(&self, batch_id: u64) -> Result<OffsetEntry> {
        self.settle()?;
        let path = self.root.join(format!("offsets/{batch_id}"));
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let meta = json_line(&path, &text, 1)?;
        let watermark = meta["batchWatermarkMs"]
            .as_i64()
            .ok_or_else(|| refused(&path, "has no batchWatermarkMs: the offsets entry is corrupt"))?;
        let sources = json_line(&path, &text, 2)?;
        let parts = sources["clickstream"]
            .as_object()
            .ok_or_else(|| refused(&path, "has no clickstream offsets: the offsets entry is corrupt"))?;
        let mut offsets = vec![0; parts.len()];
        for (p, o) in parts {
            let i: usize = p
                .parse()
                .map_err(|_| refused(&path, format!("partition `{p}` is not a number")))?;
            let slot = offsets
                .get_mut(i)
                .ok_or_else(|| refused(&path, format!("partition {i} is out of range")))?;
            *slot = o
                .as_u64()
                .ok_or_else(|| refused(&path, format!("offset of partition {i} is not a number")))?
                as usize;
        }
        Ok(OffsetEntry {
            batch_id,
            offsets,
            watermark,
        })
    }
}

fn json_line(path: &Path, text: &str, line: usize) -> Result<serde_json::Value> {
    let mut lines = text.lines();
    if lines.next() != Some("v1") {
        return Err(refused(
            path,
            "does not start with `v1`: written by another format version or corrupt",
        ));
    }
    let l = lines
        .nth(line - 1)
        .ok_or_else(|| refused(path, format!("is truncated (no line {})", line + 1)))?;
    serde_json::from_str(l).map_err(|e| refused(path, format!("line {} is not valid JSON ({e}): corrupt", line + 1)))
}
