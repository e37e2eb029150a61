//! The VHDX region table: two 64 KiB copies at 192 KiB and 256 KiB listing the regions of the
//! file (the BAT and the metadata region).
//!
//! Layout (little-endian): signature "regi" (0), CRC-32C of the 64 KiB with the field zeroed
//! (4), entry count (8, at most 2047), reserved (12), then 32-byte entries: region GUID (0),
//! file offset (16), length (24), flags (28: bit 0 = required).

use std::path::Path;

use super::checksummed;
use crate::bytes::{array, put};
use crate::error::{Error, Result};
use reseal_nt::le;
use reseal_nt::Guid;

pub const REGION_TABLE_SIZE: usize = 64 * 1024;
pub const REGION_TABLE_OFFSETS: [u64; 2] = [192 * 1024, 256 * 1024];
const SIGNATURE: &[u8; 4] = b"regi";
/// The names errors give the two copies.
const STRUCTURES: [&str; 2] = ["VHDX region table 1", "VHDX region table 2"];
const MAX_ENTRIES: u32 = 2047;
const REQUIRED: u32 = 1;

pub const BAT_REGION: Guid = Guid::from_fields(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
pub const METADATA_REGION: Guid = Guid::from_fields(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);

#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub guid: Guid,
    pub file_offset: u64,
    pub length: u32,
    pub required: bool,
}

pub struct RegionTable {
    pub regions: Vec<Region>,
}

impl RegionTable {
    pub fn parse(path: &Path, bytes: &[u8], which: usize) -> Result<Self> {
        let structure = STRUCTURES[which.min(1)];
        checksummed::verify(path, structure, SIGNATURE, bytes)?;
        let count = le::u32_at(bytes, 8).unwrap_or_default();
        if count > MAX_ENTRIES {
            return Err(Error::corrupt(
                path,
                structure,
                format!("{count} entries (at most {MAX_ENTRIES} fit)"),
            ));
        }
        let regions = (0..count as usize)
            .map(|index| &bytes[16 + index * 32..][..32])
            .map(|entry| Region {
                guid: Guid(array(entry, 0)),
                file_offset: le::u64_at(entry, 16).unwrap_or_default(),
                length: le::u32_at(entry, 24).unwrap_or_default(),
                required: le::u32_at(entry, 28).unwrap_or_default() & REQUIRED != 0,
            })
            .collect();
        Ok(RegionTable { regions })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; REGION_TABLE_SIZE];
        put(&mut bytes, 8, &(self.regions.len() as u32).to_le_bytes());
        for (index, region) in self.regions.iter().enumerate() {
            let entry = 16 + index * 32;
            put(&mut bytes, entry, &region.guid.0);
            put(&mut bytes, entry + 16, &region.file_offset.to_le_bytes());
            put(&mut bytes, entry + 24, &region.length.to_le_bytes());
            put(
                &mut bytes,
                entry + 28,
                &u32::from(region.required).to_le_bytes(),
            );
        }
        checksummed::seal(SIGNATURE, &mut bytes);
        bytes
    }

    pub fn find(&self, guid: Guid) -> Option<Region> {
        self.regions
            .iter()
            .copied()
            .find(|region| region.guid == guid)
    }
}
