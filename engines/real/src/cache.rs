//! Where the real engines live: one cache directory holding a venv per engine, the jar of
//! streamlab's Java helper classes for Flink, and the log of the last install.
//!
//! The directory is chosen once, from the environment, in this order:
//! 1. `STREAMLAB_ENGINES_DIR`, as given (a relative path is made absolute: venvs are not
//!    relocatable, their scripts name their interpreter by absolute path);
//! 2. `$XDG_CACHE_HOME/streamlab/engines` (an empty or relative `XDG_CACHE_HOME` is ignored, as
//!    the XDG base directory specification asks);
//! 3. `$HOME/.cache/streamlab/engines`.
//!
//! [`CacheDir`] remembers which one it came from, so `streamlab engines doctor` can say why it
//! looks where it looks.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{RealEngineError, Result};
use crate::helper_jar::HelperJar;
use crate::venv::{PythonEngine, Venv};

/// The environment variable that overrides the cache directory.
pub const ENGINES_DIR_VAR: &str = "STREAMLAB_ENGINES_DIR";

/// Which setting chose the cache directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOrigin {
    /// `STREAMLAB_ENGINES_DIR`.
    EnginesDirVar,
    /// `$XDG_CACHE_HOME/streamlab/engines`.
    XdgCacheHome,
    /// `$HOME/.cache/streamlab/engines`.
    Home,
}

impl fmt::Display for CacheOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheOrigin::EnginesDirVar => "from $STREAMLAB_ENGINES_DIR",
            CacheOrigin::XdgCacheHome => {
                "default, $XDG_CACHE_HOME/streamlab/engines; set $STREAMLAB_ENGINES_DIR to move it"
            }
            CacheOrigin::Home => "default, ~/.cache/streamlab/engines; set $STREAMLAB_ENGINES_DIR to move it",
        })
    }
}

/// The directory the real engines are installed in, and where that choice came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDir {
    /// The directory (absolute).
    pub path: PathBuf,
    /// Which setting chose it.
    pub origin: CacheOrigin,
}

impl CacheDir {
    /// The cache directory this process's environment chooses.
    pub fn from_env() -> Result<Self> {
        Self::resolve(|name| std::env::var_os(name))
    }

    /// The cache directory that the environment `var` (a variable's value by name) chooses.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamlab_real_engines::{CacheDir, CacheOrigin};
    ///
    /// let dir = CacheDir::resolve(|name| (name == "HOME").then(|| "/home/ada".into())).unwrap();
    /// assert_eq!(dir.path, std::path::Path::new("/home/ada/.cache/streamlab/engines"));
    /// assert_eq!(dir.origin, CacheOrigin::Home);
    /// ```
    pub fn resolve(var: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let (path, origin) = if let Some(dir) = set(ENGINES_DIR_VAR) {
            (dir, CacheOrigin::EnginesDirVar)
        } else if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
            (xdg.join("streamlab").join("engines"), CacheOrigin::XdgCacheHome)
        } else if let Some(home) = set("HOME") {
            (home.join(".cache").join("streamlab").join("engines"), CacheOrigin::Home)
        } else {
            return Err(RealEngineError::NoCacheDir);
        };
        let path = std::path::absolute(&path).map_err(RealEngineError::io(&path))?;
        Ok(CacheDir { path, origin })
    }

    /// A cache directory at `path`, as if `STREAMLAB_ENGINES_DIR` named it.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        CacheDir {
            path: path.into(),
            origin: CacheOrigin::EnginesDirVar,
        }
    }

    /// The venv of `engine` (it may not exist).
    pub fn venv(&self, engine: PythonEngine) -> Venv {
        Venv {
            engine,
            dir: self.path.join(format!("venv-{}", engine.name())),
        }
    }

    /// The jar of streamlab's Java helper classes for Flink (`<cache>/java/streamlab-flink-helpers.jar`),
    /// built by `streamlab engines install`: what the Flink job is given with `--jar`.
    pub fn flink_helper_jar(&self) -> PathBuf {
        HelperJar::in_cache(self).jar()
    }

    /// The log of the last `streamlab engines install`: every child's output, step by step.
    pub fn install_log(&self) -> PathBuf {
        self.path.join("install.log")
    }

    /// The directory itself.
    pub fn as_path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn engines_dir_var_wins_over_xdg_and_home() {
        let dir = CacheDir::resolve(env(&[
            ("STREAMLAB_ENGINES_DIR", "/opt/engines"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(dir, CacheDir::at("/opt/engines"));
    }

    #[test]
    fn xdg_cache_home_is_used_when_the_variable_is_unset_or_empty() {
        let dir = CacheDir::resolve(env(&[
            ("STREAMLAB_ENGINES_DIR", ""),
            ("XDG_CACHE_HOME", "/x/cache"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(dir.path, PathBuf::from("/x/cache/streamlab/engines"));
        assert_eq!(dir.origin, CacheOrigin::XdgCacheHome);
    }

    #[test]
    fn home_is_the_fallback_and_a_relative_xdg_cache_home_is_ignored() {
        let dir = CacheDir::resolve(env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")])).unwrap();
        assert_eq!(dir.path, PathBuf::from("/home/u/.cache/streamlab/engines"));
        assert_eq!(dir.origin, CacheOrigin::Home);
    }

    #[test]
    fn a_relative_engines_dir_is_made_absolute() {
        let dir = CacheDir::resolve(env(&[("STREAMLAB_ENGINES_DIR", "rel/engines")])).unwrap();
        assert!(dir.path.is_absolute());
        assert!(dir.path.ends_with("rel/engines"));
    }

    #[test]
    fn no_variable_at_all_is_an_error_naming_the_variable() {
        let err = CacheDir::resolve(env(&[])).unwrap_err();
        assert!(err.to_string().contains("STREAMLAB_ENGINES_DIR"), "{err}");
    }

    #[test]
    fn each_engine_has_its_own_venv() {
        let dir = CacheDir::at("/c");
        assert_eq!(dir.venv(PythonEngine::Spark).dir, PathBuf::from("/c/venv-spark"));
        assert_eq!(dir.venv(PythonEngine::Flink).dir, PathBuf::from("/c/venv-flink"));
    }

    #[test]
    fn the_flink_helper_jar_lives_under_java() {
        assert_eq!(
            CacheDir::at("/c").flink_helper_jar(),
            PathBuf::from("/c/java/streamlab-flink-helpers.jar")
        );
    }
}
