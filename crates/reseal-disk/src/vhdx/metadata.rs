//! The VHDX metadata region: a 64 KiB table followed by the items it points to.
//!
//! Table layout (little-endian): signature "metadata" (0), reserved (8), entry count (10, at
//! most 2047), reserved up to 32, then 32-byte entries: item GUID (0), offset from the start of
//! the region (16), length (20), flags (24: bit 0 user, bit 1 virtual disk, bit 2 required).
//!
//! Items: file parameters (block size, flags: bit 0 leave blocks allocated, bit 1 has parent),
//! virtual disk size (u64), logical and physical sector size (u32), page 83 data (a GUID), and
//! for differencing disks the parent locator: locator type GUID (0), reserved (16), key/value
//! count (18), then 12-byte entries of key offset, value offset (from the locator start), key
//! length and value length (bytes of UTF-16 little-endian).

use std::collections::BTreeMap;
use std::path::Path;

use crate::bytes::{array, put};
use crate::error::{Error, Result};
use reseal_nt::Guid;
use reseal_nt::{le, utf16};

pub const TABLE_SIZE: usize = 64 * 1024;
const SIGNATURE: &[u8; 8] = b"metadata";
const MAX_ENTRIES: u16 = 2047;
const FLAG_VIRTUAL_DISK: u32 = 2;
const FLAG_REQUIRED: u32 = 4;
/// Largest item accepted; the known items are far smaller, a parent locator a few KiB.
const MAX_ITEM_SIZE: u32 = 1024 * 1024;

pub const FILE_PARAMETERS: Guid = Guid::from_fields(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
pub const VIRTUAL_DISK_SIZE: Guid = Guid::from_fields(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
pub const PAGE_83_DATA: Guid = Guid::from_fields(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
pub const LOGICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
pub const PHYSICAL_SECTOR_SIZE: Guid = Guid::from_fields(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
pub const PARENT_LOCATOR: Guid = Guid::from_fields(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);
pub const VHDX_PARENT_LOCATOR_TYPE: Guid = Guid::from_fields(
    0xB04A_EFB7,
    0xD19E,
    0x4A81,
    [0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13],
);

const KNOWN_ITEMS: [Guid; 6] = [
    FILE_PARAMETERS,
    VIRTUAL_DISK_SIZE,
    PAGE_83_DATA,
    LOGICAL_SECTOR_SIZE,
    PHYSICAL_SECTOR_SIZE,
    PARENT_LOCATOR,
];

#[derive(Clone, Debug)]
pub struct Metadata {
    pub block_size: u32,
    pub leave_blocks_allocated: bool,
    pub has_parent: bool,
    pub virtual_disk_size: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub page_83_data: Option<Guid>,
    /// Key/value pairs of the parent locator (differencing disks).
    pub parent_locator: BTreeMap<String, String>,
}

const STRUCTURE: &str = "VHDX metadata";

impl Metadata {
    /// Parses the table and items; `region` holds the whole metadata region.
    pub fn parse(path: &Path, region: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, STRUCTURE, reason);
        if region.len() < TABLE_SIZE || &region[..8] != SIGNATURE {
            return Err(corrupt("the signature \"metadata\" is missing".into()));
        }
        let count = le::u16_at(region, 10).unwrap_or_default();
        if count > MAX_ENTRIES {
            return Err(corrupt(format!(
                "{count} entries (at most {MAX_ENTRIES} fit)"
            )));
        }
        let mut items: BTreeMap<[u8; 16], &[u8]> = BTreeMap::new();
        for index in 0..count as usize {
            let entry = &region[32 + index * 32..][..32];
            let guid = Guid(array(entry, 0));
            let offset = le::u32_at(entry, 16).unwrap_or_default() as usize;
            let length = le::u32_at(entry, 20).unwrap_or_default();
            let flags = le::u32_at(entry, 24).unwrap_or_default();
            if length == 0 {
                continue;
            }
            if length > MAX_ITEM_SIZE
                || offset < TABLE_SIZE
                || offset + length as usize > region.len()
            {
                return Err(corrupt(format!(
                    "item {guid} ({length} bytes at {offset}) lies outside the region ({} bytes)",
                    region.len()
                )));
            }
            if !KNOWN_ITEMS.contains(&guid) && flags & FLAG_REQUIRED != 0 {
                return Err(Error::unsupported(
                    path,
                    STRUCTURE,
                    format!("required item {guid} is unknown"),
                ));
            }
            items.insert(guid.0, &region[offset..offset + length as usize]);
        }
        let item = |guid: Guid, min_len: usize, name: &str| -> Result<&[u8]> {
            match items.get(&guid.0) {
                Some(data) if data.len() >= min_len => Ok(data),
                Some(_) => Err(corrupt(format!("the {name} item is too short"))),
                None => Err(corrupt(format!("the {name} item is missing"))),
            }
        };
        let file_parameters = item(FILE_PARAMETERS, 8, "file parameters")?;
        let block_size = le::u32_at(file_parameters, 0).unwrap_or_default();
        let flags = le::u32_at(file_parameters, 4).unwrap_or_default();
        let virtual_disk_size =
            le::u64_at(item(VIRTUAL_DISK_SIZE, 8, "virtual disk size")?, 0).unwrap_or_default();
        let logical_sector_size =
            le::u32_at(item(LOGICAL_SECTOR_SIZE, 4, "logical sector size")?, 0).unwrap_or_default();
        let physical_sector_size =
            le::u32_at(item(PHYSICAL_SECTOR_SIZE, 4, "physical sector size")?, 0)
                .unwrap_or_default();
        if !block_size.is_power_of_two() || !(1 << 20..=256 << 20).contains(&block_size) {
            return Err(corrupt(format!(
                "block size {block_size} is not a power of two from 1 MiB to 256 MiB"
            )));
        }
        if logical_sector_size != 512 && logical_sector_size != 4096 {
            return Err(corrupt(format!(
                "logical sector size {logical_sector_size}"
            )));
        }
        if virtual_disk_size == 0
            || virtual_disk_size % logical_sector_size as u64 != 0
            || virtual_disk_size > 64 << 40
        {
            return Err(corrupt(format!(
                "virtual disk size {virtual_disk_size} is not a whole number of sectors up to 64 TiB"
            )));
        }
        let has_parent = flags & 2 != 0;
        let parent_locator = match items.get(&PARENT_LOCATOR.0) {
            Some(data) if has_parent => parse_parent_locator(path, data)?,
            _ if has_parent => return Err(corrupt("the parent locator item is missing".into())),
            _ => BTreeMap::new(),
        };
        Ok(Metadata {
            block_size,
            leave_blocks_allocated: flags & 1 != 0,
            has_parent,
            virtual_disk_size,
            logical_sector_size,
            physical_sector_size,
            page_83_data: items
                .get(&PAGE_83_DATA.0)
                .filter(|data| data.len() >= 16)
                .map(|data| Guid(array(data, 0))),
            parent_locator,
        })
    }

    /// The metadata region (table and items) describing this disk.
    pub fn to_region_bytes(&self, region_length: usize) -> Vec<u8> {
        let mut items: Vec<(Guid, Vec<u8>)> = vec![
            (
                FILE_PARAMETERS,
                [
                    self.block_size.to_le_bytes(),
                    (u32::from(self.leave_blocks_allocated) | u32::from(self.has_parent) << 1)
                        .to_le_bytes(),
                ]
                .concat(),
            ),
            (
                VIRTUAL_DISK_SIZE,
                self.virtual_disk_size.to_le_bytes().to_vec(),
            ),
            (
                LOGICAL_SECTOR_SIZE,
                self.logical_sector_size.to_le_bytes().to_vec(),
            ),
            (
                PHYSICAL_SECTOR_SIZE,
                self.physical_sector_size.to_le_bytes().to_vec(),
            ),
        ];
        if let Some(page_83_data) = self.page_83_data {
            items.push((PAGE_83_DATA, page_83_data.0.to_vec()));
        }
        if self.has_parent {
            items.push((PARENT_LOCATOR, parent_locator_bytes(&self.parent_locator)));
        }
        let mut region = vec![0u8; region_length];
        put(&mut region, 0, SIGNATURE);
        put(&mut region, 10, &(items.len() as u16).to_le_bytes());
        let mut offset = TABLE_SIZE;
        for (index, (guid, data)) in items.iter().enumerate() {
            let entry = 32 + index * 32;
            let flags = if *guid == FILE_PARAMETERS {
                FLAG_REQUIRED
            } else {
                FLAG_REQUIRED | FLAG_VIRTUAL_DISK
            };
            put(&mut region, entry, &guid.0);
            put(&mut region, entry + 16, &(offset as u32).to_le_bytes());
            put(&mut region, entry + 20, &(data.len() as u32).to_le_bytes());
            put(&mut region, entry + 24, &flags.to_le_bytes());
            put(&mut region, offset, data);
            offset += data.len().next_multiple_of(4096);
        }
        region
    }
}

fn parse_parent_locator(path: &Path, data: &[u8]) -> Result<BTreeMap<String, String>> {
    let corrupt = |reason: String| Error::corrupt(path, "VHDX parent locator", reason);
    if data.len() < 20 {
        return Err(corrupt("shorter than its 20-byte header".into()));
    }
    if Guid(array(data, 0)) != VHDX_PARENT_LOCATOR_TYPE {
        return Err(Error::unsupported(
            path,
            "VHDX parent locator",
            format!("locator type {}", Guid(array(data, 0))),
        ));
    }
    let count = le::u16_at(data, 18).unwrap_or_default() as usize;
    if 20 + count * 12 > data.len() {
        return Err(corrupt(format!(
            "{count} entries do not fit in {} bytes",
            data.len()
        )));
    }
    let text = |offset: u32, length: u16| -> Result<String> {
        let (offset, length) = (offset as usize, length as usize);
        data.get(offset..offset + length)
            .map(utf16::decode_le_lossy)
            .ok_or_else(|| corrupt(format!("text of {length} bytes at {offset} lies outside")))
    };
    let mut pairs = BTreeMap::new();
    for index in 0..count {
        let entry = &data[20 + index * 12..][..12];
        let key = text(
            le::u32_at(entry, 0).unwrap_or_default(),
            le::u16_at(entry, 8).unwrap_or_default(),
        )?;
        let value = text(
            le::u32_at(entry, 4).unwrap_or_default(),
            le::u16_at(entry, 10).unwrap_or_default(),
        )?;
        pairs.insert(key, value);
    }
    Ok(pairs)
}

fn parent_locator_bytes(pairs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut bytes = vec![0u8; 20 + pairs.len() * 12];
    put(&mut bytes, 0, &VHDX_PARENT_LOCATOR_TYPE.0);
    put(&mut bytes, 18, &(pairs.len() as u16).to_le_bytes());
    for (index, (key, value)) in pairs.iter().enumerate() {
        let (key, value) = (utf16::encode_le(key), utf16::encode_le(value));
        let key_offset = bytes.len();
        bytes.extend_from_slice(&key);
        let value_offset = bytes.len();
        bytes.extend_from_slice(&value);
        let entry = 20 + index * 12;
        put(&mut bytes, entry, &(key_offset as u32).to_le_bytes());
        put(&mut bytes, entry + 4, &(value_offset as u32).to_le_bytes());
        put(&mut bytes, entry + 8, &(key.len() as u16).to_le_bytes());
        put(&mut bytes, entry + 10, &(value.len() as u16).to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_guids_are_the_ones_ms_vhdx_lists() {
        let expected = [
            (FILE_PARAMETERS, "caa16737-fa36-4d43-b3b6-33f0aa44e76b"),
            (VIRTUAL_DISK_SIZE, "2fa54224-cd1b-4876-b211-5dbed83bf4b8"),
            (PAGE_83_DATA, "beca12ab-b2e6-4523-93ef-c309e000c746"),
            (LOGICAL_SECTOR_SIZE, "8141bf1d-a96f-4709-ba47-f233a8faab5f"),
            (PHYSICAL_SECTOR_SIZE, "cda348c7-445d-4471-9cc9-e9885251c556"),
            (PARENT_LOCATOR, "a8d35f2d-b30b-454d-abf7-d3d84834ab0c"),
            (
                VHDX_PARENT_LOCATOR_TYPE,
                "b04aefb7-d19e-4a81-b789-25b8e9445913",
            ),
        ];
        for (guid, text) in expected {
            assert_eq!(guid.to_string(), text);
        }
    }
}
