//! The framing of a state file (a window operator's delta or snapshot, a keyed stage's state), so that truncation and
//! damage are detected before a byte of it is decoded:
//!
//! ```text
//! magic: b"SLSTATE1" | body_len: u64 LE | fnv1a(body): u64 LE | body
//! ```

use std::fs;
use std::path::Path;

use super::checksum::fnv1a;
use super::error::{io, refused, Result};
use crate::operators::window::StateDelta;

/// Magic bytes and length in front of a state file, so truncation is detected.
const MAGIC: &[u8; 8] = b"SLSTATE1";

/// Frames a state file: magic, length and checksum, then the body.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads a framed state file, refusing a damaged one.
pub(crate) fn read_delta(path: &Path) -> Result<StateDelta> {
    let body = read_framed(path)?;
    StateDelta::decode(&body).ok_or_else(|| damaged(path, "undecodable body"))
}

/// Reads the body of a framed state file (its length and checksum verified), refusing a
/// damaged one; what the body encodes is the caller's to decode.
pub(crate) fn read_framed(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = fs::read(path).map_err(io(path))?;
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(damaged(path, "bad header"));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let sum = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let body = bytes.split_off(24);
    if body.len() != len {
        return Err(damaged(
            path,
            &format!("{} bytes of body, header says {len}", body.len()),
        ));
    }
    if fnv1a(&body) != sum {
        return Err(damaged(path, "checksum mismatch"));
    }
    Ok(body)
}

/// The refusal of a damaged state file.
pub(crate) fn damaged(path: &Path, what: &str) -> super::CheckpointError {
    refused(path, format!("{what}: the state file is corrupt or truncated"))
}
