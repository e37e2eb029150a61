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
    if chunk_size == 0 {
        return Err(Malformed::new("integrity table", "chunk size 0"));
    }
    Ok(chunk_size)
}

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
    let count32 = u32::try_from(count).map_err(|_| {
        Error::from_malformed(
            path,
            Malformed::new(
                "integrity table",
                format!("{count} chunks overflow the count field"),
            ),
        )
    })?;
    let mut table = Vec::with_capacity(12 + 20 * count as usize);
    table.extend_from_slice(&(12 + 20 * count32).to_le_bytes());
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
