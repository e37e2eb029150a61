//! What streamOptimized extents add: grains compressed with deflate (zlib framing), each
//! behind a grain marker (its sector number and compressed length) when the markers flag is
//! set, and a footer (a copy of the header with the real gdOffset) before the end-of-stream
//! marker when the header's gdOffset is GD_AT_END.

use std::path::Path;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};

use super::sparse_header::{SparseHeader, GD_AT_END, SIZE};
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};

/// A grain marker: the grain's first sector (u64) and its compressed length (u32).
const GRAIN_MARKER_SIZE: u64 = 12;

/// The header to use: the footer's when the header defers the grain directory to it.
pub(crate) fn effective_header(
    file: &mut dyn ImageFile,
    header: SparseHeader,
) -> Result<SparseHeader> {
    if header.gd_offset != GD_AT_END {
        return Ok(header);
    }
    // footer marker, footer (the header again), end-of-stream marker: 3 sectors at the end.
    let len = file.len();
    if len < 3 * SIZE as u64 {
        return Err(Error::corrupt(
            file.path(),
            "VMDK footer",
            "gdOffset says the grain directory is in the footer, but the file is too short to hold one",
        ));
    }
    let bytes = read_structure(file, len - 2 * SIZE as u64, SIZE, "VMDK footer")?;
    let footer = SparseHeader::parse(file.path(), &crate::bytes::array(&bytes, 0))?;
    if footer.gd_offset == GD_AT_END {
        return Err(Error::corrupt(
            file.path(),
            "VMDK footer",
            "the footer's gdOffset is GD_AT_END as well",
        ));
    }
    if footer.capacity != header.capacity || footer.grain_size != header.grain_size {
        return Err(Error::corrupt(
            file.path(),
            "VMDK footer",
            format!(
                "the footer gives {} sectors in grains of {}, the header {} in grains of {}",
                footer.capacity, footer.grain_size, header.capacity, header.grain_size
            ),
        ));
    }
    Ok(footer)
}

/// Reads and inflates the compressed grain stored at `host` into `grain_bytes` bytes.
pub(crate) fn read_compressed_grain(
    file: &mut dyn ImageFile,
    header: &SparseHeader,
    grain: u64,
    host: u64,
) -> Result<Vec<u8>> {
    let path = file.path().to_path_buf();
    let grain_bytes = header.grain_bytes();
    let available = file.len().saturating_sub(host);
    let (start, stored_length) = if header.has_markers() {
        let marker = read_structure(file, host, GRAIN_MARKER_SIZE as usize, "VMDK grain marker")?;
        let length = u64::from(crate::bytes::le_u32(&marker, 8));
        if length == 0 || length > available - GRAIN_MARKER_SIZE {
            return Err(Error::corrupt(
                &path,
                "VMDK grain marker",
                format!(
                    "grain {grain} at offset {host}: a compressed length of {length} bytes, with {} bytes left in the file",
                    available - GRAIN_MARKER_SIZE
                ),
            ));
        }
        (host + GRAIN_MARKER_SIZE, length)
    } else {
        // Without a marker the length is unknown: deflate stops at the end of its stream.
        (host, available.min(2 * grain_bytes + 1024))
    };
    let stored = read_structure(file, start, stored_length as usize, "VMDK compressed grain")?;
    inflate_grain(&path, grain, &stored, grain_bytes as usize)
}

fn inflate_grain(path: &Path, grain: u64, stored: &[u8], grain_bytes: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; grain_bytes];
    let mut decompressor = DecompressorOxide::new();
    let (status, _, written) = decompress(
        &mut decompressor,
        stored,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    if written != grain_bytes || (status as i8) < 0 {
        return Err(Error::corrupt(
            path,
            "VMDK compressed grain",
            format!(
                "grain {grain}: the deflate data ({} bytes) gives {written} of {grain_bytes} bytes ({status:?})",
                stored.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zlib_grain_inflates_and_a_short_one_is_corrupt() {
        let grain = vec![7u8; 4096];
        let stored = miniz_oxide::deflate::compress_to_vec_zlib(&grain, 6);
        assert_eq!(
            inflate_grain(Path::new("x"), 0, &stored, 4096).unwrap(),
            grain
        );
        let error = inflate_grain(Path::new("x"), 3, &stored[..stored.len() / 2], 4096);
        assert!(matches!(error, Err(Error::Corrupt { .. })));
        let short = miniz_oxide::deflate::compress_to_vec_zlib(&grain[..100], 6);
        assert!(inflate_grain(Path::new("x"), 0, &short, 4096).is_err());
    }
}
