//! The files of a per-record checkpoint, shared by the live and the simulated driver:
//!
//! ```text
//! <dir>/chk-<id>/_metadata          {"formatVersion": 1, "id", "sources": [[partition, offset]...],
//!                                    "subtasks": [{"subtask", "file", "watermark"}...]}
//! <dir>/chk-<id>/subtask-<k>.state  window subtask k's state, framed with length and checksum;
//!                                    a keyed stage's (join, deduplication, top-N) encoded state
//!                                    (`operators/graph/codec.rs`) in the same framing, and so
//!                                    the sink subtask's (k = 2p) second aggregation's
//! <dir>/state/subtask-<k>/           with the LSM backend instead: k's incremental checkpoints,
//!     shared/chk<id>-run<n>.sst      runs, each written by the first checkpoint that had it
//!     chk-<id>/MANIFEST              the runs checkpoint <id> consists of
//! ```
//!
//! The manifest is written last, when every subtask has acknowledged: a checkpoint without one
//! never completed and is never restored from. A manifest or state file that does not read back
//! exactly is refused with an error naming it. Both drivers write through one
//! [`SnapshotWriter`], so this module is the only one that knows the layout.

use std::path::{Path, PathBuf};

use crate::checkpoint::{frame, read_delta, read_framed, CheckpointError};
use crate::dataflow::tasks::{IncrementalSnapshot, TaskSnapshot};
use crate::operators::window::StateDelta;
use crate::time::EventTime;

/// A keyed or sink subtask's checkpoint entry: `(subtask, watermark, what its state is)`.
pub type ListedSubtask = (usize, EventTime, ListedState);

/// What a listed subtask's state file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListedState {
    /// A window operator's windows (a framed [`StateDelta`] of upserts).
    Windows,
    /// An incremental checkpoint of the window operator's LSM store.
    Incremental,
    /// A keyed stage's or the second aggregation's encoded state.
    Stage,
}

impl ListedState {
    /// What `snapshot` holds.
    pub fn of(snapshot: &TaskSnapshot) -> Self {
        match (&snapshot.incremental, &snapshot.stage) {
            (Some(_), _) => Self::Incremental,
            (None, Some(_)) => Self::Stage,
            (None, None) => Self::Windows,
        }
    }
}

/// The checkpoint manifest `chk-<id>/_metadata`: format version, id, source positions
/// `[partition, offset]`, and per keyed subtask its state file and watermark. An incremental
/// subtask's file is its LSM checkpoint manifest, `state/subtask-<k>/chk-<id>/MANIFEST`; a keyed
/// stage's (or the sink subtask's second aggregation's) is marked `"stage": true`.
pub fn manifest_json(id: u64, sources: &[(usize, usize)], windows: &[ListedSubtask]) -> serde_json::Value {
    serde_json::json!({
        "formatVersion": 1,
        "id": id,
        "sources": sources,
        "subtasks": windows.iter().map(|&(k, watermark, state)| match state {
            ListedState::Incremental => serde_json::json!({
                "subtask": k, "file": format!("../{}/chk-{id}/MANIFEST", incremental_root(k)),
                "watermark": watermark, "incremental": true,
            }),
            ListedState::Windows => serde_json::json!({
                "subtask": k, "file": format!("subtask-{k}.state"), "watermark": watermark,
            }),
            ListedState::Stage => serde_json::json!({
                "subtask": k, "file": format!("subtask-{k}.state"), "watermark": watermark, "stage": true,
            }),
        }).collect::<Vec<_>>(),
    })
}

/// Where window subtask `k` keeps its incremental checkpoints, relative to the checkpoint
/// directory: shared runs under `shared/`, one `chk-<id>/MANIFEST` per checkpoint.
pub fn incremental_root(k: usize) -> String {
    format!("state/subtask-{k}")
}

/// A restored checkpoint: source positions, and window snapshots by subtask number.
pub type Restored = (Vec<(usize, usize)>, Vec<(usize, TaskSnapshot)>);

/// Reads checkpoint `id` back from `dir`, refusing it if it does not fit a job of parallelism
/// `p` with `layers` layers of keyed subtasks (`p..(layers + 1)·p`, 2 layers in a chain of keyed
/// stages; a stage's state may also be the sink subtask's, `(layers + 1)·p`) over `partitions`
/// partitions.
pub fn read_checkpoint(
    dir: &Path,
    id: u64,
    (p, layers): (usize, usize),
    partitions: usize,
) -> Result<Restored, CheckpointError> {
    let chk = dir.join(format!("chk-{id}"));
    let meta_path = chk.join("_metadata");
    let refused = |message: String| CheckpointError::Refused {
        path: meta_path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&meta_path).map_err(|source| CheckpointError::Io {
        path: meta_path.clone(),
        source,
    })?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| refused(format!("is not valid JSON ({e}): corrupt")))?;
    if meta["formatVersion"] != 1 || meta["id"] != id {
        return Err(refused(format!("is not checkpoint {id} of this format version")));
    }
    let sources: Vec<(usize, usize)> = serde_json::from_value(meta["sources"].clone())
        .map_err(|e| refused(format!("has unreadable source positions ({e})")))?;
    if let Some(&(q, _)) = sources.iter().find(|(q, _)| *q >= partitions) {
        return Err(refused(format!(
            "has a position for partition {q}, but the source has {partitions}"
        )));
    }
    let mut windows = Vec::new();
    for entry in meta["subtasks"]
        .as_array()
        .ok_or_else(|| refused("lists no subtasks".into()))?
    {
        let k = entry["subtask"]
            .as_u64()
            .ok_or_else(|| refused("has a subtask without index".into()))? as usize;
        let stage = entry["stage"].as_bool() == Some(true);
        let end = (layers + 1) * p;
        let last = if stage { end } else { end - 1 };
        if !(p..=last).contains(&k) {
            return Err(refused(format!(
                "lists subtask {k}, which is no keyed subtask of this job (parallelism {p})"
            )));
        }
        let watermark = entry["watermark"]
            .as_i64()
            .ok_or_else(|| refused("has a subtask without watermark".into()))?;
        // An LSM subtask's state is an incremental checkpoint in its own root; the others'
        // is a full snapshot file, of windows or of a keyed stage.
        let file = chk.join(format!("subtask-{k}.state"));
        let snapshot = match entry["incremental"].as_bool() {
            _ if stage => TaskSnapshot {
                id,
                alignment_started: 0,
                watermark,
                windows: Vec::new(),
                incremental: None,
                stage: Some(read_framed(&file)?),
            },
            Some(true) => TaskSnapshot {
                id,
                alignment_started: 0,
                watermark,
                windows: Vec::new(),
                incremental: Some(IncrementalSnapshot {
                    root: dir.join(incremental_root(k)),
                    bytes_written: 0,
                    state_bytes: 0,
                    sync_ns: 0,
                    error: None,
                }),
                stage: None,
            },
            _ => TaskSnapshot {
                id,
                alignment_started: 0,
                watermark,
                windows: read_delta(&file)?.upserts,
                incremental: None,
                stage: None,
            },
        };
        windows.push((k, snapshot));
    }
    Ok((sources, windows))
}

/// The error of window subtask `k`'s incremental checkpoint, if it could not be taken.
pub fn incremental_error(k: usize, snapshot: &IncrementalSnapshot) -> Option<CheckpointError> {
    snapshot.error.as_ref().map(|e| CheckpointError::Refused {
        path: snapshot.root.clone(),
        message: format!("subtask {k}'s incremental checkpoint failed: {e}"),
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file under its final name.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes a job's checkpoint files: each subtask's snapshot as it aligns (the synchronous part,
/// [`SnapshotWriter::serialize`], then the asynchronous one, [`SnapshotWriter::write`]), and a
/// completed checkpoint's manifest. Without a directory, nothing is written (the simulated
/// driver then keeps completed checkpoints in memory).
#[derive(Clone, Debug, Default)]
pub struct SnapshotWriter {
    dir: Option<PathBuf>,
}

/// A subtask's snapshot, serialized: what it weighs and what the manifest lists of it.
#[derive(Debug)]
pub struct SerializedSnapshot {
    /// Bytes this checkpoint writes for the subtask (an incremental one: its new runs).
    pub bytes: u64,
    /// What the subtask's state takes in all (written now or referenced from earlier ones).
    pub state_bytes: u64,
    /// The manifest lists the subtask: it holds state or a watermark to restore.
    pub listed: bool,
    /// Why an incremental checkpoint could not be taken.
    pub error: Option<CheckpointError>,
    /// A full snapshot's framed state file (an incremental one is already written).
    framed: Option<Vec<u8>>,
}

impl SnapshotWriter {
    /// A writer into `dir`, or one that writes nothing.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where window subtask `k` of a job with a checkpoint directory keeps its incremental
    /// checkpoints.
    pub fn incremental_root(&self, k: usize) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(incremental_root(k)))
    }

    /// Serializes subtask `k`'s snapshot (the synchronous part of storing it); the snapshot
    /// keeps its state. An incremental checkpoint of an LSM store was taken by the subtask at
    /// alignment (flush and upload of new runs); only its figures are passed on.
    pub fn serialize(&self, k: usize, snapshot: &mut TaskSnapshot) -> SerializedSnapshot {
        let listed = !snapshot.windows.is_empty()
            || snapshot.incremental.is_some()
            || snapshot.stage.is_some()
            || snapshot.watermark != EventTime::MIN;
        if let Some(inc) = &snapshot.incremental {
            return SerializedSnapshot {
                bytes: inc.bytes_written,
                state_bytes: inc.state_bytes,
                listed,
                error: incremental_error(k, inc),
                framed: None,
            };
        }
        if let Some(stage) = &snapshot.stage {
            return SerializedSnapshot {
                bytes: stage.len() as u64,
                state_bytes: stage.len() as u64,
                listed,
                error: None,
                framed: Some(frame(stage)),
            };
        }
        let delta = StateDelta {
            upserts: std::mem::take(&mut snapshot.windows),
            deletes: Vec::new(),
        };
        let encoded = delta.encode();
        snapshot.windows = delta.upserts;
        SerializedSnapshot {
            bytes: encoded.len() as u64,
            state_bytes: encoded.len() as u64,
            listed,
            error: None,
            framed: Some(frame(&encoded)),
        }
    }

    /// Writes subtask `k`'s serialized snapshot for checkpoint `id` (the asynchronous part):
    /// `chk-<id>/subtask-<k>.state`.
    pub fn write(&self, k: usize, id: u64, serialized: &SerializedSnapshot) -> Result<(), CheckpointError> {
        match (&self.dir, &serialized.framed) {
            (Some(dir), Some(framed)) => write_file(
                &dir.join(format!("chk-{id}")).join(format!("subtask-{k}.state")),
                framed,
            ),
            _ => Ok(()),
        }
    }

    /// Writes a completed checkpoint's manifest, `chk-<id>/_metadata`.
    pub fn write_manifest(&self, id: u64, manifest: &serde_json::Value) -> Result<(), CheckpointError> {
        match &self.dir {
            Some(dir) => write_file(
                &dir.join(format!("chk-{id}")).join("_metadata"),
                manifest.to_string().as_bytes(),
            ),
            None => Ok(()),
        }
    }

    /// Reads checkpoint `id` back, for a job of parallelism `p` with `layers` layers of keyed
    /// subtasks over `partitions` partitions (see [`read_checkpoint`]). `None` without a
    /// directory.
    pub fn read(&self, id: u64, shape: (usize, usize), partitions: usize) -> Option<Result<Restored, CheckpointError>> {
        self.dir.as_ref().map(|dir| read_checkpoint(dir, id, shape, partitions))
    }
}
