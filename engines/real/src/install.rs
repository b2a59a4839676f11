//! `streamlab engines install`: the real engines' venvs, pinned and idempotent, and a Java check.
//!
//! Steps, each printed as it starts (pip takes about a minute per engine):
//! 1. the cache directory is created;
//! 2. Java is found and its version checked (17+); a missing or old Java does not stop the
//!    venvs from being installed (pip does not need it) but makes the command fail at the end,
//!    with the fix;
//! 3. for each engine, unless its venv is [`VenvStatus::Ready`]: the old venv (another version,
//!    an unfinished install, one that does not import) is removed with a message saying why,
//!    `python3 -m venv` creates it, `pip install` puts the pinned package in it, the module is
//!    imported to check the version, and only then is the pin marker written;
//! 4. with a JDK (Java 17+ with `javac` and `jar`) and the Flink venv ready: streamlab's Java
//!    helper classes for Flink are compiled into `<cache>/java/streamlab-flink-helpers.jar`,
//!    unless its stamp says this binary's sources are already built ([`crate::helper_jar`]).
//! 5. the pinned Apache Kafka (broker and Kafka Streams, [`crate::kafka::dist`]) is fetched
//!    from Maven Central with `mvn` into `<cache>/kafka-<version>/libs`, unless its stamp says
//!    it is already there; then Spark's and Flink's Kafka connectors beside it
//!    ([`crate::kafka::spark_connector`], [`crate::kafka::flink_connector`]).
//!
//! Every child's output is appended to `install.log` in the cache directory; a failed step
//! quotes its last lines.

use std::process::Command;
use std::time::Instant;

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::helper_jar::{flink_lib, HelperJar, JavaTools};
use crate::java::JavaInstall;
use crate::kafka::connector::{ConnectorJars, ConnectorSpec};
use crate::kafka::dist::find_mvn;
use crate::kafka::flink_connector::FLINK_KAFKA;
use crate::kafka::spark_connector::SPARK_KAFKA;
use crate::kafka::{KafkaDist, KafkaDistStatus, KAFKA_VERSION};
use crate::process::{run_logged, StepLog, TAIL_LINES};
use crate::venv::{BasePython, PythonEngine, Venv, VenvStatus};

/// Installs the real engines into `cache`, reporting each step to `progress` as a line of text.
/// Returns an error when a step fails or when Java is missing or older than 17.
pub fn install(cache: &CacheDir, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&cache.path).map_err(RealEngineError::io(&cache.path))?;
    progress(&format!("cache:  {} ({})", cache.path.display(), cache.origin));

    let java = JavaInstall::find().and_then(JavaInstall::require_supported);
    match &java {
        Ok(java) => progress(&format!("java:   {java}: ok")),
        Err(e) => progress(&format!("java:   MISSING: {e}")),
    }
    let python = BasePython::find()?;
    progress(&format!("python: {} at {}", python.version, python.path.display()));

    let venvs: Vec<(Venv, VenvStatus)> = PythonEngine::ALL
        .into_iter()
        .map(|engine| {
            let venv = cache.venv(engine);
            let status = venv.status();
            (venv, status)
        })
        .collect();
    let helpers = HelperJar::in_cache(cache);
    let mut log = InstallLog::new(cache);
    if venvs.iter().any(|(_, status)| status.needs_install()) {
        let log = log.open(progress)?;
        for (venv, status) in &venvs {
            install_venv(venv, status, &python, &log, progress)?;
        }
    } else {
        for (venv, _) in &venvs {
            progress(&format!(
                "{}: {} already installed in {}; kept",
                venv.engine.name(),
                venv.engine.requirement(),
                venv.dir.display()
            ));
        }
    }
    let java = java?;
    build_helpers(&helpers, &java, &cache.venv(PythonEngine::Flink), &mut log, progress)?;
    install_kafka(cache, &mut log, progress)?;
    install_connector(cache, &SPARK_KAFKA, &mut log, progress)?;
    install_connector(cache, &FLINK_KAFKA, &mut log, progress)?;
    progress(&format!(
        "done in {:.1} s; `streamlab engines doctor` shows what is installed",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `install.log`, started by the first step that runs a child: the log of the last install
/// that did something survives an install that had nothing to do.
struct InstallLog {
    path: std::path::PathBuf,
    log: Option<StepLog>,
}

impl InstallLog {
    fn new(cache: &CacheDir) -> Self {
        InstallLog {
            path: cache.install_log(),
            log: None,
        }
    }

    fn open(&mut self, progress: &mut dyn FnMut(&str)) -> Result<StepLog> {
        if let Some(log) = &self.log {
            return Ok(log.clone());
        }
        let log = StepLog::create(&self.path)?;
        progress(&format!("log:    {}", log.path().display()));
        self.log = Some(log.clone());
        Ok(log)
    }
}

/// Compiles the Java helper classes for Flink, unless this binary's are already built.
fn build_helpers(
    helpers: &HelperJar,
    java: &JavaInstall,
    flink: &Venv,
    log: &mut InstallLog,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let jar = helpers.jar();
    if !helpers.status().needs_build() {
        progress(&format!("helpers: {} already built; kept", jar.display()));
        return Ok(());
    }
    let tools = JavaTools::beside(java)?;
    let lib = flink_lib(flink)?;
    let log = log.open(progress)?;
    let started = Instant::now();
    progress(&format!(
        "helpers: javac streamlab's Flink helper classes into {}",
        jar.display()
    ));
    helpers.ensure(&tools, &lib, &log)?;
    progress(&format!(
        "helpers: {} ready ({:.1} s)",
        jar.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Fetches the pinned Apache Kafka (broker and Kafka Streams jars) with Maven, unless it is
/// already there.
fn install_kafka(cache: &CacheDir, log: &mut InstallLog, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let dist = KafkaDist::in_cache(cache);
    if dist.status() == KafkaDistStatus::Ready {
        progress(&format!(
            "kafka:  Apache Kafka {KAFKA_VERSION} already in {}; kept",
            dist.libs().display()
        ));
        return Ok(());
    }
    let mvn = find_mvn()?;
    let log = log.open(progress)?;
    let started = Instant::now();
    progress(&format!(
        "kafka:  mvn dependency:copy-dependencies org.apache.kafka:kafka_2.13:{KAFKA_VERSION} (+ kafka-streams) into {}",
        dist.libs().display()
    ));
    dist.ensure(&mvn, &log)?;
    progress(&format!(
        "kafka:  Apache Kafka {KAFKA_VERSION} ready in {} ({:.1} s)",
        dist.libs().display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Fetches an engine's Kafka connector (Spark's, Flink's) with Maven, unless it is already there.
fn install_connector(
    cache: &CacheDir,
    spec: &'static ConnectorSpec,
    log: &mut InstallLog,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let jars = ConnectorJars::in_cache(cache, spec);
    let engine = spec.engine;
    if jars.is_ready() {
        progress(&format!(
            "{engine}:  Kafka connector {} already in {}; kept",
            spec.version,
            jars.libs().display()
        ));
        return Ok(());
    }
    let mvn = find_mvn()?;
    let log = log.open(progress)?;
    let started = Instant::now();
    jars.ensure(&mvn, &log)?;
    progress(&format!(
        "{engine}:  Kafka connector {} {} ready in {} ({:.1} s)",
        spec.artifact,
        spec.version,
        jars.libs().display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Makes `venv` hold its engine's pinned version, unless it already does.
fn install_venv(
    venv: &Venv,
    status: &VenvStatus,
    python: &BasePython,
    log: &StepLog,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let engine = venv.engine;
    let name = engine.name();
    let requirement = engine.requirement();
    match status {
        VenvStatus::Ready => {
            progress(&format!(
                "{name}: {requirement} already installed in {}; kept",
                venv.dir.display()
            ));
            return Ok(());
        }
        VenvStatus::Absent => {}
        _ => {
            progress(&format!(
                "{name}: {} {status}; replacing it with {requirement}",
                venv.dir.display()
            ));
            std::fs::remove_dir_all(&venv.dir).map_err(RealEngineError::io(&venv.dir))?;
        }
    }
    let started = Instant::now();

    progress(&format!("{name}: creating venv {}", venv.dir.display()));
    run_logged(
        Command::new(&python.path).args(["-m", "venv"]).arg(&venv.dir),
        &format!("{name}: python3 -m venv"),
        log,
    )?;

    progress(&format!("{name}: pip install {requirement} (about a minute)"));
    run_logged(
        Command::new(venv.python())
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input"])
            .arg(&requirement),
        &format!("{name}: pip install {requirement}"),
        log,
    )?;

    progress(&format!("{name}: checking that {} imports", engine.module()));
    let step = format!("{name}: import {}", engine.module());
    match venv.probe() {
        Ok(version) if version == engine.pinned_version() => {}
        Ok(version) => {
            return Err(RealEngineError::StepFailed {
                step,
                status: format!("it reports version {version}, not {}", engine.pinned_version()),
                log: log.path().to_path_buf(),
                tail: log.tail(TAIL_LINES),
            })
        }
        Err(reason) => {
            log.append(&format!("\n==> {step}\n{reason}\n"))?;
            return Err(RealEngineError::StepFailed {
                step,
                status: "the import failed".to_string(),
                log: log.path().to_path_buf(),
                tail: log.tail(TAIL_LINES),
            });
        }
    }
    venv.write_marker()?;
    progress(&format!(
        "{name}: {requirement} ready in {} ({:.1} s)",
        venv.dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
