//! The base block: the first 4096 bytes of a hive file (and of a transaction log), signature `regf`.
//!
//! Layout (msuhanov's regf specification, "Base block"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | signature `regf` |
//! | 4 | 4 | primary sequence number |
//! | 8 | 4 | secondary sequence number (equal to the primary one when the hive is clean) |
//! | 12 | 8 | last written timestamp (FILETIME) |
//! | 20 | 4 | major version (1) |
//! | 24 | 4 | minor version (3 to 6) |
//! | 28 | 4 | file type: 0 primary file, 1 old-format log, 2 NT 3.x log, 6 new-format log |
//! | 32 | 4 | file format (1 = direct memory load) |
//! | 36 | 4 | root cell offset (relative to the start of the hive bins data) |
//! | 40 | 4 | hive bins data size |
//! | 44 | 4 | clustering factor |
//! | 48 | 64 | file name (UTF-16LE, the last 31 characters of the path) |
//! | 144 | 4 | flags (Windows 10: bit 0 = KTM has pending transactions; log replay sets it) |
//! | 508 | 4 | XOR-32 checksum of bytes 0..508 |
//!
//! Everything else (reserved areas, Windows 10 RmId/LogId/TmId fields, boot type and boot recover)
//! is kept byte-for-byte: [`BaseBlock`] is a view over the bytes, and edits touch only the fields above.

use crate::{Error, Result};
use reseal_nt::le;

/// Size of the base block, and the offset of the first hive bin in the file.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// `regf`.
pub const SIGNATURE: &[u8; 4] = b"regf";

/// File type of a primary hive file.
pub const FILE_TYPE_PRIMARY: u32 = 0;
/// File type of an old-format (Windows XP to 8) transaction log.
pub const FILE_TYPE_LOG_OLD: u32 = 1;
/// File type of an NT 3.x/4 `.LOG`.
pub const FILE_TYPE_LOG_NT3: u32 = 2;
/// File type of a new-format (Windows 8.1+) transaction log.
pub const FILE_TYPE_LOG_NEW: u32 = 6;

const PRIMARY_SEQUENCE: usize = 4;
const SECONDARY_SEQUENCE: usize = 8;
const LAST_WRITTEN: usize = 12;
const MAJOR_VERSION: usize = 20;
const MINOR_VERSION: usize = 24;
const FILE_TYPE: usize = 28;
const FILE_FORMAT: usize = 32;
const ROOT_CELL_OFFSET: usize = 36;
const HIVE_BINS_DATA_SIZE: usize = 40;
const CLUSTERING_FACTOR: usize = 44;
const FILE_NAME: usize = 48;
const FILE_NAME_LEN: usize = 64;
const FLAGS: usize = 144;
const CHECKSUM: usize = 508;

/// A read-only view of a base block.
#[derive(Clone, Copy)]
pub struct BaseBlock<'a> {
    bytes: &'a [u8; BASE_BLOCK_SIZE],
}

impl<'a> BaseBlock<'a> {
    /// Checks the size and the `regf` signature. The checksum is *not* checked here: a bad checksum
    /// makes a hive dirty (its logs may repair it), see [`BaseBlock::checksum_ok`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let Some(block) = bytes.get(..BASE_BLOCK_SIZE) else {
            return Err(Error::Truncated {
                offset: 0,
                what: "base block",
                needed: BASE_BLOCK_SIZE as u64,
                available: bytes.len() as u64,
            });
        };
        if &block[..4] != SIGNATURE {
            return Err(Error::BadSignature {
                offset: 0,
                expected: "regf",
                found: String::from_utf8_lossy(&block[..4]).into_owned(),
            });
        }
        Ok(BaseBlock {
            bytes: block.try_into().unwrap(),
        })
    }

    /// The raw 4096 bytes.
    pub fn bytes(&self) -> &'a [u8; BASE_BLOCK_SIZE] {
        self.bytes
    }
    pub fn primary_sequence(&self) -> u32 {
        le::u32_at(self.bytes, PRIMARY_SEQUENCE).unwrap_or_default()
    }
    pub fn secondary_sequence(&self) -> u32 {
        le::u32_at(self.bytes, SECONDARY_SEQUENCE).unwrap_or_default()
    }
    /// Last written time as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
    pub fn last_written(&self) -> u64 {
        u64::from_le_bytes(
            self.bytes[LAST_WRITTEN..LAST_WRITTEN + 8]
                .try_into()
                .unwrap(),
        )
    }
    pub fn major_version(&self) -> u32 {
        le::u32_at(self.bytes, MAJOR_VERSION).unwrap_or_default()
    }
    pub fn minor_version(&self) -> u32 {
        le::u32_at(self.bytes, MINOR_VERSION).unwrap_or_default()
    }
    pub fn file_type(&self) -> u32 {
        le::u32_at(self.bytes, FILE_TYPE).unwrap_or_default()
    }
    pub fn file_format(&self) -> u32 {
        le::u32_at(self.bytes, FILE_FORMAT).unwrap_or_default()
    }
    /// Offset of the root key's cell, relative to the start of the hive bins data.
    pub fn root_cell_offset(&self) -> u32 {
        le::u32_at(self.bytes, ROOT_CELL_OFFSET).unwrap_or_default()
    }
    /// Total size of the hive bins that follow the base block.
    pub fn hive_bins_data_size(&self) -> u32 {
        le::u32_at(self.bytes, HIVE_BINS_DATA_SIZE).unwrap_or_default()
    }
    pub fn clustering_factor(&self) -> u32 {
        le::u32_at(self.bytes, CLUSTERING_FACTOR).unwrap_or_default()
    }
    /// The embedded file name (often the tail of the hive's path on the machine that wrote it).
    pub fn file_name(&self) -> String {
        crate::data::decode_sz(&self.bytes[FILE_NAME..FILE_NAME + FILE_NAME_LEN])
    }
    /// The flags field (bit 0: the Kernel Transaction Manager has pending transactions).
    pub fn flags(&self) -> u32 {
        le::u32_at(self.bytes, FLAGS).unwrap_or_default()
    }
    pub fn stored_checksum(&self) -> u32 {
        le::u32_at(self.bytes, CHECKSUM).unwrap_or_default()
    }
    /// `true` when the stored checksum matches [`checksum`] of the bytes.
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum() == checksum(self.bytes)
    }
    /// A hive is dirty when the sequence numbers differ or the checksum is wrong: Windows then
    /// replays the transaction logs before using it.
    pub fn is_dirty(&self) -> bool {
        self.primary_sequence() != self.secondary_sequence() || !self.checksum_ok()
    }
    /// Big data (`db`) records exist from minor version 4 on.
    pub fn supports_big_data(&self) -> bool {
        self.minor_version() >= 4
    }
}

/// The base block checksum: XOR of the 127 little-endian u32 words at 0..508, with 0xFFFFFFFF
/// mapped to 0xFFFFFFFE and 0 mapped to 1 (as Windows computes it).
pub fn checksum(bytes: &[u8]) -> u32 {
    let sum = bytes[..CHECKSUM].chunks_exact(4).fold(0u32, |acc, w| {
        acc ^ u32::from_le_bytes(w.try_into().unwrap())
    });
    match sum {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        s => s,
    }
}

/// Writers for the fields a commit changes. They work on the mutable base block bytes; call
/// [`seal`] last so the checksum covers the final contents.
pub mod write {
    use super::*;

    fn put_u32(bytes: &mut [u8], offset: usize, v: u32) {
        bytes[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn set_primary_sequence(bytes: &mut [u8], v: u32) {
        put_u32(bytes, PRIMARY_SEQUENCE, v)
    }
    pub fn set_secondary_sequence(bytes: &mut [u8], v: u32) {
        put_u32(bytes, SECONDARY_SEQUENCE, v)
    }
    pub fn set_last_written(bytes: &mut [u8], filetime: u64) {
        bytes[LAST_WRITTEN..LAST_WRITTEN + 8].copy_from_slice(&filetime.to_le_bytes())
    }
    pub fn set_minor_version(bytes: &mut [u8], v: u32) {
        put_u32(bytes, MINOR_VERSION, v)
    }
    pub fn set_file_type(bytes: &mut [u8], v: u32) {
        put_u32(bytes, FILE_TYPE, v)
    }
    pub fn set_root_cell_offset(bytes: &mut [u8], v: u32) {
        put_u32(bytes, ROOT_CELL_OFFSET, v)
    }
    pub fn set_hive_bins_data_size(bytes: &mut [u8], v: u32) {
        put_u32(bytes, HIVE_BINS_DATA_SIZE, v)
    }
    pub fn set_flags(bytes: &mut [u8], v: u32) {
        put_u32(bytes, FLAGS, v)
    }
    /// Recomputes and stores the checksum.
    pub fn seal(bytes: &mut [u8]) {
        let sum = checksum(bytes);
        put_u32(bytes, CHECKSUM, sum)
    }

    /// A fresh base block for an empty hive (used to create hives from scratch).
    pub fn new_base_block(
        minor_version: u32,
        root_cell_offset: u32,
        hive_bins_data_size: u32,
    ) -> [u8; BASE_BLOCK_SIZE] {
        let mut b = [0u8; BASE_BLOCK_SIZE];
        b[..4].copy_from_slice(SIGNATURE);
        put_u32(&mut b, PRIMARY_SEQUENCE, 1);
        put_u32(&mut b, SECONDARY_SEQUENCE, 1);
        put_u32(&mut b, MAJOR_VERSION, 1);
        put_u32(&mut b, MINOR_VERSION, minor_version);
        put_u32(&mut b, FILE_TYPE, FILE_TYPE_PRIMARY);
        put_u32(&mut b, FILE_FORMAT, 1);
        put_u32(&mut b, ROOT_CELL_OFFSET, root_cell_offset);
        put_u32(&mut b, HIVE_BINS_DATA_SIZE, hive_bins_data_size);
        put_u32(&mut b, CLUSTERING_FACTOR, 1);
        seal(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_block_is_clean_and_checksummed() {
        let b = write::new_base_block(5, 0x20, 4096);
        let v = BaseBlock::parse(&b).unwrap();
        assert!(v.checksum_ok());
        assert!(!v.is_dirty());
        assert_eq!((v.major_version(), v.minor_version()), (1, 5));
        assert_eq!(v.root_cell_offset(), 0x20);
    }

    #[test]
    fn rejects_short_and_foreign_data() {
        assert!(matches!(
            BaseBlock::parse(&[0u8; 10]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            BaseBlock::parse(&[0u8; 4096]),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn sequence_mismatch_is_dirty() {
        let mut b = write::new_base_block(5, 0x20, 4096);
        write::set_primary_sequence(&mut b, 2);
        write::seal(&mut b);
        assert!(BaseBlock::parse(&b).unwrap().is_dirty());
    }
}
