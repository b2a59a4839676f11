//! A RocksDB-style LSM key-value state store, the per-record engine's large-state backend.
//!
//! Why it is written here: the workbench studies what a log-structured backend costs a
//! streaming job — write amplification from flushes and compaction, read amplification from
//! runs, bytes uploaded per checkpoint with and without incremental checkpoints or a
//! changelog — so the mechanism must be visible and measurable ([`StateStats`],
//! [`CheckpointStats`]), not hidden behind the `rocksdb` crate.
//!
//! # Shape
//!
//! * Writes go to a mutable memtable (a `BTreeMap`). When it reaches
//!   [`LsmOptions::memtable_bytes`] it is flushed as an immutable sorted run file
//!   `run-<id>.sst` (format in `run.rs`). Deletes are tombstones.
//! * Reads look in the memtable, then in the runs newest first; the first version found
//!   decides (a tombstone or an expired put means "absent").
//! * [`LsmStore::compact_step`] merges runs with a bounded amount of work per call, in the
//!   manner of differential-dataflow's fueled spine (`spine_fueled.rs`): a merge in progress
//!   is a value that advances by `budget_bytes` of input, so callers interleave it with
//!   writes and no call blocks for long. The policy is size-tiered: adjacent runs are merged
//!   while an older run is less than [`LsmOptions::size_ratio`] times the newer one, which
//!   keeps run sizes geometric (a binary counter for ratio 2) and the run count logarithmic.
//!   A lone run holding expired puts, or the bottom run holding tombstones, is rewritten.
//! * TTL is event time: an entry may carry an expiry, and [`LsmStore::set_watermark`] makes
//!   every entry whose expiry the watermark has reached invisible; compaction drops them.
//! * [`LsmStore::checkpoint`] writes `chk-<id>/MANIFEST` (format in `manifest.rs`) listing
//!   the runs; runs already uploaded by an earlier checkpoint to the same root are referenced,
//!   new ones are hard-linked (or copied, across file systems) into `shared/`. In changelog
//!   mode ([`LsmOptions::changelog`], format in `changelog.rs`) a checkpoint uploads only the
//!   changelog tail and references the last materialization. [`LsmStore::restore`] rebuilds a
//!   store from a manifest and checks every byte it uses.
//!
//! # Invariants (and why they hold)
//!
//! 1. **Runs are ordered by age** (`runs[0]` oldest) and a merge only ever combines a
//!    contiguous range of them, replacing it in place; so for every key the newest version is
//!    still found first, and a merge needs to keep only the newest version per key.
//! 2. **Run files are immutable** once renamed into place (only deleted after a merge replaces
//!    them): readers and merges share them without locks, and checkpoints may hard-link and
//!    reference them across checkpoints.
//! 3. **A dead version (tombstone or expired put) is dropped only in the bottom run**, the
//!    output of a flush or merge with nothing older; elsewhere an expired put is rewritten as a
//!    tombstone, because dropping it would let an older version of its key resurface.
//! 4. **The watermark never goes back**: expiry is irreversible, since compaction may already
//!    have dropped what a lower watermark would show.
//! 5. **A checkpoint exists iff its manifest does**, written last and atomically; shared file
//!    names carry the id of the checkpoint that wrote them (`chk<id>-run<run>.sst`), and a
//!    checkpoint id may not be reused, so a shared file is never overwritten while referenced.
//! 6. **Nothing unverified is used**: a run, segment or manifest with a bad magic, unknown
//!    version, wrong length or checksum mismatch is refused with an error naming the file.
//!
//! The working directory is scratch space, like Flink's local RocksDB directory: durability
//! comes from checkpoints, so working files are not fsynced and [`LsmStore::open`] clears
//! stale ones. Deleting old checkpoints (and the shared files only they reference) is left to
//! the caller.
//!
//! # Examples
//!
//! ```
//! use streamlab_engines::state::{LsmOptions, LsmStore};
//! let root = std::env::temp_dir().join(format!("streamlab-lsm-doc-{}", std::process::id()));
//! let mut store = LsmStore::open(&root.join("work"), LsmOptions::default()).unwrap();
//! store.put(b"clicks/user-1", b"3").unwrap();
//! store.put_expiring(b"session/user-1", b"open", 1_000).unwrap();
//! store.set_watermark(1_000);
//! assert_eq!(store.get(b"clicks/user-1").unwrap(), Some(b"3".to_vec()));
//! assert_eq!(store.get(b"session/user-1").unwrap(), None); // expired at watermark 1000
//! let stats = store.checkpoint(1, &root.join("checkpoints")).unwrap();
//! assert!(stats.bytes_written > 0);
//! let restored = LsmStore::restore(&root.join("checkpoints"), 1, &root.join("work-2"), LsmOptions::default()).unwrap();
//! assert_eq!(restored.get(b"clicks/user-1").unwrap(), Some(b"3".to_vec()));
//! # std::fs::remove_dir_all(&root).unwrap();
//! ```

mod changelog;
mod checkpoint;
mod compaction;
mod error;
mod format;
mod manifest;
mod memtable;
mod run;
mod store;

#[cfg(test)]
mod tests;

pub use checkpoint::CheckpointStats;
pub use compaction::CompactionProgress;
pub(crate) use error::io_at;
pub use error::{Result, StateError};
pub use store::{LsmOptions, LsmStore, StateStats};
