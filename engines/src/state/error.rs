//! Errors of the LSM state store, by who is at fault.
//!
//! A checkpoint directory is input the user hands us (it may come from another machine, an
//! older build, or a half-finished upload), so damaged or foreign files are reported as
//! [`StateError::Corrupt`], [`StateError::BadMagic`] or [`StateError::UnsupportedVersion`] and
//! are never used. I/O failures are the run's fault ([`StateError::Io`]). A broken internal
//! invariant is a bug ([`StateError::Internal`]). Every variant that concerns a file names it.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in the LSM state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing, renaming or removing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file has the right type but its contents fail a check (checksum, length, order).
    #[error("corrupt state file {}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Which check failed, with the offending values.
        reason: String,
    },
    /// A file does not start (manifest) or end (sorted run, changelog header) with the magic
    /// bytes of the kind of file it should be.
    #[error("{} is not a streamlab {kind} file (bad magic bytes)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The kind of file that was expected: "sorted run", "changelog" or "manifest".
        kind: &'static str,
    },
    /// A file was written in a format version this build cannot read.
    #[error("{} has format version {found}; this build reads version {supported} only", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version recorded in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// `checkpoint` was asked to write a checkpoint id that already has a manifest: ids must be
    /// unique within a checkpoint directory, because shared file names are derived from them.
    #[error("checkpoint {id} already exists: {} is present; checkpoint ids must be unique", path.display())]
    CheckpointExists {
        /// The checkpoint id.
        id: u64,
        /// Its existing manifest.
        path: PathBuf,
    },
    /// `restore` was asked for a checkpoint that has no manifest (never taken, or not completed).
    #[error("checkpoint {id} not found: {} does not exist", path.display())]
    CheckpointNotFound {
        /// The checkpoint id.
        id: u64,
        /// Where its manifest should be.
        path: PathBuf,
    },
    /// A key or value is longer than the 4 GiB - 1 bytes the file formats can record.
    #[error("entry too large: {what} is {len} bytes, at most {} allowed", u32::MAX)]
    EntryTooLarge {
        /// "key" or "value".
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An option is outside its allowed range.
    #[error("invalid LSM option: {0}")]
    InvalidOptions(String),
    /// An internal invariant does not hold: a bug in this module.
    #[error("internal error in the LSM state store (a bug): {0}")]
    Internal(String),
}

/// The result type of the LSM state store.
pub type Result<T> = std::result::Result<T, StateError>;

/// Wraps an [`io::Error`] with the path it happened on: `.map_err(io_at(path))`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A [`StateError::Corrupt`] for `path`.
pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
