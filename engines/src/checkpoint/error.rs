//! The error of a checkpoint directory, by who is at fault: the run ([`CheckpointError::Io`])
//! or the directory the user handed us ([`CheckpointError::Refused`]: foreign, another format
//! version, damaged). Both name the file.

use std::path::{Path, PathBuf};

/// What is wrong with a checkpoint directory.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory belongs to something else or is damaged; it is left untouched.
    #[error("checkpoint {path}: {message}")]
    Refused {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The result of reading or writing a checkpoint.
pub(crate) type Result<T> = std::result::Result<T, CheckpointError>;

/// Wraps an I/O error with the path it happened on: `.map_err(io(path))`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A [`CheckpointError::Refused`] for `path`.
pub(crate) fn refused(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Refused {
        path: path.to_path_buf(),
        message: message.into(),
    }
}
