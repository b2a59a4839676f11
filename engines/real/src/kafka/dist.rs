//! The pinned Apache Kafka streamlab owns: the broker and the Kafka Streams library as jars from
//! Maven Central, fetched once by `streamlab engines install` into `<cache>/kafka-<version>/libs`.
//!
//! Why Maven and not the release tarball: this machine (and CI) reaches Maven Central but no
//! download site, and `org.apache.kafka:kafka_2.13` carries the whole broker (KRaft controller
//! included) with its runtime dependencies; `kafka-streams` adds the library the generated
//! Kafka Streams application compiles against; `log4j-slf4j-impl` gives the broker's SLF4J 1.7
//! logging a binding, so its log says why it stopped. A generated `pom.xml` names the three and
//! `mvn dependency:copy-dependencies` copies the runtime closure into a directory: the broker
//! runs as `java -cp 'libs/*' kafka.Kafka`, with nothing unpacked or patched.
//!
//! Invariants, as for the Flink helper jar: the jars are copied into `libs.partial` and renamed
//! to `libs` when complete, and the stamp (the pom's hash) is written last, so an interrupted
//! fetch never looks ready; a second install with the same pinned version does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamlab_engines::checkpoint::fnv1a;

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::process::{find_on_path, run_logged, StepLog};

/// The pinned Apache Kafka version (broker and Kafka Streams).
pub const KAFKA_VERSION: &str = "4.1.1";

/// The log4j version whose SLF4J binding the broker logs through.
const LOG4J_VERSION: &str = "2.24.3";

/// How to get Maven.
pub const MAVEN_FIX: &str =
    "install Maven (Debian/Ubuntu: `apt-get install maven`) and run `streamlab engines install`";

/// The `pom.xml` whose runtime dependencies are the pinned Kafka.
///
/// # Examples
///
/// ```
/// let pom = streamlab_real_engines::kafka::dist::pom();
/// assert!(pom.contains("<artifactId>kafka_2.13</artifactId>"));
/// assert!(pom.contains(streamlab_real_engines::kafka::KAFKA_VERSION));
/// ```
pub fn pom() -> String {
    let dep = |group: &str, artifact: &str, version: &str| {
        format!(
            "    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>\n"
        )
    };
    format!(
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  \
         <groupId>streamlab</groupId>\n  <artifactId>streamlab-kafka</artifactId>\n  <version>{KAFKA_VERSION}</version>\n  \
         <packaging>pom</packaging>\n  <dependencies>\n{}{}{}  </dependencies>\n</project>\n",
        dep("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        dep("org.apache.kafka", "kafka-streams", KAFKA_VERSION),
        dep("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    )
}

/// Whether the Kafka jars are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaDistStatus {
    /// Never fetched.
    Absent,
    /// Fetched for another pom (another pinned version) or not finished.
    Stale,
    /// Fetched for this binary's pom.
    Ready,
}

impl std::fmt::Display for KafkaDistStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KafkaDistStatus::Absent => "not installed",
            KafkaDistStatus::Stale => "fetched for another version, or unfinished",
            KafkaDistStatus::Ready => "ready",
        })
    }
}

/// The pinned Kafka in the cache directory: `<cache>/kafka-<version>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaDist {
    /// The directory (`pom.xml`, `libs/`, the stamp).
    pub dir: PathBuf,
}

impl KafkaDist {
    /// The pinned Kafka's place in `cache`.
    pub fn in_cache(cache: &CacheDir) -> Self {
        KafkaDist {
            dir: cache.path.join(format!("kafka-{KAFKA_VERSION}")),
        }
    }

    /// The directory of jars: the broker's and the Kafka Streams application's class path.
    pub fn libs(&self) -> PathBuf {
        self.dir.join("libs")
    }

    /// `libs/*`, as `java -cp` and `javac -cp` take it.
    pub fn classpath(&self) -> PathBuf {
        self.libs().join("*")
    }

    /// The stamp: the hash of the pom the jars were fetched for.
    pub fn stamp(&self) -> PathBuf {
        self.dir.join("kafka.stamp")
    }

    /// Whether the jars are there, fetched for this binary's pom.
    pub fn status(&self) -> KafkaDistStatus {
        if !self.libs().is_dir() {
            return KafkaDistStatus::Absent;
        }
        match std::fs::read_to_string(self.stamp()) {
            Ok(stamp) if stamp.trim() == pom_hash() => KafkaDistStatus::Ready,
            _ => KafkaDistStatus::Stale,
        }
    }

    /// The jars, or an error saying how to get them.
    pub fn require(&self) -> Result<&Self> {
        match self.status() {
            KafkaDistStatus::Ready => Ok(self),
            status => Err(RealEngineError::NotInstalled {
                engine: "kafka",
                status: format!("Apache Kafka {KAFKA_VERSION} in {}: {status}", self.dir.display()),
            }),
        }
    }

    /// Fetches the jars with `mvn` (its output appended to `log`), unless they are
    /// [`KafkaDistStatus::Ready`]. Returns whether it fetched.
    pub fn ensure(&self, mvn: &Path, log: &StepLog) -> Result<bool> {
        if self.status() == KafkaDistStatus::Ready {
            return Ok(false);
        }
        PomFetch {
            dir: &self.dir,
            pom: &pom(),
            libs: &self.libs(),
            stamp: &self.stamp(),
            extra: &[],
            what: &format!("kafka: mvn dependency:copy-dependencies (Apache Kafka {KAFKA_VERSION})"),
        }
        .fetch(mvn, log)?;
        Ok(true)
    }
}

/// One set of jars fetched from a generated pom: the one way `engines install` fetches from
/// Maven (the pinned Kafka, Spark's Kafka connector). The stamp (the pom's hash) is removed
/// first and written last, so a fetch that stops half-way is never taken for a complete one.
pub(crate) struct PomFetch<'a> {
    /// Where the pom is written (created if missing).
    pub dir: &'a Path,
    /// The pom's text.
    pub pom: &'a str,
    /// The directory of jars.
    pub libs: &'a Path,
    /// The stamp file.
    pub stamp: &'a Path,
    /// Extra arguments to `mvn dependency:copy-dependencies`.
    pub extra: &'a [String],
    /// The step's name in the log and in an error.
    pub what: &'a str,
}

impl PomFetch<'_> {
    /// The stamp's text for `pom`.
    pub fn stamp_of(pom: &str) -> String {
        format!("{:016x}", fnv1a(pom.as_bytes()))
    }

    /// Whether `libs` is there and the stamp names this pom.
    pub fn is_done(&self) -> bool {
        self.libs.is_dir() && std::fs::read_to_string(self.stamp).is_ok_and(|s| s.trim() == Self::stamp_of(self.pom))
    }

    /// Writes the pom, copies its dependencies into `libs`, then writes the stamp.
    pub fn fetch(&self, mvn: &Path, log: &StepLog) -> Result<()> {
        let io = RealEngineError::io;
        std::fs::create_dir_all(self.dir).map_err(io(self.dir))?;
        if self.stamp.exists() {
            std::fs::remove_file(self.stamp).map_err(io(self.stamp))?;
        }
        let pom_file = self.dir.join("pom.xml");
        std::fs::write(&pom_file, self.pom).map_err(io(&pom_file))?;
        copy_dependencies(mvn, &pom_file, self.libs, self.extra, self.what, log)?;
        std::fs::write(self.stamp, format!("{}\n", Self::stamp_of(self.pom))).map_err(io(self.stamp))
    }
}

/// `mvn dependency:copy-dependencies` of `pom_file`'s runtime closure (with `extra` arguments)
/// into `libs.partial` beside `libs`, renamed to `libs` once complete (either is replaced); `what`
/// names the step in `log` and in an error.
fn copy_dependencies(
    mvn: &Path,
    pom_file: &Path,
    libs: &Path,
    extra: &[String],
    what: &str,
    log: &StepLog,
) -> Result<()> {
    let io = RealEngineError::io;
    let partial = libs.with_extension("partial");
    for dir in [&partial, libs] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    run_logged(
        Command::new(mvn)
            .args(["-B", "-q", "-f"])
            .arg(pom_file)
            .arg("dependency:copy-dependencies")
            .arg("-DincludeScope=runtime")
            .args(extra)
            .arg(format!("-DoutputDirectory={}", partial.display())),
        what,
        log,
    )?;
    std::fs::rename(&partial, libs).map_err(io(libs))
}

/// The pinned Kafka of this environment's cache when it is installed; otherwise `None`, after
/// saying on stderr that `test` is skipped and why — or, under
/// `STREAMLAB_REQUIRE_REAL_ENGINES=1` (CI), a panic. The one skip rule of every test that needs
/// a broker, so `cargo test` passes on a machine without the install.
pub fn installed_for_test(test: &str) -> Option<KafkaDist> {
    let why = match CacheDir::from_env().map(|c| KafkaDist::in_cache(&c)) {
        Ok(dist) => match dist.require() {
            Ok(_) => return Some(dist),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    if std::env::var_os("STREAMLAB_REQUIRE_REAL_ENGINES").is_some_and(|v| v == "1") {
        panic!("{test}: Kafka is not installed ({why}) but STREAMLAB_REQUIRE_REAL_ENGINES=1");
    }
    eprintln!("{test}: SKIPPED: Kafka is not installed ({why}); run `streamlab engines install` to run it");
    None
}

/// The hash of [`pom`], as 16 hex digits: what the stamp holds.
pub fn pom_hash() -> String {
    PomFetch::stamp_of(&pom())
}

/// `mvn` on `PATH`, or an error saying how to install it.
pub fn find_mvn() -> Result<PathBuf> {
    find_on_path("mvn", std::env::var_os("PATH").as_deref()).ok_or_else(|| RealEngineError::ProgramMissing {
        program: "mvn",
        searched: "PATH".to_string(),
        fix: MAVEN_FIX,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in `mvn` that logs its call and copies one "jar" into the output directory.
    fn fake_mvn(dir: &Path, exit: i32) -> PathBuf {
        let path = dir.join("mvn");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho mvn >> {calls}\nfor a in \"$@\"; do case \"$a\" in -DoutputDirectory=*) out=\"${{a#-DoutputDirectory=}}\";; esac; done\n\
                 [ {exit} -eq 0 ] || {{ echo 'Could not resolve dependencies' >&2; exit {exit}; }}\nmkdir -p \"$out\" && touch \"$out/kafka_2.13-{KAFKA_VERSION}.jar\"\n",
                calls = dir.join("calls").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_jars_are_fetched_once_and_kept_while_the_stamp_holds_the_pom_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let mvn = fake_mvn(tmp.path(), 0);
        let dist = KafkaDist::in_cache(&CacheDir::at(tmp.path().join("cache")));
        let log = StepLog::create(tmp.path().join("install.log")).unwrap();
        assert_eq!(dist.status(), KafkaDistStatus::Absent);
        assert!(dist
            .require()
            .unwrap_err()
            .to_string()
            .contains("streamlab engines install"));
        assert!(dist.ensure(&mvn, &log).unwrap());
        assert_eq!(dist.status(), KafkaDistStatus::Ready);
        assert!(dist.libs().join(format!("kafka_2.13-{KAFKA_VERSION}.jar")).is_file());
        assert!(!dist.ensure(&mvn, &log).unwrap(), "a second install fetches nothing");
        assert_eq!(std::fs::read_to_string(tmp.path().join("calls")).unwrap(), "mvn\n");
        std::fs::write(dist.stamp(), "0123456789abcdef\n").unwrap();
        assert_eq!(dist.status(), KafkaDistStatus::Stale);
    }

    #[test]
    fn a_failed_fetch_leaves_nothing_that_looks_ready_and_quotes_maven() {
        let tmp = tempfile::tempdir().unwrap();
        let mvn = fake_mvn(tmp.path(), 1);
        let dist = KafkaDist::in_cache(&CacheDir::at(tmp.path().join("cache")));
        let log = StepLog::create(tmp.path().join("install.log")).unwrap();
        let err = dist.ensure(&mvn, &log).unwrap_err().to_string();
        assert!(err.starts_with("kafka: mvn dependency:copy-dependencies"), "{err}");
        assert!(err.contains("Could not resolve dependencies"), "{err}");
        assert_eq!(dist.status(), KafkaDistStatus::Absent);
    }
}
