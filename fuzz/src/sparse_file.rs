//! A disk image file described by a few byte runs over zeros, so a fuzz input of a few KiB can
//! stand for a container whose structures lie megabytes apart (a VHDX's headers, log, metadata
//! and BAT).
//!
//! Input layout: the file length in 512-byte sectors (u32, little-endian), then runs of a u32
//! byte offset, a u16 length and that many bytes; a later run wins where runs overlap, bytes no
//! run gives read as zero, and a run past the end is cut there. `cargo xtask fuzz` writes the
//! seed corpus in this layout from real images.

use std::path::{Path, PathBuf};

use reseal_disk::ImageFile;

/// The path errors name: a directory that does not exist, so a differencing disk's parent
/// locators resolve to nothing.
pub const PATH: &str = "/nonexistent-reseal-fuzz/disk.img";

/// Files longer than this are cut: a container may claim to be large, not to hold more.
pub const MAX_LEN: u64 = 1 << 36;

pub struct SparseFile {
    path: PathBuf,
    len: u64,
    runs: Vec<(u64, Vec<u8>)>,
}

impl SparseFile {
    /// The file `data` describes (see the module documentation), named `PATH` with `extension`.
    pub fn parse(data: &[u8], extension: &str) -> SparseFile {
        let sectors = data
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let len = (u64::from(sectors) * 512).min(MAX_LEN);
        let mut runs = Vec::new();
        let mut rest = data.get(4..).unwrap_or_default();
        while rest.len() >= 6 {
            let offset = u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
            let run_len = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
            let bytes = &rest[6..6 + run_len.min(rest.len() - 6)];
            rest = &rest[6 + bytes.len()..];
            if offset < len {
                let kept = bytes.len().min((len - offset) as usize);
                runs.push((offset, bytes[..kept].to_vec()));
            }
        }
        SparseFile {
            path: Path::new(PATH).with_extension(extension),
            len,
            runs,
        }
    }

    /// A file holding exactly `bytes`.
    pub fn whole(bytes: &[u8], extension: &str) -> SparseFile {
        SparseFile {
            path: Path::new(PATH).with_extension(extension),
            len: bytes.len() as u64,
            runs: vec![(0, bytes.to_vec())],
        }
    }
}

impl ImageFile for SparseFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> reseal_disk::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.len);
        let Some(end) = end else {
            return Err(reseal_disk::Error::OutOfRange {
                path: self.path.clone(),
                offset,
                len: buf.len() as u64,
                size: self.len,
            });
        };
        buf.fill(0);
        for (start, bytes) in &self.runs {
            let run_end = start + bytes.len() as u64;
            let (from, to) = (offset.max(*start), end.min(run_end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(())
    }
    fn write_at(&mut self, _offset: u64, _buf: &[u8]) -> reseal_disk::Result<()> {
        Err(reseal_disk::Error::ReadOnly {
            path: self.path.clone(),
        })
    }
    fn set_len(&mut self, _len: u64) -> reseal_disk::Result<()> {
        self.write_at(0, &[])
    }
    fn sync(&mut self) -> reseal_disk::Result<()> {
        Ok(())
    }
    fn is_writable(&self) -> bool {
        false
    }
}
