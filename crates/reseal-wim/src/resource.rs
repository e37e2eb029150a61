//! Resources: how a blob's bytes are stored in the file.
//!
//! - Uncompressed: the bytes as they are (`size_in_wim == uncompressed_size`).
//! - Compressed (flag `RESOURCE_COMPRESSED`): the data is cut into chunks of the header's chunk
//!   size (the last one shorter). A chunk table comes first: one entry per chunk except the
//!   first, each the offset of that chunk counted from the end of the table, 4 bytes wide (8 when
//!   the uncompressed size exceeds 4 GiB). A chunk whose stored size equals its uncompressed
//!   size is stored raw.
//! - Solid (flag `RESOURCE_SOLID`, WIM version 0xe00): a 16-byte header (uncompressed size u64,
//!   chunk size u32, compression format u32: 1 XPRESS, 2 LZX, 3 LZMS), then one 4-byte entry per
//!   chunk giving its stored size, then the chunks. Many blobs share one solid resource.
//!
//! Reads decompress only the chunks covering the requested range.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Malformed, Result};
use crate::header::{ResourceHeader, RESOURCE_COMPRESSED};
use crate::writer::WimWriter;
use reseal_nt::le;
use reseal_wimlib_sys::{Codec, Compressor, Decompressor};

const SOLID_HEADER_SIZE: u64 = 16;
const MAX_CHUNK_SIZE: u32 = 1 << 30;

/// Everything needed to read one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSpec {
    pub offset: u64,
    pub size_in_wim: u64,
    pub uncompressed_size: u64,
    /// `None` for an uncompressed resource.
    pub codec: Option<Codec>,
    pub chunk_size: u32,
    pub solid: bool,
}

impl ResourceSpec {
    /// A non-solid resource of a WIM whose header names `codec` and `chunk_size`.
    pub fn plain(reshdr: &ResourceHeader, codec: Option<Codec>, chunk_size: u32) -> Self {
        let compressed = reshdr.is_compressed() && codec.is_some();
        Self {
            offset: reshdr.offset,
            size_in_wim: reshdr.size_in_wim,
            uncompressed_size: reshdr.uncompressed_size,
            codec: if compressed { codec } else { None },
            chunk_size,
            solid: false,
        }
    }
}

/// What reads keep between them: decompressors, one per codec and chunk size, and a buffer a
/// caller is done with ([`Decompressors::give_back`]) for the next large read to fill. A
/// multi-image run reads each image's hive into the pages the last one left mapped instead of
/// fresh ones, which the kernel must zero (and a virtual machine's host may have to back) page
/// by page: on the bench's VM most of the time of reading a hive.
#[derive(Default)]
pub struct Decompressors {
    codecs: HashMap<(Codec, u32), Decompressor>,
    spare: Vec<u8>,
}

impl Decompressors {
    /// Keeps `buffer` for a later read when it is larger than the one kept.
    pub(crate) fn give_back(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() > self.spare.capacity() {
            self.spare = buffer;
        }
    }

    /// Frees the buffer kept, when the run that would reuse it is over (a commit, a discard).
    pub(crate) fn drop_spare(&mut self) {
        self.spare = Vec::new();
    }

    /// An empty buffer for a read of `len` bytes: the one given back when it holds them and
    /// not more than twice over (a small read must not keep a large buffer alive), else new.
    fn buffer_for(&mut self, len: usize) -> Vec<u8> {
        let capacity = self.spare.capacity();
        if capacity >= len && capacity / 2 <= len {
            let mut buffer = std::mem::take(&mut self.spare);
            buffer.clear();
            buffer
        } else {
            Vec::new()
        }
    }

    pub(crate) fn get(
        &mut self,
        codec: Codec,
        chunk_size: u32,
    ) -> Result<&mut Decompressor, Malformed> {
        match self.codecs.entry((codec, chunk_size)) {
            std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let decompressor = Decompressor::new(codec, chunk_size as usize).map_err(|e| {
                    Malformed::unsupported(
                        "resource",
                        format!(
                            "{} failed with wimlib error {} for {codec:?} chunks of {chunk_size} bytes",
                            e.call, e.code
                        ),
                    )
                })?;
                Ok(entry.insert(decompressor))
            }
        }
    }
}

/// Reads `buf.len()` bytes at `offset`, refusing to read past `file_len`.
pub fn read_at(
    file: &File,
    path: &Path,
    file_len: u64,
    offset: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<()> {
    let end = offset.checked_add(buf.len() as u64);
    if end.is_none_or(|end| end > file_len) {
        return Err(Error::from_malformed(
            path,
            Malformed::new(
                "resource",
                format!("{what} at offset {offset} ({} bytes) lies beyond the end of the {file_len}-byte file", buf.len()),
            ),
        ));
    }
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(offset))
        .and_then(|_| reader.read_exact(buf))
        .map_err(|e| Error::io(path, format!("reading {what} at offset {offset}"), e))
}

/// The solid resource header: uncompressed size, chunk size and codec.
pub fn read_solid_header(
    file: &File,
    path: &Path,
    file_len: u64,
    reshdr: &ResourceHeader,
) -> Result<ResourceSpec> {
    let mut raw = [0u8; SOLID_HEADER_SIZE as usize];
    read_at(
        file,
        path,
        file_len,
        reshdr.offset,
        &mut raw,
        "solid resource header",
    )?;
    let uncompressed_size = le::u64_at(&raw, 0).unwrap_or_default();
    let chunk_size = le::u32_at(&raw, 8).unwrap_or_default();
    let format = le::u32_at(&raw, 12).unwrap_or_default();
    let codec = match format {
        0 => None,
        1 => Some(Codec::Xpress),
        2 => Some(Codec::Lzx),
        3 => Some(Codec::Lzms),
        other => {
            return Err(Error::from_malformed(
                path,
                Malformed::unsupported(
                    "solid resource",
                    format!(
                        "unknown compression format {other} at offset {}",
                        reshdr.offset
                    ),
                ),
            ))
        }
    };
    Ok(ResourceSpec {
        offset: reshdr.offset,
        size_in_wim: reshdr.size_in_wim,
        uncompressed_size,
        codec,
        chunk_size,
        solid: true,
    })
}

/// Reads `len` uncompressed bytes starting at `start` of the resource.
pub fn read_range(
    file: &File,
    path: &Path,
    file_len: u64,
    spec: &ResourceSpec,
    start: u64,
    len: u64,
    decompressors: &mut Decompressors,
) -> Result<Vec<u8>> {
    let bad = |reason: String| {
        Error::from_malformed(
            path,
            Malformed::new("resource", format!("at offset {}: {reason}", spec.offset)),
        )
    };
    let end = start
        .checked_add(len)
        .filter(|end| *end <= spec.uncompressed_size);
    let Some(end) = end else {
        return Err(bad(format!(
            "range {start}+{len} exceeds the uncompressed size {}",
            spec.uncompressed_size
        )));
    };
    if spec
        .offset
        .checked_add(spec.size_in_wim)
        .is_none_or(|e| e > file_len)
    {
        return Err(bad(format!(
            "{} bytes run past the end of the {file_len}-byte file",
            spec.size_in_wim
        )));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let Some(codec) = spec.codec else {
        if !spec.solid && spec.uncompressed_size != spec.size_in_wim {
            return Err(bad("uncompressed resource with differing sizes".into()));
        }
        let base = spec.offset + if spec.solid { SOLID_HEADER_SIZE } else { 0 };
        // Checked: a solid run's header may claim any uncompressed size, its blobs any offset.
        if base
            .checked_add(end)
            .is_none_or(|stored_end| stored_end > spec.offset + spec.size_in_wim)
        {
            return Err(bad(format!(
                "range {start}+{len} lies beyond the {} stored bytes",
                spec.size_in_wim
            )));
        }
        let mut out = decompressors.buffer_for(len as usize);
        out.resize(len as usize, 0);
        read_at(
            file,
            path,
            file_len,
            base + start,
            &mut out,
            "resource data",
        )?;
        return Ok(out);
    };
    let chunk_size = spec.chunk_size;
    if !chunk_size.is_power_of_two() || chunk_size > MAX_CHUNK_SIZE {
        return Err(bad(format!(
            "chunk size {chunk_size} is not a power of two up to 1 GiB"
        )));
    }
    let chunk = u64::from(chunk_size);
    let chunk_count = spec.uncompressed_size.div_ceil(chunk);
    let (entry_size, entry_count, table_start) = if spec.solid {
        (4u64, chunk_count, spec.offset + SOLID_HEADER_SIZE)
    } else {
        let width = if spec.uncompressed_size > u64::from(u32::MAX) {
            8
        } else {
            4
        };
        (width, chunk_count - 1, spec.offset)
    };
    // Every entry needs its bytes in the file: this bounds the claimed uncompressed size.
    let table_size = entry_count
        .checked_mul(entry_size)
        .filter(|size| *size <= spec.size_in_wim);
    let Some(table_size) = table_size else {
        return Err(bad(format!(
            "{chunk_count} chunks do not fit in {} stored bytes",
            spec.size_in_wim
        )));
    };
    let data_start = table_start + table_size;
    let Some(data_size) = (spec.offset + spec.size_in_wim).checked_sub(data_start) else {
        return Err(bad(format!(
            "the chunk table does not fit in {} stored bytes",
            spec.size_in_wim
        )));
    };

    let first_chunk = start / chunk;
    let last_chunk = (end - 1) / chunk;
    // Offsets (from data_start) of chunks first_chunk..=last_chunk+1.
    let mut offsets = Vec::with_capacity((last_chunk - first_chunk + 2) as usize);
    if spec.solid {
        // Entries are sizes: sum those before first_chunk as well.
        let needed = (last_chunk + 1) as usize;
        let mut raw = vec![0u8; needed * 4];
        read_at(
            file,
            path,
            file_len,
            table_start,
            &mut raw,
            "solid chunk table",
        )?;
        let mut position = 0u64;
        for (index, size) in raw.chunks_exact(4).enumerate() {
            if index as u64 >= first_chunk {
                offsets.push(position);
            }
            position += u64::from(le::u32_at(size, 0).unwrap_or_default());
        }
        offsets.push(if last_chunk + 1 < chunk_count {
            position
        } else {
            data_size
        });
    } else {
        // Entry i (0-based) gives the offset of chunk i + 1.
        let first_entry = first_chunk.saturating_sub(1);
        let last_entry = last_chunk.min(chunk_count.saturating_sub(2));
        let mut table = Vec::new();
        if chunk_count > 1 && last_entry + 1 > first_entry {
            let count = (last_entry - first_entry + 1) as usize;
            table = vec![0u8; count * entry_size as usize];
            read_at(
                file,
                path,
                file_len,
                table_start + first_entry * entry_size,
                &mut table,
                "chunk table",
            )?;
        }
        let entry = |i: u64| -> u64 {
            let at = ((i - first_entry) * entry_size) as usize;
            if entry_size == 4 {
                u64::from(le::u32_at(&table, at).unwrap_or_default())
            } else {
                le::u64_at(&table, at).unwrap_or_default()
            }
        };
        for chunk_index in first_chunk..=last_chunk + 1 {
            offsets.push(match chunk_index {
                0 => 0,
                i if i == chunk_count => data_size,
                i => entry(i - 1),
            });
        }
    }

    let mut out = decompressors.buffer_for(len as usize);
    // A claimed length is trusted only as far as the first 64 MiB; the rest as read.
    out.reserve(len.min(64 << 20) as usize);
    let decompressor = decompressors
        .get(codec, chunk_size)
        .map_err(|m| Error::from_malformed(path, m))?;
    let mut stored = Vec::new();
    // A chunk may claim up to 1 GiB: ask for the buffer without aborting when it is refused.
    let expanded_len = chunk.min(spec.uncompressed_size) as usize;
    let mut expanded = Vec::new();
    expanded
        .try_reserve_exact(expanded_len)
        .map_err(|_| bad(format!("no memory for a chunk of {expanded_len} bytes")))?;
    expanded.resize(expanded_len, 0);
    for (slot, chunk_index) in (first_chunk..=last_chunk).enumerate() {
        let (from, to) = (offsets[slot], offsets[slot + 1]);
        if to < from || to > data_size {
            return Err(bad(format!(
                "chunk {chunk_index} has offsets {from}..{to} outside 0..{data_size}"
            )));
        }
        let chunk_start = chunk_index * chunk;
        let chunk_len = chunk.min(spec.uncompressed_size - chunk_start) as usize;
        let stored_len = (to - from) as usize;
        if stored_len > chunk_len || stored_len == 0 {
            return Err(bad(format!(
                "chunk {chunk_index} is stored in {stored_len} bytes for {chunk_len} expanded"
            )));
        }
        stored.resize(stored_len, 0);
        read_at(
            file,
            path,
            file_len,
            data_start + from,
            &mut stored,
            "chunk",
        )?;
        let expanded = &mut expanded[..chunk_len];
        if stored_len == chunk_len {
            expanded.copy_from_slice(&stored);
        } else if !decompressor.decompress(&stored, expanded) {
            return Err(bad(format!(
                "chunk {chunk_index} does not decompress ({codec:?})"
            )));
        }
        let take_from = start.saturating_sub(chunk_start) as usize;
        let take_to = ((end - chunk_start) as usize).min(chunk_len);
        out.extend_from_slice(&expanded[take_from..take_to]);
    }
    Ok(out)
}

/// Chunks a compressing thread takes at a time: enough to make taking them cheap, few enough
/// that the threads finish close together.
pub(crate) const CHUNKS_PER_BATCH: usize = 16;

/// Memory all the compressors of one `encode` may take together; at least one is always made.
const COMPRESSOR_MEMORY_BUDGET: u64 = 256 << 20;

/// The stored forms of consecutive chunks: each compressed when that made it smaller, else raw.
pub(crate) struct StoredBatch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) lens: Vec<usize>,
}

/// `data` stored as a non-solid resource: compressed in chunks with `codec` when that makes it
/// smaller, else as is. Returns the stored bytes and whether they are compressed. Chunks are
/// compressed on up to one thread per core; the bytes do not depend on the thread count.
pub fn encode(
    data: &[u8],
    codec: Option<Codec>,
    chunk_size: u32,
) -> std::result::Result<(Vec<u8>, bool), Malformed> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    encode_with_threads(data, codec, chunk_size, cores)
}

/// [`encode`] on at most `threads` threads, the calling one included.
fn encode_with_threads(
    data: &[u8],
    codec: Option<Codec>,
    chunk_size: u32,
    threads: usize,
) -> std::result::Result<(Vec<u8>, bool), Malformed> {
    let Some(codec) = codec else {
        return Ok((data.to_vec(), false));
    };
    if data.is_empty() {
        return Ok((Vec::new(), false));
    }
    let chunks: Vec<&[u8]> = data.chunks(chunk_size as usize).collect();
    let batches: Vec<&[&[u8]]> = chunks.chunks(CHUNKS_PER_BATCH).collect();
    let mut compressors = compressors(codec, chunk_size, threads.min(batches.len()))?;
    let stored = compress_batches(&batches, &mut compressors);

    let entry_size = if data.len() as u64 > u64::from(u32::MAX) {
        8
    } else {
        4
    };
    let body_len: usize = stored.iter().map(|batch| batch.bytes.len()).sum();
    let table_len = (chunks.len() - 1) * entry_size;
    if table_len + body_len >= data.len() {
        // As wimlib does: a resource that does not shrink is stored uncompressed.
        return Ok((data.to_vec(), false));
    }
    let mut out = Vec::with_capacity(table_len + body_len);
    // One entry per chunk but the first: where that chunk starts, counted from the table's end.
    let mut offset = 0u64;
    let lens = stored.iter().flat_map(|batch| &batch.lens);
    for len in lens.take(chunks.len() - 1) {
        offset += *len as u64;
        if entry_size == 4 {
            out.extend_from_slice(&(offset as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&offset.to_le_bytes());
        }
    }
    for batch in &stored {
        out.extend_from_slice(&batch.bytes);
    }
    Ok((out, true))
}

/// The compression level asked of wimlib: 20, one of its fast levels, instead of its default
/// 50, which `wimlib-imagex` uses. Every level writes the same format. For LZX (install.wim
/// files, and wimlib's default codec) 20 parses lazily instead of near-optimally (LZX does so
/// up to level 34); XPRESS parses greedily instead of lazily; LZMS searches less. A generalize
/// recompresses each metadata chunk after the first dentry whose length changed (most of a
/// 9 MiB resource on the bench): at the default level that was 62% of the processor time of a
/// six-image LZX run, which took 4.8 s; at level 20 it takes 2.8 s, and the WIM grows 0.35%
/// more (docs/PERFORMANCE.md).
pub(crate) const COMPRESSION_LEVEL: u16 = 20;

/// Up to `threads` compressors (at least one), as many as the memory budget allows.
pub(crate) fn compressors(
    codec: Codec,
    chunk_size: u32,
    threads: usize,
) -> std::result::Result<Vec<Compressor>, Malformed> {
    let memory_cap = Compressor::needed_memory(codec, chunk_size as usize, COMPRESSION_LEVEL)
        .map_or(1, |each| (COMPRESSOR_MEMORY_BUDGET / each.max(1)).max(1));
    let threads = threads
        .min(usize::try_from(memory_cap).unwrap_or(usize::MAX))
        .max(1);
    (0..threads)
        .map(|_| {
            Compressor::new(codec, chunk_size as usize, COMPRESSION_LEVEL).map_err(|e| {
                Malformed::unsupported(
                    "resource",
                    format!("{} failed with wimlib error {}", e.call, e.code),
                )
            })
        })
        .collect()
}

/// Every batch compressed, in order. Each compressor serves one thread; the calling thread works
/// with the first, so the work gets done even when no other thread can be started.
pub(crate) fn compress_batches(
    batches: &[&[&[u8]]],
    compressors: &mut [Compressor],
) -> Vec<StoredBatch> {
    let next_batch = AtomicUsize::new(0);
    let work = |compressor: &mut Compressor| {
        let mut done = Vec::new();
        let mut packed = Vec::new();
        loop {
            let index = next_batch.fetch_add(1, Ordering::Relaxed);
            let Some(chunks) = batches.get(index) else {
                return done;
            };
            let mut batch = StoredBatch {
                bytes: Vec::new(),
                lens: Vec::with_capacity(chunks.len()),
            };
            for chunk in *chunks {
                let stored: &[u8] = if compressor.compress(chunk, &mut packed) {
                    &packed
                } else {
                    chunk
                };
                batch.bytes.extend_from_slice(stored);
                batch.lens.push(stored.len());
            }
            done.push((index, batch));
        }
    };
    let (own, helpers) = compressors
        .split_first_mut()
        .expect("at least one compressor");
    let mut done = std::thread::scope(|scope| {
        let started: Vec<_> = helpers
            .iter_mut()
            .filter_map(|compressor| {
                std::thread::Builder::new()
                    .name("wim-compress".into())
                    .spawn_scoped(scope, || work(compressor))
                    .ok()
            })
            .collect();
        let mut done = work(own);
        for helper in started {
            match helper.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    debug_assert!(done.iter().enumerate().all(|(i, (index, _))| i == *index));
    done.into_iter().map(|(_, batch)| batch).collect()
}

/// Appends `data` at `offset` as a resource and returns its resource header (flags: compressed
/// or not, plus `extra_flags`).
#[allow(clippy::too_many_arguments)]
pub fn append(
    writer: &mut dyn WimWriter,
    path: &Path,
    offset: u64,
    data: &[u8],
    codec: Option<Codec>,
    chunk_size: u32,
    extra_flags: u8,
) -> Result<ResourceHeader> {
    let (stored, compressed) =
        encode(data, codec, chunk_size).map_err(|m| Error::from_malformed(path, m))?;
    writer
        .write_all_at(offset, &stored)
        .map_err(|e| Error::io(path, format!("writing a resource at offset {offset}"), e))?;
    Ok(ResourceHeader {
        size_in_wim: stored.len() as u64,
        flags: extra_flags | if compressed { RESOURCE_COMPRESSED } else { 0 },
        offset,
        uncompressed_size: data.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 97) as u8 ^ (i / 4099) as u8)
            .collect()
    }

    #[test]
    fn encoded_resources_read_back_in_any_range() {
        let data = sample(70_000);
        for codec in [Codec::Xpress, Codec::Lzx, Codec::Lzms] {
            let (stored, compressed) = encode(&data, Some(codec), 32768).unwrap();
            assert!(compressed);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r");
            let mut bytes = vec![0xeeu8; 5];
            bytes.extend_from_slice(&stored);
            std::fs::write(&path, &bytes).unwrap();
            let file = File::open(&path).unwrap();
            let spec = ResourceSpec {
                offset: 5,
                size_in_wim: stored.len() as u64,
                uncompressed_size: data.len() as u64,
                codec: Some(codec),
                chunk_size: 32768,
                solid: false,
            };
            let mut decompressors = Decompressors::default();
            let len = bytes.len() as u64;
            for (start, count) in [
                (0u64, 70_000u64),
                (32_000, 1_000),
                (65_536, 4_464),
                (69_999, 1),
                (10, 0),
            ] {
                let got =
                    read_range(&file, &path, len, &spec, start, count, &mut decompressors).unwrap();
                assert_eq!(
                    got,
                    &data[start as usize..(start + count) as usize],
                    "{codec:?} {start}+{count}"
                );
            }
            assert!(read_range(&file, &path, len, &spec, 69_999, 2, &mut decompressors).is_err());
            let lying = ResourceSpec {
                uncompressed_size: 1 << 40,
                ..spec
            };
            assert!(read_range(&file, &path, len, &lying, 0, 10, &mut decompressors).is_err());
        }
    }

    #[test]
    fn solid_resources_too_small_for_their_tables_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let file = File::open(&path).unwrap();
        let mut decompressors = Decompressors::default();
        // 4 chunks need 16 table bytes after the 16-byte header: 20 stored bytes are too few.
        let compressed = ResourceSpec {
            offset: 0,
            size_in_wim: 20,
            uncompressed_size: 4 * 32768,
            codec: Some(Codec::Lzms),
            chunk_size: 32768,
            solid: true,
        };
        assert!(read_range(&file, &path, 64, &compressed, 0, 10, &mut decompressors).is_err());
        // An uncompressed solid resource claiming more than it stores.
        let stored = ResourceSpec {
            codec: None,
            uncompressed_size: 1 << 40,
            ..compressed
        };
        assert!(read_range(&file, &path, 64, &stored, 0, 1 << 39, &mut decompressors).is_err());
    }

    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect()
    }

    /// The chunks compressed one after another with one compressor, the way a resource was
    /// encoded before chunks were spread over threads.
    fn encode_one_by_one(data: &[u8], codec: Codec, chunk_size: u32) -> (Vec<u8>, bool) {
        if data.is_empty() {
            return (Vec::new(), false);
        }
        let mut compressor =
            Compressor::new(codec, chunk_size as usize, COMPRESSION_LEVEL).unwrap();
        let (mut table, mut body, mut packed) = (Vec::new(), Vec::new(), Vec::new());
        for (index, chunk) in data.chunks(chunk_size as usize).enumerate() {
            if index > 0 {
                table.extend_from_slice(&(body.len() as u32).to_le_bytes());
            }
            if compressor.compress(chunk, &mut packed) {
                body.extend_from_slice(&packed);
            } else {
                body.extend_from_slice(chunk);
            }
        }
        if table.len() + body.len() >= data.len() {
            return (data.to_vec(), false);
        }
        table.extend_from_slice(&body);
        (table, true)
    }

    #[test]
    fn threads_do_not_change_the_stored_bytes() {
        let chunk = 4096usize;
        // Compressible chunks with runs of noise between them, so that some chunks of a
        // compressed resource are stored raw.
        let mut mixed = Vec::new();
        for part in 0..40 {
            if part % 3 == 1 {
                mixed.extend_from_slice(&noise(chunk * 2 + 300, part));
            } else {
                mixed.extend_from_slice(&sample(chunk * 2 + 17));
            }
        }
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("one byte", vec![7]),
            ("under one chunk", sample(1000)),
            ("exactly one chunk", sample(chunk)),
            ("partial last chunk", sample(chunk * 2 + 1)),
            ("many chunks", sample(chunk * CHUNKS_PER_BATCH * 5 + 999)),
            ("some chunks raw", mixed),
            (
                "incompressible",
                noise(chunk * CHUNKS_PER_BATCH * 3 + 5, 99),
            ),
        ];
        for codec in [Codec::Xpress, Codec::Lzx] {
            for (name, data) in &cases {
                let expected = encode_one_by_one(data, codec, chunk as u32);
                for threads in [1, 2, 3, 8] {
                    let got =
                        encode_with_threads(data, Some(codec), chunk as u32, threads).unwrap();
                    assert!(got == expected, "{codec:?} {name}, {threads} threads");
                }
            }
        }
        // The cases cover raw chunks inside a compressed resource and wholly raw resources.
        let (mixed_stored, mixed_compressed) =
            encode_one_by_one(&cases[6].1, Codec::Lzx, chunk as u32);
        assert!(mixed_compressed);
        let chunk_count = cases[6].1.len().div_ceil(chunk);
        let table_len = (chunk_count - 1) * 4;
        let mut starts: Vec<usize> = vec![0];
        starts.extend(
            mixed_stored[..table_len]
                .chunks_exact(4)
                .map(|entry| u32::from_le_bytes(entry.try_into().unwrap()) as usize),
        );
        starts.push(mixed_stored.len() - table_len);
        let raw_chunks = starts.windows(2).filter(|w| w[1] - w[0] == chunk).count();
        assert!(raw_chunks > 0 && raw_chunks < chunk_count);
        assert!(!encode_one_by_one(&cases[7].1, Codec::Lzx, chunk as u32).1);
    }

    #[test]
    fn incompressible_data_is_stored_as_is() {
        let mut state = 7u32;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect();
        let (stored, compressed) = encode(&noise, Some(Codec::Lzx), 32768).unwrap();
        assert!(!compressed);
        assert_eq!(stored, noise);
    }
}
