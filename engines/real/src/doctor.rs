//! `streamlab engines doctor`: what of the real engines is installed, what is missing, and the
//! command that fixes each missing piece.
//!
//! It changes nothing: it finds Java and `python3` as the install and the engines would, and
//! reads each venv's state as [`crate::venv::VenvStatus::assess`] decides it (importing the
//! module only when the pin marker says it is there), and whether the jar of streamlab's Java
//! helper classes for Flink is built from this binary's sources, whether the pinned Apache
//! Kafka's jars are fetched, and whether Spark's and Flink's Kafka connectors are (each with its
//! artifact, version and directory). The report is ready only when every piece is; the binary
//! exits non-zero otherwise.

use std::fmt;

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::helper_jar::{HelperJar, HelperJarStatus};
use crate::java::JavaInstall;
use crate::kafka::connector::ConnectorJars;
use crate::kafka::dist::MAVEN_FIX;
use crate::kafka::flink_connector::FLINK_KAFKA;
use crate::kafka::spark_connector::SPARK_KAFKA;
use crate::kafka::{KafkaDist, KafkaDistStatus, KAFKA_VERSION};
use crate::venv::{BasePython, PythonEngine, Venv, VenvStatus};

/// The command that installs or repairs the venvs.
pub const INSTALL_COMMAND: &str = "streamlab engines install";

/// One engine's venv as the doctor found it.
#[derive(Debug)]
pub struct VenvReport {
    /// The venv.
    pub venv: Venv,
    /// Its state.
    pub status: VenvStatus,
    /// The bytes its files take.
    pub disk_bytes: u64,
}

/// What the doctor found.
#[derive(Debug)]
pub struct DoctorReport {
    /// The cache directory and where it came from.
    pub cache: CacheDir,
    /// The Java the engines would run on, or why there is none they can use.
    pub java: Result<JavaInstall>,
    /// The `python3` that makes the venvs, or why there is none.
    pub python: Result<BasePython>,
    /// Each engine's venv.
    pub venvs: Vec<VenvReport>,
    /// The jar of the Java helper classes the Flink job needs.
    pub helpers: HelperJar,
    /// Whether it is built from this binary's sources.
    pub helpers_status: HelperJarStatus,
    /// The pinned Apache Kafka (broker and Kafka Streams).
    pub kafka: KafkaDist,
    /// Whether its jars are there.
    pub kafka_status: KafkaDistStatus,
    /// Spark's and Flink's Kafka connectors, each with whether it is fetched.
    pub connectors: Vec<(ConnectorJars, bool)>,
}

impl DoctorReport {
    /// Examines this machine and the venvs in `cache`.
    pub fn gather(cache: CacheDir) -> DoctorReport {
        let java = JavaInstall::find().and_then(JavaInstall::require_supported);
        Self::with_programs(cache, java, BasePython::find())
    }

    /// Examines the venvs in `cache`, with Java and Python already looked for.
    pub fn with_programs(cache: CacheDir, java: Result<JavaInstall>, python: Result<BasePython>) -> DoctorReport {
        let venvs = PythonEngine::ALL
            .into_iter()
            .map(|engine| {
                let venv = cache.venv(engine);
                let status = venv.status();
                let disk_bytes = venv.disk_bytes();
                VenvReport {
                    venv,
                    status,
                    disk_bytes,
                }
            })
            .collect();
        let helpers = HelperJar::in_cache(&cache);
        let helpers_status = helpers.status();
        let kafka = KafkaDist::in_cache(&cache);
        let kafka_status = kafka.status();
        let connectors = [&SPARK_KAFKA, &FLINK_KAFKA]
            .into_iter()
            .map(|spec| {
                let jars = ConnectorJars::in_cache(&cache, spec);
                let ready = jars.is_ready();
                (jars, ready)
            })
            .collect();
        DoctorReport {
            cache,
            java,
            python,
            venvs,
            helpers,
            helpers_status,
            kafka,
            kafka_status,
            connectors,
        }
    }

    /// Whether everything the real engines need is there.
    pub fn is_ready(&self) -> bool {
        self.missing() == 0
    }

    /// How many pieces are missing.
    pub fn missing(&self) -> usize {
        usize::from(self.java.is_err())
            + usize::from(self.python.is_err())
            + self.venvs.iter().filter(|v| v.status.needs_install()).count()
            + usize::from(self.helpers_status.needs_build())
            + usize::from(self.kafka_status != KafkaDistStatus::Ready)
            + self.connectors.iter().filter(|(_, ready)| !ready).count()
    }

    /// The bytes all venvs take.
    pub fn disk_bytes(&self) -> u64 {
        self.venvs.iter().map(|v| v.disk_bytes).sum()
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

fn missing_line(f: &mut fmt::Formatter<'_>, what: &str, e: &RealEngineError) -> fmt::Result {
    writeln!(f, "{what:<7} MISSING  {e}")
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<7} {}  ({})",
            "cache",
            self.cache.path.display(),
            self.cache.origin
        )?;
        match &self.java {
            Ok(java) => writeln!(f, "{:<7} ok       {java}", "java")?,
            Err(e) => missing_line(f, "java", e)?,
        }
        match &self.python {
            Ok(python) => writeln!(
                f,
                "{:<7} ok       {} at {}",
                "python",
                python.version,
                python.path.display()
            )?,
            Err(e) => missing_line(f, "python", e)?,
        }
        for v in &self.venvs {
            let name = v.venv.engine.name();
            let requirement = v.venv.engine.requirement();
            let dir = v.venv.dir.display();
            if v.status.needs_install() {
                writeln!(f, "{name:<7} MISSING  {requirement}: {dir} {}", v.status)?;
                writeln!(f, "{:<7}          fix: {INSTALL_COMMAND}", "")?;
            } else {
                writeln!(
                    f,
                    "{name:<7} ok       {requirement} in {dir} ({})",
                    megabytes(v.disk_bytes)
                )?;
            }
        }
        let jar = self.helpers.jar();
        if self.helpers_status.needs_build() {
            writeln!(
                f,
                "{:<7} MISSING  Flink helper jar: {} {}",
                "helpers",
                jar.display(),
                self.helpers_status
            )?;
            writeln!(f, "{:<7}          fix: {INSTALL_COMMAND} (needs javac, a JDK 17+)", "")?;
        } else {
            writeln!(
                f,
                "{:<7} ok       Flink helper jar {} (feeder source, receiver sink, campaign lookup)",
                "helpers",
                jar.display()
            )?;
        }
        if self.kafka_status == KafkaDistStatus::Ready {
            writeln!(
                f,
                "{:<7} ok       Apache Kafka {KAFKA_VERSION} (broker, Kafka Streams) in {}",
                "kafka",
                self.kafka.libs().display()
            )?;
        } else {
            writeln!(
                f,
                "{:<7} MISSING  Apache Kafka {KAFKA_VERSION}: {} {}",
                "kafka",
                self.kafka.libs().display(),
                self.kafka_status
            )?;
            writeln!(f, "{:<7}          fix: {INSTALL_COMMAND} (needs mvn: {MAVEN_FIX})", "")?;
        }
        for (jars, ready) in &self.connectors {
            let spec = jars.spec();
            let engine = if spec.engine == "spark" { "Spark" } else { "Flink" };
            if *ready {
                writeln!(
                    f,
                    "{:<7} ok       {engine}'s Kafka connector {} {} in {}",
                    "kafka",
                    spec.artifact,
                    spec.version,
                    jars.libs().display()
                )?;
            } else {
                writeln!(
                    f,
                    "{:<7} MISSING  {engine}'s Kafka connector {} {}: {} is not fetched",
                    "kafka",
                    spec.artifact,
                    spec.version,
                    jars.libs().display()
                )?;
                writeln!(f, "{:<7}          fix: {INSTALL_COMMAND} (needs mvn: {MAVEN_FIX})", "")?;
            }
        }
        match self.missing() {
            0 => writeln!(
                f,
                "ready: the real engines are installed ({} of venvs)",
                megabytes(self.disk_bytes())
            ),
            n => writeln!(f, "{n} missing: run the fix shown beside each"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::java::{JavaOrigin, JavaVersion};

    fn java17() -> Result<JavaInstall> {
        Ok(JavaInstall {
            path: "/usr/lib/jvm/java-17/bin/java".into(),
            origin: JavaOrigin::JavaHome,
            version: JavaVersion::parse("openjdk version \"17.0.15\" 2025-04-15").unwrap(),
        })
    }

    fn python() -> Result<BasePython> {
        Ok(BasePython {
            path: "/usr/bin/python3".into(),
            version: "Python 3.11.7".into(),
        })
    }

    #[test]
    fn an_empty_cache_dir_reports_both_venvs_the_helper_jar_and_kafka_missing_with_the_install_command() {
        let dir = tempfile::tempdir().unwrap();
        let report = DoctorReport::with_programs(CacheDir::at(dir.path()), java17(), python());
        assert!(!report.is_ready());
        assert_eq!(report.missing(), 6);
        let text = report.to_string();
        assert!(
            text.contains("java    ok       Java 17.0.15 at /usr/lib/jvm/java-17/bin/java (from $JAVA_HOME)"),
            "{text}"
        );
        assert!(text.contains("spark   MISSING  pyspark[sql]==4.3.0"), "{text}");
        assert!(text.contains("flink   MISSING  apache-flink==2.3.0"), "{text}");
        assert_eq!(text.matches("fix: streamlab engines install").count(), 6, "{text}");
        assert!(text.contains("kafka   MISSING  Apache Kafka 4.1.1"), "{text}");
        assert!(
            text.contains("kafka   MISSING  Spark's Kafka connector spark-sql-kafka-0-10_2.13 4.2.0: ")
                && text.contains("spark-sql-kafka-4.2.0/libs is not fetched"),
            "{text}"
        );
        assert!(
            text.contains("kafka   MISSING  Flink's Kafka connector flink-sql-connector-kafka 5.0.0-2.2: "),
            "{text}"
        );
        assert!(
            text.contains("helpers MISSING  Flink helper jar: ")
                && text.contains("streamlab-flink-helpers.jar is not built"),
            "{text}"
        );
        assert!(text.contains("from $STREAMLAB_ENGINES_DIR"), "{text}");
        assert!(text.ends_with("6 missing: run the fix shown beside each\n"), "{text}");
    }

    #[test]
    fn an_old_java_and_an_unfinished_venv_are_each_reported_with_their_fix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::at(dir.path());
        std::fs::create_dir(cache.venv(PythonEngine::Flink).dir).unwrap();
        let old_java = JavaInstall {
            path: "/usr/lib/jvm/java-11/bin/java".into(),
            origin: JavaOrigin::Path,
            version: JavaVersion::parse("openjdk version \"11.0.2\"").unwrap(),
        }
        .require_supported();
        let report = DoctorReport::with_programs(cache, old_java, python());
        assert_eq!(report.missing(), 7);
        let text = report.to_string();
        assert!(text.contains("java    MISSING  Java 11.0.2"), "{text}");
        assert!(text.contains("apt-get install openjdk-17-jdk-headless"), "{text}");
        assert!(text.contains("an unfinished install (no pin marker)"), "{text}");
    }
}
