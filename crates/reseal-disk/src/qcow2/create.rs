//! A new, empty qcow2 version 3 overlay over a backing file, laid out as `qemu-img create -F
//! FORMAT -b BACKING` lays it out: the header in cluster 0 (with the backing-format extension
//! and the backing file name), the refcount table in cluster 1, its first refcount block in
//! cluster 2 and the L1 table from cluster 3.

use std::path::Path;

use crate::error::{Error, Result};
use crate::image_file::{ImageFile, LocalFile};
use crate::Format;

use super::header::{EXTENSION_BACKING_FORMAT, MAGIC, VERSION_3_MIN_LENGTH};

/// 64 KiB, qemu's default.
const CLUSTER_BITS: u32 = 16;
/// 16-bit refcounts, qemu's default.
const REFCOUNT_ORDER: u32 = 4;

/// The name a new overlay at `child` records for its backing file `backing`: the bare file
/// name when both are in the same directory (the pair can then be moved together), else the
/// backing file's absolute path.
pub fn backing_name_for(backing: &Path, child: &Path) -> Result<String> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|e| Error::io(path, "cannot make the path absolute", e))
    };
    let backing = absolute(backing)?;
    let child = absolute(child)?;
    let text = |path: &Path| {
        path.to_str().map(str::to_string).ok_or_else(|| {
            Error::unsupported(
                &child,
                "qcow2 backing file name",
                format!("the backing file's path {} is not UTF-8", path.display()),
            )
        })
    };
    match backing.file_name() {
        Some(name) if backing.parent() == child.parent() => text(Path::new(name)),
        _ => text(&backing),
    }
}

/// Creates `path` (replacing any file there) as an empty qcow2 v3 image of `size` bytes whose
/// backing file is `backing_name` in `backing_format`; every guest cluster reads through to
/// the backing file. The file is flushed before this returns.
pub fn create_overlay(
    path: &Path,
    size: u64,
    backing_name: &str,
    backing_format: Format,
) -> Result<()> {
    let bytes = overlay_bytes(path, size, backing_name, backing_format)?;
    let mut file = LocalFile::create(path)?;
    file.write_at(0, &bytes)?;
    file.sync()
}

fn overlay_bytes(
    path: &Path,
    size: u64,
    backing_name: &str,
    backing_format: Format,
) -> Result<Vec<u8>> {
    let cluster_size = 1u64 << CLUSTER_BITS;
    let l2_entries = cluster_size / 8;
    let l1_entries = size.div_ceil(cluster_size).div_ceil(l2_entries);
    if l1_entries * 8 > super::MAX_L1_BYTES {
        return Err(Error::unsupported(
            path,
            "qcow2 L1 table",
            format!(
                "a {size}-byte disk needs an L1 table of {} bytes, more than qemu's limit of {} bytes",
                l1_entries * 8,
                super::MAX_L1_BYTES
            ),
        ));
    }
    let l1_clusters = (l1_entries * 8).div_ceil(cluster_size).max(1);
    let format_name = backing_format.qemu_name().as_bytes();
    let padded = |length: usize| length.div_ceil(8) * 8;
    let extensions_end = VERSION_3_MIN_LENGTH + 8 + padded(format_name.len()) + 8;
    let name = backing_name.as_bytes();
    if name.len() > super::header::MAX_BACKING_NAME as usize
        || (extensions_end + name.len()) as u64 > cluster_size
    {
        return Err(Error::unsupported(
            path,
            "qcow2 backing file name",
            format!(
                "the backing file name is {} bytes long; qcow2 holds at most {}",
                name.len(),
                super::header::MAX_BACKING_NAME
            ),
        ));
    }
    let refcount_table = cluster_size;
    let refcount_block = 2 * cluster_size;
    let l1_table = 3 * cluster_size;
    let clusters = 3 + l1_clusters;
    let mut image = vec![0u8; (clusters * cluster_size) as usize];

    let mut put = |at: usize, field: &[u8]| image[at..at + field.len()].copy_from_slice(field);
    put(0, MAGIC);
    put(4, &3u32.to_be_bytes());
    put(8, &(extensions_end as u64).to_be_bytes());
    put(16, &(name.len() as u32).to_be_bytes());
    put(20, &CLUSTER_BITS.to_be_bytes());
    put(24, &size.to_be_bytes());
    // 32: no encryption.
    put(36, &(l1_entries as u32).to_be_bytes());
    put(40, &l1_table.to_be_bytes());
    put(48, &refcount_table.to_be_bytes());
    put(56, &1u32.to_be_bytes());
    // 60, 64: no snapshots; 72, 80, 88: no incompatible, compatible or autoclear features.
    put(96, &REFCOUNT_ORDER.to_be_bytes());
    put(100, &(VERSION_3_MIN_LENGTH as u32).to_be_bytes());
    let mut at = VERSION_3_MIN_LENGTH;
    put(at, &EXTENSION_BACKING_FORMAT.to_be_bytes());
    put(at + 4, &(format_name.len() as u32).to_be_bytes());
    put(at + 8, format_name);
    at += 8 + padded(format_name.len());
    // The end-of-extensions marker is the 8 zero bytes at `at`.
    put(extensions_end, name);
    put(refcount_table as usize, &refcount_block.to_be_bytes());
    for cluster in 0..clusters {
        // 16-bit big-endian refcounts of 1 for the header and metadata clusters.
        put(refcount_block as usize + 2 * cluster as usize + 1, &[1]);
    }
    debug_assert_eq!(at + 8, extensions_end);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_disk_gets_an_l1_table_long_enough() {
        // 2 TiB: 4096 L2 tables of 8192 entries of 64 KiB, 32 KiB of L1 table.
        let bytes = overlay_bytes(Path::new("x.qcow2"), 2 << 40, "base.raw", Format::Raw).unwrap();
        assert_eq!(bytes.len(), 4 << 16);
        assert_eq!(u32::from_be_bytes(bytes[36..40].try_into().unwrap()), 4096);
    }

    #[test]
    fn a_name_longer_than_qemu_reads_is_refused() {
        let name = "n".repeat(1024);
        assert!(overlay_bytes(Path::new("x.qcow2"), 1 << 20, &name, Format::Raw).is_err());
    }

    #[test]
    fn an_overlay_past_qemus_l1_limit_is_refused_before_it_is_made() {
        // 2^60 bytes need a 16 GiB L1 table.
        let refused = overlay_bytes(Path::new("x.qcow2"), 1 << 60, "base.raw", Format::Raw);
        assert!(refused.is_err_and(|e| e.to_string().contains("limit")));
    }
}
