//! Errors of this crate.
//!
//! Reports fail because their input is not what a run writes (the user's fault), because the
//! environment failed (a file could not be read or written), or because a drawing backend
//! refused its input; the message always names the file involved.

use std::path::PathBuf;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file (a results directory's `summary.json`, `scenario.toml`, `sweep.json`,
    /// ...) is missing or malformed: the user pointed the report at something else.
    #[error("{path}: {message}")]
    Input {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The plotting backend failed while drawing a chart.
    #[error("could not draw {path}: {message}")]
    Plot {
        /// The chart file being drawn.
        path: PathBuf,
        /// The backend's description of the failure.
        message: String,
    },
    /// The bundled font could not be parsed (a bug: the font is compiled in).
    #[error("internal error: the bundled font {name} is not a valid font")]
    InvalidFont {
        /// The font's file name.
        name: &'static str,
    },
    /// Serialising a report to JSON failed.
    #[error("could not serialise {path}: {source}")]
    Json {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
