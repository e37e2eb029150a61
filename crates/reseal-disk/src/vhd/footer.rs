//! The VHD footer: 512 bytes at the end of every VHD file (big-endian), with a copy at offset 0
//! in dynamic and differencing disks.
//!
//! Layout: cookie "conectix" (0), features (8), file format version (12), data offset (16: the
//! dynamic header, or all ones for a fixed disk), timestamp (24: seconds since 2000-01-01),
//! creator application (28), creator version (32), creator host OS (36), original size (40),
//! current size (48: the size of the virtual disk), CHS geometry (56), disk type (60),
//! checksum (64: one's complement of the byte sum with the field taken as zero), unique id (68),
//! saved state (84), reserved up to 512.

use std::path::Path;

use crate::bytes::{array, be_u32, be_u64, put};
use crate::error::{Error, Result};
use reseal_nt::Guid;

pub const FOOTER_SIZE: usize = 512;
const COOKIE: &[u8; 8] = b"conectix";
const CHECKSUM_OFFSET: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

impl DiskType {
    fn code(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Footer {
    pub features: u32,
    pub format_version: u32,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_application: [u8; 4],
    pub creator_version: u32,
    pub creator_host_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub disk_geometry: u32,
    pub disk_type: DiskType,
    /// Stored as raw bytes; the VHD format does not define a byte order for it.
    pub unique_id: Guid,
    pub saved_state: u8,
}

/// One's complement of the byte sum, skipping the 4-byte checksum field at `field`.
pub(crate) fn ones_complement_checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(index, _)| !(field..field + 4).contains(index))
        .fold(0u32, |sum, (_, &byte)| sum.wrapping_add(byte as u32));
    !sum
}

impl Footer {
    pub fn has_cookie(bytes: &[u8]) -> bool {
        bytes.len() >= COOKIE.len() && &bytes[..COOKIE.len()] == COOKIE
    }

    pub fn parse(path: &Path, bytes: &[u8; FOOTER_SIZE]) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, "VHD footer", reason);
        if !Self::has_cookie(bytes) {
            return Err(corrupt("the cookie \"conectix\" is missing".into()));
        }
        let stored = be_u32(bytes, CHECKSUM_OFFSET);
        let computed = ones_complement_checksum(bytes, CHECKSUM_OFFSET);
        if stored != computed {
            return Err(corrupt(format!(
                "checksum is {stored:#010x}, the content sums to {computed:#010x}"
            )));
        }
        let disk_type = match be_u32(bytes, 60) {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            other => {
                return Err(Error::unsupported(
                    path,
                    "VHD footer",
                    format!("disk type {other} (only 2 fixed, 3 dynamic, 4 differencing exist)"),
                ))
            }
        };
        Ok(Footer {
            features: be_u32(bytes, 8),
            format_version: be_u32(bytes, 12),
            data_offset: be_u64(bytes, 16),
            timestamp: be_u32(bytes, 24),
            creator_application: array(bytes, 28),
            creator_version: be_u32(bytes, 32),
            creator_host_os: array(bytes, 36),
            original_size: be_u64(bytes, 40),
            current_size: be_u64(bytes, 48),
            disk_geometry: be_u32(bytes, 56),
            disk_type,
            unique_id: Guid(array(bytes, 68)),
            saved_state: bytes[84],
        })
    }

    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut bytes = [0u8; FOOTER_SIZE];
        put(&mut bytes, 0, COOKIE);
        put(&mut bytes, 8, &self.features.to_be_bytes());
        put(&mut bytes, 12, &self.format_version.to_be_bytes());
        put(&mut bytes, 16, &self.data_offset.to_be_bytes());
        put(&mut bytes, 24, &self.timestamp.to_be_bytes());
        put(&mut bytes, 28, &self.creator_application);
        put(&mut bytes, 32, &self.creator_version.to_be_bytes());
        put(&mut bytes, 36, &self.creator_host_os);
        put(&mut bytes, 40, &self.original_size.to_be_bytes());
        put(&mut bytes, 48, &self.current_size.to_be_bytes());
        put(&mut bytes, 56, &self.disk_geometry.to_be_bytes());
        put(&mut bytes, 60, &self.disk_type.code().to_be_bytes());
        put(&mut bytes, 68, &self.unique_id.0);
        bytes[84] = self.saved_state;
        let checksum = ones_complement_checksum(&bytes, CHECKSUM_OFFSET);
        put(&mut bytes, CHECKSUM_OFFSET, &checksum.to_be_bytes());
        bytes
    }
}
