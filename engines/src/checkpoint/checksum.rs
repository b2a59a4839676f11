//! The two checksums of streamlab's files, each written once.
//!
//! * CRC-32 (IEEE 802.3, the polynomial of zlib and PNG) protects the LSM state store's sorted
//!   runs, changelog records and manifests. It is computed here rather than pulled in as a
//!   dependency: it is twenty lines and it is the checksum the file formats document.
//! * FNV-1a (64 bit) protects framed state files (see [`frame`](super::frame)) and names a
//!   query's configuration (the checkpoint fingerprint). It tells a damaged file from a sound
//!   one; it is not a cryptographic hash.
//!
//! Both are part of on-disk formats: their results must never change.

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE) of `data`.
///
/// # Examples
///
/// ```
/// assert_eq!(streamlab_engines::checkpoint::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// FNV-1a (64 bit) of `data`.
///
/// # Examples
///
/// ```
/// assert_eq!(streamlab_engines::checkpoint::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// ```
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
