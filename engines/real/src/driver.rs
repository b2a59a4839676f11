//! Running one generated job on a real engine: the feeder and receiver around it, the engine in
//! its own process group, and everything it leaves in the run's directory.
//!
//! The order matters for what is measured:
//! 1. the [`Feeder`] and [`Receiver`] listen first (loopback unless a bind address is given for a
//!    cluster), so the job can connect as soon as it is up;
//! 2. the job is started in its own process group ([`EngineGroup`]), its working directory, temp
//!    files and log inside the run's directory, its stdin a lifeline pipe;
//! 3. the engine's start-up (JVM, session, planning) is not measured: the run clock starts when
//!    the job has opened every source partition — the feeder's readiness handshake — and the
//!    schedule is replayed open-loop from there;
//! 4. the job ends by itself once it has read the end of every partition and delivered its last
//!    output; the driver then waits for the sink connections to close, stops the servers, and
//!    reads the progress file the job appended to. A job that does not end within the deadline,
//!    exits with an error, or never connects, is ended with its group, and the error quotes the
//!    last lines of its log.

use std::fs::File;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;
use streamlab_workloads::feeder::{
    Feeder, FeederOptions, FeederReport, Receiver, ReceiverOptions, ReceiverReport, RunToken,
};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::job::ScriptArgs;
use crate::process::{describe_status, file_tail, TAIL_LINES};
use crate::watch::RunWatch;

/// A generated job ready to run: which interpreter, which script, where, for how long.
#[derive(Clone, Debug)]
pub struct JobLaunch {
    /// The engine's name in messages (`"spark"`, `"flink"`).
    pub engine: &'static str,
    /// The interpreter (the engine venv's python).
    pub python: PathBuf,
    /// The script, already written into `dir`.
    pub script: PathBuf,
    /// The run's directory for this engine: working directory, temp files, log, progress,
    /// checkpoints.
    pub dir: PathBuf,
    /// Source partitions (one feeder connection each).
    pub partitions: u32,
    /// The campaign table's file (already written).
    pub campaigns: PathBuf,
    /// Where the feeder and receiver listen (loopback unless a cluster must reach them).
    pub bind: IpAddr,
    /// A cluster address, passed on as `--master`.
    pub master: Option<String>,
    /// The helper jar, passed on as `--jar`.
    pub helper_jar: Option<PathBuf>,
    /// Environment variables the job needs beyond streamlab's own.
    pub env: Vec<(String, String)>,
    /// How long the engine may take to start and open every partition.
    pub ready_timeout: Duration,
    /// How long the job may run once the schedule has started (the workload's duration, its
    /// drain and a margin for the engine to finish).
    pub run_timeout: Duration,
    /// Outputs stamped before this instant of the run clock are flagged as warm-up.
    pub warmup: Nanos,
    /// Who watches the run (events sent, outputs received) and may ask it to stop.
    pub watch: RunWatch,
}

impl JobLaunch {
    /// The job's log file: its stdout and stderr, and the engine's own logs.
    pub fn log(&self) -> PathBuf {
        self.dir.join("engine.log")
    }

    /// The file the job appends its progress records to.
    pub fn progress(&self) -> PathBuf {
        self.dir.join("engine-progress.jsonl")
    }

    /// The job's checkpoint directory.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// Loopback: the default bind address.
    pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
}

/// One output line as the receiver stamped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedLine {
    /// Receipt time on the run clock, ns.
    pub stamp: Nanos,
    /// Stamped inside the warm-up period.
    pub warmup: bool,
    /// The line, without its newline.
    pub text: String,
    /// The broker's output hop, ns, when the line came through Kafka's output topic: from the
    /// record's append to the log (its `LogAppendTime`, 1 ms resolution) to its receipt here;
    /// `None` on the loopback receiver.
    pub output_hop: Option<Nanos>,
}

/// What a finished job left behind.
#[derive(Debug)]
pub struct JobOutcome {
    /// Every output line, in receipt order.
    pub lines: Vec<StampedLine>,
    /// The feeder's report: events sent and the sending lag.
    pub feeder: FeederReport,
    /// The receiver's report.
    pub receiver: ReceiverReport,
    /// The engine's own progress records (one JSON object per line of the progress file).
    pub progress: Vec<serde_json::Value>,
    /// From starting the job to the run clock's zero (the engine's start-up), wall clock.
    pub startup: Duration,
    /// From the run clock's zero to the job's exit, wall clock.
    pub run_time: Duration,
    /// When the run was stopped early (Ctrl-C), on the run clock: the job was ended with its
    /// group there, and `lines` holds what was received up to then.
    pub interrupted: Option<Nanos>,
}

/// Runs `launch` over `events` (in arrival order) and returns what it delivered.
pub fn run_job(launch: &JobLaunch, events: &[Event]) -> Result<JobOutcome> {
    let io = RealEngineError::io;
    std::fs::create_dir_all(launch.dir.join("tmp")).map_err(io(&launch.dir))?;
    let token = RunToken::generate();
    let mut feeder_options = FeederOptions::new(launch.partitions, token.clone());
    feeder_options.bind = SocketAddr::new(launch.bind, 0);
    feeder_options.ready_timeout = launch.ready_timeout;
    feeder_options.warmup = launch.warmup;
    let feeder = Feeder::start(events, feeder_options).map_err(|e| RealEngineError::Feeder(e.to_string()))?;
    let lines: Arc<Mutex<Vec<StampedLine>>> = Arc::default();
    let sink_lines = Arc::clone(&lines);
    let mut receiver_options = ReceiverOptions::new(token.clone());
    receiver_options.bind = SocketAddr::new(launch.bind, 0);
    let receiver = Receiver::start(receiver_options, feeder.clock(), move |line| {
        if let Some(text) = line.text() {
            sink_lines.lock().expect("receiver lines").push(StampedLine {
                stamp: line.stamp,
                warmup: line.warmup,
                text: text.to_owned(),
                output_hop: None,
            });
        }
    })
    .map_err(|e| RealEngineError::Feeder(e.to_string()))?;

    let args = ScriptArgs {
        feeder: feeder.local_addr(),
        receiver: receiver.local_addr(),
        token: token.as_str().to_owned(),
        partitions: launch.partitions,
        campaigns: launch.campaigns.clone(),
        progress: launch.progress(),
        checkpoint: launch.checkpoint(),
        master: launch.master.clone(),
        helper_jar: launch.helper_jar.clone(),
    };
    let log = launch.log();
    let out = File::create(&log).map_err(io(&log))?;
    let err = out.try_clone().map_err(io(&log))?;
    let tmp = launch.dir.join("tmp");
    let mut cmd = Command::new(&launch.python);
    cmd.arg(&launch.script)
        .args(args.to_args())
        .current_dir(&launch.dir)
        .env("TMPDIR", &tmp)
        .env("SPARK_LOCAL_DIRS", &tmp)
        .env("PYTHONUNBUFFERED", "1")
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let started = Instant::now();
    let child = cmd.spawn().map_err(|source| RealEngineError::Spawn {
        program: launch.python.display().to_string(),
        source,
    })?;
    let mut group = EngineGroup::adopt(child);
    let failed = |what: String| RealEngineError::EngineFailed {
        engine: launch.engine,
        what,
        log: log.clone(),
        tail: tail_of(&log),
    };

    // Wait for the readiness handshake, then for the job to end.
    let clock = feeder.clock();
    let mut startup = None;
    let received = || lines.lock().expect("receiver lines").len() as u64;
    let status: ExitStatus = loop {
        let exited = group.leader().try_wait().map_err(io(&launch.script))?;
        if launch.watch.stop_requested() {
            // Stopped (Ctrl-C): the job goes with its group; what came back so far is kept.
            let at = clock.now();
            group.end();
            launch.watch.stopped(at);
            let feeder = feeder.stop_with_report();
            let receiver = receiver.stop();
            return Ok(JobOutcome {
                lines: std::mem::take(&mut *lines.lock().expect("receiver lines")),
                feeder,
                receiver,
                // A job ended mid-write may leave a partial last line.
                progress: read_progress(&launch.progress()).unwrap_or_default(),
                startup: startup.unwrap_or_default(),
                run_time: clock.zero().map(|z| z.elapsed()).unwrap_or_default(),
                interrupted: Some(at),
            });
        }
        if let Some(status) = exited {
            break status;
        }
        launch.watch.publish(&clock, feeder.sent(), received());
        match (clock.zero(), startup) {
            (Some(zero), None) => startup = Some(zero.saturating_duration_since(started)),
            (None, _) if started.elapsed() > launch.ready_timeout + Duration::from_secs(1) => {
                group.end();
                feeder.stop();
                receiver.stop();
                return Err(failed(format!(
                    "did not open its {} source partition(s) within {:?} (started, but never connected to the feeder)",
                    launch.partitions, launch.ready_timeout
                )));
            }
            (Some(zero), Some(_)) if zero.elapsed() > launch.run_timeout => {
                group.end();
                feeder.stop();
                receiver.stop();
                return Err(failed(format!(
                    "still running {:?} after the schedule started; ended with its process group",
                    launch.run_timeout
                )));
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run_time = clock.zero().map(|z| z.elapsed()).unwrap_or_default();
    // The leader has exited; anything it left in its group goes now.
    group.end();
    if !status.success() {
        feeder.stop();
        receiver.stop();
        return Err(failed(format!("exited with {}", describe_status(status))));
    }
    if !feeder.is_finished() {
        feeder.stop();
        receiver.stop();
        return Err(failed(
            "exited before the feeder had sent every event (it stopped reading its source)".into(),
        ));
    }
    let feeder = feeder.wait().map_err(|e| failed(format!("feeder: {e}")))?;
    receiver.wait_for_sinks(1, Duration::from_secs(5));
    let receiver = receiver.stop();
    let progress = read_progress(&launch.progress())?;
    let lines = std::mem::take(&mut *lines.lock().expect("receiver lines"));
    Ok(JobOutcome {
        lines,
        feeder,
        receiver,
        progress,
        startup: startup.unwrap_or_default(),
        run_time,
        interrupted: None,
    })
}

/// The last lines of the job's log.
fn tail_of(log: &Path) -> String {
    file_tail(log, TAIL_LINES)
}

/// The progress file's records; a missing file is no records, a line that is not JSON an error.
pub(crate) fn read_progress(path: &Path) -> Result<Vec<serde_json::Value>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RealEngineError::io(path)(e)),
    };
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(RealEngineError::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line).map_err(|e| RealEngineError::Progress {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        records.push(value);
    }
    Ok(records)
}
