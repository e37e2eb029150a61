//! The VHDX block allocation table: one little-endian u64 per payload block, with an entry for
//! a sector bitmap block after every `chunk_ratio` payload entries.
//!
//! An entry holds a state in bits 0..3 and the file offset in MiB in bits 20..64. The chunk
//! ratio is the number of payload blocks one 1 MiB sector bitmap block describes:
//! `2^23 * logical_sector_size / block_size`.

use reseal_nt::le;

pub const MIB: u64 = 1024 * 1024;
/// Payload blocks: absent, contents undefined, zeros, unmapped, in the file, partly in the file
/// (differencing disks, see the sector bitmap). Sector bitmap blocks use 0 (absent) and 6.
pub const NOT_PRESENT: u8 = 0;
pub const UNDEFINED: u8 = 1;
pub const ZERO: u8 = 2;
pub const UNMAPPED: u8 = 3;
pub const FULLY_PRESENT: u8 = 6;
pub const PARTIALLY_PRESENT: u8 = 7;
pub const SECTOR_BITMAP_PRESENT: u8 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatEntry(pub u64);

impl BatEntry {
    pub fn new(state: u8, file_offset: u64) -> Self {
        BatEntry((file_offset / MIB) << 20 | state as u64)
    }
    pub fn state(self) -> u8 {
        (self.0 & 7) as u8
    }
    pub fn file_offset(self) -> u64 {
        (self.0 >> 20) * MIB
    }
}

/// The shape of the BAT for a disk.
#[derive(Clone, Copy, Debug)]
pub struct BatGeometry {
    pub block_size: u64,
    pub chunk_ratio: u64,
    pub payload_blocks: u64,
    pub total_entries: u64,
}

impl BatGeometry {
    pub fn new(
        virtual_disk_size: u64,
        block_size: u32,
        logical_sector_size: u32,
        has_parent: bool,
    ) -> Self {
        let block_size = block_size as u64;
        let chunk_ratio = (1u64 << 23) * logical_sector_size as u64 / block_size;
        let payload_blocks = virtual_disk_size.div_ceil(block_size);
        let bitmap_blocks = payload_blocks.div_ceil(chunk_ratio);
        let total_entries = if has_parent {
            bitmap_blocks * (chunk_ratio + 1)
        } else {
            payload_blocks + (payload_blocks - 1) / chunk_ratio
        };
        BatGeometry {
            block_size,
            chunk_ratio,
            payload_blocks,
            total_entries,
        }
    }

    pub fn payload_index(&self, block: u64) -> usize {
        (block + block / self.chunk_ratio) as usize
    }

    pub fn bitmap_index(&self, block: u64) -> usize {
        ((block / self.chunk_ratio) * (self.chunk_ratio + 1) + self.chunk_ratio) as usize
    }
}

pub fn parse_entries(bytes: &[u8]) -> Vec<BatEntry> {
    bytes
        .chunks_exact(8)
        .map(|entry| BatEntry(le::u64_at(entry, 0).unwrap_or_default()))
        .collect()
}
