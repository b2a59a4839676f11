//! Spark's Kafka source and sink (`spark-sql-kafka-0-10_2.13`) and what it needs beyond
//! pyspark's own jars, fetched by `streamlab engines install` next to the pinned Kafka's jars,
//! into `<cache>/kafka-<version>/spark-sql-kafka-<connector>/libs`.
//!
//! Why 4.2.0 beside pyspark 4.3.0: Maven Central serves no `spark-sql-kafka-0-10_2.13:4.3.0`
//! (`mvn dependency:get` for it was tried, and fails: "was not found in
//! https://repo.maven.apache.org/maven2"); 4.2.0 is the newest release that resolves, and its
//! `KafkaSourceProvider` implements the Real-Time Mode reader and the Kafka table Spark 4.3's
//! allowlist names. Only four artifacts are copied (`-DincludeArtifactIds`): the connector, its
//! token provider, `kafka-clients` and `commons-pool2`; its other runtime dependencies (Scala,
//! Hadoop's client, snappy, lz4, SLF4J) are in pyspark's own `jars/` at the versions Spark
//! 4.3.0 runs with, and a second copy on the class path would shadow them.
//!
//! Invariants as for [`crate::kafka::dist`]: the jars are copied into `libs.partial`, renamed
//! to `libs` when complete, and the stamp (the pom's hash) is written last.

use std::path::{Path, PathBuf};

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::kafka::dist::{KafkaDist, PomFetch};
use crate::process::StepLog;

/// The connector's version: the newest `spark-sql-kafka-0-10_2.13` on Maven Central.
pub const SPARK_KAFKA_VERSION: &str = "4.2.0";

/// The artifacts copied into `libs` (the rest are pyspark's).
const INCLUDED: &str = "spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2";

/// The `pom.xml` whose runtime dependencies are the connector's.
///
/// # Examples
///
/// ```
/// let pom = streamlab_real_engines::kafka::spark_connector::pom();
/// assert!(pom.contains("<artifactId>spark-sql-kafka-0-10_2.13</artifactId>"));
/// ```
pub fn pom() -> String {
    format!(
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  \
         <groupId>streamlab</groupId>\n  <artifactId>streamlab-spark-kafka</artifactId>\n  <version>{SPARK_KAFKA_VERSION}</version>\n  \
         <packaging>pom</packaging>\n  <dependencies>\n    <dependency><groupId>org.apache.spark</groupId>\
         <artifactId>spark-sql-kafka-0-10_2.13</artifactId><version>{SPARK_KAFKA_VERSION}</version></dependency>\n  \
         </dependencies>\n</project>\n"
    )
}

/// Spark's Kafka connector in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkKafkaJars {
    /// `<cache>/kafka-<version>/spark-sql-kafka-<connector>`.
    pub dir: PathBuf,
}

impl SparkKafkaJars {
    /// The connector's place in `cache`, beside the pinned Kafka's jars.
    pub fn in_cache(cache: &CacheDir) -> Self {
        SparkKafkaJars {
            dir: KafkaDist::in_cache(cache)
                .dir
                .join(format!("spark-sql-kafka-{SPARK_KAFKA_VERSION}")),
        }
    }

    /// The directory of jars.
    pub fn libs(&self) -> PathBuf {
        self.dir.join("libs")
    }

    /// How the jars are fetched (and whether they were), with `pom`, `libs` and `stamp` to hand.
    fn with_fetch<R>(&self, f: impl FnOnce(&PomFetch<'_>) -> R) -> R {
        let (pom, libs, stamp) = (pom(), self.libs(), self.dir.join("spark-kafka.stamp"));
        let extra = [format!("-DincludeArtifactIds={INCLUDED}")];
        let what = format!("spark: mvn dependency:copy-dependencies (spark-sql-kafka-0-10_2.13 {SPARK_KAFKA_VERSION})");
        f(&PomFetch {
            dir: &self.dir,
            pom: &pom,
            libs: &libs,
            stamp: &stamp,
            extra: &extra,
            what: &what,
        })
    }

    /// Whether the jars are there, fetched for this binary's pom.
    pub fn is_ready(&self) -> bool {
        self.with_fetch(|f| f.is_done())
    }

    /// The jars as `spark.jars` takes them (comma-separated paths), or an error saying how to
    /// get them.
    pub fn spark_jars(&self) -> Result<String> {
        let missing = || RealEngineError::NotInstalled {
            engine: "spark",
            status: format!(
                "its Kafka connector (spark-sql-kafka-0-10_2.13 {SPARK_KAFKA_VERSION}) in {} is missing",
                self.libs().display()
            ),
        };
        if !self.is_ready() {
            return Err(missing());
        }
        let libs = self.libs();
        let mut jars: Vec<String> = std::fs::read_dir(&libs)
            .map_err(RealEngineError::io(&libs))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jar"))
            .map(|p| p.display().to_string())
            .collect();
        jars.sort();
        if jars.is_empty() {
            return Err(missing());
        }
        Ok(jars.join(","))
    }

    /// Fetches the jars with `mvn` unless they are ready. Returns whether it fetched.
    pub fn ensure(&self, mvn: &Path, log: &StepLog) -> Result<bool> {
        if self.is_ready() {
            return Ok(false);
        }
        self.with_fetch(|f| f.fetch(mvn, log))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_connector_names_itself_and_the_install_command() {
        let tmp = tempfile::tempdir().unwrap();
        let jars = SparkKafkaJars::in_cache(&CacheDir::at(tmp.path().to_path_buf()));
        assert!(!jars.is_ready());
        let err = jars.spark_jars().unwrap_err().to_string();
        assert!(err.contains("spark-sql-kafka-0-10_2.13"), "{err}");
        assert!(err.contains("streamlab engines install"), "{err}");
    }
}
