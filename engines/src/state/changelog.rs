//! The changelog of changelog mode (Flink's changelog state backend, FLIP-158).
//!
//! Why: with the plain backend a checkpoint must flush the memtable and upload every run
//! created since the previous checkpoint, and compaction keeps creating new runs, so the
//! bytes per checkpoint track the compaction rate, not the update rate. In changelog mode
//! every put and delete is also appended to a log; a checkpoint uploads only the log's tail
//! since the previous checkpoint, plus references to the last *materialization* (a full,
//! incremental upload of the runs, taken when the log since it has grown past a threshold).
//! Restore = materialized runs + replay of the log segments, in order.
//!
//! # File format (version 1), for the working log and for uploaded segments alike
//!
//! ```text
//! file   := magic: b"SLABCLOG" | version: u32 LE = 1 | record*
//! record := payload_len: u32 LE | crc32(payload): u32 LE | payload
//! payload:= one entry, encoded as in `format.rs` (a tombstone is a delete)
//! ```
//!
//! A record is self-checking, so a torn tail (a crash mid-append, a truncated upload) is
//! detected at the exact record and refused, never half-applied.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::{corrupt, io_at, Result, StateError};
use super::format::{decode_entry, encode_entry, ByteReader, Slot};
use crate::checkpoint::crc32;

/// The first eight bytes of a changelog file.
pub(crate) const CHANGELOG_MAGIC: [u8; 8] = *b"SLABCLOG";
/// The changelog format version this build reads and writes.
pub(crate) const CHANGELOG_VERSION: u32 = 1;
/// Magic plus version.
pub(crate) const HEADER_LEN: u64 = 12;
/// The working log's file name in the store directory.
pub(crate) const CHANGELOG_FILE: &str = "changelog.log";

fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&CHANGELOG_MAGIC);
    h[8..].copy_from_slice(&CHANGELOG_VERSION.to_le_bytes());
    h
}

/// The working changelog, appended to on every write.
pub(crate) struct ChangelogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    scratch: Vec<u8>,
}

impl ChangelogWriter {
    /// Creates (or empties) the log at `path`.
    pub(crate) fn create(path: &Path) -> Result<ChangelogWriter> {
        let file = File::create(path).map_err(io_at(path))?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&header()).map_err(io_at(path))?;
        Ok(ChangelogWriter {
            path: path.to_path_buf(),
            out,
            len: HEADER_LEN,
            scratch: Vec::new(),
        })
    }

    /// Appends one change; returns the bytes appended.
    pub(crate) fn append(&mut self, key: &[u8], slot: &Slot) -> Result<u64> {
        self.scratch.clear();
        encode_entry(key, slot, &mut self.scratch);
        self.out
            .write_all(&(self.scratch.len() as u32).to_le_bytes())
            .map_err(io_at(&self.path))?;
        self.out
            .write_all(&crc32(&self.scratch).to_le_bytes())
            .map_err(io_at(&self.path))?;
        self.out.write_all(&self.scratch).map_err(io_at(&self.path))?;
        let n = 8 + self.scratch.len() as u64;
        self.len += n;
        Ok(n)
    }

    /// The log's length, header included.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The records from byte `from` (a record boundary) to the end.
    pub(crate) fn tail(&mut self, from: u64) -> Result<Vec<u8>> {
        self.out.flush().map_err(io_at(&self.path))?;
        let mut file = File::open(&self.path).map_err(io_at(&self.path))?;
        file.seek(SeekFrom::Start(from)).map_err(io_at(&self.path))?;
        let mut buf = Vec::with_capacity(self.len.saturating_sub(from) as usize);
        file.read_to_end(&mut buf).map_err(io_at(&self.path))?;
        if buf.len() as u64 != self.len - from {
            return Err(StateError::Internal(format!(
                "{} is not as long as written",
                self.path.display()
            )));
        }
        Ok(buf)
    }

    /// Empties the log (after a materialization made its records redundant).
    pub(crate) fn reset(&mut self) -> Result<()> {
        // Flush the old buffer first: dropping it after the truncation would write its bytes
        // back at their old offsets.
        self.out.flush().map_err(io_at(&self.path))?;
        *self = ChangelogWriter::create(&self.path.clone())?;
        Ok(())
    }
}

/// Writes an uploaded segment: the header and `records`; returns its length.
pub(crate) fn write_segment(path: &Path, records: &[u8], sync: bool) -> Result<u64> {
    let mut file = File::create(path).map_err(io_at(path))?;
    file.write_all(&header()).map_err(io_at(path))?;
    file.write_all(records).map_err(io_at(path))?;
    if sync {
        file.sync_all().map_err(io_at(path))?;
    }
    Ok(HEADER_LEN + records.len() as u64)
}

/// Reads and checks a segment; its changes in log order.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<(Vec<u8>, Slot)>> {
    let buf = fs::read(path).map_err(io_at(path))?;
    if buf.len() < HEADER_LEN as usize || buf[..8] != CHANGELOG_MAGIC {
        return Err(StateError::BadMagic {
            path: path.to_path_buf(),
            kind: "changelog",
        });
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
    if version != CHANGELOG_VERSION {
        return Err(StateError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: CHANGELOG_VERSION,
        });
    }
    let mut r = ByteReader::new(&buf[HEADER_LEN as usize..]);
    let mut out = Vec::new();
    let mut offset = HEADER_LEN;
    while !r.is_empty() {
        let at = |e: String| corrupt(path, format!("record at offset {offset}: {e}"));
        let len = r.u32().map_err(at)?;
        let crc = r.u32().map_err(at)?;
        let payload = r.bytes(len as usize).map_err(at)?;
        if crc32(payload) != crc {
            return Err(at("checksum mismatch".to_string()));
        }
        let mut pr = ByteReader::new(payload);
        let entry = decode_entry(&mut pr).map_err(at)?;
        if !pr.is_empty() {
            return Err(at("trailing bytes after the entry".to_string()));
        }
        out.push(entry);
        offset += 8 + u64::from(len);
    }
    Ok(out)
}
