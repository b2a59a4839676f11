//! A Spark standalone cluster on this machine — a master and its workers, started from the
//! installed pyspark — so the path a user takes when they outgrow `local[N]` (a
//! `master = "spark://host:7077"` scenario) is exercised here, not only documented.
//!
//! pyspark's pip package ships `bin/spark-class` but not the `sbin/start-*.sh` daemons, so the
//! master and each worker run in the foreground under `spark-class`, each in its own process
//! group ([`EngineGroup`]), logging into the cluster's directory; dropping the
//! [`StandaloneCluster`] ends them all. It is ready when the master's JSON status page lists
//! every worker as alive.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{RealEngineError, Result};
use crate::groups::EngineGroup;
use crate::process::{file_tail, TAIL_LINES};
use crate::venv::Venv;

/// What a standalone cluster is made of.
#[derive(Clone, Debug)]
pub struct ClusterShape {
    /// Workers to start.
    pub workers: usize,
    /// Cores each worker offers.
    pub cores: u32,
    /// Memory each worker offers (`"1g"`).
    pub memory: String,
    /// How long the master and workers may take to be up.
    pub timeout: Duration,
}

/// A running standalone master and its workers, ended when dropped.
#[derive(Debug)]
pub struct StandaloneCluster {
    master_url: String,
    ui_port: u16,
    dir: PathBuf,
    // Workers first: they are ended before the master.
    workers: Vec<EngineGroup>,
    master: EngineGroup,
}

/// A free TCP port on loopback (bound and released; the cluster binds it right after).
pub(crate) fn free_port() -> Result<u16> {
    crate::http::free_port().map_err(RealEngineError::io("127.0.0.1:0"))
}

impl StandaloneCluster {
    /// Starts a master and the workers of `shape` from the Spark venv, logging into `dir`, and
    /// waits until every worker has registered.
    pub fn start(venv: &Venv, dir: &Path, shape: &ClusterShape) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(RealEngineError::io(dir))?;
        let spark_class = spark_home(venv).join("bin/spark-class");
        let (port, ui_port) = (free_port()?, free_port()?);
        let master_url = format!("spark://127.0.0.1:{port}");
        let spawn = |name: &str, args: &[String]| -> Result<EngineGroup> {
            let log = dir.join(format!("{name}.log"));
            let out = std::fs::File::create(&log).map_err(RealEngineError::io(&log))?;
            let err = out.try_clone().map_err(RealEngineError::io(&log))?;
            let work = dir.join(name);
            std::fs::create_dir_all(&work).map_err(RealEngineError::io(&work))?;
            let child = Command::new(&spark_class)
                .args(args)
                .current_dir(&work)
                .env("SPARK_LOG_DIR", &work)
                .env("SPARK_WORKER_DIR", &work)
                .env("SPARK_LOCAL_DIRS", &work)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .env("PYSPARK_PYTHON", venv.python())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .map_err(|source| RealEngineError::Spawn {
                    program: spark_class.display().to_string(),
                    source,
                })?;
            Ok(EngineGroup::adopt(child))
        };
        let master = spawn(
            "master",
            &[
                "org.apache.spark.deploy.master.Master".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--webui-port".into(),
                ui_port.to_string(),
            ],
        )?;
        let mut cluster = Self {
            master_url: master_url.clone(),
            ui_port,
            dir: dir.to_path_buf(),
            workers: Vec::new(),
            master,
        };
        for w in 0..shape.workers {
            let worker = spawn(
                &format!("worker-{w}"),
                &[
                    "org.apache.spark.deploy.worker.Worker".into(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--cores".into(),
                    shape.cores.to_string(),
                    "--memory".into(),
                    shape.memory.clone(),
                    "--webui-port".into(),
                    free_port()?.to_string(),
                    master_url.clone(),
                ],
            )?;
            cluster.workers.push(worker);
        }
        cluster.await_workers(shape.workers, shape.timeout)?;
        Ok(cluster)
    }

    /// The master URL a scenario's `master` key takes.
    pub fn master_url(&self) -> &str {
        &self.master_url
    }

    /// The process group ids of the master and the workers.
    pub fn group_ids(&self) -> Vec<i32> {
        std::iter::once(self.master.id())
            .chain(self.workers.iter().map(EngineGroup::id))
            .collect()
    }

    /// Waits until the master's status page lists `workers` alive workers.
    fn await_workers(&self, workers: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(alive) = self.alive_workers() {
                if alive >= workers {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = self.dir.join("master.log");
                let tail = file_tail(&log, TAIL_LINES);
                return Err(RealEngineError::EngineFailed {
                    engine: "spark",
                    what: format!("standalone cluster did not have {workers} alive worker(s) within {timeout:?}"),
                    log,
                    tail,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Alive workers, from the master's JSON status page; `None` while it does not answer.
    fn alive_workers(&self) -> Option<usize> {
        let body = crate::http::get(self.ui_port, "/json/")?;
        let at = body.find("\"aliveworkers\"")?;
        let digits: String = body[at + "\"aliveworkers\"".len()..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

/// Where pyspark keeps Spark's `bin/` and `jars/` in the venv.
pub fn spark_home(venv: &Venv) -> PathBuf {
    venv.site_packages().join("pyspark")
}
