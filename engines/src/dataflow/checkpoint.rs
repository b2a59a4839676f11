//! The files of a per-record checkpoint, shared by the live and the simulated driver:
//!
//! ```text
//! <dir>/chk-<id>/_metadata          {"formatVersion": 1, "id", "sources": [[partition, offset]...],
//!                                    "subtasks": [{"subtask", "file", "watermark"}...]}
//! <dir>/chk-<id>/subtask-<k>.state  window subtask k's state, framed with length and checksum
//! ```
//!
//! The manifest is written last, when every subtask has acknowledged: a checkpoint without one
//! never completed and is never restored from. A manifest or state file that does not read back
//! exactly is refused with an error naming it.

use std::path::Path;

use crate::dataflow::tasks::TaskSnapshot;
use crate::microbatch::checkpoint::{read_delta, CheckpointError};
use crate::time::EventTime;

/// The checkpoint manifest `chk-<id>/_metadata`: format version, id, source positions
/// `[partition, offset]`, and per window subtask its state file and watermark.
pub fn manifest_json(id: u64, sources: &[(usize, usize)], windows: &[(usize, EventTime)]) -> serde_json::Value {
    serde_json::json!({
        "formatVersion": 1,
        "id": id,
        "sources": sources,
        "subtasks": windows.iter().map(|(k, watermark)| serde_json::json!({
            "subtask": k, "file": format!("subtask-{k}.state"), "watermark": watermark,
        })).collect::<Vec<_>>(),
    })
}

/// A restored checkpoint: source positions, and window snapshots by subtask number.
pub type Restored = (Vec<(usize, usize)>, Vec<(usize, TaskSnapshot)>);

/// Reads checkpoint `id` back from `dir`, refusing it if it does not fit a job of `p` window
/// subtasks over `partitions` partitions.
pub fn read_checkpoint(dir: &Path, id: u64, p: usize, partitions: usize) -> Result<Restored, CheckpointError> {
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
        if !(p..2 * p).contains(&k) {
            return Err(refused(format!(
                "lists subtask {k}, which is no window subtask of this job (parallelism {p})"
            )));
        }
        let watermark = entry["watermark"]
            .as_i64()
            .ok_or_else(|| refused("has a subtask without watermark".into()))?;
        let delta = read_delta(&chk.join(format!("subtask-{k}.state")))?;
        windows.push((
            k,
            TaskSnapshot {
                id,
                alignment_started: 0,
                watermark,
                windows: delta.upserts,
            },
        ));
    }
    Ok((sources, windows))
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
