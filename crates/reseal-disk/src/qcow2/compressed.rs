//! Compressed clusters: raw deflate (RFC 1951, no zlib header), as qemu writes them.
//!
//! The stored length is rounded up to whole 512-byte sectors, so the deflate stream may be
//! followed by other data; decompression stops once the cluster is full, as qemu's does.
//! zstd (compression_type 1) is refused when the image is opened: no decoder is built in.

use std::path::Path;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};

use crate::error::{Error, Result};

/// Inflates `stored` (the bytes of one compressed cluster descriptor) into a whole cluster.
pub(crate) fn inflate_cluster(
    path: &Path,
    guest_cluster: u64,
    stored: &[u8],
    cluster_size: usize,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; cluster_size];
    let mut decompressor = DecompressorOxide::new();
    let (status, _, written) = decompress(
        &mut decompressor,
        stored,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    // Negative statuses are errors; a full cluster with input left over is what qemu accepts.
    if written != cluster_size || (status as i8) < 0 {
        return Err(Error::corrupt(
            path,
            "qcow2 compressed cluster",
            format!(
                "guest cluster {guest_cluster}: the deflate data ({} bytes) gives {written} of {cluster_size} bytes ({status:?})",
                stored.len()
            ),
        ));
    }
    Ok(out)
}
