//! The VHDX header: two 4 KiB copies at 64 KiB and 128 KiB; the valid one with the higher
//! sequence number is current.
//!
//! Layout (little-endian): signature "head" (0), CRC-32C of the 4 KiB with the field zeroed
//! (4), sequence number (8), FileWriteGuid (16), DataWriteGuid (32), LogGuid (48: not zero
//! while the log holds entries to replay), log version (64, 0), version (66, 1), log length
//! (68), log offset (72), reserved up to 4 KiB.

use std::path::Path;

use super::checksummed;
use crate::bytes::{array, put};
use crate::error::{Error, Result};
use reseal_nt::le;
use reseal_nt::Guid;

pub const HEADER_SIZE: usize = 4096;
pub const HEADER_OFFSETS: [u64; 2] = [64 * 1024, 128 * 1024];
const SIGNATURE: &[u8; 4] = b"head";
/// The names errors give the two copies.
const STRUCTURES: [&str; 2] = ["VHDX header 1", "VHDX header 2"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub sequence_number: u64,
    pub file_write_guid: Guid,
    pub data_write_guid: Guid,
    pub log_guid: Guid,
    pub log_version: u16,
    pub version: u16,
    pub log_length: u32,
    pub log_offset: u64,
}

impl Header {
    pub fn parse(path: &Path, bytes: &[u8], which: usize) -> Result<Self> {
        let structure = STRUCTURES[which.min(1)];
        checksummed::verify(path, structure, SIGNATURE, bytes)?;
        let header = Header {
            sequence_number: le::u64_at(bytes, 8).unwrap_or_default(),
            file_write_guid: Guid(array(bytes, 16)),
            data_write_guid: Guid(array(bytes, 32)),
            log_guid: Guid(array(bytes, 48)),
            log_version: le::u16_at(bytes, 64).unwrap_or_default(),
            version: le::u16_at(bytes, 66).unwrap_or_default(),
            log_length: le::u32_at(bytes, 68).unwrap_or_default(),
            log_offset: le::u64_at(bytes, 72).unwrap_or_default(),
        };
        if header.version != 1 || header.log_version != 0 {
            return Err(Error::unsupported(
                path,
                structure,
                format!(
                    "version {} with log version {} (only 1 and 0 exist)",
                    header.version, header.log_version
                ),
            ));
        }
        Ok(header)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_SIZE];
        put(&mut bytes, 8, &self.sequence_number.to_le_bytes());
        put(&mut bytes, 16, &self.file_write_guid.0);
        put(&mut bytes, 32, &self.data_write_guid.0);
        put(&mut bytes, 48, &self.log_guid.0);
        put(&mut bytes, 64, &self.log_version.to_le_bytes());
        put(&mut bytes, 66, &self.version.to_le_bytes());
        put(&mut bytes, 68, &self.log_length.to_le_bytes());
        put(&mut bytes, 72, &self.log_offset.to_le_bytes());
        checksummed::seal(SIGNATURE, &mut bytes);
        bytes
    }
}
