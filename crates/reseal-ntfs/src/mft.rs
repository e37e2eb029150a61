//! Master File Table numbering (the record numbers of the system files used here and the record
//! part of an MFT reference), and what each file record says of its file (its `$Secure`
//! security id and its directory), read from `$MFT` in one sequential pass.

use std::collections::HashMap;

use reseal_nt::le;

use crate::error::Result;
use crate::on_disk::apply_fixups;
use crate::volume::Volume;
use reseal_ntfs_sys as sys;

/// `$MFT` itself.
pub(crate) const MFT_MFT: u64 = 0;
/// `$Volume`: the volume name, NTFS version and flags (the dirty flag).
pub(crate) const MFT_VOLUME: u64 = 3;
/// The root directory.
pub(crate) const MFT_ROOT: u64 = 5;
/// `$UpCase`: the volume's upper-case table.
pub(crate) const MFT_UPCASE: u64 = 10;
/// `$Extend`: the directory of the newer metadata files ($ObjId, $Quota, $Reparse, $UsnJrnl).
pub(crate) const MFT_EXTEND: u64 = 11;
/// Records below this are the volume's own metadata files ($MFT, $Bitmap...).
pub(crate) const FIRST_USER_RECORD: u64 = 16;

/// The record number part of an MFT reference (the top 16 bits are the sequence number).
pub(crate) const MFT_RECORD_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;

/// The attribute type of `$STANDARD_INFORMATION`, the first attribute of every base record.
const STANDARD_INFORMATION: u32 = 0x10;
/// The attribute type of `$FILE_NAME`, whose value starts with the parent directory's reference.
const FILE_NAME: u32 = 0x30;
/// The attribute type of `$SECURITY_DESCRIPTOR`, a file's own descriptor (NTFS 1.x's place).
const SECURITY_DESCRIPTOR: u32 = 0x50;
/// Where NTFS 3.x's `$STANDARD_INFORMATION` value holds the security id.
const SECURITY_ID: usize = 0x34;
/// libntfs-3g reads a file's security id (its "v3 extensions") when its `$STANDARD_INFORMATION`
/// attribute record is longer than this: a 0x18-byte header and NTFS 1.x's 0x30-byte value.
const STANDARD_INFORMATION_V1_RECORD: usize = 0x48;
/// How much of `$MFT` is read at a time.
const CHUNK_RECORDS: usize = 1024;

/// Which descriptor a file has, as its record tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DescriptorRef {
    /// The `$Secure` entry with this id, shared by every file naming it.
    Secure(u32),
    /// A `$SECURITY_DESCRIPTOR` attribute of its own, stored in the record (as libntfs-3g
    /// leaves files it made without a descriptor): this one of [`FileRecords::own`] (files
    /// with equal bytes share one).
    Own(u32),
    /// Not told by the record: no id, and the attribute is missing or stored outside it.
    Unknown,
}

/// What one MFT record says of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRecord {
    /// Not a file: never used, not in use, or an extension record of another file's.
    Absent,
    /// A damaged record (its update sequence does not match, or chkdsk marked it bad).
    Unreadable,
    File {
        descriptor: DescriptorRef,
        /// The directory its first name is in; `None` when the record holds no name (it has
        /// none, or its names are in extension records).
        parent: Option<u64>,
    },
}

impl FileRecord {
    pub(crate) fn descriptor(&self) -> DescriptorRef {
        match self {
            FileRecord::File { descriptor, .. } => *descriptor,
            _ => DescriptorRef::Unknown,
        }
    }
}

/// Every MFT record's [`FileRecord`], indexed by record number, and the distinct descriptors
/// files hold in their records.
#[derive(Debug, Default)]
pub(crate) struct FileRecords {
    pub records: Vec<FileRecord>,
    pub own: Vec<Vec<u8>>,
}

/// The distinct descriptors found in records so far.
#[derive(Default)]
struct OwnDescriptors {
    list: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, u32>,
}

impl OwnDescriptors {
    fn add(&mut self, bytes: &[u8]) -> u32 {
        if let Some(&found) = self.index.get(bytes) {
            return found;
        }
        let index = self.list.len() as u32;
        self.list.push(bytes.to_vec());
        self.index.insert(bytes.to_vec(), index);
        index
    }
}

impl Volume {
    /// What each MFT record says of its file. Files sharing a non-zero security id share one
    /// descriptor, so one of them tells what all of them hold.
    pub(crate) fn file_records(&self) -> Result<FileRecords> {
        let shown = "$MFT";
        let inode = self.open(MFT_MFT, shown)?;
        let Some(mut data) = inode.open_attr(sys::AT_DATA, &[]).map_err(|failure| {
            crate::error::ntfs_error(&self.image, "open the data of", shown, failure)
        })?
        else {
            return Ok(FileRecords::default());
        };
        let size = data.data_size() as usize;
        let mut first = [0u8; 0x20];
        if size < first.len() {
            return Ok(FileRecords::default());
        }
        self.read_all_at(&mut data, 0, &mut first, shown)?;
        // The record size, from $MFT's own record (checked at mount with the boot sector's).
        let record_size = le::u32_at(&first, 0x1C).unwrap_or_default() as usize;
        if !(256..=65536).contains(&record_size) || !record_size.is_power_of_two() {
            return Ok(FileRecords::default());
        }
        let records = size / record_size;
        // Grown as records are read: the size is the volume's word, not yet checked.
        let mut found = Vec::new();
        let mut own = OwnDescriptors::default();
        let mut chunk = vec![0u8; CHUNK_RECORDS * record_size];
        while found.len() < records {
            let count = CHUNK_RECORDS.min(records - found.len());
            let buffer = &mut chunk[..count * record_size];
            self.read_all_at(&mut data, found.len() * record_size, buffer, shown)?;
            found.extend(
                buffer
                    .chunks_exact_mut(record_size)
                    .map(|record| file_record(record, &mut own)),
            );
        }
        Ok(FileRecords {
            records: found,
            own: own.list,
        })
    }
}

/// What one FILE record (its fixups applied in place) says. Layout: flags at 0x16 (bit 0: in
/// use), first attribute at 0x14, bytes in use at 0x18, base record reference at 0x20 (0 for a
/// base record); each attribute its type (0), length (4), non-resident flag (8), value length
/// (0x10) and value offset (0x14), in ascending type order.
fn file_record(record: &mut [u8], own: &mut OwnDescriptors) -> FileRecord {
    match &record[..4] {
        b"FILE" => {}
        b"BAAD" => return FileRecord::Unreadable,
        _ => return FileRecord::Absent,
    }
    if apply_fixups(record).is_err() {
        return FileRecord::Unreadable;
    }
    let field16 = |at| le::u16_at(record, at).unwrap_or_default() as usize;
    let in_use = field16(0x16) & 1 != 0;
    let base = le::u64_at(record, 0x20).unwrap_or(u64::MAX) & MFT_RECORD_MASK;
    if !in_use || base != 0 {
        return FileRecord::Absent;
    }
    let bytes_in_use = (le::u32_at(record, 0x18).unwrap_or_default() as usize).min(record.len());
    // What $STANDARD_INFORMATION says: `Some(Some(id))` with NTFS 3.x's extensions,
    // `Some(None)` without (the file's own descriptor applies); and the unnamed
    // $SECURITY_DESCRIPTORs held in the record (libntfs-3g reads the unnamed one).
    let (mut security_id, mut parent, mut own_descriptors) = (None, None, Vec::new());
    let mut odd = false;
    let mut at = field16(0x14);
    while at + 0x18 <= bytes_in_use {
        let kind = le::u32_at(record, at).unwrap_or(u32::MAX);
        let length = le::u32_at(record, at + 4).unwrap_or_default() as usize;
        if kind > SECURITY_DESCRIPTOR || length < 0x18 {
            break;
        }
        let resident = record[at + 8] == 0;
        let unnamed = record[at + 9] == 0;
        let value_length = le::u32_at(record, at + 0x10).unwrap_or_default() as usize;
        let value = at + field16(at + 0x14);
        let value_fits = value.saturating_add(value_length) <= bytes_in_use;
        if resident && value_fits {
            if kind == STANDARD_INFORMATION {
                if length <= STANDARD_INFORMATION_V1_RECORD {
                    security_id = Some(None);
                } else if value_length >= SECURITY_ID + 4 {
                    security_id = Some(le::u32_at(record, value + SECURITY_ID));
                } else {
                    odd = true;
                }
            }
            if kind == FILE_NAME && value_length >= 8 && parent.is_none() {
                parent = le::u64_at(record, value).map(|reference| reference & MFT_RECORD_MASK);
            }
            if kind == SECURITY_DESCRIPTOR && unnamed {
                own_descriptors.push(own.add(&record[value..value + value_length]));
            }
        }
        let Some(next) = at.checked_add(length) else {
            break;
        };
        at = next;
    }
    // Anything the record does not say plainly (an older or odd $STANDARD_INFORMATION, a
    // descriptor stored outside the record or twice) leaves the file to be read.
    let descriptor = match (security_id.filter(|_| !odd), own_descriptors.as_slice()) {
        (Some(Some(0) | None), [index]) => DescriptorRef::Own(*index),
        (Some(Some(id)), _) if id != 0 => DescriptorRef::Secure(id),
        _ => DescriptorRef::Unknown,
    };
    FileRecord::File { descriptor, parent }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    /// Every record's id as the `ntfs` crate (a reader we did not write) reads it from
    /// `$STANDARD_INFORMATION`: 0 for records not in use and those without one.
    #[test]
    fn security_ids_are_those_the_ntfs_crate_reads() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("volume.img");
        reseal_testutil::ntfs_image::make_volume(&image, 64 << 20);
        let sample = reseal_testutil::workspace_root().join("fixtures/sample.wim");
        reseal_testutil::ntfs_image::apply_wim(&sample, &image);
        let volume = Volume::mount(reseal_disk::open(&image).unwrap(), false).unwrap();
        let ids: Vec<u32> = volume
            .file_records()
            .unwrap()
            .records
            .iter()
            .map(|record| match record.descriptor() {
                DescriptorRef::Secure(id) => id,
                _ => 0,
            })
            .collect();

        let mut reader = BufReader::new(std::fs::File::open(&image).unwrap());
        let ntfs = ntfs::Ntfs::new(&mut reader).unwrap();
        for (number, &id) in ids.iter().enumerate() {
            let expected = match ntfs.file(&mut reader, number as u64) {
                Ok(file) if file.flags().contains(ntfs::NtfsFileFlags::IN_USE) => file
                    .info()
                    .ok()
                    .and_then(|info| info.security_id())
                    .unwrap_or(0),
                _ => 0,
            };
            assert_eq!(id, expected, "record {number}");
        }
        let files = ids.iter().filter(|&&id| id != 0).count();
        let distinct: std::collections::HashSet<_> = ids.iter().filter(|&&id| id != 0).collect();
        // The sample's files with descriptors of their own: two descriptors among ten files.
        assert!(
            files >= 5 && distinct.len() >= 2,
            "{files} files, {} ids",
            distinct.len()
        );
    }
}
