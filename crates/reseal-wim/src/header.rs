//! The WIM header and resource headers.
//!
//! The header is the first 208 bytes of the file (all integers little-endian):
//!
//! | offset | size | field                                             |
//! |-------:|-----:|---------------------------------------------------|
//! |      0 |    8 | magic `MSWIM\0\0\0` (`WLPWM\0\0\0` when pipable)  |
//! |      8 |    4 | header size (208)                                 |
//! |     12 |    4 | version: 0x10d00, or 0xe00 for solid (ESD) WIMs   |
//! |     16 |    4 | flags (`FLAG_*`)                                  |
//! |     20 |    4 | chunk size of compressed resources                |
//! |     24 |   16 | GUID                                              |
//! |     40 |    2 | part number (1-based)                             |
//! |     42 |    2 | total parts                                       |
//! |     44 |    4 | image count                                       |
//! |     48 |   24 | resource header of the blob table                 |
//! |     72 |   24 | resource header of the XML data                   |
//! |     96 |   24 | resource header of the boot image's metadata      |
//! |    120 |    4 | boot image index (0 = none)                       |
//! |    124 |   24 | resource header of the integrity table            |
//! |    148 |   60 | unused                                            |
//!
//! A resource header ([`ResourceHeader`], 24 bytes) locates a resource in the file:
//! `size_in_wim` (7 bytes), flags (1 byte, `RESOURCE_*`), offset (8 bytes), uncompressed size
//! (8 bytes).

use crate::error::Malformed;
use reseal_nt::le;
use reseal_wimlib_sys::Codec;

pub const HEADER_SIZE: usize = 208;
pub const MAGIC: &[u8; 8] = b"MSWIM\0\0\0";
pub const PIPABLE_MAGIC: &[u8; 8] = b"WLPWM\0\0\0";
pub const VERSION_DEFAULT: u32 = 0x10d00;
pub const VERSION_SOLID: u32 = 0xe00;

pub const FLAG_COMPRESSION: u32 = 0x0000_0002;
pub const FLAG_READONLY: u32 = 0x0000_0004;
pub const FLAG_SPANNED: u32 = 0x0000_0008;
pub const FLAG_RESOURCE_ONLY: u32 = 0x0000_0010;
pub const FLAG_METADATA_ONLY: u32 = 0x0000_0020;
pub const FLAG_WRITE_IN_PROGRESS: u32 = 0x0000_0040;
pub const FLAG_COMPRESS_XPRESS: u32 = 0x0002_0000;
pub const FLAG_COMPRESS_LZX: u32 = 0x0004_0000;
pub const FLAG_COMPRESS_LZMS: u32 = 0x0008_0000;
pub const FLAG_COMPRESS_XPRESS2: u32 = 0x0020_0000;

pub const RESOURCE_FREE: u8 = 0x01;
pub const RESOURCE_METADATA: u8 = 0x02;
pub const RESOURCE_COMPRESSED: u8 = 0x04;
pub const RESOURCE_SPANNED: u8 = 0x08;
pub const RESOURCE_SOLID: u8 = 0x10;

pub const RESOURCE_HEADER_SIZE: usize = 24;

/// Where a resource lies in the file and how big it is once expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceHeader {
    /// Bytes the resource occupies in the file (56 bits on disk).
    pub size_in_wim: u64,
    pub flags: u8,
    pub offset: u64,
    pub uncompressed_size: u64,
}

impl ResourceHeader {
    pub fn parse(bytes: &[u8; RESOURCE_HEADER_SIZE]) -> Self {
        let mut size = [0u8; 8];
        size[..7].copy_from_slice(&bytes[..7]);
        Self {
            size_in_wim: u64::from_le_bytes(size),
            flags: bytes[7],
            offset: le::u64_at(bytes, 8).unwrap_or_default(),
            uncompressed_size: le::u64_at(bytes, 16).unwrap_or_default(),
        }
    }

    pub fn to_bytes(self) -> [u8; RESOURCE_HEADER_SIZE] {
        let mut out = [0u8; RESOURCE_HEADER_SIZE];
        out[..7].copy_from_slice(&self.size_in_wim.to_le_bytes()[..7]);
        out[7] = self.flags;
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.uncompressed_size.to_le_bytes());
        out
    }

    pub fn is_compressed(&self) -> bool {
        self.flags & RESOURCE_COMPRESSED != 0
    }

    /// The end offset in the file, or `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size_in_wim)
    }

    pub fn is_absent(&self) -> bool {
        self.offset == 0 && self.size_in_wim == 0
    }
}

/// The parsed 208-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub flags: u32,
    pub chunk_size: u32,
    pub guid: [u8; 16],
    pub part_number: u16,
    pub total_parts: u16,
    pub image_count: u32,
    pub blob_table: ResourceHeader,
    pub xml_data: ResourceHeader,
    pub boot_metadata: ResourceHeader,
    pub boot_index: u32,
    pub integrity_table: ResourceHeader,
    /// The 60 unused bytes, written back as they were.
    pub unused: [u8; 60],
}

impl Header {
    /// Parses and validates the header. Split and pipable WIMs are refused here: they need
    /// their other parts or a different layout.
    pub fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        let bad = |reason: String| Malformed::new("header", reason);
        if bytes.len() < HEADER_SIZE {
            return Err(bad(format!(
                "the file is {} bytes, shorter than the {HEADER_SIZE}-byte header",
                bytes.len()
            )));
        }
        if &bytes[..8] == PIPABLE_MAGIC {
            return Err(Malformed::unsupported(
                "header",
                "pipable WIMs (magic WLPWM) are not supported; convert with `wimlib-imagex optimize`",
            ));
        }
        if &bytes[..8] != MAGIC {
            return Err(bad("no MSWIM magic: not a WIM file".into()));
        }
        let header_size = le::u32_at(bytes, 8).unwrap_or_default();
        if header_size as usize != HEADER_SIZE {
            return Err(bad(format!(
                "header size field is {header_size}, expected {HEADER_SIZE}"
            )));
        }
        let reshdr = |at: usize| {
            let mut raw = [0u8; RESOURCE_HEADER_SIZE];
            raw.copy_from_slice(&bytes[at..at + RESOURCE_HEADER_SIZE]);
            ResourceHeader::parse(&raw)
        };
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&bytes[24..40]);
        let mut unused = [0u8; 60];
        unused.copy_from_slice(&bytes[148..208]);
        let header = Self {
            version: le::u32_at(bytes, 12).unwrap_or_default(),
            flags: le::u32_at(bytes, 16).unwrap_or_default(),
            chunk_size: le::u32_at(bytes, 20).unwrap_or_default(),
            guid,
            part_number: le::u16_at(bytes, 40).unwrap_or_default(),
            total_parts: le::u16_at(bytes, 42).unwrap_or_default(),
            image_count: le::u32_at(bytes, 44).unwrap_or_default(),
            blob_table: reshdr(48),
            xml_data: reshdr(72),
            boot_metadata: reshdr(96),
            boot_index: le::u32_at(bytes, 120).unwrap_or_default(),
            integrity_table: reshdr(124),
            unused,
        };
        if header.version != VERSION_DEFAULT && header.version != VERSION_SOLID {
            return Err(Malformed::unsupported(
                "header",
                format!("unknown WIM version {:#x}", header.version),
            ));
        }
        if header.total_parts != 1 || header.part_number != 1 || header.flags & FLAG_SPANNED != 0 {
            return Err(Malformed::unsupported(
                "header",
                format!(
                    "split WIM (part {} of {}): join the parts with `wimlib-imagex join` first",
                    header.part_number, header.total_parts
                ),
            ));
        }
        if header.flags & (FLAG_RESOURCE_ONLY | FLAG_METADATA_ONLY) != 0 {
            return Err(Malformed::unsupported(
                "header",
                "resource-only or metadata-only WIM",
            ));
        }
        if header.flags & FLAG_COMPRESSION != 0 {
            header.codec()?;
            if !header.chunk_size.is_power_of_two()
                || !(4096..=1 << 30).contains(&header.chunk_size)
            {
                return Err(bad(format!(
                    "chunk size {} is not a power of two in 4 KiB..1 GiB",
                    header.chunk_size
                )));
            }
        }
        Ok(header)
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        out[12..16].copy_from_slice(&self.version.to_le_bytes());
        out[16..20].copy_from_slice(&self.flags.to_le_bytes());
        out[20..24].copy_from_slice(&self.chunk_size.to_le_bytes());
        out[24..40].copy_from_slice(&self.guid);
        out[40..42].copy_from_slice(&self.part_number.to_le_bytes());
        out[42..44].copy_from_slice(&self.total_parts.to_le_bytes());
        out[44..48].copy_from_slice(&self.image_count.to_le_bytes());
        out[48..72].copy_from_slice(&self.blob_table.to_bytes());
        out[72..96].copy_from_slice(&self.xml_data.to_bytes());
        out[96..120].copy_from_slice(&self.boot_metadata.to_bytes());
        out[120..124].copy_from_slice(&self.boot_index.to_le_bytes());
        out[124..148].copy_from_slice(&self.integrity_table.to_bytes());
        out[148..].copy_from_slice(&self.unused);
        out
    }

    /// The codec of the WIM's non-solid compressed resources, `None` when uncompressed.
    pub fn codec(&self) -> Result<Option<Codec>, Malformed> {
        if self.flags & FLAG_COMPRESSION == 0 {
            return Ok(None);
        }
        let kind = self.flags
            & (FLAG_COMPRESS_XPRESS
                | FLAG_COMPRESS_LZX
                | FLAG_COMPRESS_LZMS
                | FLAG_COMPRESS_XPRESS2);
        match kind {
            FLAG_COMPRESS_XPRESS => Ok(Some(Codec::Xpress)),
            FLAG_COMPRESS_LZX => Ok(Some(Codec::Lzx)),
            FLAG_COMPRESS_LZMS => Ok(Some(Codec::Lzms)),
            _ => Err(Malformed::unsupported(
                "header",
                format!(
                    "compression flags {:#x} name no single known format",
                    self.flags
                ),
            )),
        }
    }

    pub fn has_integrity_table(&self) -> bool {
        !self.integrity_table.is_absent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_header_round_trips_its_56_bit_size() {
        let reshdr = ResourceHeader {
            size_in_wim: 0x00ab_cdef_0123_4567,
            flags: RESOURCE_COMPRESSED | RESOURCE_METADATA,
            offset: 0x1122_3344_5566_7788,
            uncompressed_size: 42,
        };
        assert_eq!(ResourceHeader::parse(&reshdr.to_bytes()), reshdr);
    }

    #[test]
    fn short_pipable_and_foreign_files_are_refused() {
        assert!(Header::parse(&[0u8; 100]).is_err());
        let mut pipable = [0u8; HEADER_SIZE];
        pipable[..8].copy_from_slice(PIPABLE_MAGIC);
        assert!(Header::parse(&pipable)
            .unwrap_err()
            .to_string()
            .contains("pipable"));
        assert!(Header::parse(&[0x4du8; HEADER_SIZE])
            .unwrap_err()
            .to_string()
            .contains("magic"));
    }
}
