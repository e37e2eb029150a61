//! The optional integrity table: SHA-1s of fixed-size chunks of the file from the end of the
//! header to the end of the blob table, stored uncompressed:
//!
//! | offset | size   | field                              |
//! |-------:|-------:|------------------------------------|
//! |      0 |      4 | total size in bytes (12 + 20 × n)  |
//! |      4 |      4 | number of chunks `n`               |
//! |      8 |      4 | chunk size (wimlib and DISM: 10 MiB)|
//! |     12 | 20 × n | SHA-1 of each chunk, the last short |

use std::fs::File;
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::error::{Error, Malformed, Result};
use crate::header::HEADER_SIZE;
use crate::resource::read_at;
use reseal_nt::le;

pub const DEFAULT_CHUNK_SIZE: u32 = 10 * 1024 * 1024;

/// The chunk size of an existing table (`bytes` is the whole table).
pub fn chunk_size_of(bytes: &[u8]) -> Result<u32, Malformed> {
    if bytes.len() < 12 {
        return Err(Malformed::new(
            "integrity table",
            format!("{} bytes, shorter than its 12-byte header", bytes.len()),
        ));
    }
    let chunk_size = le::u32_at(bytes, 8).unwrap_or_default();
    // A tiny chunk size would make the new table twenty times the file and take as many reads.
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(Malformed::new(
            "integrity table",
            format!("chunk size {chunk_size}, outside {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes"),
        ));
    }
    Ok(chunk_size)
}

/// The chunk sizes an existing table's is kept within (wimlib and DISM write 10 MiB).
const MIN_CHUNK_SIZE: u32 = 4096;
const MAX_CHUNK_SIZE: u32 = 1 << 30;

/// A table covering `HEADER_SIZE..check_end` of `file`.
pub fn compute(
    file: &File,
    path: &Path,
    file_len: u64,
    check_end: u64,
    chunk_size: u32,
) -> Result<Vec<u8>> {
    let checked = check_end.checked_sub(HEADER_SIZE as u64).ok_or_else(|| {
        Error::from_malformed(
            path,
            Malformed::new(
                "integrity table",
                format!("blob table ends at {check_end}, inside the header"),
            ),
        )
    })?;
    let count = checked.div_ceil(u64::from(chunk_size));
    // The table's size field must hold 12 + 20 bytes per chunk.
    let size32 = u32::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(20)?.checked_add(12));
    let (Some(size32), Ok(count32)) = (size32, u32::try_from(count)) else {
        return Err(Error::from_malformed(
            path,
            Malformed::new(
                "integrity table",
                format!("{count} chunks of {chunk_size} bytes overflow its size field"),
            ),
        ));
    };
    let mut table = Vec::with_capacity(size32 as usize);
    table.extend_from_slice(&size32.to_le_bytes());
    table.extend_from_slice(&count32.to_le_bytes());
    table.extend_from_slice(&chunk_size.to_le_bytes());
    let mut buffer = Vec::new();
    for chunk in 0..count {
        let start = HEADER_SIZE as u64 + chunk * u64::from(chunk_size);
        let len = (check_end - start).min(u64::from(chunk_size));
        buffer.resize(len as usize, 0);
        read_at(
            file,
            path,
            file_len,
            start,
            &mut buffer,
            "integrity-checked data",
        )?;
        table.extend_from_slice(&Sha1::digest(&buffer));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_header(chunk_size: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 12];
        bytes[8..12].copy_from_slice(&chunk_size.to_le_bytes());
        bytes
    }

    /// An existing table's chunk size is kept only when it is one a writer would choose; a
    /// tiny one (a crafted file) is refused, and the commit then writes the default.
    #[test]
    fn only_sane_chunk_sizes_are_kept() {
        assert_eq!(
            chunk_size_of(&table_header(DEFAULT_CHUNK_SIZE)).unwrap(),
            DEFAULT_CHUNK_SIZE
        );
        assert_eq!(chunk_size_of(&table_header(4096)).unwrap(), 4096);
        for crafted in [0, 1, 4095, (1 << 30) + 1, u32::MAX] {
            let error = chunk_size_of(&table_header(crafted))
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("chunk size {crafted}")), "{error}");
        }
        assert!(chunk_size_of(&[0u8; 11]).is_err());
    }
}
