//! A Flink session cluster on this machine — a JobManager and a TaskManager started from the
//! installed PyFlink — so the path a user takes when they outgrow the MiniCluster (a
//! `master = "host:8081"` scenario, the job submitted to a JobManager's REST address) is
//! exercised here, not only documented.
//!
//! PyFlink's package ships Flink's `bin/jobmanager.sh` and `bin/taskmanager.sh`; each runs in
//! the foreground (`start-foreground`) in its own process group ([`EngineGroup`]), with a
//! configuration of its own in the cluster's directory (the bundled `config.yaml`'s Java 17
//! options, loopback addresses, free ports) and its logs there; dropping the
//! [`SessionCluster`] ends both. It is ready when the REST API lists a TaskManager with slots.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::process::{file_tail, TAIL_LINES};
use crate::spark::standalone::free_port;
use crate::venv::Venv;

/// A running JobManager and TaskManager, ended when dropped.
#[derive(Debug)]
pub struct SessionCluster {
    rest_port: u16,
    // The TaskManager first: it is ended before the JobManager.
    task_manager: EngineGroup,
    job_manager: EngineGroup,
}

impl SessionCluster {
    /// Starts a JobManager and one TaskManager with `slots` task slots from the Flink venv,
    /// configured and logging in `dir`, and waits up to `timeout` for the TaskManager to
    /// register.
    pub fn start(venv: &Venv, dir: &Path, slots: u32, timeout: Duration) -> Result<Self> {
        let home = flink_home(venv);
        let conf = dir.join("conf");
        std::fs::create_dir_all(&conf).map_err(RealEngineError::io(&conf))?;
        let bundled = home.join("conf");
        for entry in std::fs::read_dir(&bundled)
            .map_err(RealEngineError::io(&bundled))?
            .flatten()
        {
            let to = conf.join(entry.file_name());
            std::fs::copy(entry.path(), &to).map_err(RealEngineError::io(&to))?;
        }
        let bundled_yaml = std::fs::read_to_string(bundled.join("config.yaml")).unwrap_or_default();
        let rest_port = free_port()?;
        let yaml = config_yaml(&bundled_yaml, free_port()?, rest_port, slots);
        let config = conf.join("config.yaml");
        std::fs::write(&config, yaml).map_err(RealEngineError::io(&config))?;
        let log_dir = dir.join("log");
        std::fs::create_dir_all(&log_dir).map_err(RealEngineError::io(&log_dir))?;
        let spawn = |script: &str| -> Result<EngineGroup> {
            let out_path = dir.join(format!("{script}.out"));
            let out = std::fs::File::create(&out_path).map_err(RealEngineError::io(&out_path))?;
            let err = out.try_clone().map_err(RealEngineError::io(&out_path))?;
            let child = Command::new("bash")
                .arg(home.join("bin").join(format!("{script}.sh")))
                .arg("start-foreground")
                .current_dir(dir)
                .env("FLINK_HOME", &home)
                .env("FLINK_CONF_DIR", &conf)
                .env("FLINK_LOG_DIR", &log_dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .map_err(|source| RealEngineError::Spawn {
                    program: format!("{script}.sh"),
                    source,
                })?;
            Ok(EngineGroup::adopt(child))
        };
        let job_manager = spawn("jobmanager")?;
        let task_manager = spawn("taskmanager")?;
        let cluster = Self {
            rest_port,
            task_manager,
            job_manager,
        };
        let deadline = Instant::now() + timeout;
        while !crate::http::get(rest_port, "/taskmanagers").is_some_and(|b| b.contains("\"slotsNumber\"")) {
            if Instant::now() > deadline {
                let log = dir.join("jobmanager.out");
                let tail = file_tail(&log, TAIL_LINES);
                return Err(RealEngineError::EngineFailed {
                    engine: "flink",
                    what: format!("session cluster had no TaskManager within {timeout:?}"),
                    log,
                    tail,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(cluster)
    }

    /// The JobManager's REST address, what a scenario's `master` key takes.
    pub fn rest_address(&self) -> String {
        format!("127.0.0.1:{}", self.rest_port)
    }

    /// The process group ids of the JobManager and the TaskManager.
    pub fn group_ids(&self) -> Vec<i32> {
        vec![self.job_manager.id(), self.task_manager.id()]
    }
}

/// The cluster's `config.yaml`: the bundled file's Java options (Flink on Java 17 needs its
/// `--add-opens`), loopback addresses, the given ports and slots.
fn config_yaml(bundled: &str, rpc_port: u16, rest_port: u16, slots: u32) -> String {
    let java_opts = bundled
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("all:"))
        .map(str::trim)
        .unwrap_or_default();
    format!(
        "# A streamlab session cluster on loopback (engines/real/src/flink/session.rs).\n\
         env.java.opts.all: {java_opts}\n\
         jobmanager.bind-host: 127.0.0.1\n\
         jobmanager.rpc.address: 127.0.0.1\n\
         jobmanager.rpc.port: {rpc_port}\n\
         jobmanager.memory.process.size: 1024m\n\
         taskmanager.bind-host: 127.0.0.1\n\
         taskmanager.host: 127.0.0.1\n\
         taskmanager.numberOfTaskSlots: {slots}\n\
         taskmanager.memory.process.size: 1280m\n\
         rest.address: 127.0.0.1\n\
         rest.bind-address: 127.0.0.1\n\
         rest.port: {rest_port}\n\
         parallelism.default: 1\n"
    )
}

/// Where PyFlink keeps Flink's `bin/`, `conf/` and `lib/` in the venv.
pub fn flink_home(venv: &Venv) -> PathBuf {
    venv.site_packages().join("pyflink")
}
