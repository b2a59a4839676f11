//! One run of the generated PyFlink job on Kafka (`transport = "kafka"`): Flink's Kafka source
//! reads the input topic streamlab's producer writes, its exactly-once Kafka sink writes the
//! output topic streamlab's `read_committed` consumer reads and stamps — optionally with the job
//! killed mid-run and restored from its newest retained checkpoint, to show its output exactly
//! once. The run itself (broker, topics, producer, consumer, the kill and the quiet period that
//! ends it) is every Python job's on Kafka ([`crate::kafka::job_run`]); what is Flink's is here:
//! * the job's command line: the helper jar (the campaign lookup, the `streamlab-line` value
//!   format) and Flink's Kafka connector ([`crate::kafka::flink_connector`]) in
//!   `pipeline.jars`; the job's start is its ready file (every task `RUNNING`);
//! * after a kill, the job is started again restored from the newest *completed* checkpoint in
//!   its checkpoint directory (`<checkpoint>/<job id>/chk-N` with its `_metadata`; retained on
//!   cancellation, and a SIGKILL removes nothing): its Kafka source resumes from the offsets in
//!   that checkpoint, its window state is the checkpoint's, and its Kafka sink commits the
//!   transaction the checkpoint had pre-committed and aborts the ones the killed job left open,
//!   so a `read_committed` reader sees every result once. Killed before its first checkpoint
//!   completed, it starts afresh from the earliest offsets (its open transactions aborted all
//!   the same). What it reads again is the input past the offsets its source committed with its
//!   last completed checkpoint, up to the input's end at the kill (the restarted job writes the
//!   committed offsets before it starts).
//!
//! Invariant: the checkpoint restored is one Flink finished writing — a `chk-N` directory
//! without `_metadata` (a checkpoint in progress at the kill) is never chosen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use streamlab_engines::event::Event;

use crate::driver::read_progress;
use crate::error::{RealEngineError, Result};
use crate::kafka::flink_connector::FlinkKafkaJars;
use crate::kafka::job_run::{
    read_committed_offsets, replayed_after, KafkaJobEnv, KafkaJobOutcome, KafkaJobRun, KafkaLaunch,
};
use crate::CacheDir;

/// How long more a job, started or restored, may take to deliver its first result before its
/// quiet period counts as for a job that delivers: a new MiniCluster, the restore, and a
/// checkpoint interval before its sink's first commit.
const FIRST_RESULT_GRACE: Duration = Duration::from_secs(30);

/// The checkpoint a killed job was restored from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredCheckpoint {
    /// `N` of `chk-N`; `None`: none had completed, the job started afresh.
    pub id: Option<u64>,
    /// Input records read again: past the offsets committed with that checkpoint, up to the
    /// input's end at the kill.
    pub replayed: u64,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct FlinkKafkaOutcome {
    /// The run: results, producer, start-up, cluster, the kill and restart.
    pub run: KafkaJobOutcome,
    /// Flink's completed checkpoints' statistics (both jobs' after a restart).
    pub progress: Vec<serde_json::Value>,
    /// After a restart: the checkpoint restored and what was read again.
    pub restored: Option<RestoredCheckpoint>,
}

/// The newest completed checkpoint under `dir` (`<dir>/<job id>/chk-N/_metadata`), by `N`.
pub fn newest_checkpoint(dir: &Path) -> Option<(u64, PathBuf)> {
    let jobs = std::fs::read_dir(dir).ok()?;
    jobs.filter_map(|job| std::fs::read_dir(job.ok()?.path()).ok())
        .flatten()
        .filter_map(|chk| {
            let path = chk.ok()?.path();
            let n = path.file_name()?.to_str()?.strip_prefix("chk-")?.parse().ok()?;
            path.join("_metadata").is_file().then_some((n, path))
        })
        .max_by_key(|(n, _)| *n)
}

/// The job's command line on Kafka: the helper jar, the connector, and after a kill the
/// checkpoint to restore and the file of committed offsets.
fn command(launch: &KafkaLaunch, jars: &Jars, env: &KafkaJobEnv<'_>, restore: Option<&Path>) -> Command {
    let mut cmd = env.command(&launch.job, &[]);
    cmd.arg("--jar").arg(&jars.helper);
    for jar in &jars.connector {
        cmd.arg("--connector").arg(jar);
    }
    if let Some(path) = restore {
        cmd.arg("--restore").arg(path);
    }
    if env.restart {
        cmd.arg("--committed").arg(committed_file(launch));
    }
    cmd
}

/// Where the restarted job writes its source's committed offsets.
fn committed_file(launch: &KafkaLaunch) -> PathBuf {
    launch.job.dir.join("committed-offsets")
}

/// The jars a job on Kafka lists in `pipeline.jars`.
struct Jars {
    helper: PathBuf,
    connector: Vec<PathBuf>,
}

/// Runs `launch` over `events` (in arrival order) on Kafka.
pub fn run_flink_on_kafka(launch: &KafkaLaunch, events: &[Event]) -> Result<FlinkKafkaOutcome> {
    let cache = CacheDir::from_env()?;
    let jars = Jars {
        helper: launch
            .job
            .helper_jar
            .clone()
            .ok_or_else(|| RealEngineError::NotInstalled {
                engine: "flink",
                status: "no helper jar given for its job".into(),
            })?,
        connector: FlinkKafkaJars::in_cache(&cache).jars()?,
    };
    let mut restored_id = None;
    let run = KafkaJobRun {
        launch,
        first_result_grace: FIRST_RESULT_GRACE,
    }
    .run(events, &mut |env| {
        let restore = if env.restart {
            let _ = std::fs::remove_file(committed_file(launch));
            newest_checkpoint(&launch.job.checkpoint())
        } else {
            None
        };
        restored_id = restore.as_ref().map(|(n, _)| *n);
        Ok(command(launch, &jars, env, restore.as_ref().map(|(_, p)| p.as_path())))
    })?;
    let restored = match &run.restart {
        None => None,
        Some(r) => {
            let file = committed_file(launch);
            let committed = if file.is_file() {
                read_committed_offsets(&file)?
            } else {
                Default::default()
            };
            Some(RestoredCheckpoint {
                id: restored_id,
                replayed: replayed_after(&r.input_ends, &committed),
            })
        }
    };
    Ok(FlinkKafkaOutcome {
        run,
        progress: read_progress(&launch.job.progress())?,
        restored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_restored_is_the_newest_with_its_metadata_over_every_job() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(newest_checkpoint(dir), None);
        for (job, n, done) in [("a", 3, true), ("b", 4, true), ("b", 5, false), ("b", 2, true)] {
            let chk = dir.join(job).join(format!("chk-{n}"));
            std::fs::create_dir_all(&chk).unwrap();
            if done {
                std::fs::write(chk.join("_metadata"), b"x").unwrap();
            }
        }
        std::fs::create_dir_all(dir.join("b").join("shared")).unwrap();
        assert_eq!(newest_checkpoint(dir), Some((4, dir.join("b").join("chk-4"))));
    }
}
