//! Flink's Kafka source and sink for Flink SQL (`flink-sql-connector-kafka`, one shaded jar
//! with `kafka-clients` inside), fetched by `streamlab engines install` next to the pinned
//! Kafka's jars, into `<cache>/kafka-<version>/flink-sql-connector-kafka-<connector>/libs`
//! ([`ConnectorJars`]); a job on Kafka lists it in `pipeline.jars` beside the helper jar.
//!
//! Why 5.0.0-2.2 beside PyFlink 2.3.0: the connector is released apart from Flink, and Maven
//! Central has no build for 2.3 yet; `5.0.0-2.2` (built against Flink 2.2) is the newest, and
//! `4.0.1-2.0` the one before. 5.0.0-2.2 was checked to load and run in Flink 2.3.0's
//! MiniCluster: the `kafka` table factory, its source with per-partition watermarks, and its
//! exactly-once sink (two-phase commit: one Kafka transaction per checkpoint, committed when the
//! checkpoint completes, lingering ones aborted on restore). Only the shaded jar is copied (its
//! pom lists no other runtime dependency Flink does not have).

use std::path::{Path, PathBuf};

use crate::cache::CacheDir;
use crate::error::Result;
use crate::kafka::connector::{ConnectorJars, ConnectorSpec};
use crate::process::StepLog;

/// The connector's version: the newest `flink-sql-connector-kafka` on Maven Central.
pub const FLINK_KAFKA_VERSION: &str = "5.0.0-2.2";

/// Flink's connector on Maven Central.
pub static FLINK_KAFKA: ConnectorSpec = ConnectorSpec {
    engine: "flink",
    group: "org.apache.flink",
    artifact: "flink-sql-connector-kafka",
    version: FLINK_KAFKA_VERSION,
    included: "flink-sql-connector-kafka",
    dir: "flink-sql-connector-kafka-5.0.0-2.2",
};

/// Flink's Kafka connector in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlinkKafkaJars(ConnectorJars);

impl FlinkKafkaJars {
    /// The connector's place in `cache`, beside the pinned Kafka's jars.
    pub fn in_cache(cache: &CacheDir) -> Self {
        FlinkKafkaJars(ConnectorJars::in_cache(cache, &FLINK_KAFKA))
    }

    /// The directory of jars.
    pub fn libs(&self) -> PathBuf {
        self.0.libs()
    }

    /// Whether the jar is there, fetched for this binary's pom.
    pub fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    /// The jars a job lists in `pipeline.jars`, or an error saying how to get them.
    pub fn jars(&self) -> Result<Vec<PathBuf>> {
        self.0.jars()
    }

    /// Fetches the jar with `mvn` unless it is ready. Returns whether it fetched.
    pub fn ensure(&self, mvn: &Path, log: &StepLog) -> Result<bool> {
        self.0.ensure(mvn, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_flink_connector_names_itself_and_the_install_command() {
        let tmp = tempfile::tempdir().unwrap();
        let jars = FlinkKafkaJars::in_cache(&CacheDir::at(tmp.path().to_path_buf()));
        assert!(!jars.is_ready());
        let err = jars.jars().unwrap_err().to_string();
        assert!(err.contains("flink-sql-connector-kafka 5.0.0-2.2"), "{err}");
        assert!(err.contains("streamlab engines install"), "{err}");
        assert!(FLINK_KAFKA.pom().contains("<version>5.0.0-2.2</version>"));
    }
}
