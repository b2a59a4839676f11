//! What both engines and the state store share about durable state: the checksums, the framing
//! of a state file, and the error a refused checkpoint directory is reported with.
//!
//! Why a module of its own: the micro-batch checkpoint directory, the per-record checkpoint
//! files and the LSM store's runs, changelog and manifests are written by different layers, but
//! they protect their bytes the same way. Keeping the codec here means no engine imports another
//! engine's files to read a checkpoint, and each checksum is written once.
//!
//! Invariants: the byte formats are fixed (a framed state file is `SLSTATE1`, body length,
//! FNV-1a of the body, then the body; the state store's files carry CRC-32 IEEE); nothing read
//! back is used before its length and checksum are verified, and a damaged or foreign file is a
//! [`CheckpointError::Refused`] naming the file, never a panic.

mod checksum;
mod error;
mod frame;
mod write_behind;

pub use checksum::{crc32, fnv1a};
pub use error::CheckpointError;
pub(crate) use error::{io, refused, Result};
pub(crate) use frame::{damaged, frame, read_delta, read_framed};
pub use write_behind::{write_atomically, WriteBehind};
