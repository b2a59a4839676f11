//! The checkpoint manifest: `chk-<id>/MANIFEST`, the one file that says what a checkpoint is.
//!
//! A checkpoint exists exactly when its manifest does. Everything it lists (runs, changelog
//! segments in the checkpoint root's `shared/` area) is written and synced *before* the
//! manifest, and the manifest is written as `MANIFEST.tmp` and renamed, so a crash mid-
//! checkpoint leaves no manifest and the checkpoint is simply absent. Files are listed by path
//! relative to the checkpoint root, so a checkpoint directory can be moved as a whole.
//!
//! # Format (version 1): UTF-8 text, one record per line
//!
//! ```text
//! STREAMLAB-LSM-MANIFEST 1
//! checkpoint <id>
//! watermark <i64 | none>
//! next-run-id <n>
//! run <run-id> <bytes> <relative path>          (zero or more, oldest run first)
//! changelog <bytes> <relative path>             (zero or more, in replay order)
//! crc32 <8 lowercase hex digits>                (CRC-32 of every byte before this line)
//! ```
//!
//! Text because people open checkpoints when something went wrong; the trailing checksum
//! because a truncated text file can still look plausible. The listed sizes let restore refuse
//! a shared file that was truncated or replaced since the checkpoint was taken.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Component, Path};

use super::error::{corrupt, io_at, Result, StateError};
use crate::checkpoint::crc32;
use crate::time::EventTime;

/// The manifest's file name inside `chk-<id>/`.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
/// The first word of a manifest.
const MANIFEST_MAGIC: &str = "STREAMLAB-LSM-MANIFEST";
/// The manifest format version this build reads and writes.
pub(crate) const MANIFEST_VERSION: u32 = 1;

/// A file in the checkpoint root's shared area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedFile {
    /// Its path relative to the checkpoint root.
    pub(crate) rel_path: String,
    /// Its length.
    pub(crate) bytes: u64,
}

/// A run in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedRun {
    /// The id the run has in the store.
    pub(crate) run_id: u64,
    /// Its file.
    pub(crate) file: SharedFile,
}

/// The contents of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) checkpoint_id: u64,
    pub(crate) watermark: Option<EventTime>,
    pub(crate) next_run_id: u64,
    /// Oldest first.
    pub(crate) runs: Vec<SharedRun>,
    /// In replay order.
    pub(crate) changelog: Vec<SharedFile>,
}

impl Manifest {
    fn encode(&self) -> String {
        let mut s = format!(
            "{MANIFEST_MAGIC} {MANIFEST_VERSION}\ncheckpoint {}\n",
            self.checkpoint_id
        );
        match self.watermark {
            Some(wm) => s.push_str(&format!("watermark {wm}\n")),
            None => s.push_str("watermark none\n"),
        }
        s.push_str(&format!("next-run-id {}\n", self.next_run_id));
        for r in &self.runs {
            s.push_str(&format!("run {} {} {}\n", r.run_id, r.file.bytes, r.file.rel_path));
        }
        for c in &self.changelog {
            s.push_str(&format!("changelog {} {}\n", c.bytes, c.rel_path));
        }
        let crc = crc32(s.as_bytes());
        s.push_str(&format!("crc32 {crc:08x}\n"));
        s
    }

    /// Writes the manifest atomically (tmp + rename); returns its length.
    pub(crate) fn write(&self, path: &Path, sync: bool) -> Result<u64> {
        let text = self.encode();
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io_at(&tmp))?;
        file.write_all(text.as_bytes()).map_err(io_at(&tmp))?;
        if sync {
            file.sync_all().map_err(io_at(&tmp))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(io_at(path))?;
        Ok(text.len() as u64)
    }

    /// Reads and checks a manifest.
    pub(crate) fn read(path: &Path) -> Result<Manifest> {
        let bytes = fs::read(path).map_err(io_at(path))?;
        let text = String::from_utf8(bytes).map_err(|_| corrupt(path, "not UTF-8 text"))?;
        let first = text.lines().next().unwrap_or("");
        let Some(version) = first
            .strip_prefix(MANIFEST_MAGIC)
            .and_then(|rest| rest.strip_prefix(' '))
        else {
            return Err(StateError::BadMagic {
                path: path.to_path_buf(),
                kind: "manifest",
            });
        };
        let version: u32 = version
            .trim()
            .parse()
            .map_err(|_| corrupt(path, format!("bad version {version:?}")))?;
        if version != MANIFEST_VERSION {
            return Err(StateError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: MANIFEST_VERSION,
            });
        }
        let trailer_at = text
            .rfind("\ncrc32 ")
            .ok_or_else(|| corrupt(path, "truncated: the closing crc32 line is missing"))?
            + 1;
        let (body, trailer) = text.split_at(trailer_at);
        let recorded = trailer
            .strip_prefix("crc32 ")
            .and_then(|t| t.strip_suffix('\n'))
            .filter(|t| t.len() == 8)
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or_else(|| corrupt(path, "truncated: the closing crc32 line is incomplete"))?;
        if crc32(body.as_bytes()) != recorded {
            return Err(corrupt(path, "checksum mismatch"));
        }
        Self::parse(path, body)
    }

    fn parse(path: &Path, body: &str) -> Result<Manifest> {
        let mut m = Manifest {
            checkpoint_id: 0,
            watermark: None,
            next_run_id: 0,
            runs: Vec::new(),
            changelog: Vec::new(),
        };
        let (mut seen_id, mut seen_wm, mut seen_next) = (false, false, false);
        for (n, line) in body.lines().enumerate().skip(1) {
            let bad = |what: &str| corrupt(path, format!("line {}: {what}: {line:?}", n + 1));
            let mut words = line.splitn(2, ' ');
            let (word, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let int = |s: &str| s.parse::<u64>().map_err(|_| bad("expected an unsigned integer"));
            match word {
                "checkpoint" => (m.checkpoint_id, seen_id) = (int(rest)?, true),
                "next-run-id" => (m.next_run_id, seen_next) = (int(rest)?, true),
                "watermark" => {
                    m.watermark = match rest {
                        "none" => None,
                        wm => Some(wm.parse().map_err(|_| bad("expected an integer or `none`"))?),
                    };
                    seen_wm = true;
                }
                "run" => {
                    let mut f = rest.splitn(3, ' ');
                    let (id, bytes, rel) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
                    let file = SharedFile {
                        rel_path: checked_rel(rel).ok_or_else(|| bad("bad relative path"))?,
                        bytes: int(bytes)?,
                    };
                    m.runs.push(SharedRun { run_id: int(id)?, file });
                }
                "changelog" => {
                    let mut f = rest.splitn(2, ' ');
                    let (bytes, rel) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                    let rel_path = checked_rel(rel).ok_or_else(|| bad("bad relative path"))?;
                    m.changelog.push(SharedFile {
                        rel_path,
                        bytes: int(bytes)?,
                    });
                }
                _ => return Err(bad("unknown record")),
            }
        }
        if !(seen_id && seen_wm && seen_next) {
            return Err(corrupt(path, "a checkpoint, watermark or next-run-id line is missing"));
        }
        Ok(m)
    }
}

/// `rel` if it is a relative path that stays inside the checkpoint root.
fn checked_rel(rel: &str) -> Option<String> {
    let p = Path::new(rel);
    (!rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))).then(|| rel.to_string())
}
