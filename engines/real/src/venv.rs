//! One pinned Python venv per real engine, and how we know it is installed.
//!
//! pyspark and apache-flink cannot share a venv (their pinned dependencies, py4j and pandas
//! among them, conflict), so each engine has its own under the cache directory:
//! `venv-spark` with pyspark 4.3.0, `venv-flink` with apache-flink 2.3.0.
//!
//! Installing is idempotent through a pin marker, `streamlab-pin.txt` inside the venv, holding
//! the requirement it was installed for (`pyspark[sql]==4.3.0`: the `sql` extra brings
//! pyarrow, which Spark's Python data sources need). It is written last, after the
//! package imported and reported the pinned version, so:
//! * no venv directory → [`VenvStatus::Absent`];
//! * a directory without a marker → [`VenvStatus::Incomplete`] (an install was interrupted);
//! * a marker for another version or package → [`VenvStatus::OtherVersion`];
//! * the right marker but the module does not import, or imports another version →
//!   [`VenvStatus::NotImportable`] / [`VenvStatus::OtherVersion`];
//! * the right marker and `import` reports the pinned version → [`VenvStatus::Ready`], the one
//!   state `streamlab engines install` leaves alone. Every other state is replaced whole.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{RealEngineError, Result};
use crate::process::capture;

/// A real engine installed from PyPI into a venv of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PythonEngine {
    /// Apache Spark: the `pyspark` package.
    Spark,
    /// Apache Flink: the `apache-flink` package (module `pyflink`).
    Flink,
}

impl PythonEngine {
    /// Every engine, in install order.
    pub const ALL: [PythonEngine; 2] = [PythonEngine::Spark, PythonEngine::Flink];

    /// Its short name: `spark`, `flink`.
    pub fn name(self) -> &'static str {
        match self {
            PythonEngine::Spark => "spark",
            PythonEngine::Flink => "flink",
        }
    }

    /// Its PyPI package.
    pub fn package(self) -> &'static str {
        match self {
            PythonEngine::Spark => "pyspark",
            PythonEngine::Flink => "apache-flink",
        }
    }

    /// The Python module it is imported as.
    pub fn module(self) -> &'static str {
        match self {
            PythonEngine::Spark => "pyspark",
            PythonEngine::Flink => "pyflink",
        }
    }

    /// The version streamlab is pinned to (its cost profiles are fitted to it).
    pub fn pinned_version(self) -> &'static str {
        match self {
            PythonEngine::Spark => "4.3.0",
            PythonEngine::Flink => "2.3.0",
        }
    }

    /// The pip extra it is installed with: pyspark's `sql` extra brings pyarrow (and pandas),
    /// which Spark's Python data sources need to hand rows to the JVM; the generated Spark job
    /// reads the feeder through one.
    pub fn extra(self) -> Option<&'static str> {
        match self {
            PythonEngine::Spark => Some("sql"),
            PythonEngine::Flink => None,
        }
    }

    /// The pip requirement, `pyspark[sql]==4.3.0`; also the pin marker's content.
    pub fn requirement(self) -> String {
        match self.extra() {
            Some(extra) => format!("{}[{extra}]=={}", self.package(), self.pinned_version()),
            None => format!("{}=={}", self.package(), self.pinned_version()),
        }
    }

    /// The Python one-liner that imports the module (and what its extra brings) and prints the
    /// installed version.
    pub fn probe_script(self) -> String {
        let also = match self {
            PythonEngine::Spark => "; import pyarrow",
            PythonEngine::Flink => "",
        };
        format!(
            "import {}{also}; from importlib.metadata import version; print(version({:?}))",
            self.module(),
            self.package()
        )
    }
}

/// What state a venv is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenvStatus {
    /// The pinned version is installed and imports.
    Ready,
    /// There is no venv.
    Absent,
    /// The directory exists but has no pin marker: an install did not finish.
    Incomplete,
    /// Another version (or package) is installed; `found` is what the marker or the import said.
    OtherVersion {
        /// The requirement or version found.
        found: String,
    },
    /// The marker is right but the module does not import.
    NotImportable {
        /// The import's last line of error output.
        reason: String,
    },
}

impl VenvStatus {
    /// From what is on disk: whether the venv directory exists, its marker's content, and (run
    /// only when the marker is the pinned one) the probe that imports the module and returns
    /// the version it reports or its error.
    pub fn assess(
        engine: PythonEngine,
        dir_exists: bool,
        marker: Option<&str>,
        probe: impl FnOnce() -> std::result::Result<String, String>,
    ) -> VenvStatus {
        if !dir_exists {
            return VenvStatus::Absent;
        }
        let Some(marker) = marker.map(str::trim) else {
            return VenvStatus::Incomplete;
        };
        if marker != engine.requirement() {
            return VenvStatus::OtherVersion {
                found: marker.to_string(),
            };
        }
        match probe() {
            Ok(version) if version.trim() == engine.pinned_version() => VenvStatus::Ready,
            Ok(version) => VenvStatus::OtherVersion {
                found: format!("{}=={}", engine.package(), version.trim()),
            },
            Err(reason) => VenvStatus::NotImportable { reason },
        }
    }

    /// Whether `streamlab engines install` has work to do.
    pub fn needs_install(&self) -> bool {
        *self != VenvStatus::Ready
    }
}

/// A venv of one engine under the cache directory (it may not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    /// The engine it holds.
    pub engine: PythonEngine,
    /// Its directory.
    pub dir: PathBuf,
}

impl Venv {
    /// Its Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// Its `site-packages` directory (`lib/python3.X/site-packages`; the first `python*` under
    /// `lib/` when there are several).
    pub fn site_packages(&self) -> PathBuf {
        let lib = self.dir.join("lib");
        let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python")))
            .collect();
        pythons.sort();
        pythons
            .into_iter()
            .next()
            .unwrap_or_else(|| lib.join("python3"))
            .join("site-packages")
    }

    /// Its pin marker.
    pub fn marker(&self) -> PathBuf {
        self.dir.join("streamlab-pin.txt")
    }

    /// Its state, importing the module when the marker says it should be there.
    pub fn status(&self) -> VenvStatus {
        let marker = std::fs::read_to_string(self.marker()).ok();
        VenvStatus::assess(self.engine, self.dir.is_dir(), marker.as_deref(), || self.probe())
    }

    /// Imports the module with the venv's Python: the version it reports, or the last line of
    /// the error.
    pub fn probe(&self) -> std::result::Result<String, String> {
        let out = capture(Command::new(self.python()).args(["-c", &self.engine.probe_script()]))
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(out.stdout.trim().to_string())
        } else {
            Err(out.stderr.lines().last().unwrap_or("no output").to_string())
        }
    }

    /// Records that the pinned version is installed and imports: the last step of an install.
    pub fn write_marker(&self) -> Result<()> {
        let path = self.marker();
        std::fs::write(&path, format!("{}\n", self.engine.requirement())).map_err(RealEngineError::io(&path))
    }

    /// The bytes its files take (0 when it does not exist).
    pub fn disk_bytes(&self) -> u64 {
        disk_bytes(&self.dir)
    }
}

/// How to get a Python that can make venvs.
pub const PYTHON_FIX: &str =
    "install Python 3.10-3.12 with its venv module (Debian/Ubuntu: `apt-get install python3 python3-venv`)";

/// The `python3` on `PATH` that the venvs are made with (`python3 -m venv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePython {
    /// The interpreter.
    pub path: PathBuf,
    /// Its version, as `python3 --version` prints it (`Python 3.11.7`).
    pub version: String,
}

impl BasePython {
    /// The first `python3` on this process's `PATH`, with its version.
    pub fn find() -> Result<BasePython> {
        let path = crate::process::find_on_path("python3", std::env::var_os("PATH").as_deref()).ok_or(
            RealEngineError::ProgramMissing {
                program: "python3",
                searched: "PATH has no python3".to_string(),
                fix: PYTHON_FIX,
            },
        )?;
        let out = capture(Command::new(&path).arg("--version"))?;
        let version = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        Ok(BasePython { path, version })
    }
}

fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_bytes(&e.path())).sum())
        .unwrap_or(0)
}

impl fmt::Display for VenvStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VenvStatus::Ready => f.write_str("ready"),
            VenvStatus::Absent => f.write_str("not installed"),
            VenvStatus::Incomplete => f.write_str("an unfinished install (no pin marker)"),
            VenvStatus::OtherVersion { found } => write!(f, "holds {found}, not the pinned version"),
            VenvStatus::NotImportable { reason } => write!(f, "does not import: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPARK: PythonEngine = PythonEngine::Spark;

    fn never_probed() -> std::result::Result<String, String> {
        panic!("the import must not be tried")
    }

    #[test]
    fn pins_are_pyspark_4_3_0_and_apache_flink_2_3_0() {
        assert_eq!(PythonEngine::Spark.requirement(), "pyspark[sql]==4.3.0");
        assert_eq!(PythonEngine::Flink.requirement(), "apache-flink==2.3.0");
        assert_eq!(
            PythonEngine::Flink.probe_script(),
            "import pyflink; from importlib.metadata import version; print(version(\"apache-flink\"))"
        );
    }

    #[test]
    fn a_venv_with_the_pinned_marker_that_imports_the_pinned_version_is_kept() {
        let status = VenvStatus::assess(SPARK, true, Some("pyspark[sql]==4.3.0\n"), || Ok("4.3.0\n".into()));
        assert_eq!(status, VenvStatus::Ready);
        assert!(!status.needs_install());
    }

    #[test]
    fn a_spark_venv_installed_without_the_sql_extra_is_replaced() {
        // pyspark alone cannot run the Python data source the generated job reads through.
        let status = VenvStatus::assess(SPARK, true, Some("pyspark==4.3.0"), never_probed);
        assert_eq!(
            status,
            VenvStatus::OtherVersion {
                found: "pyspark==4.3.0".into()
            }
        );
        assert!(PythonEngine::Spark.probe_script().contains("import pyarrow"));
    }

    #[test]
    fn no_directory_is_absent_and_the_import_is_not_tried() {
        assert_eq!(VenvStatus::assess(SPARK, false, None, never_probed), VenvStatus::Absent);
    }

    #[test]
    fn a_directory_without_a_marker_is_an_unfinished_install() {
        let status = VenvStatus::assess(SPARK, true, None, never_probed);
        assert_eq!(status, VenvStatus::Incomplete);
        assert!(status.needs_install());
    }

    #[test]
    fn a_marker_for_another_version_is_replaced_without_importing() {
        let status = VenvStatus::assess(SPARK, true, Some("pyspark==4.2.0"), never_probed);
        assert_eq!(
            status,
            VenvStatus::OtherVersion {
                found: "pyspark==4.2.0".into()
            }
        );
        assert!(status.to_string().contains("pyspark==4.2.0"), "{status}");
    }

    #[test]
    fn a_right_marker_whose_import_reports_another_version_is_replaced() {
        let status = VenvStatus::assess(SPARK, true, Some("pyspark[sql]==4.3.0"), || Ok("4.1.1".into()));
        assert_eq!(
            status,
            VenvStatus::OtherVersion {
                found: "pyspark==4.1.1".into()
            }
        );
    }

    #[test]
    fn a_right_marker_whose_import_fails_is_not_importable() {
        let status = VenvStatus::assess(SPARK, true, Some("pyspark[sql]==4.3.0"), || {
            Err("ModuleNotFoundError: No module named 'pyspark'".into())
        });
        assert!(matches!(status, VenvStatus::NotImportable { .. }));
        assert!(status.needs_install());
    }

    #[test]
    fn a_venv_whose_python_is_gone_is_not_importable() {
        let dir = tempfile::tempdir().unwrap();
        let venv = Venv {
            engine: SPARK,
            dir: dir.path().join("venv-spark"),
        };
        std::fs::create_dir(&venv.dir).unwrap();
        venv.write_marker().unwrap();
        assert_eq!(std::fs::read_to_string(venv.marker()).unwrap(), "pyspark[sql]==4.3.0\n");
        assert!(
            matches!(venv.status(), VenvStatus::NotImportable { .. }),
            "{:?}",
            venv.status()
        );
        assert!(venv.disk_bytes() > 0);
    }
}
