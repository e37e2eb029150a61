//! The VHD dynamic disk header: 1024 bytes (big-endian) at the footer's data offset of dynamic
//! and differencing disks.
//!
//! Layout: cookie "cxsparse" (0), data offset (8, unused), table offset (16: the BAT), header
//! version (24), max table entries (28), block size (32), checksum (36, as in the footer),
//! parent unique id (40), parent timestamp (56), reserved (60), parent unicode name (64: 512
//! bytes of UTF-16 big-endian), eight parent locator entries of 24 bytes (576), reserved.
//!
//! A parent locator entry: platform code (0: "W2ru" relative or "W2ku" absolute Windows path,
//! both UTF-16 little-endian), platform data space (4), platform data length (8), reserved (12),
//! platform data offset (16: a file offset).

use std::path::Path;

use crate::bytes::{array, be_u32, be_u64, put, utf16be_bytes, utf16be_string};
use crate::error::{Error, Result};
use crate::vhd::footer::ones_complement_checksum;
use reseal_nt::Guid;

pub const DYNAMIC_HEADER_SIZE: usize = 1024;
const COOKIE: &[u8; 8] = b"cxsparse";
const CHECKSUM_OFFSET: usize = 36;
const PARENT_NAME_OFFSET: usize = 64;
const PARENT_NAME_SIZE: usize = 512;
const LOCATORS_OFFSET: usize = 576;
const LOCATOR_SIZE: usize = 24;
const LOCATOR_COUNT: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentLocator {
    pub platform_code: [u8; 4],
    pub data_space: u32,
    pub data_length: u32,
    pub data_offset: u64,
}

#[derive(Clone, Debug)]
pub struct DynamicHeader {
    pub table_offset: u64,
    pub header_version: u32,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub parent_unique_id: Guid,
    pub parent_timestamp: u32,
    pub parent_unicode_name: String,
    /// The entries whose platform code is not zero.
    pub parent_locators: Vec<ParentLocator>,
}

impl DynamicHeader {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, "VHD dynamic disk header", reason);
        if &bytes[..8] != COOKIE {
            return Err(corrupt("the cookie \"cxsparse\" is missing".into()));
        }
        let stored = be_u32(bytes, CHECKSUM_OFFSET);
        let computed = ones_complement_checksum(bytes, CHECKSUM_OFFSET);
        if stored != computed {
            return Err(corrupt(format!(
                "checksum is {stored:#010x}, the content sums to {computed:#010x}"
            )));
        }
        let block_size = be_u32(bytes, 32);
        // Bitmaps are whole sectors and blocks whole bitmaps' worth of sectors: a power of two
        // from one sector keeps the arithmetic below exact.
        if !block_size.is_power_of_two() || block_size < 512 {
            return Err(corrupt(format!(
                "block size {block_size} is not a power of two of at least 512"
            )));
        }
        let parent_locators = (0..LOCATOR_COUNT)
            .map(|index| &bytes[LOCATORS_OFFSET + index * LOCATOR_SIZE..][..LOCATOR_SIZE])
            .filter(|entry| be_u32(entry, 0) != 0)
            .map(|entry| ParentLocator {
                platform_code: array(entry, 0),
                data_space: be_u32(entry, 4),
                data_length: be_u32(entry, 8),
                data_offset: be_u64(entry, 16),
            })
            .collect();
        Ok(DynamicHeader {
            table_offset: be_u64(bytes, 16),
            header_version: be_u32(bytes, 24),
            max_table_entries: be_u32(bytes, 28),
            block_size,
            parent_unique_id: Guid(array(bytes, 40)),
            parent_timestamp: be_u32(bytes, 56),
            parent_unicode_name: utf16be_string(
                &bytes[PARENT_NAME_OFFSET..PARENT_NAME_OFFSET + PARENT_NAME_SIZE],
            ),
            parent_locators,
        })
    }

    pub fn to_bytes(&self) -> [u8; DYNAMIC_HEADER_SIZE] {
        let mut bytes = [0u8; DYNAMIC_HEADER_SIZE];
        put(&mut bytes, 0, COOKIE);
        put(&mut bytes, 8, &u64::MAX.to_be_bytes());
        put(&mut bytes, 16, &self.table_offset.to_be_bytes());
        put(&mut bytes, 24, &self.header_version.to_be_bytes());
        put(&mut bytes, 28, &self.max_table_entries.to_be_bytes());
        put(&mut bytes, 32, &self.block_size.to_be_bytes());
        put(&mut bytes, 40, &self.parent_unique_id.0);
        put(&mut bytes, 56, &self.parent_timestamp.to_be_bytes());
        let mut name = utf16be_bytes(&self.parent_unicode_name);
        name.truncate(PARENT_NAME_SIZE - 2);
        put(&mut bytes, PARENT_NAME_OFFSET, &name);
        for (index, locator) in self.parent_locators.iter().take(LOCATOR_COUNT).enumerate() {
            let entry = LOCATORS_OFFSET + index * LOCATOR_SIZE;
            put(&mut bytes, entry, &locator.platform_code);
            put(&mut bytes, entry + 4, &locator.data_space.to_be_bytes());
            put(&mut bytes, entry + 8, &locator.data_length.to_be_bytes());
            put(&mut bytes, entry + 16, &locator.data_offset.to_be_bytes());
        }
        let checksum = ones_complement_checksum(&bytes, CHECKSUM_OFFSET);
        put(&mut bytes, CHECKSUM_OFFSET, &checksum.to_be_bytes());
        bytes
    }
}
