//! Spark's Kafka source and sink (`spark-sql-kafka-0-10_2.13`) and what it needs beyond
//! pyspark's own jars, fetched by `streamlab engines install` next to the pinned Kafka's jars,
//! into `<cache>/kafka-<version>/spark-sql-kafka-<connector>/libs` ([`ConnectorJars`]).
//!
//! Why 4.2.0 beside pyspark 4.3.0: Maven Central serves no `spark-sql-kafka-0-10_2.13:4.3.0`
//! (`mvn dependency:get` for it was tried, and fails: "was not found in
//! https://repo.maven.apache.org/maven2"); 4.2.0 is the newest release that resolves, and its
//! `KafkaSourceProvider` implements the Real-Time Mode reader and the Kafka table Spark 4.3's
//! allowlist names. Only four artifacts are copied (`-DincludeArtifactIds`): the connector, its
//! token provider, `kafka-clients` and `commons-pool2`; its other runtime dependencies (Scala,
//! Hadoop's client, snappy, lz4, SLF4J) are in pyspark's own `jars/` at the versions Spark
//! 4.3.0 runs with, and a second copy on the class path would shadow them.

use std::path::{Path, PathBuf};

use crate::cache::CacheDir;
use crate::error::Result;
use crate::kafka::connector::{ConnectorJars, ConnectorSpec};
use crate::process::StepLog;

/// The connector's version: the newest `spark-sql-kafka-0-10_2.13` on Maven Central.
pub const SPARK_KAFKA_VERSION: &str = "4.2.0";

/// Spark's connector on Maven Central.
pub static SPARK_KAFKA: ConnectorSpec = ConnectorSpec {
    engine: "spark",
    group: "org.apache.spark",
    artifact: "spark-sql-kafka-0-10_2.13",
    version: SPARK_KAFKA_VERSION,
    included: "spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2",
    dir: "spark-sql-kafka-4.2.0",
};

/// The `pom.xml` whose runtime dependencies are the connector's.
///
/// # Examples
///
/// ```
/// let pom = streamlab_real_engines::kafka::spark_connector::pom();
/// assert!(pom.contains("<artifactId>spark-sql-kafka-0-10_2.13</artifactId>"));
/// ```
pub fn pom() -> String {
    SPARK_KAFKA.pom()
}

/// Spark's Kafka connector in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkKafkaJars(ConnectorJars);

impl SparkKafkaJars {
    /// The connector's place in `cache`, beside the pinned Kafka's jars.
    pub fn in_cache(cache: &CacheDir) -> Self {
        SparkKafkaJars(ConnectorJars::in_cache(cache, &SPARK_KAFKA))
    }

    /// The directory of jars.
    pub fn libs(&self) -> PathBuf {
        self.0.libs()
    }

    /// Whether the jars are there, fetched for this binary's pom.
    pub fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    /// The jars as `spark.jars` takes them (comma-separated paths), or an error saying how to
    /// get them.
    pub fn spark_jars(&self) -> Result<String> {
        let jars: Vec<String> = self.0.jars()?.iter().map(|p| p.display().to_string()).collect();
        Ok(jars.join(","))
    }

    /// Fetches the jars with `mvn` unless they are ready. Returns whether it fetched.
    pub fn ensure(&self, mvn: &Path, log: &StepLog) -> Result<bool> {
        self.0.ensure(mvn, log)
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
