//! A new resource written from the resource it replaces: each chunk whose uncompressed bytes
//! did not change is copied as it is stored, and only the other chunks are compressed.
//!
//! wimlib compresses every chunk of a new blob (`write.c`), as any writer must that does not
//! know what the bytes replace. An edit of a hive or of the metadata resource changes a few
//! chunks of many; the others are already in the file, compressed. A copied chunk keeps its
//! stored form: compressed, or raw when compressing did not make it smaller (wimlib's rule,
//! which the chunks compressed here follow too: `Compressor::compress` keeps only output
//! smaller than its input). Chunks are compared at the same index only, so bytes inserted or
//! removed end the reuse from that point.
//!
//! The old resource is read a chunk at a time (decompressed and compared, then dropped), and
//! copied in bounded pieces: nothing but the new bytes and the changed chunks' compressed
//! forms is held.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::header::{ResourceHeader, RESOURCE_COMPRESSED};
use crate::resource::{self, Decompressors, ResourceSpec, CHUNKS_PER_BATCH};
use crate::writer::WimWriter;
use reseal_nt::le;
use reseal_wimlib_sys::Codec;

/// The largest piece of old stored bytes read and written at once when copying.
const COPY_PIECE: u64 = 1 << 20;

/// What writing a resource did with its chunks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkCounts {
    /// Chunks copied from the resource the new one replaces.
    pub reused: u64,
    /// Chunks compressed (or stored raw when compressing did not make them smaller).
    pub compressed: u64,
}

impl ChunkCounts {
    pub(crate) fn add(&mut self, other: ChunkCounts) {
        self.reused += other.reused;
        self.compressed += other.compressed;
    }
}

/// What the updates through one handle did with the chunks they wrote: of new blobs, and of
/// metadata resources.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WrittenChunks {
    pub blobs: ChunkCounts,
    pub metadata: ChunkCounts,
}

/// The resource being replaced, in the file it is read from.
pub(crate) struct OldResource<'a> {
    pub(crate) file: &'a File,
    /// How much of the file may be read.
    pub(crate) file_len: u64,
    pub(crate) spec: ResourceSpec,
    pub(crate) decompressors: &'a mut Decompressors,
}

impl OldResource<'_> {
    /// Whether chunks of this resource can stand in a new resource compressed with `codec` in
    /// chunks of `chunk_size`: a non-solid, compressed resource in the same format.
    pub(crate) fn fits(spec: &ResourceSpec, codec: Codec, chunk_size: u32) -> bool {
        !spec.solid
            && spec.codec == Some(codec)
            && spec.chunk_size == chunk_size
            && chunk_size.is_power_of_two()
    }
}

/// Where the chunks of a non-solid compressed resource are stored: chunk `i` is at
/// `data_start + offsets[i]` and takes `offsets[i + 1] - offsets[i]` bytes.
struct StoredChunks {
    data_start: u64,
    offsets: Vec<u64>,
    chunk_size: u64,
    uncompressed_size: u64,
}

impl StoredChunks {
    /// Reads the chunk table; `None` when it does not describe chunks lying inside the
    /// resource (the resource is then not reused, only never edited).
    fn read(path: &Path, old: &OldResource<'_>) -> Result<Option<Self>> {
        let spec = &old.spec;
        let chunk = u64::from(spec.chunk_size);
        let count = spec.uncompressed_size.div_ceil(chunk);
        let width: u64 = if spec.uncompressed_size > u64::from(u32::MAX) {
            8
        } else {
            4
        };
        let table_len = count.saturating_sub(1).saturating_mul(width);
        let fits = count > 0
            && table_len <= spec.size_in_wim
            && spec
                .offset
                .checked_add(spec.size_in_wim)
                .is_some_and(|end| end <= old.file_len);
        if !fits {
            return Ok(None);
        }
        let mut table = vec![0u8; table_len as usize];
        resource::read_at(
            old.file,
            path,
            old.file_len,
            spec.offset,
            &mut table,
            "chunk table",
        )?;
        let data_size = spec.size_in_wim - table_len;
        let mut offsets = Vec::with_capacity(count as usize + 1);
        offsets.push(0);
        for entry in table.chunks_exact(width as usize) {
            offsets.push(if width == 4 {
                u64::from(le::u32_at(entry, 0).unwrap_or_default())
            } else {
                le::u64_at(entry, 0).unwrap_or_default()
            });
        }
        offsets.push(data_size);
        let chunks = Self {
            data_start: spec.offset + table_len,
            offsets,
            chunk_size: chunk,
            uncompressed_size: spec.uncompressed_size,
        };
        let sane = (0..count as usize).all(|i| {
            let stored = chunks.offsets[i + 1].checked_sub(chunks.offsets[i]);
            stored.is_some_and(|stored| stored > 0 && stored <= chunks.expanded_len(i))
        });
        Ok(sane.then_some(chunks))
    }

    fn count(&self) -> usize {
        self.offsets.len() - 1
    }

    fn expanded_len(&self, index: usize) -> u64 {
        let start = index as u64 * self.chunk_size;
        self.chunk_size.min(self.uncompressed_size - start)
    }

    /// File offset and stored length of chunk `index`.
    fn stored(&self, index: usize) -> (u64, u64) {
        let from = self.offsets[index];
        (self.data_start + from, self.offsets[index + 1] - from)
    }
}

/// How one chunk of the new resource is stored.
enum Stored {
    /// Copied from the old resource: its file offset and stored length.
    Copied(u64, u64),
    /// The `n`-th changed chunk, compressed here.
    Compressed(usize),
}

/// Appends `data` at `offset` as a resource compressed with `codec`, copying the chunks that
/// `old` already stores with the same bytes. Returns the resource header and what was done
/// with the chunks. The stored resource is the one [`resource::append`] would write except
/// that copied chunks keep the old resource's stored bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_reusing(
    writer: &mut dyn WimWriter,
    path: &Path,
    offset: u64,
    data: &[u8],
    codec: Codec,
    chunk_size: u32,
    extra_flags: u8,
    mut old: OldResource<'_>,
) -> Result<(ResourceHeader, ChunkCounts)> {
    let chunk_count = data.len().div_ceil(chunk_size as usize) as u64;
    let stored_chunks = if data.is_empty() || !OldResource::fits(&old.spec, codec, chunk_size) {
        None
    } else {
        StoredChunks::read(path, &old)?
    };
    let Some(stored_chunks) = stored_chunks else {
        let reshdr = resource::append(
            writer,
            path,
            offset,
            data,
            Some(codec),
            chunk_size,
            extra_flags,
        )?;
        let counts = ChunkCounts {
            reused: 0,
            compressed: chunk_count,
        };
        return Ok((reshdr, counts));
    };

    let (plan, changed) = compare(path, data, chunk_size, &stored_chunks, &mut old)?;
    let batches: Vec<&[&[u8]]> = changed.chunks(CHUNKS_PER_BATCH).collect();
    let compressed = if batches.is_empty() {
        Vec::new()
    } else {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut compressors = resource::compressors(codec, chunk_size, cores.min(batches.len()))
            .map_err(|m| Error::from_malformed(path, m))?;
        resource::compress_batches(&batches, &mut compressors)
    };
    // Each changed chunk's stored bytes, in order.
    let compressed_chunks: Vec<&[u8]> = compressed
        .iter()
        .flat_map(|batch| {
            let mut start = 0;
            batch.lens.iter().map(move |len| {
                let piece = &batch.bytes[start..start + len];
                start += len;
                piece
            })
        })
        .collect();
    let stored_len = |stored: &Stored| match stored {
        Stored::Copied(_, len) => *len,
        Stored::Compressed(n) => compressed_chunks[*n].len() as u64,
    };

    let width: usize = if data.len() as u64 > u64::from(u32::MAX) {
        8
    } else {
        4
    };
    let table_len = (plan.len() - 1) * width;
    let body_len: u64 = plan.iter().map(stored_len).sum();
    if table_len as u64 + body_len >= data.len() as u64 {
        // As wimlib does: a resource that does not shrink is stored uncompressed.
        writer
            .write_all_at(offset, data)
            .map_err(|e| Error::io(path, format!("writing a resource at offset {offset}"), e))?;
        let reshdr = ResourceHeader {
            size_in_wim: data.len() as u64,
            flags: extra_flags,
            offset,
            uncompressed_size: data.len() as u64,
        };
        let counts = ChunkCounts {
            reused: 0,
            compressed: chunk_count,
        };
        return Ok((reshdr, counts));
    }

    let mut table = Vec::with_capacity(table_len);
    let mut position = 0u64;
    for stored in &plan[..plan.len() - 1] {
        position += stored_len(stored);
        if width == 4 {
            table.extend_from_slice(&(position as u32).to_le_bytes());
        } else {
            table.extend_from_slice(&position.to_le_bytes());
        }
    }
    let write = |writer: &mut dyn WimWriter, at: u64, bytes: &[u8]| {
        writer
            .write_all_at(at, bytes)
            .map_err(|e| Error::io(path, format!("writing a resource at offset {at}"), e))
    };
    write(writer, offset, &table)?;
    let mut at = offset + table_len as u64;
    // Consecutive copied chunks that lie one after another are copied as one run.
    let mut run: Option<(u64, u64)> = None;
    let mut piece = Vec::new();
    let mut copy_run = |writer: &mut dyn WimWriter, at: &mut u64, (from, len): (u64, u64)| {
        let mut done = 0;
        while done < len {
            let step = (len - done).min(COPY_PIECE);
            piece.resize(step as usize, 0);
            resource::read_at(
                old.file,
                path,
                old.file_len,
                from + done,
                &mut piece,
                "chunk",
            )?;
            write(writer, *at, &piece)?;
            *at += step;
            done += step;
        }
        Ok::<(), Error>(())
    };
    let mut reused = 0u64;
    for stored in &plan {
        match *stored {
            Stored::Copied(from, len) => {
                reused += 1;
                run = match run {
                    Some((start, run_len)) if start + run_len == from => {
                        Some((start, run_len + len))
                    }
                    Some(previous) => {
                        copy_run(writer, &mut at, previous)?;
                        Some((from, len))
                    }
                    None => Some((from, len)),
                };
            }
            Stored::Compressed(n) => {
                if let Some(previous) = run.take() {
                    copy_run(writer, &mut at, previous)?;
                }
                write(writer, at, compressed_chunks[n])?;
                at += compressed_chunks[n].len() as u64;
            }
        }
    }
    if let Some(previous) = run {
        copy_run(writer, &mut at, previous)?;
    }
    let reshdr = ResourceHeader {
        size_in_wim: at - offset,
        flags: extra_flags | RESOURCE_COMPRESSED,
        offset,
        uncompressed_size: data.len() as u64,
    };
    let counts = ChunkCounts {
        reused,
        compressed: changed.len() as u64,
    };
    Ok((reshdr, counts))
}

/// For each chunk of `data`: copied when the old resource's chunk at the same index expands
/// to the same bytes, else compressed; and the chunks to compress, in order. Old chunks are
/// read and expanded one at a time.
fn compare<'d>(
    path: &Path,
    data: &'d [u8],
    chunk_size: u32,
    stored_chunks: &StoredChunks,
    old: &mut OldResource<'_>,
) -> Result<(Vec<Stored>, Vec<&'d [u8]>)> {
    let codec = old.spec.codec;
    let mut decompressor = match codec {
        Some(codec) => old.decompressors.get(codec, chunk_size).ok(),
        None => None,
    };
    let mut plan = Vec::new();
    let mut changed = Vec::new();
    let mut stored = Vec::new();
    let mut expanded = vec![0u8; chunk_size as usize];
    for (index, chunk) in data.chunks(chunk_size as usize).enumerate() {
        let same_place = index < stored_chunks.count()
            && stored_chunks.expanded_len(index) == chunk.len() as u64;
        let mut same = false;
        if same_place {
            let (from, len) = stored_chunks.stored(index);
            stored.resize(len as usize, 0);
            resource::read_at(old.file, path, old.file_len, from, &mut stored, "chunk")?;
            same = if stored.len() == chunk.len() {
                stored == chunk
            } else {
                let expanded = &mut expanded[..chunk.len()];
                // A chunk that does not expand is not copied; the new bytes are compressed.
                decompressor
                    .as_mut()
                    .is_some_and(|d| d.decompress(&stored, expanded))
                    && expanded == chunk
            };
            if same {
                plan.push(Stored::Copied(from, len));
            }
        }
        if !same {
            plan.push(Stored::Compressed(changed.len()));
            changed.push(chunk);
        }
    }
    Ok((plan, changed))
}
