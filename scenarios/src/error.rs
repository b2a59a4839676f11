//! What can go wrong when reading a scenario, split by who is at fault.
//!
//! A scenario file is user input, so almost every error here is the user's: the message must
//! let them fix the file without reading this crate. Every such error therefore names the
//! file, the line (1-based) where possible, the key as a dotted path from the file root
//! (array elements as `engine[1]`), and what is allowed:
//!
//! ```text
//! scenarios/x.toml:12: key `engine[1].trigger.interval`: must be greater than 0, e.g. "100ms" or "1s"
//! ```
//!
//! Reading the file can also fail for reasons outside the file's content ([`ScenarioError::Io`]).

use std::fmt;
use std::path::PathBuf;

/// A scenario that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read the scenario file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The file is TOML but not a valid scenario: an unknown key, a wrong type, a value out of
    /// range, a missing or duplicated entry.
    #[error("{}", InvalidDisplay { path, line: *line, key: key.as_deref(), message })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key, or of the nearest enclosing table that exists.
        line: Option<usize>,
        /// Dotted key path from the file root, e.g. `engine[1].trigger.interval`.
        key: Option<String>,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ScenarioError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Syntax { line, .. } => Some(*line),
            Self::Invalid { line, .. } => *line,
        }
    }

    /// The dotted key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => key.as_deref(),
            _ => None,
        }
    }
}

/// `path:line: key `k`: message`, leaving out the parts that are unknown.
struct InvalidDisplay<'a> {
    path: &'a PathBuf,
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A `Result` whose error is a [`ScenarioError`].
pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;
