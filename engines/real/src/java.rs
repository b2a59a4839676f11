//! Java for the real engines: which `java` they will run on, and whether it is recent enough.
//!
//! pyspark and PyFlink start their JVM from `$JAVA_HOME/bin/java` when `JAVA_HOME` is set and
//! from `java` on `PATH` otherwise; streamlab looks in the same order, so the Java it checks is
//! the one the engines will use. Spark 4 and Flink 2 need Java 17 or later.
//!
//! The version comes from `java -version` (printed on stderr). Its first line has the form
//! `openjdk version "17.0.15" 2025-04-15` (OpenJDK, Temurin, Corretto...) or, before Java 9,
//! `java version "1.8.0_392"`, whose major version is the second number. Lines before it
//! (`Picked up JAVA_TOOL_OPTIONS: ...`) are skipped.
//!
//! Java helper classes (Flink's feeder source, receiver sink and campaign lookup) are compiled
//! with the `javac` beside this `java`, once: see [`crate::helper_jar`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use crate::error::{RealEngineError, Result};
use crate::process::{capture, command_line, find_on_path, is_executable};

/// The oldest Java major version Spark 4 and Flink 2 run on.
pub const MIN_JAVA_MAJOR: u32 = 17;

/// How to get a recent enough Java.
pub const JAVA_FIX: &str =
    "install a JDK 17 or later (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME to one";

/// A Java version as `java -version` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaVersion {
    /// The major version: 8 for "1.8.0_392", 17 for "17.0.15", 21 for "21".
    pub major: u32,
    /// The version string between the quotes.
    pub text: String,
}

impl JavaVersion {
    /// The version in the output of `java -version`, or `None` if it has no version line.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamlab_real_engines::JavaVersion;
    ///
    /// let v = JavaVersion::parse("openjdk version \"17.0.15\" 2025-04-15\n").unwrap();
    /// assert_eq!((v.major, v.is_supported()), (17, true));
    /// assert_eq!(JavaVersion::parse("java version \"1.8.0_392\"").unwrap().major, 8);
    /// ```
    pub fn parse(output: &str) -> Option<JavaVersion> {
        output.lines().find_map(|line| {
            let (_, rest) = line.split_once(" version \"")?;
            let (text, _) = rest.split_once('"')?;
            let mut numbers = text.split(['.', '_', '-', '+']);
            let first: u32 = numbers.next()?.parse().ok()?;
            let major = if first == 1 {
                numbers.next()?.parse().ok()?
            } else {
                first
            };
            Some(JavaVersion {
                major,
                text: text.to_string(),
            })
        })
    }

    /// Whether the real engines run on this version.
    pub fn is_supported(&self) -> bool {
        self.major >= MIN_JAVA_MAJOR
    }
}

impl fmt::Display for JavaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which setting chose the `java` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaOrigin {
    /// `$JAVA_HOME/bin/java`.
    JavaHome,
    /// The first `java` on `PATH`.
    Path,
}

impl fmt::Display for JavaOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JavaOrigin::JavaHome => "from $JAVA_HOME",
            JavaOrigin::Path => "from PATH",
        })
    }
}

/// The Java the real engines will run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaInstall {
    /// The `java` binary, with symbolic links resolved (`/usr/bin/java` is usually one).
    pub path: PathBuf,
    /// Which setting chose it.
    pub origin: JavaOrigin,
    /// Its version.
    pub version: JavaVersion,
}

impl JavaInstall {
    /// The Java this process's environment chooses, with its version (of any age: see
    /// [`JavaInstall::require_supported`]).
    pub fn find() -> Result<JavaInstall> {
        Self::find_in(|name| std::env::var_os(name))
    }

    /// The Java the environment `var` chooses: `$JAVA_HOME/bin/java` if `JAVA_HOME` is set,
    /// else `java` on `PATH`.
    pub fn find_in(var: impl Fn(&str) -> Option<OsString>) -> Result<JavaInstall> {
        let (binary, origin) = match var("JAVA_HOME").filter(|v| !v.is_empty()) {
            Some(home) => {
                let binary = PathBuf::from(&home).join("bin").join("java");
                if !is_executable(&binary) {
                    return Err(RealEngineError::ProgramMissing {
                        program: "java",
                        searched: format!("JAVA_HOME is {} but it has no bin/java", PathBuf::from(&home).display()),
                        fix: JAVA_FIX,
                    });
                }
                (binary, JavaOrigin::JavaHome)
            }
            None => match find_on_path("java", var("PATH").as_deref()) {
                Some(binary) => (binary, JavaOrigin::Path),
                None => {
                    return Err(RealEngineError::ProgramMissing {
                        program: "java",
                        searched: "JAVA_HOME is not set and PATH has no java".to_string(),
                        fix: JAVA_FIX,
                    })
                }
            },
        };
        let mut cmd = Command::new(&binary);
        cmd.arg("-version");
        let out = capture(&mut cmd)?;
        let printed = format!("{}{}", out.stderr, out.stdout);
        let version = JavaVersion::parse(&printed).ok_or_else(|| RealEngineError::Unreadable {
            command: command_line(&cmd),
            output: printed.trim().to_string(),
        })?;
        let path = std::fs::canonicalize(&binary).unwrap_or(binary);
        Ok(JavaInstall { path, origin, version })
    }

    /// This Java, or [`RealEngineError::JavaTooOld`] if the engines cannot run on it.
    pub fn require_supported(self) -> Result<JavaInstall> {
        if self.version.is_supported() {
            Ok(self)
        } else {
            Err(RealEngineError::JavaTooOld {
                path: self.path,
                found: self.version.text,
                required: MIN_JAVA_MAJOR,
                fix: JAVA_FIX,
            })
        }
    }
}

impl fmt::Display for JavaInstall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Java {} at {} ({})", self.version, self.path.display(), self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn major(output: &str) -> Option<u32> {
        JavaVersion::parse(output).map(|v| v.major)
    }

    #[test]
    fn openjdk_17_from_debian_is_major_17() {
        let out = "openjdk version \"17.0.15\" 2025-04-15\n\
                   OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n\
                   OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n";
        let v = JavaVersion::parse(out).unwrap();
        assert_eq!((v.major, v.text.as_str()), (17, "17.0.15"));
        assert!(v.is_supported());
    }

    #[test]
    fn temurin_21_without_minor_numbers_is_major_21() {
        let out = "openjdk version \"21\" 2023-09-19 LTS\n\
                   OpenJDK Runtime Environment Temurin-21+35 (build 21+35-LTS)\n";
        assert_eq!(major(out), Some(21));
    }

    #[test]
    fn oracle_java_8_in_the_old_1_x_form_is_major_8_and_too_old() {
        let v = JavaVersion::parse("java version \"1.8.0_392\"\nJava(TM) SE Runtime Environment\n").unwrap();
        assert_eq!(v.major, 8);
        assert!(!v.is_supported());
    }

    #[test]
    fn early_access_builds_and_tool_options_lines_are_read() {
        let out = "Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version \"22-ea\" 2024-03-19\n";
        assert_eq!(major(out), Some(22));
        assert_eq!(major("openjdk version \"11.0.2\" 2019-01-15\n"), Some(11));
    }

    #[test]
    fn output_without_a_version_line_is_not_a_version() {
        assert_eq!(major("Error: could not find libjava.so\n"), None);
        assert_eq!(major("openjdk version \"abc\"\n"), None);
    }

    #[test]
    fn java_home_without_a_java_binary_names_java_home_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let err =
            JavaInstall::find_in(|name| (name == "JAVA_HOME").then(|| home.clone().into_os_string())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("JAVA_HOME is") && text.contains("openjdk-17"), "{text}");
    }

    #[test]
    fn no_java_home_and_an_empty_path_is_java_missing() {
        let err = JavaInstall::find_in(|_| None).unwrap_err();
        assert!(
            matches!(err, RealEngineError::ProgramMissing { program: "java", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_too_old_java_is_refused_with_the_fix() {
        let old = JavaInstall {
            path: "/usr/lib/jvm/java-8/bin/java".into(),
            origin: JavaOrigin::Path,
            version: JavaVersion::parse("java version \"1.8.0_392\"").unwrap(),
        };
        let err = old.require_supported().unwrap_err();
        assert!(err.to_string().contains("need Java 17 or later"), "{err}");
    }
}
