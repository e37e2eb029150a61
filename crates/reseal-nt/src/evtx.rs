//! Windows event log files (`.evtx`): the parts reseal writes (an empty log, and the header and
//! chunk structures the sample image's logs are built from) and the record count it reports.
//!
//! # Layout
//!
//! All numbers are little-endian. CRCs are CRC-32 (IEEE, as zlib computes it).
//!
//! **File header**: a 4096-byte block, of which the first 128 bytes are used.
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 8 | signature `ElfFile\0` |
//! | 8 | 8 | first chunk number |
//! | 16 | 8 | last chunk number (the chunk in use) |
//! | 24 | 8 | next record identifier (1 in an empty log) |
//! | 32 | 4 | header size, 128 |
//! | 36 | 2 | minor version, 1 |
//! | 38 | 2 | major version, 3 |
//! | 40 | 2 | header block size, 4096 |
//! | 42 | 2 | number of chunks |
//! | 120 | 4 | file flags: 0x1 dirty, 0x2 full |
//! | 124 | 4 | CRC-32 of bytes 0..120 |
//!
//! **Chunk**: 65536 bytes following the header (chunk *n* at `4096 + n * 65536`), starting with
//! a 512-byte chunk header.
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 8 | signature `ElfChnk\0` |
//! | 8 | 8 | first event record number |
//! | 16 | 8 | last event record number |
//! | 24 | 8 | first event record identifier |
//! | 32 | 8 | last event record identifier |
//! | 40 | 4 | header size, 128 |
//! | 44 | 4 | offset of the last record (chunk-relative) |
//! | 48 | 4 | free space offset: where the records end (chunk-relative) |
//! | 52 | 4 | CRC-32 of the records, bytes 512..free space offset |
//! | 120 | 4 | chunk flags (Windows writes 1) |
//! | 124 | 4 | CRC-32 of bytes 0..120 followed by 128..512 |
//! | 128 | 256 | common string offset table (64 × u32) |
//! | 384 | 128 | template pointer table (32 × u32) |
//! | 512 | … | event records |
//!
//! **Event record**: `**\0\0`, u32 size (of the whole record), u64 record identifier, u64
//! FILETIME written, the BinXML event, then the size again as the last 4 bytes. BinXML names are
//! offsets from the start of the chunk, which is why a record's bytes depend on where in the
//! chunk it goes ([`ChunkBuilder::next_record_offset`]).
//!
//! # The empty log
//!
//! [`empty_log`] writes header plus one *initialised* empty chunk whose first and last record
//! numbers and identifiers are all 0. Windows' own empty chunks use 1 and then -1 for the others,
//! which the strictest reader (libevtx) flags as corrupt because first > last; equal values are
//! accepted by libevtx, python-evtx and the `evtx` crate alike.

use crate::le;
use std::ops::Range;

/// Size of the file header block.
pub const FILE_HEADER_SIZE: usize = 4096;
/// Size of one chunk.
pub const CHUNK_SIZE: usize = 65536;
/// Size of a chunk's header; records start at this chunk offset.
pub const CHUNK_HEADER_SIZE: usize = 512;
/// Size of an event record's fixed header (signature, size, identifier, timestamp).
pub const RECORD_HEADER_SIZE: usize = 24;
/// A record's fixed header plus the trailing copy of its size.
const RECORD_OVERHEAD: usize = RECORD_HEADER_SIZE + 4;

/// `ElfFile\0`.
pub const FILE_SIGNATURE: &[u8; 8] = b"ElfFile\0";
/// `ElfChnk\0`.
pub const CHUNK_SIGNATURE: &[u8; 8] = b"ElfChnk\0";
/// `**\0\0`.
pub const RECORD_SIGNATURE: &[u8; 4] = b"**\0\0";

/// The header fields a chunk header CRC covers: 0..120 and 128..512 (not the flags' CRC slot).
const CHUNK_HEADER_CRC_RANGES: [Range<usize>; 2] = [0..120, 128..CHUNK_HEADER_SIZE];
/// The chunk flags Windows writes on every chunk it has initialised.
const CHUNK_FLAGS: u32 = 1;

/// What is wrong with an event log's bytes, with the file offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvtxError {
    /// The data ends before a structure that must be there.
    #[error("event log truncated at offset {offset:#x}: {what} needs {needed} bytes")]
    Truncated {
        offset: u64,
        what: &'static str,
        needed: u64,
    },
    /// The file does not start with `ElfFile\0`.
    #[error("not an event log: no ElfFile signature at offset {offset:#x}")]
    BadFileSignature { offset: u64 },
    /// A chunk that is neither zero-filled nor starts with `ElfChnk\0`.
    #[error("bad chunk signature at offset {offset:#x}")]
    BadChunkSignature { offset: u64 },
    /// A record given to [`ChunkBuilder::push_record`] does not fit in the chunk.
    #[error("a {size}-byte record does not fit at chunk offset {offset:#x}")]
    ChunkFull { offset: u64, size: u64 },
}

/// A valid event log with no records: 69632 bytes (header and one empty chunk), CRCs set.
pub fn empty_log() -> Vec<u8> {
    log_file(&[ChunkBuilder::new().finish()], 1)
}

/// An event log file from finished chunks (see [`ChunkBuilder::finish`]) and the identifier the
/// next record will get. The file is clean (flags 0) and its last chunk is the one in use.
pub fn log_file(chunks: &[Vec<u8>], next_record_id: u64) -> Vec<u8> {
    let chunk_count = chunks.len() as u16;
    let mut bytes = file_header(chunk_count, next_record_id);
    for chunk in chunks {
        bytes.extend_from_slice(chunk);
    }
    bytes
}

/// A 4096-byte file header for a clean v3.1 log whose chunks are numbered 0..`chunk_count`.
pub fn file_header(chunk_count: u16, next_record_id: u64) -> Vec<u8> {
    let mut header = vec![0u8; FILE_HEADER_SIZE];
    header[0..8].copy_from_slice(FILE_SIGNATURE);
    put_u64(&mut header, 8, 0);
    put_u64(&mut header, 16, u64::from(chunk_count.saturating_sub(1)));
    put_u64(&mut header, 24, next_record_id);
    put_u32(&mut header, 32, 128);
    put_u16(&mut header, 36, 1);
    put_u16(&mut header, 38, 3);
    put_u16(&mut header, 40, FILE_HEADER_SIZE as u16);
    put_u16(&mut header, 42, chunk_count);
    put_u32(&mut header, 120, 0);
    let crc = file_header_crc(&header);
    put_u32(&mut header, 124, crc);
    header
}

/// The CRC a file header should carry at offset 124: CRC-32 of its bytes 0..120.
/// `header` must hold at least 120 bytes.
pub fn file_header_crc(header: &[u8]) -> u32 {
    crc32fast::hash(&header[..120])
}

/// The CRC a chunk header should carry at offset 124: CRC-32 of bytes 0..120 and 128..512.
/// `chunk` must hold at least the 512-byte header.
pub fn chunk_header_crc(chunk: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for range in CHUNK_HEADER_CRC_RANGES {
        hasher.update(&chunk[range]);
    }
    hasher.finalize()
}

/// One event record: header, `binxml` (the BinXML event, which must already be laid out for the
/// chunk offset the record will occupy), and the trailing size copy.
pub fn event_record(record_id: u64, written: u64, binxml: &[u8]) -> Vec<u8> {
    let size = (RECORD_OVERHEAD + binxml.len()) as u32;
    let mut record = Vec::with_capacity(size as usize);
    record.extend_from_slice(RECORD_SIGNATURE);
    record.extend_from_slice(&size.to_le_bytes());
    record.extend_from_slice(&record_id.to_le_bytes());
    record.extend_from_slice(&written.to_le_bytes());
    record.extend_from_slice(binxml);
    record.extend_from_slice(&size.to_le_bytes());
    record
}

/// Builds one chunk: records are appended one after another from offset 512, then
/// [`ChunkBuilder::finish`] fills in the header (record ranges, offsets, both CRCs).
pub struct ChunkBuilder {
    bytes: Vec<u8>,
    free_space_offset: usize,
    last_record_offset: usize,
    /// (first, last) record identifiers, once a record was added.
    record_ids: Option<(u64, u64)>,
}

impl Default for ChunkBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkBuilder {
    /// An empty chunk.
    pub fn new() -> Self {
        ChunkBuilder {
            bytes: vec![0u8; CHUNK_SIZE],
            free_space_offset: CHUNK_HEADER_SIZE,
            last_record_offset: 0,
            record_ids: None,
        }
    }

    /// The chunk offset where the next record will start. BinXML inside that record refers to
    /// names by chunk offset, so its builder needs this (plus [`RECORD_HEADER_SIZE`]).
    pub fn next_record_offset(&self) -> u32 {
        self.free_space_offset as u32
    }

    /// Appends a record built by [`event_record`] for [`ChunkBuilder::next_record_offset`].
    /// Record identifiers are expected to increase by one from record to record.
    pub fn push_record(&mut self, record: &[u8]) -> Result<(), EvtxError> {
        let start = self.free_space_offset;
        let end = start + record.len();
        let fits = end <= CHUNK_SIZE;
        let well_formed = record.len() >= RECORD_OVERHEAD && record.starts_with(RECORD_SIGNATURE);
        if !fits || !well_formed {
            return Err(EvtxError::ChunkFull {
                offset: start as u64,
                size: record.len() as u64,
            });
        }
        let record_id = le::u64_at(record, 8).unwrap_or(0);
        self.bytes[start..end].copy_from_slice(record);
        self.record_ids = Some(match self.record_ids {
            Some((first, _)) => (first, record_id),
            None => (record_id, record_id),
        });
        self.last_record_offset = start;
        self.free_space_offset = end;
        Ok(())
    }

    /// The number of bytes still free for records.
    pub fn free_space(&self) -> usize {
        CHUNK_SIZE - self.free_space_offset
    }

    /// The finished 65536-byte chunk. Record numbers equal record identifiers (as in a log that
    /// was never cleared); an empty chunk gets 0 for all four.
    pub fn finish(mut self) -> Vec<u8> {
        let (first, last) = self.record_ids.unwrap_or((0, 0));
        let chunk = &mut self.bytes;
        chunk[0..8].copy_from_slice(CHUNK_SIGNATURE);
        put_u64(chunk, 8, first);
        put_u64(chunk, 16, last);
        put_u64(chunk, 24, first);
        put_u64(chunk, 32, last);
        put_u32(chunk, 40, 128);
        put_u32(chunk, 44, self.last_record_offset as u32);
        put_u32(chunk, 48, self.free_space_offset as u32);
        let records_crc = match self.record_ids {
            Some(_) => crc32fast::hash(&chunk[CHUNK_HEADER_SIZE..self.free_space_offset]),
            None => 0,
        };
        put_u32(chunk, 52, records_crc);
        put_u32(chunk, 120, CHUNK_FLAGS);
        let header_crc = chunk_header_crc(chunk);
        put_u32(chunk, 124, header_crc);
        self.bytes
    }
}

/// Counts the event records in an event log file.
///
/// Walks every complete chunk present in the file (the header's chunk count is often stale in
/// logs copied from a live system), skipping zero-filled chunks. Within a chunk it follows the
/// records from offset 512 by their signatures and sizes, up to the free space offset or the
/// record whose identifier is the chunk's last. Past a spot that is not a well-formed record it
/// resumes at the next record of the chunk's current identifier range, as the `evtx` crate does,
/// so a chunk reused by a wrapping log does not count its stale records. The work is bounded by
/// the file size and nothing in the input can make it panic; errors are for files that are not
/// event logs at all or whose chunks are not chunks.
pub fn count_records(bytes: &[u8]) -> Result<u64, EvtxError> {
    let signature = bytes.get(0..8).ok_or(EvtxError::Truncated {
        offset: 0,
        what: "file header",
        needed: FILE_HEADER_SIZE as u64,
    })?;
    if signature != FILE_SIGNATURE {
        return Err(EvtxError::BadFileSignature { offset: 0 });
    }
    if bytes.len() < FILE_HEADER_SIZE {
        return Err(EvtxError::Truncated {
            offset: 0,
            what: "file header",
            needed: FILE_HEADER_SIZE as u64,
        });
    }
    let mut count = 0u64;
    for chunk_start in (FILE_HEADER_SIZE..bytes.len()).step_by(CHUNK_SIZE) {
        // A trailing partial chunk is space the log had not finished allocating.
        let Some(chunk) = bytes.get(chunk_start..chunk_start + CHUNK_SIZE) else {
            break;
        };
        count += count_chunk_records(chunk, chunk_start as u64)?;
    }
    Ok(count)
}

/// Counts the records of one 65536-byte chunk found at file offset `chunk_start`.
fn count_chunk_records(chunk: &[u8], chunk_start: u64) -> Result<u64, EvtxError> {
    if chunk.iter().all(|&b| b == 0) {
        return Ok(0);
    }
    if chunk.get(0..8) != Some(CHUNK_SIGNATURE.as_slice()) {
        return Err(EvtxError::BadChunkSignature {
            offset: chunk_start,
        });
    }
    let header = LiveArea::of(chunk);
    let mut next = Some(CHUNK_HEADER_SIZE);
    let mut count = 0u64;
    while let Some(offset) = next {
        if offset >= header.end {
            break;
        }
        match header.record_at(chunk, offset) {
            Some((record_id, end)) => {
                count += 1;
                next = (record_id != header.last_record_id).then_some(end);
            }
            // Zeros (the header's free space offset was too large) or a damaged record.
            None => next = header.find_live_record(chunk, offset + 1),
        }
    }
    Ok(count)
}

/// The part of a chunk its header says holds the current records.
struct LiveArea {
    /// Chunk offset where the used area ends (the free space offset, at most the chunk's end).
    end: usize,
    /// Chunk offset of the last record.
    last_record_offset: usize,
    first_record_id: u64,
    last_record_id: u64,
}

impl LiveArea {
    fn of(chunk: &[u8]) -> LiveArea {
        let free_space_offset = le::u32_at(chunk, 48).unwrap_or(0) as usize;
        LiveArea {
            end: free_space_offset.min(chunk.len()),
            last_record_offset: le::u32_at(chunk, 44).unwrap_or(0) as usize,
            first_record_id: le::u64_at(chunk, 24).unwrap_or(0),
            last_record_id: le::u64_at(chunk, 32).unwrap_or(u64::MAX),
        }
    }

    /// The record identifier and end offset of a well-formed record at `offset`: signature,
    /// a size of at least the fixed parts, and an end inside the used area.
    fn record_at(&self, chunk: &[u8], offset: usize) -> Option<(u64, usize)> {
        if chunk.get(offset..offset.checked_add(4)?)? != RECORD_SIGNATURE {
            return None;
        }
        let size = le::u32_at(chunk, offset + 4)? as usize;
        let end = offset.checked_add(size)?;
        if size < RECORD_OVERHEAD || end > self.end {
            return None;
        }
        Some((le::u64_at(chunk, offset + 8)?, end))
    }

    /// After a damaged spot, the next record that belongs to this chunk's current pass: a
    /// well-formed record whose identifier is in the header's range and that starts no later
    /// than the last record. A chunk reused by a wrapping log also holds older records, whose
    /// identifiers are outside that range.
    fn find_live_record(&self, chunk: &[u8], from: usize) -> Option<usize> {
        let search_end = self.end.min(self.last_record_offset.saturating_add(4));
        let ids = self.first_record_id..=self.last_record_id;
        (from..search_end).find(|&offset| {
            self.record_at(chunk, offset)
                .is_some_and(|(id, _)| ids.contains(&id))
        })
    }
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
