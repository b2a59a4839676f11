//! Byte-level building blocks shared by sorted runs and the changelog: the entry encoding and a
//! little-endian reader. (Their checksum, CRC-32, lives in [`crate::checkpoint`].)
//!
//! One entry encoding serves both files so that a changelog record and a run entry mean the
//! same thing and are decoded by the same (tested) code:
//!
//! ```text
//! entry := key_len: u32 LE | key | tag: u8 | [expiry: i64 LE, if tag = 1] | [value_len: u32 LE | value, if tag <= 1]
//! tag   := 0 put | 1 put with expiry (event time, ms) | 2 tombstone
//! ```

use crate::time::EventTime;

/// Entry tag: a put without expiry.
const TAG_PUT: u8 = 0;
/// Entry tag: a put that expires when the watermark reaches its expiry.
const TAG_PUT_EXPIRING: u8 = 1;
/// Entry tag: a delete.
const TAG_TOMBSTONE: u8 = 2;

/// The version of a key: a value (perhaps expiring) or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A value, visible while the watermark is below `expiry` (always, if `None`).
    Put {
        /// The value bytes.
        value: Vec<u8>,
        /// Event time from which the value is expired.
        expiry: Option<EventTime>,
    },
    /// A delete: hides every older version of the key.
    Tombstone,
}

impl Slot {
    /// Whether this is a put whose expiry the watermark has reached.
    pub(crate) fn is_expired(&self, watermark: Option<EventTime>) -> bool {
        match (self, watermark) {
            (
                Slot::Put {
                    expiry: Some(expiry), ..
                },
                Some(wm),
            ) => *expiry <= wm,
            _ => false,
        }
    }

    /// The value a reader sees: `None` for a tombstone or an expired put.
    pub(crate) fn visible(&self, watermark: Option<EventTime>) -> Option<&[u8]> {
        match self {
            Slot::Put { value, .. } if !self.is_expired(watermark) => Some(value),
            _ => None,
        }
    }

    /// What a compaction (or flush) keeps of this version. An expired put is, for readers,
    /// a tombstone, so it is kept as one — dropping it outright would let an older version of
    /// the key resurface — unless the output is the bottom run, where nothing older exists.
    pub(crate) fn retain(&self, watermark: Option<EventTime>, bottom: bool) -> Retain {
        let dead = matches!(self, Slot::Tombstone) || self.is_expired(watermark);
        match (dead, bottom) {
            (false, _) => Retain::Keep,
            (true, true) => Retain::Drop,
            (true, false) => Retain::Tombstone,
        }
    }
}

/// The fate of a version when it is rewritten by a flush or a merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retain {
    /// Write it as it is.
    Keep,
    /// Write a tombstone in its place (it is dead but still shadows older versions).
    Tombstone,
    /// Leave it out (dead, and nothing older can resurface).
    Drop,
}

/// The encoded length of an entry, in bytes.
pub(crate) fn encoded_len(key: &[u8], slot: &Slot) -> usize {
    4 + key.len()
        + 1
        + match slot {
            Slot::Put { value, expiry } => expiry.map_or(0, |_| 8) + 4 + value.len(),
            Slot::Tombstone => 0,
        }
}

/// Appends the encoding of an entry to `out`. Lengths must fit in `u32` (checked at `put`).
pub(crate) fn encode_entry(key: &[u8], slot: &Slot, out: &mut Vec<u8>) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    match slot {
        Slot::Put { value, expiry } => {
            match expiry {
                None => out.push(TAG_PUT),
                Some(expiry) => {
                    out.push(TAG_PUT_EXPIRING);
                    out.extend_from_slice(&expiry.to_le_bytes());
                }
            }
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        Slot::Tombstone => out.push(TAG_TOMBSTONE),
    }
}

/// Decodes one entry from the reader; `Err` says what was malformed.
pub(crate) fn decode_entry(r: &mut ByteReader<'_>) -> std::result::Result<(Vec<u8>, Slot), String> {
    let key_len = r.u32()? as usize;
    let key = r.bytes(key_len)?.to_vec();
    let slot = match r.u8()? {
        TAG_TOMBSTONE => Slot::Tombstone,
        tag @ (TAG_PUT | TAG_PUT_EXPIRING) => {
            let expiry = if tag == TAG_PUT_EXPIRING { Some(r.i64()?) } else { None };
            let value_len = r.u32()? as usize;
            Slot::Put {
                value: r.bytes(value_len)?.to_vec(),
                expiry,
            }
        }
        tag => return Err(format!("unknown entry tag {tag} at offset {}", r.pos - 1)),
    };
    Ok((key, slot))
}

/// A cursor over a byte slice reading little-endian integers; every read is bounds-checked
/// and reports the offset it failed at, so truncation is an error, never a panic.
pub(crate) struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "truncated: needs {n} bytes at offset {}, only {} left",
                    self.pos,
                    self.buf.len() - self.pos
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A `u8`.
    pub(crate) fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian `i64`.
    pub(crate) fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}
