//! The structures libntfs-3g trusts when it mounts a volume, checked first so that damage is
//! reported with the structure, its offset and what is wrong: the boot sector (its backup in
//! the volume's last sector tells a damaged NTFS boot sector from another file system) and
//! the system records at the start of the MFT (signature, update sequence fixups, attributes).

use reseal_disk::BlockDevice;
use reseal_nt::le;

/// What a valid NTFS boot sector says about the volume.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootSector {
    pub mft_offset: u64,
    pub mft_record_size: u64,
}

/// Damage found in a structure: which, at which byte offset of the volume, and why.
#[derive(Debug)]
pub(crate) struct Damage {
    pub structure: &'static str,
    pub offset: u64,
    pub reason: String,
}

pub(crate) const NTFS_OEM_ID: &[u8; 8] = b"NTFS    ";

impl BootSector {
    /// Checks the fields libntfs-3g relies on against each other and the volume size.
    pub(crate) fn parse(sector: &[u8], volume_size: u64) -> Result<BootSector, String> {
        if sector.len() < 512 {
            return Err(format!("only {} bytes", sector.len()));
        }
        if &sector[3..11] != NTFS_OEM_ID {
            return Err(format!(
                "the OEM id is {:?}, not \"NTFS    \"",
                String::from_utf8_lossy(&sector[3..11])
            ));
        }
        if sector[510..512] != [0x55, 0xAA] {
            return Err(format!(
                "the end marker is {:02X} {:02X}, not 55 AA",
                sector[510], sector[511]
            ));
        }
        let bytes_per_sector = le::u16_at(sector, 11).unwrap_or_default() as u64;
        if !(256..=4096).contains(&bytes_per_sector) || !bytes_per_sector.is_power_of_two() {
            return Err(format!(
                "{bytes_per_sector} bytes per sector (256 to 4096, a power of two)"
            ));
        }
        let cluster_size = match sector[13] {
            count @ 1..=0x80 if count.is_power_of_two() => count as u64 * bytes_per_sector,
            // Above 0x80 the field is a negative power of two (clusters of 64 KiB and more).
            shift @ 0xF4..=0xFF => 1u64 << (256 - shift as u32),
            other => {
                return Err(format!(
                    "sectors per cluster is {other:#04x}, not a power of two"
                ))
            }
        };
        if cluster_size > 2 << 20 {
            return Err(format!("clusters of {cluster_size} bytes (at most 2 MiB)"));
        }
        let total_sectors = le::u64_at(sector, 0x28).unwrap_or_default();
        let volume_bytes = total_sectors.checked_mul(bytes_per_sector);
        if total_sectors == 0 || volume_bytes.is_none_or(|bytes| bytes > volume_size) {
            return Err(format!(
                "{total_sectors} sectors of {bytes_per_sector} bytes do not fit in the {volume_size}-byte partition"
            ));
        }
        let volume_bytes = volume_bytes.unwrap_or_default();
        let cluster_offset = |field: usize, name: &str| -> Result<u64, String> {
            let lcn = le::u64_at(sector, field).unwrap_or_default();
            match lcn.checked_mul(cluster_size) {
                Some(offset) if lcn > 0 && offset < volume_bytes => Ok(offset),
                _ => Err(format!("the {name} cluster {lcn} lies outside the volume")),
            }
        };
        let mft_offset = cluster_offset(0x30, "$MFT")?;
        cluster_offset(0x38, "$MFTMirr")?;
        let mft_record_size = match sector[0x40] as i8 {
            clusters @ 1..=127 => clusters as u64 * cluster_size,
            shift @ -31..=-1 => 1u64 << -(shift as i32),
            other => return Err(format!("clusters per MFT record is {other}")),
        };
        if !(256..=65536).contains(&mft_record_size) || !mft_record_size.is_power_of_two() {
            return Err(format!(
                "MFT records of {mft_record_size} bytes (256 to 64 KiB, a power of two)"
            ));
        }
        Ok(BootSector {
            mft_offset,
            mft_record_size,
        })
    }
}

/// How many records at the start of the MFT are checked: the system files libntfs-3g opens
/// when it mounts ($MFT to $UpCase), which always lie in the MFT's first extent.
const SYSTEM_RECORDS: u64 = 11;
/// Update sequence fixups protect every 512 bytes of a record, whatever the sector size.
const FIXUP_STRIDE: usize = 512;

/// Checks the first [`SYSTEM_RECORDS`] records of the MFT.
pub(crate) fn check_system_records(
    device: &mut dyn BlockDevice,
    boot: &BootSector,
) -> Result<(), DamageOrIo> {
    let size = boot.mft_record_size;
    let end = boot.mft_offset + SYSTEM_RECORDS * size;
    if end > device.len() {
        return Err(DamageOrIo::Damage(Damage {
            structure: "$MFT",
            offset: boot.mft_offset,
            reason: format!(
                "the first {SYSTEM_RECORDS} records reach past the end of the volume ({} bytes)",
                device.len()
            ),
        }));
    }
    let mut records = vec![0u8; (SYSTEM_RECORDS * size) as usize];
    device
        .read_at(boot.mft_offset, &mut records)
        .map_err(DamageOrIo::Io)?;
    for (number, record) in records.chunks_exact(size as usize).enumerate() {
        let offset = boot.mft_offset + number as u64 * size;
        check_record(record).map_err(|reason| {
            DamageOrIo::Damage(Damage {
                structure: SYSTEM_RECORD_NAMES[number],
                offset,
                reason,
            })
        })?;
    }
    Ok(())
}

pub(crate) enum DamageOrIo {
    Damage(Damage),
    Io(reseal_disk::Error),
}

const SYSTEM_RECORD_NAMES: [&str; SYSTEM_RECORDS as usize] = [
    "MFT record 0 ($MFT)",
    "MFT record 1 ($MFTMirr)",
    "MFT record 2 ($LogFile)",
    "MFT record 3 ($Volume)",
    "MFT record 4 ($AttrDef)",
    "MFT record 5 (the root directory)",
    "MFT record 6 ($Bitmap)",
    "MFT record 7 ($Boot)",
    "MFT record 8 ($BadClus)",
    "MFT record 9 ($Secure)",
    "MFT record 10 ($UpCase)",
];

/// Checks that every 512-byte stride of `record` ends with the update sequence number at
/// `usa_offset` (a torn or damaged write otherwise).
fn check_fixups(record: &[u8], usa_offset: usize, strides: usize) -> Result<(), String> {
    let usn = &record[usa_offset..usa_offset + 2];
    for stride in 0..strides {
        let end = (stride + 1) * FIXUP_STRIDE;
        if &record[end - 2..end] != usn {
            return Err(format!(
                "the fixup at offset {} is {:02X}{:02X}, the update sequence number is {:02X}{:02X} (a torn or damaged write)",
                end - 2,
                record[end - 2],
                record[end - 1],
                usn[0],
                usn[1]
            ));
        }
    }
    Ok(())
}

/// Where a FILE record's update sequence array is (offset, entries) and how many 512-byte
/// strides it protects, checked to fit the record and its first stride.
fn update_sequence(record: &[u8]) -> Result<(usize, usize, usize), String> {
    let field16 = |at| le::u16_at(record, at).unwrap_or_default() as usize;
    let (usa_offset, usa_count) = (field16(4), field16(6));
    let strides = record.len() / FIXUP_STRIDE;
    if usa_count != strides + 1
        || usa_offset % 2 != 0
        || usa_offset + 2 * usa_count > FIXUP_STRIDE.min(record.len())
    {
        return Err(format!(
            "update sequence array of {usa_count} entries at offset {usa_offset} (a {}-byte record needs {})",
            record.len(),
            strides + 1
        ));
    }
    Ok((usa_offset, usa_count, strides))
}

/// Checks the update sequence of a FILE record and puts back the bytes it saved at the end of
/// each 512-byte stride, as the record was before it was written.
pub(crate) fn apply_fixups(record: &mut [u8]) -> Result<(), String> {
    let (usa_offset, _, strides) = update_sequence(record)?;
    check_fixups(record, usa_offset, strides)?;
    for stride in 0..strides {
        let saved = usa_offset + 2 * (stride + 1);
        let end = (stride + 1) * FIXUP_STRIDE;
        let bytes = [record[saved], record[saved + 1]];
        record[end - 2..end].copy_from_slice(&bytes);
    }
    Ok(())
}

/// One FILE record (layout: signature (0), update sequence offset (4) and count (6), flags
/// (0x16, bit 0 in use), first attribute (0x14), bytes in use (0x18), allocated size (0x1C);
/// attributes of type (0) and length (4) up to the 0xFFFFFFFF end marker).
fn check_record(record: &[u8]) -> Result<(), String> {
    match &record[..4] {
        b"FILE" => {}
        b"BAAD" => return Err("chkdsk marked it bad (signature BAAD)".into()),
        other => {
            return Err(format!(
                "the signature is {:?}, not FILE",
                String::from_utf8_lossy(other)
            ))
        }
    }
    let field16 = |at| le::u16_at(record, at).unwrap_or_default() as usize;
    let field32 = |at| le::u32_at(record, at).unwrap_or_default() as usize;
    let (usa_offset, usa_count, strides) = update_sequence(record)?;
    check_fixups(record, usa_offset, strides)?;
    if field16(0x16) & 1 == 0 {
        return Err("the record is not in use".into());
    }
    let (first_attribute, bytes_in_use, allocated) = (field16(0x14), field32(0x18), field32(0x1C));
    if allocated != record.len() || bytes_in_use > allocated {
        return Err(format!(
            "{bytes_in_use} bytes in use of {allocated} allocated (records are {} bytes)",
            record.len()
        ));
    }
    if first_attribute % 8 != 0 || first_attribute < usa_offset + 2 * usa_count {
        return Err(format!(
            "the first attribute is at offset {first_attribute}, inside the header"
        ));
    }
    let mut at = first_attribute;
    loop {
        if at + 4 > bytes_in_use {
            return Err(format!(
                "the attributes run past the {bytes_in_use} bytes in use without an end marker"
            ));
        }
        if le::u32_at(record, at) == Some(0xFFFF_FFFF) {
            return Ok(());
        }
        let length = le::u32_at(record, at + 4).unwrap_or_default() as usize;
        if length == 0 || length % 8 != 0 || at + length > bytes_in_use {
            return Err(format!(
                "the attribute at offset {at} has length {length} ({} bytes are left in use)",
                bytes_in_use - at
            ));
        }
        at += length;
    }
}
