//! Errors of the real engines, by who is at fault.
//!
//! What is missing from the machine (Java, Python, a cache directory) is the user's to fix, and
//! its message says how ([`RealEngineError::ProgramMissing`], [`RealEngineError::JavaTooOld`],
//! [`RealEngineError::NoCacheDir`]). What fails while we work is the run's
//! ([`RealEngineError::Io`], [`RealEngineError::Spawn`], [`RealEngineError::StepFailed`]): a
//! failed step names its log file and quotes its last lines, so the engine's or pip's own words
//! are on screen. A program that answers in a way we cannot read
//! ([`RealEngineError::Unreadable`]) is reported with what it said.

use std::io;
use std::path::PathBuf;

/// The result of this crate's operations.
pub type Result<T, E = RealEngineError> = std::result::Result<T, E>;

/// What went wrong while installing, checking or running a real engine.
#[derive(Debug, thiserror::Error)]
pub enum RealEngineError {
    /// No cache directory could be chosen: none of its environment variables is set.
    #[error(
        "no cache directory for the real engines: set STREAMLAB_ENGINES_DIR (or XDG_CACHE_HOME or HOME) to a directory"
    )]
    NoCacheDir,
    /// A program the engines need is not installed.
    #[error("{program} not found ({searched}); fix: {fix}")]
    ProgramMissing {
        /// The program: `java`, `python3`.
        program: &'static str,
        /// Where we looked.
        searched: String,
        /// The command or setting that fixes it.
        fix: &'static str,
    },
    /// Java is there but older than the engines need.
    #[error("Java {found} at {}: the real engines need Java {required} or later; fix: {fix}", path.display())]
    JavaTooOld {
        /// The `java` binary.
        path: PathBuf,
        /// Its version, as it printed it.
        found: String,
        /// The oldest major version the engines run on.
        required: u32,
        /// The command or setting that fixes it.
        fix: &'static str,
    },
    /// A program printed something we could not read (a version line, a probe's answer).
    #[error("`{command}` printed nothing we understand: {output:?}")]
    Unreadable {
        /// The command line.
        command: String,
        /// What it printed (stdout and stderr).
        output: String,
    },
    /// Reading, writing, creating or removing a file or directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A child process could not be started.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A step (a child process) ran and failed.
    #[error("{step} failed ({status}); its output is in {}; last lines:\n{tail}", log.display())]
    StepFailed {
        /// What the step was, e.g. `pip install pyspark==4.3.0`.
        step: String,
        /// How it ended: an exit code or a signal.
        status: String,
        /// The log file that holds its whole output.
        log: PathBuf,
        /// The last lines of its output.
        tail: String,
    },
    /// The feeder or receiver could not start or failed (a port in use, a bad address).
    #[error("the workload feeder: {0}")]
    Feeder(String),
    /// A real engine's job failed to start, to connect, to finish in time, or exited with an
    /// error; its log is named and its last lines quoted.
    #[error("{engine}: the job {what}; its log is {}; last lines:\n{tail}", log.display())]
    EngineFailed {
        /// The engine: `spark` or `flink`.
        engine: &'static str,
        /// What went wrong.
        what: String,
        /// The job's log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// The Kafka broker or streamlab's Kafka client failed: it did not start or answer, a topic
    /// could not be created, a produce or fetch failed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// A line of a job's progress file is not a JSON object.
    #[error("{}:{line}: not a progress record: {message}", path.display())]
    Progress {
        /// The progress file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// An engine that is not installed was asked to run.
    #[error(
        "the real {engine} is not ready: {status}; fix: `streamlab engines install` (see `streamlab engines doctor`)"
    )]
    NotInstalled {
        /// The engine.
        engine: &'static str,
        /// What the doctor found.
        status: String,
    },
}

impl RealEngineError {
    /// An [`RealEngineError::Io`] error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
