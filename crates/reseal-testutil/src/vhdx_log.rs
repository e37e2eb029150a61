//! VHDX log entries built byte by byte from MS-VHDX 2.3, to arm a VHDX made by qemu-img with a
//! pending log of our choosing (valid or crafted), independently of reseal-disk's reader.

use std::path::Path;

use crate::ntfs_image::write_at;

const SECTOR: usize = 4096;
const MIB: u64 = 1 << 20;

/// One write of a log entry.
#[derive(Clone)]
pub enum Write {
    /// A 4 KiB sector of data at a file offset.
    Data { file_offset: u64, sector: Vec<u8> },
    /// Zeros over `length` bytes at a file offset.
    Zero { file_offset: u64, length: u64 },
}

/// A log entry; [`LogEntry::to_bytes`] lays it out with a valid CRC-32C.
#[derive(Clone)]
pub struct LogEntry {
    pub sequence_number: u64,
    /// Log offset of the first entry of the sequence this entry ends.
    pub tail: u32,
    pub log_guid: [u8; 16],
    pub flushed_file_offset: u64,
    pub last_file_offset: u64,
    pub writes: Vec<Write>,
}

impl LogEntry {
    /// An entry of `log_guid` for a file of `file_len` bytes (both file offsets are `file_len`
    /// rounded up to whole MiB), ending a sequence that starts at log offset `tail`.
    pub fn new(sequence_number: u64, tail: u32, log_guid: [u8; 16], file_len: u64) -> Self {
        let size = file_len.div_ceil(MIB) * MIB;
        LogEntry {
            sequence_number,
            tail,
            log_guid,
            flushed_file_offset: size,
            last_file_offset: size,
            writes: Vec::new(),
        }
    }

    pub fn with(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let descriptor_sectors = (64 + 32 * self.writes.len()).div_ceil(SECTOR);
        let data: Vec<&Vec<u8>> = self
            .writes
            .iter()
            .filter_map(|write| match write {
                Write::Data { sector, .. } => Some(sector),
                Write::Zero { .. } => None,
            })
            .collect();
        let length = (descriptor_sectors + data.len()) * SECTOR;
        let mut bytes = vec![0u8; length];
        let sequence = self.sequence_number;
        bytes[0..4].copy_from_slice(b"loge");
        bytes[8..12].copy_from_slice(&(length as u32).to_le_bytes());
        bytes[12..16].copy_from_slice(&self.tail.to_le_bytes());
        bytes[16..24].copy_from_slice(&sequence.to_le_bytes());
        bytes[24..28].copy_from_slice(&(self.writes.len() as u32).to_le_bytes());
        bytes[32..48].copy_from_slice(&self.log_guid);
        bytes[48..56].copy_from_slice(&self.flushed_file_offset.to_le_bytes());
        bytes[56..64].copy_from_slice(&self.last_file_offset.to_le_bytes());
        let mut data_at = descriptor_sectors * SECTOR;
        for (index, write) in self.writes.iter().enumerate() {
            let descriptor = &mut bytes[64 + index * 32..96 + index * 32];
            match write {
                Write::Zero {
                    file_offset,
                    length,
                } => {
                    descriptor[0..4].copy_from_slice(b"zero");
                    descriptor[8..16].copy_from_slice(&length.to_le_bytes());
                    descriptor[16..24].copy_from_slice(&file_offset.to_le_bytes());
                }
                Write::Data {
                    file_offset,
                    sector,
                } => {
                    assert_eq!(sector.len(), SECTOR, "a data write is one 4 KiB sector");
                    descriptor[0..4].copy_from_slice(b"desc");
                    descriptor[4..8].copy_from_slice(&sector[4092..4096]);
                    descriptor[8..16].copy_from_slice(&sector[0..8]);
                    descriptor[16..24].copy_from_slice(&file_offset.to_le_bytes());
                    let data_sector = &mut bytes[data_at..data_at + SECTOR];
                    data_sector[0..4].copy_from_slice(b"data");
                    data_sector[4..8].copy_from_slice(&((sequence >> 32) as u32).to_le_bytes());
                    data_sector[8..4092].copy_from_slice(&sector[8..4092]);
                    data_sector[4092..4096].copy_from_slice(&(sequence as u32).to_le_bytes());
                    data_at += SECTOR;
                }
            }
            let descriptor = &mut bytes[64 + index * 32..96 + index * 32];
            descriptor[24..32].copy_from_slice(&sequence.to_le_bytes());
        }
        seal(&mut bytes);
        bytes
    }
}

/// A log of `log_size` bytes in which every sector is the header of an entry of `log_guid`
/// claiming the whole log (tail 0, sequence number 1, no descriptors, the CRC-32C of one
/// sector): none is valid, and a reader that checksums every candidate whole does as much
/// work as the log's size squared over 4 KiB.
pub fn entry_header_in_every_sector(log_guid: [u8; 16], file_len: u64, log_size: u32) -> Vec<u8> {
    let mut header = LogEntry::new(1, 0, log_guid, file_len).to_bytes();
    header[8..12].copy_from_slice(&log_size.to_le_bytes());
    header.repeat(log_size as usize / SECTOR)
}

/// Writes a CRC-32C of `bytes` (with the field zeroed) into bytes 4..8.
pub fn seal(bytes: &mut [u8]) {
    bytes[4..8].fill(0);
    let checksum = crc32c(bytes);
    bytes[4..8].copy_from_slice(&checksum.to_le_bytes());
}

/// CRC-32C, bit by bit (the reader under test has its own table-driven one).
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The log's file offset and length, from the first header of `vhdx`.
pub fn log_location(vhdx: &Path) -> (u64, u32) {
    let bytes = std::fs::read(vhdx).unwrap();
    let header = &bytes[64 << 10..(64 << 10) + SECTOR];
    (
        u64::from_le_bytes(header[72..80].try_into().unwrap()),
        u32::from_le_bytes(header[68..72].try_into().unwrap()),
    )
}

/// Puts `entries` (each at its log offset) into the log of `vhdx` and `log_guid` into both of
/// its headers, as a run interrupted before it emptied its log leaves it.
pub fn arm(vhdx: &Path, log_guid: [u8; 16], entries: &[(u32, Vec<u8>)]) {
    let (log_offset, _) = log_location(vhdx);
    for (at, bytes) in entries {
        write_at(vhdx, log_offset + *at as u64, bytes);
    }
    let file = std::fs::read(vhdx).unwrap();
    for header_offset in [64usize << 10, 128 << 10] {
        let mut header = file[header_offset..header_offset + SECTOR].to_vec();
        header[48..64].copy_from_slice(&log_guid);
        seal(&mut header);
        write_at(vhdx, header_offset as u64, &header);
    }
}
