//! The VHDX log (MS-VHDX 2.3): a circular buffer of entries that must be replayed into the
//! file before the BAT, metadata or data are read, whenever the header's LogGuid is not zero.
//!
//! An entry is a whole number of 4 KiB sectors. Its header (little-endian): signature "loge"
//! (0), CRC-32C of the entire entry with the field zeroed (4), entry length (8), tail (12: the
//! log offset of the oldest entry still needed), sequence number (16, above zero), descriptor
//! count (24), reserved (28, zero), LogGuid (32), flushed file offset (48: the file size the
//! entry assumes), last file offset (56: the file size after the entry), both multiples of
//! 1 MiB. 32-byte descriptors follow at 64, padded to whole sectors, then one data sector per
//! data descriptor, which ends the entry.
//!
//! Descriptors: "zero" (0), reserved (4, zero), length (8), file offset (16), sequence number
//! (24); or "desc" (0), trailing 4 bytes (4), leading 8 bytes (8), file offset (16), sequence
//! number (24). A data sector is "data" (0), sequence high (4), 4084 bytes (8), sequence low
//! (4092); the 4 KiB written to the file are the leading 8 bytes, the 4084 bytes and the
//! trailing 4.
//!
//! The active sequence is found as MS-VHDX 2.3.3 describes: from each candidate tail, the
//! longest run of valid, contiguous entries with consecutive sequence numbers is a sequence,
//! valid when its head's tail is one of its entries; the valid sequence with the highest head
//! sequence number is active, and its entries from the head's tail to the head are replayed.
//! A pending log without a valid sequence, a file shorter than the head's flushed file offset,
//! and a sequence that would write where a log never writes (the file identifier, the headers,
//! the reserved rest of the first MiB, the log itself, past an entry's last file offset) are
//! corruption: the file is refused and nothing is written.

use std::collections::HashMap;
use std::path::Path;

use crate::bytes::array;
use crate::crc32c::crc32c_of_split_with_zeroed_field;
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};
use crate::vhdx::region_table::{REGION_TABLE_OFFSETS, REGION_TABLE_SIZE};
use reseal_nt::le;
use reseal_nt::Guid;

const SECTOR: u64 = 4096;
const MIB: u64 = 1 << 20;
/// The largest VHDX file: 64 TiB of data plus metadata, rounded up generously.
const MAX_FILE_SIZE: u64 = 128 << 40;
const STRUCTURE: &str = "VHDX log";

#[derive(Clone)]
enum Descriptor {
    Zero { file_offset: u64, length: u64 },
    Data { file_offset: u64, sector: Vec<u8> },
}

impl Descriptor {
    fn range(&self) -> (u64, u64) {
        match self {
            Descriptor::Zero {
                file_offset,
                length,
            } => (*file_offset, *length),
            Descriptor::Data { file_offset, .. } => (*file_offset, SECTOR),
        }
    }
}

#[derive(Clone)]
struct Entry {
    offset: u64,
    length: u64,
    tail: u64,
    sequence_number: u64,
    flushed_file_offset: u64,
    last_file_offset: u64,
    descriptors: Vec<Descriptor>,
}

/// The log region, read once (its length is bounded by the file size).
struct Log {
    bytes: Vec<u8>,
    guid: Guid,
}

impl Log {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The sector at log offset `offset`, counted around the circular log.
    fn sector(&self, offset: u64) -> &[u8] {
        let start = (offset % self.size()) as usize;
        &self.bytes[start..][..SECTOR as usize]
    }

    /// The entry at `offset`, or `None` when there is no valid entry of this log there
    /// (MS-VHDX 2.3.1: every field of the header, the descriptors and the data sectors).
    ///
    /// `room` is how far the next sector starting with "loge" is (the log's size when there is
    /// no other). Only an entry's first sector starts with "loge", so a longer entry is not
    /// valid, and is refused before its CRC-32C is computed (whose bytes `checksummed` counts).
    fn entry_at(&self, offset: u64, room: u64, checksummed: &mut u64) -> Option<Entry> {
        let size = self.size();
        let header = self.sector(offset);
        if &header[..4] != b"loge" || Guid(array(header, 32)) != self.guid {
            return None;
        }
        let field32 = |at| le::u32_at(header, at).unwrap_or_default() as u64;
        let field64 = |at| le::u64_at(header, at).unwrap_or_default();
        let (length, tail, descriptor_count, reserved) =
            (field32(8), field32(12), field32(24), field32(28));
        let sequence_number = field64(16);
        let (flushed_file_offset, last_file_offset) = (field64(48), field64(56));
        let descriptor_sectors = (64 + descriptor_count * 32).div_ceil(SECTOR);
        if length == 0
            || length % SECTOR != 0
            || length > size
            || length > room
            || tail % SECTOR != 0
            || tail >= size
            || sequence_number == 0
            || reserved != 0
            || flushed_file_offset % MIB != 0
            || last_file_offset % MIB != 0
            || descriptor_sectors * SECTOR > length
        {
            return None;
        }
        // The entry in place: up to the end of the log, then from its start when it wraps.
        let start = (offset % size) as usize;
        let first = &self.bytes[start..(start + length as usize).min(size as usize)];
        let second = &self.bytes[..length as usize - first.len()];
        *checksummed += length;
        let stored = le::u32_at(header, 4).unwrap_or_default();
        if stored != crc32c_of_split_with_zeroed_field(first, second, 4) {
            return None;
        }
        let mut data_sector = descriptor_sectors * SECTOR;
        let mut descriptors = Vec::new();
        for index in 0..descriptor_count {
            // 32-byte descriptors from byte 64: never across a sector boundary.
            let at = 64 + index * 32;
            let descriptor =
                &self.sector(offset + at / SECTOR * SECTOR)[(at % SECTOR) as usize..][..32];
            if le::u64_at(descriptor, 24).unwrap_or_default() != sequence_number {
                return None;
            }
            let file_offset = le::u64_at(descriptor, 16).unwrap_or_default();
            if file_offset % SECTOR != 0 {
                return None;
            }
            match &descriptor[..4] {
                b"zero" => {
                    let length = le::u64_at(descriptor, 8).unwrap_or_default();
                    if length % SECTOR != 0 || le::u32_at(descriptor, 4) != Some(0) {
                        return None;
                    }
                    descriptors.push(Descriptor::Zero {
                        file_offset,
                        length,
                    })
                }
                b"desc" => {
                    if data_sector + SECTOR > length {
                        return None;
                    }
                    let data = self.sector(offset + data_sector);
                    let data_sequence = (le::u32_at(data, 4).unwrap_or_default() as u64) << 32
                        | le::u32_at(data, 4092).unwrap_or_default() as u64;
                    if &data[..4] != b"data" || data_sequence != sequence_number {
                        return None;
                    }
                    let mut sector = Vec::with_capacity(SECTOR as usize);
                    sector.extend_from_slice(&descriptor[8..16]);
                    sector.extend_from_slice(&data[8..4092]);
                    sector.extend_from_slice(&descriptor[4..8]);
                    descriptors.push(Descriptor::Data {
                        file_offset,
                        sector,
                    });
                    data_sector += SECTOR;
                }
                _ => return None,
            }
        }
        // As many data sectors as data descriptors, and nothing after them.
        if data_sector != length {
            return None;
        }
        Some(Entry {
            offset,
            length,
            tail,
            sequence_number,
            flushed_file_offset,
            last_file_offset,
            descriptors,
        })
    }

    /// Every valid entry of the log, by log offset, each looked at once.
    ///
    /// Every sector of a valid entry starts with "loge", "desc", "zero" or "data", and only its
    /// first with "loge" (descriptor sectors after the first start with a descriptor, as 4096
    /// minus the 64-byte header is a multiple of 32). So a candidate is checksummed only when
    /// no other sector in its range starts with "loge": those ranges cannot overlap (of two
    /// overlapping ranges of the circular log, one holds the other's start), and the bytes
    /// checksummed total at most the log's size.
    fn valid_entries(&self, checksummed: &mut u64) -> HashMap<u64, Entry> {
        let size = self.size();
        let signed: Vec<u64> = (0..size)
            .step_by(SECTOR as usize)
            .filter(|&offset| &self.sector(offset)[..4] == b"loge")
            .collect();
        let mut entries = HashMap::new();
        for (index, &offset) in signed.iter().enumerate() {
            // The next signed sector, around the log (itself when it is the only one).
            let next = signed.get(index + 1).copied().unwrap_or(signed[0] + size);
            if let Some(entry) = self.entry_at(offset, next - offset, checksummed) {
                entries.insert(offset, entry);
            }
        }
        entries
    }

    /// The active sequence (MS-VHDX 2.3.3), tail entry first, or `None` when the log holds
    /// no valid sequence. `checksummed` counts the bytes whose CRC-32C was computed: at most
    /// the log's size, whatever the log holds.
    ///
    /// Valid entries never overlap (see [`Log::valid_entries`]), so the runs found from
    /// different tails are disjoint; a run found invalid is not searched again from its later
    /// entries (the same head would end them), which keeps the scan linear in the log size.
    fn active_sequence(&self, checksummed: &mut u64) -> Option<Vec<Entry>> {
        let size = self.size();
        let entries = self.valid_entries(checksummed);
        let sectors = (size / SECTOR) as usize;
        let mut known_invalid_start = vec![false; sectors];
        let mut candidate: Option<Vec<&Entry>> = None;
        // How far the scan has gone, unwrapped: it ends when it has been once around.
        let mut scanned = 0u64;
        while scanned < size {
            let tail = scanned % size;
            let mut current: Vec<&Entry> = Vec::new();
            let mut current_length = 0u64;
            if !known_invalid_start[(tail / SECTOR) as usize] {
                let mut position = tail;
                while let Some(entry) = entries.get(&position) {
                    let consecutive = current.last().is_none_or(|last| {
                        Some(entry.sequence_number) == last.sequence_number.checked_add(1)
                    });
                    if !consecutive || current_length + entry.length > size {
                        break;
                    }
                    position = (position + entry.length) % size;
                    current_length += entry.length;
                    current.push(entry);
                }
            }
            let tail_entry = current
                .last()
                .and_then(|head| current.iter().position(|entry| entry.offset == head.tail));
            match tail_entry {
                Some(first) => {
                    let head_sequence = current.last().map_or(0, |head| head.sequence_number);
                    let better = candidate.as_ref().is_none_or(|best| {
                        head_sequence > best.last().map_or(0, |head| head.sequence_number)
                    });
                    if better {
                        current.drain(..first);
                        candidate = Some(current);
                    }
                    scanned += current_length;
                }
                None => {
                    for entry in current.iter().skip(1) {
                        known_invalid_start[(entry.offset / SECTOR) as usize] = true;
                    }
                    scanned += SECTOR;
                }
            }
        }
        candidate.map(|sequence| sequence.into_iter().cloned().collect())
    }

    /// Why no sequence was found, for the error: what the log holds that looks like entries.
    fn describe_entries(&self) -> String {
        let (mut signed, mut other_guid) = (0, 0);
        for offset in (0..self.size()).step_by(SECTOR as usize) {
            let sector = &self.bytes[offset as usize..][..4];
            if sector == b"loge" {
                signed += 1;
                if Guid(array(&self.bytes[offset as usize..], 32)) != self.guid {
                    other_guid += 1;
                }
            }
        }
        format!("{signed} sectors start with \"loge\", {other_guid} of them with another LogGuid")
    }
}

/// Where the header puts the log, as [`pending`] needs it.
pub struct LogLocation {
    pub guid: Guid,
    pub offset: u64,
    pub length: u32,
}

/// The writes of a pending log, checked and not yet made.
pub struct Replay {
    writes: Vec<Descriptor>,
    /// The file size after the replay: at least the head entry's last file offset.
    len: u64,
    entries: usize,
}

impl Replay {
    /// No log to replay, over a file of `len` bytes.
    pub fn none(len: u64) -> Self {
        Replay {
            writes: Vec::new(),
            len,
            entries: 0,
        }
    }
}

/// Finds the active sequence of the log at `location` in `file` and checks every write it
/// would make; reads only.
pub fn pending(file: &mut dyn ImageFile, location: &LogLocation) -> Result<Replay> {
    let path = file.path().to_path_buf();
    let LogLocation {
        guid,
        offset: log_offset,
        length: log_length,
    } = *location;
    if log_offset < MIB || log_offset % MIB != 0 || log_length == 0 || log_length as u64 % MIB != 0
    {
        return Err(Error::corrupt(
            &path,
            STRUCTURE,
            format!("the header puts a log of {log_length} bytes at file offset {log_offset}; a log is a whole number of MiB at a 1 MiB boundary after the first MiB"),
        ));
    }
    let bytes = read_structure(file, log_offset, log_length as usize, STRUCTURE)?;
    let log = Log { bytes, guid };
    // How much was checksummed matters only to the tests.
    let Some(sequence) = log.active_sequence(&mut 0) else {
        return Err(Error::corrupt(
            &path,
            STRUCTURE,
            format!(
                "the header's LogGuid {guid} says the {log_length}-byte log at file offset {log_offset} holds entries to replay, but it holds no valid sequence of entries with that LogGuid ({})",
                log.describe_entries()
            ),
        ));
    };
    let head = sequence.last().expect("a valid sequence has a head");
    if file.len() < head.flushed_file_offset {
        return Err(Error::corrupt(
            &path,
            STRUCTURE,
            format!(
                "log entry {} (log offset {}) records a file of at least {} bytes, the file has {}; it was truncated",
                head.sequence_number,
                head.offset,
                head.flushed_file_offset,
                file.len()
            ),
        ));
    }
    let log_range = (log_offset, log_length as u64);
    let mut writes = Vec::new();
    for entry in &sequence {
        if entry.last_file_offset > MAX_FILE_SIZE {
            return Err(Error::corrupt(
                &path,
                STRUCTURE,
                format!(
                    "log entry {} (log offset {}) makes the file {} bytes long, more than any VHDX file",
                    entry.sequence_number, entry.offset, entry.last_file_offset
                ),
            ));
        }
        for descriptor in &entry.descriptors {
            let (file_offset, length) = descriptor.range();
            if let Some(reason) = forbidden_write(file_offset, length, entry, log_range) {
                return Err(Error::corrupt(
                    &path,
                    STRUCTURE,
                    format!(
                        "log entry {} (log offset {}) writes {length} bytes at file offset {file_offset}, {reason}",
                        entry.sequence_number, entry.offset
                    ),
                ));
            }
            writes.push(descriptor.clone());
        }
    }
    Ok(Replay {
        writes,
        len: file.len().max(head.last_file_offset),
        entries: sequence.len(),
    })
}

/// Why a log may not write `length` bytes at `file_offset`, if it may not.
fn forbidden_write(
    file_offset: u64,
    length: u64,
    entry: &Entry,
    (log_offset, log_length): (u64, u64),
) -> Option<String> {
    let Some(end) = file_offset.checked_add(length) else {
        return Some("past the end of any file".into());
    };
    let overlaps = |start: u64, size: u64| file_offset < start + size && start < end;
    let region_tables = REGION_TABLE_OFFSETS[0]..REGION_TABLE_OFFSETS[1] + REGION_TABLE_SIZE as u64;
    if file_offset < MIB && !(region_tables.contains(&file_offset) && end <= region_tables.end) {
        // The headers change only through their two copies (MS-VHDX 2.2.2.1), the identifier
        // never; of the first MiB only the region tables are updated through the log.
        return Some(
            "inside the first MiB outside the region tables (the file identifier, the headers or reserved space), which no log updates".into(),
        );
    }
    if overlaps(log_offset, log_length) {
        return Some(format!(
            "over the log itself ({log_length} bytes at file offset {log_offset})"
        ));
    }
    if end > entry.last_file_offset {
        return Some(format!(
            "past the entry's last file offset {}, the size every structure fits in",
            entry.last_file_offset
        ));
    }
    None
}

/// Makes the writes of `replay` in `file`, then grows it to the size the log records.
fn apply(file: &mut dyn ImageFile, replay: &Replay) -> Result<()> {
    for write in &replay.writes {
        match write {
            Descriptor::Zero {
                file_offset,
                length,
            } => file.write_zeros(*file_offset, *length)?,
            Descriptor::Data {
                file_offset,
                sector,
            } => file.write_at(*file_offset, sector)?,
        }
    }
    if file.len() < replay.len {
        file.set_len(replay.len)?;
    }
    Ok(())
}

/// A file with a pending log laid over it in memory: reads see the replayed log, the file
/// itself is not changed until [`LogOverlay::write_through`].
pub struct LogOverlay {
    inner: Box<dyn ImageFile>,
    replay: Replay,
}

impl LogOverlay {
    pub fn new(inner: Box<dyn ImageFile>, replay: Replay) -> Self {
        LogOverlay { inner, replay }
    }

    /// How many log entries the replay applies.
    pub fn entries(&self) -> usize {
        self.replay.entries
    }

    pub fn file_is_writable(&self) -> bool {
        self.inner.is_writable()
    }

    /// The file, left as it is.
    pub fn into_inner(self) -> Box<dyn ImageFile> {
        self.inner
    }

    /// Replays the log into the file itself and returns it.
    pub fn write_through(mut self) -> Result<Box<dyn ImageFile>> {
        apply(&mut *self.inner, &self.replay)?;
        Ok(self.inner)
    }
}

impl ImageFile for LogOverlay {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self) -> u64 {
        self.replay.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        crate::block_device::check_range(self.inner.path(), offset, buf.len(), self.len())?;
        let from_inner = self
            .inner
            .len()
            .saturating_sub(offset)
            .min(buf.len() as u64) as usize;
        self.inner.read_at(offset, &mut buf[..from_inner])?;
        buf[from_inner..].fill(0);
        let end = offset + buf.len() as u64;
        for write in &self.replay.writes {
            let (start, length) = write.range();
            let overlap_start = start.max(offset);
            let overlap_end = (start + length).min(end);
            if overlap_start >= overlap_end {
                continue;
            }
            let target =
                &mut buf[(overlap_start - offset) as usize..(overlap_end - offset) as usize];
            match write {
                Descriptor::Data { sector, .. } => target.copy_from_slice(
                    &sector[(overlap_start - start) as usize..(overlap_end - start) as usize],
                ),
                Descriptor::Zero { .. } => target.fill(0),
            }
        }
        Ok(())
    }
    fn write_at(&mut self, _offset: u64, _buf: &[u8]) -> Result<()> {
        Err(Error::ReadOnly {
            path: self.inner.path().to_path_buf(),
        })
    }
    fn set_len(&mut self, _len: u64) -> Result<()> {
        Err(Error::ReadOnly {
            path: self.inner.path().to_path_buf(),
        })
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn is_writable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_file::LocalFile;
    use reseal_testutil::vhdx_log::{
        arm, entry_header_in_every_sector, log_location, LogEntry, Write,
    };

    const GUID: [u8; 16] = *b"reseal-log-guid!";

    /// A 64 MiB dynamic VHDX with a log of `log_mib` MiB, made by qemu-img (its log is empty).
    fn vhdx(dir: &Path, log_mib: u32) -> std::path::PathBuf {
        let image = dir.join("d.vhdx");
        let status = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "vhdx", "-o"])
            .arg(format!("log_size={log_mib}M"))
            .arg(&image)
            .arg("64M")
            .status()
            .expect("qemu-img runs (cargo xtask setup installs it)");
        assert!(status.success());
        image
    }

    /// The log of `image` as [`pending`] reads it, and where it is.
    fn log_of(image: &Path) -> (Log, LogLocation) {
        let (offset, length) = log_location(image);
        let bytes = std::fs::read(image).unwrap();
        let log = Log {
            bytes: bytes[offset as usize..][..length as usize].to_vec(),
            guid: Guid(GUID),
        };
        let location = LogLocation {
            guid: Guid(GUID),
            offset,
            length,
        };
        (log, location)
    }

    /// Every sector an entry header claiming the whole log: each candidate would pass every
    /// check but the last ones, and checksumming each whole would cost the log's size squared
    /// over 4 KiB (16 GiB here). The log is refused, having checksummed at most twice its size.
    #[test]
    fn entry_headers_in_every_sector_are_refused_without_quadratic_work() {
        let dir = tempfile::tempdir().unwrap();
        let image = vhdx(dir.path(), 8);
        let (_, log_length) = log_location(&image);
        assert_eq!(log_length, 8 << 20);
        let file_len = std::fs::metadata(&image).unwrap().len();
        let crafted = entry_header_in_every_sector(GUID, file_len, log_length);
        arm(&image, GUID, &[(0, crafted)]);

        let (log, location) = log_of(&image);
        let mut checksummed = 0;
        assert!(log.active_sequence(&mut checksummed).is_none());
        assert!(
            checksummed <= 2 * log.size(),
            "{checksummed} bytes checksummed for a log of {}",
            log.size()
        );

        let mut file = LocalFile::open(&image, false).unwrap();
        match pending(&mut file, &location) {
            Err(Error::Corrupt { reason, .. }) => assert!(
                reason.contains("no valid sequence")
                    && reason.contains("2048 sectors start with \"loge\", 0 of them"),
                "{reason}"
            ),
            Err(other) => panic!("expected a corrupt log, got {other}"),
            Ok(_) => panic!("the crafted log was accepted"),
        }
    }

    /// The control: the entries of a valid log are found, each checksummed exactly once, the
    /// first of them wrapping around the end of the log (its data sector is the log's first).
    #[test]
    fn each_entry_of_a_valid_log_is_checksummed_once() {
        let dir = tempfile::tempdir().unwrap();
        let image = vhdx(dir.path(), 1);
        let file_len = std::fs::metadata(&image).unwrap().len();
        let last_sector = (1 << 20) - 4096;
        let data: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
        let first = LogEntry::new(7, last_sector, GUID, file_len)
            .with(Write::Data {
                file_offset: 8 << 20,
                sector: data.clone(),
            })
            .to_bytes();
        let second = LogEntry::new(8, last_sector, GUID, file_len).to_bytes();
        let total = (first.len() + second.len()) as u64;
        arm(
            &image,
            GUID,
            &[
                (last_sector, first[..4096].to_vec()),
                (0, first[4096..].to_vec()),
                (4096, second),
            ],
        );

        let (log, _) = log_of(&image);
        let mut checksummed = 0;
        let sequence = log.active_sequence(&mut checksummed).unwrap();
        let numbers: Vec<u64> = sequence.iter().map(|entry| entry.sequence_number).collect();
        assert_eq!(numbers, [7, 8]);
        assert!(matches!(
            &sequence[0].descriptors[..],
            [Descriptor::Data { file_offset, sector }] if *file_offset == 8 << 20 && *sector == data
        ));
        assert_eq!(checksummed, total);
    }
}
