//! Sorted runs: the immutable files of the LSM tree (`run-<id>.sst`).
//!
//! A run is written once, front to back, by a [`RunWriter`] (from a memtable flush or a
//! merge), renamed into place, and never modified again: only deleted when a merge replaces
//! it. That immutability is what lets a checkpoint hard-link or reference a run instead of
//! copying it, and lets a merge read its inputs while readers keep using them.
//!
//! # File format (version 1)
//!
//! ```text
//! file   := block* | index | footer
//! block  := entry*                      (see `format.rs`; ~block_bytes each, keys ascending)
//! index  := block_count: u32 | handle* | last_key_len: u32 | last_key
//! handle := offset: u64 | len: u32 | crc32(block): u32 | entries: u32 | first_key_len: u32 | first_key
//! footer := index_offset: u64 | index_len: u64 | entries: u64 | tombstones: u64
//!           | min_expiry: i64 (i64::MAX = no expiring put) | crc32(index): u32
//!           | crc32(footer bytes 0..44): u32 | version: u32 = 1 | magic: b"SLABRUN\0"
//! ```
//!
//! All integers little-endian; the footer is a fixed 60 bytes at the end, so a reader finds
//! the index without scanning (as in RocksDB's block-based tables and Parquet). Keys are
//! strictly ascending across the whole file: a run holds at most one version per key.
//!
//! Opening a run reads the footer and the index only and keeps the index in memory; a point
//! read binary-searches the block first keys and reads one block. Checks, in order: length ≥
//! footer, magic, version (a later version may lay the footer out differently, so its
//! checksum is meaningless to us), footer checksum, index bounds, index checksum; every block
//! read checks the block's checksum. [`SortedRun::verify`] reads every block, for restores.
//! The footer's tombstone count and minimum expiry let compaction find runs worth rewriting
//! without reading them.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::{corrupt, io_at, Result, StateError};
use super::format::{decode_entry, encode_entry, ByteReader, Slot};
use crate::checkpoint::crc32;
use crate::time::EventTime;

/// The last eight bytes of every run file.
pub(crate) const RUN_MAGIC: [u8; 8] = *b"SLABRUN\0";
/// The run format version this build reads and writes.
pub(crate) const RUN_VERSION: u32 = 1;
/// The fixed length of the footer.
pub(crate) const FOOTER_LEN: u64 = 60;

/// The working-directory file name of run `id`.
pub(crate) fn run_file_name(id: u64) -> String {
    format!("run-{id}.sst")
}

/// Where one block lives and how to check it.
#[derive(Debug)]
struct BlockHandle {
    first_key: Vec<u8>,
    offset: u64,
    len: u32,
    crc: u32,
    entries: u32,
}

/// An open, immutable sorted run with its block index in memory.
#[derive(Debug)]
pub(crate) struct SortedRun {
    /// The run's id (unique within a store's lifetime, increasing with age of creation).
    pub(crate) id: u64,
    /// Its file.
    pub(crate) path: PathBuf,
    file: File,
    blocks: Vec<BlockHandle>,
    last_key: Vec<u8>,
    /// Entries (versions) in the run.
    pub(crate) entries: u64,
    /// How many of them are tombstones.
    pub(crate) tombstones: u64,
    /// The earliest expiry of any put in the run.
    pub(crate) min_expiry: Option<EventTime>,
    /// The file's length.
    pub(crate) file_bytes: u64,
}

impl SortedRun {
    /// Opens a run file, checking its footer and index (not yet its blocks).
    pub(crate) fn open(path: &Path, id: u64) -> Result<SortedRun> {
        let mut file = File::open(path).map_err(io_at(path))?;
        let file_bytes = file.metadata().map_err(io_at(path))?.len();
        if file_bytes < FOOTER_LEN {
            return Err(corrupt(
                path,
                format!("truncated: {file_bytes} bytes, shorter than the {FOOTER_LEN}-byte footer"),
            ));
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        file.seek(SeekFrom::Start(file_bytes - FOOTER_LEN))
            .map_err(io_at(path))?;
        file.read_exact(&mut footer).map_err(io_at(path))?;
        if footer[52..60] != RUN_MAGIC {
            return Err(StateError::BadMagic {
                path: path.to_path_buf(),
                kind: "sorted run",
            });
        }
        let version = u32::from_le_bytes(footer[48..52].try_into().expect("4 bytes"));
        if version != RUN_VERSION {
            return Err(StateError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: RUN_VERSION,
            });
        }
        let footer_crc = u32::from_le_bytes(footer[44..48].try_into().expect("4 bytes"));
        if crc32(&footer[..44]) != footer_crc {
            return Err(corrupt(path, "footer checksum mismatch"));
        }
        let mut r = ByteReader::new(&footer[..44]);
        let fields = (|| -> std::result::Result<_, String> {
            Ok((r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.i64()?, r.u32()?))
        })();
        let (index_offset, index_len, entries, tombstones, min_expiry, index_crc) =
            fields.map_err(|e| corrupt(path, e))?;
        if index_offset.checked_add(index_len) != Some(file_bytes - FOOTER_LEN) {
            return Err(corrupt(
                path,
                format!(
                    "index at offset {index_offset} of {index_len} bytes does not end at the footer \
                     ({file_bytes} bytes in file): truncated or extended"
                ),
            ));
        }
        let mut index = vec![0u8; index_len as usize];
        file.seek(SeekFrom::Start(index_offset)).map_err(io_at(path))?;
        file.read_exact(&mut index).map_err(io_at(path))?;
        if crc32(&index) != index_crc {
            return Err(corrupt(path, "index checksum mismatch"));
        }
        let (blocks, last_key) =
            decode_index(&index, index_offset).map_err(|e| corrupt(path, format!("index: {e}")))?;
        Ok(SortedRun {
            id,
            path: path.to_path_buf(),
            file,
            blocks,
            last_key,
            entries,
            tombstones,
            min_expiry: (min_expiry != i64::MAX).then_some(min_expiry),
            file_bytes,
        })
    }

    /// The number of blocks.
    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Whether `key` lies between the run's first and last key (it may still be absent).
    pub(crate) fn covers(&self, key: &[u8]) -> bool {
        self.blocks.first().is_some_and(|b| b.first_key.as_slice() <= key) && key <= self.last_key.as_slice()
    }

    /// The run's version of `key`, reading at most one block.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Slot>> {
        if !self.covers(key) {
            return Ok(None);
        }
        let block = self.blocks.partition_point(|b| b.first_key.as_slice() <= key) - 1;
        let entries = self.read_block(block)?;
        Ok(entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .map(|i| entries[i].1.clone()))
    }

    /// Reads, checks and decodes block `i`.
    pub(crate) fn read_block(&self, i: usize) -> Result<Vec<(Vec<u8>, Slot)>> {
        let handle = &self.blocks[i];
        let mut buf = vec![0u8; handle.len as usize];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(handle.offset)).map_err(io_at(&self.path))?;
        file.read_exact(&mut buf).map_err(io_at(&self.path))?;
        if crc32(&buf) != handle.crc {
            return Err(corrupt(
                &self.path,
                format!("block {i} at offset {} fails its checksum", handle.offset),
            ));
        }
        let mut r = ByteReader::new(&buf);
        let mut out: Vec<(Vec<u8>, Slot)> = Vec::with_capacity(handle.entries as usize);
        while !r.is_empty() {
            let (key, slot) = decode_entry(&mut r).map_err(|e| corrupt(&self.path, format!("block {i}: {e}")))?;
            if out.last().is_some_and(|(prev, _)| *prev >= key) {
                return Err(corrupt(&self.path, format!("block {i}: keys not strictly ascending")));
            }
            out.push((key, slot));
        }
        if out.len() != handle.entries as usize || out.first().map(|(k, _)| k) != Some(&handle.first_key) {
            return Err(corrupt(&self.path, format!("block {i} does not match its index entry")));
        }
        Ok(out)
    }

    /// Reads every block and checks it, its order against its neighbours, and the totals the
    /// footer records: a run restored from a checkpoint is used only if this passes.
    pub(crate) fn verify(&self) -> Result<()> {
        let (mut entries, mut tombstones) = (0u64, 0u64);
        let mut last: Option<Vec<u8>> = None;
        for i in 0..self.blocks.len() {
            let block = self.read_block(i)?;
            if let (Some(prev), Some((first, _))) = (&last, block.first()) {
                if prev >= first {
                    return Err(corrupt(
                        &self.path,
                        format!("block {i} starts at or before the end of block {}", i - 1),
                    ));
                }
            }
            entries += block.len() as u64;
            tombstones += block.iter().filter(|(_, s)| matches!(s, Slot::Tombstone)).count() as u64;
            last = block.last().map(|(k, _)| k.clone());
        }
        if entries != self.entries || tombstones != self.tombstones || last.as_ref() != Some(&self.last_key) {
            return Err(corrupt(
                &self.path,
                "blocks do not match the footer's entry counts or the index's last key",
            ));
        }
        Ok(())
    }
}

fn decode_index(buf: &[u8], index_offset: u64) -> std::result::Result<(Vec<BlockHandle>, Vec<u8>), String> {
    let mut r = ByteReader::new(buf);
    let count = r.u32()?;
    let mut blocks = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut expected_offset = 0u64;
    for i in 0..count {
        let offset = r.u64()?;
        let len = r.u32()?;
        let crc = r.u32()?;
        let entries = r.u32()?;
        let key_len = r.u32()? as usize;
        let first_key = r.bytes(key_len)?.to_vec();
        if offset != expected_offset || offset + u64::from(len) > index_offset {
            return Err(format!("block {i} at offset {offset} ({len} bytes) is out of place"));
        }
        if blocks.last().is_some_and(|b: &BlockHandle| b.first_key >= first_key) {
            return Err(format!("block {i}: first keys not ascending"));
        }
        expected_offset = offset + u64::from(len);
        blocks.push(BlockHandle {
            first_key,
            offset,
            len,
            crc,
            entries,
        });
    }
    let key_len = r.u32()? as usize;
    let last_key = r.bytes(key_len)?.to_vec();
    if !r.is_empty() || expected_offset != index_offset || blocks.is_empty() {
        return Err("blocks do not tile the data section".to_string());
    }
    Ok((blocks, last_key))
}

/// Writes a run front to back; keys must be added in strictly ascending order.
pub(crate) struct RunWriter {
    id: u64,
    tmp_path: PathBuf,
    final_path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    block_bytes: usize,
    block: Vec<u8>,
    block_first_key: Vec<u8>,
    block_entries: u32,
    blocks: Vec<BlockHandle>,
    last_key: Vec<u8>,
    entries: u64,
    tombstones: u64,
    min_expiry: i64,
}

impl std::fmt::Debug for RunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunWriter")
            .field("path", &self.tmp_path)
            .field("entries", &self.entries)
            .finish()
    }
}

impl RunWriter {
    /// Starts `run-<id>.sst` in `dir` (written as `.tmp` and renamed by [`RunWriter::finish`],
    /// so a run file that exists under its final name is complete).
    pub(crate) fn create(dir: &Path, id: u64, block_bytes: usize) -> Result<RunWriter> {
        let final_path = dir.join(run_file_name(id));
        let tmp_path = dir.join(format!("{}.tmp", run_file_name(id)));
        let file = File::create(&tmp_path).map_err(io_at(&tmp_path))?;
        Ok(RunWriter {
            id,
            tmp_path,
            final_path,
            out: BufWriter::with_capacity(64 * 1024, file),
            offset: 0,
            block_bytes,
            block: Vec::with_capacity(block_bytes + 64),
            block_first_key: Vec::new(),
            block_entries: 0,
            blocks: Vec::new(),
            last_key: Vec::new(),
            entries: 0,
            tombstones: 0,
            min_expiry: i64::MAX,
        })
    }

    /// Appends one entry.
    pub(crate) fn add(&mut self, key: &[u8], slot: &Slot) -> Result<()> {
        if self.entries > 0 && key <= self.last_key.as_slice() {
            return Err(StateError::Internal(format!(
                "run {} written with keys out of order",
                self.id
            )));
        }
        if self.block_entries == 0 {
            self.block_first_key.clear();
            self.block_first_key.extend_from_slice(key);
        }
        encode_entry(key, slot, &mut self.block);
        self.block_entries += 1;
        self.entries += 1;
        match slot {
            Slot::Tombstone => self.tombstones += 1,
            Slot::Put { expiry: Some(e), .. } => self.min_expiry = self.min_expiry.min(*e),
            Slot::Put { expiry: None, .. } => {}
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        if self.block.len() >= self.block_bytes {
            self.finish_block()?;
        }
        Ok(())
    }

    fn finish_block(&mut self) -> Result<()> {
        self.out.write_all(&self.block).map_err(io_at(&self.tmp_path))?;
        self.blocks.push(BlockHandle {
            first_key: std::mem::take(&mut self.block_first_key),
            offset: self.offset,
            len: self.block.len() as u32,
            crc: crc32(&self.block),
            entries: self.block_entries,
        });
        self.offset += self.block.len() as u64;
        self.block.clear();
        self.block_entries = 0;
        Ok(())
    }

    /// Writes the index and footer, renames the file into place and opens it; `None` (and no
    /// file) if no entry was added.
    pub(crate) fn finish(mut self) -> Result<Option<SortedRun>> {
        if self.entries == 0 {
            drop(self.out);
            fs::remove_file(&self.tmp_path).map_err(io_at(&self.tmp_path))?;
            return Ok(None);
        }
        if self.block_entries > 0 {
            self.finish_block()?;
        }
        let mut index = Vec::new();
        index.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for b in &self.blocks {
            index.extend_from_slice(&b.offset.to_le_bytes());
            index.extend_from_slice(&b.len.to_le_bytes());
            index.extend_from_slice(&b.crc.to_le_bytes());
            index.extend_from_slice(&b.entries.to_le_bytes());
            index.extend_from_slice(&(b.first_key.len() as u32).to_le_bytes());
            index.extend_from_slice(&b.first_key);
        }
        index.extend_from_slice(&(self.last_key.len() as u32).to_le_bytes());
        index.extend_from_slice(&self.last_key);
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&self.offset.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
        footer.extend_from_slice(&self.entries.to_le_bytes());
        footer.extend_from_slice(&self.tombstones.to_le_bytes());
        footer.extend_from_slice(&self.min_expiry.to_le_bytes());
        footer.extend_from_slice(&crc32(&index).to_le_bytes());
        let footer_crc = crc32(&footer);
        footer.extend_from_slice(&footer_crc.to_le_bytes());
        footer.extend_from_slice(&RUN_VERSION.to_le_bytes());
        footer.extend_from_slice(&RUN_MAGIC);
        debug_assert_eq!(footer.len() as u64, FOOTER_LEN);
        self.out.write_all(&index).map_err(io_at(&self.tmp_path))?;
        self.out.write_all(&footer).map_err(io_at(&self.tmp_path))?;
        self.out.flush().map_err(io_at(&self.tmp_path))?;
        drop(self.out);
        fs::rename(&self.tmp_path, &self.final_path).map_err(io_at(&self.final_path))?;
        SortedRun::open(&self.final_path, self.id).map(Some)
    }
}
