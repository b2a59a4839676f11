//! streamlab's Java helper classes for Flink, compiled once into a jar in the cache directory.
//!
//! The generated Flink job is pure Flink SQL, so that every record stays in the JVM (no Python
//! function per record). What Flink's bundle lacks — a source that reads streamlab's feeder, a
//! sink that writes to its receiver, the campaign lookup — is a handful of Java classes
//! (`engines/real/java/`), embedded in the binary ([`HELPER_SOURCES`]) so the binary alone can
//! install them. `streamlab engines install` writes them under `<cache>/java/src`, compiles
//! them with the `javac` beside the `java` the engines run on, against the Flink venv's
//! `pyflink/lib/*.jar`, and packs `<cache>/java/streamlab-flink-helpers.jar` with the `jar`
//! tool. A stamp file beside the jar holds [`sources_hash`] — the sources and the Flink version
//! they were compiled against — so a second install with the same binary does nothing, and a
//! binary with other sources (or another pinned Flink) rebuilds the jar.
//!
//! The jar is written under a temporary name and renamed, and the stamp written last: an
//! interrupted build leaves no jar that looks ready.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use streamlab_engines::checkpoint::fnv1a;

use crate::cache::CacheDir;
use crate::error::{RealEngineError, Result};
use crate::java::JavaInstall;
use crate::process::{is_executable, run_logged, StepLog};
use crate::venv::{PythonEngine, Venv};

/// The helper classes' sources and resources, by path inside the jar's source tree.
pub const HELPER_SOURCES: &[(&str, &str)] = &[
    (
        "META-INF/services/org.apache.flink.table.factories.Factory",
        include_str!("../java/META-INF/services/org.apache.flink.table.factories.Factory"),
    ),
    (
        "streamlab/flink/CampaignLookup.java",
        include_str!("../java/streamlab/flink/CampaignLookup.java"),
    ),
    (
        "streamlab/flink/CsvCell.java",
        include_str!("../java/streamlab/flink/CsvCell.java"),
    ),
    (
        "streamlab/flink/FeedEnumerator.java",
        include_str!("../java/streamlab/flink/FeedEnumerator.java"),
    ),
    (
        "streamlab/flink/FeedReader.java",
        include_str!("../java/streamlab/flink/FeedReader.java"),
    ),
    (
        "streamlab/flink/FeedSource.java",
        include_str!("../java/streamlab/flink/FeedSource.java"),
    ),
    (
        "streamlab/flink/FeedSplit.java",
        include_str!("../java/streamlab/flink/FeedSplit.java"),
    ),
    (
        "streamlab/flink/FeedTableFactory.java",
        include_str!("../java/streamlab/flink/FeedTableFactory.java"),
    ),
    (
        "streamlab/flink/FeedTableSource.java",
        include_str!("../java/streamlab/flink/FeedTableSource.java"),
    ),
    (
        "streamlab/flink/LineFormatFactory.java",
        include_str!("../java/streamlab/flink/LineFormatFactory.java"),
    ),
    (
        "streamlab/flink/ReceiverSink.java",
        include_str!("../java/streamlab/flink/ReceiverSink.java"),
    ),
    (
        "streamlab/flink/ReceiverTableFactory.java",
        include_str!("../java/streamlab/flink/ReceiverTableFactory.java"),
    ),
    (
        "streamlab/flink/ReceiverTableSink.java",
        include_str!("../java/streamlab/flink/ReceiverTableSink.java"),
    ),
    (
        "streamlab/flink/TraceRow.java",
        include_str!("../java/streamlab/flink/TraceRow.java"),
    ),
];

/// How to get `javac` and `jar` beside the `java` the engines run on.
pub const JDK_FIX: &str = "install a JDK 17 or later, not only a JRE (Debian/Ubuntu: `apt-get install \
                           openjdk-17-jdk-headless`), or set JAVA_HOME to one";

/// What the stamp file holds: a hash of every embedded source (path and text) and of the Flink
/// version they are compiled against, as 16 hex digits.
///
/// # Examples
///
/// ```
/// let hash = streamlab_real_engines::helper_jar::sources_hash();
/// assert_eq!(hash.len(), 16);
/// assert_eq!(hash, streamlab_real_engines::helper_jar::sources_hash());
/// ```
pub fn sources_hash() -> String {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(PythonEngine::Flink.requirement().as_bytes());
    for (path, text) in HELPER_SOURCES {
        bytes.push(0);
        bytes.extend_from_slice(path.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(text.as_bytes());
    }
    format!("{:016x}", fnv1a(&bytes))
}

/// The `javac` and `jar` tools of one JDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaTools {
    /// The compiler.
    pub javac: PathBuf,
    /// The archiver.
    pub jar: PathBuf,
}

impl JavaTools {
    /// The tools beside `java` (its `bin` directory, links resolved): the same JDK the engines
    /// run on, so the classes are compiled for the JVM that loads them.
    pub fn beside(java: &JavaInstall) -> Result<JavaTools> {
        let bin = java.path.parent().unwrap_or(Path::new("/"));
        let tool = |name: &'static str| {
            let path = bin.join(name);
            if is_executable(&path) {
                Ok(path)
            } else {
                Err(RealEngineError::ProgramMissing {
                    program: name,
                    searched: format!("no {name} beside {}", java.path.display()),
                    fix: JDK_FIX,
                })
            }
        };
        Ok(JavaTools {
            javac: tool("javac")?,
            jar: tool("jar")?,
        })
    }
}

/// Whether the helper jar is there and built from this binary's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperJarStatus {
    /// The jar is there and its stamp holds [`sources_hash`].
    Ready,
    /// There is no jar.
    Absent,
    /// There is a jar, built from other sources (or its build did not finish).
    Stale,
}

impl HelperJarStatus {
    /// Whether `streamlab engines install` has work to do.
    pub fn needs_build(&self) -> bool {
        *self != HelperJarStatus::Ready
    }
}

impl fmt::Display for HelperJarStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HelperJarStatus::Ready => "built from this binary's sources",
            HelperJarStatus::Absent => "is not built",
            HelperJarStatus::Stale => "was built from other sources",
        })
    }
}

/// What [`HelperJar::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JarOutcome {
    /// The jar was already built from these sources: nothing was done.
    Kept,
    /// The jar was compiled and packed.
    Built,
}

/// The helper jar in a cache directory, and how it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperJar {
    /// The directory that holds the jar, its stamp, and the sources and classes of its build.
    pub dir: PathBuf,
}

impl HelperJar {
    /// The jar's file name.
    pub const FILE_NAME: &'static str = "streamlab-flink-helpers.jar";

    /// The helper jar of `cache` (`<cache>/java`).
    pub fn in_cache(cache: &CacheDir) -> HelperJar {
        HelperJar {
            dir: cache.path.join("java"),
        }
    }

    /// The jar: what a Flink job is given with `--jar`.
    pub fn jar(&self) -> PathBuf {
        self.dir.join(Self::FILE_NAME)
    }

    /// The stamp: the [`sources_hash`] the jar was built from.
    pub fn stamp(&self) -> PathBuf {
        self.dir.join("streamlab-flink-helpers.stamp")
    }

    /// Whether the jar is there and built from this binary's sources.
    pub fn status(&self) -> HelperJarStatus {
        if !self.jar().is_file() {
            return HelperJarStatus::Absent;
        }
        match std::fs::read_to_string(self.stamp()) {
            Ok(stamp) if stamp.trim() == sources_hash() => HelperJarStatus::Ready,
            _ => HelperJarStatus::Stale,
        }
    }

    /// Builds the jar with `tools` against the jars in `flink_lib` (the venv's
    /// `pyflink/lib`), each step's output appended to `log` — unless it is already
    /// [`HelperJarStatus::Ready`].
    pub fn ensure(&self, tools: &JavaTools, flink_lib: &Path, log: &StepLog) -> Result<JarOutcome> {
        if self.status() == HelperJarStatus::Ready {
            return Ok(JarOutcome::Kept);
        }
        let stamp = self.stamp();
        remove_file_if_present(&stamp)?;
        let src = self.dir.join("src");
        let classes = self.dir.join("classes");
        for dir in [&src, &classes] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(RealEngineError::io(dir))?;
            }
        }
        let mut java_files = Vec::new();
        for (path, text) in HELPER_SOURCES {
            let root = if path.ends_with(".java") { &src } else { &classes };
            let file = root.join(path);
            let parent = file.parent().unwrap_or(root);
            std::fs::create_dir_all(parent).map_err(RealEngineError::io(parent))?;
            std::fs::write(&file, text).map_err(RealEngineError::io(&file))?;
            if path.ends_with(".java") {
                java_files.push(file);
            }
        }
        run_logged(
            Command::new(&tools.javac)
                .args(["-nowarn", "-encoding", "UTF-8", "--release", "17", "-d"])
                .arg(&classes)
                .arg("-cp")
                .arg(flink_lib.join("*"))
                .args(&java_files),
            "flink helpers: javac",
            log,
        )?;
        let partial = self.dir.join(format!("{}.partial", Self::FILE_NAME));
        run_logged(
            Command::new(&tools.jar)
                .arg("--create")
                .arg("--file")
                .arg(&partial)
                .arg("-C")
                .arg(&classes)
                .arg("."),
            "flink helpers: jar",
            log,
        )?;
        let jar = self.jar();
        std::fs::rename(&partial, &jar).map_err(RealEngineError::io(&jar))?;
        std::fs::write(&stamp, format!("{}\n", sources_hash())).map_err(RealEngineError::io(&stamp))?;
        Ok(JarOutcome::Built)
    }
}

/// The `pyflink/lib` directory of the Flink venv: the jars the helpers compile against.
pub fn flink_lib(venv: &Venv) -> Result<PathBuf> {
    Some(venv.site_packages().join("pyflink").join("lib"))
        .filter(|lib| lib.is_dir())
        .ok_or_else(|| RealEngineError::ProgramMissing {
            program: "pyflink",
            searched: format!("no lib/python*/site-packages/pyflink/lib in {}", venv.dir.display()),
            fix: "streamlab engines install",
        })
}

fn remove_file_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RealEngineError::io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Stand-ins for `javac` and `jar` that log their call and make the files a real build makes.
    fn fake_tools(dir: &Path) -> JavaTools {
        let script = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(
                &path,
                format!("#!/bin/sh\necho {name} >> {}\n{body}\n", dir.join("calls").display()),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        JavaTools {
            // javac ... -d CLASSES -cp LIB FILES: make one class file in CLASSES.
            javac: script(
                "javac",
                "mkdir -p \"$7/streamlab\" && touch \"$7/streamlab/Some.class\"",
            ),
            // jar --create --file JAR -C CLASSES .
            jar: script("jar", "touch \"$3\""),
        }
    }

    fn calls(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
    }

    #[test]
    fn a_jar_is_built_once_and_kept_while_the_stamp_holds_the_sources_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let tools = fake_tools(tmp.path());
        let jar = HelperJar::in_cache(&CacheDir::at(tmp.path().join("cache")));
        let log = StepLog::create(tmp.path().join("install.log")).unwrap();
        assert_eq!(jar.status(), HelperJarStatus::Absent);
        assert_eq!(jar.ensure(&tools, tmp.path(), &log).unwrap(), JarOutcome::Built);
        assert_eq!(calls(tmp.path()), "javac\njar\n");
        assert_eq!(jar.status(), HelperJarStatus::Ready);
        assert_eq!(std::fs::read_to_string(jar.stamp()).unwrap().trim(), sources_hash());
        assert!(jar.dir.join("classes/META-INF/services").is_dir());
        assert!(jar.dir.join("src/streamlab/flink/FeedReader.java").is_file());

        assert_eq!(jar.ensure(&tools, tmp.path(), &log).unwrap(), JarOutcome::Kept);
        assert_eq!(calls(tmp.path()), "javac\njar\n", "a second install compiles nothing");
    }

    #[test]
    fn a_stamp_of_other_sources_makes_the_jar_stale_and_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let tools = fake_tools(tmp.path());
        let jar = HelperJar::in_cache(&CacheDir::at(tmp.path().join("cache")));
        let log = StepLog::create(tmp.path().join("install.log")).unwrap();
        jar.ensure(&tools, tmp.path(), &log).unwrap();
        std::fs::write(jar.stamp(), "0123456789abcdef\n").unwrap();
        assert_eq!(jar.status(), HelperJarStatus::Stale);
        std::fs::remove_file(jar.stamp()).unwrap();
        assert_eq!(jar.status(), HelperJarStatus::Stale, "no stamp: an unfinished build");
        assert_eq!(jar.ensure(&tools, tmp.path(), &log).unwrap(), JarOutcome::Built);
        assert_eq!(calls(tmp.path()), "javac\njar\njavac\njar\n");
        assert_eq!(jar.status(), HelperJarStatus::Ready);
    }

    #[test]
    fn a_failed_compile_leaves_no_stamp_and_quotes_javac() {
        let tmp = tempfile::tempdir().unwrap();
        let mut tools = fake_tools(tmp.path());
        let failing = tmp.path().join("javac-fails");
        std::fs::write(
            &failing,
            "#!/bin/sh\necho 'FeedReader.java:1: error: boom' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
        tools.javac = failing;
        let jar = HelperJar::in_cache(&CacheDir::at(tmp.path().join("cache")));
        let log = StepLog::create(tmp.path().join("install.log")).unwrap();
        let err = jar.ensure(&tools, tmp.path(), &log).unwrap_err().to_string();
        assert!(err.starts_with("flink helpers: javac failed"), "{err}");
        assert!(err.contains("error: boom"), "{err}");
        assert_eq!(jar.status(), HelperJarStatus::Absent);
        assert!(!jar.stamp().exists());
    }

    #[test]
    fn every_java_file_in_the_source_tree_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/streamlab/flink");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| format!("streamlab/flink/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = HELPER_SOURCES
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p.ends_with(".java"))
            .collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
