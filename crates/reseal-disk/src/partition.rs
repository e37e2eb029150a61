//! Partition tables: MBR (with extended partitions) and GPT.
//!
//! MBR: sector 0 ends with 0x55 0xAA; four 16-byte entries at 446 hold status, CHS start, type,
//! CHS end, first LBA and sector count (little-endian). Extended partitions (types 0x05, 0x0F,
//! 0x85) chain extended boot records, each with one logical partition (relative to that record)
//! and a link to the next record (relative to the extended partition).
//!
//! GPT: a protective MBR entry of type 0xEE, the header at LBA 1 ("EFI PART", header size at 12,
//! CRC-32 of the header at 16, alternate header LBA at 32, disk GUID at 56, entries LBA at 72,
//! entry count at 80, entry size at 84, CRC-32 of the entries at 88) and entries of type GUID,
//! unique GUID, first LBA, last LBA (inclusive), attributes and a 72-byte UTF-16 name. When the
//! primary header or its entries are damaged, the backup header in the last sector is used.
//! The header's first and last usable LBAs are at 40 and 48.
//!
//! A table is damaged (and refused) when a partition reaches past the disk, over the MBR or
//! outside the GPT's usable LBAs, or two partitions overlap.

use crate::block_device::BlockDevice;
use crate::bytes::array;
use crate::error::{Error, Result};
use reseal_nt::Guid;
use reseal_nt::{le, utf16};

const MBR_ENTRIES_OFFSET: usize = 446;
const PROTECTIVE_TYPE: u8 = 0xEE;
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// More than any tool writes (the usual table is 128 entries of 128 bytes), and small enough
/// to allocate whatever a damaged header claims.
const MAX_GPT_ENTRIES_BYTES: u64 = 1024 * 1024;
const MAX_LOGICAL_PARTITIONS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionType {
    /// The MBR type byte, e.g. 0x07 for NTFS.
    Mbr(u8),
    /// The GPT partition type GUID.
    Gpt(Guid),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionScheme {
    Mbr,
    Gpt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as Windows and Linux number them (logical MBR partitions start at 5).
    pub number: u32,
    pub partition_type: PartitionType,
    /// Byte offset of the first sector.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// The GPT partition name; empty for MBR.
    pub name: String,
    /// The GPT unique partition GUID.
    pub unique_guid: Option<Guid>,
}

#[derive(Clone, Debug)]
pub struct PartitionTable {
    pub scheme: PartitionScheme,
    /// The GPT disk GUID.
    pub disk_guid: Option<Guid>,
    pub partitions: Vec<Partition>,
}

/// The OEM IDs (bytes 3 to 10) of the volume boot records of NTFS, BitLocker and exFAT. A boot
/// record also ends with 0x55 0xAA, and its boot code fills the place of the MBR's entries.
const VOLUME_OEM_IDS: [&[u8; 8]; 3] = [b"NTFS    ", b"-FVE-FS-", b"EXFAT   "];

/// Reads the partition table; `None` when sector 0 has no MBR signature, or is the boot record
/// of a volume (the image is one file system, such as a partition copied out of a disk).
pub fn read_partition_table(device: &mut dyn BlockDevice) -> Result<Option<PartitionTable>> {
    let sector_size = device.logical_sector_size() as u64;
    if device.len() < sector_size.max(512) {
        return Ok(None);
    }
    let mut mbr = vec![0u8; sector_size as usize];
    device.read_at(0, &mut mbr)?;
    if mbr[510..512] != [0x55, 0xAA] {
        return Ok(None);
    }
    if VOLUME_OEM_IDS.iter().any(|id| mbr[3..11] == id[..]) {
        return Ok(None);
    }
    let entries: Vec<&[u8]> = (0..4)
        .map(|index| &mbr[MBR_ENTRIES_OFFSET + index * 16..][..16])
        .collect();
    if entries.iter().any(|entry| entry[4] == PROTECTIVE_TYPE) {
        return read_gpt(device, sector_size).map(Some);
    }
    read_mbr(device, sector_size, &entries).map(Some)
}

fn is_extended(partition_type: u8) -> bool {
    matches!(partition_type, 0x05 | 0x0F | 0x85)
}

fn read_mbr(
    device: &mut dyn BlockDevice,
    sector_size: u64,
    entries: &[&[u8]],
) -> Result<PartitionTable> {
    let mut partitions = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let partition_type = entry[4];
        let first_lba = le::u32_at(entry, 8).unwrap_or_default() as u64;
        let sectors = le::u32_at(entry, 12).unwrap_or_default() as u64;
        if partition_type == 0 || sectors == 0 {
            continue;
        }
        if is_extended(partition_type) {
            read_logical_partitions(device, sector_size, first_lba, &mut partitions)?;
            continue;
        }
        partitions.push(mbr_partition(
            device,
            index as u32 + 1,
            partition_type,
            first_lba * sector_size,
            sectors * sector_size,
        )?);
    }
    if let Some(first) = partitions.iter().find(|p| p.start < sector_size) {
        return Err(Error::corrupt(
            device.path(),
            "MBR partition entry",
            format!(
                "partition {} starts at byte {}, over the MBR itself",
                first.number, first.start
            ),
        ));
    }
    check_no_overlap(device, "MBR partition entries", &partitions)?;
    Ok(PartitionTable {
        scheme: PartitionScheme::Mbr,
        disk_guid: None,
        partitions,
    })
}

fn mbr_partition(
    device: &dyn BlockDevice,
    number: u32,
    partition_type: u8,
    start: u64,
    size: u64,
) -> Result<Partition> {
    check_within(device, "MBR partition entry", number, start, size)?;
    Ok(Partition {
        number,
        partition_type: PartitionType::Mbr(partition_type),
        start,
        size,
        name: String::new(),
        unique_guid: None,
    })
}

fn check_within(
    device: &dyn BlockDevice,
    structure: &'static str,
    number: u32,
    start: u64,
    size: u64,
) -> Result<()> {
    if start.checked_add(size).is_none_or(|end| end > device.len()) {
        return Err(Error::corrupt(
            device.path(),
            structure,
            format!(
                "partition {number} ({size} bytes at {start}) reaches past the end of the disk ({} bytes)",
                device.len()
            ),
        ));
    }
    Ok(())
}

/// Two partitions sharing a sector would each overwrite the other's file system.
fn check_no_overlap(
    device: &dyn BlockDevice,
    structure: &'static str,
    partitions: &[Partition],
) -> Result<()> {
    let mut sorted: Vec<&Partition> = partitions.iter().collect();
    sorted.sort_by_key(|partition| partition.start);
    for pair in sorted.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if second.start < first.start + first.size {
            return Err(Error::corrupt(
                device.path(),
                structure,
                format!(
                    "partitions {} ({} bytes at {}) and {} ({} bytes at {}) overlap",
                    first.number, first.size, first.start, second.number, second.size, second.start
                ),
            ));
        }
    }
    Ok(())
}

fn read_logical_partitions(
    device: &mut dyn BlockDevice,
    sector_size: u64,
    extended_lba: u64,
    partitions: &mut Vec<Partition>,
) -> Result<()> {
    let mut record_lba = extended_lba;
    let mut sector = vec![0u8; sector_size as usize];
    for number in 5..5 + MAX_LOGICAL_PARTITIONS as u32 {
        let offset = record_lba * sector_size;
        if offset.saturating_add(sector_size) > device.len() {
            return Err(Error::corrupt(
                device.path(),
                "MBR extended boot record",
                format!("record at LBA {record_lba} lies past the end of the disk"),
            ));
        }
        device.read_at(offset, &mut sector)?;
        if sector[510..512] != [0x55, 0xAA] {
            return Err(Error::corrupt(
                device.path(),
                "MBR extended boot record",
                format!("record at LBA {record_lba} has no 0x55AA signature"),
            ));
        }
        let logical = &sector[MBR_ENTRIES_OFFSET..][..16];
        let link = &sector[MBR_ENTRIES_OFFSET + 16..][..16];
        if logical[4] != 0 && le::u32_at(logical, 12).unwrap_or_default() != 0 {
            partitions.push(mbr_partition(
                device,
                number,
                logical[4],
                (record_lba + le::u32_at(logical, 8).unwrap_or_default() as u64) * sector_size,
                le::u32_at(logical, 12).unwrap_or_default() as u64 * sector_size,
            )?);
        }
        if !is_extended(link[4]) || le::u32_at(link, 8).unwrap_or_default() == 0 {
            return Ok(());
        }
        record_lba = extended_lba + le::u32_at(link, 8).unwrap_or_default() as u64;
    }
    Err(Error::corrupt(
        device.path(),
        "MBR extended boot record",
        format!("more than {MAX_LOGICAL_PARTITIONS} logical partitions (a loop?)"),
    ))
}

fn read_gpt(device: &mut dyn BlockDevice, sector_size: u64) -> Result<PartitionTable> {
    let primary = read_gpt_at(device, sector_size, 1);
    match primary {
        Ok(table) => Ok(table),
        Err(primary_error) => {
            let last_lba = device.len() / sector_size - 1;
            read_gpt_at(device, sector_size, last_lba).map_err(|_| primary_error)
        }
    }
}

fn read_gpt_at(device: &mut dyn BlockDevice, sector_size: u64, lba: u64) -> Result<PartitionTable> {
    let path = device.path().to_path_buf();
    let corrupt = |reason: String| Error::corrupt(&path, "GPT header", reason);
    let mut header = vec![0u8; sector_size as usize];
    device.read_at(lba * sector_size, &mut header)?;
    if &header[..8] != GPT_SIGNATURE {
        return Err(corrupt(format!("no \"EFI PART\" signature at LBA {lba}")));
    }
    let header_size = le::u32_at(&header, 12).unwrap_or_default() as usize;
    if !(92..=sector_size as usize).contains(&header_size) {
        return Err(corrupt(format!("header size {header_size} at LBA {lba}")));
    }
    let stored_crc = le::u32_at(&header, 16).unwrap_or_default();
    let mut zeroed = header[..header_size].to_vec();
    zeroed[16..20].fill(0);
    let computed_crc = crc32fast::hash(&zeroed);
    if stored_crc != computed_crc {
        return Err(corrupt(format!(
            "CRC-32 at LBA {lba} is {stored_crc:#010x}, the header hashes to {computed_crc:#010x}"
        )));
    }
    let first_usable = le::u64_at(&header, 40).unwrap_or_default();
    let last_usable = le::u64_at(&header, 48).unwrap_or_default();
    let entries_lba = le::u64_at(&header, 72).unwrap_or_default();
    let entry_count = le::u32_at(&header, 80).unwrap_or_default() as u64;
    let entry_size = le::u32_at(&header, 84).unwrap_or_default() as u64;
    let entries_crc = le::u32_at(&header, 88).unwrap_or_default();
    if entry_size < 128 || entry_size % 8 != 0 {
        return Err(corrupt(format!("partition entry size {entry_size}")));
    }
    let entries_bytes = entry_count * entry_size;
    let entries_offset = entries_lba.saturating_mul(sector_size);
    if entries_bytes > MAX_GPT_ENTRIES_BYTES
        || entries_offset.saturating_add(entries_bytes) > device.len()
    {
        return Err(corrupt(format!(
            "{entry_count} entries of {entry_size} bytes at LBA {entries_lba} do not fit the disk"
        )));
    }
    let mut entries = vec![0u8; entries_bytes as usize];
    device.read_at(entries_offset, &mut entries)?;
    let computed_entries_crc = crc32fast::hash(&entries);
    if computed_entries_crc != entries_crc {
        return Err(Error::corrupt(
            &path,
            "GPT partition entries",
            format!(
                "CRC-32 is {entries_crc:#010x}, the entries at LBA {entries_lba} hash to {computed_entries_crc:#010x}"
            ),
        ));
    }
    let mut partitions = Vec::new();
    for (index, entry) in entries.chunks_exact(entry_size as usize).enumerate() {
        let partition_type = Guid(array(entry, 0));
        if partition_type.is_zero() {
            continue;
        }
        let number = index as u32 + 1;
        let first_lba = le::u64_at(entry, 32).unwrap_or_default();
        let last_lba = le::u64_at(entry, 40).unwrap_or_default();
        if last_lba < first_lba {
            return Err(Error::corrupt(
                &path,
                "GPT partition entry",
                format!(
                    "partition {number} ends (LBA {last_lba}) before it starts (LBA {first_lba})"
                ),
            ));
        }
        let start = first_lba.saturating_mul(sector_size);
        let size = (last_lba - first_lba)
            .saturating_add(1)
            .saturating_mul(sector_size);
        check_within(device, "GPT partition entry", number, start, size)?;
        if first_lba < first_usable || last_lba > last_usable {
            return Err(Error::corrupt(
                &path,
                "GPT partition entry",
                format!(
                    "partition {number} (LBA {first_lba} to {last_lba}) lies outside the usable LBAs {first_usable} to {last_usable} the header at LBA {lba} gives"
                ),
            ));
        }
        partitions.push(Partition {
            number,
            partition_type: PartitionType::Gpt(partition_type),
            start,
            size,
            name: utf16::decode_le_lossy_until_nul(&entry[56..128]),
            unique_guid: Some(Guid(array(entry, 16))),
        });
    }
    check_no_overlap(device, "GPT partition entries", &partitions)?;
    Ok(PartitionTable {
        scheme: PartitionScheme::Gpt,
        disk_guid: Some(Guid(array(&header, 56))),
        partitions,
    })
}
