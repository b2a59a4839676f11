//! An engine's Kafka connector: a few jars fetched from Maven Central by `streamlab engines
//! install` beside the pinned Kafka's, into `<cache>/kafka-<version>/<dir>/libs` — Spark's
//! ([`crate::kafka::spark_connector`]) and Flink's ([`crate::kafka::flink_connector`]). What
//! each engine needs and why that version is said where its [`ConnectorSpec`] is; how a
//! connector is fetched, found ready and listed is the same for both and lives here.
//!
//! Invariants as for [`crate::kafka::dist`] (the fetch is a [`PomFetch`]): the jars are copied
//! into `libs.partial`, renamed to `libs` when complete, and the stamp (the pom's hash) is
//! written last, so an interrupted fetch never looks ready.

use std::path::{Path, PathBuf};

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::kafka::dist::{KafkaDist, PomFetch};
use crate::process::StepLog;

/// One engine's Kafka connector on Maven Central.
#[derive(Debug, PartialEq, Eq)]
pub struct ConnectorSpec {
    /// The engine that loads it (`"spark"`, `"flink"`), in messages.
    pub engine: &'static str,
    /// The Maven group.
    pub group: &'static str,
    /// The connector's artifact.
    pub artifact: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The artifacts copied into `libs` (`-DincludeArtifactIds`): the rest of its runtime
    /// closure is the engine's own.
    pub included: &'static str,
    /// Its directory beside the pinned Kafka's jars.
    pub dir: &'static str,
}

impl ConnectorSpec {
    /// The `pom.xml` whose runtime dependencies are the connector's.
    pub fn pom(&self) -> String {
        format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  \
             <groupId>streamlab</groupId>\n  <artifactId>streamlab-{engine}-kafka</artifactId>\n  <version>{version}</version>\n  \
             <packaging>pom</packaging>\n  <dependencies>\n    <dependency><groupId>{group}</groupId>\
             <artifactId>{artifact}</artifactId><version>{version}</version></dependency>\n  \
             </dependencies>\n</project>\n",
            engine = self.engine,
            group = self.group,
            artifact = self.artifact,
            version = self.version,
        )
    }
}

/// A connector's place in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorJars {
    /// `<cache>/kafka-<version>/<spec.dir>`.
    pub dir: PathBuf,
    spec: &'static ConnectorSpec,
}

impl ConnectorJars {
    /// `spec`'s place in `cache`, beside the pinned Kafka's jars.
    pub fn in_cache(cache: &CacheDir, spec: &'static ConnectorSpec) -> Self {
        ConnectorJars {
            dir: KafkaDist::in_cache(cache).dir.join(spec.dir),
            spec,
        }
    }

    /// The directory of jars.
    pub fn libs(&self) -> PathBuf {
        self.dir.join("libs")
    }

    /// The connector this is the place of.
    pub fn spec(&self) -> &'static ConnectorSpec {
        self.spec
    }

    /// How the jars are fetched (and whether they were), with `pom`, `libs` and `stamp` to hand.
    fn with_fetch<R>(&self, f: impl FnOnce(&PomFetch<'_>) -> R) -> R {
        let spec = self.spec;
        let (pom, libs, stamp) = (
            spec.pom(),
            self.libs(),
            self.dir.join(format!("{}-kafka.stamp", spec.engine)),
        );
        let extra = [format!("-DincludeArtifactIds={}", spec.included)];
        let what = format!(
            "{}: mvn dependency:copy-dependencies ({} {})",
            spec.engine, spec.artifact, spec.version
        );
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

    /// The jars, sorted, or an error saying how to get them.
    pub fn jars(&self) -> Result<Vec<PathBuf>> {
        let missing = || RealEngineError::NotInstalled {
            engine: self.spec.engine,
            status: format!(
                "its Kafka connector ({} {}) in {} is missing",
                self.spec.artifact,
                self.spec.version,
                self.libs().display()
            ),
        };
        if !self.is_ready() {
            return Err(missing());
        }
        let libs = self.libs();
        let mut jars: Vec<PathBuf> = std::fs::read_dir(&libs)
            .map_err(RealEngineError::io(&libs))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jar"))
            .collect();
        jars.sort();
        if jars.is_empty() {
            return Err(missing());
        }
        Ok(jars)
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
