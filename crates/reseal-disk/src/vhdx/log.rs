//! The VHDX log: a circular buffer of entries that must be replayed into the file before the
//! BAT, metadata or data are read, whenever the header's LogGuid is not zero.
//!
//! An entry is a whole number of 4 KiB sectors. Its header (little-endian): signature "loge"
//! (0), CRC-32C of the entire entry with the field zeroed (4), entry length (8), tail (12: the
//! log offset of the oldest entry still needed), sequence number (16), descriptor count (24),
//! reserved (28), LogGuid (32), flushed file offset (48: the file size the entry assumes),
//! last file offset (56: the file size after the entry). 32-byte descriptors follow at 64,
//! padded to whole sectors, then one data sector per data descriptor.
//!
//! Descriptors: "zero" (0), reserved (4), length (8), file offset (16), sequence number (24);
//! or "desc" (0), trailing 4 bytes (4), leading 8 bytes (8), file offset (16), sequence number
//! (24). A data sector is "data" (0), sequence high (4), 4084 bytes (8), sequence low (4092);
//! the 4 KiB written to the file are the leading 8 bytes, the 4084 bytes and the trailing 4.
//!
//! The active sequence ends at the valid entry with the highest sequence number whose tail
//! leads to it through valid entries with consecutive sequence numbers; replay applies the
//! entries from that tail to it, in order.

use std::path::Path;

use crate::bytes::array;
use crate::crc32c::crc32c_with_zeroed_field;
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};
use reseal_nt::le;
use reseal_nt::Guid;

const SECTOR: u64 = 4096;
/// The largest VHDX file: 64 TiB of data plus metadata, rounded up generously.
const MAX_FILE_SIZE: u64 = 128 << 40;
const STRUCTURE: &str = "VHDX log";

enum Descriptor {
    Zero { file_offset: u64, length: u64 },
    Data { file_offset: u64, sector: Vec<u8> },
}

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
    /// `length` bytes starting at `offset` in the circular log.
    fn wrapped(&self, offset: u64, length: u64) -> Vec<u8> {
        let size = self.bytes.len();
        let start = (offset % size as u64) as usize;
        let length = length as usize;
        let mut out = Vec::with_capacity(length);
        while out.len() < length {
            let from = (start + out.len()) % size;
            let piece = (length - out.len()).min(size - from);
            out.extend_from_slice(&self.bytes[from..from + piece]);
        }
        out
    }

    /// The entry at `offset`, or `None` when there is no valid entry of this log there.
    fn entry_at(&self, offset: u64) -> Option<Entry> {
        let size = self.bytes.len() as u64;
        let header = self.wrapped(offset, SECTOR);
        if &header[..4] != b"loge" || Guid(array(&header, 32)) != self.guid {
            return None;
        }
        let length = le::u32_at(&header, 8).unwrap_or_default() as u64;
        let descriptor_count = le::u32_at(&header, 24).unwrap_or_default() as u64;
        let descriptor_sectors = (64 + descriptor_count * 32).div_ceil(SECTOR);
        if length == 0
            || length % SECTOR != 0
            || length > size
            || descriptor_sectors * SECTOR > length
        {
            return None;
        }
        let entry = self.wrapped(offset, length);
        if le::u32_at(&entry, 4).unwrap_or_default() != crc32c_with_zeroed_field(&entry, 4) {
            return None;
        }
        let sequence_number = le::u64_at(&entry, 16).unwrap_or_default();
        let last_file_offset = le::u64_at(&entry, 56).unwrap_or_default();
        if last_file_offset > MAX_FILE_SIZE {
            return None;
        }
        // Every write of the entry must lie within the file size the entry records, so a
        // damaged entry cannot grow the file without bound.
        let within_file = |file_offset: u64, length: u64| {
            file_offset % SECTOR == 0
                && file_offset
                    .checked_add(length)
                    .is_some_and(|end| end <= last_file_offset)
        };
        let mut data_sector = descriptor_sectors * SECTOR;
        let mut descriptors = Vec::new();
        for index in 0..descriptor_count {
            let descriptor = &entry[(64 + index * 32) as usize..][..32];
            if le::u64_at(descriptor, 24).unwrap_or_default() != sequence_number {
                return None;
            }
            let file_offset = le::u64_at(descriptor, 16).unwrap_or_default();
            match &descriptor[..4] {
                b"zero" => {
                    let length = le::u64_at(descriptor, 8).unwrap_or_default();
                    if length % SECTOR != 0 || !within_file(file_offset, length) {
                        return None;
                    }
                    descriptors.push(Descriptor::Zero {
                        file_offset,
                        length,
                    })
                }
                b"desc" => {
                    if !within_file(file_offset, SECTOR) {
                        return None;
                    }
                    if data_sector + SECTOR > length {
                        return None;
                    }
                    let data = &entry[data_sector as usize..][..SECTOR as usize];
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
        Some(Entry {
            offset,
            length,
            tail: le::u32_at(&entry, 12).unwrap_or_default() as u64,
            sequence_number,
            flushed_file_offset: le::u64_at(&entry, 48).unwrap_or_default(),
            last_file_offset,
            descriptors,
        })
    }

    /// The entries from `head`'s tail to `head`, if they form a sequence.
    fn sequence_ending_at(&self, head: &Entry) -> Option<Vec<Entry>> {
        let size = self.bytes.len() as u64;
        let mut entries = Vec::new();
        let mut offset = head.tail;
        loop {
            if offset % SECTOR != 0 || offset >= size || entries.len() as u64 > size / SECTOR {
                return None;
            }
            if offset == head.offset {
                let first = entries
                    .first()
                    .map_or(head.sequence_number, |e: &Entry| e.sequence_number);
                if head.sequence_number != first + entries.len() as u64 {
                    return None;
                }
                entries.push(self.entry_at(offset)?);
                return Some(entries);
            }
            let entry = self.entry_at(offset)?;
            if let Some(previous) = entries.last() {
                if entry.sequence_number != previous.sequence_number + 1 {
                    return None;
                }
            }
            offset = (offset + entry.length) % size;
            entries.push(entry);
        }
    }

    fn active_sequence(&self) -> Vec<Entry> {
        let mut best: Option<Vec<Entry>> = None;
        for offset in (0..self.bytes.len() as u64).step_by(SECTOR as usize) {
            let Some(head) = self.entry_at(offset) else {
                continue;
            };
            let better = best
                .as_ref()
                .is_none_or(|b| head.sequence_number > b.last().map_or(0, |e| e.sequence_number));
            if better {
                if let Some(sequence) = self.sequence_ending_at(&head) {
                    best = Some(sequence);
                }
            }
        }
        best.unwrap_or_default()
    }
}

/// Replays the log at `log_offset` into `file` (the real file, or a [`LogOverlay`] for a
/// read-only open). Returns the number of entries applied.
pub fn replay(
    file: &mut dyn ImageFile,
    log_guid: Guid,
    log_offset: u64,
    log_length: u32,
) -> Result<usize> {
    let path = file.path().to_path_buf();
    if log_offset % (1 << 20) != 0 || log_length == 0 || log_length % (1 << 20) != 0 {
        return Err(Error::corrupt(
            &path,
            STRUCTURE,
            format!("log of {log_length} bytes at {log_offset} is not 1 MiB aligned"),
        ));
    }
    let bytes = read_structure(file, log_offset, log_length as usize, STRUCTURE)?;
    let log = Log {
        bytes,
        guid: log_guid,
    };
    let sequence = log.active_sequence();
    for entry in &sequence {
        apply(file, &path, entry)?;
    }
    Ok(sequence.len())
}

fn apply(file: &mut dyn ImageFile, path: &Path, entry: &Entry) -> Result<()> {
    if file.len() < entry.flushed_file_offset {
        return Err(Error::corrupt(
            path,
            STRUCTURE,
            format!(
                "entry {} needs a file of {} bytes, the file has {}; it was truncated",
                entry.sequence_number,
                entry.flushed_file_offset,
                file.len()
            ),
        ));
    }
    for descriptor in &entry.descriptors {
        match descriptor {
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
    if file.len() < entry.last_file_offset {
        file.set_len(entry.last_file_offset)?;
    }
    Ok(())
}

enum OverlayWrite {
    Data(u64, Vec<u8>),
    Zeros(u64, u64),
}

/// A read-only file with the log applied in memory: writes are kept and laid over reads.
pub struct LogOverlay {
    inner: Box<dyn ImageFile>,
    writes: Vec<OverlayWrite>,
    len: u64,
}

impl LogOverlay {
    pub fn new(inner: Box<dyn ImageFile>) -> Self {
        let len = inner.len();
        LogOverlay {
            inner,
            writes: Vec::new(),
            len,
        }
    }
}

impl ImageFile for LogOverlay {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        crate::block_device::check_range(self.inner.path(), offset, buf.len(), self.len)?;
        let from_inner = self
            .inner
            .len()
            .saturating_sub(offset)
            .min(buf.len() as u64) as usize;
        self.inner.read_at(offset, &mut buf[..from_inner])?;
        buf[from_inner..].fill(0);
        let end = offset + buf.len() as u64;
        for write in &self.writes {
            let (start, length) = match write {
                OverlayWrite::Data(start, data) => (*start, data.len() as u64),
                OverlayWrite::Zeros(start, length) => (*start, *length),
            };
            let overlap_start = start.max(offset);
            let overlap_end = (start + length).min(end);
            if overlap_start >= overlap_end {
                continue;
            }
            let target =
                &mut buf[(overlap_start - offset) as usize..(overlap_end - offset) as usize];
            match write {
                OverlayWrite::Data(_, data) => target.copy_from_slice(
                    &data[(overlap_start - start) as usize..(overlap_end - start) as usize],
                ),
                OverlayWrite::Zeros(..) => target.fill(0),
            }
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.writes.push(OverlayWrite::Data(offset, buf.to_vec()));
        self.len = self.len.max(offset + buf.len() as u64);
        Ok(())
    }
    fn write_zeros(&mut self, offset: u64, length: u64) -> Result<()> {
        self.writes.push(OverlayWrite::Zeros(offset, length));
        self.len = self.len.max(offset + length);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        self.len = len;
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn is_writable(&self) -> bool {
        false
    }
}
