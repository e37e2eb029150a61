//! What the VHDX headers and region tables share: a signature at offset 0 and the CRC-32C of
//! the whole structure, computed with its own field zeroed, at offset 4.

use std::path::Path;

use crate::bytes::put;
use crate::crc32c::{crc32c, crc32c_with_zeroed_field};
use crate::error::{Error, Result};
use reseal_nt::le;

const CHECKSUM_OFFSET: usize = 4;

/// Checks the signature and the checksum of `bytes`; the error names `structure`.
pub fn verify(path: &Path, structure: &'static str, signature: &[u8], bytes: &[u8]) -> Result<()> {
    if &bytes[..signature.len()] != signature {
        return Err(Error::corrupt(
            path,
            structure,
            format!(
                "the signature {:?} is missing",
                String::from_utf8_lossy(signature)
            ),
        ));
    }
    let stored = le::u32_at(bytes, CHECKSUM_OFFSET).unwrap_or_default();
    let computed = crc32c_with_zeroed_field(bytes, CHECKSUM_OFFSET);
    if stored != computed {
        return Err(Error::corrupt(
            path,
            structure,
            format!("CRC-32C is {stored:#010x}, the content hashes to {computed:#010x}"),
        ));
    }
    Ok(())
}

/// Writes the signature and then the checksum over everything else in `bytes` (whose checksum
/// field is still zero).
pub fn seal(signature: &[u8], bytes: &mut [u8]) {
    put(bytes, 0, signature);
    let checksum = crc32c(bytes);
    put(bytes, CHECKSUM_OFFSET, &checksum.to_le_bytes());
}
