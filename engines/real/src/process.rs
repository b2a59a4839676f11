//! Child processes of the real engines: python, pip, java, and later spark-submit and the JVMs.
//!
//! Invariants, kept for every child started here:
//! * it runs in a process group of its own (`process_group(0)`), so that it can be ended as a
//!   group — a JVM can outlive the Python driver that started it, and only its group finds it;
//! * it is waited for: no function here returns while its child is still running;
//! * its stdin is closed; its output goes either to a log file ([`run_logged`]) or back to the
//!   caller ([`capture`]), and a failure quotes the last lines of it.
//!
//! A child in its own group does not receive the terminal's Ctrl-C; [`run_logged`] registers
//! its group ([`crate::groups`]) so an interrupt of streamlab ends it too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;

/// How many of a failed step's last output lines an error quotes.
pub const TAIL_LINES: usize = 20;

/// A log file that the output of successive steps is appended to, each under a header.
#[derive(Debug, Clone)]
pub struct StepLog {
    path: PathBuf,
}

impl StepLog {
    /// Starts the log at `path`, replacing an older one.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        File::create(&path).map_err(RealEngineError::io(&path))?;
        Ok(StepLog { path })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` to the log.
    pub fn append(&self, text: &str) -> Result<()> {
        self.open()?
            .write_all(text.as_bytes())
            .map_err(RealEngineError::io(&self.path))
    }

    fn open(&self) -> Result<File> {
        OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(RealEngineError::io(&self.path))
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        file_tail(&self.path, n)
    }
}

/// The last `n` lines of the file at `path` (empty when it cannot be read): what an error about
/// a child quotes from its log.
pub fn file_tail(path: &Path, n: usize) -> String {
    std::fs::read(path)
        .map(|bytes| last_lines(&String::from_utf8_lossy(&bytes), n))
        .unwrap_or_default()
}

/// Runs `cmd` as the step `step` in its own process group, its stdout and stderr appended to
/// `log` under a header, and waits for it. A non-zero exit is a [`RealEngineError::StepFailed`]
/// quoting the log's last lines.
pub fn run_logged(cmd: &mut Command, step: &str, log: &StepLog) -> Result<()> {
    log.append(&format!("\n==> {step}\n$ {}\n", command_line(cmd)))?;
    let out = log.open()?;
    let err = out.try_clone().map_err(RealEngineError::io(log.path()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| RealEngineError::Spawn {
            program: program(cmd),
            source,
        })?;
    // Registered while it runs, so Ctrl-C ends pip's group too.
    let mut group = EngineGroup::adopt(child);
    let status = group.leader().wait().map_err(RealEngineError::io(log.path()))?;
    group.end();
    if status.success() {
        Ok(())
    } else {
        Err(RealEngineError::StepFailed {
            step: step.to_string(),
            status: describe_status(status),
            log: log.path().to_path_buf(),
            tail: log.tail(TAIL_LINES),
        })
    }
}

/// What a short-lived child printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output, lossily decoded.
    pub stdout: String,
    /// Its standard error, lossily decoded.
    pub stderr: String,
}

/// Runs `cmd` in its own process group, waits for it and returns what it printed.
pub fn capture(cmd: &mut Command) -> Result<Captured> {
    let out = cmd
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|source| RealEngineError::Spawn {
            program: program(cmd),
            source,
        })?;
    Ok(Captured {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The executable file `name` in the first directory of `path_var` (a `PATH` value) that has it.
pub fn find_on_path(name: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file someone may execute.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last `n` lines of `text` (all of them when it has fewer), without a trailing newline.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `cmd` as a shell-like line, for logs and messages.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn program(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end_of_the_output() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 5), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn a_failed_step_quotes_its_log_tail_and_names_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = StepLog::create(dir.path().join("install.log")).unwrap();
        run_logged(Command::new("sh").args(["-c", "echo fine"]), "first step", &log).unwrap();
        let err = run_logged(
            Command::new("sh").args(["-c", "echo one; echo two >&2; exit 3"]),
            "second step",
            &log,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("second step failed (exit code 3)"), "{text}");
        assert!(text.contains("install.log"), "{text}");
        assert!(text.ends_with("one\ntwo"), "{text}");
        let whole = std::fs::read_to_string(log.path()).unwrap();
        assert!(whole.contains("==> first step\n$ sh -c echo fine\nfine\n"), "{whole}");
    }

    #[test]
    fn a_child_runs_in_a_process_group_of_its_own() {
        // `ps -o pgid= -p $$` would need procps; the shell's own view of its group suffices:
        // in a group of its own, the group id equals the shell's pid.
        let out = capture(Command::new("sh").args(["-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat)"])).unwrap();
        let ids: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(ids.len(), 2, "{out:?}");
        assert_eq!(ids[0], ids[1], "pid and process group id differ: {out:?}");
    }

    #[test]
    fn a_program_that_does_not_exist_is_a_spawn_error_naming_it() {
        let err = capture(&mut Command::new("/nonexistent/streamlab-test-binary")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/streamlab-test-binary"), "{err}");
    }
}
