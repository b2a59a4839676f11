//! What can go wrong when a scenario runs, by who is at fault: the user's input (a results
//! directory in the way, an engine configuration it refuses, a trace or profile that does not
//! read) or the environment (I/O).

use std::path::PathBuf;

use crate::profile::ProfileError;

/// Errors of a run, by who is at fault: the user's input or the environment.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The results directory exists and `--force` was not given, or cannot be replaced safely.
    #[error("results directory {path}: {message}")]
    ResultsDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The scenario asks for something this version cannot run.
    #[error("{path}: {message}")]
    Unsupported {
        /// The scenario file.
        path: PathBuf,
        /// What and why.
        message: String,
    },
    /// A stop request (Ctrl-C) came before anything of the run could be kept: during the
    /// measurement rounds of a scenario with `repeat`, which keeps only its last round.
    #[error("{path}: {message}")]
    Stopped {
        /// The results directory, removed when nothing was written to it.
        path: PathBuf,
        /// What was stopped and what to do.
        message: String,
    },
    /// An engine refused its configuration.
    #[error("{path}: engine `{engine}`: {message}")]
    Engine {
        /// The scenario file.
        path: PathBuf,
        /// The engine run's name.
        engine: String,
        /// The engine's message.
        message: String,
    },
    /// The trace named by the scenario could not be read.
    #[error(transparent)]
    Trace(#[from] streamlab_workloads::TraceError),
    /// Writing a result file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The cost profile could not be loaded.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Writing a report artefact failed.
    #[error(transparent)]
    Report(#[from] streamlab_reports::Error),
}

/// Result alias of this module.
pub type Result<T, E = RunError> = std::result::Result<T, E>;
