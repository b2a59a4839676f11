//! A JVM started in a process group of its own, with a lifeline: the Kafka broker and the
//! Kafka Streams application are plain Java programs, with no Python driver to run
//! `lifeline.py`, so the group's leader is a small `sh` instead.
//!
//! The leader holds streamlab's pipe as its stdin and kills its whole group when that pipe
//! reaches end of file (streamlab died, even by SIGKILL, when no code of its own could end the
//! group) or when the JVM exits — so the leader's exit is the JVM's, and a caller polling the
//! leader sees the program end. Ending the group from streamlab ([`EngineGroup::end`]) sends
//! SIGTERM first, which the JVM takes as a clean shutdown (the broker's controlled shutdown,
//! Kafka Streams' close), then SIGKILL after the grace period.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;

/// The leader's script. A non-interactive shell gives background jobs `/dev/null` as stdin, so
/// the pipe is kept as fd 3 and passed to the watcher explicitly.
const LIFELINE_SH: &str =
    "exec 3<&0\n\"$@\" </dev/null &\njvm=$!\n( cat <&3 >/dev/null; kill -KILL 0 ) &\nwait \"$jvm\"\nkill -KILL 0\n";

/// Starts `program` (a `java` command line, its working directory set) under the lifeline, in
/// a new process group, its stdout and stderr appended to `log`.
pub fn spawn_with_lifeline(program: &Command, log: &Path, what: &str) -> Result<EngineGroup> {
    let io = RealEngineError::io;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(log))?;
    let err = out.try_clone().map_err(io(log))?;
    let mut leader = Command::new("sh");
    leader
        .arg("-c")
        .arg(LIFELINE_SH)
        .arg(format!("streamlab-{what}"))
        .arg(program.get_program())
        .args(program.get_args())
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    if let Some(dir) = program.get_current_dir() {
        leader.current_dir(dir);
    }
    let child = leader.spawn().map_err(|source| RealEngineError::Spawn {
        program: format!("sh (the lifeline of {what})"),
        source,
    })?;
    Ok(EngineGroup::adopt(child))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::groups::group_alive;

    #[test]
    fn the_leader_exits_with_its_program_and_takes_the_group_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut program = Command::new("sh");
        program.args(["-c", "sleep 30 & echo started; sleep 0.2"]);
        let mut group = spawn_with_lifeline(&program, &tmp.path().join("log"), "test").unwrap();
        let pgid = group.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.leader().try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            group.leader().try_wait().unwrap().is_some(),
            "the leader ends with its program"
        );
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !group_alive(pgid),
            "the program's own child (sleep 30) went with the group"
        );
        assert!(std::fs::read_to_string(tmp.path().join("log"))
            .unwrap()
            .contains("started"));
    }

    #[test]
    fn closing_the_pipe_ends_the_group() {
        let tmp = tempfile::tempdir().unwrap();
        let mut program = Command::new("sleep");
        program.arg("30");
        let mut group = spawn_with_lifeline(&program, &tmp.path().join("log"), "test").unwrap();
        let pgid = group.id();
        drop(group.leader().stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.leader().try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group_alive(pgid) || group.leader().try_wait().unwrap().is_some());
        group.end();
        assert!(!group_alive(pgid));
    }
}
