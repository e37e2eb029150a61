//! The hosted sparse extent header ("KDMV", versions 1 to 3): 512 little-endian bytes at the
//! start of every sparse extent, and its copy in a streamOptimized footer.

use std::path::Path;

use crate::bytes::{le_u32, le_u64};
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 4] = b"KDMV";
/// The magic of ESX's older COW sparse extents (vmfsSparse), refused by name.
pub const COWD_MAGIC: &[u8; 4] = b"COWD";
pub const SIZE: usize = 512;
/// A gdOffset saying the grain directory is found through the footer (streamOptimized).
pub const GD_AT_END: u64 = u64::MAX;

const FLAG_REDUNDANT_GRAIN_TABLE: u32 = 1 << 1;
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const KNOWN_FLAGS: u32 =
    1 | FLAG_REDUNDANT_GRAIN_TABLE | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;
const COMPRESSION_DEFLATE: u16 = 1;

/// Grains larger than this (in sectors) are refused: 2 MiB, well past any writer's.
const MAX_GRAIN_SECTORS: u64 = 4096;
const MAX_GTES_PER_GT: u32 = 1 << 16;
/// The largest grain directory read: 8 Mi tables, 256 TiB of disk at the usual 64 KiB grains
/// and 512-entry tables, past VMware's 62 TiB limit.
const MAX_DIRECTORY_BYTES: u64 = 32 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseHeader {
    pub version: u32,
    pub flags: u32,
    /// The extent's size in sectors.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: bool,
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// Parses and checks the 512 header bytes of `path`.
    pub fn parse(path: &Path, bytes: &[u8; SIZE]) -> Result<SparseHeader> {
        let corrupt = |reason: String| Error::corrupt(path, "VMDK sparse extent header", reason);
        if &bytes[..4] == COWD_MAGIC {
            return Err(Error::unsupported(
                path,
                "VMDK sparse extent header",
                "a COWD (ESX vmfsSparse) extent, which only ESX reads",
            ));
        }
        if &bytes[..4] != MAGIC {
            return Err(corrupt(format!(
                "the magic is {:02x?}, expected \"KDMV\"",
                &bytes[..4]
            )));
        }
        let header = SparseHeader {
            version: le_u32(bytes, 4),
            flags: le_u32(bytes, 8),
            capacity: le_u64(bytes, 12),
            grain_size: le_u64(bytes, 20),
            descriptor_offset: le_u64(bytes, 28),
            descriptor_size: le_u64(bytes, 36),
            gtes_per_gt: le_u32(bytes, 44),
            rgd_offset: le_u64(bytes, 48),
            gd_offset: le_u64(bytes, 56),
            overhead: le_u64(bytes, 64),
            unclean_shutdown: bytes[72] != 0,
            compress_algorithm: u16::from_le_bytes([bytes[77], bytes[78]]),
        };
        if !(1..=3).contains(&header.version) {
            return Err(Error::unsupported(
                path,
                "VMDK sparse extent header",
                format!("version {}; versions 1 to 3 are supported", header.version),
            ));
        }
        let unknown = header.flags & !KNOWN_FLAGS;
        if unknown != 0 {
            return Err(Error::unsupported(
                path,
                "VMDK sparse extent header",
                format!("unknown flags {unknown:#x} (flags {:#x})", header.flags),
            ));
        }
        if header.flags & 1 != 0 && bytes[73..77] != *b"\n \r\n" {
            return Err(corrupt(format!(
                "the newline test bytes are {:02x?}, expected 0a 20 0d 0a: the file went through a text-mode transfer",
                &bytes[73..77]
            )));
        }
        if header.grain_size == 0
            || !header.grain_size.is_power_of_two()
            || header.grain_size > MAX_GRAIN_SECTORS
        {
            return Err(corrupt(format!(
                "the grain size is {} sectors; expected a power of two up to {MAX_GRAIN_SECTORS}",
                header.grain_size
            )));
        }
        if header.gtes_per_gt == 0 || header.gtes_per_gt > MAX_GTES_PER_GT {
            return Err(corrupt(format!(
                "numGTEsPerGT is {}; expected 1 to {MAX_GTES_PER_GT}",
                header.gtes_per_gt
            )));
        }
        if header.is_compressed() && header.compress_algorithm != COMPRESSION_DEFLATE {
            return Err(Error::unsupported(
                path,
                "VMDK sparse extent header",
                format!(
                    "compressAlgorithm {}; only 1 (deflate) is defined",
                    header.compress_algorithm
                ),
            ));
        }
        if header.capacity > u64::MAX / 512 {
            return Err(corrupt(format!(
                "the capacity {} overflows",
                header.capacity
            )));
        }
        // Checked before the directory is read into memory: a sparse file can claim any length.
        let directory_bytes = header.grain_tables().saturating_mul(4);
        if directory_bytes > MAX_DIRECTORY_BYTES {
            return Err(corrupt(format!(
                "a capacity of {} sectors in tables of {} grains of {} sectors needs a grain \
                 directory of {directory_bytes} bytes, more than the {MAX_DIRECTORY_BYTES} read",
                header.capacity, header.gtes_per_gt, header.grain_size
            )));
        }
        Ok(header)
    }

    pub fn has_redundant_grain_table(&self) -> bool {
        self.flags & FLAG_REDUNDANT_GRAIN_TABLE != 0
    }
    pub fn has_zero_grain(&self) -> bool {
        self.flags & FLAG_ZERO_GRAIN != 0
    }
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
    pub fn has_markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }
    pub fn grain_bytes(&self) -> u64 {
        self.grain_size * 512
    }
    /// The bytes of the virtual disk one grain table covers.
    pub fn table_span(&self) -> u64 {
        self.grain_bytes() * u64::from(self.gtes_per_gt)
    }
    /// How many grain tables (and so grain directory entries) the capacity needs.
    pub fn grain_tables(&self) -> u64 {
        (self.capacity * 512).div_ceil(self.table_span())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> [u8; SIZE] {
        let mut bytes = [0u8; SIZE];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[4] = 1;
        bytes[8] = 3;
        bytes[12..20].copy_from_slice(&20480u64.to_le_bytes());
        bytes[20] = 128;
        bytes[44..48].copy_from_slice(&512u32.to_le_bytes());
        bytes[73..77].copy_from_slice(b"\n \r\n");
        bytes
    }

    #[test]
    fn fields_and_refusals() {
        let parsed = SparseHeader::parse(Path::new("x"), &header()).unwrap();
        assert_eq!(parsed.grain_bytes(), 65536);
        assert_eq!(parsed.grain_tables(), 1);
        assert!(parsed.has_redundant_grain_table());

        let mut mangled = header();
        mangled[75] = b'\n';
        let error = SparseHeader::parse(Path::new("x"), &mangled).unwrap_err();
        assert!(error.to_string().contains("text-mode"), "{error}");

        let mut cowd = header();
        cowd[..4].copy_from_slice(COWD_MAGIC);
        assert!(matches!(
            SparseHeader::parse(Path::new("x"), &cowd),
            Err(Error::Unsupported { .. })
        ));

        let mut grain = header();
        grain[20] = 3;
        assert!(matches!(
            SparseHeader::parse(Path::new("x"), &grain),
            Err(Error::Corrupt { .. })
        ));
    }
}
